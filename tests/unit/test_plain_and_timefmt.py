"""The one JSON-plain helper (tools/plain.py) and the one timestamp formatter (engine/timefmt.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import time
from typing import Any

import pytest
from pydantic import BaseModel

from engine.timefmt import UNKNOWN, format_ts
from tools.plain import TOO_DEEP, to_plain


class _Model(BaseModel):
    name: str
    when: dt.date


@dataclasses.dataclass
class _Hit:
    id: str
    score: float


class _Agent:
    def __init__(self) -> None:
        self.agent_id = "a"
        self.count = 2
        self._secret = "hidden"


@pytest.mark.parametrize(
    ("value", "other", "expected"),
    [
        ({"a": (1, 2.5, math.nan), 3: [math.inf]}, "text", {"a": [1, 2.5, None], "3": [None]}),
        ({"d": dt.date(2026, 12, 5)}, "text", {"d": "2026-12-05"}),
        (_Model(name="x", when=dt.date(2026, 1, 2)), "fields", {"name": "x", "when": "2026-01-02"}),
        ([_Hit("h", math.nan)], "fields", [{"id": "h", "score": None}]),
        (_Agent(), "fields", {"agent_id": "a", "count": 2}),
        ({1, 2}, "fields", [1, 2]),
        (ValueError("bad"), "fields", "bad"),  # an exception is its text, not its (empty) fields
        (_Hit("h", 1.0), "text", "_Hit(id='h', score=1.0)"),
    ],
)
def test_to_plain_gives_strict_json(value: Any, other: Any, expected: Any) -> None:
    plain = to_plain(value, other)
    assert sorted(plain) == sorted(expected) if isinstance(expected, list) else plain == expected
    json.dumps(plain, allow_nan=False)


def test_to_plain_raise_refuses_what_json_has_no_type_for() -> None:
    with pytest.raises(TypeError, match="datetime, which is not a JSON value"):
        to_plain({"t": dt.datetime(2026, 1, 1)}, "raise")
    assert to_plain({"n": math.nan, "l": (1,)}, "raise") == {"n": None, "l": [1]}


def test_to_plain_survives_a_cycle() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert to_plain(loop) == TOO_DEEP
    with pytest.raises(RecursionError):
        to_plain(loop, "raise")


def test_format_ts_writes_local_time_one_way() -> None:
    ts = time.mktime((2024, 3, 9, 14, 3, 7, 0, 0, -1))
    assert format_ts(ts) == "2024-03-09 14:03:07"
    assert format_ts(ts, seconds=False) == "2024-03-09 14:03"
    assert format_ts(ts, today_as_time=True) == "2024-03-09 14:03:07"  # not today
    now = time.time()
    assert format_ts(now, today_as_time=True) == dt.datetime.fromtimestamp(now).strftime("%H:%M:%S")
    assert format_ts("1765000000") == format_ts(1765000000.0)
    for unknown in (None, 0, "", "soon", float("nan"), 1e30):
        assert format_ts(unknown) == UNKNOWN
