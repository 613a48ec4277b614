"""What a run's model calls cost: tokens per model times the prices the user set.

No price is built in: prices change and differ between providers, and a wrong
figure is worse than none. A model without a price is reported as unpriced
(the dashboard says which and where to set it), never guessed; the offline
model that ships with the studio is free. Prices are US dollars per million
tokens, for prompt (input) and completion (output) tokens, as providers list
them; they are kept with the other settings (``engine.settings``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.events import Event

OFFLINE_MODEL = "offline"  # what the offline model reports as its model name


@dataclass(frozen=True)
class Price:
    """US dollars per million prompt (input) and completion (output) tokens."""

    input_per_m: float
    output_per_m: float

    @classmethod
    def parse(cls, raw: Any) -> Price | None:
        """A price from its saved form ``{"input": x, "output": y}``; None unless both are finite and ≥ 0."""
        if not isinstance(raw, Mapping):
            return None
        values = [raw.get("input"), raw.get("output")]
        if not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in values
        ):
            return None
        return cls(float(values[0]), float(values[1]))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, float]:
        return {"input": self.input_per_m, "output": self.output_per_m}


@dataclass
class Usage:
    """Tokens a run used, per model (from its ``llm.completed`` events).

    The totals include the tokens of tries that failed (a cut-off answer is
    still paid for); ``failed_tokens`` is their share, shown apart. ``estimated``
    is True when any count was estimated (the endpoint sent none).
    """

    by_model: dict[str, list[int]] = field(default_factory=dict)  # model -> [prompt tokens, completion tokens]
    offline: bool = False
    estimated: bool = False
    failed_tokens: int = 0  # prompt + completion tokens of failed tries (included in the totals)

    def add(self, event: Event) -> None:
        """Count one ``llm.completed`` event (other events are ignored)."""
        if event.type != "llm.completed":
            return
        data = event.data
        model = str(data.get("model") or "unknown")
        if data.get("offline") or model == OFFLINE_MODEL:
            self.offline = True
            model = OFFLINE_MODEL
        tokens = self.by_model.setdefault(model, [0, 0])
        prompt, completion = int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0)
        tokens[0] += prompt
        tokens[1] += completion
        if data.get("estimated"):
            self.estimated = True
        if data.get("failed"):
            self.failed_tokens += prompt + completion

    @property
    def prompt_tokens(self) -> int:
        return sum(prompt for prompt, _ in self.by_model.values())

    @property
    def completion_tokens(self) -> int:
        return sum(completion for _, completion in self.by_model.values())

    def label(self, total: int | None = None) -> str:
        """The token count in words: ``"1,234 tokens"``, ``"~1,234 tokens (estimated)"`` when any count
        was estimated, plus ``", 200 in failed tries"`` when tries failed. ``total`` defaults to this usage's."""
        count = self.prompt_tokens + self.completion_tokens if total is None else total
        text = f"~{count:,} tokens (estimated)" if self.estimated else f"{count:,} tokens"
        if self.failed_tokens:
            text += f", {self.failed_tokens:,} of them in failed tries"
        return text

    @classmethod
    def of(cls, events: Iterable[Event]) -> Usage:
        usage = cls()
        for event in events:
            usage.add(event)
        return usage


@dataclass(frozen=True)
class Cost:
    """A run's estimated cost: ``usd`` covers the priced models; ``unpriced`` lists the models that used
    tokens but have no price (their share is not in ``usd``)."""

    usd: float
    unpriced: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.unpriced


def cost_of(usage: Usage, prices: Mapping[str, Price]) -> Cost:
    """The cost of ``usage`` at ``prices`` (by exact model name; the offline model is free)."""
    usd = 0.0
    unpriced: list[str] = []
    for model, (prompt, completion) in sorted(usage.by_model.items()):
        if model == OFFLINE_MODEL or prompt + completion == 0:
            continue
        price = prices.get(model)
        if price is None:
            unpriced.append(model)
            continue
        usd += (prompt * price.input_per_m + completion * price.output_per_m) / 1_000_000
    return Cost(usd, tuple(unpriced))


def prices_from(raw: Mapping[str, Any]) -> dict[str, Price]:
    """The valid prices of a saved ``{model: {"input", "output"}}`` mapping (invalid entries are left out)."""
    found = {str(model).strip(): Price.parse(price) for model, price in raw.items()}
    return {model: price for model, price in found.items() if model and price is not None}


def prices_from_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Price], list[str]]:
    """Prices from table rows ``{"model", "input", "output"}`` (the Settings page's editor), and every problem
    found, in words (rows left wholly empty are skipped)."""
    prices: dict[str, Price] = {}
    problems: list[str] = []
    for number, row in enumerate(rows, start=1):
        model = "" if _blank(row.get("model")) else str(row.get("model")).strip()
        values = [row.get("input"), row.get("output")]
        blank = [_blank(v) for v in values]
        if not model and all(blank):
            continue
        where = f"row {number}" + (f" ({model})" if model else "")
        if not model:
            problems.append(f"{where}: the model name is missing")
        if any(blank):
            problems.append(f"{where}: give both prices (0 for free)")
            continue
        price = Price.parse({"input": values[0], "output": values[1]})
        if price is None:
            problems.append(f"{where}: prices must be numbers of 0 or more")
        elif model in prices:
            problems.append(f"{where}: {model} is listed twice")
        elif model:
            prices[model] = price
    return prices, problems


def _blank(value: Any) -> bool:
    """An empty table cell: None, or NaN (what a data editor's new rows hold)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_usd(usd: float) -> str:
    """Dollars with enough digits to see small runs: $0.000123, $0.0421, $12.35."""
    if usd == 0:
        return "$0"
    if usd < 0.01:
        return f"${usd:.6f}".rstrip("0")
    if usd < 1:
        return f"${usd:.4f}"
    return f"${usd:,.2f}"
