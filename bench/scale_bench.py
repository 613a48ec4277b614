"""Scale benchmark (issue 17): how costs grow with the work, as same-run ratios.

One JSON line per scenario. Each figure is the best of ``--repeat`` tries after
a warm-up, and every floor is measured in the same process right before, so the
ratios hold on a loaded machine even when the absolute figures do not.

* ``durable_concurrent_500_runs_5x20ms``: 500 runs of a 5 x 20 ms sleep chain
  submitted at once to a SQLite-backed ``Runtime``, wall / 0.1 s (≤ 2.0); beside it the
  same 500 runs in memory with no store (the engine's share) and the seconds the store takes
  to commit their events with no engine running (the writer's share);
* ``submit_unchanged_200_nodes``: median ``Runtime.submit`` of a saved,
  unchanged 200-node document given as a dict (≤ 0.5 ms);
* ``chain_200_transform``: µs per node with events on (≤ 8) and its ratio to the
  asyncio floor, one ``await asyncio.sleep(0)`` per node (≤ 12);
* ``loop_500_iterations``: µs per iteration (≤ 10);
* ``fan_out_N_sleep_50ms`` for N = 100 / 1,000 / 5,000: wall / 0.05 s
  (≤ 1.05 / 1.10 / 1.30), µs of overhead per branch, and the same for the
  asyncio floor (N tasks each sleeping 50 ms), with the floor's own wall / ideal;
* ``validate_compile_1000_nodes``: ms to validate and compile a 1,000-node
  document with no template compiled before (≤ 100); ms for a new document
  whose template texts were compiled before (an edited one); and ms for the
  same document once its content hash is known;
* ``approval_sweep_200_waiting_runs``: one approval timeout sweep over 200 waiting runs whose logs hold
  1,000 events each (an agent's tokens before its approval), ms, against reading each waiting run's whole
  log as the sweep did before (the ratio is what the sweep saves on every heartbeat).

``submit`` and ``durable`` run on SQLite; ``--postgres`` runs them on PostgreSQL as well (a
throwaway server started like the test suite's, which runs with ``fsync=off``; ``--postgres-url``
uses a running one).

Run: ``python bench/scale_bench.py [--repeat N] [--only NAME] [--postgres | --postgres-url URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.shapes import bench_sleep, chain, fan_out, loop, sleep_chain  # noqa: E402
from bench.shapes import best as _best  # noqa: E402
from bench.shapes import doc as _doc  # noqa: E402
from bench.shapes import sink as _sink  # noqa: E402
from bench.store_bench import _postgres  # noqa: E402
from engine import load_workflow, run_workflow  # noqa: E402
from engine.approvals import due_timeouts  # noqa: E402
from engine.events import Event  # noqa: E402
from engine.executor import replay_from_events  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from engine.templates import clear_compiled_cache  # noqa: E402


def templated_chain(n: int) -> dict[str, Any]:
    """A chain whose nodes read the previous output through a template (the validator's heavier case)."""
    nodes = [{"id": "n0", "type": "transform", "config": {"expression": "1"}}] + [
        {"id": f"n{i}", "type": "transform", "config": {"expression": f"nodes.n{i - 1}.output + 1"}}
        for i in range(1, n)
    ]
    edges = [("start", "n0", None)] + [(f"n{i}", f"n{i + 1}", None) for i in range(n - 1)]
    return _doc("templated-chain", nodes, edges)


async def in_memory(repeat: int, only: str | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    if only in (None, "chain"):

        async def floor_chain() -> None:
            for _ in range(200):
                await asyncio.sleep(0)

        floor = await _best(repeat, floor_chain)
        wf = load_workflow(chain(200))

        async def run_chain() -> None:
            result = await run_workflow(wf, on_event=_sink())
            assert result.status == "completed", result.error

        wall = await _best(repeat, run_chain)
        rows.append(
            {
                "scenario": "chain_200_transform",
                "us_per_node": round(wall / 200 * 1e6, 2),
                "floor_us_per_node": round(floor / 200 * 1e6, 2),
                "over_floor": round(wall / floor, 1),
                "target": "<= 8 us/node, <= 12x floor",
            }
        )

    if only in (None, "loop"):
        wf_loop = load_workflow(loop(500))

        async def run_loop() -> None:
            result = await run_workflow(wf_loop, on_event=_sink())
            assert result.status == "completed" and result.result == {"out": 499}, (result.error, result.result)

        wall = await _best(repeat, run_loop)
        rows.append(
            {
                "scenario": "loop_500_iterations",
                "us_per_iteration": round(wall / 500 * 1e6, 2),
                "us_per_node_execution": round(wall / 1000 * 1e6, 2),  # a transform and a condition an iteration
                "target": 10,
            }
        )

    if only in (None, "fan"):
        targets = {100: 1.05, 1000: 1.10, 5000: 1.30}
        for n, target in targets.items():

            async def floor_fan(n: int = n) -> None:
                await asyncio.gather(*(asyncio.create_task(bench_sleep(0.05)) for _ in range(n)))

            floor = await _best(repeat, floor_fan)
            wf_fan = load_workflow(fan_out(n, 0.05))

            async def run_fan(wf_fan: Any = wf_fan) -> None:
                result = await run_workflow(wf_fan, on_event=_sink())
                assert result.status == "completed", result.error

            wall = await _best(repeat, run_fan)
            rows.append(
                {
                    "scenario": f"fan_out_{n}_sleep_50ms",
                    "wall_over_ideal": round(wall / 0.05, 3),
                    "us_per_branch": round((wall - 0.05) / n * 1e6, 1),
                    "floor_us_per_branch": round((floor - 0.05) / n * 1e6, 1),
                    "floor_over_ideal": round(floor / 0.05, 3),  # N tasks that only sleep: asyncio's own cost
                    "target": target,
                }
            )
    return rows


def validation(repeat: int) -> list[dict[str, Any]]:
    doc = templated_chain(1000)
    first = float("inf")
    for i in range(max(repeat, 1)):
        fresh = copy.deepcopy(doc)
        fresh["name"] = f"validate-{i}"  # a new content hash each time: a real validation
        clear_compiled_cache()  # and no template compiled before: the first validation of new text
        started = time.perf_counter()
        load_workflow(fresh)
        first = min(first, time.perf_counter() - started)
    edited = float("inf")
    for i in range(max(repeat, 1)):
        changed = copy.deepcopy(doc)
        changed["name"] = f"edited-{i}"  # a new hash, every template's text seen before (an edited document)
        started = time.perf_counter()
        load_workflow(changed)
        edited = min(edited, time.perf_counter() - started)
    again = float("inf")
    for _ in range(max(repeat, 1)):
        same = copy.deepcopy(doc)  # an equal document, not the same object
        started = time.perf_counter()
        load_workflow(same)
        again = min(again, time.perf_counter() - started)
    return [
        {
            "scenario": "validate_compile_1000_nodes",
            "ms": round(first * 1e3, 2),
            "templates_known_ms": round(edited * 1e3, 2),
            "same_hash_again_ms": round(again * 1e3, 2),
            "target": 100,
        }
    ]


def durable(repeat: int, only: str | None, database_url: str | None = None) -> list[dict[str, Any]]:
    """The durable scenarios on SQLite (a file in a temporary folder), or on ``database_url``."""
    rows: list[dict[str, Any]] = []
    store = "postgres" if database_url else "sqlite"
    with tempfile.TemporaryDirectory() as folder, Runtime(database_url=database_url, data_dir=folder) as runtime:
        if only in (None, "submit"):
            doc = chain(200, name="submit-200")
            runtime.wait(runtime.submit(doc))  # saved once: later submits are unchanged
            times: list[float] = []
            for _ in range(max(repeat, 5) * 4):
                same = copy.deepcopy(doc)  # an equal document as a page or the API would send it
                started = time.perf_counter()
                run_id = runtime.submit(same)
                times.append(time.perf_counter() - started)
                runtime.wait(run_id)
            runtime.store.flush()
            rows.append(
                {
                    "scenario": "submit_unchanged_200_nodes",
                    "store": store,
                    "median_ms": round(statistics.median(times) * 1e3, 3),
                    "target": 0.5,
                }
            )

        if only in (None, "durable"):
            wf_sleep = sleep_chain(5, 0.02)

            def many(n: int) -> tuple[float, float]:
                started = time.perf_counter()
                ids = [runtime.submit(wf_sleep) for _ in range(n)]
                submitted = time.perf_counter() - started
                infos = [runtime.wait(run_id) for run_id in ids]
                runtime.store.flush()
                assert all(i.status == "completed" for i in infos), [i.error for i in infos if i.error][:1]
                return time.perf_counter() - started, submitted

            many(50)
            best, best_submit = min(many(500) for _ in range(max(1, repeat // 2)))
            engine_only, events = asyncio.run(_engine_only(wf_sleep, 500, max(1, repeat // 2)))
            store_only = _store_only(runtime, events, max(1, repeat // 2))
            rows.append(
                {
                    "scenario": "durable_concurrent_500_runs_5x20ms",
                    "store": store,
                    "wall_over_ideal": round(best / 0.1, 2),
                    "submit_s": round(best_submit, 3),
                    # what stands in the way, in the same run: the same 500 runs with no store (the engine's
                    # share), and the store writing their 11,000 events with no engine running (the writer's)
                    "engine_only_over_ideal": round(engine_only / 0.1, 2),
                    "store_only_s": round(store_only, 3),
                    "target": 2.0,
                }
            )
    return rows


async def _engine_only(document: dict[str, Any], runs: int, repeat: int) -> tuple[float, list[list[Event]]]:
    """The best wall time of ``runs`` runs of ``document`` at once in memory (no store, no Runtime), and one
    try's events."""
    wf = load_workflow(document)
    fastest, kept = float("inf"), []
    for _ in range(repeat + 1):  # the first is a warm-up
        started = time.perf_counter()
        results = await asyncio.gather(*(run_workflow(wf, on_event=_sink()) for _ in range(runs)))
        took = time.perf_counter() - started
        assert all(r.status == "completed" for r in results), [r.error for r in results if r.error][:1]
        if kept:
            fastest = min(fastest, took)
        kept = [r.events for r in results]
    return fastest, kept


def _store_only(runtime: Runtime, logs: list[list[Event]], repeat: int) -> float:
    """The best time for ``runtime``'s store to commit ``logs`` (each a run's events, under new run ids, their
    run rows first) with nothing else running: the writer's share of the durable runs."""
    store = runtime.store
    workflow = store.save_workflow(sleep_chain(5, 0.02))
    fastest = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for log in logs:
            run_id = uuid.uuid4().hex
            store.create_run(run_id=run_id, workflow=workflow, inputs={}, owner="bench")
            for e in log:
                store.append(Event(e.seq, run_id, e.ts, e.type, e.node_id, e.data))
        store.flush()
        fastest = min(fastest, time.perf_counter() - started)
    return fastest


def sweep(repeat: int, runs: int = 200, events: int = 1000) -> list[dict[str, Any]]:
    """The approval timeout sweep over ``runs`` waiting runs of ``events`` events each."""
    gate = _doc(
        "sweep",
        [
            {"id": "ok", "type": "approval", "config": {"message": "go?", "timeout_s": 3600, "on_timeout": "reject"}},
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.ok.output.decision }}"}},
        ],
        [("start", "ok", None), ("ok", "out", "approve")],
    )
    with tempfile.TemporaryDirectory() as folder, Runtime(data_dir=folder, approval_sweep_s=3600) as runtime:
        ids = [runtime.submit(gate) for _ in range(runs)]
        for run_id in ids:
            while runtime.status(run_id).status != "waiting":  # type: ignore[union-attr]
                time.sleep(0.01)
        runtime.store.flush()
        for run_id in ids:  # what an agent streamed before the approval: its log is long, the request one event
            last = runtime.store.get_run(run_id).last_seq  # type: ignore[union-attr]
            for seq in range(last + 1, last + 1 + events):
                runtime.store.append(Event(seq, run_id, time.time(), "llm.token", "ok", {"token": "word "}))
        runtime.store.flush()

        def whole_logs() -> float:
            started = time.perf_counter()
            for run_id in runtime.store.waiting_runs():
                due_timeouts(replay_from_events(runtime.store.events(run_id)), time.time())
            return time.perf_counter() - started

        def one_sweep() -> float:
            started = time.perf_counter()
            assert runtime.apply_due_timeouts() == 0  # nothing due: the cost of looking
            return time.perf_counter() - started

        whole, swept = min(whole_logs() for _ in range(repeat)), min(one_sweep() for _ in range(repeat))
    return [
        {
            "scenario": f"approval_sweep_{runs}_waiting_runs",
            "events_per_run": events,
            "sweep_ms": round(swept * 1e3, 2),
            "whole_logs_ms": round(whole * 1e3, 2),
            "whole_logs_over_sweep": round(whole / swept, 1),
        }
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=["chain", "loop", "fan", "validate", "submit", "durable", "sweep"])
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="also run submit and durable on PostgreSQL: a throwaway server like the test suite's, or --postgres-url",
    )
    parser.add_argument("--postgres-url", default=os.environ.get("TEST_POSTGRES_URL"))
    options = parser.parse_args()
    rows: list[dict[str, Any]] = []
    if options.only in (None, "chain", "loop", "fan"):
        rows += asyncio.run(in_memory(options.repeat, options.only))
    if options.only in (None, "validate"):
        rows += validation(options.repeat)
    if options.only in (None, "submit", "durable"):
        rows += durable(options.repeat, options.only)
        if options.postgres or options.postgres_url:
            with _postgres(options.postgres_url) as url:
                if url is not None:
                    rows += durable(options.repeat, options.only, url)
    if options.only in (None, "sweep"):
        rows += sweep(options.repeat)
    for row in rows:
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
