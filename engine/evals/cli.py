"""``python -m engine eval``, ``eval-resume`` and ``eval-compare``: evaluations from a terminal.

Progress goes to stderr, the summary table to stdout. Exit codes: 0 when every
row ran (whatever the scores), 1 when rows failed to run (a failed run, a bad
cell, a cancel), 2 for bad input (workflow, dataset, scorer, unknown id).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from engine.errors import EngineError, WorkflowInvalid
from engine.evals.dataset import DatasetInvalid, read_dataset
from engine.evals.results import Summary, compare, export_text
from engine.evals.runner import DEFAULT_CONCURRENCY, EvalNotFound, EvalNotResumable, Evaluator
from engine.examples import workflow_file
from engine.runtime import Runtime

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
OpenRuntime = Callable[[argparse.Namespace], "Runtime | int"]


def add_parsers(sub: Any, open_runtime: OpenRuntime) -> None:
    """Register ``eval``, ``eval-resume`` and ``eval-compare`` on the CLI's subparsers."""
    ev = sub.add_parser("eval", help="run a workflow over a dataset (CSV, JSONL, JSON list) and score every row")
    ev.add_argument("file", help="workflow file, or a shipped example's name")
    ev.add_argument("dataset", help="dataset file: .csv, .jsonl or .json (a list of objects)")
    ev.add_argument("--expected", default="expected", metavar="COL", help="the expected-output column")
    ev.add_argument(
        "--scorer",
        action="append",
        default=[],
        metavar="SPEC",
        help="exact[:ci], contains, regex[:PATTERN], json:PATH, numeric[:TOL|N%%], llm_judge[:RUBRIC], or a custom "
        "one (repeatable; default exact)",
    )
    ev.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="rows at once (default 4)")
    ev.add_argument("--threshold", type=float, default=0.5, help="a score at or above it passes (default 0.5)")
    ev.add_argument("--out", metavar="FILE", help="write every row to FILE.csv or FILE.jsonl")
    ev.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    ev.add_argument("--db", metavar="URL", help="store URL (default: DATABASE_URL, else $DATA_DIR/studio.db)")
    ev.set_defaults(handler=lambda args: cmd_eval(args, open_runtime))
    resume = sub.add_parser("eval-resume", help="continue an interrupted or cancelled evaluation")
    resume.add_argument("eval_id")
    resume.add_argument("--out", metavar="FILE")
    resume.add_argument("--quiet", action="store_true")
    resume.add_argument("--db", metavar="URL")
    resume.set_defaults(handler=lambda args: cmd_eval_resume(args, open_runtime))
    cmp = sub.add_parser("eval-compare", help="compare two evaluations of the same dataset row by row")
    cmp.add_argument("a", help="the earlier evaluation's id")
    cmp.add_argument("b", help="the later evaluation's id")
    cmp.add_argument("--db", metavar="URL")
    cmp.set_defaults(handler=lambda args: cmd_eval_compare(args, open_runtime))


def cmd_eval(args: argparse.Namespace, open_runtime: OpenRuntime) -> int:
    if args.out and Path(args.out).suffix.lower() not in (".csv", ".jsonl"):
        print(f"--out {args.out}: must end in .csv or .jsonl", file=sys.stderr)
        return EXIT_INVALID
    path = workflow_file(args.file)
    try:
        dataset = read_dataset(args.dataset)
    except DatasetInvalid as exc:
        print(f"{args.dataset}: {exc}", file=sys.stderr)
        return EXIT_INVALID

    def start(evaluator: Evaluator) -> int:
        try:
            eval_id = evaluator.start(
                str(path),
                dataset,
                args.scorer or ["exact"],
                expected=args.expected,
                concurrency=args.concurrency,
                threshold=args.threshold,
            )
        except WorkflowInvalid as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return EXIT_INVALID
        except (DatasetInvalid, ValueError) as exc:
            print(f"{args.dataset}: {exc}", file=sys.stderr)
            return EXIT_INVALID
        return _follow(evaluator, eval_id, args)

    return _with_evaluator(args, open_runtime, start)


def cmd_eval_resume(args: argparse.Namespace, open_runtime: OpenRuntime) -> int:
    def resume(evaluator: Evaluator) -> int:
        try:
            evaluator.resume(args.eval_id)
        except (EvalNotFound, EvalNotResumable, WorkflowInvalid) as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_INVALID
        return _follow(evaluator, args.eval_id, args)

    return _with_evaluator(args, open_runtime, resume)


def cmd_eval_compare(args: argparse.Namespace, open_runtime: OpenRuntime) -> int:
    return _with_evaluator(args, open_runtime, lambda evaluator: _compare(evaluator, args.a, args.b, sys.stdout))


def _with_evaluator(args: argparse.Namespace, open_runtime: OpenRuntime, body: Callable[[Evaluator], int]) -> int:
    """Open the store's runtime (or return its exit code), run ``body`` with an evaluator, shut it down."""
    runtime = open_runtime(args)
    if isinstance(runtime, int):
        return runtime
    try:
        return body(Evaluator(runtime))
    finally:
        runtime.shutdown()


def _compare(evaluator: Evaluator, a_id: str, b_id: str, out: TextIO) -> int:
    a, b = evaluator.get(a_id), evaluator.get(b_id)
    missing = [i for i, e in ((a_id, a), (b_id, b)) if e is None]
    if missing or a is None or b is None:
        print(f"no evaluation {', '.join(repr(m) for m in missing)}", file=sys.stderr)
        return EXIT_INVALID
    result = compare(evaluator.rows(a.id), list(a.scorers), evaluator.rows(b.id), list(b.scorers))
    if not result.scorers:
        print("the two evaluations share no scorer", file=sys.stderr)
        return EXIT_INVALID
    print(f"compare {a_id} -> {b_id} ({a.workflow_name} v{a.workflow_version} -> v{b.workflow_version})", file=out)
    counts = result.counts
    print(
        f"improved {counts['improved']}  regressed {counts['regressed']}  same {counts['same']}"
        + (f"  missing {counts['missing']}" if counts["missing"] else ""),
        file=out,
    )
    for name, delta in result.deltas.items():
        print(f"  {name:<24} mean {'n/a' if delta is None else f'{delta:+.3f}'}", file=out)
    for change in result.rows:
        if change.verdict in ("improved", "regressed"):
            print(f"  row {change.row:>5}  {change.verdict:<9} {change.before:.2f} -> {change.after:.2f}", file=out)
    return EXIT_OK


class _Interrupted(Exception):
    pass


def _raise(_signum: int, _frame: Any) -> None:
    raise _Interrupted


def _follow(evaluator: Evaluator, eval_id: str, args: argparse.Namespace) -> int:
    """Show a progress bar until the evaluation ends (Ctrl-C / SIGTERM cancels it), then the summary."""
    bar = None if args.quiet else _Bar(sys.stderr)
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        while True:
            try:
                record = evaluator.wait(eval_id, timeout=0.2)
                progress = evaluator.progress(eval_id)
                if progress is None:
                    break
                if bar is not None:
                    bar.show(*progress)
            except (KeyboardInterrupt, _Interrupted):
                print("\ncancelling the evaluation ...", file=sys.stderr)
                evaluator.cancel(eval_id)
                record = evaluator.wait(eval_id, timeout=60)
                break
    finally:
        signal.signal(signal.SIGTERM, previous)
    summary = evaluator.summary(eval_id)
    if bar is not None:
        bar.show(summary.finished, summary.rows)
        bar.end()
    if args.out:
        try:
            Path(args.out).write_text(
                export_text(evaluator.rows(eval_id), list(record.scorers), Path(args.out).suffix.lower()[1:]),
                encoding="utf-8",
            )
        except OSError as exc:
            print(f"--out {args.out}: cannot write there: {exc.strerror}", file=sys.stderr)
    print_summary(eval_id, record.status, summary, sys.stdout)
    if not evaluator.runtime.settings.llm.configured:
        print(
            "note: answered by the offline model (set OPENAI_BASE_URL or OPENAI_API_KEY for a real one)",
            file=sys.stderr,
        )
    return EXIT_OK if summary.failed == 0 and summary.invalid == 0 and summary.pending == 0 else EXIT_FAILED


def print_summary(eval_id: str, status: str, summary: Summary, out: TextIO) -> None:
    print(f"evaluation {eval_id} {status}", file=out)
    print(
        f"rows {summary.rows}  ran {summary.completed}  failed {summary.failed}  bad rows {summary.invalid}"
        f"  not run {summary.pending}  passed {summary.passed}",
        file=out,
    )
    print(f"{'scorer':<28} {'mean':>6} {'pass rate':>10}", file=out)
    for s in summary.scorers:
        mean = "-" if s.mean is None else f"{s.mean:.3f}"
        rate = "-" if s.pass_rate is None else f"{s.pass_rate:.0%}"
        print(f"{s.scorer[:28]:<28} {mean:>6} {rate:>10}", file=out)
    p50 = "-" if summary.latency_p50_s is None else f"{summary.latency_p50_s:.2f}s"
    p95 = "-" if summary.latency_p95_s is None else f"{summary.latency_p95_s:.2f}s"
    print(f"tokens {summary.tokens}  cost ${summary.cost_usd:.4f}  latency p50 {p50}  p95 {p95}", file=out)


class _Bar:
    def __init__(self, stream: TextIO, width: int = 30):
        self.stream, self.width, self.last = stream, width, (-1, -1)
        self.started = time.monotonic()

    def show(self, done: int, total: int) -> None:
        if (done, total) == self.last:
            return
        self.last = (done, total)
        filled = int(self.width * done / total) if total else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.monotonic() - self.started
        self.stream.write(f"\r[{bar}] {done}/{total} rows  {elapsed:.1f}s")
        self.stream.flush()

    def end(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


__all__ = ["EngineError", "add_parsers", "cmd_eval", "cmd_eval_compare", "cmd_eval_resume", "print_summary"]
