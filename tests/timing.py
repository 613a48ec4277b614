"""Timing checks that a busy CI machine cannot fail by accident.

A "this answers fast" test asks whether the code is fast, not whether the
machine was idle for that one call: a pause of a few hundred milliseconds
(another process, a garbage collection) happens on a shared 2-core runner.
So the check takes the best of a few tries. Code that is really slow (a
regex that backtracks, a loop over a huge input) is slow every time and
still fails.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

TRIES = 3


def best_time(call: Callable[[], T], *, tries: int = TRIES) -> tuple[float, T]:
    """The shortest wall time of `tries` calls, and the last call's result."""
    best = float("inf")
    for _ in range(tries):
        started = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - started)
    return best, result


async def best_time_async(call: Callable[[], Awaitable[T]], *, tries: int = TRIES) -> tuple[float, T]:
    """`best_time` for a coroutine function."""
    best = float("inf")
    for _ in range(tries):
        started = time.perf_counter()
        result = await call()
        best = min(best, time.perf_counter() - started)
    return best, result


def machine_slowdown(busy_s: float = 0.02) -> float:
    """How much longer than its processor time a fixed piece of work takes here and now (1.0 on an idle
    machine; 3.0 when other processes get two thirds of the processor). A wall-time bound on code that is
    bounded by processor time is scaled by this, so a loaded machine does not fail it by accident."""
    best = float("inf")
    for _ in range(TRIES):
        started, started_cpu = time.perf_counter(), time.thread_time()
        while time.thread_time() - started_cpu < busy_s:
            pass
        best = min(best, (time.perf_counter() - started) / (time.thread_time() - started_cpu))
    return max(1.0, best)
