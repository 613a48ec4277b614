"""Per-call deadlines for tool calls, behind one timer per event loop.

Every tool call has a deadline (30 s unless said otherwise), and almost every
call finishes long before it. ``asyncio.timeout`` or a ``loop.call_at`` per
call costs ~3 µs on each call (a timer handle made, pushed on the loop's heap,
cancelled, popped), which was a third of what a tool call costs the engine
and the main overhead of a 100-tool fan-out. Here a call only registers its
deadline; one timer per loop is armed at the earliest deadline and, when it
fires, cancels the calls that are due and re-arms for the next one. Arming
happens only when a call's deadline is earlier than the armed one (a fan-out
of calls with the same limit arms once).
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Awaitable
from typing import Any

from tools.errors import DeadlinePassed


class _Call:
    __slots__ = ("fired", "task", "when")

    def __init__(self, task: asyncio.Task[Any], when: float) -> None:
        self.task = task
        self.when = when
        self.fired = False


class _LoopDeadlines:
    """The calls in flight on one loop and the one timer that watches them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop_ref = weakref.ref(loop)  # weak: this object is the loop's entry in a WeakKeyDictionary
        self.calls: set[_Call] = set()
        self.handle: weakref.ref[asyncio.TimerHandle] | None = None  # weak: a handle refers to its loop
        self.armed_at = math.inf

    def add(self, task: asyncio.Task[Any], limit: float) -> _Call:
        loop = self.loop_ref()
        assert loop is not None  # called from a task running on it
        call = _Call(task, loop.time() + limit)
        self.calls.add(call)
        if call.when < self.armed_at:
            self._arm(loop, call.when)
        return call

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        armed = self.handle() if self.handle is not None else None
        if armed is not None:
            armed.cancel()
        self.handle = weakref.ref(loop.call_at(when, self._fire))
        self.armed_at = when

    def _fire(self) -> None:
        self.handle, self.armed_at = None, math.inf
        loop = self.loop_ref()
        if loop is None:
            return
        now = loop.time()
        due = [call for call in self.calls if call.when <= now]
        for call in due:
            self.calls.discard(call)
            call.fired = True
            call.task.cancel()
        if self.calls:
            self._arm(loop, min(call.when for call in self.calls))


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopDeadlines] = weakref.WeakKeyDictionary()


_last: _LoopDeadlines | None = None  # the last loop's (almost always the only one): skips the weak-dict lookup


def _deadlines(loop: asyncio.AbstractEventLoop) -> _LoopDeadlines:
    global _last
    found = _last
    if found is None or found.loop_ref() is not loop:
        found = _loops.get(loop)
        if found is None:
            found = _loops[loop] = _LoopDeadlines(loop)
        _last = found
    return found


async def with_deadline(work: Awaitable[Any], limit: float) -> Any:
    """Await ``work`` in this task, cancelling it after ``limit`` seconds.

    Raises :class:`DeadlinePassed` when the deadline cancelled it; a
    cancellation from anyone else propagates as usual. A tool that swallows
    the cancellation and returns late still counts as timed out.
    """
    task = asyncio.current_task()
    assert task is not None
    deadlines = _deadlines(asyncio.get_running_loop())
    call = deadlines.add(task, limit)
    try:
        result = await work
    except asyncio.CancelledError:
        if call.fired and task.uncancel() == 0:
            raise DeadlinePassed from None
        raise
    finally:
        deadlines.calls.discard(call)
    if call.fired:
        task.uncancel()
        raise DeadlinePassed
    return result
