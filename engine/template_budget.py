"""How long templates may run at a time: the render time budget.

Templates render on the runtime's one event loop and never yield, so a
template that loops for long (nested ``range`` loops, a slow filter on a big
value) would stall every run in the process and ignore every timeout and
cancel. Rendering stays on the loop (a render usually costs microseconds and
a thread hop per node would cost more than the render), but is bounded by
construction:

* the first render after the loop last ran opens a *slice* and starts a
  clock; every render until control goes back to the loop shares that slice
  (``loop.call_soon`` closes it), so a node rendering many strings or a map
  item rendering in turn cannot add up past the limit;
* the sandbox hooks (calls, attribute and item lookups, operators, filters,
  tests), every iteration of a ``{% for %}`` loop and every item drawn from a
  lazy filter result (``map``, ``select``, ``unique``...) call :func:`tick`;
  work proportional to a value's size (a filter over ten million characters,
  a join, the size checks themselves) calls :func:`charge` with an estimate
  first, and refuses before starting when the estimate does not fit in what
  is left of the slice;
* when the clock passes :data:`RENDER_TIME_LIMIT_S` the render fails with
  :class:`RenderTimeLimit`, which names the limit.

The loop is therefore back within the limit plus one built-in operation on a
value under the size caps (engine/template_limits.py), which is what lets node
timeouts, run timeouts and cancels act.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator
from time import perf_counter
from typing import Any

from jinja2.exceptions import SecurityError

RENDER_TIME_LIMIT_S = 0.05
"""Longest templates may hold the event loop before control goes back to it, in seconds of wall time
(what the other runs wait for; on a machine too busy to give the render the processor, a template gets
less work done in that time)."""

_CHECK_EVERY = 16
"""Ticks between two looks at the clock (a look costs about 50 ns; a tick is usually under a microsecond,
and operations whose cost grows with a value's size are charged on their own)."""


class RenderTimeLimit(SecurityError):
    """A template ran past :data:`RENDER_TIME_LIMIT_S`, or was about to."""


class _Slice(threading.local):
    """The current slice of this thread: when it must end and how much work is left before the next look."""

    def __init__(self) -> None:
        self.open = False
        self.deadline = float("inf")
        self.countdown = _CHECK_EVERY


_SLICE = _Slice()


def _limit_message(detail: str) -> str:
    return (
        f"render time limit reached: {detail} (the limit is {RENDER_TIME_LIMIT_S * 1000:g} ms of template work "
        "at a time, so one template cannot stall the other runs); loop over fewer items or use a smaller value"
    )


def _close(current: _Slice) -> None:
    current.open = False
    current.deadline = float("inf")


def begin() -> bool:
    """Open a slice if none is open. Returns True when the caller must :func:`end` it (no running event
    loop to close it: a render outside the runtime, as in a test)."""
    current = _SLICE
    if current.open:
        return False
    current.open = True
    current.deadline = perf_counter() + RENDER_TIME_LIMIT_S
    current.countdown = _CHECK_EVERY
    try:
        asyncio.get_running_loop().call_soon(_close, current)
    except RuntimeError:
        return True
    return False


def end() -> None:
    """Close the slice :func:`begin` opened without an event loop."""
    _close(_SLICE)


def _look() -> None:
    current = _SLICE
    current.countdown = _CHECK_EVERY
    if perf_counter() > current.deadline:
        raise RenderTimeLimit(_limit_message(f"the template ran for more than {RENDER_TIME_LIMIT_S * 1000:g} ms"))


def tick() -> None:
    """One small step of template work (usually under a microsecond)."""
    current = _SLICE
    current.countdown -= 1
    if current.countdown <= 0:
        _look()


def charge(units: int, ns_per_unit: float, what: str) -> None:
    """Account for work proportional to a size before doing it: ``units`` things at about ``ns_per_unit``
    nanoseconds each. Refuses now if that cannot finish inside the slice."""
    cost_us = units * ns_per_unit / 1000.0
    if cost_us < 50:
        tick()
        return
    current = _SLICE
    now = perf_counter()
    if now + cost_us / 1e6 > current.deadline:
        if now > current.deadline:
            raise RenderTimeLimit(_limit_message(f"the template ran for more than {RENDER_TIME_LIMIT_S * 1000:g} ms"))
        raise RenderTimeLimit(_limit_message(f"{what} on {units:,} items or characters would take about {cost_us / 1000:,.0f} ms"))
    current.countdown = _CHECK_EVERY


def counted(iterable: Iterable[Any]) -> Iterator[Any]:
    """``iterable``, with a tick per item drawn (``{% for %}`` loops and lazy filter results)."""
    current = _SLICE
    for item in iterable:
        current.countdown -= 1
        if current.countdown <= 0:
            _look()
        yield item
