"""Resume after a real crash (issue 3, "Resume after a crash" and "CLI additions").

A subprocess (``python -m engine run FILE``) runs a workflow whose tool
nodes count their executions in a side file and wait while a per-label
"hold" file exists. The test waits until the chosen node is running and its
``node.started`` is committed to the store, SIGKILLs the process, removes
the hold file and runs ``python -m engine resume RUN_ID``. Completed nodes
must not run again, the interrupted one runs a second time, the stored event
log has ``seq`` 1..n without a gap and ``PRAGMA integrity_check`` is ``ok``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

pytest_plugins = ["tests.integration.pg"]

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60
PLUGIN = "itest_crashtools"


TOOLS_SOURCE = '''
"""Tools for the crash tests: count each execution, wait while held."""
import asyncio
import os
import pathlib

from tools import tool

ROOT = pathlib.Path(os.environ["ITEST_CRASH_DIR"])


def _note(label):
    with open(ROOT / "counter.txt", "a", encoding="utf-8") as handle:
        handle.write(label + "\\n")
        handle.flush()
        os.fsync(handle.fileno())


@tool(name="itest_step", timeout_s=120)
async def itest_step(label: str, value: int) -> int:
    """Note the execution, wait while ROOT/<label>.hold exists, return value + 1."""
    _note(label)
    while (ROOT / (label + ".hold")).exists():
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.03)
    return value + 1


@tool(name="itest_flaky", timeout_s=120)
async def itest_flaky(label: str, value: int) -> int:
    """Note the execution; fail while ROOT/broken exists, else return value + 100."""
    _note(label)
    if (ROOT / "broken").exists():
        raise RuntimeError("the flaky tool is broken (flag file present)")
    return value + 100
'''


# --------------------------------------------------------------------------- workflows


def step(node_id: str, value: str, label: str | None = None) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "tool",
        "config": {"tool": "itest_step", "args": {"label": label or node_id, "value": value}},
    }


def chain_doc() -> dict[str, Any]:
    """start -> s1 -> gate -> (s2 | never: skipped) -> s3 -> s4 -> out; result x + 4."""
    return {
        "format": "workflow/v1",
        "name": "crash-chain",
        "inputs": {"x": {"type": "integer", "default": 10}},
        "nodes": [
            {"id": "start", "type": "input"},
            step("s1", "{{ inputs.x }}"),
            {"id": "gate", "type": "condition", "config": {"expression": "nodes.s1.output > 0"}},
            step("s2", "{{ nodes.s1.output }}"),
            step("never", "0"),
            step("s3", "{{ nodes.s2.output or nodes.never.output }}"),
            step("s4", "{{ nodes.s3.output }}"),
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.s4.output }}"}},
        ],
        "edges": [
            {"source": "start", "target": "s1"},
            {"source": "s1", "target": "gate"},
            {"source": "gate", "target": "s2", "when": "true"},
            {"source": "gate", "target": "never", "when": "default"},
            {"source": "s2", "target": "s3"},
            {"source": "never", "target": "s3"},
            {"source": "s3", "target": "s4"},
            {"source": "s4", "target": "out"},
        ],
    }


def loop_doc() -> dict[str, Any]:
    """start -> step (3 iterations, label step0..step2, value iteration*10) -> check -> out; result 21."""
    return {
        "format": "workflow/v1",
        "name": "crash-loop",
        "nodes": [
            {"id": "start", "type": "input"},
            step("step", "{{ iteration * 10 }}", label="step{{ iteration }}"),
            {"id": "check", "type": "condition", "config": {"expression": "iteration >= 2"}},
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.step.output }}"}},
        ],
        "edges": [
            {"source": "start", "target": "step"},
            {"source": "step", "target": "check"},
            {"source": "check", "target": "step", "when": "false"},
            {"source": "check", "target": "out", "when": "true"},
        ],
    }


def flaky_doc() -> dict[str, Any]:
    """start -> s1 -> flaky -> s3 -> out; result (x + 1 + 100) + 1."""
    return {
        "format": "workflow/v1",
        "name": "crash-flaky",
        "inputs": {"x": {"type": "integer", "default": 1}},
        "nodes": [
            {"id": "start", "type": "input"},
            step("s1", "{{ inputs.x }}"),
            {
                "id": "flaky",
                "type": "tool",
                "config": {"tool": "itest_flaky", "args": {"label": "flaky", "value": "{{ nodes.s1.output }}"}},
            },
            step("s3", "{{ nodes.flaky.output }}"),
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.s3.output }}"}},
        ],
        "edges": [
            {"source": "start", "target": "s1"},
            {"source": "s1", "target": "flaky"},
            {"source": "flaky", "target": "s3"},
            {"source": "s3", "target": "out"},
        ],
    }


# --------------------------------------------------------------------------- a workspace per test


class Workspace:
    """A data dir, the crash tools on PYTHONPATH, the counter file, and the CLI."""

    def __init__(self, tmp_path: Path, db_url: str | None = None):
        self.root = tmp_path
        self.crash_dir = tmp_path / "crash"
        self.crash_dir.mkdir()
        plugins = tmp_path / "plugins"
        plugins.mkdir()
        (plugins / f"{PLUGIN}.py").write_text(textwrap.dedent(TOOLS_SOURCE), encoding="utf-8")
        self.db_url = db_url or f"sqlite:///{tmp_path / 'data' / 'studio.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        env.pop("DATABASE_URL", None)
        env.update(
            DATA_DIR=str(tmp_path / "data"),
            OFFLINE_TOKEN_DELAY_S="0",
            TOOLS_MODULES=PLUGIN,
            PYTHONPATH=os.pathsep.join(p for p in (str(plugins), env.get("PYTHONPATH", "")) if p),
            ITEST_CRASH_DIR=str(self.crash_dir),
        )
        if db_url:
            env["DATABASE_URL"] = db_url
        self.env = env

    # files

    def write(self, doc: dict[str, Any], name: str = "wf.json") -> Path:
        path = self.root / name
        path.write_text(json.dumps(doc), encoding="utf-8")
        return path

    def hold(self, label: str) -> Path:
        path = self.crash_dir / f"{label}.hold"
        path.touch()
        return path

    def counts(self) -> Counter[str]:
        path = self.crash_dir / "counter.txt"
        return Counter(path.read_text(encoding="utf-8").split()) if path.exists() else Counter()

    # the CLI

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "engine", *args],
            cwd=REPO,
            env=self.env,
            check=False,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "engine", *args],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    # the store, read directly

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(text(sql), params)]
        except Exception:  # noqa: BLE001 - not created yet, or mid-migration
            return []
        finally:
            engine.dispose()

    def node_rows(self, run_id: str) -> list[tuple[str, int, str]]:
        return self.query(
            "SELECT node_id, execution, status FROM node_executions WHERE run_id = :r ORDER BY started_seq", r=run_id
        )  # type: ignore[return-value]

    def seqs(self, run_id: str) -> list[int]:
        return [row[0] for row in self.query("SELECT seq FROM events WHERE run_id = :r ORDER BY seq", r=run_id)]

    def event_types(self, run_id: str) -> list[str]:
        return [row[0] for row in self.query("SELECT type FROM events WHERE run_id = :r ORDER BY seq", r=run_id)]

    def run_row(self, run_id: str) -> dict[str, Any]:
        rows = self.query("SELECT status, result, error, resumed, last_seq FROM runs WHERE run_id = :r", r=run_id)
        assert rows, f"no runs row for {run_id}"
        status, result, error, resumed, last_seq = rows[0]
        if isinstance(result, str):
            result = json.loads(result)
        return {"status": status, "result": result, "error": error, "resumed": resumed, "last_seq": last_seq}

    def integrity_ok(self) -> None:
        if not self.db_url.startswith("sqlite"):
            return
        conn = sqlite3.connect(self.db_url.removeprefix("sqlite:///"))
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            conn.close()


@pytest.fixture(autouse=True)
def _no_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


def wait_for(predicate: Any, proc: subprocess.Popen[str] | None = None, timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run exited ({proc.returncode}) before {what}:\n{err}\n{out}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


TIMELINE = re.compile(r"^\s*\+\s*[\d.]+s\s+(\S+)(?: #(\d+))?\s+(\S+)")


def timeline(show_stdout: str) -> list[tuple[str, int, str]]:
    """``show``'s node lines as (node id, execution, status)."""
    found = []
    for line in show_stdout.splitlines():
        match = TIMELINE.match(line)
        if match:
            found.append((match[1], int(match[2] or 0), match[3]))
    return found


def run_id_from_events(path: Path) -> str | None:
    try:
        first = path.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError):
        return None
    return str(json.loads(first)["run_id"])


def kill_mid_node(
    ws: Workspace, doc: dict[str, Any], node_id: str, execution: int, label: str
) -> tuple[str, set[tuple[str, int]]]:
    """Run ``doc`` in a subprocess, SIGKILL it while ``node_id`` #``execution`` runs; returns the run id and the
    (node, execution) pairs whose completion was committed by then."""
    hold = ws.hold(label)
    events_file = ws.root / "events.jsonl"
    proc = ws.start("run", str(ws.write(doc)), "--events", str(events_file), "--quiet")
    try:
        run_id = wait_for(lambda: run_id_from_events(events_file), proc, what="the first event")
        wait_for(lambda: ws.counts()[label] >= 1, proc, what=f"tool label {label} to start")
        wait_for(
            lambda: (node_id, execution, "running") in ws.node_rows(run_id),
            proc,
            what=f"{node_id} #{execution} committed as running",
        )
        assert proc.poll() is None
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    hold.unlink()
    completed = {(n, e) for n, e, s in ws.node_rows(run_id) if s == "succeeded"}
    assert (node_id, execution) not in completed
    assert ws.run_row(run_id)["status"] == "running"  # nobody has looked at it since the crash
    ws.integrity_ok()
    return run_id, completed


def check_resumed_log(ws: Workspace, run_id: str, expected: Any) -> None:
    seqs = ws.seqs(run_id)
    assert seqs == list(range(1, len(seqs) + 1)), f"seq gap in the stored log: {seqs}"
    types = ws.event_types(run_id)
    assert types.count("run.started") == 1 and types[0] == "run.started"
    assert types[-1] == "run.completed"
    assert types.count("run.completed") == 1 and "run.cancelled" not in types and "run.failed" not in types
    row = ws.run_row(run_id)
    assert row["status"] == "completed" and row["result"] == expected and row["resumed"] == 1
    assert row["last_seq"] == seqs[-1]
    ws.integrity_ok()


# --------------------------------------------------------------------------- the crash tests


CHAIN_LABELS = {"s1": 1, "s2": 1, "s3": 1, "s4": 1}


@pytest.mark.parametrize(
    "target", ["s1", "s3", "s4"], ids=["first-slow-node", "middle-after-a-skip", "last-before-output"]
)
def test_sigkill_mid_node_then_resume_finishes_the_run(ws: Workspace, target: str) -> None:
    run_id, completed_before = kill_mid_node(ws, chain_doc(), target, 0, target)
    before_kill = ws.counts()

    resumed = ws.cli("resume", run_id, "--events", str(ws.root / "resume.jsonl"), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {"out": 14}

    counts = ws.counts()
    for node_id, _execution in completed_before:
        if node_id in CHAIN_LABELS:
            assert before_kill[node_id] == 1 and counts[node_id] == 1, (
                f"{node_id} completed before the kill but ran again"
            )
    assert counts[target] == 2, counts  # the interrupted node starts again from its beginning
    assert counts == Counter({**CHAIN_LABELS, target: 2}), counts
    assert "never" not in counts
    check_resumed_log(ws, run_id, {"out": 14})
    # the skipped branch is recorded once, the resumed node's execution ends completed
    rows = ws.node_rows(run_id)
    assert [r for r in rows if r[0] == "never"] == [("never", 0, "skipped")]
    assert {(n, e): s for n, e, s in rows}[(target, 0)] == "succeeded"
    # the resumed run's own events continue the seq numbering
    resumed_events = [json.loads(line) for line in (ws.root / "resume.jsonl").read_text().splitlines()]
    assert resumed_events and resumed_events[-1]["type"] == "run.completed"
    assert [e["seq"] for e in resumed_events] == ws.seqs(run_id)[-len(resumed_events) :]


def test_sigkill_in_the_second_loop_iteration_then_resume(ws: Workspace) -> None:
    run_id, completed_before = kill_mid_node(ws, loop_doc(), "step", 1, "step1")
    assert ("step", 0) in completed_before and ("check", 0) in completed_before

    resumed = ws.cli("resume", run_id, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {"out": 21}
    assert ws.counts() == Counter({"step0": 1, "step1": 2, "step2": 1})
    check_resumed_log(ws, run_id, {"out": 21})
    rows = ws.node_rows(run_id)
    assert [(n, e, s) for n, e, s in rows if n == "step"] == [
        ("step", 0, "succeeded"),
        ("step", 1, "succeeded"),
        ("step", 2, "succeeded"),
    ]


def test_sigkill_then_show_runs_and_resume_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    from tests.integration.pg import _fresh_postgres_database

    ws = Workspace(tmp_path, db_url=_fresh_postgres_database(postgres_url))
    run_id, _completed = kill_mid_node(ws, chain_doc(), "s2", 0, "s2")
    resumed = ws.cli("resume", run_id, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {"out": 14}
    assert ws.counts() == Counter({**CHAIN_LABELS, "s2": 2})
    check_resumed_log(ws, run_id, {"out": 14})


def test_after_a_crash_the_run_shows_interrupted_and_is_listed(ws: Workspace) -> None:
    """``show`` and ``runs`` open the store and first mark the dead process's run interrupted (as a Runtime does)."""
    run_id, _completed = kill_mid_node(ws, chain_doc(), "s2", 0, "s2")
    show = ws.cli("show", run_id)
    assert show.returncode == 0, show.stderr
    assert "interrupted" in show.stdout.splitlines()[0]
    nodes = timeline(show.stdout)
    assert nodes[:4] == [
        ("start", 0, "succeeded"),
        ("s1", 0, "succeeded"),
        ("gate", 0, "succeeded"),
        ("never", 0, "skipped"),
    ]
    assert nodes[4][:2] == ("s2", 0) and nodes[4][2] in ("running", "interrupted"), nodes
    assert ws.run_row(run_id)["status"] == "interrupted"
    runs = ws.cli("runs")
    assert runs.returncode == 0
    line = next(line for line in runs.stdout.splitlines() if line.startswith(run_id))
    assert "interrupted" in line and "crash-chain" in line
    assert ws.counts() == Counter({"s1": 1, "s2": 1})  # show and runs ran nothing


def test_a_failed_run_can_be_resumed_after_fixing_the_cause(ws: Workspace) -> None:
    broken = ws.crash_dir / "broken"
    broken.touch()
    events_file = ws.root / "events.jsonl"
    first = ws.cli("run", str(ws.write(flaky_doc())), "--events", str(events_file), "--quiet")
    assert first.returncode == 1, first.stderr
    assert "broken" in first.stderr
    run_id = run_id_from_events(events_file)
    assert run_id is not None
    row = ws.run_row(run_id)
    assert row["status"] == "failed" and "broken" in (row["error"] or "")
    assert ws.counts() == Counter({"s1": 1, "flaky": 1})

    broken.unlink()
    resumed = ws.cli("resume", run_id, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {"out": 103}
    assert ws.counts() == Counter({"s1": 1, "flaky": 2, "s3": 1})
    seqs = ws.seqs(run_id)
    assert seqs == list(range(1, len(seqs) + 1))
    types = ws.event_types(run_id)
    assert types.count("run.started") == 1 and types.count("run.failed") == 1 and types[-1] == "run.completed"
    row = ws.run_row(run_id)
    assert (
        row["status"] == "completed" and row["result"] == {"out": 103} and row["error"] is None and row["resumed"] == 1
    )
    ws.integrity_ok()


# --------------------------------------------------------------------------- the CLI around runs


def test_resume_of_an_unknown_run_exits_2_with_a_clear_message(ws: Workspace) -> None:
    proc = ws.cli("resume", "no-such-run")
    assert proc.returncode == 2
    assert "no run with id 'no-such-run'" in proc.stderr
    assert proc.stdout == ""


def test_resume_of_a_completed_run_exits_2_and_runs_nothing(ws: Workspace) -> None:
    events_file = ws.root / "events.jsonl"
    done = ws.cli("run", str(ws.write(chain_doc())), "--events", str(events_file), "--quiet")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"out": 14}
    run_id = run_id_from_events(events_file)
    assert run_id is not None
    before = ws.seqs(run_id)

    proc = ws.cli("resume", run_id)
    assert proc.returncode == 2
    assert "completed" in proc.stderr and "only interrupted or failed" in proc.stderr
    assert ws.counts() == Counter(CHAIN_LABELS)
    assert ws.seqs(run_id) == before
    assert ws.run_row(run_id)["resumed"] == 0

    runs = ws.cli("runs", "--limit", "5")
    assert runs.returncode == 0
    listed = [line for line in runs.stdout.splitlines() if line.startswith(run_id)]
    assert len(listed) == 1 and "completed" in listed[0] and "crash-chain" in listed[0]

    show = ws.cli("show", run_id)
    assert show.returncode == 0, show.stderr
    lines = show.stdout.splitlines()
    assert run_id in lines[0] and "crash-chain" in lines[0] and "completed" in lines[0]
    assert [(n, s) for n, _e, s in timeline(show.stdout)] == [
        ("start", "succeeded"),
        ("s1", "succeeded"),
        ("gate", "succeeded"),
        ("never", "skipped"),
        ("s2", "succeeded"),
        ("s3", "succeeded"),
        ("s4", "succeeded"),
        ("out", "succeeded"),
    ]
    assert lines[-1] == 'result: {"out": 14}'


def test_show_of_an_unknown_run_exits_2(ws: Workspace) -> None:
    proc = ws.cli("show", "no-such-run")
    assert proc.returncode == 2
    assert "no run with id 'no-such-run'" in proc.stderr


def test_run_with_db_writes_to_that_store_only(ws: Workspace, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'elsewhere' / 'other.db'}"
    done = ws.cli("run", str(ws.write(chain_doc())), "--db", other, "--quiet")
    assert done.returncode == 0, done.stderr
    there = ws.cli("runs", "--db", other)
    here = ws.cli("runs")
    assert there.returncode == here.returncode == 0
    assert "crash-chain" in there.stdout
    assert "crash-chain" not in here.stdout
