"""An evaluation's results: per-scorer aggregates, usage, latency, exports, and comparing two evaluations."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from engine.evals.tables import EvalRowTable

Verdict = Literal["improved", "regressed", "same", "missing"]


@dataclass(frozen=True)
class ScorerSummary:
    scorer: str
    mean: float | None  # over the rows that ran (failed rows count 0)
    pass_rate: float | None  # share of those rows scoring ≥ the threshold
    passed: int


@dataclass(frozen=True)
class Summary:
    """The aggregates the CLI prints, the API returns and the page shows."""

    rows: int
    finished: int  # completed + failed + invalid
    completed: int
    failed: int  # the run failed (or was cancelled)
    invalid: int  # a bad cell: not run
    pending: int
    passed: int  # completed rows passing every scorer
    scorers: list[ScorerSummary]
    tokens: int
    cost_usd: float
    latency_p50_s: float | None
    latency_p95_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` (0..1) percentile by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(rows: Sequence[EvalRowTable], scorers: Sequence[str], threshold: float) -> Summary:
    counted = [r for r in rows if r.status in ("completed", "failed", "invalid")]
    per: list[ScorerSummary] = []
    for name in scorers:
        values = [_value(r, name) for r in counted]
        passed = sum(1 for v in values if v >= threshold)
        per.append(
            ScorerSummary(
                name,
                sum(values) / len(values) if values else None,
                passed / len(values) if values else None,
                passed,
            )
        )
    completed = [r for r in rows if r.status == "completed"]
    latencies = [r.latency_s for r in completed if r.latency_s is not None]
    return Summary(
        rows=len(rows),
        finished=len(counted),
        completed=len(completed),
        failed=sum(1 for r in rows if r.status in ("failed", "cancelled")),
        invalid=sum(1 for r in rows if r.status == "invalid"),
        pending=sum(1 for r in rows if r.status in ("pending", "running")),
        passed=sum(1 for r in completed if all(_value(r, s) >= threshold for s in scorers)),
        scorers=per,
        tokens=sum(r.tokens for r in rows),
        cost_usd=sum(r.cost_usd for r in rows),
        latency_p50_s=percentile(latencies, 0.5),
        latency_p95_s=percentile(latencies, 0.95),
    )


def _value(row: EvalRowTable, scorer: str) -> float:
    """A row's score for ``scorer``; a row that did not run (or has no such score) counts 0."""
    entry = (row.scores or {}).get(scorer)
    return float(entry["score"]) if isinstance(entry, dict) and "score" in entry else 0.0


def row_mean(row: EvalRowTable, scorers: Sequence[str]) -> float:
    return sum(_value(row, s) for s in scorers) / len(scorers) if scorers else 0.0


def row_record(row: EvalRowTable, scorers: Sequence[str]) -> dict[str, Any]:
    """One row flattened for export and tables: inputs, expected, output, status, each scorer's score and reason."""
    record: dict[str, Any] = {"row": row.row_index, "status": row.status, "run_id": row.run_id}
    record.update({f"input.{k}": v for k, v in (row.inputs or {}).items()})
    record["expected"] = row.expected
    record["output"] = row.output
    record["error"] = row.error
    for name in scorers:
        entry = (row.scores or {}).get(name) or {}
        record[f"score.{name}"] = entry.get("score")
        record[f"reason.{name}"] = entry.get("reason")
    record.update({"tokens": row.tokens, "cost_usd": row.cost_usd, "latency_s": row.latency_s})
    record.update({f"meta.{k}": v for k, v in (row.meta or {}).items()})
    return record


def export_text(rows: Sequence[EvalRowTable], scorers: Sequence[str], fmt: str) -> str:
    """The rows as ``csv`` or ``jsonl`` text (non-string cells of a CSV as JSON)."""
    records = [row_record(r, scorers) for r in rows]
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)
    if fmt != "csv":
        raise ValueError(f"export format must be csv or jsonl, not {fmt!r}")
    columns: dict[str, None] = {}
    for r in records:
        for k in r:
            columns.setdefault(k, None)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns))
    writer.writeheader()
    for r in records:
        writer.writerow({k: v if isinstance(v, str) or v is None else json.dumps(v, default=str) for k, v in r.items()})
    return out.getvalue()


@dataclass(frozen=True)
class RowChange:
    row: int
    verdict: Verdict
    before: float | None
    after: float | None


@dataclass
class Comparison:
    """B against A: per row improved / regressed / same (by the mean of the scorers both have), and deltas."""

    scorers: list[str]
    rows: list[RowChange]
    deltas: dict[str, float | None] = field(default_factory=dict)  # scorer -> B mean - A mean
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    rows_a: Sequence[EvalRowTable],
    scorers_a: Sequence[str],
    rows_b: Sequence[EvalRowTable],
    scorers_b: Sequence[str],
    *,
    threshold: float = 0.5,
    eps: float = 1e-9,
) -> Comparison:
    common = [s for s in scorers_a if s in scorers_b]
    by_a = {r.row_index: r for r in rows_a}
    by_b = {r.row_index: r for r in rows_b}
    changes: list[RowChange] = []
    for index in sorted(set(by_a) | set(by_b)):
        a, b = by_a.get(index), by_b.get(index)
        if a is None or b is None or not common:
            before = row_mean(a, common) if a is not None else None
            after = row_mean(b, common) if b is not None else None
            changes.append(RowChange(index, "missing", before, after))
            continue
        before, after = row_mean(a, common), row_mean(b, common)
        verdict: Verdict = "same" if abs(after - before) <= eps else ("improved" if after > before else "regressed")
        changes.append(RowChange(index, verdict, before, after))
    sa, sb = summarize(rows_a, common, threshold), summarize(rows_b, common, threshold)
    deltas: dict[str, float | None] = {}
    for x, y in zip(sa.scorers, sb.scorers, strict=True):
        deltas[x.scorer] = None if x.mean is None or y.mean is None else y.mean - x.mean
    counts = {v: sum(1 for c in changes if c.verdict == v) for v in ("improved", "regressed", "same", "missing")}
    return Comparison(common, changes, deltas, counts)
