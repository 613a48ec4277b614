"""engine.costs: tokens per model times the user's prices; nothing guessed, the offline model free."""

from __future__ import annotations

import math

import pytest

from engine.costs import Price, Usage, cost_of, format_usd, prices_from, prices_from_rows
from engine.events import Event


def completed(model: str, prompt: int, completion: int, **extra: object) -> Event:
    data = {"model": model, "prompt_tokens": prompt, "completion_tokens": completion, **extra}
    return Event(1, "r", 0.0, "llm.completed", "agent", data)


PRICES = {"gpt-4o-mini": Price(0.15, 0.60), "big": Price(2.5, 10.0)}


@pytest.mark.parametrize(
    ("events", "usd", "unpriced"),
    [
        ([], 0.0, ()),
        ([completed("gpt-4o-mini", 1_000_000, 0)], 0.15, ()),
        ([completed("gpt-4o-mini", 0, 1_000_000)], 0.60, ()),
        ([completed("big", 1000, 500), completed("big", 1000, 500)], (2000 * 2.5 + 1000 * 10.0) / 1e6, ()),
        ([completed("offline", 500, 500, offline=True)], 0.0, ()),  # the offline model is free
        ([completed("mystery", 10, 10)], 0.0, ("mystery",)),  # no price: said, never guessed
        ([completed("big", 1000, 0), completed("mystery", 10, 10)], 0.0025, ("mystery",)),
        ([completed("mystery", 0, 0)], 0.0, ()),  # no tokens: nothing to price
        ([Event(1, "r", 0.0, "node.completed", "a", {"output": 1})], 0.0, ()),  # other events ignored
    ],
)
def test_cost_of_a_run(events: list[Event], usd: float, unpriced: tuple[str, ...]) -> None:
    cost = cost_of(Usage.of(events), PRICES)
    assert math.isclose(cost.usd, usd, abs_tol=1e-12)
    assert cost.unpriced == unpriced
    assert cost.complete == (not unpriced)


def test_saved_prices_keep_only_valid_entries() -> None:
    raw = {"a": {"input": 1, "output": 2}, "b": {"input": -1, "output": 2}, "c": {"input": "x", "output": 1},
           "d": [1, 2], " ": {"input": 1, "output": 1}, "e": {"input": float("inf"), "output": 0},
           "f": {"input": True, "output": 0}}  # fmt: skip
    assert prices_from(raw) == {"a": Price(1.0, 2.0)}


def test_price_rows_from_the_editor_list_every_problem() -> None:
    rows = [
        {"model": "gpt-4o-mini", "input": 0.15, "output": 0.6},
        {"model": float("nan"), "input": None, "output": float("nan")},  # an empty row (NaN cells): skipped
        {"model": "", "input": 1.0, "output": 1.0},
        {"model": "half", "input": 1.0, "output": None},
        {"model": "neg", "input": -1.0, "output": 1.0},
        {"model": "gpt-4o-mini", "input": 1.0, "output": 1.0},
    ]
    prices, problems = prices_from_rows(rows)
    assert prices == {"gpt-4o-mini": Price(0.15, 0.6)}
    assert problems == [
        "row 3: the model name is missing",
        "row 4 (half): give both prices (0 for free)",
        "row 5 (neg): prices must be numbers of 0 or more",
        "row 6 (gpt-4o-mini): gpt-4o-mini is listed twice",
    ]


@pytest.mark.parametrize(
    ("usd", "shown"), [(0, "$0"), (0.000123, "$0.000123"), (0.0075, "$0.0075"), (0.5, "$0.5000"), (12.345, "$12.35")]
)
def test_format_usd(usd: float, shown: str) -> None:
    assert format_usd(usd) == shown


def test_usage_totals_count_every_model_and_flag_the_offline_one() -> None:
    usage = Usage.of([completed("big", 10, 5), completed("offline", 3, 2, offline=True), completed("big", 1, 1)])
    assert (usage.prompt_tokens, usage.completion_tokens, usage.offline) == (14, 8, True)
    assert not Usage.of([completed("big", 1, 1)]).offline
