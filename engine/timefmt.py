"""The one way a moment (epoch seconds) is written for people: local time, ISO-like.

The CLI, the pages and the Builder all write times through :func:`format_ts`,
so a run started at 14:03:07 reads the same everywhere. Durations are
:func:`engine.run_times.duration`'s.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

UNKNOWN = "—"


def format_ts(ts: Any, *, seconds: bool = True, today_as_time: bool = False) -> str:
    """``"2026-12-05 14:03:07"`` in local time; :data:`UNKNOWN` for None, 0 or anything not a number.

    ``seconds=False`` leaves them out (``"2026-12-05 14:03"``); ``today_as_time`` writes a moment of
    today as its time alone (``"14:03:07"``).
    """
    try:
        moment = dt.datetime.fromtimestamp(float(ts)) if ts else None
    except (TypeError, ValueError, OverflowError, OSError):
        moment = None
    if moment is None:
        return UNKNOWN
    clock = "%H:%M:%S" if seconds else "%H:%M"
    if today_as_time and moment.date() == dt.date.today():
        return moment.strftime(clock)
    return moment.strftime(f"%Y-%m-%d {clock}")
