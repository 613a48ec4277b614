"""The Builder never loses work (issue 13, point 2), server side: every edit is kept as a draft in the
store, a new session on the address (``?workflow=ID`` / ``?draft=KEY``) reopens the document with its
draft and says so, Save drops the draft; and fewer steps (point 3): insert into an edge, the output
follows, ``when`` values from the expression, warnings apart from problems.

The browser half (a real reload, the beforeunload prompt, Tab order) is in
``tests/browser/test_builder_drafts_browser.py``.
"""

from __future__ import annotations

import copy

from streamlit.testing.v1 import AppTest

from engine.runtime import Runtime
from tests.ui.test_builder import APP, add_from_palette, builder, button, click, current, example, fkey, node
from ui import builder_doc as bd
from ui import builder_state as bs
from ui.nav import BUILDER_SOURCE


def reopen(**params: str) -> AppTest:
    """A new session (a reload, a new tab) on ``/builder?…``."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/builder.py")
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, at.exception
    return at


def edit_prompt(at: AppTest, node_id: str, text: str) -> None:
    click(at, node_id)
    at.text_area(key=fkey(at, node_id, "prompt")).input(text).run()


def test_an_edit_of_a_saved_workflow_is_a_draft_that_a_new_session_restores(runtime: Runtime) -> None:
    at = builder(example("calculator_agent.json"))
    button(at, "Save").click().run()
    wid = runtime.store.find_workflow("Calculator agent").id
    assert at.query_params["workflow"] == wid, "the address names the open workflow"
    assert runtime.store.get_draft(wid) is None, "nothing unsaved: no draft"
    edit_prompt(at, "solver", "Compute carefully: {{ inputs.question }}")
    draft = runtime.store.get_draft(wid)
    assert draft is not None and node(draft.document, "solver")["config"]["prompt"].startswith("Compute carefully")

    again = reopen(workflow=wid)  # the reload
    assert again.session_state[BUILDER_SOURCE] == f"saved:{wid}"
    assert node(current(again), "solver")["config"]["prompt"].startswith("Compute carefully")
    assert any("Restored draft" in i.value for i in again.info)
    assert any("unsaved changes" in m.value for m in again.markdown), "still unsaved: the saved version is the baseline"
    button(again, "Save").click().run()
    assert runtime.store.get_draft(wid) is None, "Save drops the draft"
    assert len(runtime.store.workflow_versions(wid)) == 2
    assert not any("Restored draft" in i.value for i in again.info)

    fresh = reopen(workflow=wid)
    assert not any("Restored draft" in i.value for i in fresh.info)
    assert node(current(fresh), "solver")["config"]["prompt"].startswith("Compute carefully")


def test_discarding_a_restored_draft_opens_the_saved_version(runtime: Runtime) -> None:
    at = builder(example("calculator_agent.json"))
    button(at, "Save").click().run()
    wid = runtime.store.find_workflow("Calculator agent").id
    edit_prompt(at, "solver", "draft text {{ inputs.question }}")
    again = reopen(workflow=wid)
    button(again, "Discard draft").click().run()
    assert node(current(again), "solver")["config"]["prompt"] == "{{ inputs.question }}"
    assert runtime.store.get_draft(wid) is None
    assert not any("unsaved changes" in m.value for m in again.markdown)


def test_a_never_saved_invalid_document_is_kept_under_its_draft_key(runtime: Runtime) -> None:
    at = builder()  # New
    key = at.session_state[bs.DRAFT]
    assert key.startswith("new:") and at.query_params["draft"] == key
    assert runtime.store.get_draft(key) is None, "an untouched New document needs no draft"
    click(at, "result")
    at.text_area(key=fkey(at, "result", "value")).input("{{ nodes.nowhere.output }}").run()  # invalid
    assert bd.problems(current(at))
    draft = runtime.store.get_draft(key)
    assert draft is not None and node(draft.document, "result")["config"]["value"] == "{{ nodes.nowhere.output }}"

    again = reopen(draft=key)
    assert node(current(again), "result")["config"]["value"] == "{{ nodes.nowhere.output }}"
    assert again.session_state[bs.DRAFT] == key and again.session_state[BUILDER_SOURCE] == "new"
    assert any("Restored draft" in i.value for i in again.info)


def test_an_imported_document_is_a_draft_before_any_edit(runtime: Runtime) -> None:
    doc = example("triage_branch.json")
    at = builder(copy.deepcopy(doc), source="import")
    key = at.session_state[bs.DRAFT]
    assert runtime.store.get_draft(key).document == doc  # type: ignore[union-attr]
    again = reopen(draft=key)
    assert current(again) == doc and again.session_state[BUILDER_SOURCE] == "import"


def test_an_unknown_address_opens_a_new_workflow_and_says_why() -> None:
    at = reopen(workflow="nope123")
    assert at.session_state[BUILDER_SOURCE] == "new"
    assert any("no saved workflow with id" in w.value for w in at.warning)


def test_palette_inserts_into_the_single_edge_and_the_output_follows() -> None:
    at = builder()  # start -> result (echoing the input)
    click(at, "start")
    add_from_palette(at, "agent")
    doc = current(at)
    assert sorted((e["source"], e["target"]) for e in doc["edges"]) == [("agent_1", "result"), ("start", "agent_1")]
    assert node(doc, "result")["config"]["value"] == "{{ nodes.agent_1.output }}", "no longer echoes the input"
    # an edge selected: the node goes into it
    click(at, "agent_1->result")
    add_from_palette(at, "transform")
    doc = current(at)
    assert sorted((e["source"], e["target"]) for e in doc["edges"]) == [
        ("agent_1", "transform_1"),
        ("start", "agent_1"),
        ("transform_1", "result"),
    ]
    assert node(doc, "result")["config"]["value"] == "{{ nodes.transform_1.output }}"
    assert not bd.problems(doc)


def test_when_choices_are_the_conditions_values_and_open_branches_warn() -> None:
    at = builder()
    click(at, "start")
    add_from_palette(at, "condition")
    click(at, "condition_1")
    expression = "'long' if inputs.query | length > 20 else 'short'"
    at.text_input(key=fkey(at, "condition_1", "expression")).input(expression).run()
    click(at, "condition_1->result[true]")
    box = at.selectbox(key=fkey(at, "edge", "condition_1", "result", "when"))
    assert list(box.options)[:2] == ["long", "short"]
    box.select("long").run()
    click(at, "condition_1")
    add_from_palette(at, "agent")  # a new branch, wired with the next value
    doc = current(at)
    assert {"source": "condition_1", "target": "agent_1", "when": "short"} in doc["edges"]
    assert not bd.problems(doc)
    warned = "\n".join(w.value for w in at.warning)
    assert "do not block Run" in warned and "agent\\_1" in warned and "leads nowhere" in warned
    start = [b for b in at.button if b.label == "Start run"]
    assert start and not start[0].disabled, "a warning does not block Run"


def test_delete_buttons_sit_before_the_fields_behind_a_popover() -> None:
    at = builder(example("triage_branch.json"))
    click(at, "route")
    deletes = [b for b in at.button if b.label == "Delete node"]
    assert deletes, "the node can still be deleted"
    deletes[0].click().run()
    assert bd.find_node(current(at), "route") is None


def test_drafts_of_documents_never_saved_can_be_opened_from_open(runtime: Runtime) -> None:
    at = builder()
    first = at.session_state[bs.DRAFT]
    click(at, "start")
    add_from_palette(at, "agent")  # an edit: a draft
    button(at, "New").click().run()  # the old document is replaced, its draft stays
    assert at.session_state[bs.DRAFT] != first
    options = at.selectbox(key="builder_open_choice").options
    label = next(o for o in options if o.startswith("Draft · Untitled workflow"))
    at.selectbox(key="builder_open_choice").select(f"draft:{first}").run()
    button(at, "Open").click().run()
    assert label and at.session_state[bs.DRAFT] == first
    assert bd.find_node(current(at), "agent_1") is not None
    assert any("Restored draft" in i.value for i in at.info)


def test_restoring_an_old_version_opens_it_not_the_draft(runtime: Runtime) -> None:
    at = builder(example("calculator_agent.json"))
    button(at, "Save").click().run()
    wid = runtime.store.find_workflow("Calculator agent").id
    edit_prompt(at, "solver", "v2 {{ inputs.question }}")
    button(at, "Save").click().run()
    edit_prompt(at, "solver", "draft {{ inputs.question }}")
    assert runtime.store.get_draft(wid) is not None
    at.button(key="builder_ver_view_1").click().run()
    button(at, "Restore as latest").click().run()
    assert node(current(at), "solver")["config"]["prompt"] == "{{ inputs.question }}", "version 1, not the draft"
    assert any("draft of the workflow was discarded" in s.value for s in at.success)
    assert runtime.store.get_draft(wid) is None
