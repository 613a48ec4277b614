"""tools.deadlines: one timer per loop serves every call's deadline, each call still timed exactly."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from tools.deadlines import _deadlines, with_deadline
from tools.errors import DeadlinePassed


async def _sleep_then(value: str, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return value


async def _timed(limit: float, work_s: float) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        outcome = await with_deadline(_sleep_then("done", work_s), limit)
    except DeadlinePassed:
        outcome = "deadline"
    return outcome, time.perf_counter() - started


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        # (limit, work) per concurrent call -> outcome per call
        ([(0.05, 0.01)], ["done"]),
        ([(0.05, 0.5)], ["deadline"]),
        # a later call with an earlier deadline re-arms the timer
        ([(5.0, 0.5), (0.05, 0.5)], ["done", "deadline"]),
        # the earliest call finishing first leaves the others' deadlines in force
        ([(0.05, 0.01), (0.1, 0.5), (0.2, 0.5), (5.0, 0.3)], ["done", "deadline", "deadline", "done"]),
        # many calls with one limit: all of them are cut, none is missed
        ([(0.05, 0.5)] * 50, ["deadline"] * 50),
    ],
)
async def test_concurrent_calls_each_get_their_own_deadline(
    calls: list[tuple[float, float]], expected: list[str]
) -> None:
    results = await asyncio.gather(*(_timed(limit, work) for limit, work in calls))
    assert [outcome for outcome, _ in results] == expected
    for (limit, work), (outcome, took) in zip(calls, results, strict=True):
        due = limit if outcome == "deadline" else work
        assert due - 0.005 <= took < due + 0.15, (limit, work, took)
    assert not _deadlines(asyncio.get_running_loop()).calls, "finished calls leave nothing behind"


async def test_a_cancellation_from_outside_is_not_a_deadline() -> None:
    task = asyncio.create_task(with_deadline(_sleep_then("x", 5), 10))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _deadlines(asyncio.get_running_loop()).calls


async def test_a_call_that_swallows_the_cancellation_still_times_out() -> None:
    async def stubborn() -> str:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(5)
        return "late"

    started = time.perf_counter()
    with pytest.raises(DeadlinePassed):
        await with_deadline(stubborn(), 0.05)
    assert time.perf_counter() - started < 1
    assert asyncio.current_task().cancelling() == 0, "the deadline's cancel request is withdrawn"


def test_a_finished_event_loop_is_not_kept_alive() -> None:
    import gc
    import weakref

    async def one_call() -> None:
        await with_deadline(_sleep_then("x", 0), 5)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(one_call())
    loop.close()
    gone = weakref.ref(loop)
    del loop
    gc.collect()
    assert gone() is None
