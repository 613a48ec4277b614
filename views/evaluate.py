"""Evaluate: run a workflow over a dataset, score every row, compare with an earlier evaluation (docs/evaluate.md).

Upload a dataset (or take the shipped example), see its columns against the workflow's inputs, pick
scorers, run with a progress bar; then the rows (inputs, output, expected, scores, a link to each run),
a score distribution, a comparison with another evaluation and exports.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from engine import WorkflowInvalid, load_workflow
from engine.evals.dataset import Dataset, DatasetInvalid, map_columns, read_dataset
from engine.evals.results import Summary, compare, export_text, row_record, summarize
from engine.evals.runner import Evaluator, evaluator_for
from engine.evals.scorers import BUILTIN, custom_scorers
from engine.evals.tables import EvalRowTable
from engine.examples import EXAMPLES, example_files
from engine.timefmt import format_ts
from ui.runtime import runtime_or_stop
from ui.text import md_escape

EXAMPLE_DATASET = EXAMPLES / "eval" / "arithmetic.csv"
EXAMPLE_WORKFLOW = EXAMPLES / "eval" / "calculator_eval.json"
PICK = "eval_pick"  # the evaluation the results section shows
DATASET = "eval_dataset"  # (name, bytes) of the dataset picked

runtime = runtime_or_stop()
evaluator: Evaluator = evaluator_for(runtime)

st.title("Evaluate")
st.caption(
    "Run a workflow over every row of a dataset, score each output, compare with an earlier evaluation. "
    "Each row is a normal run: its link opens it on the Run page."
)


def _code(text: object) -> str:
    """A code span (shown as typed: a file or column name escaped with backslashes would show them)."""
    return "`" + str(text).replace("`", "'").replace("\n", " ") + "`"


def _workflow_choices() -> dict[str, Any]:
    choices: dict[str, Any] = {f"Example: {EXAMPLE_WORKFLOW.stem}": str(EXAMPLE_WORKFLOW)}
    for path in example_files():
        choices[f"Example: {path.stem}"] = str(path)
    for record in runtime.reader.workflows():
        found = runtime.reader.workflow_version(record.id)
        if found is not None:
            choices[f"Saved: {record.name}"] = found.document
    return choices


with st.container(border=True):
    st.subheader("New evaluation")
    choices = _workflow_choices()
    picked = st.selectbox("Workflow", list(choices), key="eval_workflow")
    try:
        workflow = load_workflow(choices[picked], tools=runtime.tools)
    except WorkflowInvalid as exc:
        st.error(f"This workflow is invalid: {md_escape(str(exc).splitlines()[0])}")
        st.stop()
    upload = st.file_uploader("Dataset (CSV, JSONL or a JSON list of objects)", type=["csv", "jsonl", "json"])
    if upload is not None:
        st.session_state[DATASET] = (upload.name, upload.getvalue())
    if st.button("Use the example dataset (32 arithmetic questions)", icon=":material/dataset:"):
        st.session_state[DATASET] = (EXAMPLE_DATASET.name, EXAMPLE_DATASET.read_bytes())
    dataset: Dataset | None = None
    if DATASET in st.session_state:
        name, raw = st.session_state[DATASET]
        try:
            dataset = read_dataset(raw, name)
        except DatasetInvalid as exc:
            st.error(md_escape(str(exc)))
    if dataset is not None:
        expected = st.selectbox(
            "Expected-output column",
            dataset.columns,
            index=dataset.columns.index("expected") if "expected" in dataset.columns else 0,
            key="eval_expected",
        )
        mapping = map_columns(workflow, dataset, expected)
        st.markdown(
            f"**{len(dataset.records)} rows** from {_code(dataset.name)}. "
            f"Inputs from columns: {', '.join(_code(c) for c in mapping.inputs) or 'none'}; "
            f"metadata: {', '.join(_code(c) for c in mapping.metadata) or 'none'}."
        )
        for missing in mapping.missing_required:
            st.error(f"Required input `{missing}` has no column in the dataset.", icon=":material/error:")
        for missing in mapping.missing_optional:
            st.info(f"Optional input `{missing}` has no column: its default is used.", icon=":material/info:")
        options = [s for s in BUILTIN if s != "json"] + ["exact:ci", *custom_scorers()]
        scorers = st.multiselect("Scorers", options, default=["numeric"], key="eval_scorers")
        extra = st.text_input(
            "More scorers (specs, comma-separated)",
            key="eval_extra",
            placeholder="numeric:0.01, json:result.answer, regex:^\\d+$, llm_judge:Is it polite?",
        )
        specs = scorers + [s.strip() for s in extra.split(",") if s.strip()]
        left, right = st.columns(2)
        concurrency = left.number_input("Rows at once", 1, 64, 4, key="eval_concurrency")
        threshold = right.number_input("Pass threshold", 0.0, 1.0, 0.5, 0.05, key="eval_threshold")
        if st.button(
            "Run the evaluation", type="primary", icon=":material/play_arrow:", disabled=bool(mapping.missing_required)
        ):
            try:
                eval_id = evaluator.start(
                    workflow,
                    dataset,
                    specs,
                    expected=expected,
                    concurrency=int(concurrency),
                    threshold=float(threshold),
                )
            except (DatasetInvalid, ValueError) as exc:
                st.error(md_escape(str(exc)), icon=":material/error:")
            else:
                st.session_state[PICK] = eval_id  # the results below show the new evaluation


recent = evaluator.recent(limit=100)
if not recent:
    st.info("No evaluations yet.")
    st.stop()
# No status in the labels: a label that changes while the evaluation is picked (running -> completed) is not
# taken for the same option by the browser, which would keep showing the old one.
labels = {
    e.id: f"{e.workflow_name} v{e.workflow_version} · {e.dataset_name} · {format_ts(e.created_at)} · {e.id[:8]}"
    for e in recent
}
ids = list(labels)
if st.session_state.get(PICK) not in ids:
    st.session_state[PICK] = ids[0]
st.subheader("Results")
eval_id = st.selectbox("Evaluation", ids, format_func=lambda i: labels[i], key=PICK)


RUNNING = "eval_running"  # the evaluation this session last saw running (its end reruns the whole page)


def _progress_bar() -> bool:
    """The progress bar and Cancel of the evaluation shown while it runs here; True while it runs.

    When it has just ended (the evaluator no longer runs it: its status is stored by then) the whole
    page reruns, so the Resume button, the status in the select box and the refresh timer follow."""
    progress = evaluator.progress(eval_id)
    if progress is None:
        if st.session_state.get(RUNNING) == eval_id:
            st.session_state[RUNNING] = None
            st.rerun(scope="app")
        return False
    st.session_state[RUNNING] = eval_id
    done, total = progress
    st.progress(done / total if total else 1.0, text=f"{done} of {total} rows")
    if st.button("Cancel", icon=":material/stop:", key="eval_cancel"):
        evaluator.cancel(eval_id)
    return True


def _results() -> None:
    """Everything below the select box: while the evaluation runs, redrawn every second (bar and rows)."""
    _progress_bar()
    record = evaluator.get(eval_id)
    if record is None:
        st.stop()
    st.caption(f"Status: **{record.status}** · scorers: {', '.join(_code(s) for s in record.scorers)}")
    scorer_names = list(record.scorers)
    rows = evaluator.rows(eval_id)
    summary = summarize(rows, scorer_names, record.threshold)  # from the rows read above: one read, not two
    if record.status in ("interrupted", "cancelled") and st.button("Resume", icon=":material/replay:"):
        evaluator.resume(eval_id)
        st.rerun(scope="app")
    _summary(summary, rows, scorer_names)
    records = [row_record(r, scorer_names) for r in rows]
    # Only the open tab is drawn (a tab switch reruns): the chart and the comparison of two 1,000-row
    # evaluations are not computed, sent and laid out behind the rows nobody asked for
    tabs = ["Rows", "Score distribution", "Compare"]
    tab_rows, tab_chart, tab_compare = st.tabs(tabs, key="eval_tab", on_change="rerun")
    if tab_rows.open:
        with tab_rows:
            _rows_tab(records, scorer_names)
    if tab_chart.open:
        with tab_chart:
            _distribution(records, scorer_names)
    if tab_compare.open:
        with tab_compare:
            _compare(rows, scorer_names)


def _rows_tab(records: list[dict[str, Any]], scorer_names: list[str]) -> None:
    frame = _table(records)
    order = ["row", "status", *[c for c in frame.columns if c.startswith("input.")], "output", "expected"]
    order += [c for c in frame.columns if c.startswith(("score.", "reason."))]
    order += ["error", "tokens", "latency_s", "run"]
    with st.container(key="eval_rows"):  # the key gives the table a CSS class the tests find
        st.dataframe(
            frame[[c for c in order if c in frame.columns]],
            hide_index=True,
            column_config={"run": st.column_config.LinkColumn("run", display_text="open run")},
            key="eval_rows_table",
        )
        left, right = st.columns(2)
        left.download_button(  # the export is made on the click, not on every redraw
            "Export CSV",
            lambda: export_text(evaluator.rows(eval_id), scorer_names, "csv"),
            file_name=f"eval-{eval_id[:8]}.csv",
            icon=":material/download:",
            on_click="ignore",
        )
        right.download_button(
            "Export JSONL",
            lambda: export_text(evaluator.rows(eval_id), scorer_names, "jsonl"),
            file_name=f"eval-{eval_id[:8]}.jsonl",
            icon=":material/download:",
            on_click="ignore",
        )


def _distribution(records: list[dict[str, Any]], scorer_names: list[str]) -> None:
    bins = [f"{i / 10:.1f}–{(i + 1) / 10:.1f}" for i in range(10)]
    counts = {s: [0] * 10 for s in scorer_names}
    for record in records:
        for s in scorer_names:
            value = record.get(f"score.{s}")
            if isinstance(value, (int, float)):
                counts[s][min(9, int(value * 10))] += 1
    st.bar_chart(pd.DataFrame(counts, index=bins), x_label="score", y_label="rows")


def _summary(summary: Summary, rows: list[EvalRowTable], scorer_names: list[str]) -> None:
    cols = st.columns([1, 1, 1, 1, 1.5])  # the latency's two figures need the room
    cols[0].metric("Rows passed", f"{summary.passed} / {summary.rows}")
    cols[1].metric("Failed to run", summary.failed + summary.invalid)
    cols[2].metric("Tokens", f"{summary.tokens:,}")
    cols[3].metric("Cost", f"${summary.cost_usd:.4f}")
    p50 = "-" if summary.latency_p50_s is None else f"{summary.latency_p50_s:.2f}"
    p95 = "-" if summary.latency_p95_s is None else f"{summary.latency_p95_s:.2f}"
    cols[4].metric("Latency p50 / p95 (s)", f"{p50} / {p95}")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "scorer": s.scorer,
                    "mean": s.mean,
                    "pass rate": None if s.pass_rate is None else s.pass_rate * 100,
                    "passed": s.passed,
                }
                for s in summary.scorers
            ]
        ),
        hide_index=True,
        column_config={"pass rate": st.column_config.NumberColumn(format="%.0f%%")},
    )
    if any(
        "judged by the offline model" in str((r.scores or {}).get(s, {}).get("reason", ""))
        for r in rows[:50]
        for s in scorer_names
    ):
        st.caption("llm_judge scores come from the offline model: a stand-in, not a judgement.")


def _table(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(records)
    # a pending row's run does not exist yet: no link to it
    frame["run"] = [
        f"./run?run={r}" if r and status != "pending" else None
        for r, status in zip(frame["run_id"], frame["status"], strict=True)
    ]
    for column in ("output", "expected"):
        frame[column] = [v if isinstance(v, str) else "" if v is None else json.dumps(v) for v in frame[column]]
    return frame


def _compare(rows: list[EvalRowTable], scorer_names: list[str]) -> None:
    others = [i for i in ids if i != eval_id]
    if not others:
        st.info("Run another evaluation of the same dataset to compare.")
        return
    base = st.selectbox("Compare with (earlier)", others, format_func=lambda i: labels[i], key="eval_base")
    base_record = evaluator.get(base)
    if base_record is None:
        return
    result = compare(evaluator.rows(base), list(base_record.scorers), rows, scorer_names)
    c = result.counts
    st.markdown(f"**{c['improved']} improved · {c['regressed']} regressed · {c['same']} same**")
    for name, delta in result.deltas.items():
        st.caption(f"{md_escape(name)}: mean {'n/a' if delta is None else f'{delta:+.3f}'}")
    changed = pd.DataFrame(
        [{"row": r.row, "change": r.verdict, "before": r.before, "after": r.after} for r in result.rows]
    )

    def _colour(value: Any) -> str:
        return {"improved": "background-color: #d7f5dd", "regressed": "background-color: #fbd9d9"}.get(value, "")

    with st.container(key="eval_compare"):
        st.dataframe(
            changed.style.map(_colour, subset=["change"]).format("{:.2f}", subset=["before", "after"], na_rep="-"),
            hide_index=True,
            key="eval_compare_table",
        )


# While the evaluation runs here the results are a fragment redrawn every second (the progress bar and the
# rows as they finish, without a reload); once it has ended they are drawn once, with no timer.
if evaluator.progress(eval_id) is not None:
    st.fragment(run_every=1.0)(_results)()
else:
    _results()
