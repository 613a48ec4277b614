"""Checking run inputs against a workflow's ``inputs`` schema, before anything runs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from engine.errors import InputsInvalid, Problem
from engine.model import InputSpec, Workflow

_CHECKS: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),  # JSON has no NaN
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def check_inputs(workflow: Workflow, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the run's inputs with defaults filled in.

    Raises:
        InputsInvalid: naming every missing, unknown or mistyped input at once.
    """
    given = dict(given or {})
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    for name in given:
        if name not in workflow.inputs:
            known = ", ".join(workflow.inputs) or "none"
            problems.append(Problem(f"input '{name}'", f"is not declared by the workflow (declared: {known})"))
    for name, spec in workflow.inputs.items():
        if name in given:
            value = given[name]
            if not _matches(spec, value):
                finite = " (a finite one: JSON has no NaN or infinity)" if isinstance(value, float) else ""
                problems.append(Problem(f"input '{name}'", f"must be {_a(spec.type)}{finite}, got {_describe(value)}"))
            values[name] = value
        elif spec.required:
            detail = f" ({spec.description})" if spec.description else ""
            problems.append(Problem(f"input '{name}'", f"is required{detail}; give it as --input {name}=VALUE"))
        else:
            values[name] = spec.default
    if problems:
        raise InputsInvalid(problems)
    return values


def _matches(spec: InputSpec, value: Any) -> bool:
    return value is None and not spec.required and spec.default is None or _CHECKS[spec.type](value)


def _a(type_name: str) -> str:
    return ("an " if type_name[0] in "aeiou" else "a ") + type_name


def _describe(value: Any) -> str:
    names = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "array"}
    return f"{names.get(type(value), type(value).__name__)} {value!r:.60}"
