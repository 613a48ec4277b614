"""Reading environment variables into typed values, each bad value one line that names its variable.

Why here: the settings of the engine (``engine.config``), of the tools
(``tools.config``) and of memory (``memory.config``) are all read from the
environment with the same rules, and ``tools`` and ``memory`` may not import
``engine``; ``datadir`` is the one package every other may import. This module
never touches ``os.environ`` itself: callers hand it the mapping to read.

An unset variable and one set to the empty string (or only spaces) both mean
"use the default". A value that does not parse is not replaced by the default
silently: its problem is recorded (:attr:`EnvReader.problems`) and the caller
refuses to start with every problem listed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["EnvReader"]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class EnvReader:
    """Typed reads from one environment mapping; problems collect in :attr:`problems` (one line each)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def text(self, name: str, default: str = "") -> str:
        """The value stripped of surrounding spaces, else ``default``."""
        return (self.environ.get(name) or "").strip() or default

    def optional(self, name: str) -> str | None:
        """The value stripped, or None when unset or empty."""
        return self.text(name) or None

    def secret(self, name: str) -> str:
        """A secret as it is (never quoted in a problem: nothing is checked)."""
        return (self.environ.get(name) or "").strip()

    def integer(self, name: str, default: int, *, low: int = 1, high: int | None = None, what: str = "") -> int:
        """A whole number from ``low`` to ``high`` (inclusive); ``what`` names its unit in the problem."""
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"of at least {low}"
            self._problem(name, raw, f"must be {'a number of ' + what + ', ' if what else ''}a whole number {span}")
            return default
        return value

    def number(
        self, name: str, default: float, *, low: float = 0.0, high: float | None = None, zero: bool = False,
        what: str = "seconds",
    ) -> float:
        """A finite number above ``low`` (or equal to it with ``zero``) and below ``high``."""
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and (value >= low if zero else value > low) and (high is None or value < high)
        if not ok:
            above = f"{'at least' if zero else 'above'} {low:g}"
            span = f"{above} and below {high:g}" if high is not None else above
            self._problem(name, raw, f"must be a number of {what} {span}")
            return default
        return value

    def choice(self, name: str, default: str, options: Mapping[str, str], *, rule: str = "") -> str:
        """One of ``options`` (case-insensitive; each option maps to the value it stands for); ``rule`` words
        the problem (default: "is not one of" the options)."""
        raw = self.text(name)
        if not raw:
            return default
        value = options.get(raw.lower())
        if value is None:
            self._problem(name, raw, rule or f"is not one of {', '.join(sorted(set(options)))}")
            return default
        return value

    def flag(self, name: str) -> bool:
        """``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off`` (unset: False)."""
        raw = self.text(name).lower()
        if raw in _TRUE:
            return True
        if raw and raw not in _FALSE:
            self._problem(name, raw, "must be 1 or 0 (true/false, yes/no, on/off)")
        return False

    def items(self, name: str, separator: str = ",") -> tuple[str, ...]:
        """The non-empty items of a ``separator``-separated list, stripped."""
        return tuple(item.strip() for item in (self.environ.get(name) or "").split(separator) if item.strip())

    def _problem(self, name: str, raw: str, rule: str) -> None:
        shown = raw if len(raw) <= 60 else raw[:57] + "..."
        line = f"{name}={shown!r} {rule}"
        if line not in self.problems:  # a variable two parts of the settings read is reported once
            self.problems.append(line)
