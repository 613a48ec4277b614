"""Plumbing shared by the Builder's side-panel forms: safe Markdown code spans, the
"is the widget's value still there" guard, JSON text areas and their error lines,
and numeric fields whose defaults and bounds come from the engine's model.

Every form widget writes into the document from its ``on_change`` callback;
these helpers are what those callbacks have in common.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from ui.text import md_escape


def code(text: object) -> str:
    """Text as a Markdown code span (shown literally; a backtick in it cannot close the span)."""
    return "`" + str(text).replace("`", "ˋ").replace("\n", " ") + "`"


def present(*keys: str) -> bool:
    """Whether the widgets' values are there.

    When reruns are interrupted (quick clicks), Streamlit can call a widget's
    ``on_change`` although the widget's value is gone; such calls must change
    nothing (they would blank the field in the document).
    """
    return all(key in st.session_state for key in keys)


def json_field(key: str, apply: Callable[[Any], None], want: type | None = dict) -> None:
    """Callback body for a JSON text area: apply valid JSON, else keep an error to show."""
    if not present(key):
        return
    text = st.session_state.get(key) or ""
    try:
        value = json.loads(text) if text.strip() else ({} if want is dict else None)
    except json.JSONDecodeError as exc:
        st.session_state[key + "__error"] = (
            f"Not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno}); the last valid value is kept."
        )
        return
    if want is not None and not isinstance(value, want):
        st.session_state[key + "__error"] = (
            f"Must be a JSON {'object' if want is dict else want.__name__}; the last valid value is kept."
        )
        return
    st.session_state.pop(key + "__error", None)
    apply(value)


def renamed(key: str, rename: Callable[[str], int]) -> tuple[str, int] | None:
    """Callback body for a name field (node id, input name): ``rename(new)`` rewrites the document and
    returns how many template references it rewrote. Returns ``(new, count)``, or None when the value is
    gone or the rename was refused (the reason is kept for ``show_error``)."""
    if not present(key):
        return None
    new = str(st.session_state.get(key) or "").strip()
    try:
        count = rename(new)
    except ValueError as exc:
        st.session_state[key + "__error"] = f"Not renamed: {exc}."
        return None
    st.session_state.pop(key + "__error", None)
    return new, count


def references(count: int) -> str:
    return f"{count} template reference{'s' if count != 1 else ''}"


def show_error(key: str) -> None:
    """The error a callback left for the widget ``key`` (bad JSON, a refused rename), if any."""
    message = st.session_state.get(key + "__error")
    if message:
        st.error(md_escape(message), icon=":material/error:")


@dataclass(frozen=True)
class NumberField:
    """A numeric field of the engine's model: its default and bounds, read from the model itself."""

    default: int | float | None
    low: int | float | None
    high: int | float | None
    integer: bool

    def shown(self, value: Any) -> int | float | None:
        """What the widget shows for ``value`` from a document: the value if it is a number in range,
        the default when absent, else nothing (an empty field; validation lists the problem)."""
        if value is None:
            value = self.default
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if self.integer and value != int(value):
            return None
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            return None
        return int(value) if self.integer else float(value)

    def widget_args(self, value: Any) -> dict[str, Any]:
        """``value``, ``min_value``, ``max_value`` and ``step`` for ``st.number_input``, all of one type."""
        cast = int if self.integer else float
        args: dict[str, Any] = {"value": self.shown(value), "step": 1 if self.integer else 0.1}
        if self.low is not None:
            args["min_value"] = cast(self.low)
        if self.high is not None:
            args["max_value"] = cast(self.high)
        return args


def number_field(model: type[BaseModel], name: str) -> NumberField:
    """The bounds (``ge``/``gt``/``le``) and default of ``model.<name>``; ``gt=x`` is shown as a minimum of ``x``
    (the widget accepts ``x`` itself; validation then says it must be greater)."""
    info = model.model_fields[name]
    low = high = None
    for rule in info.metadata:
        low = getattr(rule, "ge", getattr(rule, "gt", low))
        high = getattr(rule, "le", high)
    kinds = set(typing.get_args(info.annotation)) or {info.annotation}
    default = None if info.default is PydanticUndefined else info.default
    return NumberField(default=default, low=low, high=high, integer=int in kinds and float not in kinds)
