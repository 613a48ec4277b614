"""Home: which model answers, and the example workflows.

The full dashboard (builder, live runs, history, memory, tools, settings)
is coming with the dashboard issue; until then this page says so and shows
how to run the examples from a terminal.
"""

from pathlib import Path

import streamlit as st

from engine import WorkflowInvalid, load_workflow
from engine.llm import endpoint_configured

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

st.title("Workflow Studio")
st.info("The dashboard is coming: builder, live runs, history, memory and tools pages land with the dashboard issue.")

if endpoint_configured():
    st.success("Model: an OpenAI-compatible endpoint (OPENAI_BASE_URL / OPENAI_API_KEY is set).")
else:
    st.warning("Model: the offline model that ships with the studio. No API key is set, so answers are offline.")

st.subheader("Example workflows")
for path in sorted(EXAMPLES.glob("*.json")):
    try:
        workflow = load_workflow(path)
    except WorkflowInvalid as exc:
        st.error(f"{path.name}: {exc}")
        continue
    with st.container(border=True):
        st.markdown(f"**{workflow.name}** — `{path.name}`")
        if workflow.description:
            st.caption(workflow.description)
        st.code(f"python -m engine run examples/{path.name}", language="bash")
