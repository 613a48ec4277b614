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
from engine.evals.results import compare, export_text, row_record
from engine.evals.runner import Evaluator, evaluator_for
from engine.evals.scorers import BUILTIN, custom_scorers
from engine.examples import EXAMPLES, example_files
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
            f"**{len(dataset.records)} rows** from `{md_escape(dataset.name)}`. "
            f"Inputs from columns: {', '.join(f'`{c}`' for c in mapping.inputs) or 'none'}; "
            f"metadata: {', '.join(f'`{c}`' for c in mapping.metadata) or 'none'}."
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
labels = {e.id: f"{e.workflow_name} v{e.workflow_version} · {e.dataset_name} · {e.status} · {e.id[:8]}" for e in recent}
ids = list(labels)
if st.session_state.get(PICK) not in ids:
    st.session_state[PICK] = ids[0]
st.subheader("Results")
eval_id = st.selectbox("Evaluation", ids, format_func=lambda i: labels[i], key=PICK)


@st.fragment(run_every=0.5)
def _progress() -> None:
    progress = evaluator.progress(eval_id)
    if progress is None:
        return
    done, total = progress
    st.progress(done / total if total else 1.0, text=f"{done} of {total} rows")
    if st.button("Cancel", icon=":material/stop:"):
        evaluator.cancel(eval_id)
    if done >= total:
        st.rerun()


_progress()
record = evaluator.get(eval_id)
if record is None:
    st.stop()
scorer_names = list(record.scorers)
rows = evaluator.rows(eval_id)
summary = evaluator.summary(eval_id)
if record.status in ("interrupted", "cancelled") and st.button("Resume", icon=":material/replay:"):
    evaluator.resume(eval_id)
    st.rerun()

cols = st.columns(5)
cols[0].metric("Rows passed", f"{summary.passed} / {summary.rows}")
cols[1].metric("Failed to run", summary.failed + summary.invalid)
cols[2].metric("Tokens", f"{summary.tokens:,}")
cols[3].metric("Cost", f"${summary.cost_usd:.4f}")
p50 = "-" if summary.latency_p50_s is None else f"{summary.latency_p50_s:.2f} s"
p95 = "-" if summary.latency_p95_s is None else f"{summary.latency_p95_s:.2f} s"
cols[4].metric("Latency p50 / p95", f"{p50} / {p95}")
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
    frame["run"] = [f"./run?run={r}" if r else None for r in frame["run_id"]]
    for column in ("output", "expected"):
        frame[column] = [v if isinstance(v, str) or v is None else json.dumps(v) for v in frame[column]]
    return frame


records = [row_record(r, scorer_names) for r in rows]
frame = _table(records)
order = ["row", "status", *[c for c in frame.columns if c.startswith("input.")], "output", "expected"]
order += [c for c in frame.columns if c.startswith(("score.", "reason."))] + ["error", "tokens", "latency_s", "run"]
tab_rows, tab_chart, tab_compare = st.tabs(["Rows", "Score distribution", "Compare"])
with tab_rows:
    st.dataframe(
        frame[[c for c in order if c in frame.columns]],
        hide_index=True,
        column_config={"run": st.column_config.LinkColumn("run", display_text="open run")},
        key="eval_rows_table",
    )
    left, right = st.columns(2)
    left.download_button(
        "Export CSV",
        export_text(rows, scorer_names, "csv"),
        file_name=f"eval-{eval_id[:8]}.csv",
        icon=":material/download:",
    )
    right.download_button(
        "Export JSONL",
        export_text(rows, scorer_names, "jsonl"),
        file_name=f"eval-{eval_id[:8]}.jsonl",
        icon=":material/download:",
    )
with tab_chart:
    bins = [f"{i / 10:.1f}–{(i + 1) / 10:.1f}" for i in range(10)]
    counts = {s: [0] * 10 for s in scorer_names}
    for record_ in records:
        for s in scorer_names:
            value = record_.get(f"score.{s}")
            if isinstance(value, (int, float)):
                counts[s][min(9, int(value * 10))] += 1
    st.bar_chart(pd.DataFrame(counts, index=bins), x_label="score", y_label="rows")
with tab_compare:
    others = [i for i in ids if i != eval_id]
    if not others:
        st.info("Run another evaluation of the same dataset to compare.")
    else:
        base = st.selectbox("Compare with (earlier)", others, format_func=lambda i: labels[i], key="eval_base")
        base_record = evaluator.get(base)
        if base_record is not None:
            result = compare(evaluator.rows(base), list(base_record.scorers), rows, scorer_names)
            c = result.counts
            st.markdown(f"**{c['improved']} improved · {c['regressed']} regressed · {c['same']} same**")
            for name, delta in result.deltas.items():
                st.caption(f"{md_escape(name)}: mean {'n/a' if delta is None else f'{delta:+.3f}'}")
            changed = pd.DataFrame(
                [{"row": r.row, "change": r.verdict, "before": r.before, "after": r.after} for r in result.rows]
            )

            def _colour(value: Any) -> str:
                return {"improved": "background-color: #d7f5dd", "regressed": "background-color: #fbd9d9"}.get(
                    value, ""
                )

            st.dataframe(changed.style.map(_colour, subset=["change"]), hide_index=True, key="eval_compare_table")
