"""The Evaluate page (AppTest): the example dataset mapped to the workflow's inputs, a run to the end with its
rows and run links, a missing required column listed, and a comparison with an earlier evaluation; History's
runs table says which evaluation row a run is."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from engine.evals.results import compare
from engine.evals.runner import evaluator_for
from engine.runtime import Runtime
from ui.runtime import get_runtime

APP = str(Path(__file__).resolve().parents[2] / "app.py")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "eval" / "calculator_eval.json"


def _page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/evaluate.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _button(at: AppTest, label: str):  # type: ignore[no-untyped-def]
    return next(b for b in at.button if b.label.startswith(label))


def test_run_the_example_then_compare(runtime: Runtime) -> None:
    at = _page()
    assert "No evaluations yet." in [i.value for i in at.info]
    _button(at, "Use the example dataset").click().run()
    assert any("32 rows" in m.value for m in at.markdown)
    assert at.multiselect(key="eval_scorers").value == ["numeric"]
    _button(at, "Run the evaluation").click().run()
    assert not at.exception, at.exception
    evaluator = evaluator_for(get_runtime())
    (first,) = evaluator.recent()
    evaluator.wait(first.id, timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert any(m.label == "Rows passed" and m.value == "28 / 32" for m in at.metric)
    table = at.dataframe[1].value  # the summary table, then the rows
    assert len(table) == 32 and table["run"].str.startswith("./run?run=").all()
    # a second evaluation with a stricter scorer: the comparison lists regressed rows
    at.multiselect(key="eval_scorers").set_value(["numeric", "exact"]).run()
    _button(at, "Run the evaluation").click().run()
    second = next(e for e in evaluator.recent() if e.id != first.id)
    evaluator.wait(second.id, timeout=120)
    at.run()
    assert at.selectbox(key="eval_pick").value == second.id
    assert not any("improved ·" in m.value for m in at.markdown)  # only the open tab (Rows) is drawn
    at.session_state["eval_tab"] = "Compare"  # (AppTest cannot click a tab; the browser test does)
    at.run()
    a_rows, b_rows = evaluator.rows(first.id), evaluator.rows(second.id)
    counts = compare(a_rows, list(first.scorers), b_rows, list(second.scorers)).counts
    assert sum(counts.values()) == 32  # every row compared, by the scorer the two share
    shown = f"**{counts['improved']} improved · {counts['regressed']} regressed · {counts['same']} same**"
    assert shown in [m.value for m in at.markdown], [m.value for m in at.markdown]
    assert not at.exception


def test_a_missing_required_column_is_listed_and_blocks_the_run(runtime: Runtime) -> None:
    at = _page()
    at.session_state["eval_dataset"] = ("bad.csv", b"prompt,expected\n1+1,2\n")
    at.run()
    assert any("Required input `question`" in e.value for e in at.error)
    assert _button(at, "Run the evaluation").disabled


def test_history_says_which_evaluation_a_run_belongs_to(runtime: Runtime) -> None:
    from engine.evals.dataset import read_dataset

    evaluator = evaluator_for(get_runtime())
    dataset = read_dataset(b"question,expected\nWhat is 2 + 3?,5\nWhat is 4 * 4?,16\n", "two.csv")
    eval_id = evaluator.start(str(EXAMPLE), dataset, ["numeric"])
    evaluator.wait(eval_id, timeout=120)
    mine = runtime.submit(str(EXAMPLE), {"question": "What is 1 + 1?"})
    runtime.wait(mine, 60)
    runtime.store.flush()
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/history.py")
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe(key="history_table").value
    by_run = dict(zip(table["run"], table["evaluation"], strict=True))
    assert by_run[mine] == ""  # a person's run: no evaluation
    rows = {r.run_id: r.row_index for r in evaluator.rows(eval_id)}
    assert {by_run[run_id] for run_id in rows} == {f"eval {eval_id[:8]} · row {i}" for i in rows.values()}
