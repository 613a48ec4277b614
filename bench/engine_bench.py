"""Engine benchmark: one JSON line per scenario, in memory, events on.

Scenarios and targets (from the engine core issue):

* chain of 200 trivial ``transform`` nodes: µs per node (≤ 30);
* fan-out of 100 ``tool`` nodes each awaiting a 50 ms sleep: wall / 0.05 (≤ 1.05);
* 50 concurrent runs of a 5-node chain of 20 ms sleeps: wall / 0.1 (≤ 1.10);
* a loop of 500 iterations through a condition: µs per iteration (≤ 60);
* durable (store issue): the 200-node chain through a ``Runtime`` with every
  event committed to a SQLite file: µs per node (≤ 300), and 50 concurrent
  durable runs of the 5 × 20 ms chain: wall / 0.1.

Run: ``python bench/engine_bench.py [--repeat N]``. Each figure is the best
of N repeats (default 5) after a warm-up, so one-off noise from other
processes on the machine does not decide it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.shapes import best as _best  # noqa: E402
from bench.shapes import chain, fan_out, loop, sleep_chain  # noqa: E402
from bench.shapes import sink as _sink  # noqa: E402
from engine import load_workflow, run_workflow  # noqa: E402
from engine.runtime import Runtime  # noqa: E402


async def main(repeat: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    wf = load_workflow(chain(200))

    async def run_chain() -> None:
        result = await run_workflow(wf, on_event=_sink())
        assert result.status == "completed", result.error

    wall = await _best(repeat, run_chain)
    rows.append({"scenario": "chain_200_transform", "us_per_node": round(wall / 200 * 1e6, 2), "target": 30})

    wf_fan = load_workflow(fan_out(100, 0.05))

    async def run_fan() -> None:
        result = await run_workflow(wf_fan, on_event=_sink())
        assert result.status == "completed", result.error

    wall = await _best(repeat, run_fan)
    rows.append({"scenario": "fan_out_100_sleep_50ms", "wall_over_ideal": round(wall / 0.05, 3), "target": 1.05})

    wf_sleep = load_workflow(sleep_chain(5, 0.02))

    async def run_many() -> None:
        results = await asyncio.gather(*(run_workflow(wf_sleep, on_event=_sink()) for _ in range(50)))
        assert all(r.status == "completed" for r in results)

    wall = await _best(repeat, run_many)
    rows.append({"scenario": "concurrent_50_runs_5x20ms", "wall_over_ideal": round(wall / 0.1, 3), "target": 1.10})

    wf_loop = load_workflow(loop(500))

    async def run_loop() -> None:
        result = await run_workflow(wf_loop, on_event=_sink())
        assert result.status == "completed" and result.result == {"out": 499}, (result.error, result.result)

    wall = await _best(repeat, run_loop)
    rows.append({"scenario": "loop_500_iterations", "us_per_iteration": round(wall / 500 * 1e6, 2), "target": 60})
    rows.extend(durable(repeat))
    return rows


def durable(repeat: int) -> list[dict[str, Any]]:
    """The store issue's figures: every event committed to a SQLite file before the clock stops."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder, Runtime(data_dir=folder) as runtime:
        wf = load_workflow(chain(200))

        def one_chain() -> float:
            started = time.perf_counter()
            run_id = runtime.submit(wf)
            info = runtime.wait(run_id)
            runtime.store.flush()
            assert info.status == "completed", info.error
            return time.perf_counter() - started

        one_chain()
        best = min(one_chain() for _ in range(repeat))
        rows.append({"scenario": "durable_chain_200_sqlite", "us_per_node": round(best / 200 * 1e6, 2), "target": 300})

        wf_sleep = load_workflow(sleep_chain(5, 0.02))

        def many() -> float:
            started = time.perf_counter()
            ids = [runtime.submit(wf_sleep) for _ in range(50)]
            infos = [runtime.wait(run_id) for run_id in ids]
            runtime.store.flush()
            assert all(i.status == "completed" for i in infos)
            return time.perf_counter() - started

        many()
        best = min(many() for _ in range(repeat))
        rows.append({"scenario": "durable_concurrent_50_runs_5x20ms", "wall_over_ideal": round(best / 0.1, 3)})
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    for row in asyncio.run(main(options.repeat)):
        print(json.dumps(row))
