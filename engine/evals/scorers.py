"""Scorers: how one row's output is scored against its expected value (0 to 1, with a reason).

Built in: ``exact`` (after trimming; ``exact:ci`` ignores case), ``contains``,
``regex`` (``regex:PATTERN``, else the expected value is the pattern), ``json``
(``json:PATH`` — a dotted path into the output, e.g. ``result.answer`` or
``items.0`` — compared with the expected value), ``numeric`` (``numeric:TOL``,
an absolute tolerance, or ``numeric:5%`` a relative one; default 1e-6) and
``llm_judge`` (``llm_judge:RUBRIC``, judged by the configured model; see
:mod:`engine.evals.judge`). Custom scorers register with :func:`scorer` or the
``workflow_studio.scorers`` entry point group (like tools).

A scorer never raises on bad data: a missing or malformed expected value
scores 0 and the reason says why.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.errors import EngineError, Problem

ENTRY_POINT_GROUP = "workflow_studio.scorers"
BUILTIN = ("exact", "contains", "regex", "json", "numeric", "llm_judge")


@dataclass(frozen=True)
class Score:
    """One scorer's verdict on one row."""

    value: float  # 0..1
    reason: str


ScoreFn = Callable[[Any, Any, str], "Score | float | tuple[float, str]"]


class ScorerInvalid(EngineError):
    """A scorer spec names no known scorer or has a bad argument (exit 2 / HTTP 422)."""

    retryable = False

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.where}: {p.message}" for p in self.problems))


_CUSTOM: dict[str, ScoreFn] = {}
_loaded_entry_points = False


def scorer(name: str) -> Callable[[ScoreFn], ScoreFn]:
    """Register ``fn(output, expected, arg)`` as scorer ``name``.

    It returns a :class:`Score`, a float 0..1 or ``(float, reason)``."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", name) or name in BUILTIN:
        raise ValueError(f"scorer name {name!r} must be lowercase letters, digits, _ and not a built-in one")

    def register(fn: ScoreFn) -> ScoreFn:
        _CUSTOM[name] = fn
        return fn

    return register


def _load_entry_points() -> None:
    global _loaded_entry_points
    if _loaded_entry_points:
        return
    _loaded_entry_points = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            fn = ep.load()
        except Exception:  # a broken plugin must not stop the built-in scorers
            continue
        if callable(fn) and ep.name not in BUILTIN:
            _CUSTOM.setdefault(ep.name, fn)


def custom_scorers() -> list[str]:
    _load_entry_points()
    return sorted(_CUSTOM)


@dataclass(frozen=True)
class ScorerSpec:
    """A parsed ``NAME[:ARG]``; ``spec`` is how it was written (the key of its scores)."""

    spec: str
    name: str
    arg: str

    @property
    def is_judge(self) -> bool:
        return self.name == "llm_judge"


def parse_scorers(specs: list[str]) -> list[ScorerSpec]:
    """Parse every spec; raises :class:`ScorerInvalid` naming every bad one."""
    _load_entry_points()
    parsed: list[ScorerSpec] = []
    problems: list[Problem] = []
    for spec in specs:
        name, _, arg = spec.partition(":")
        name = name.strip()
        where = f"scorer '{spec}'"
        if name not in BUILTIN and name not in _CUSTOM:
            known = ", ".join([*BUILTIN, *sorted(_CUSTOM)])
            problems.append(Problem(where, f"is unknown (known: {known})"))
            continue
        if name == "exact" and arg not in ("", "ci"):
            problems.append(Problem(where, "takes no argument but 'ci' (case-insensitive)"))
        elif name == "numeric" and arg and _tolerance(arg) is None:
            problems.append(Problem(where, "tolerance must be a number ≥ 0, or a percentage like 5%"))
        elif name == "regex" and arg:
            try:
                re.compile(arg)
            except re.error as exc:
                problems.append(Problem(where, f"is not a valid regular expression ({exc})"))
        elif name == "json" and not arg:
            problems.append(Problem(where, "needs a path, e.g. json:result.answer"))
        parsed.append(ScorerSpec(spec, name, arg))
    if len({p.spec for p in parsed}) != len(parsed):
        problems.append(Problem("scorers", "are named twice"))
    if problems:
        raise ScorerInvalid(problems)
    return parsed


def answer_of(result: Any) -> Any:
    """A run's result as scorers see it: the value of its only output node, else the whole result."""
    if isinstance(result, dict) and len(result) == 1:
        return next(iter(result.values()))
    return result


def text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def score(spec: ScorerSpec, output: Any, expected: Any) -> Score:
    """Score one row with a non-judge scorer (``llm_judge`` goes through :mod:`engine.evals.judge`)."""
    if spec.name in _CUSTOM and spec.name not in BUILTIN:
        return _custom(spec, output, expected)
    if spec.name == "exact":
        return _exact(output, expected, spec.arg == "ci")
    if spec.name == "contains":
        return _contains(output, expected)
    if spec.name == "regex":
        return _regex(output, expected, spec.arg)
    if spec.name == "json":
        return _json(output, expected, spec.arg)
    if spec.name == "numeric":
        return _numeric(output, expected, spec.arg)
    raise ScorerInvalid([Problem(f"scorer '{spec.spec}'", "is scored elsewhere")])


def _custom(spec: ScorerSpec, output: Any, expected: Any) -> Score:
    try:
        got = _CUSTOM[spec.name](output, expected, spec.arg)
    except Exception as exc:  # a plugin's bug scores 0, visibly
        return Score(0.0, f"scorer {spec.name} raised {type(exc).__name__}: {str(exc)[:200]}")
    if isinstance(got, Score):
        value, reason = got.value, got.reason
    elif isinstance(got, tuple) and len(got) == 2:
        value, reason = got[0], str(got[1])
    else:
        value, reason = got, ""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return Score(0.0, f"scorer {spec.name} returned {value!r:.40}, not a number 0..1")
    return Score(min(1.0, max(0.0, float(value))), reason)


def _no_expected(expected: Any) -> Score | None:
    if expected is None or (isinstance(expected, str) and not expected.strip()):
        return Score(0.0, "no expected value in this row")
    return None


def _exact(output: Any, expected: Any, ci: bool) -> Score:
    if (missing := _no_expected(expected)) is not None:
        return missing
    got, want = text_of(output).strip(), text_of(expected).strip()
    if ci:
        got, want = got.casefold(), want.casefold()
    if got == want:
        return Score(1.0, "equal")
    return Score(0.0, f"differs from expected {want[:60]!r}")


def _contains(output: Any, expected: Any) -> Score:
    if (missing := _no_expected(expected)) is not None:
        return missing
    want = text_of(expected).strip()
    if want in text_of(output):
        return Score(1.0, f"contains {want[:60]!r}")
    return Score(0.0, f"does not contain {want[:60]!r}")


def _regex(output: Any, expected: Any, pattern: str) -> Score:
    if not pattern:
        if (missing := _no_expected(expected)) is not None:
            return missing
        pattern = text_of(expected)
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        return Score(0.0, f"expected pattern {pattern[:60]!r} is not a valid regular expression ({exc})")
    if compiled.search(text_of(output)):
        return Score(1.0, f"matches {pattern[:60]!r}")
    return Score(0.0, f"does not match {pattern[:60]!r}")


_MISSING = object()


def json_path(value: Any, path: str) -> Any:
    """Follow a dotted ``path`` (names and list indices) into ``value``; ``_MISSING`` when it leads nowhere."""
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and re.fullmatch(r"-?\d+", part) and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _json(output: Any, expected: Any, path: str) -> Score:
    if isinstance(output, str):
        try:
            output = json.loads(output)
        except json.JSONDecodeError:
            return Score(0.0, "the output is not JSON")
    found = json_path(output, path)
    if found is _MISSING:
        found = json_path({"result": output}, path)  # "result.answer" reads the run's result itself
    if found is _MISSING:
        return Score(0.0, f"the output has no {path!r}")
    want = expected
    if isinstance(expected, str):
        try:
            want = json.loads(expected)
        except json.JSONDecodeError:
            want = expected
    if found == want or text_of(found).strip() == text_of(want).strip():
        return Score(1.0, f"{path} equals the expected value")
    return Score(0.0, f"{path} is {text_of(found)[:60]!r}, expected {text_of(want)[:60]!r}")


def _tolerance(arg: str) -> tuple[float, bool] | None:
    """``(tolerance, relative)`` from ``0.01`` or ``5%``; None when malformed."""
    text = arg.strip()
    relative = text.endswith("%")
    try:
        value = float(text[:-1] if relative else text)
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return (value / 100 if relative else value), relative


_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"


def number_in(value: Any) -> float | None:
    """The number an output states: itself; else the first number after an ``=``; else the last number in it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    text = text_of(value).replace(",", "")
    try:
        return float(text.strip())
    except ValueError:
        pass
    after = re.search(r"=\s*(" + _NUMBER + ")", text)
    if after:
        return float(after.group(1))
    found = re.findall(_NUMBER, text)
    return float(found[-1]) if found else None


def _numeric(output: Any, expected: Any, arg: str) -> Score:
    if (missing := _no_expected(expected)) is not None:
        return missing
    want: float | None
    if isinstance(expected, bool):
        want = None
    elif isinstance(expected, (int, float)):
        want = float(expected)
    else:
        try:
            want = float(str(expected).strip().replace(",", ""))
        except ValueError:
            want = None
    if want is None or not math.isfinite(want):
        return Score(0.0, f"expected value {text_of(expected)[:40]!r} is not a number")
    got = number_in(output)
    if got is None:
        return Score(0.0, "the output states no number")
    tol, relative = _tolerance(arg) if arg else (1e-6, False)  # type: ignore[misc]
    limit = tol * abs(want) if relative else tol
    if abs(got - want) <= limit:
        return Score(1.0, f"{got:g} is within {arg or '1e-06'} of {want:g}")
    return Score(0.0, f"{got:g} differs from {want:g} by {abs(got - want):g}")
