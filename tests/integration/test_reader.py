"""The read API (``engine.reader.RunReader``, ``Runtime.reader``) and Runtime's named store writes.

A real store (a SQLite file in ``tmp_path``; the table test also on a real
PostgreSQL database, ``tests/integration/pg.py``) is filled by a real
Runtime running real workflows, then read back by a reader opened from the
URL alone. The read-only CLI commands are shown to open only the store: run
in a child process that records every thread started, they start none.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tools
from engine.events import Event
from engine.reader import (
    DraftRecord,
    NodeExecutionRecord,
    RunReader,
    RunRecord,
    WorkflowRecord,
    WorkflowVersionRecord,
)
from engine.runtime import Runtime
from engine.store import Store, WorkflowRef
from engine.store.tables import DraftRow, NodeExecutionRow, RunRow, WorkflowRow, WorkflowVersionRow
from engine.validate import load_workflow

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 30


async def _sleep_tool(seconds: float) -> float:
    """Sleep, then say how long."""
    await asyncio.sleep(seconds)
    return seconds


# This module's runtimes use their own registry: the usual tools plus this one.
TOOLS = tools.default_registry().copy()
TOOLS.register(_sleep_tool, name="itest_reader_sleep")


@pytest.fixture(autouse=True)
def _no_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)


def doc(name: str, expression: str = "inputs.n * 2") -> dict[str, Any]:
    """start -> calc (transform) -> out."""
    return {
        "format": "workflow/v1",
        "name": name,
        "inputs": {"n": {"type": "integer", "default": 2}},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "calc", "type": "transform", "config": {"expression": expression}},
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.calc.output }}"}},
        ],
        "edges": [{"source": "start", "target": "calc"}, {"source": "calc", "target": "out"}],
    }


@dataclasses.dataclass
class Filled:
    """What a runtime wrote: ids to look up."""

    url: str
    ok: str  # a completed run of "reader-a" v2, inputs n=5
    failed: str  # a failed run of "reader-b"
    first: str  # the older completed run of "reader-a" v1
    a: WorkflowRef
    b: WorkflowRef
    archived: WorkflowRef


def fill(url: str) -> Filled:
    with Runtime(tools=TOOLS, database_url=url) as runtime:
        first = runtime.submit(doc("reader-a"), {"n": 1})
        assert runtime.wait(first, WAIT_S).status == "completed"
        ok = runtime.submit(doc("reader-a", "inputs.n * 3"), {"n": 5})  # a changed document: version 2
        assert runtime.wait(ok, WAIT_S).status == "completed"
        failed = runtime.submit(doc("reader-b", "1 / 0"))
        assert runtime.wait(failed, WAIT_S).status == "failed"
        archived = runtime.save_workflow(doc("reader-gone"))
        assert runtime.archive_workflow(archived.id) is True
        runtime.save_draft("new:abc", {"name": "half", "nodes": "not a list"}, source="import")
        # as submit saved them (the loaded document): unchanged, so no new version
        a = runtime.save_workflow(load_workflow(doc("reader-a", "inputs.n * 3")).to_dict())
        b = runtime.save_workflow(load_workflow(doc("reader-b", "1 / 0")).to_dict())
        assert (a.version, a.created, b.version, b.created) == (2, False, 1, False)
    return Filled(url, ok, failed, first, a, b, archived)


@pytest.fixture
def filled(store_url: str) -> Filled:
    return fill(store_url)


@pytest.fixture
def reader(filled: Filled) -> Iterator[RunReader]:
    with RunReader.open(filled.url) as opened:
        yield opened


# (what, call, check) — each check asserts on what the call returned
CASES: list[tuple[str, Callable[[RunReader, Filled], Any], Callable[[Any, Filled], None]]] = [
    (
        "run: a completed run, every field",
        lambda r, f: r.run(f.ok),
        lambda got, f: (
            _is_record(got, RunRecord),
            _equal(
                got,
                run_id=f.ok,
                workflow_id=f.a.id,
                workflow_version=2,
                workflow_name="reader-a",
                inputs={"n": 5},
                status="completed",
                result={"out": 15},
                error=None,
                resumed=0,
                forked_from=None,
                last_seq=8,  # run.started, 3 x (node.started, node.completed), run.completed
            ),
            _ordered(got.created_at, got.started_at, got.finished_at),
        ),
    ),
    (
        "run: a failed run says where and why",
        lambda r, f: r.run(f.failed),
        lambda got, f: (
            _equal(got, status="failed", error_node="calc", result=None) and _contains(got.error, "division")
        ),
    ),
    ("run: unknown id", lambda r, f: r.run("0" * 32), lambda got, f: _is(got, None)),
    (
        "runs: newest first",
        lambda r, f: r.runs(),
        lambda got, f: _is([x.run_id for x in got], [f.failed, f.ok, f.first]),
    ),
    ("runs: limit", lambda r, f: r.runs(limit=1), lambda got, f: _is([x.run_id for x in got], [f.failed])),
    ("runs: by status", lambda r, f: r.runs(status="failed"), lambda got, f: _is([x.run_id for x in got], [f.failed])),
    (
        "runs: by workflow",
        lambda r, f: r.runs(workflow_id=f.a.id),
        lambda got, f: _is([(x.run_id, x.workflow_version) for x in got], [(f.ok, 2), (f.first, 1)]),
    ),
    ("count_runs", lambda r, f: r.count_runs(), lambda got, f: _is(got, 3)),
    (
        "node_executions: in the order they started",
        lambda r, f: r.node_executions(f.ok),
        lambda got, f: (
            [_is_record(x, NodeExecutionRecord) for x in got],
            _is([(x.node_id, x.status, x.execution, x.reused) for x in got], [
                ("start", "succeeded", 0, False), ("calc", "succeeded", 0, False), ("out", "succeeded", 0, False)
            ]),
            _is(got[1].output, 15),
        ),
    ),
    (
        "node_executions: the failed node keeps its error",
        lambda r, f: r.node_executions(f.failed),
        lambda got, f: _is([(x.node_id, x.status) for x in got], [("start", "succeeded"), ("calc", "failed")])
        and _contains(got[1].error, "division"),
    ),
    ("node_executions: unknown run", lambda r, f: r.node_executions("nope"), lambda got, f: _is(got, [])),
    (
        "events: all, numbered from 1",
        lambda r, f: r.events(f.ok),
        lambda got, f: (
            _is([e.seq for e in got], list(range(1, 9))),
            _is((got[0].type, got[-1].type), ("run.started", "run.completed")),
            _is(all(isinstance(e, Event) for e in got), True),
        ),
    ),
    (
        "events: after and limit",
        lambda r, f: r.events(f.ok, after=2, limit=3),
        lambda got, f: _is([e.seq for e in got], [3, 4, 5]),
    ),
    (
        "workflows: not archived, most recently changed first",
        lambda r, f: r.workflows(),
        lambda got, f: (
            [_is_record(x, WorkflowRecord) for x in got],
            _is(
                [(x.name, x.latest_version, x.archived) for x in got],
                [("reader-b", 1, False), ("reader-a", 2, False)],
            ),
        ),
    ),
    (
        "workflows: archived too",
        lambda r, f: r.workflows(include_archived=True),
        lambda got, f: _is(sorted(x.name for x in got), ["reader-a", "reader-b", "reader-gone"]),
    ),
    (
        "workflow: by id",
        lambda r, f: r.workflow(f.archived.id),
        lambda got, f: _equal(got, name="reader-gone", archived=True),
    ),
    ("workflow: unknown", lambda r, f: r.workflow("nope"), lambda got, f: _is(got, None)),
    (
        "find_workflow: by name",
        lambda r, f: r.find_workflow("reader-a"),
        lambda got, f: _equal(got, id=f.a.id, latest_version=2),
    ),
    ("find_workflow: unknown", lambda r, f: r.find_workflow("nobody"), lambda got, f: _is(got, None)),
    (
        "workflow_version: the latest by default",
        lambda r, f: r.workflow_version(f.a.id),
        lambda got, f: (
            _is_record(got, WorkflowVersionRecord),
            _equal(got, workflow_id=f.a.id, version=2),
            _is(got.document["nodes"][1]["config"]["expression"], "inputs.n * 3"),
        ),
    ),
    (
        "workflow_version: an older one",
        lambda r, f: r.workflow_version(f.a.id, 1),
        lambda got, f: _is(got.document["nodes"][1]["config"]["expression"], "inputs.n * 2"),
    ),
    ("workflow_version: no such version", lambda r, f: r.workflow_version(f.a.id, 9), lambda got, f: _is(got, None)),
    ("workflow_version: no such workflow", lambda r, f: r.workflow_version("nope"), lambda got, f: _is(got, None)),
    (
        "workflow_versions: oldest first",
        lambda r, f: r.workflow_versions(f.a.id),
        lambda got, f: _is([v.version for v in got], [1, 2]) and _is(got[0].digest != got[1].digest, True),
    ),
    (
        "draft: kept as given, invalid too",
        lambda r, f: r.draft("new:abc"),
        lambda got, f: (
            _is_record(got, DraftRecord),
            _equal(got, key="new:abc", source="import", document={"name": "half", "nodes": "not a list"}),
        ),
    ),
    ("draft: none", lambda r, f: r.draft("new:none"), lambda got, f: _is(got, None)),
    ("drafts", lambda r, f: r.drafts(), lambda got, f: _is([d.key for d in got], ["new:abc"])),
]


def _is(got: Any, want: Any) -> bool:
    assert got == want
    return True


def _contains(text: str | None, part: str) -> bool:
    assert text is not None and part in text, text
    return True


def _equal(record: Any, **want: Any) -> bool:
    assert record is not None
    assert {k: getattr(record, k) for k in want} == want
    return True


def _ordered(*times: float | None) -> bool:
    assert all(t is not None for t in times) and list(times) == sorted(times), times  # type: ignore[type-var]
    return True


def _is_record(value: Any, cls: type) -> bool:
    """A frozen dataclass of the reader, nothing bound to a database session."""
    assert type(value) is cls and dataclasses.is_dataclass(value)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, dataclasses.fields(value)[0].name, None)
    return True


@pytest.mark.parametrize(("what", "call", "check"), CASES, ids=[c[0] for c in CASES])
def test_reader_answers(
    reader: RunReader, filled: Filled, what: str, call: Callable[..., Any], check: Callable[..., Any]
) -> None:
    check(call(reader, filled), filled)


@pytest.mark.parametrize(
    ("record", "row"),
    [
        (RunRecord, RunRow),
        (NodeExecutionRecord, NodeExecutionRow),
        (WorkflowRecord, WorkflowRow),
        (WorkflowVersionRecord, WorkflowVersionRow),
        (DraftRecord, DraftRow),
    ],
)
def test_records_carry_every_column_under_its_name(record: type, row: type) -> None:
    """A column added to a table must be added to its record (or it silently never reaches a caller)."""
    columns = {c.name for c in row.__table__.columns} - {"id"} | ({"id"} if row is WorkflowRow else set())
    assert {f.name for f in dataclasses.fields(record)} == columns


def test_runtime_reader_reads_what_it_wrote(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studio.db'}"
    with Runtime(tools=TOOLS, database_url=url) as runtime:
        run_id = runtime.submit(doc("live"), {"n": 4})
        runtime.wait(run_id, WAIT_S)
        runtime.store.flush()
        assert runtime.reader.run(run_id) == RunReader(runtime.store).run(run_id)
        record = runtime.reader.run(run_id)
        assert record is not None and record.result == {"out": 8} and record.status == "completed"
        assert [e.seq for e in runtime.reader.events(run_id)] == [e.seq for e in runtime.events_since(run_id)]


def test_open_starts_no_thread_and_the_reader_sees_a_runtime_elsewhere(tmp_path: Path) -> None:
    filled = fill(f"sqlite:///{tmp_path / 'studio.db'}")
    before = {t.name for t in __import__("threading").enumerate()}
    with RunReader.open(data_dir=tmp_path) as reader:  # found by its data dir, as DATA_DIR would
        assert reader.sqlite_file == tmp_path / "studio.db"
        assert reader.location == str(tmp_path / "studio.db")
        assert reader.run(filled.ok) is not None
        names = {t.name for t in __import__("threading").enumerate()}
    assert not {"store-writer", "engine-runtime"} & (names - before)


def test_location_hides_a_password(postgres_url: str) -> None:
    with_password = postgres_url.replace("postgres@", "postgres:s3cret@", 1)  # the test server trusts any
    assert with_password != postgres_url
    with RunReader.open(with_password) as reader:
        assert reader.sqlite_file is None
        assert "s3cret" not in reader.location and "postgres:***@127.0.0.1" in reader.location


# --------------------------------------------------------------------------- dead processes


def _dead_owner() -> str:
    return f"{socket.gethostname()}:999999999:1"  # no such pid here: its process is gone


def test_open_marks_runs_of_dead_processes_interrupted_only_when_asked(tmp_path: Path) -> None:
    store = Store(data_dir=tmp_path)
    ref = store.save_workflow(doc("orphan"))
    store.create_run(run_id="d" * 32, workflow=ref, inputs={}, owner=_dead_owner())
    store.flush()
    store.close()
    with RunReader.open(data_dir=tmp_path) as reader:
        assert reader.run("d" * 32).status == "running"  # type: ignore[union-attr]  # a reader only reads
    with RunReader.open(data_dir=tmp_path, mark_interrupted=True) as reader:
        assert reader.run("d" * 32).status == "interrupted"  # type: ignore[union-attr]


# --------------------------------------------------------------------------- Runtime's named writes


def test_runtime_writes_workflows_and_drafts(tmp_path: Path) -> None:
    with Runtime(tools=TOOLS, data_dir=str(tmp_path)) as runtime:
        first = runtime.save_workflow(doc("w"))
        again = runtime.save_workflow(doc("w"))
        changed = runtime.save_workflow({**doc("w"), "description": "now with words", "nodes": []})  # invalid: kept
        assert (first.created, again.created, changed.created) == (True, False, True)
        assert (first.version, again.version, changed.version) == (1, 1, 2)
        assert runtime.reader.workflow_version(first.id).document["nodes"] == []  # type: ignore[union-attr]
        assert runtime.archive_workflow(first.id) is True
        assert runtime.archive_workflow("nope") is False
        assert runtime.reader.workflows() == []
        runtime.save_draft(first.id, {"name": "w", "x": 1}, source=f"saved:{first.id}")
        runtime.save_draft(first.id, {"name": "w", "x": 2}, source=f"saved:{first.id}")
        assert runtime.reader.draft(first.id).document == {"name": "w", "x": 2}  # type: ignore[union-attr]
        assert runtime.drop_draft(first.id) is True
        assert runtime.drop_draft(first.id) is False
        assert runtime.reader.drafts() == []


def test_delete_run_refuses_a_running_run_and_forgets_a_finished_one(tmp_path: Path) -> None:
    slow = {
        **doc("slow"),
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "calc", "type": "tool", "config": {"tool": "itest_reader_sleep", "args": {"seconds": 30}}},
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.calc.output }}"}},
        ],
    }
    with Runtime(tools=TOOLS, data_dir=str(tmp_path)) as runtime:
        done = runtime.submit(doc("quick"))
        runtime.wait(done, WAIT_S)
        assert runtime.delete_run(done) is True  # at once: its last events are committed first
        assert runtime.status(done) is None and runtime.reader.run(done) is None
        assert runtime.reader.events(done) == [] and runtime.reader.node_executions(done) == []
        assert runtime.delete_run(done) is False
        running = runtime.submit(slow)
        assert runtime.delete_run(running) is False
        runtime.cancel(running)
        runtime.wait(running, WAIT_S)


# --------------------------------------------------------------------------- the read-only CLI commands

_TRACE = """
import json, sys, threading
started = []
_start = threading.Thread.start
def start(self, *a, **k):
    started.append(self.name)
    return _start(self, *a, **k)
threading.Thread.start = start
import engine.runtime
made = []
_init = engine.runtime.Runtime.__init__
def init(self, *a, **k):
    made.append(1)
    return _init(self, *a, **k)
engine.runtime.Runtime.__init__ = init
from engine.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "threads": started, "runtimes": len(made)}), file=sys.stderr)
"""


def _traced_cli(*argv: str, cwd: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    command = [sys.executable, "-c", _TRACE, *argv]
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    report["stdout"] = proc.stdout
    return report


@pytest.mark.parametrize("command", ["runs", "show"])
def test_read_only_cli_commands_open_only_the_store(tmp_path: Path, command: str) -> None:
    url = f"sqlite:///{tmp_path / 'studio.db'}"
    filled = fill(url)
    argv = {"runs": ["runs", "--db", url], "show": ["show", filled.ok, "--db", url]}[command]
    report = _traced_cli(*argv, cwd=tmp_path)
    assert report["code"] == 0
    assert filled.ok in report["stdout"]
    assert report["threads"] == [] and report["runtimes"] == 0


def test_the_trace_sees_a_runtime_when_one_starts(tmp_path: Path) -> None:
    """The check above could fail: ``run`` starts the engine's loop and the store's writer."""
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(doc("traced")), encoding="utf-8")
    report = _traced_cli("run", str(path), "--quiet", "--db", f"sqlite:///{tmp_path / 'studio.db'}", cwd=tmp_path)
    assert report["code"] == 0 and report["runtimes"] == 1
    assert {"engine-runtime", "store-writer"} <= set(report["threads"])
