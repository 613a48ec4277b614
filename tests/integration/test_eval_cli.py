"""``python -m engine eval`` in real subprocesses (issue 18): bad datasets, bad rows, a crash mid-evaluation
then ``eval-resume`` (no row's run completes twice), cancel by SIGTERM, and ``eval-compare``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[2]
CALC = REPO / "examples" / "eval" / "calculator_eval.json"
DATASET = REPO / "examples" / "eval" / "arithmetic.csv"
TIMEOUT_S = 120


def _env(data: Path, delay: str = "0") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(DATA_DIR=str(data), OFFLINE_TOKEN_DELAY_S=delay, PYTHONPATH=str(REPO))
    env.pop("DATABASE_URL", None)
    return env


def _cli(data: Path, *args: str, delay: str = "0") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        env=_env(data, delay),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def _db(data: Path):  # type: ignore[no-untyped-def]
    return create_engine(f"sqlite:///{data / 'studio.db'}")


def _rows(data: Path) -> list[tuple[int, str, str | None]]:
    engine = _db(data)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT row_index, status, run_id FROM eval_rows"))]  # type: ignore[misc]
    finally:
        engine.dispose()


def _eval_ids(data: Path) -> list[str]:
    engine = _db(data)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(text("SELECT id FROM evals ORDER BY created_at"))]
    finally:
        engine.dispose()


def _small_dataset(tmp_path: Path, rows: int) -> Path:
    lines = DATASET.read_text().splitlines()
    path = tmp_path / "small.csv"
    path.write_text("\n".join(lines[: rows + 1]) + "\n")
    return path


def test_runs_the_example_and_exports(tmp_path: Path) -> None:
    out = tmp_path / "rows.jsonl"
    done = _cli(tmp_path, "eval", str(CALC), str(DATASET), "--scorer", "numeric", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "rows 32  ran 32" in done.stdout and "numeric" in done.stdout
    assert "32/32 rows" in done.stderr  # the progress bar
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 32 and all(r["run_id"] for r in records)
    passed = [r for r in records if r["score.numeric"] == 1.0]
    assert 25 <= len(passed) < 32  # meaningful: the word problems fail with the offline model


def test_missing_column_and_bad_scorer_are_reported_at_once_before_anything_runs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,expected\n1+1,2\n")
    done = _cli(tmp_path, "eval", str(CALC), str(bad), "--scorer", "numeric:-3", "--scorer", "nosuch")
    assert done.returncode == 2
    assert "input 'question'" in done.stderr and "numeric:-3" in done.stderr and "nosuch" in done.stderr
    assert "Traceback" not in done.stderr
    assert _eval_ids(tmp_path) == []


def test_a_bad_cell_is_a_row_error_and_the_exit_is_1(tmp_path: Path) -> None:
    workflow = tmp_path / "typed.json"
    workflow.write_text(
        json.dumps(
            {
                "format": "workflow/v1",
                "name": "typed",
                "inputs": {"n": {"type": "integer"}},
                "nodes": [
                    {"id": "start", "type": "input"},
                    {"id": "out", "type": "output", "config": {"value": "{{ inputs.n * 2 }}"}},
                ],
                "edges": [{"source": "start", "target": "out"}],
            }
        )
    )
    data = tmp_path / "d.jsonl"
    data.write_text('{"n": 2, "expected": 4}\n{"n": "two", "expected": 4}\n{"n": 5, "expected": 10}\n')
    out = tmp_path / "rows.csv"
    done = _cli(tmp_path, "eval", str(workflow), str(data), "--scorer", "numeric", "--out", str(out))
    assert done.returncode == 1, done.stderr
    assert "bad rows 1" in done.stdout
    statuses = {index: status for index, status, _ in _rows(tmp_path)}
    assert statuses == {0: "completed", 1: "invalid", 2: "completed"}
    assert "is not a integer" in out.read_text() or "is not an integer" in out.read_text()


def _completions(data: Path) -> Counter[str]:
    engine = _db(data)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT run_id FROM events WHERE type = 'run.completed'"))
            return Counter(r[0] for r in rows)
    finally:
        engine.dispose()


def _start(data: Path, dataset: Path) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "engine", "eval", str(CALC), str(dataset), "--scorer", "numeric"]
    return subprocess.Popen(
        [*args, "--concurrency", "2"],
        env=_env(data, "0.03"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_rows(data: Path, at_least: int) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if sum(1 for _, s, _ in _rows(data) if s == "completed") >= at_least:
                return
        except Exception:  # the tables may not exist yet
            pass
        time.sleep(0.05)
    raise AssertionError("the evaluation did not progress")


def test_crash_mid_evaluation_then_resume_runs_no_row_twice_to_completion(tmp_path: Path) -> None:
    dataset = _small_dataset(tmp_path, 12)
    proc = _start(tmp_path, dataset)
    try:
        _wait_rows(tmp_path, 3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = _rows(tmp_path)
    assert any(s != "completed" for _, s, _ in before), "the crash came too late to test anything"
    (eval_id,) = _eval_ids(tmp_path)
    done = _cli(tmp_path, "eval-resume", eval_id)
    assert done.returncode == 0, done.stderr
    after = _rows(tmp_path)
    assert len(after) == 12 and all(s == "completed" for _, s, _ in after)
    completions = _completions(tmp_path)
    assert all(completions[run_id] == 1 for _, _, run_id in after if run_id)
    assert sum(completions.values()) == 12  # no run beyond one per row


def test_cancel_by_sigterm_then_resume(tmp_path: Path) -> None:
    dataset = _small_dataset(tmp_path, 12)
    proc = _start(tmp_path, dataset)
    _wait_rows(tmp_path, 2)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 1, err
    assert "cancelling" in err
    (eval_id,) = _eval_ids(tmp_path)
    engine = _db(tmp_path)
    with engine.connect() as conn:
        (status,) = conn.execute(text("SELECT status FROM evals")).one()
    engine.dispose()
    assert status == "cancelled"
    assert any(s == "pending" for _, s, _ in _rows(tmp_path))
    done = _cli(tmp_path, "eval-resume", eval_id)
    assert done.returncode == 0, done.stderr
    assert all(s == "completed" for _, s, _ in _rows(tmp_path))
    assert all(n == 1 for n in _completions(tmp_path).values())


def test_compare_two_versions(tmp_path: Path) -> None:
    dataset = _small_dataset(tmp_path, 6)
    echo = tmp_path / "echo.json"
    document = json.loads(CALC.read_text())
    document["nodes"] = [n for n in document["nodes"] if n["id"] != "solver"]
    document["nodes"][-1]["config"]["value"] = "{{ inputs.question }}"
    document["edges"] = [{"source": "start", "target": "answer"}]
    echo.write_text(json.dumps(document))
    assert _cli(tmp_path, "eval", str(CALC), str(dataset), "--scorer", "numeric").returncode == 0
    assert _cli(tmp_path, "eval", str(echo), str(dataset), "--scorer", "numeric").returncode == 0
    a, b = _eval_ids(tmp_path)
    done = _cli(tmp_path, "eval-compare", a, b)
    assert done.returncode == 0, done.stderr
    assert "regressed" in done.stdout and "improved 0" in done.stdout
    assert "numeric" in done.stdout and "mean -" in done.stdout
    back = _cli(tmp_path, "eval-compare", b, a)
    assert "regressed 0" in back.stdout
    assert _cli(tmp_path, "eval-compare", a, "nope").returncode == 2
