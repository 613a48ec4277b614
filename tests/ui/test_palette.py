"""The palette's click log: a click is marked taken only once it was applied (ui/palette.py).

Streamlit stops a script at any session-state access when a newer rerun
arrives, so taking a click and applying it must not have such an access in
between. Run in Streamlit's bare mode, where ``st.session_state`` is a plain
per-process store.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import streamlit as st

from ui import palette


class Stopped(BaseException):
    """Stands for Streamlit's StopException: the script ends where it is."""


@pytest.fixture(autouse=True)
def clean_state() -> Iterator[None]:
    for key in (palette.KEY, palette.SEEN):
        st.session_state.pop(key, None)
    yield
    for key in (palette.KEY, palette.SEEN):
        st.session_state.pop(key, None)


def clicked(page: str, *node_types: str, first: int = 1) -> None:
    log = [[first + i, t] for i, t in enumerate(node_types)]
    st.session_state[palette.KEY] = {"clicks": {"page": page, "seq": log[-1][0], "log": log}}


def taken() -> list[str]:
    got: list[str] = []
    palette.take_clicks(got.extend)
    return got


def test_clicks_are_handed_over_in_order_once() -> None:
    clicked("p", "transform", "agent", "transform")
    assert taken() == ["transform", "agent", "transform"]
    assert taken() == []
    clicked("p", "transform", "agent", "output", first=2)  # the log carries the last clicks, old ones too
    assert taken() == ["output"]


def test_a_script_stopped_while_applying_takes_nothing() -> None:
    clicked("p", "transform", "agent")

    def stopped(_: list[str]) -> None:
        raise Stopped

    with pytest.raises(Stopped):
        palette.take_clicks(stopped)
    assert taken() == ["transform", "agent"], "the next script run applies the clicks"


def test_a_reloaded_page_counts_from_one_again() -> None:
    clicked("p", "transform", "agent")
    assert taken() == ["transform", "agent"]
    clicked("reloaded", "map")
    assert taken() == ["map"]


def test_no_component_value_yet_hands_nothing() -> None:
    assert taken() == []
    st.session_state[palette.KEY] = {"clicks": None}
    assert taken() == []
