"""The store stays behind the runtime: pages, ui helpers, the HTTP API and the CLI read runs and workflows
through ``Runtime.reader`` / ``RunReader`` (plain records) and change them through named ``Runtime`` methods.

Fails when one of them uses a ``.store`` attribute (``runtime.store.get_run``, ``bs.store()``), imports from
``engine.store`` anything but its two error classes (the table models above all), or imports SQLAlchemy /
SQLModel to query on its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CALLERS = ["app.py", "views", "ui", "engine/api", "engine/cli.py"]
STORE_MODULES = {"engine.store", "engine.store.tables", "engine.store.writer", "engine.store.db"}
ALLOWED_FROM_STORE = {"StoreError", "StoreUrlInvalid"}  # errors to catch, nothing to read with
QUERY_LIBRARIES = {"sqlalchemy", "sqlmodel"}


def _files(entry: str) -> list[Path]:
    path = ROOT / entry
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def reaches_into_store(source: str) -> list[str]:
    """Each place in ``source`` that goes around the read API, as ``line: what``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == "store":
            found.append(f"{node.lineno}: .store")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module in STORE_MODULES:
                extra = sorted({a.name for a in node.names} - ALLOWED_FROM_STORE)
                if extra:
                    found.append(f"{node.lineno}: from {node.module} import {', '.join(extra)}")
            elif node.module == "engine" and any(a.name == "store" for a in node.names):
                found.append(f"{node.lineno}: from engine import store")
            elif node.module.split(".")[0] in QUERY_LIBRARIES:
                found.append(f"{node.lineno}: from {node.module}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in STORE_MODULES or alias.name.split(".")[0] in QUERY_LIBRARIES:
                    found.append(f"{node.lineno}: import {alias.name}")
    return found


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("rows = runtime.store.list_runs()", ["1: .store"]),
        ("row = bs.store().get_workflow(wid)", ["1: .store"]),
        ("store = get_runtime().store", ["1: .store"]),
        ("from engine.store import RunRow, StoreError", ["1: from engine.store import RunRow"]),
        ("from engine.store.tables import EventRow", ["1: from engine.store.tables import EventRow"]),
        ("import engine.store.tables", ["1: import engine.store.tables"]),
        ("from engine import store", ["1: from engine import store"]),
        ("from sqlmodel import Session", ["1: from sqlmodel"]),
        ("import sqlalchemy", ["1: import sqlalchemy"]),
        ("from engine.store import StoreError, StoreUrlInvalid", []),
        ("rows = runtime.reader.runs(limit=5)", []),
        ("runtime.delete_run(run_id)", []),
        ("st.session_state['store'] = 1", []),
    ],
)
def test_the_check_catches_what_it_should(source: str, caught: list[str]) -> None:
    assert reaches_into_store(source) == caught


@pytest.mark.parametrize("entry", CALLERS)
def test_callers_read_through_the_read_api(entry: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in _files(entry)
        if (found := reaches_into_store(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, "use Runtime.reader (engine.reader) and Runtime's named write methods instead"
