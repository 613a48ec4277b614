"""Tools: every registered tool with its description and JSON schema, and a "try it" form."""

from __future__ import annotations

import streamlit as st

import tools
from tools.config import using as using_tool_settings
from tools.mcp import SEPARATOR
from ui import tool_form
from ui.runtime import get_runtime
from ui.text import clip, md_escape

st.title("Tools")
st.caption(
    "Tools an agent can call when its node lists them, and that a `tool` node calls directly. "
    "Add your own with `@tool` (see docs/tools.md); plugin modules in `TOOLS_MODULES` load on first use. "
    "Tools of MCP servers (named `SERVER__tool`) come from `mcp.json`, edited on the Settings page."
)

tool_settings = get_runtime().settings.tools  # as the runs started now are configured
plugin_errors = tools.load_plugins(tool_settings.modules)
for error in plugin_errors:  # module names and exception text: shown as typed
    st.warning(f"Some tools are missing: {md_escape(error)}")

runtime = get_runtime()
specs = runtime.tools.list_tools()  # the runtime's registry: the MCP servers' tools too (they start on first use)
for problem in runtime.mcp_problems:
    st.warning(f"MCP config: {md_escape(problem)}", icon=":material/warning:")
for server, down in (runtime.mcp.status() if runtime.mcp is not None else {}).items():
    if down:
        st.error(f"MCP server {md_escape(server)} is down: {md_escape(down)}", icon=":material/error:")
if not specs:
    st.info("No tools are registered.")
    st.stop()

try:
    from tools.builtin.python_exec import isolation_detail
except ImportError:  # the python tool may be absent from a minimal install
    isolation_detail = None  # type: ignore[assignment]


names = [spec.name for spec in specs]
chosen = st.selectbox("Tool", names, key="tools_selected", format_func=lambda n: n)
spec = next(s for s in specs if s.name == chosen)

left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader(md_escape(spec.name))  # a plugin's name: `_` and `-` are Markdown
    st.text(spec.description or "(no description)")
    if spec.name == "python" and isolation_detail is not None:  # says WEAK (and that calls are refused) when so
        with using_tool_settings(tool_settings):
            detail = isolation_detail()
        st.caption(f"Isolation of the code: {md_escape(detail)}")
    if spec.raw_args and SEPARATOR in spec.name:
        st.caption(
            f"From MCP server {md_escape(spec.name.split(SEPARATOR)[0])}: it runs with the studio's privileges "
            "(no sandbox); its answers are untrusted data."
        )
    if spec.timeout_s:
        st.caption(f"Timeout per call: {spec.timeout_s:g} s")
    with st.expander("JSON schema of the arguments", expanded=True):
        st.json(spec.parameters)

with right:
    st.subheader("Try it")
    if not tool_form.args_of(spec.parameters):
        st.caption("This tool takes no arguments.")
    with st.form(key=f"tools_form_{spec.name}"):
        tool_form.render(spec.name, spec.parameters)
        submitted = st.form_submit_button("Call the tool", type="primary")
    if submitted:
        args, wrong = tool_form.collect(spec.name, spec.parameters)
        if wrong:
            st.error("Not called:\n" + "\n".join(f"- {md_escape(line)}" for line in wrong))
            st.stop()
        tool_form.remember(spec.name, args)
        with st.spinner(f"Calling {md_escape(spec.name)}…"):
            result = get_runtime().call_tool(spec.name, args)
        st.session_state["tools_last"] = {
            "tool": spec.name,
            "ok": result.ok,
            "value": result.value,
            "error": result.error,
            "detail": result.detail,
            "duration_ms": result.duration_ms,
            "truncated": result.truncated,
        }
    last = st.session_state.get("tools_last")
    if last and last["tool"] == spec.name:
        st.metric("Duration", f"{last['duration_ms']:.1f} ms")
        if last["ok"]:
            st.success("Result" + (" (truncated)" if last["truncated"] else ""))
            if isinstance(last["value"], (dict, list)):
                st.json(last["value"])
            else:
                st.code(clip(last["value"], 20_000), language=None)
        else:  # the tool's own words in red, as text (tool output is untrusted)
            st.error("The tool reported an error: the call failed", icon=":material/error:")
            st.code(clip(last["error"], 5_000), language=None, wrap_lines=True)
            if last.get("detail"):
                with st.expander("Details: output, traceback or the backend's own error"):
                    st.code(clip(last["detail"], 8_000), language=None, wrap_lines=True)
