"""Data files are owner-only: the data folder 0700; studio.db, memory.db (and their -wal/-shm), Chroma's tree and
settings.json 0600 -- new ones created so, existing looser ones tightened. Real SQLite, real Chroma, real files."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine import settings as user_settings
from engine.store import Store
from memory.long_term import ChromaConnection
from memory.short_term import ShortTermStore


@pytest.fixture(autouse=True)
def _usual_umask() -> Iterator[None]:
    """The common 022 umask: without the fix, files come out 0644 and folders 0755."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("DATA_DIR", str(folder))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("MEMORY_DATABASE_URL", raising=False)
    return folder


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _loosen(path: Path) -> None:
    """Make ``path`` and everything under it world-readable, as the old code left them."""
    path.chmod(0o755 if path.is_dir() else 0o644)
    if path.is_dir():
        for child in path.rglob("*"):
            child.chmod(0o755 if child.is_dir() else 0o644)


def _modes_under(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): _mode(p) for p in [folder, *folder.rglob("*")] if not p.is_symlink()}


def _assert_private(data: Path, names: list[str]) -> None:
    assert _mode(data) == 0o700, oct(_mode(data))
    for name in names:
        path = data / name
        assert path.exists(), name
        targets = [path, *path.rglob("*")] if path.is_dir() else [path]
        for target in targets:
            expected = 0o700 if target.is_dir() else 0o600
            assert _mode(target) == expected, f"{target.relative_to(data)} is {oct(_mode(target))}"


def _open_store(data: Path) -> list[str]:
    store = Store()
    try:
        assert store.sqlite_file == data / "studio.db"
        store.save_workflow({"format": "workflow/v1", "name": "perm", "nodes": [{"id": "a", "type": "input"}],
                             "edges": []})
        names = ["studio.db"] + [n for n in ("studio.db-wal", "studio.db-shm") if (data / n).exists()]
        assert "studio.db-wal" in names  # WAL mode: the sidecars exist while the store is open
        _assert_private(data, names)
    finally:
        store.close()
    return ["studio.db"]


def _open_short_term(data: Path) -> list[str]:
    ShortTermStore().add("agent-1", "hello", "hi")
    names = ["memory.db"] + [n for n in ("memory.db-wal", "memory.db-shm") if (data / n).exists()]
    assert "memory.db-wal" in names
    return names


def _open_chroma(data: Path) -> list[str]:
    client = ChromaConnection.from_env().client()
    client.get_or_create_collection("perm-test")
    ChromaConnection.from_env().client()  # the next opening tightens what Chroma created since
    return ["chroma"]


def _save_settings(data: Path) -> list[str]:
    saved = user_settings.Settings(base_url="http://user:secret@127.0.0.1:9/v1", model="m")
    user_settings.save(saved, data / "settings.json")
    return ["settings.json"]


@dataclass(frozen=True)
class Artifact:
    id: str
    open: Callable[[Path], list[str]]
    make_loose: Callable[[Path], None]  # an older install's files, world-readable


def _loose_sqlite(name: str) -> Callable[[Path], None]:
    def make(data: Path) -> None:
        data.mkdir(mode=0o755)
        conn = sqlite3.connect(data / name)  # a WAL database whose -wal/-shm exist (the connection stays open)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS older (x)")
        conn.commit()
        _held.append(conn)
        _loosen(data)

    return make


def _loose_store(data: Path) -> None:
    data.mkdir(mode=0o755)
    Store().close()
    conn = sqlite3.connect(data / "studio.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("SELECT 1").fetchall()
    _held.append(conn)
    _loosen(data)


def _loose_chroma(data: Path) -> None:
    data.mkdir(mode=0o755)
    import chromadb
    from chromadb.config import Settings

    chromadb.PersistentClient(path=str(data / "chroma"), settings=Settings(anonymized_telemetry=False))
    _loosen(data)


def _loose_settings(data: Path) -> None:
    data.mkdir(mode=0o755)
    (data / "settings.json").write_text('{"base_url": "http://user:secret@127.0.0.1:9/v1"}', encoding="utf-8")
    _loosen(data)


_held: list[sqlite3.Connection] = []


@pytest.fixture(autouse=True)
def _close_held() -> Iterator[None]:
    yield
    while _held:
        _held.pop().close()


ARTIFACTS = [
    Artifact("studio-db", _open_store, _loose_store),
    Artifact("memory-db", _open_short_term, _loose_sqlite("memory.db")),
    Artifact("chroma", _open_chroma, _loose_chroma),
    Artifact("settings-json", _save_settings, _loose_settings),
]


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing-loose"])
@pytest.mark.parametrize("artifact", ARTIFACTS, ids=[a.id for a in ARTIFACTS])
def test_data_files_are_owner_only(artifact: Artifact, existing: bool, data: Path) -> None:
    if existing:
        artifact.make_loose(data)
        loose = _modes_under(data)
        assert loose[str(Path("."))] == 0o755 and any(m == 0o644 for m in loose.values()), loose
    names = artifact.open(data)
    _assert_private(data, names)
    others = {k: oct(v) for k, v in _modes_under(data).items() if v & 0o077 and not k.startswith("files")}
    assert others == {}, f"readable by others: {others}"


def test_settings_load_tightens_an_older_file(data: Path) -> None:
    _loose_settings(data)
    assert user_settings.load(data / "settings.json").base_url.endswith("/v1")
    assert _mode(data / "settings.json") == 0o600


def test_a_database_url_elsewhere_keeps_its_folder_but_the_file_is_private(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "shared"
    elsewhere.mkdir(mode=0o755)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    store = Store(f"sqlite:///{elsewhere / 'mine.db'}")
    store.close()
    assert _mode(elsewhere) == 0o755  # the user's folder: not ours to change
    assert _mode(elsewhere / "mine.db") == 0o600
