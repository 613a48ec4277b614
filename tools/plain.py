"""The one "make this plain JSON" helper, for every layer.

Node outputs, event data, tool results and API answers all have to be strict
JSON: dicts with string keys, lists, strings, numbers, booleans and null, no
NaN or infinity (strict parsers reject them; they become null). What happens
to a value JSON has no type for is the caller's choice, ``other``:

- ``"raise"``: :class:`TypeError` (a node's output must be JSON: the node fails);
- ``"text"``: its ``str`` (event data: a value seen by a tool or a model is
  shown, never an encoder error; nothing is consumed, so a generator is
  recorded by its text);
- ``"fields"``: a pydantic model, dataclass, object with ``to_dict()`` or
  plain object becomes its fields, a set a list, anything else its text (tool
  results and API answers).

It lives in ``tools`` because tools may not import ``engine`` while the engine,
the API and the pages may import tools. The walk is tuned for the executor's
hot path: flat dicts and lists of scalars cost one pass and no calls.
(Two converters stay apart on purpose: ``engine.templates._plain`` turns
sandbox-only template types into plain values under the render budget, and
the Python sandbox's child process has its own, importing nothing of ours.)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel

Other = Literal["raise", "text", "fields"]

SCALARS = frozenset({str, int, bool, type(None)})  # JSON as they are (float is not: NaN, infinities)
TOO_DEEP = "<a value nested too deeply to record>"
_isfinite = math.isfinite


def to_plain(value: Any, other: Other = "text") -> Any:
    """``value`` as plain JSON: tuples become lists, keys strings, NaN and infinities null; the rest per ``other``.

    A value nested deeper than Python recurses is :data:`TOO_DEEP` (``RecursionError`` with ``"raise"``).
    """
    try:
        return _plain(value, other)
    except RecursionError:
        if other == "raise":
            raise
        return TOO_DEEP


def _plain(value: Any, other: Other) -> Any:
    kind = type(value)
    if kind in SCALARS:
        return value
    if kind is float:
        return value if _isfinite(value) else None
    if kind is dict:  # scalars and floats inline: no call for the common flat values
        out = {}
        for k, v in value.items():
            t = type(v)
            if t not in SCALARS:
                v = (v if _isfinite(v) else None) if t is float else _plain(v, other)
            out[k if type(k) is str else str(k)] = v
        return out
    if kind is list or kind is tuple:
        return [v if type(v) in SCALARS else _plain(v, other) for v in value]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):  # an IntEnum, say (bool has no subclasses)
        return int(value)
    if isinstance(value, float):
        return _plain(float(value), other)
    if isinstance(value, (list, tuple)):
        return [_plain(v, other) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v, other) for k, v in value.items()}
    if other == "raise":
        raise TypeError(f"the value holds a {kind.__name__}, which is not a JSON value")
    if other == "fields":
        fields = _fields(value)
        if fields is not None:
            return _plain(fields, other)
    return _text(value)


def _fields(value: Any) -> Any:
    """The fields of a structured value, or None for one that has none (it becomes its text)."""
    if isinstance(value, type):
        return None
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset)):
        return list(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "__dict__") and not isinstance(value, BaseException):
        return {k: v for k, v in vars(value).items() if not k.startswith("_")} or None  # none public: its text
    return None


def _text(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break the event log
        return f"<{type(value).__name__}>"
