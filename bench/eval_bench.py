"""Evaluation benchmark (issue 18): the cost of an evaluation over plain runs, and the Evaluate page's speed.

Figures and targets:

* ``eval_vs_direct``: 1,000 rows of the 3-node calculator workflow (``examples/eval/calculator_eval.json``:
  input -> agent with the calculator tool -> output) with the offline model, as one evaluation at
  concurrency 4 (scored ``numeric``), against 1,000 direct runs of the same workflow and inputs submitted
  by 4 threads (``Runtime.submit`` then ``Runtime.wait``), on one ``Runtime`` over a SQLite store in a
  temporary ``DATA_DIR``. Target: eval wall ≤ 1.5 × direct wall (same-run ratio; the order of the two
  alternates over the repeats). Also printed: the same ratio in CPU seconds of the process (all threads),
  which other jobs on a shared machine move less than wall time.
* ``page_apptest_1000``: the Evaluate page (``views/evaluate.py`` through ``app.py``) rendering a finished
  1,000-row evaluation in ``streamlit.testing`` AppTest: seconds of ``at.run()`` after the page switch
  (≤ 2 s).
* ``page_browser_1000``: the same evaluation in Chromium at 1400x1000 under ``streamlit run``: from
  ``page.goto('/evaluate')`` to the rows table (``.st-key-eval_rows``) visible (≤ 2 s). Also printed:
  ``shell_s``, the same server's History page to its title (what any page of the studio costs there
  before its own content: on a loaded machine most of the figure).
  Skipped, with the reason, when Chromium or Playwright is missing.

Run: ``python bench/eval_bench.py [--rows N] [--repeat N] [--only engine|page]``. Prints one JSON
line per figure; each figure is the median over the repeats, every try listed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORKFLOW = ROOT / "examples" / "eval" / "calculator_eval.json"
CONCURRENCY = 4
TARGETS = {"eval_vs_direct": 1.5, "page_apptest_1000": 2.0, "page_browser_1000": 2.0}
OPS = ("+", "-", "*")
ROWS_TABLE = ".st-key-eval_rows [data-testid=stDataFrameResizable]"


def _offline_env() -> None:
    """No API key: the runs use the offline model (as with the studio's default settings)."""
    for key in [k for k in os.environ if k.startswith("OPENAI_")]:
        del os.environ[key]
    os.environ.pop("DATABASE_URL", None)


def dataset_rows(n: int) -> list[dict[str, Any]]:
    """``n`` arithmetic questions with their expected answers (``question``, ``expected``, ``kind``)."""
    rows = []
    for i in range(n):
        a, b, op = 3 + i % 97, 2 + (i * 7) % 89, OPS[i % 3]
        expected = a + b if op == "+" else a - b if op == "-" else a * b
        rows.append({"question": f"What is {a} {op} {b}?", "expected": str(expected), "kind": op})
    return rows


def dataset_csv(n: int) -> bytes:
    lines = ["question,expected,kind"] + [f"{r['question']},{r['expected']},{r['kind']}" for r in dataset_rows(n)]
    return ("\n".join(lines) + "\n").encode()


def _direct(runtime: Any, workflow: Any, rows: list[dict[str, Any]]) -> tuple[float, float]:
    def one(row: dict[str, Any]) -> str:
        run_id = runtime.submit(workflow, {"question": row["question"]})
        info = runtime.wait(run_id)
        while not info.finished:
            info = runtime.wait(run_id, timeout=1.0)
        return str(info.status)

    began, cpu = time.perf_counter(), time.process_time()
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        statuses = list(pool.map(one, rows))
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    bad = [s for s in statuses if s != "completed"]
    if bad:
        raise RuntimeError(f"{len(bad)} direct runs did not complete: {bad[:3]}")
    return wall, cpu


def _evaluation(runtime: Any, workflow: Any, n: int) -> tuple[float, float, str]:
    from engine.evals.dataset import read_dataset
    from engine.evals.runner import evaluator_for

    evaluator = evaluator_for(runtime)
    dataset = read_dataset(dataset_csv(n), "bench.csv")
    began, cpu = time.perf_counter(), time.process_time()
    eval_id = evaluator.start(workflow, dataset, ["numeric"], concurrency=CONCURRENCY)
    record = evaluator.wait(eval_id)
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    summary = evaluator.summary(eval_id)
    if record.status != "completed" or summary.completed != n:
        raise RuntimeError(f"evaluation {record.status}: {summary.completed} of {n} rows completed")
    return wall, cpu, eval_id


def measure_engine(n: int, repeat: int) -> dict[str, Any]:
    """Eval wall against direct wall on one runtime; the order alternates so neither always runs warm."""
    from engine import load_workflow
    from engine.runtime import Runtime

    tries: list[dict[str, float]] = []  # wall and CPU seconds (this process, all threads) of each
    with tempfile.TemporaryDirectory() as tmp, Runtime(data_dir=str(Path(tmp) / "data")) as runtime:
        workflow = load_workflow(str(WORKFLOW), tools=runtime.tools)
        rows = dataset_rows(n)
        _direct(runtime, workflow, rows[:20])  # warm-up: imports, first store writes
        for i in range(repeat):
            if i % 2 == 0:
                direct, direct_cpu = _direct(runtime, workflow, rows)
                evaluation, eval_cpu, _ = _evaluation(runtime, workflow, n)
            else:
                evaluation, eval_cpu, _ = _evaluation(runtime, workflow, n)
                direct, direct_cpu = _direct(runtime, workflow, rows)
            tries.append(
                {
                    "direct_s": round(direct, 3),
                    "eval_s": round(evaluation, 3),
                    "direct_cpu_s": round(direct_cpu, 3),
                    "eval_cpu_s": round(eval_cpu, 3),
                }
            )
    ratios = [t["eval_s"] / t["direct_s"] for t in tries]
    ratio = statistics.median(ratios)
    cpu_ratio = statistics.median(t["eval_cpu_s"] / t["direct_cpu_s"] for t in tries)
    return {
        "bench": "eval_vs_direct",
        "rows": n,
        "concurrency": CONCURRENCY,
        "direct_s": statistics.median(t["direct_s"] for t in tries),
        "eval_s": statistics.median(t["eval_s"] for t in tries),
        "ratio": round(ratio, 3),
        "cpu_ratio": round(cpu_ratio, 3),  # the same in CPU seconds: less moved by other jobs on the machine
        "target": TARGETS["eval_vs_direct"],
        "ok": ratio <= TARGETS["eval_vs_direct"],
        "tries": tries,
    }


def _seed(data_dir: Path, n: int) -> str:
    """A finished ``n``-row evaluation in the store of ``data_dir``; its id."""
    from engine import load_workflow
    from engine.runtime import Runtime

    with Runtime(data_dir=str(data_dir)) as runtime:
        workflow = load_workflow(str(WORKFLOW), tools=runtime.tools)
        _, _, eval_id = _evaluation(runtime, workflow, n)
        return eval_id


def measure_apptest(data_dir: Path, repeat: int) -> dict[str, Any]:
    from streamlit.testing.v1 import AppTest

    os.environ["DATA_DIR"] = str(data_dir)
    tries = []
    for _ in range(repeat):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.run()
        at.switch_page("views/evaluate.py")
        began = time.perf_counter()
        at.run()
        tries.append(round(time.perf_counter() - began, 3))
        if at.exception:
            raise RuntimeError(f"the Evaluate page failed: {at.exception}")
        shown = max((len(d.value) for d in at.dataframe), default=0)
        if shown < 1000:
            raise RuntimeError(f"the Evaluate page showed {shown} rows, not the 1,000-row evaluation")
    value = statistics.median(tries)
    return {
        "bench": "page_apptest_1000",
        "seconds": value,
        "target": TARGETS["page_apptest_1000"],
        "ok": value <= TARGETS["page_apptest_1000"],
        "tries": tries,
    }


def measure_browser(data_dir: Path, repeat: int) -> dict[str, Any]:
    from tests.browser.studio import VIEWPORT, launch_chromium, missing_requirements, start_studio

    missing = missing_requirements()
    if missing:
        return {"bench": "page_browser_1000", "skipped": missing}
    from playwright.sync_api import sync_playwright

    studio = start_studio(data_dir)
    tries: list[float] = []
    shell: list[float] = []
    try:
        with sync_playwright() as p:
            chromium = launch_chromium(p)
            for i in range(repeat + 1):  # the first visit warms the server's imports: not counted
                for path, shown in (("evaluate", ROWS_TABLE), ("history", "h1")):
                    context = chromium.new_context(viewport=VIEWPORT)
                    page = context.new_page()
                    began = time.perf_counter()
                    page.goto(f"{studio.url}/{path}")
                    page.locator(shown).first.wait_for(state="visible", timeout=60_000)
                    seconds = round(time.perf_counter() - began, 3)
                    if i:
                        (tries if path == "evaluate" else shell).append(seconds)
                    elif path == "evaluate":
                        page.screenshot(path=str(_shots() / "eval-bench-1000.png"))
                    context.close()
            chromium.close()
    finally:
        studio.stop()
    value = statistics.median(tries)
    return {
        "bench": "page_browser_1000",
        "seconds": value,
        "target": TARGETS["page_browser_1000"],
        "ok": value <= TARGETS["page_browser_1000"],
        "viewport": f"{VIEWPORT['width']}x{VIEWPORT['height']}",
        "tries": tries,
        # the same server's History page to its title: what any page costs here before its own content
        "shell_s": statistics.median(shell),
    }


def _shots() -> Path:
    folder = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / "artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("engine", "page"))
    args = parser.parse_args()
    _offline_env()
    if args.only != "page":
        print(json.dumps(measure_engine(args.rows, args.repeat)), flush=True)
    if args.only != "engine":
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp) / "data"
            _seed(data_dir, 1000)
            print(json.dumps(measure_apptest(data_dir, args.repeat)), flush=True)
            print(json.dumps(measure_browser(data_dir, args.repeat)), flush=True)


if __name__ == "__main__":
    main()
