"""Queue mode benchmark (issue 16): two real workers over a real PostgreSQL, one JSON line per figure.

Scenarios and targets, 2 workers on this machine, test settings (heartbeat 1 s,
stalled after 5 s, sweep every 1 s):

* ``failover``: ``kill -9`` of the worker holding a run -> the run completed on
  the other worker (≤ 15 s);
* ``cancel_running``: cancel (from this process) of a run executing on a worker
  -> its ``run.cancelled`` committed, p95 (≤ 1 s); ``cancel_queued``: cancel of a
  run no worker has taken -> ``run.cancelled`` committed (≤ 0.5 s);
* ``submit_to_started``: ``POST /runs`` on a queue-mode ``serve`` -> the
  worker's ``run.started``, p50 (≤ 100 ms);
* ``sse_latency``: 100 runs emitting 1,000 events/s in total, one SSE client
  each on the API: event ``ts`` (stamped by the worker just before its batch
  is committed, so this is an upper bound of commit -> client) to arrival at
  the client, p50 (≤ 20 ms) and p95 (≤ 100 ms);
* ``burst_500``: 500 concurrent runs of a chain of 5 × 20 ms tool nodes: wall
  time from the first submit to the last completion (≤ 3 s) and the most
  PostgreSQL connections the two workers held at once (≤ 8), sampled from
  ``pg_stat_activity`` every 20 ms (workers connect with
  ``application_name=studio-worker``).

How: a throwaway PostgreSQL cluster (``initdb``/``pg_ctl``, as the test suite
does: tests/integration/pg.py), ``python -m engine migrate``, real
``python -m engine worker`` and ``python -m engine serve`` processes. Clocks are
one machine's, so timestamps written by a worker compare with this process's.

Run: ``python bench/queue_bench.py [--only NAME,...] [--runs N]``. Needs the
PostgreSQL server binaries (Debian's ``postgresql`` package) and the ``chroma`` CLI (the
workers refuse to start without a shared long-term memory: a Chroma server is started too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.chroma_server import running_chroma  # noqa: E402
from tests.integration.pg import _fresh_postgres_database, _pg_bin, _Server  # noqa: E402

FAST = {"QUEUE_HEARTBEAT_S": "1", "QUEUE_STALLED_S": "5", "QUEUE_SWEEP_S": "1", "OFFLINE_TOKEN_DELAY_S": "0"}
PLUGIN = "queue_bench_tools"
TOOLS = '''
"""Tools of the queue benchmark: sleep a while; wait while a file exists."""
import asyncio
import os

from tools import tool


@tool(name="qb_sleep", timeout_s=300, replace=True)
async def qb_sleep(ms: int, value: int) -> int:
    """Sleep ms milliseconds, return value + 1."""
    await asyncio.sleep(ms / 1000)
    return value + 1


@tool(name="qb_hold", timeout_s=300, replace=True)
async def qb_hold(path: str, value: int) -> int:
    """Wait while the file at path exists, return value + 1."""
    while os.path.exists(path):
        await asyncio.sleep(0.01)
    return value + 1


@tool(name="qb_gate", timeout_s=300, replace=True)
async def qb_gate(path: str) -> int:
    """Wait until the file at path exists."""
    while not os.path.exists(path):
        await asyncio.sleep(0.005)
    return 0
'''


def chain(name: str, nodes: int, ms: int, *, first: dict[str, Any] | None = None) -> dict[str, Any]:
    """start -> [first] -> n0 .. n{nodes-1} (each sleeps ms) -> out."""
    steps = [
        {"id": f"n{i}", "type": "tool", "config": {"tool": "qb_sleep", "args": {"ms": ms, "value": i}}}
        for i in range(nodes)
    ]
    head = [first] if first else []
    ids = ["start", *(n["id"] for n in head), *(n["id"] for n in steps), "out"]
    return {
        "format": "workflow/v1",
        "name": name,
        "inputs": {"path": {"type": "string", "default": ""}},
        "nodes": [
            {"id": "start", "type": "input"},
            *head,
            *steps,
            {"id": "out", "type": "output", "config": {"value": f"{{{{ nodes.{ids[-2]}.output }}}}"}},
        ],
        "edges": [{"source": a, "target": b} for a, b in zip(ids, ids[1:], strict=False)],
    }


HOLD = {"id": "hold", "type": "tool", "config": {"tool": "qb_hold", "args": {"path": "{{ inputs.path }}", "value": 0}}}
GATE = {"id": "gate", "type": "tool", "config": {"tool": "qb_gate", "args": {"path": "{{ inputs.path }}"}}}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


class Bench:
    """The database, the environment, the processes."""

    def __init__(self, root: Path, url: str, chroma: tuple[str, int]):
        self.root = root
        self.url = url
        plugins = root / "plugins"
        plugins.mkdir()
        (plugins / f"{PLUGIN}.py").write_text(textwrap.dedent(TOOLS), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "QUEUE_", "MAX_AUTO", "API_"))}
        env.update(
            FAST,
            EXECUTION_MODE="queue",
            DATABASE_URL=url,
            DATA_DIR=str(root / "data"),
            TOOLS_MODULES=PLUGIN,
            CHROMA_HOST=chroma[0],  # a worker refuses to start without a shared long-term memory (engine.queue.shared)
            CHROMA_PORT=str(chroma[1]),
            PYTHONPATH=os.pathsep.join(p for p in (str(plugins), str(REPO), env.get("PYTHONPATH", "")) if p),
        )
        self.env = env
        self.procs: list[subprocess.Popen[bytes]] = []
        self.engine = create_engine(url, pool_size=4)
        sys.path.insert(0, str(plugins))
        os.environ.update(EXECUTION_MODE="queue", TOOLS_MODULES=PLUGIN)
        __import__(PLUGIN)

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.root / f"proc{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", *args], cwd=REPO, env={**self.env, **(env or {})}, stdout=log, stderr=log
        )
        proc.log = self.root / f"proc{len(self.procs)}.log"  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def workers(self, concurrency: int) -> list[subprocess.Popen[bytes]]:
        url = self.url + ("&" if "?" in self.url else "?") + "application_name=studio-worker"
        procs = [self.start("worker", "--concurrency", str(concurrency), env={"DATABASE_URL": url}) for _ in range(2)]
        for proc in procs:
            until(functools.partial(_ready, proc), 60, "a worker to be ready")
        return procs

    def stop(self, procs: list[subprocess.Popen[bytes]]) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def event_ts(self, run_id: str, kind: str) -> float | None:
        sql = "SELECT ts FROM events WHERE run_id = :r AND type = :k ORDER BY seq LIMIT 1"
        return self.scalar(sql, r=run_id, k=kind)

    def all_started(self, ids: list[str]) -> bool:
        return all(self.event_ts(run_id, "node.started") for run_id in ids)

    def finished(self, run_id: str) -> bool:
        return self.status(run_id) == "completed"

    def status(self, run_id: str) -> str:
        return str(self.scalar("SELECT status FROM runs WHERE run_id = :r", r=run_id))


def _ready(proc: subprocess.Popen[bytes]) -> bool:
    return b"ready" in Path(proc.log).read_bytes()  # type: ignore[attr-defined]


def until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise SystemExit(f"timed out waiting for {what}")


def submit_to_started(bench: Bench, runs: int) -> None:
    serve = bench.start("serve", "--port", "8799")
    until(lambda: _health("http://127.0.0.1:8799"), 60, "serve")
    doc = chain("qb started", 1, 1)
    took = []
    with httpx.Client(base_url="http://127.0.0.1:8799", timeout=30) as client:
        for _ in range(runs):
            began = time.time()
            run_id = client.post("/runs", json={"workflow": doc, "inputs": {}}).json()["run_id"]
            started = until(functools.partial(bench.event_ts, run_id, "run.started"), 30, "run.started")
            took.append((started - began) * 1000)
            until(functools.partial(bench.finished, run_id), 30, "completion")
    bench.stop([serve])
    emit(
        scenario="submit_to_started",
        runs=runs,
        p50_ms=round(statistics.median(took), 1),
        max_ms=round(max(took), 1),
        target_p50_ms=100,
    )


def _health(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def cancels(bench: Bench, runtime: Any, runs: int) -> None:
    """Concurrency 2 per worker: four runs held running, a fifth waits queued."""
    running_ms, queued_ms = [], []
    doc = chain("qb cancel", 1, 1, first=HOLD)
    for _ in range(runs):
        hold = bench.root / "cancel.hold"
        hold.touch()
        held = [runtime.submit(doc, {"path": str(hold)}) for _ in range(4)]
        until(functools.partial(bench.all_started, held), 30, "four runs holding")
        waiting = runtime.submit(doc, {"path": str(hold)})
        time.sleep(0.05)
        assert bench.status(waiting) == "queued"
        began = time.time()
        runtime.cancel(waiting)
        queued_ms.append((_cancelled_at(bench, waiting) - began) * 1000)
        victim = held[0]
        began = time.time()
        runtime.cancel(victim)
        running_ms.append((_cancelled_at(bench, victim) - began) * 1000)
        hold.unlink()
        for run_id in held[1:]:
            until(functools.partial(bench.finished, run_id), 30, "completion")
    emit(
        scenario="cancel_running",
        runs=runs,
        p50_ms=round(statistics.median(running_ms), 1),
        p95_ms=round(pct(running_ms, 95), 1),
        target_p95_ms=1000,
    )
    emit(
        scenario="cancel_queued",
        runs=runs,
        p50_ms=round(statistics.median(queued_ms), 1),
        max_ms=round(max(queued_ms), 1),
        target_ms=500,
    )


def _cancelled_at(bench: Bench, run_id: str) -> float:
    return float(until(lambda: bench.event_ts(run_id, "run.cancelled"), 10, "run.cancelled"))


def failover(bench: Bench, runtime: Any, workers: list[subprocess.Popen[bytes]]) -> list[subprocess.Popen[bytes]]:
    hold = bench.root / "failover.hold"
    hold.touch()
    run_id = runtime.submit(chain("qb failover", 2, 20, first=HOLD), {"path": str(hold)})
    until(lambda: bench.event_ts(run_id, "node.started"), 30, "the run to hold")
    owner = str(bench.scalar("SELECT owner FROM runs WHERE run_id = :r", r=run_id))
    victim = next(w for w in workers if w.pid == int(owner.split(":")[1]))
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    killed = time.monotonic()
    hold.unlink()
    until(lambda: bench.status(run_id) == "completed", 60, "the run to complete on the other worker")
    took = time.monotonic() - killed
    emit(scenario="failover", seconds=round(took, 2), target_s=15, settings="heartbeat 1 s, stalled 5 s, sweep 1 s")
    return [w for w in workers if w is not victim]


def sse_latency(bench: Bench, runtime: Any, runs: int, rate: int) -> None:
    """``runs`` runs each emitting rate/runs events a second (2 per node), one SSE client each."""
    per_run = rate / runs
    node_ms = int(2000 / per_run)
    nodes = max(2, int(3000 / node_ms))
    serve = bench.start("serve", "--port", "8798")
    until(lambda: _health("http://127.0.0.1:8798"), 60, "serve")
    gate = bench.root / "sse.gate"
    doc = chain("qb sse", nodes, node_ms, first=GATE)
    ids = [runtime.submit(doc, {"path": str(gate)}) for _ in range(runs)]
    until(lambda: all(bench.event_ts(r, "node.started") for r in ids), 60, "every run at its gate")
    latencies: list[float] = []
    opened: list[float] = []

    async def client(http: httpx.AsyncClient, run_id: str, ready: asyncio.Event) -> None:
        chunks: list[tuple[float, bytes]] = []
        async with http.stream("GET", f"/runs/{run_id}/events", headers={"accept": "text/event-stream"}) as resp:
            ready.set()
            async for chunk in resp.aiter_bytes():
                chunks.append((time.time(), chunk))
        buffer = b""
        for arrived, chunk in chunks:
            buffer += chunk
            while b"\n\n" in buffer:
                frame, buffer = buffer.split(b"\n\n", 1)
                for line in frame.split(b"\n"):
                    if line.startswith(b"data: "):
                        ts = float(json.loads(line[6:])["ts"])
                        if ts >= opened[0]:
                            latencies.append((arrived - ts) * 1000)

    async def main() -> float:
        limits = httpx.Limits(max_connections=runs + 10)
        async with httpx.AsyncClient(base_url="http://127.0.0.1:8798", timeout=120, limits=limits) as http:
            readies = [asyncio.Event() for _ in ids]
            tasks = [asyncio.create_task(client(http, r, e)) for r, e in zip(ids, readies, strict=True)]
            await asyncio.gather(*(e.wait() for e in readies))
            await asyncio.sleep(0.5)
            opened.append(time.time())
            gate.touch()
            began = time.monotonic()
            await asyncio.gather(*tasks)
            return time.monotonic() - began

    stop = threading.Event()
    committed: list[float] = []
    watcher = threading.Thread(target=_watch_commits, args=(bench.url, set(ids), opened, committed, stop), daemon=True)
    watcher.start()
    wall = asyncio.run(main())
    stop.set()
    watcher.join(5)
    bench.stop([serve])
    emit(
        scenario="sse_latency_commit",
        note="event ts -> committed and notified, seen by a LISTEN connection in the bench process",
        p50_ms=round(statistics.median(committed), 1),
        p95_ms=round(pct(committed, 95), 1),
    )
    emit(
        scenario="sse_latency",
        runs=runs,
        events=len(latencies),
        events_per_s=round(len(latencies) / wall),
        p50_ms=round(statistics.median(latencies), 1),
        p95_ms=round(pct(latencies, 95), 1),
        target_p50_ms=20,
        target_p95_ms=100,
    )


def _watch_commits(url: str, ids: set[str], opened: list[float], out: list[float], stop: threading.Event) -> None:
    """For each NOTIFY of a followed run, read its new events and note ``now - ts`` (the worker's share)."""
    import psycopg

    from engine.queue.jobs import conninfo
    from engine.store.writer import EVENTS_CHANNEL

    cursor: dict[str, int] = {}
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(f"LISTEN {EVENTS_CHANNEL}")
        while not stop.is_set():
            notes = list(conn.notifies(timeout=0.002))  # the connection is busy while the generator runs
            for run_id in dict.fromkeys(note.payload for note in notes):
                if run_id not in ids:
                    continue
                rows = conn.execute(
                    "SELECT seq, ts FROM events WHERE run_id = %s AND seq > %s ORDER BY seq",
                    (run_id, cursor.get(run_id, 0)),
                ).fetchall()
                now = time.time()
                for seq, ts in rows:
                    cursor[run_id] = seq
                    if opened and ts >= opened[0]:
                        out.append((now - ts) * 1000)


def burst(bench: Bench, runtime: Any, runs: int) -> None:
    doc = chain("qb burst", 5, 20)
    peak = [0]
    stop = threading.Event()

    seen: list[str] = []  # at the peak: what each held connection last ran

    def sample() -> None:
        sql = text("SELECT left(query, 48) FROM pg_stat_activity WHERE application_name = 'studio-worker' ORDER BY 1")
        while not stop.is_set():
            with bench.engine.connect() as conn:
                held = [str(q) for q in conn.execute(sql).scalars()]
            if len(held) > peak[0]:
                peak[0], seen[:] = len(held), held
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.monotonic()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: runtime.submit(doc, {}), range(runs)))
    submitted = time.monotonic() - began
    until(
        lambda: (
            bench.scalar("SELECT count(*) FROM runs WHERE status = 'completed' AND run_id = ANY(:ids)", ids=ids) == runs
        ),
        300,
        "every run of the burst",
    )
    wall = time.monotonic() - began
    stop.set()
    sampler.join()
    emit(
        scenario="burst_500",
        runs=runs,
        wall_s=round(wall, 2),
        submit_s=round(submitted, 2),
        peak_worker_connections=peak[0],
        at_peak=seen,
        target_wall_s=3,
        target_connections=8,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="submit,cancel,failover,sse,burst")
    parser.add_argument("--runs", type=int, default=20, help="runs for the latency figures (default 20)")
    parser.add_argument("--sse-runs", type=int, default=100)
    parser.add_argument("--rate", type=int, default=1000, help="events/s in total for sse (default 1000)")
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--burst-concurrency", type=int, default=250, help="per worker for sse and burst")
    args = parser.parse_args()
    only = set(args.only.split(","))
    bin_dir = _pg_bin()
    if bin_dir is None:
        raise SystemExit("no PostgreSQL server binaries: apt-get install postgresql")
    server = _Server(bin_dir)
    root = Path(tempfile.mkdtemp(prefix="queue-bench-"))
    workers: list[subprocess.Popen[bytes]] = []
    bench: Bench | None = None
    runtime: Any = None
    chroma = contextlib.ExitStack()
    try:
        url = _fresh_postgres_database(server.start())
        bench = Bench(root, url, chroma.enter_context(running_chroma(root / "chroma")))
        done = subprocess.run(
            [sys.executable, "-m", "engine", "migrate"], cwd=REPO, env=bench.env, capture_output=True, check=False
        )
        if done.returncode:
            raise SystemExit(done.stderr.decode())
        from engine.queue import open_runtime

        runtime = open_runtime(url)
        if only & {"submit", "cancel", "failover"}:
            workers = bench.workers(2)
            if "submit" in only:
                submit_to_started(bench, args.runs)
            if "cancel" in only:
                cancels(bench, runtime, args.runs)
            if "failover" in only:
                workers = failover(bench, runtime, workers)
            bench.stop(workers)
        if only & {"sse", "burst"}:
            workers = bench.workers(args.burst_concurrency)
            if "sse" in only:
                sse_latency(bench, runtime, args.sse_runs, args.rate)
            if "burst" in only:
                burst(bench, runtime, args.burst)
            bench.stop(workers)
    finally:
        if runtime is not None:
            runtime.shutdown()
        if bench is not None:
            bench.stop(bench.procs)
            bench.engine.dispose()
        chroma.close()
        server.stop()


if __name__ == "__main__":
    main()
