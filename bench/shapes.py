"""The workflows and timing helpers the engine benchmarks share (bench/engine_bench.py, bench/scale_bench.py).

Workflow builders return documents (dicts); a benchmark loads them itself when it measures runs rather
than validation. ``bench_sleep`` is a tool that only sleeps, so fan-out and concurrency figures measure
the engine, not the work.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import Event  # noqa: E402
from tools import tool  # noqa: E402


@tool(name="bench_sleep", replace=True)
async def bench_sleep(seconds: float) -> float:
    """Sleep for ``seconds`` and return it."""
    await asyncio.sleep(seconds)
    return seconds


def doc(
    name: str, nodes: list[dict[str, Any]], edges: list[tuple[str, str, str | None]], **settings: Any
) -> dict[str, Any]:
    """A workflow of an ``input`` node named ``start`` and ``nodes``; ``edges`` as (source, target, when)."""
    return {
        "format": "workflow/v1",
        "name": name,
        "settings": settings,
        "nodes": [{"id": "start", "type": "input"}, *nodes],
        "edges": [{"source": s, "target": t, **({"when": w} if w is not None else {})} for s, t, w in edges],
    }


def chain(n: int, name: str = "chain") -> dict[str, Any]:
    """``n`` trivial ``transform`` nodes one after another."""
    nodes = [{"id": f"n{i}", "type": "transform", "config": {"expression": f"{i} + 1"}} for i in range(n)]
    edges = [("start", "n0", None)] + [(f"n{i}", f"n{i + 1}", None) for i in range(n - 1)]
    return doc(name, nodes, edges)


def fan_out(n: int, seconds: float) -> dict[str, Any]:
    """``n`` parallel ``tool`` nodes each sleeping ``seconds``."""
    nodes = [
        {"id": f"t{i}", "type": "tool", "config": {"tool": "bench_sleep", "args": {"seconds": seconds}}}
        for i in range(n)
    ]
    return doc(f"fan-out-{n}", nodes, [("start", f"t{i}", None) for i in range(n)])


def sleep_chain(n: int, seconds: float) -> dict[str, Any]:
    """``n`` ``tool`` nodes one after another, each sleeping ``seconds``."""
    nodes = [
        {"id": f"s{i}", "type": "tool", "config": {"tool": "bench_sleep", "args": {"seconds": seconds}}}
        for i in range(n)
    ]
    edges = [("start", "s0", None)] + [(f"s{i}", f"s{i + 1}", None) for i in range(n - 1)]
    return doc("sleep-chain", nodes, edges)


def loop(iterations: int) -> dict[str, Any]:
    """A ``transform`` and a ``condition`` going round ``iterations`` times; ``out`` is the last iteration."""
    nodes = [
        {"id": "body", "type": "transform", "config": {"expression": "iteration"}},
        {"id": "check", "type": "condition", "config": {"expression": f"iteration < {iterations - 1}"}},
        {"id": "out", "type": "output", "config": {"value": "{{ nodes.body.output }}"}},
    ]
    edges = [("start", "body", None), ("body", "check", None), ("check", "body", "true"), ("check", "out", "false")]
    return doc("loop", nodes, edges, max_iterations=iterations + 1)


def sink() -> Callable[[Event], None]:
    """An event callback that keeps the events (as a UI would), so events are on in every figure."""
    events: list[Event] = []
    return events.append


async def best(repeat: int, once: Callable[[], Awaitable[None]]) -> float:
    """The best wall time of ``repeat`` runs of ``once`` after a warm-up."""
    await once()  # warm-up
    fastest = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        await once()
        fastest = min(fastest, time.perf_counter() - started)
    return fastest
