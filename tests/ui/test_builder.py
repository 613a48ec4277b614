"""The Builder page: open, edit through the canvas and the side panel, validate live,
save versions, import/export, run.

AppTest sees the streamlit-flow canvas as an unknown element; a user event on
it is faked by setting the component's session-state entry to the state dict
the browser would send.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from engine.runtime import Runtime
from ui import builder_doc as bd
from ui import flow, nav, run_form
from ui.nav import BUILDER_DOC, BUILDER_SOURCE, RUN_ID
from ui.run_form import collect_inputs

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
EXAMPLES = ROOT / "examples"


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text())


def builder(doc: dict[str, Any] | None = None, source: str = "example:test.json") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if doc is not None:  # opened the way the app opens documents (ui.nav.open_in_builder)
        at.session_state[nav.BUILDER_ARRIVING] = (doc, source, None)
    at.run()
    at.switch_page("views/builder.py").run()
    assert not at.exception, at.exception
    return at


def current(at: AppTest) -> dict[str, Any]:
    return at.session_state[BUILDER_DOC]


def button(at: AppTest, label: str) -> Any:
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r} among {[b.label for b in at.button]}"
    return found[0]


def texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for e in [*at.markdown, *at.caption, *at.success, *at.info, *at.warning, *at.error])


def canvas_state(at: AppTest) -> dict[str, Any]:
    """What the browser would send back: the drawn nodes and edges."""
    flow = at.session_state["builder_flow"]
    return {"nodes": [n.asdict() for n in flow.nodes], "edges": [e.asdict() for e in flow.edges], "selectedId": None}


def canvas_event(at: AppTest, state: dict[str, Any], selected: str | None = None) -> AppTest:
    event = copy.deepcopy(state)
    event["selectedId"] = selected
    event["timestamp"] = int(time.time() * 1000) + 1000
    at.session_state[at.session_state["builder_canvas_key"]] = event
    at.run()
    assert not at.exception, at.exception
    return at


def click(at: AppTest, node_or_edge: str) -> AppTest:
    return canvas_event(at, canvas_state(at), selected=node_or_edge)


def fkey(at: AppTest, *parts: str) -> str:
    """The key of a side-panel widget in the current form epoch (ui.builder_state.fkey)."""
    return f"builder_form.{at.session_state['builder_forms_epoch']}." + ".".join(parts)


def add_from_palette(at: AppTest, *node_types: str) -> AppTest:
    """What the palette component sends: its click log, with the next click numbers (ui.palette)."""
    seen = at.session_state["builder_palette_seen"]["seq"] if "builder_palette_seen" in at.session_state else 0
    log = [[seen + i, node_type] for i, node_type in enumerate(node_types, start=1)]
    at.session_state["builder_palette"] = {"clicks": {"page": "apptest", "seq": log[-1][0], "log": log}}
    at.run()
    assert not at.exception, at.exception
    return at


def node(doc: dict[str, Any], node_id: str) -> dict[str, Any]:
    found = bd.find_node(doc, node_id)
    assert found is not None, node_id
    return found


# --- opening ------------------------------------------------------------------------------------------------


def test_loads_with_a_new_valid_workflow() -> None:
    at = builder()
    doc = current(at)
    assert [n["type"] for n in doc["nodes"]] == ["input", "output"]
    assert any(s.value.startswith("Valid") for s in at.success)
    assert [n.id for n in at.session_state["builder_flow"].nodes] == ["start", "result"]
    assert {"Open", "New", "Save", "Duplicate", "Delete", "Layout"} <= {b.label for b in at.button}
    assert at.download_button(key="builder_export")


def test_open_an_example_from_the_selector() -> None:
    at = builder()
    at.selectbox(key="builder_open_choice").select("example:triage_branch.json").run()
    button(at, "Open").click().run()
    assert not at.exception
    doc = current(at)
    assert doc["name"] == "Ticket triage"
    assert at.session_state[BUILDER_SOURCE] == "example:triage_branch.json"
    assert {n.id for n in at.session_state["builder_flow"].nodes} == {"start", "route", "escalate", "reply", "result"}
    assert any(s.value.startswith("Valid") for s in at.success)


def test_home_open_in_builder_is_drawn() -> None:
    """ui.nav.open_in_builder sets the document and drops the canvas: the page redraws it."""
    at = builder(example("calculator_agent.json"))
    assert {n.id for n in at.session_state["builder_flow"].nodes} == {"start", "solver", "answer"}


# --- validation ---------------------------------------------------------------------------------------------


def broken() -> dict[str, Any]:
    doc = example("triage_branch.json")
    doc["edges"][2].pop("when")  # route -> reply without when
    node(doc, "escalate")["config"]["template"] = "{{ nodes.nowhere.output }}"
    doc["nodes"].append({"id": "stray", "type": "tool", "config": {"tool": "no_such_tool"}})
    return doc


def test_validation_lists_every_problem_then_valid_once_fixed() -> None:
    at = builder(broken())
    errors = "\n".join(e.value for e in at.error)
    assert "3 problems" in errors or "4 problems" in errors
    assert "route \\-\\> reply" in errors and "when" in errors  # the edge, escaped for Markdown
    assert "nowhere" in errors and "escalate" in errors
    assert "stray" in errors and "no\\_such\\_tool" in errors
    assert not any(s.value.startswith("Valid") for s in at.success)
    assert any(":red-badge[" in m.value for m in at.markdown)
    # problem nodes are outlined on the canvas
    styles = {n.id: n.style for n in at.session_state["builder_flow"].nodes}
    assert "dashed" in styles["stray"]["border"] and "dashed" not in styles["start"]["border"]

    at.session_state[BUILDER_DOC] = example("triage_branch.json")
    at.run()
    assert not at.error
    assert any(s.value.startswith("Valid") for s in at.success)


# --- the side panel -----------------------------------------------------------------------------------------


def test_change_the_agent_prompt_through_the_form() -> None:
    at = builder(example("calculator_agent.json"))
    click(at, "solver")
    prompt = at.text_area(key=fkey(at, "solver", "prompt"))
    assert prompt.value == "{{ inputs.question }}"
    prompt.input("Solve step by step: {{ inputs.question }}").run()
    assert node(current(at), "solver")["config"]["prompt"] == "Solve step by step: {{ inputs.question }}"
    at.text_input(key=fkey(at, "solver", "label")).input("Math solver").run()
    assert node(current(at), "solver")["label"] == "Math solver"
    flow_node = next(n for n in at.session_state["builder_flow"].nodes if n.id == "solver")
    assert "Math solver" in flow_node.data["content"], "the canvas is redrawn with the new label"
    at.number_input(key=fkey(at, "solver", "temperature")).set_value(0.3).run()
    at.number_input(key=fkey(at, "solver", "attempts")).set_value(3).run()
    at.toggle(key=fkey(at, "solver", "memory_on")).set_value(True).run()
    solver = node(current(at), "solver")
    assert solver["config"]["temperature"] == 0.3 and solver["retry"]["attempts"] == 3
    assert solver["config"]["memory"] == {"agent_id": "solver", "short_term": True, "recall": 0, "save": True}
    assert at.checkbox(key=fkey(at, "solver", "mem_short_term")).value is True
    at.checkbox(key=fkey(at, "solver", "mem_save")).uncheck().run()
    assert node(current(at), "solver")["config"]["memory"]["save"] is False
    assert not at.exception



def test_max_tokens_is_set_through_the_form() -> None:
    at = builder(example("calculator_agent.json"))
    click(at, "solver")
    field = at.number_input(key=fkey(at, "solver", "max_tokens"))
    assert field.value is None, "no limit by default"
    field.set_value(256).run()
    assert node(current(at), "solver")["config"]["max_tokens"] == 256
    assert not at.exception


def test_tool_node_args_are_validated_json_and_schema_is_shown() -> None:
    at = builder()
    add_from_palette(at, "tool")
    tool_id = at.session_state["builder_selected"]["id"]
    assert node(current(at), tool_id)["type"] == "tool"
    assert "required" in texts(at), "the tool's parameters are listed"
    args = at.text_area(key=fkey(at, tool_id, "args"))
    args.input("{not json").run()
    assert any("Not valid JSON" in e.value for e in at.error)
    before = node(current(at), tool_id)["config"]["args"]
    assert before != "{not json"
    at.text_area(key=fkey(at, tool_id, "args")).input('{"path": "notes.md"}').run()
    assert node(current(at), tool_id)["config"]["args"] == {"path": "notes.md"}


def test_rename_a_node_rewrites_edges_and_references() -> None:
    at = builder(example("calculator_agent.json"))
    click(at, "solver")
    at.text_input(key=fkey(at, "solver", "id")).input("math").run()
    doc = current(at)
    assert bd.find_node(doc, "solver") is None and node(doc, "math")["type"] == "agent"
    assert {"source": "math", "target": "answer"} in doc["edges"]
    assert node(doc, "answer")["config"]["value"] == "{{ nodes.math.output }}"
    assert at.session_state["builder_selected"] == {"kind": "node", "id": "math"}
    assert any(s.value.startswith("Valid") for s in at.success)
    at.text_input(key=fkey(at, "math", "id")).input("bad id").run()
    assert any("Not renamed" in e.value for e in at.error)


def test_add_nodes_of_every_type_from_the_palette() -> None:
    at = builder()
    click(at, "start")
    add_from_palette(at, "agent")
    doc = current(at)
    assert node(doc, "agent_1")["config"]["prompt"].endswith("{{ nodes.start.output }}")
    assert {"source": "start", "target": "agent_1"} in doc["edges"], "added after the selected node"
    assert at.session_state["builder_selected"] == {"kind": "node", "id": "agent_1"}
    assert "agent_1" in {n.id for n in at.session_state["builder_flow"].nodes}
    for kind in ("tool", "transform", "map", "output", "condition"):
        add_from_palette(at, kind)
    types = [n["type"] for n in current(at)["nodes"]]
    assert {"agent", "tool", "transform", "map", "output", "condition"} <= set(types)
    ids = [n["id"] for n in current(at)["nodes"]]
    assert len(ids) == len(set(ids))


def test_set_an_edge_when_from_a_new_canvas_edge() -> None:
    at = builder(example("triage_branch.json"))
    state = canvas_state(at)
    state["edges"].append({"id": "st-flow-edge_route-result", "source": "route", "target": "result"})
    canvas_event(at, state, selected="st-flow-edge_route-result")
    # a new edge from a condition takes the first value its expression names that no edge uses yet
    assert {"source": "route", "target": "result", "when": "normal"} in current(at)["edges"]
    selected = {"kind": "edge", "source": "route", "target": "result", "when": "normal"}
    assert at.session_state["builder_selected"] == selected
    when_box = at.selectbox(key=fkey(at, "edge", "route", "result", "when"))
    assert list(when_box.options)[:3] == ["urgent", "normal", "true"], "the expression's values come first"
    when_box.select("false").run()
    assert {"source": "route", "target": "result", "when": "false"} in current(at)["edges"]
    assert any(s.value.startswith("Valid") for s in at.success)
    labels = {e.id: e.label for e in at.session_state["builder_flow"].edges}
    assert labels.get("route->result[false]") == "false"
    # a custom value
    at.selectbox(key=fkey(at, "edge", "route", "result", "when")).select("custom…").run()
    at.text_input(key=fkey(at, "edge", "route", "result", "custom")).input("spam").run()
    assert {"source": "route", "target": "result", "when": "spam"} in current(at)["edges"]
    button(at, "Delete edge").click().run()
    assert all(e["target"] != "result" or e["source"] != "route" for e in current(at)["edges"])


# --- canvas edits -------------------------------------------------------------------------------------------


def test_canvas_move_delete_and_connect_are_folded_into_the_document() -> None:
    at = builder(example("calculator_agent.json"))
    state = canvas_state(at)
    next(n for n in state["nodes"] if n["id"] == "answer")["position"] = {"x": 500.0, "y": 80.0}
    canvas_event(at, state)
    assert node(current(at), "answer")["position"] == {"x": 500.0, "y": 80.0}

    state = canvas_state(at)  # node menu "Delete Node": the node and its edges go
    state["nodes"] = [n for n in state["nodes"] if n["id"] != "solver"]
    state["edges"] = [e for e in state["edges"] if "solver" not in (e["source"], e["target"])]
    canvas_event(at, state)
    doc = current(at)
    assert bd.find_node(doc, "solver") is None and all("solver" not in (e["source"], e["target"]) for e in doc["edges"])
    assert any("answer" in e.value for e in at.error), "the now-broken reference and reachability are listed"

    state = canvas_state(at)  # drag a new edge
    state["edges"].append({"id": "st-flow-edge_start-answer", "source": "start", "target": "answer"})
    canvas_event(at, state)
    assert {"source": "start", "target": "answer"} in current(at)["edges"]


def test_a_replayed_canvas_value_does_not_undo_python_changes() -> None:
    at = builder()
    click(at, "start")  # the component now holds a value
    add_from_palette(at, "transform")
    at.run()  # the same (older) component value is still there: it must not drop the new node
    assert bd.find_node(current(at), "transform_1") is not None


def test_a_late_report_from_an_older_drawing_does_not_undo_python_changes() -> None:
    """The browser reports (a layout pass, a drag) from the drawing it had before our redraw reached it:
    the report is new (a newer browser timestamp) but describes the canvas without the added node."""
    at = builder()
    before = canvas_state(at)  # drawing n, as the browser still has it
    add_from_palette(at, "transform")  # drawing n + 1 has transform_1
    moved = copy.deepcopy(before)
    moved["nodes"][0]["position"] = {"x": 999.0, "y": 999.0}
    canvas_event(at, moved)
    assert bd.find_node(current(at), "transform_1") is not None, "the stale report did not delete the node"
    assert node(current(at), moved["nodes"][0]["id"]).get("position") != {"x": 999.0, "y": 999.0}
    # a report from the new drawing is taken as usual
    fresh = canvas_state(at)
    fresh["nodes"][0]["position"] = {"x": 321.0, "y": 123.0}
    canvas_event(at, fresh)
    assert node(current(at), fresh["nodes"][0]["id"])["position"] == {"x": 321.0, "y": 123.0}
    assert bd.find_node(current(at), "transform_1") is not None


def test_drawings_are_stamped_above_any_browser_clock() -> None:
    at = builder()
    first = at.session_state["builder_flow"]
    add_from_palette(at, "transform")
    second = at.session_state["builder_flow"]
    assert second.timestamp == first.timestamp + 1 > int(time.time() * 1000) + 10 * 365 * 86_400_000
    assert {n.data["redraw"] for n in second.nodes} == {second.timestamp - flow.FUTURE_STAMP_MS}


def test_auto_layout_positions_by_depth() -> None:
    doc = example("calculator_agent.json")
    for n in doc["nodes"]:
        n["position"] = {"x": 0, "y": 0}
    at = builder(doc)
    view = at.session_state["builder_gen"]
    button(at, "Layout").click().run()
    assert at.session_state["builder_gen"] != view, "a new view, so the canvas fits it again"
    xs = [node(current(at), i)["position"]["x"] for i in ("start", "solver", "answer")]
    assert xs[0] < xs[1] < xs[2]


# --- settings and inputs ------------------------------------------------------------------------------------


def test_settings_and_inputs_editor() -> None:
    at = builder()
    at.text_input(key=fkey(at, "wf", "name")).input("Daily digest").run()
    at.number_input(key=fkey(at, "wf", "max_iterations")).set_value(4).run()
    doc = current(at)
    assert doc["name"] == "Daily digest" and doc["settings"]["max_iterations"] == 4
    button(at, "Add input").click().run()
    assert "input_1" in current(at)["inputs"]
    at.selectbox(key=fkey(at, "in", "input_1", "type")).select("integer").run()
    at.checkbox(key=fkey(at, "in", "input_1", "required")).uncheck().run()
    at.text_input(key=fkey(at, "in", "input_1", "default")).input("3").run()
    assert current(at)["inputs"]["input_1"] == {"type": "integer", "description": "", "default": 3}
    at.text_input(key=fkey(at, "in", "query", "name")).input("topic").run()
    doc = current(at)
    assert list(doc["inputs"]) == ["topic", "input_1"]
    assert node(doc, "result")["config"]["value"] == "{{ inputs.topic }}", "references follow the rename"
    assert any(s.value.startswith("Valid") for s in at.success)


# --- save, versions, duplicate, delete ----------------------------------------------------------------------


def test_save_makes_versions_only_when_something_changed(runtime: Runtime) -> None:
    at = builder(example("calculator_agent.json"))
    button(at, "Save").click().run()
    assert any("Saved as version 1" in s.value for s in at.success)
    row = runtime.store.find_workflow("Calculator agent")
    assert row is not None and row.latest_version == 1
    assert at.session_state[BUILDER_SOURCE] == f"saved:{row.id}"

    button(at, "Save").click().run()
    assert any("No changes" in i.value for i in at.info)
    assert len(runtime.store.workflow_versions(row.id)) == 1

    click(at, "solver")
    at.text_area(key=fkey(at, "solver", "prompt")).input("Compute: {{ inputs.question }}").run()
    assert any("unsaved changes" in m.value for m in at.markdown)
    button(at, "Save").click().run()
    assert any("Saved as version 2" in s.value for s in at.success)
    versions = runtime.store.workflow_versions(row.id)
    assert [v.version for v in versions] == [1, 2]
    assert node(versions[1].document, "solver")["config"]["prompt"] == "Compute: {{ inputs.question }}"

    # history: view v1 read-only, then open it as a copy
    assert at.button(key="builder_ver_view_2").disabled, "the latest version is the one open"
    at.button(key="builder_ver_view_1").click().run()
    assert at.session_state["builder_readonly"] == 1
    assert node(current(at), "solver")["config"]["prompt"] == "{{ inputs.question }}"
    assert any(":violet-badge[version 1 · read-only]" in m.value for m in at.markdown)
    assert button(at, "Save").disabled
    add_from_palette(at, "agent")
    assert not any(n["type"] == "agent" and n["id"] != "solver" for n in current(at)["nodes"]), "read-only"
    click(at, "solver")
    assert at.text_area(key=fkey(at, "solver", "prompt")).disabled
    button(at, "Edit as a copy").click().run()
    assert at.session_state["builder_readonly"] is None
    assert current(at)["name"] == "Calculator agent (v1 copy)"


def test_save_stores_a_version_with_its_problems_and_only_run_is_blocked(runtime: Runtime) -> None:
    at = builder(broken())
    assert not button(at, "Save").disabled, "a half-built workflow can be stored"
    button(at, "Save").click().run()
    assert any("Saved as version 1 with" in w.value and "problem" in w.value for w in at.warning)
    row = runtime.store.find_workflow(broken()["name"])
    assert row is not None
    stored = runtime.store.workflow_versions(row.id)[0].document
    assert stored == broken(), "stored as it is (it does not normalise)"
    assert at.session_state[BUILDER_SOURCE] == f"saved:{row.id}"
    assert not any("unsaved changes" in m.value for m in at.markdown)
    versions = "\n".join(m.value for m in at.markdown)
    assert "v1" in versions and ":red[" in versions and "problems]" in versions, "listed with the version"
    start = [b for b in at.button if b.label == "Start run"]
    assert start and start[0].disabled
    blocked = "\n".join(e.value for e in at.error)
    assert "Run is blocked by" in blocked and "nowhere" in blocked, "Run says which problems block it"


def test_duplicate_and_delete_with_confirmation(runtime: Runtime) -> None:
    at = builder(example("calculator_agent.json"))
    button(at, "Save").click().run()
    wid = runtime.store.find_workflow("Calculator agent").id
    button(at, "Duplicate").click().run()
    assert current(at)["name"] == "Calculator agent (copy)"
    assert at.session_state[BUILDER_SOURCE] == "new"
    assert button(at, "Delete").disabled, "the copy is not saved yet"

    assert "Calculator agent · v1" in at.selectbox(key="builder_open_choice").options
    at.selectbox(key="builder_open_choice").select(f"saved:{wid}").run()
    button(at, "Open").click().run()
    assert at.session_state[BUILDER_SOURCE] == f"saved:{wid}"
    button(at, "Delete").click().run()
    assert any("Delete “Calculator agent”?" in w.value for w in at.warning)
    button(at, "Cancel").click().run()
    assert runtime.store.find_workflow("Calculator agent").archived is False
    button(at, "Delete").click().run()
    button(at, "Yes, delete").click().run()
    assert runtime.store.find_workflow("Calculator agent").archived is True
    assert "Calculator agent · v1" not in at.selectbox(key="builder_open_choice").options


# --- import / export ----------------------------------------------------------------------------------------


def test_import_json_and_yaml_through_the_uploader() -> None:
    at = builder()
    data = (EXAMPLES / "parallel_summaries.json").read_bytes()
    at.file_uploader[0].upload("summaries.json", data, "application/json").run()
    assert not at.exception
    assert current(at)["name"] == "Parallel summariser"
    assert at.session_state[BUILDER_SOURCE] == "import"
    assert any("Imported summaries" in s.value for s in at.success)

    import yaml

    text = yaml.safe_dump(example("calculator_agent.json")).encode()
    at.file_uploader[0].upload("calc.yaml", text, "application/yaml").run()
    assert current(at)["name"] == "Calculator agent"

    at.file_uploader[0].upload("broken.json", b"{oops", "application/json").run()
    assert any("Import failed" in e.value and "not valid JSON" in e.value for e in at.error)
    assert current(at)["name"] == "Calculator agent", "a failed import keeps the open workflow"


def test_a_failed_import_stays_until_closed_or_replaced() -> None:
    """The canvas reruns the page after each redraw: the message must outlive reruns, not just the next one."""

    def failures(at: AppTest) -> list[str]:
        return [e.value for e in at.error if "Import failed" in e.value or "Could not open" in e.value]

    at = builder(example("calculator_agent.json"))
    at.file_uploader[0].upload("broken.json", b"{oops", "application/json").run()
    (shown,) = failures(at)
    assert "broken" in shown and "not valid JSON" in shown
    for _ in range(3):  # reruns the canvas (or any widget) causes
        at.run()
        assert failures(at) == [shown]
    at.button(key="builder_open_error_close").click().run()
    assert failures(at) == [] and current(at)["name"] == "Calculator agent"
    at.run()
    assert failures(at) == []

    at.file_uploader[0].upload("second.yaml", b"a: [", "application/yaml").run()
    assert len(failures(at)) == 1 and "not valid YAML" in failures(at)[0]
    at.file_uploader[0].upload(
        "good.json", (EXAMPLES / "parallel_summaries.json").read_bytes(), "application/json"
    ).run()
    assert failures(at) == [], "a successful import replaces the message"
    assert current(at)["name"] == "Parallel summariser"

    at.file_uploader[0].upload("third.json", b"[1, 2]", "application/json").run()
    assert len(failures(at)) == 1 and "must hold one JSON object" in failures(at)[0]
    at.selectbox(key="builder_open_choice").select("example:triage_branch.json").run()
    button(at, "Open").click().run()
    assert failures(at) == [], "opening another workflow replaces the message"
    at.run()
    assert failures(at) == []


def test_export_produces_the_document() -> None:
    doc = example("write_critique_loop.json")
    at = builder(doc)
    exported = at.download_button(key="builder_export")
    assert exported.proto.url, "the JSON is served for download"
    assert json.loads(bd.export_json(current(at))) == doc
    assert bd.file_name(doc).endswith(".json")


# --- run ----------------------------------------------------------------------------------------------------


def test_run_submits_the_inputs_and_opens_the_run_page(runtime: Runtime) -> None:
    at = builder()
    field = next(t for t in at.text_area if t.label.startswith("query"))
    field.input("what is new in streamlit")
    button(at, "Start run").click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Run"]
    run_id = at.session_state[RUN_ID]
    row = runtime.store.get_run(run_id)
    assert row is not None and row.inputs == {"query": "what is new in streamlit"}
    assert runtime.wait(run_id, timeout=30).status == "completed"
    assert not any(t.label.startswith("query") for t in at.text_area), "the Run page is shown"


@pytest.mark.parametrize(
    ("report", "late", "lands_on"),
    [
        (True, False, "Run"),  # the canvas report overtook the switch: go on to the Run page
        (False, False, "Run"),  # another rerun of the Builder the browser sent before it took the switch
        (True, True, "Builder"),  # a report long after the start is the user's own work on the canvas
        (False, True, "Builder"),  # the user came back to the Builder: stay
    ],
)
def test_a_canvas_report_cannot_overtake_the_switch_to_the_run_page(
    runtime: Runtime, report: bool, late: bool, lands_on: str
) -> None:
    at = builder(example("calculator_agent.json"))
    state = canvas_state(at)
    button(at, "Start run").click().run()
    run_id = at.session_state[RUN_ID]
    assert [t.value for t in at.title] == ["Run"]
    assert runtime.wait(run_id, timeout=30).status == "completed"
    if late:
        pending_run, deadline = at.session_state[nav.PENDING_RUN]
        at.session_state[nav.PENDING_RUN] = (pending_run, deadline - nav.PENDING_S - 1)
    # the browser, still showing the Builder, reruns it (with the canvas's report, or for another reason)
    if report:
        event = {**state, "timestamp": int(time.time() * 1000) + 1000}
        at.session_state[at.session_state["builder_canvas_key"]] = event
    at.switch_page("views/builder.py").run()
    assert not at.exception, at.exception
    titles = [t.value for t in at.title]
    if lands_on == "Run":
        assert titles == ["Run"] and at.session_state[RUN_ID] == run_id
        assert at.query_params["run"] == run_id, "the address names the run"
    else:
        assert titles != ["Run"] and "#### Inspector" in texts(at), "the Builder is shown"
        assert nav.PENDING_RUN not in at.session_state, "the pending switch is dropped"


@pytest.mark.parametrize("started_before", [False, True])
def test_a_start_stopped_by_a_newer_rerun_is_finished_by_the_next_run_and_starts_once(
    runtime: Runtime, started_before: bool
) -> None:
    """Streamlit stops a script at any session-state access when a newer rerun arrives (fastReruns), so the
    Run form's request may be half done: recorded only, or the run started and the switch lost. The next
    script run, on any page, finishes it: the run starts once, under the id the form chose, and opens."""
    doc = example("calculator_agent.json")
    at = builder(doc)
    run_id = "0123456789abcdef0123456789abcdef"
    if started_before:
        assert runtime.submit(doc, {}, run_id=run_id) == run_id
    at.session_state[run_form.START] = (run_id, copy.deepcopy(doc), {})
    at.run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Run"] and at.session_state[RUN_ID] == run_id
    assert run_form.START not in at.session_state
    assert runtime.wait(run_id, timeout=30).status == "completed"
    assert [r.run_id for r in runtime.store.list_runs(limit=50)] == [run_id], "started once, nothing else"


def test_a_start_request_the_engine_refuses_is_shown_once_and_dropped(runtime: Runtime) -> None:
    at = builder(example("calculator_agent.json"))
    at.session_state[run_form.START] = (
        "fedcba9876543210fedcba9876543210",
        example("calculator_agent.json"),
        {"nope": 1},
    )
    at.run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] != ["Run"]
    assert any("Not started" in e.value and "nope" in e.value for e in at.error), [e.value for e in at.error]
    assert run_form.START not in at.session_state, "not asked again on every rerun"
    assert runtime.status("fedcba9876543210fedcba9876543210") is None


def test_an_opening_stopped_half_way_is_finished_by_the_next_run() -> None:
    """Opening writes document and source as one record first: a script stopped after it (a newer rerun)
    never leaves the new document under the old source, whose Save would write over another workflow."""
    at = builder(example("calculator_agent.json"), source="saved:some-other-workflow")
    imported = example("triage_branch.json")
    at.session_state[nav.BUILDER_ARRIVING] = (imported, "import", None)  # stopped right after this write
    at.run()
    assert not at.exception, at.exception
    assert at.session_state[BUILDER_DOC] == imported and at.session_state[BUILDER_SOURCE] == "import"
    assert nav.BUILDER_ARRIVING not in at.session_state
    assert any(imported["name"] in m.value for m in at.markdown)
    assert any("imported · not saved" in m.value for m in at.markdown)


def test_run_lists_every_input_problem() -> None:
    doc = example("triage_branch.json")
    doc["inputs"]["ticket"].pop("default")
    doc["inputs"]["extra"] = {"type": "object"}
    at = builder(doc)
    at.text_area(key=next(k for k in at.session_state if str(k).startswith("builder_run_extra_"))).input("[1, 2]")
    button(at, "Start run").click().run()
    errors = "\n".join(e.value for e in at.error)
    assert "extra" in errors and "must be an object" in errors
    assert RUN_ID not in at.session_state


# --- safety -------------------------------------------------------------------------------------------------


def test_user_text_is_shown_escaped() -> None:
    hostile = "<img src=x onerror=alert(1)> ![x](http://127.0.0.1:9/x.png)"
    doc = example("calculator_agent.json")
    doc["name"] = hostile
    node(doc, "solver")["label"] = hostile
    at = builder(doc)
    click(at, "solver")
    shown = [m.value for m in [*at.markdown, *at.caption]]
    assert any("\\<img" in v for v in shown) and not any("<img" in v.replace("\\<img", "") for v in shown)
    assert not any("![x]" in v for v in shown)
    content = next(n for n in at.session_state["builder_flow"].nodes if n.id == "solver").data["content"]
    assert "<img" not in content.replace("\\<img", "")


def test_restore_an_old_version_as_latest(runtime: Runtime) -> None:
    at = builder(example("calculator_agent.json"))
    button(at, "Save").click().run()
    at.text_area(key=fkey(at, "wf", "description")).input("changed").run()
    button(at, "Save").click().run()
    at.button(key="builder_ver_view_1").click().run()
    button(at, "Restore as latest").click().run()
    assert any("Restored version 1 as version 3" in s.value for s in at.success)
    row = runtime.store.find_workflow("Calculator agent")
    assert row.latest_version == 3 and at.session_state["builder_readonly"] is None
    assert (
        runtime.store.get_workflow(row.id)[1].document["description"] == example("calculator_agent.json")["description"]
    )


def _spurious_callbacks() -> None:
    import streamlit as st

    from ui import builder_forms as forms
    from ui import node_forms
    from ui.nav import BUILDER_DOC

    st.session_state[BUILDER_DOC] = {
        "inputs": {},
        "nodes": [{"id": "a", "type": "agent", "label": "A", "config": {"prompt": "p"}}],
    }
    node_forms._on_node("a", "builder_form.9.a.label", node_forms._top("label"))
    node_forms._on_node("a", "builder_form.9.a.prompt", node_forms._cfg("prompt", optional=False))
    node_forms._rename("a", "builder_form.9.a.id")
    forms._on_doc("builder_form.9.wf.name", lambda d, v: d.__setitem__("name", v))
    st.session_state["result"] = st.session_state[BUILDER_DOC]


def test_callbacks_without_a_widget_value_change_nothing() -> None:
    """Interrupted reruns (quick clicks) can fire on_change for widgets whose value is gone."""
    at = AppTest.from_function(_spurious_callbacks).run()
    assert not at.exception, at.exception
    assert at.session_state["result"] == {
        "inputs": {},
        "nodes": [{"id": "a", "type": "agent", "label": "A", "config": {"prompt": "p"}}],
    }


# --- the document helpers -----------------------------------------------------------------------------------


def test_rename_rewrites_only_whole_references() -> None:
    doc = bd.new_document()
    doc["nodes"].append(
        {
            "id": "a",
            "type": "transform",
            "config": {"expression": "nodes.a_b.output ~ nodes.a.output ~ nodes['a'].output ~ mynodes.a"},
        }
    )
    doc["nodes"].append({"id": "a_b", "type": "transform", "config": {"template": "{{ nodes.a.output }}"}})
    count = bd.rename_node(doc, "a", "x-y")
    assert count == 3
    assert (
        node(doc, "x-y")["config"]["expression"]
        == "nodes.a_b.output ~ nodes['x-y'].output ~ nodes['x-y'].output ~ mynodes.a"
    )
    assert node(doc, "a_b")["config"]["template"] == "{{ nodes['x-y'].output }}"
    with pytest.raises(ValueError):
        bd.rename_node(doc, "x-y", "a_b")


def test_parse_document_and_collect_inputs() -> None:
    with pytest.raises(ValueError, match="must hold one JSON object"):
        bd.parse_document(b"[1]", "x.json")
    with pytest.raises(ValueError, match="not UTF-8"):
        bd.parse_document(b"\xff\xfe{", "x.json")
    inputs = {
        "n": {"type": "integer"},
        "o": {"type": "object", "default": {}},
        "s": {"type": "string", "default": None},
        "b": {"type": "boolean"},
    }
    values, errors = collect_inputs(inputs, {"n": 3, "o": "[1]", "s": "", "b": True})
    assert values == {"n": 3, "b": True} and [p.where for p in errors] == ["input 'o'"]


# --- documents the forms must survive -------------------------------------------------------------------------


def _inspect_every_node(at: AppTest) -> None:
    for node_id in [n["id"] for n in current(at)["nodes"]]:
        at.session_state["builder_selected"] = {"kind": "node", "id": node_id}
        at.run()
        assert not at.exception, (node_id, at.exception)


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_every_example_opens_and_every_node_can_be_inspected(name: str) -> None:
    """research_assistant.json (whole-number timeouts against float bounds) crashed the settings panel."""
    at = builder(example(name))
    _inspect_every_node(at)
    assert not at.exception


def _odd(**changes: Any) -> dict[str, Any]:
    doc = example("calculator_agent.json")
    for path, value in changes.items():
        target: Any = doc
        *parents, last = path.split("__")
        for part in parents:
            target = (
                node(doc, part)
                if isinstance(target, dict) and "nodes" in target and part != "settings"
                else target[part]
            )
        target[last] = value
    return doc


AGENT = next(n["id"] for n in example("calculator_agent.json")["nodes"] if n["type"] == "agent")


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        (_odd(settings={"timeout_s": 600, "max_iterations": 10}), None),  # whole numbers where floats are expected
        (_odd(settings={"timeout_s": 0.5}), None),  # valid, below the old widget minimum of 1
        (_odd(settings={"max_iterations": "ten", "timeout_s": -3}), "settings"),
        (_odd(settings=[1, 2]), "settings"),
        (_odd(**{f"{AGENT}__position": [1, 2]}), "position"),
        (_odd(**{f"{AGENT}__position": {"x": "a", "y": None}}), "position"),
        (_odd(**{f"{AGENT}__timeout_s": "soon", f"{AGENT}__retry": {"attempts": "x", "backoff_s": 1e9}}), AGENT),
        (_odd(**{f"{AGENT}__retry": "always"}), AGENT),
        (_odd(**{f"{AGENT}__config": {"prompt": "p", "temperature": 0, "max_steps": 2.5}}), AGENT),
        (_odd(**{f"{AGENT}__config": {"prompt": "p", "memory": {"agent_id": "a", "recall": "many"}}}), AGENT),
        (_odd(**{f"{AGENT}__label": 42}), None),
    ],
)
def test_odd_documents_open_and_every_node_can_be_inspected(doc: dict[str, Any], problem: str | None) -> None:
    """Imported files can hold anything: the Builder draws them, lists what is wrong, and never crashes."""
    at = builder(doc)
    _inspect_every_node(at)
    listed = bd.problems(current(at))
    if problem is None:
        assert not at.exception
    else:
        assert any(problem in p.where or problem in p.message for p in listed), listed


def test_a_node_is_added_after_a_node_whose_position_is_not_a_place() -> None:
    at = builder(_odd(**{f"{AGENT}__position": [1, 2]}))
    at.session_state["builder_selected"] = {"kind": "node", "id": AGENT}
    at.run()
    add_from_palette(at, "transform")
    assert not at.exception, at.exception
    added = [n for n in current(at)["nodes"] if n["type"] == "transform"]
    assert len(added) == 1 and isinstance(added[0]["position"]["x"], float)


def test_quick_palette_clicks_merged_into_one_rerun_each_add_a_node() -> None:
    """Streamlit merges two clicks of one st.button that arrive before the first one's rerun: the palette's
    value is a click log, so every click counts (three clicks in one rerun: three nodes)."""
    at = builder()
    before = len(current(at)["nodes"])
    add_from_palette(at, "transform", "transform", "agent")
    assert len(current(at)["nodes"]) == before + 3
    at.run()  # the same value again (a rerun for another reason) adds nothing
    assert len(current(at)["nodes"]) == before + 3
    at.session_state["builder_palette"] = {"clicks": {"page": "apptest", "seq": 99, "log": [[99, "<script>"]]}}
    at.run()
    assert not at.exception and len(current(at)["nodes"]) == before + 3, "only the palette's node types are added"
