"""How long templates may run at a time: the render time budget.

Templates render on the runtime's one event loop and never yield, so a
template that loops for long (nested ``range`` loops, a slow filter on a big
value) would stall every run in the process and ignore every timeout and
cancel. Rendering stays on the loop (a render usually costs microseconds and
a thread hop per node would cost more than the render), but is bounded by
construction:

* each run has a *slice* of processor time: the first render opens it, and
  every render of that run (its nodes, map items, retries) adds its time to
  it until the loop has served what was waiting on its timers and sockets (a
  ``call_later(0)`` timer, then one more turn, closes it), so many renders in
  a row cannot add up past the limit. Another run's templates never use up
  this run's slice;
* before a node (or a map item, or a retry) starts, a run that has used a
  quarter of its slice yields to the loop (:func:`must_yield`,
  :func:`next_turn`) rather than risk failing on the limit: long chains and
  loops of cheap nodes take turns with the other runs;
* the sandbox hooks (calls, attribute and item lookups, operators, filters,
  tests), every iteration of a ``{% for %}`` loop and every item drawn from a
  lazy filter result (``map``, ``select``, ``unique``...) call :func:`tick`;
  work proportional to a value's size (a filter over ten million characters,
  a join, the size checks themselves) calls :func:`charge` with an estimate
  first, and refuses before starting when the estimate does not fit in what
  is left of the slice;
* when the clock passes :data:`RENDER_TIME_LIMIT_S` the render fails with
  :class:`RenderTimeLimit`, which names the limit.

One run's templates therefore hold the loop for at most the limit plus one
built-in operation on a value under the size caps (engine/template_limits.py)
before the others are served, which is also what lets node timeouts, run
timeouts and cancels act.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from time import thread_time
from typing import Any

from engine.errors import RenderTimeLimit

RENDER_TIME_LIMIT_S = 0.05
"""Most processor time templates may take on the event loop's thread before the loop serves the others,
in seconds. Processor time rather than wall time: on a machine shared with other processes a render can
be paused for tens of milliseconds, and that pause is neither the template's doing nor work that keeps
the loop from anyone (the other runs would wait for the processor all the same)."""

_CHECK_EVERY = 32
"""Ticks between two looks at the clock (a look, ``time.thread_time()``, costs about 0.4 µs; a tick is
usually under a microsecond, and operations whose cost grows with a value's size are charged on their
own)."""


class _Slice:
    """The template time one run has used since the loop last served everyone else."""

    __slots__ = ("open", "used")

    def __init__(self) -> None:
        self.open = False
        self.used = 0.0


class _Active(threading.local):
    """The render going on in this thread: its slice, when its clock started (only once it has done some
    work: most renders finish in a few ticks and never read the clock), when it must stop, and how many
    ticks before the next look at the clock."""

    def __init__(self) -> None:
        self.slice: _Slice | None = None
        self.started: float | None = None
        self.deadline = float("inf")
        self.countdown = _CHECK_EVERY
        self.fallback = _Slice()  # renders outside a run (a test, the HTTP API checking a document)


_ACTIVE = _Active()
_NEVER = float("inf")
_RUN: ContextVar[_Slice | None] = ContextVar("template_slice", default=None)


def enter_run() -> None:
    """Give the current task, and the tasks it starts, a slice of their own: one run's templates share a
    slice, and never use up another run's."""
    _RUN.set(_Slice())


def _limit_message(detail: str) -> str:
    return (
        f"render time limit reached: {detail} (the limit is {RENDER_TIME_LIMIT_S * 1000:g} ms of template work "
        "at a time, so one template cannot stall the other runs); loop over fewer items or use a smaller value"
    )


def _close(current: _Slice) -> None:
    current.open = False
    current.used = 0.0


def _closing(current: _Slice) -> None:
    """The slice's timer: it fires once the loop has looked at its timers and sockets after the renders.
    What they woke (a sleeping task, a read that arrived) is queued behind the callbacks already waiting,
    this run's next steps among them; so the slice closes one callback later, behind those wake-ups too,
    and the others have been served before this run may render again."""
    asyncio.get_running_loop().call_soon(_close, current)


def start() -> tuple[_Slice, bool]:
    """Start a render: open the run's slice if it is closed. Returns what :func:`stop` needs."""
    current = _RUN.get() or _ACTIVE.fallback
    alone = False
    if not current.open:
        current.open = True
        current.used = 0.0
        try:
            asyncio.get_running_loop().call_later(0, _closing, current)
        except RuntimeError:
            alone = True
    active = _ACTIVE
    active.slice = current
    active.started = None
    active.deadline = _NEVER
    active.countdown = _CHECK_EVERY
    return current, alone


def stop(token: tuple[_Slice, bool]) -> None:
    """End the render :func:`start` began: its time counts against the slice (a render that never looked at
    the clock counts a microsecond a tick)."""
    current, alone = token
    active = _ACTIVE
    started = active.started
    if alone:
        _close(current)
    elif started is not None:
        current.used += thread_time() - started
    else:
        current.used += (_CHECK_EVERY - active.countdown) * 1e-6
    active.slice = None
    if started is not None:  # the clock was looked at (_arm): its deadline goes too (never set otherwise)
        active.started = None
        active.deadline = _NEVER


def _arm(active: _Active, now: float) -> None:
    """Start the clock of the render going on (its first look): the deadline is what is left of its slice."""
    active.started = now
    current = active.slice
    if current is not None:
        active.deadline = now + RENDER_TIME_LIMIT_S - current.used
        if now > active.deadline:
            raise RenderTimeLimit(_limit_message(f"the template ran for more than {RENDER_TIME_LIMIT_S * 1000:g} ms"))


def must_yield() -> bool:
    """Whether the current run has used a quarter of its slice: it should let the loop serve the others
    before starting a node (:func:`next_turn`), rather than risk failing the node's templates on the limit."""
    current = _RUN.get() or _ACTIVE.fallback
    return current.open and current.used >= RENDER_TIME_LIMIT_S / 4


async def next_turn() -> None:
    """Wait until the loop has served the others and the run's slice is new."""
    current = _RUN.get() or _ACTIVE.fallback
    while current.open:
        await asyncio.sleep(0)


def _look() -> None:
    active = _ACTIVE
    active.countdown = _CHECK_EVERY
    now = thread_time()
    if active.started is None:
        _arm(active, now)
    elif now > active.deadline:
        raise RenderTimeLimit(_limit_message(f"the template ran for more than {RENDER_TIME_LIMIT_S * 1000:g} ms"))


def tick() -> None:
    """One small step of template work (usually under a microsecond)."""
    active = _ACTIVE
    active.countdown -= 1
    if active.countdown <= 0:
        _look()


def charge(units: int, ns_per_unit: float, what: str) -> None:
    """Account for work proportional to a size before doing it: ``units`` things at about ``ns_per_unit``
    nanoseconds each. Refuses now if that cannot finish inside the slice."""
    cost_us = units * ns_per_unit / 1000.0
    if cost_us < 50:
        tick()
        return
    active = _ACTIVE
    now = thread_time()
    if active.started is None:
        _arm(active, now)
    if now + cost_us / 1e6 > active.deadline:
        if now > active.deadline:
            raise RenderTimeLimit(_limit_message(f"the template ran for more than {RENDER_TIME_LIMIT_S * 1000:g} ms"))
        estimate = f"{what} on {units:,} items or characters would take about {cost_us / 1000:,.0f} ms"
        raise RenderTimeLimit(_limit_message(estimate))
    active.countdown = _CHECK_EVERY


def counted(iterable: Iterable[Any]) -> Iterator[Any]:
    """``iterable``, with a tick per item drawn (``{% for %}`` loops and lazy filter results)."""
    active = _ACTIVE
    for item in iterable:
        active.countdown -= 1
        if active.countdown <= 0:
            _look()
        yield item
