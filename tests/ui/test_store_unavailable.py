"""Every page, when the store cannot be opened: the store's one line as an error, no traceback.

The causes a new user meets: a ``DATA_DIR`` nothing can write to (made
immutable with ``tests.readonly.unwritable``, which holds for root too), and a
``DATABASE_URL`` that is not a URL or needs a driver that is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.readonly import unwritable
from ui.runtime import get_runtime

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGES = ["home", "builder", "run", "history", "memory", "tools", "settings"]


@pytest.fixture
def read_only_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("DATA_DIR", str(data))
    with unwritable(data):
        yield data


CASES = {  # case -> (environment, words the error must hold)
    "read-only-data-dir": ({}, ["not writable", "DATA"]),
    "database-url-not-a-url": ({"DATABASE_URL": "notaurl"}, ["DATABASE", "notaurl", "not a database URL"]),
    "database-url-no-driver": (
        {"DATABASE_URL": "mysql://ann:s3cret-pw@localhost/studio"},
        ["MySQLdb", "not installed"],
    ),
}


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("case", list(CASES))
def test_every_page_shows_the_store_error_as_one_message(
    case: str, page: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    env, words = CASES[case]
    if case == "read-only-data-dir":
        data = request.getfixturevalue("read_only_data_dir")
        words = [*words, data.name]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_runtime.clear()  # the conftest's runtime is over a good store; the page must open its own
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if page != "home":
        at.switch_page(f"views/{page}.py")
        at.run()
    assert not at.exception, [e.message for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    shown = errors[0].replace("\\", "")  # the message is Markdown-escaped
    assert shown.startswith("Store: ") and all(w in shown for w in words), shown
    assert "s3cret-pw" not in shown
    assert not at.title, "the page itself did not run"
