"""The Settings page's values in the database (queue mode): what a worker ends up with (engine.store.shared_settings).

On a real SQLite database (the table is the same on PostgreSQL; the queue tests use that one).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from engine.config import Settings
from engine.errors import StoreError
from engine.settings import Settings as SavedSettings
from engine.store.shared_settings import apply_shared, create_table, load_shared, save_shared


@pytest.fixture
def db(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'studio.db'}")
    create_table(engine)
    return engine


def _worker(tmp_path: Path, **environ: str) -> Settings:
    return Settings.from_env({"DATA_DIR": str(tmp_path / "worker"), **environ})


def test_nothing_saved_leaves_a_workers_settings_as_they_are(db: Engine, tmp_path: Path) -> None:
    worker = _worker(tmp_path, OPENAI_MODEL="env-model")
    assert load_shared(db) is None
    assert apply_shared(worker, load_shared(db)) is worker


def test_a_field_changed_on_the_page_wins_and_one_never_changed_yields_to_the_workers_environment(
    db: Engine, tmp_path: Path
) -> None:
    saved = SavedSettings(base_url="http://127.0.0.1:9/v1", model="page-model", prices={"m": {"input": 1.0}})
    save_shared(db, saved, keep=("model", "embeddings"))  # only the base URL was changed on the page
    worker = _worker(tmp_path, OPENAI_BASE_URL="http://env:1/v1", OPENAI_MODEL="env-model")
    applied = apply_shared(worker, load_shared(db))
    assert applied.llm.base_url == "http://127.0.0.1:9/v1"  # changed on the page: over the environment
    assert applied.llm.model == "env-model"  # never changed on the page: the worker's environment wins
    assert applied.saved.prices == {"m": {"input": 1.0}}
    bare = apply_shared(_worker(tmp_path), load_shared(db))
    assert bare.llm.model == "page-model"  # no environment value: the saved one

    # a later save of the prices alone keeps what the page changed before
    save_shared(
        db,
        SavedSettings(base_url="http://127.0.0.1:9/v1", model="page-model"),
        keep=("base_url", "model", "embeddings"),
    )
    shared = load_shared(db)
    assert shared is not None and shared.applied == {"base_url"} and shared.saved.prices == {}
    assert apply_shared(worker, shared).llm.base_url == "http://127.0.0.1:9/v1"


def test_a_broken_row_reads_as_defaults_and_a_missing_table_fails_in_one_line(db: Engine, tmp_path: Path) -> None:
    with db.begin() as conn:
        conn.execute(text("INSERT INTO studio_settings VALUES ('studio', 'not json', '{', 0)"))
    shared = load_shared(db)
    assert shared is not None and shared.saved == SavedSettings() and shared.applied == frozenset()

    bare = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with pytest.raises(StoreError, match="migrate") as failure:
        save_shared(bare, SavedSettings())
    assert "\n" not in str(failure.value)
    with pytest.raises(StoreError):
        load_shared(bare)
