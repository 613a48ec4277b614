"""Queue mode (issue 16) on a real PostgreSQL server and real Procrastinate worker processes.

Every test gets a fresh database on the session's throwaway server, runs
``python -m engine migrate`` on it, and starts real ``python -m engine worker``
processes (fast test settings: heartbeat 1 s, stalled after 3 s, sweep every
0.5 s). The workflows' tool nodes (tests/integration/test_resume.py's plugin)
count their executions in a file and wait while a hold file exists, so a test
knows which node a worker is in when it kills, pauses or cancels it.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from engine.errors import InputsInvalid
from tests.integration.pg import _fresh_postgres_database
from tests.integration.test_resume import PLUGIN, TOOLS_SOURCE, chain_doc

pytest_plugins = ["tests.integration.pg", "tests.integration.chroma_server"]

REPO = Path(__file__).resolve().parents[2]
FAST = {"QUEUE_HEARTBEAT_S": "1", "QUEUE_STALLED_S": "3", "QUEUE_SWEEP_S": "0.5", "OFFLINE_TOKEN_DELAY_S": "0"}


class Queue:
    """One test's database, environment, processes and side files."""

    def __init__(self, tmp_path: Path, url: str, chroma: tuple[str, int]):
        self.url = url
        self.root = tmp_path
        self.crash_dir = tmp_path / "crash"
        self.crash_dir.mkdir()
        plugins = tmp_path / "plugins"
        plugins.mkdir()
        (plugins / f"{PLUGIN}.py").write_text(textwrap.dedent(TOOLS_SOURCE), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QUEUE_", "MAX_AUTO"))}
        env.update(
            FAST,
            EXECUTION_MODE="queue",
            DATABASE_URL=url,
            DATA_DIR=str(tmp_path / "data"),
            TOOLS_MODULES=PLUGIN,
            PYTHONPATH=os.pathsep.join(p for p in (str(plugins), str(REPO), env.get("PYTHONPATH", "")) if p),
            ITEST_CRASH_DIR=str(self.crash_dir),
            CHROMA_HOST=chroma[0],  # queue mode keeps long-term memory on a Chroma server (engine.queue.shared)
            CHROMA_PORT=str(chroma[1]),
        )
        self.env = env
        self.procs: list[subprocess.Popen[str]] = []
        self.engine = create_engine(url)

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "engine", *args],
            cwd=REPO,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        log = open(self.root / f"proc{len(self.procs)}.log", "w+", encoding="utf-8")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", *args],
            cwd=REPO,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        proc.log_path = Path(log.name)  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def worker(self, **env: str) -> subprocess.Popen[str]:
        proc = self.start("worker", "--concurrency", "2", **env)
        wait_for(lambda: "ready" in log_of(proc), proc, what="the worker to be ready")
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.engine.dispose()

    # the store, read directly

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]

    def run_row(self, run_id: str) -> dict[str, Any]:
        rows = self.query(
            "SELECT status, result, error, resumed, last_seq, owner, lease_epoch FROM runs WHERE run_id = :r",
            r=run_id,
        )
        keys = ("status", "result", "error", "resumed", "last_seq", "owner", "lease_epoch")
        return dict(zip(keys, rows[0], strict=True)) if rows else {}

    def events(self, run_id: str) -> list[tuple[int, str, str | None, dict[str, Any]]]:
        rows = self.query("SELECT seq, type, node_id, data FROM events WHERE run_id = :r ORDER BY seq", r=run_id)
        return [
            (seq, kind, node, data if isinstance(data, dict) else json.loads(data)) for seq, kind, node, data in rows
        ]

    def jobs(self, run_id: str) -> list[tuple[str, str | None, int]]:
        return self.query(  # type: ignore[return-value]
            "SELECT status::text, queueing_lock, attempts FROM procrastinate_jobs WHERE lock = :r ORDER BY id", r=run_id
        )

    def counts(self) -> Counter[str]:
        path = self.crash_dir / "counter.txt"
        return Counter(path.read_text(encoding="utf-8").split()) if path.exists() else Counter()

    def hold(self, label: str) -> Path:
        path = self.crash_dir / f"{label}.hold"
        path.touch()
        return path


def log_of(proc: subprocess.Popen[str]) -> str:
    return Path(proc.log_path).read_text(encoding="utf-8", errors="replace")  # type: ignore[attr-defined]


def wait_for(
    predicate: Callable[[], Any], proc: subprocess.Popen[str] | None = None, timeout: float = 30.0, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process exited ({proc.returncode}) before {what}:\n{log_of(proc)[-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def q(tmp_path: Path, postgres_url: str, chroma_server: tuple[str, int]) -> Iterator[Queue]:
    queue = Queue(tmp_path, _fresh_postgres_database(postgres_url), chroma_server)
    done = queue.cli("migrate")
    assert done.returncode == 0, done.stderr
    assert "Procrastinate schema: created" in done.stderr
    try:
        yield queue
    finally:
        queue.stop_all()


@pytest.fixture
def runtime(q: Queue, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A QueueRuntime in the test process (what the dashboard holds in queue mode).

    The plugin's tools are registered here too: a submit validates the workflow, tool names included.
    """
    monkeypatch.setenv("EXECUTION_MODE", "queue")
    monkeypatch.setenv("ITEST_CRASH_DIR", str(q.crash_dir))
    monkeypatch.syspath_prepend(str(q.root / "plugins"))
    importlib.import_module(PLUGIN)
    from engine.queue import open_runtime
    from engine.queue.client import QueueRuntime

    opened = open_runtime(q.url)
    assert isinstance(opened, QueueRuntime)
    try:
        yield opened
    finally:
        opened.shutdown()


def _node_completions(events: list[tuple[int, str, str | None, dict[str, Any]]]) -> Counter[str]:
    return Counter(node for _, kind, node, _ in events if kind == "node.completed" and node)


def _assert_log_whole(events: list[tuple[int, str, str | None, dict[str, Any]]]) -> None:
    assert [seq for seq, *_ in events] == list(range(1, len(events) + 1))


# --------------------------------------------------------------------------- modes and migrate


def test_queue_mode_refuses_sqlite_and_bad_modes_in_one_line(q: Queue, tmp_path: Path, postgres_url: str) -> None:
    sqlite = f"sqlite:///{tmp_path / 'other.db'}"
    refused = q.cli("run", "triage_branch", DATABASE_URL=sqlite)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs a PostgreSQL store" in lines[0] and "Traceback" not in refused.stderr
    worker = q.cli("worker", DATABASE_URL=sqlite)
    assert worker.returncode == 2 and "needs a PostgreSQL store" in worker.stderr
    bad = q.cli("run", "triage_branch", EXECUTION_MODE="cluster")
    assert bad.returncode == 2 and "must be 'local' (the default) or 'queue'" in bad.stderr
    bare = _fresh_postgres_database(postgres_url)  # never migrated
    for args in (("worker",), ("run", "triage_branch")):
        unready = q.cli(*args, DATABASE_URL=bare)
        assert unready.returncode == 2 and "run `python -m engine migrate` once first" in unready.stderr
        assert len(unready.stderr.strip().splitlines()) == 1, unready.stderr
    again = q.cli("migrate")  # idempotent
    assert again.returncode == 0 and "Procrastinate schema: present" in again.stderr
    assert q.query("SELECT value FROM studio_meta WHERE key = 'migration:0006_queue'")


# --------------------------------------------------------------------------- submit, cancel queued, run, API


def test_submit_queues_one_locked_job_and_a_queued_run_cancels_without_starting(q: Queue, runtime: Any) -> None:
    doc = chain_doc()
    with pytest.raises(InputsInvalid):
        runtime.submit(doc, {"x": "not a number"})
    assert q.query("SELECT count(*) FROM runs") == [(0,)]
    run_id = "ab" * 16
    assert runtime.submit(doc, {"x": 1}, run_id=run_id) == run_id
    assert runtime.submit(doc, {"x": 1}, run_id=run_id) == run_id  # idempotent: nothing more queued
    assert q.run_row(run_id)["status"] == "queued"
    assert q.jobs(run_id) == [("todo", run_id, 0)]
    assert runtime.status(run_id).status == "queued" and not runtime.status(run_id).finished
    assert runtime.reader.run(run_id).workflow_version == 1
    assert runtime.cancel(run_id) is True
    assert q.run_row(run_id)["status"] == "cancelled"
    assert [kind for _, kind, _, _ in q.events(run_id)] == ["run.started", "run.cancelled"]
    assert q.jobs(run_id)[0][0] == "cancelled"
    worker = q.worker()
    other = runtime.submit(doc, {"x": 5})
    info = runtime.wait(other, timeout=30)
    assert info.status == "completed" and info.result == {"out": 9}, info
    assert q.run_row(run_id)["status"] == "cancelled" and q.counts()["s1"] == 1  # the cancelled one never ran
    assert f"run {other} claimed" in log_of(worker) and run_id not in log_of(worker)
    path = q.root / "chain.json"
    path.write_text(json.dumps(chain_doc()), encoding="utf-8")
    ran = q.cli("run", str(path), "--input", "x=7", "--quiet")  # the CLI queues and follows the run
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {"out": 11}
    listed = q.cli("runs")
    assert listed.returncode == 0 and run_id in listed.stdout and "cancelled" in listed.stdout


def test_api_in_queue_mode_submits_reads_and_cancels_across_processes(q: Queue) -> None:
    server = q.start("serve", "--port", "0")
    announce = wait_for(lambda: "API on http://" in log_of(server) and log_of(server), server, what="the API")
    base = announce.split("API on ", 1)[1].split(" ", 1)[0].rstrip(";")
    with httpx.Client(base_url=base, timeout=10) as client:
        first = client.post("/runs", json={"workflow": chain_doc(), "inputs": {"x": 1}}).json()["run_id"]
        assert client.get(f"/runs/{first}").json()["status"] == "queued"
        assert [r["status"] for r in client.get("/runs", params={"status": "queued"}).json()] == ["queued"]
        seen: list[int] = []
        with client.stream("GET", f"/runs/{first}/events", headers={"accept": "text/event-stream"}) as stream:
            q.worker()  # the stream stays open while the run waits for a worker, then follows it to its end
            for line in stream.iter_lines():
                if line.startswith("id:"):
                    seen.append(int(line[3:]))
        assert seen == list(range(1, len(seen) + 1)) and len(seen) > 5
        assert client.get(f"/runs/{first}").json()["status"] == "completed"
    hold = q.hold("s2")
    with httpx.Client(base_url=base, timeout=10) as client:
        started = client.post("/runs", json={"workflow": chain_doc(), "inputs": {"x": 2}})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        wait_for(lambda: q.counts()["s2"] >= 2, what="s2 to start on the worker")  # (the first run's was 1)
        assert client.get(f"/runs/{run_id}").json()["status"] == "running"
        began = time.monotonic()
        cancel = client.post(f"/runs/{run_id}/cancel")
        assert cancel.status_code == 202, cancel.text  # no 409 "running in another process" in queue mode
        wait_for(lambda: client.get(f"/runs/{run_id}").json()["status"] == "cancelled", timeout=15, what="cancelled")
        took = time.monotonic() - began
        events = client.get(f"/runs/{run_id}/events").json()
        assert events[-1]["type"] == "run.cancelled" and [e["seq"] for e in events] == list(range(1, len(events) + 1))
        hold.unlink()
        done = client.post("/runs", json={"workflow": chain_doc(), "inputs": {"x": 3}}).json()["run_id"]
        wait_for(lambda: client.get(f"/runs/{done}").json()["status"] == "completed", timeout=30, what="completed")
        assert client.get(f"/runs/{done}").json()["result"] == {"out": 7}
    assert took < 10, f"cancel took {took:.1f} s"


# --------------------------------------------------------------------------- failover and the fence


def _holder(q: Queue, run_id: str, workers: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
    owner = wait_for(lambda: q.run_row(run_id).get("owner"), what="the run's owner")
    pid = int(owner.split(":")[1])
    return next(w for w in workers if w.pid == pid)


def test_a_killed_workers_run_continues_on_the_other_without_repeating_finished_nodes(q: Queue, runtime: Any) -> None:
    workers = [q.worker(), q.worker()]
    hold = q.hold("s3")
    run_id = runtime.submit(chain_doc(), {"x": 10})
    wait_for(lambda: q.counts()["s3"] >= 1, what="s3 to start")
    wait_for(lambda: ("node.started", "s3") in {(k, n) for _, k, n, _ in q.events(run_id)}, what="s3 committed")
    victim = _holder(q, run_id, workers)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    killed_at = time.monotonic()
    hold.unlink()
    info = runtime.wait(run_id, timeout=45)
    took = time.monotonic() - killed_at
    assert info.status == "completed" and info.result == {"out": 14}, info
    events = q.events(run_id)
    _assert_log_whole(events)
    assert all(n == 1 for n in _node_completions(events).values()), _node_completions(events)
    counts = q.counts()
    assert counts["s1"] == counts["s2"] == counts["s4"] == 1 and counts["s3"] == 2, counts  # only s3 ran again
    notes = [data for _, kind, _, data in events if kind == "log" and data.get("interrupted")]
    assert len(notes) == 1 and f"pid {victim.pid}" in notes[0]["message"], notes
    restarted = [n for _, kind, n, data in events if kind == "node.started" and data.get("restarted")]
    assert restarted == ["s3"]
    row = q.run_row(run_id)
    assert row["resumed"] == 1 and row["lease_epoch"] == 3  # claim, sweep, claim
    assert took < 30, f"failover took {took:.1f} s"


def test_a_paused_worker_commits_nothing_after_losing_its_lease(q: Queue, runtime: Any) -> None:
    workers = [q.worker(MAX_AUTO_RESUMES="0"), q.worker(MAX_AUTO_RESUMES="0")]
    hold = q.hold("s2")
    run_id = runtime.submit(chain_doc(), {"x": 1})
    wait_for(lambda: q.counts()["s2"] >= 1, what="s2 to start")
    wait_for(lambda: ("node.started", "s2") in {(k, n) for _, k, n, _ in q.events(run_id)}, what="s2 committed")
    paused = _holder(q, run_id, workers)
    os.kill(paused.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: q.run_row(run_id)["status"] == "interrupted", timeout=30, what="the sweep")
        frozen = q.events(run_id)
        assert frozen[-1][1] == "log" and frozen[-1][3].get("interrupted")
        assert "resume it by hand" in q.run_row(run_id)["error"]
        hold.unlink()
    finally:
        os.kill(paused.pid, signal.SIGCONT)
    wait_for(lambda: "lease was taken over" in log_of(paused), paused, timeout=20, what="the paused worker to try")
    time.sleep(1.0)
    assert q.events(run_id) == frozen  # not one event of the paused worker landed
    assert q.run_row(run_id)["status"] == "interrupted"
    # (s3 may have begun on the paused worker before its first refused commit stopped it: a side effect
    # of work in flight, documented; none of it reached the store)
    assert q.counts()["s2"] == 1
    runtime.resume(run_id)  # by hand, once the automatic budget (0 here) is spent
    info = runtime.wait(run_id, timeout=30)
    assert info.status == "completed" and info.result == {"out": 5}, info
    events = q.events(run_id)
    _assert_log_whole(events)
    assert all(n == 1 for n in _node_completions(events).values()), _node_completions(events)
    assert q.counts()["s1"] == 1 and q.counts()["s2"] == 2


def test_a_run_handed_back_to_its_paused_worker_runs_once_and_its_job_closes_once(q: Queue, runtime: Any) -> None:
    """Paused past its heartbeat, a worker's run is swept and queued again; the other worker is busy, so
    the paused one, once awake, fetches the same run while its earlier execution still lives there."""
    busy = q.start("worker", "--concurrency", "1")
    wait_for(lambda: "ready" in log_of(busy), busy, what="the busy worker to be ready")
    hold = q.hold("s2")
    other = runtime.submit(chain_doc(), {"x": 100})
    wait_for(lambda: q.counts()["s2"] >= 1, busy, what="the busy worker's run in s2")
    paused = q.worker()  # concurrency 2: one slot stays free for the run it will be handed back
    run_id = runtime.submit(chain_doc(), {"x": 1})
    wait_for(lambda: q.counts()["s2"] >= 2, paused, what="the run in s2")
    wait_for(lambda: ("node.started", "s2") in {(k, n) for _, k, n, _ in q.events(run_id)}, what="s2 committed")
    assert q.run_row(run_id)["owner"].split(":")[1] == str(paused.pid)
    os.kill(paused.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: q.run_row(run_id)["status"] == "queued", timeout=30, what="the sweep to queue it again")
    finally:
        os.kill(paused.pid, signal.SIGCONT)
    claimed_again = f"run {run_id} claimed (lease 3)"  # claim (1), sweep (2), claim again (3)
    wait_for(lambda: claimed_again in log_of(paused), paused, timeout=30, what="the paused worker to fetch it again")
    wait_for(lambda: q.counts()["s2"] >= 3, paused, timeout=30, what="the run back in s2")
    time.sleep(1.0)  # the earlier execution has ended and tried to close its job: not the one now running
    assert q.jobs(run_id)[0][0] == "doing", (q.jobs(run_id), log_of(paused)[-2000:])
    hold.unlink()
    info = runtime.wait(run_id, timeout=45)
    assert info.status == "completed" and info.result == {"out": 5}, (info, log_of(paused)[-3000:])
    assert runtime.wait(other, timeout=30).status == "completed"
    events = q.events(run_id)
    _assert_log_whole(events)
    assert all(n == 1 for n in _node_completions(events).values()), _node_completions(events)
    rows = q.query("SELECT node_id, execution, status FROM node_executions WHERE run_id = :r", r=run_id)
    assert all(status != "running" for *_, status in rows), rows
    assert {(n, e, st) for n, e, st in rows} >= {(f"s{i}", 0, "succeeded") for i in range(1, 5)}, rows
    wait_for(lambda: q.jobs(run_id)[0][0] == "succeeded", timeout=15, what="the job to close")
    assert q.run_row(run_id)["owner"].split(":")[1] == str(paused.pid)


def test_the_sweep_never_marks_a_finished_run_and_requeues_the_others(q: Queue, runtime: Any) -> None:
    """Jobs held by a dead worker (registered, then silent for an hour), swept by the real sweep in-process."""
    from engine.queue.worker import QueueWorker, WorkerSettings

    finished, unclaimed, running = (runtime.submit(chain_doc(), {"x": x}) for x in (1, 2, 3))
    with q.engine.begin() as conn:
        dead = conn.execute(text("SELECT worker_id FROM procrastinate_register_worker_v1()")).scalar()
        conn.execute(text("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'"))
        for _ in range(3):
            conn.execute(text("SELECT procrastinate_fetch_job_v2(ARRAY['runs'], :w)"), {"w": dead})
        # what a worker leaves when killed between the run's last commit and closing its job, or mid-run
        conn.execute(text("UPDATE runs SET status = 'completed', last_seq = 0 WHERE run_id = :r"), {"r": finished})
        conn.execute(
            text("UPDATE runs SET status = 'running', owner = 'gone-host:4242:1', lease_epoch = 1 WHERE run_id = :r"),
            {"r": running},
        )
    worker = QueueWorker(q.url, WorkerSettings(stalled_s=3))

    async def sweep() -> list[str]:
        async with worker.app.open_async():
            return await worker.sweep()

    try:
        handled = asyncio.run(sweep())
    finally:
        worker.store.close()
    assert sorted(handled) == sorted([unclaimed, running])
    assert q.run_row(finished)["status"] == "completed" and q.events(finished) == []  # never "crashed"
    assert q.jobs(finished)[0][0] == "succeeded"
    assert q.run_row(unclaimed)["status"] == "queued" and q.events(unclaimed) == []
    row = q.run_row(running)
    assert row["status"] == "queued" and row["lease_epoch"] == 2
    [(seq, kind, _, data)] = q.events(running)
    assert (seq, kind) == (1, "log") and data["interrupted"] and "gone-host pid 4242" in data["message"]
    assert [job[0] for job in q.jobs(unclaimed) + q.jobs(running)] == ["todo", "todo"]
    assert [job[2] for job in q.jobs(running)] == [1]  # one automatic resume counted


def test_cancel_reaches_running_runs_on_a_worker_and_a_queued_one_never_starts(q: Queue, runtime: Any) -> None:
    worker = q.worker()  # concurrency 2: two runs run, the third waits
    hold = q.hold("s2")
    ids = [runtime.submit(chain_doc(), {"x": x}) for x in (1, 2, 3)]
    wait_for(lambda: q.counts()["s2"] >= 2, worker, what="two runs in s2")
    statuses = {run_id: q.run_row(run_id)["status"] for run_id in ids}
    assert sorted(statuses.values()) == ["queued", "running", "running"], statuses
    began = time.monotonic()
    assert all(runtime.cancel(run_id) for run_id in ids)
    ended = [runtime.wait(run_id, timeout=15) for run_id in ids]
    took = time.monotonic() - began
    hold.unlink()
    assert [info.status for info in ended] == ["cancelled"] * 3
    for run_id in ids:
        events = q.events(run_id)
        _assert_log_whole(events)
        assert events[-1][1] == "run.cancelled"
    waiting = next(run_id for run_id, status in statuses.items() if status == "queued")
    assert [kind for _, kind, _, _ in q.events(waiting)] == ["run.started", "run.cancelled"]
    time.sleep(1.0)
    assert q.counts()["s1"] == 2 and f"run {waiting} claimed" not in log_of(worker)  # it never started
    assert took < 10, f"cancelling took {took:.1f} s"


def test_a_waiting_reader_wakes_on_the_workers_notify(q: Queue, runtime: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.queue import client

    monkeypatch.setattr(client, "SAFETY_POLL_S", 20.0)  # only a NOTIFY can wake the reader in time
    q.worker()
    hold = q.hold("s2")
    run_id = runtime.submit(chain_doc(), {"x": 1})
    wait_for(lambda: q.counts()["s2"] >= 1, what="s2 to start")
    wait_for(lambda: ("node.started", "s2") in {(k, n) for _, k, n, _ in q.events(run_id)}, what="s2 committed")
    last = q.run_row(run_id)["last_seq"]
    time.sleep(0.3)  # the reader below is waiting when the worker commits
    began = time.monotonic()
    hold.unlink()
    events = runtime.events_since(run_id, last, wait_s=15)
    woke = time.monotonic() - began
    assert events and events[0].seq == last + 1 and events[0].node_id == "s2"
    assert woke < 5, f"the reader woke after {woke:.1f} s"
    assert runtime.wait(run_id, timeout=15).status == "completed"


def test_readers_of_twenty_runs_woken_by_one_batch_cost_one_store_query(q: Queue, runtime: Any) -> None:
    """One committed batch notifying 20 runs: the 20 waiting readers get their events from ONE query, no status."""
    from sqlalchemy import event

    from engine.store.writer import EVENTS_CHANNEL

    ids = [runtime.submit(chain_doc(), {"x": x}) for x in range(20)]  # no worker: they stay queued
    got: dict[str, list[int]] = {}

    def read(run_id: str) -> None:
        got[run_id] = [e.seq for e in runtime.events_since(run_id, 0, wait_s=15)]

    readers = [threading.Thread(target=read, args=(run_id,)) for run_id in ids]
    for reader in readers:
        reader.start()
    wait_for(lambda: len(runtime._cursors) == 20, what="20 readers waiting")
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(runtime.store.engine, "before_cursor_execute", count)
    try:
        with q.engine.begin() as conn:  # what a worker's writer commits: several runs' events, one NOTIFY each
            for run_id in ids:
                for seq in (1, 2, 3):
                    conn.execute(
                        text(
                            "INSERT INTO events (run_id, seq, ts, type, node_id, data)"
                            " VALUES (:r, :s, :t, 'node.started', 'n', CAST('{}' AS json))"
                        ),
                        {"r": run_id, "s": seq, "t": time.time()},
                    )
            notify = text("SELECT pg_notify(:c, r) FROM unnest(CAST(:ids AS text[])) AS r")
            conn.execute(notify, {"c": EVENTS_CHANNEL, "ids": ids})
        for reader in readers:
            reader.join(15)
    finally:
        event.remove(runtime.store.engine, "before_cursor_execute", count)
    assert got == {run_id: [1, 2, 3] for run_id in ids}
    reads = [s for s in statements if " events" in s]
    assert len(reads) == 1, f"{len(reads)} queries of the events for one batch: {reads[:3]}"
    assert not [s for s in statements if "FROM runs" in s], "a wake asked for a run's status"
