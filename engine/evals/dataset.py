"""Reading an evaluation's dataset and mapping its columns to a workflow's inputs.

A dataset is CSV, JSONL or a JSON list of objects. Columns named like the
workflow's inputs become inputs (converted to each input's declared type); the
expected column (default ``expected``) is the expected output; the other
columns are kept as metadata. Problems with the dataset as a whole (unreadable,
empty, a required input with no column) are raised together as
:class:`DatasetInvalid` before anything runs; a cell that does not convert
makes its row ``invalid`` (reported in the results, never a crash).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError, Problem
from engine.model import InputSpec, Workflow

MAX_ROWS = 100_000


class DatasetInvalid(EngineError):
    """The dataset cannot be evaluated: every problem at once (exit 2 / HTTP 422)."""

    retryable = False

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.where}: {p.message}" for p in self.problems))


@dataclass(frozen=True)
class Dataset:
    """A dataset as read: its column names in order and its records (one dict per row)."""

    name: str
    columns: list[str]
    records: list[dict[str, Any]]


@dataclass
class DatasetRow:
    """One row ready to run: its inputs (converted), expected value, metadata, or why it cannot run."""

    index: int
    inputs: dict[str, Any]
    expected: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class ColumnMapping:
    """How a dataset's columns meet a workflow's inputs (what the Evaluate page lists)."""

    inputs: list[str]  # columns that feed an input
    missing_required: list[str]  # required inputs with no column
    missing_optional: list[str]  # optional inputs with no column (their default is used)
    metadata: list[str]  # columns kept as metadata
    expected: str | None  # the expected column, when present


def read_dataset(source: str | Path | bytes, name: str | None = None) -> Dataset:
    """Read CSV, JSONL or a JSON list of objects from a path, or from ``bytes`` named ``name`` (its suffix decides).

    Raises:
        DatasetInvalid: unreadable, not one of the three forms, empty or too long.
    """
    if isinstance(source, bytes):
        label = name or "dataset"
        raw = source
    else:
        path = Path(source)
        label = name or path.name
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise DatasetInvalid([Problem(f"dataset {label}", f"cannot be read: {exc.strerror or exc}")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetInvalid([Problem(f"dataset {label}", "is not UTF-8 text")]) from None
    suffix = Path(label).suffix.lower()
    if suffix == ".csv":
        records, columns = _csv(text)
    elif suffix in (".jsonl", ".ndjson"):
        records, columns = _jsonl(text, label)
    elif suffix == ".json":
        records, columns = _json_list(text, label)
    else:
        raise DatasetInvalid([Problem(f"dataset {label}", "must end in .csv, .jsonl or .json")])
    if not records:
        raise DatasetInvalid([Problem(f"dataset {label}", "has no rows")])
    if len(records) > MAX_ROWS:
        raise DatasetInvalid([Problem(f"dataset {label}", f"has {len(records)} rows; at most {MAX_ROWS} are read")])
    return Dataset(label, columns, records)


def _csv(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    records = []
    for row in reader:
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # a blank line
        records.append({(k or "").strip(): v for k, v in row.items() if k is not None})
    return records, columns


def _jsonl(text: str, label: str) -> tuple[list[dict[str, Any]], list[str]]:
    records: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(f"dataset {label} line {number}", f"is not JSON ({exc.msg})"))
            continue
        if not isinstance(value, dict):
            problems.append(Problem(f"dataset {label} line {number}", "must be a JSON object"))
            continue
        records.append(value)
    if problems:
        raise DatasetInvalid(problems[:20])
    return records, _columns(records)


def _json_list(text: str, label: str) -> tuple[list[dict[str, Any]], list[str]]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetInvalid([Problem(f"dataset {label}", f"is not JSON ({exc.msg} at line {exc.lineno})")]) from None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise DatasetInvalid([Problem(f"dataset {label}", "must be a JSON list of objects")])
    return value, _columns(value)


def _columns(records: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for record in records:
        for key in record:
            seen.setdefault(str(key), None)
    return list(seen)


def map_columns(workflow: Workflow, dataset: Dataset, expected: str = "expected") -> ColumnMapping:
    """Which columns feed which inputs, and what is missing."""
    cols = set(dataset.columns)
    return ColumnMapping(
        inputs=[c for c in dataset.columns if c in workflow.inputs],
        missing_required=[n for n, s in workflow.inputs.items() if s.required and n not in cols],
        missing_optional=[n for n, s in workflow.inputs.items() if not s.required and n not in cols],
        metadata=[c for c in dataset.columns if c not in workflow.inputs and c != expected],
        expected=expected if expected in cols else None,
    )


def prepare_rows(workflow: Workflow, dataset: Dataset, expected: str = "expected") -> list[DatasetRow]:
    """The rows to run: inputs converted to their declared types; a bad cell makes that row invalid.

    Raises:
        DatasetInvalid: every required input with no column, and a missing expected column, at once.
    """
    mapping = map_columns(workflow, dataset, expected)
    problems = [
        Problem(f"input '{n}'", f"is required but the dataset has no column '{n}' (columns: {_list(dataset.columns)})")
        for n in mapping.missing_required
    ]
    if expected != "expected" and mapping.expected is None:
        problems.append(Problem(f"column '{expected}'", "named by --expected is not in the dataset"))
    if problems:
        raise DatasetInvalid(problems)
    rows = []
    for index, record in enumerate(dataset.records):
        inputs: dict[str, Any] = {}
        errors: list[str] = []
        for name, spec in workflow.inputs.items():
            if name not in record or _blank(record[name]):
                if spec.required:
                    errors.append(f"input '{name}' is empty")
                continue  # an optional input: its default
            try:
                inputs[name] = convert(record[name], spec)
            except ValueError as exc:
                errors.append(f"input '{name}': {exc}")
        meta = {k: v for k, v in record.items() if k not in workflow.inputs and k != expected}
        rows.append(DatasetRow(index, inputs, record.get(expected), meta, "; ".join(errors) if errors else None))
    return rows


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _list(names: list[str]) -> str:
    return ", ".join(names) or "none"


_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


def convert(value: Any, spec: InputSpec) -> Any:
    """``value`` (a CSV string or a JSON value) as ``spec.type``.

    Raises:
        ValueError: it does not convert (the message names the value).
    """
    kind = spec.type
    if kind == "string":
        return value if isinstance(value, str) else json.dumps(value)
    if kind in ("number", "integer"):
        return _number(value, kind)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"{value!r:.60} is not a boolean (true/false)")
    if kind in ("object", "array"):
        wanted: type = dict if kind == "object" else list
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ValueError(f"{value!r:.60} is not JSON") from None
        if not isinstance(value, wanted):
            raise ValueError(f"{value!r:.60} is not a JSON {kind}")
        return value
    raise ValueError(f"unknown input type {kind}")


def _number(value: Any, kind: str) -> int | float:
    shown = f"{value!r:.60}"
    number: float | int
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            try:
                number = float(value.strip())
            except ValueError:
                raise ValueError(f"{shown} is not a {kind}") from None
    else:
        raise ValueError(f"{shown} is not a {kind}")
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"{shown} is not a finite number")
    if kind == "integer" and isinstance(number, float):
        if not number.is_integer():
            raise ValueError(f"{shown} is not an integer")
        number = int(number)
    return number
