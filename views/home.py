"""Home: which model answers, the latest runs, and templates to open or run in one click."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import streamlit as st

from engine import WorkflowInvalid, load_workflow
from engine.errors import EngineError
from engine.llm import endpoint_status
from ui import approval_panel
from ui.nav import open_in_builder, open_in_history, watch_run
from ui.run_parts import badge, code, when
from ui.runtime import get_runtime
from ui.text import md_escape

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
RECENT = 8


def model_banner() -> None:
    """Which model answers, said plainly (never the key, nor the URL's user-info or query)."""
    llm = get_runtime().settings.llm  # what the runs started now are handed
    endpoint = endpoint_status(llm)
    if endpoint.configured:
        base = endpoint.shown_url
        if endpoint.problems:  # a malformed URL saved or set in the environment: say so, do not fail the page
            st.warning(
                f"**Model:** the endpoint URL {code(base)} is not usable ({md_escape('; '.join(endpoint.problems))}), "
                "so agent runs fail. Fix the Base URL on the Settings page.",
                icon=":material/cloud_off:",
            )
            return
        model = llm.model
        named = f"model {code(model)}" if model else "the model each workflow or node names (no `OPENAI_MODEL` set)"
        st.success(
            f"**Model:** an OpenAI-compatible endpoint at {code(base)}, {named}. Change it on the Settings page.",
            icon=":material/cloud:",
        )
    else:
        st.info(
            "**Model:** the offline model that ships with the studio: answers are offline. "
            "Set an endpoint on the Settings page for real model answers.",
            icon=":material/cloud_off:",
        )


def recent_runs() -> None:
    st.subheader("Recent runs")
    runs = get_runtime().reader.runs(limit=RECENT)
    if not runs:
        st.caption("No runs yet: run a template below.")
        return
    for run in runs:
        with st.container(border=True):
            text, button = st.columns([4, 1.4], vertical_alignment="center")
            text.markdown(f"{badge(run.status)} **{md_escape(run.workflow_name)}**")
            text.caption(f"{when(run.created_at)} · {code(run.run_id[:8])}")
            live = run.status == "running"
            if button.button(
                "Watch" if live else "Details",
                key=f"home_recent_{run.run_id}",
                width="stretch",
                help="Follow it on the Run page" if live else "Open it in History",
            ):
                if live:
                    watch_run(run.run_id)
                open_in_history(run.run_id)


def _required_without_default(doc: dict[str, Any]) -> list[str]:
    return [
        name for name, spec in (doc.get("inputs") or {}).items() if isinstance(spec, dict) and "default" not in spec
    ]


def template(path: Path) -> None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        workflow = load_workflow(doc)
    except (OSError, ValueError, WorkflowInvalid) as exc:
        st.error(f"{code(path.name)} cannot be loaded: {md_escape(exc)}")
        return
    with st.container(border=True):
        st.markdown(f"**{md_escape(workflow.name)}**")
        st.caption(md_escape(workflow.description or "No description."))
        kinds = sorted({str(n.get("type")) for n in doc.get("nodes", [])})
        st.caption(f"{len(doc.get('nodes', []))} nodes ({md_escape(', '.join(kinds))}) · {code(path.name)}")
        if st.button("Open in Builder", key=f"home_open_{path.stem}", icon=":material/schema:", width="stretch"):
            open_in_builder(doc, f"example:{path.name}")
        needs = _required_without_default(doc)
        if st.button(
            "Run",
            key=f"home_run_{path.stem}",
            icon=":material/play_arrow:",
            type="primary",
            width="stretch",
            help=f"Needs {', '.join(needs)}: opens the Builder to ask for them"
            if needs
            else "Run with the default inputs",
        ):
            if needs:  # inputs without defaults: the Builder asks for them
                open_in_builder(doc, f"example:{path.name}")
            try:
                run_id = get_runtime().submit(doc)
            except EngineError as exc:
                st.error("Could not start the run.")
                st.code(str(exc), language=None, wrap_lines=True)
                return
            watch_run(run_id)


st.title("Workflow Studio")
st.caption("Build agentic workflows, run them live, and look back at every run.")
model_banner()
left, right = st.columns([5, 3], gap="large")
with right:
    approval_panel.waiting_list(get_runtime())
    recent_runs()
with left:
    st.subheader("Templates")
    paths = sorted(EXAMPLES.glob("*.json"))
    if not paths:
        st.caption("No templates found in examples/.")
    grid = st.columns(2)
    for i, path in enumerate(paths):
        with grid[i % 2]:
            template(path)
