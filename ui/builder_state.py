"""The Builder page's session state: the open document, the canvas and the actions on them.

The document in ``st.session_state[BUILDER_DOC]`` is the truth. The canvas
(streamlit-flow) is drawn from it and its events (moves, new edges, node menu
deletions, clicks) are folded back into it *before* the component is called,
read from the component's own session-state entry, so every part of one run
(canvas, inspector, validation) sees the same document.

A redraw happens only when the document no longer draws like the canvas. Each
one is numbered (``REDRAWS``): the number is the state's timestamp above
``ui.flow.FUTURE_STAMP_MS`` (so the browser always takes it, whatever its
clock) and rides in every node's data, so a report the browser made from an
older drawing (sent before our redraw reached it: a layout pass, a drag) is
recognised and dropped instead of undoing what Python just changed. Reports
are passed back with their own (browser-clock) timestamp minus one, so the
browser never takes them as new and echoes them (which would rerun forever).

Actions are button/widget callbacks: they run before the script, so the
canvas redraw they cause happens in the same run.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit_flow.elements import StreamlitFlowEdge, StreamlitFlowNode
from streamlit_flow.state import StreamlitFlowState

from engine.errors import Problem
from engine.reader import RunReader
from engine.timefmt import format_ts
from ui import builder_doc as bd
from ui import flash as messages
from ui import palette
from ui.flash import Kind
from ui.flow import auto_positions, drawn_from, merge_canvas, same_graph, to_state
from ui.nav import BUILDER_ARRIVING, BUILDER_DOC, BUILDER_SOURCE, follow_pending_run
from ui.runtime import get_runtime
from ui.text import md_escape

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

FLOW = "builder_flow"  # StreamlitFlowState passed to the component
DRAWN = "builder_drawn"  # what FLOW was drawn from: {"doc", "bad", "readonly"}
CANVAS_KEY = "builder_canvas_key"  # holds the component's key (stable: a new key would reload the canvas's iframe)
CANVAS = "builder_canvas"  # that key; a new document or Layout is a new *view* instead (see view_key)
GEN = "builder_gen"
VIEW_NONCE = "builder_view_nonce"  # this session's part of the canvas view names (see view_key)
SEEN = "builder_canvas_seen"  # timestamp of the last canvas report taken
REDRAWS = "builder_redraws"  # how many times the canvas was drawn from the document (numbers the drawings)
SELECTED = "builder_selected"  # {"kind": "node", "id"} | {"kind": "edge", "source", "target", "when"} | None
BASELINE = "builder_baseline"  # the document as last opened or saved (for "unsaved changes")
READONLY = "builder_readonly"  # version number when an older saved version is shown read-only
FLASH = "builder_flash"  # list of (kind, message) shown once at the top
OPEN_ERROR = "builder_open_error"  # why the last import or open failed: pinned until closed or replaced
CONFIRM_DELETE = "builder_confirm_delete"
UPLOAD_GEN = "builder_upload_gen"
IMPORTED = "builder_imported"  # file ids of the last uploads imported (each upload is imported once)
FORM_PREFIX = "builder_form."  # every side-panel widget key starts with this, then the form epoch
FORM_EPOCH = "builder_forms_epoch"
DRAFT = "builder_draft_key"  # the store key of the open document's draft: a workflow id, or "new:<uuid>"
DRAFT_DIGEST = "builder_draft_digest"  # digest of the draft last written (None: no draft stored)
RESTORED = "builder_restored"  # {"at": epoch seconds} while the open document is a restored draft
DRAFT_ERROR = "builder_draft_error"  # why the last draft write failed (shown once)

BAD_STYLE = {"border": "2px dashed #dc2626"}


# --- access --------------------------------------------------------------------------------


def reader() -> RunReader:
    return get_runtime().reader


def view_key() -> str:
    """The canvas view's name: this session and the opening number (``GEN``: every document opened and
    every Layout counts one). A new name is a new view (fitted); the
    browser tab keeps each view's pan and zoom under it (sessionStorage), and a reloaded page is a new
    session whose canvas keys must not find the old session's viewports."""
    nonce = st.session_state.setdefault(VIEW_NONCE, uuid.uuid4().hex[:12])
    return f"{nonce}:{st.session_state.get(GEN, 0)}"


def doc() -> dict[str, Any]:
    return st.session_state[BUILDER_DOC]


def source() -> str:
    return str(st.session_state.get(BUILDER_SOURCE) or "new")


def saved_id() -> str | None:
    src = source()
    return src.split(":", 1)[1] if src.startswith("saved:") else None


def readonly() -> int | None:
    return st.session_state.get(READONLY)


def selected() -> dict[str, Any] | None:
    return st.session_state.get(SELECTED)


def flash(kind: Kind, message: str) -> None:
    messages.later(FLASH, message, kind)


def dirty() -> bool:
    return st.session_state.get(BASELINE) != doc()


def unsaved() -> bool:
    """Whether leaving would lose something: changes since opened or saved, or a document never saved
    that did not come from New untouched (an import, an example, a copy)."""
    if readonly() is not None:
        return False
    return dirty() or (saved_id() is None and source() != "new")


def restored() -> dict[str, Any] | None:
    """``{"at": time}`` while the open document is a draft restored on opening."""
    return st.session_state.get(RESTORED)


def when_text(epoch: float) -> str:
    """A draft's time as the user reads it: the time today, else the date and time."""
    return format_ts(epoch, seconds=False, today_as_time=True)


def _digest(document: Any) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


def keep_draft() -> None:
    """Write the document as its draft when it changed since the last write (at most one write per
    run), or drop the draft once nothing is unsaved. A failed write is said once, never raised."""
    key = st.session_state.get(DRAFT)
    if not key:
        return
    wanted = unsaved()
    digest = _digest(doc()) if wanted else None
    if digest == st.session_state.get(DRAFT_DIGEST):
        return
    try:
        if wanted:
            get_runtime().save_draft(key, doc(), source=source())
        else:
            get_runtime().drop_draft(key)
    except Exception as exc:  # noqa: BLE001 - the page must go on; the user is told
        if st.session_state.get(DRAFT_ERROR) != str(exc):
            st.session_state[DRAFT_ERROR] = str(exc)
            flash("warning", f"Your edits could not be kept as a draft: {md_escape(str(exc)[:300])}")
        return
    st.session_state[DRAFT_DIGEST] = digest


def sync_address() -> None:
    """Keep ``?workflow=ID`` (saved) or ``?draft=KEY`` (never saved) in the address, so a reload or a
    new tab on it reopens this document with its draft."""
    wid, key = saved_id(), st.session_state.get(DRAFT)
    wanted = {"workflow": wid} if wid else {"draft": key} if key else {}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


def fkey(*parts: str) -> str:
    """A side-panel widget key: ``builder_form.<epoch>.<part>.<part>`` ('.' cannot occur in ids)."""
    return f"{FORM_PREFIX}{st.session_state.get(FORM_EPOCH, 0)}." + ".".join(parts)


def reset_forms() -> None:
    """Make every side-panel widget new, so each shows the document again.

    Deleting a widget's session state is not enough: the browser keeps the
    widget's old value and sends it back as a change on the next rerun. New
    keys (a new epoch) make new widgets.
    """
    st.session_state[FORM_EPOCH] = st.session_state.get(FORM_EPOCH, 0) + 1
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(FORM_PREFIX)]:
        del st.session_state[key]


# --- opening -------------------------------------------------------------------------------


def init() -> None:
    """Guards: a document to edit (a new one at first, opened like any other) and a canvas for it."""
    st.session_state.setdefault(GEN, 0)
    st.session_state.setdefault(UPLOAD_GEN, 0)
    if BUILDER_ARRIVING not in st.session_state and not isinstance(st.session_state.get(BUILDER_DOC), dict):
        # a new session (a reload, a new tab): the address says what was open
        st.session_state[BUILDER_ARRIVING] = _from_address() or _with_draft(_new_document(), "new", None)
    finish_arrival()


def open_doc(document: dict[str, Any], src: str, *, version: int | None = None) -> None:
    """Open ``document`` in the Builder. A newer rerun can stop the script at any session-state write,
    and a new document under the old source (``saved:<id>`` of another workflow) would save over that
    workflow: so the one write that decides is the arrival record, and the rest is redone from it by
    the next script run when this one is stopped half way. A saved workflow with a draft opens as
    its draft (the draft's edits are the user's latest)."""
    st.session_state[BUILDER_ARRIVING] = _with_draft(document, src, version)
    finish_arrival()


def _with_draft(document: dict[str, Any], src: str, version: int | None, key: str | None = None) -> tuple[Any, ...]:
    """The arrival record: (document, source, version, baseline, draft key, restored draft's time or None)."""
    if version is not None:
        return (document, src, version, copy.deepcopy(document), None, None)
    if src.startswith("saved:"):
        wid = src.split(":", 1)[1]
        draft = _read_draft(wid)
        if draft is not None:
            return (copy.deepcopy(draft.document), src, None, copy.deepcopy(document), wid, draft.updated_at)
        return (document, src, None, copy.deepcopy(document), wid, None)
    return (document, src, None, copy.deepcopy(document), key or f"new:{uuid.uuid4().hex[:16]}", None)


def _read_draft(key: str) -> Any:
    try:
        return reader().draft(key)
    except Exception:  # noqa: BLE001 - no store: open without the draft
        return None


def _from_address() -> tuple[Any, ...] | None:
    """The arrival record for ``?workflow=ID`` (the saved workflow, or its draft) or ``?draft=KEY``."""
    wid, key = st.query_params.get("workflow"), st.query_params.get("draft")
    if wid:
        try:
            found = reader().workflow_version(wid)
        except Exception:  # noqa: BLE001 - a malformed id or no store: say so below
            found = None
        if found is not None:
            return _with_draft(copy.deepcopy(found.document), f"saved:{wid}", None)
        draft = _read_draft(wid)
        if draft is not None:  # deleted meanwhile, but the edit is still here
            return (copy.deepcopy(draft.document), f"saved:{wid}", None, None, wid, draft.updated_at)
        flash("warning", f"There is no saved workflow with id “{md_escape(wid)}”; a new workflow is open instead.")
        return None
    if key and key.startswith("new:"):
        draft = _read_draft(key)
        if draft is not None:
            return (copy.deepcopy(draft.document), draft.source, None, None, key, draft.updated_at)
        return _with_draft(_new_document(), "new", None, key)  # nothing was changed in it: a fresh one
    return None


def finish_arrival() -> None:
    """Take a document being opened (:func:`open_doc`, ``nav.open_in_builder``): safe to repeat."""
    arriving = st.session_state.get(BUILDER_ARRIVING)
    if arriving is None:
        return
    messages.unpin(OPEN_ERROR)  # whatever failed to open before, this opening replaces its message
    if len(arriving) == 3:  # nav.open_in_builder: (document, source, version)
        arriving = _with_draft(*arriving)
        st.session_state[BUILDER_ARRIVING] = arriving
    document, src, version, baseline, key, restored = arriving
    st.session_state[BUILDER_DOC] = document
    st.session_state[BUILDER_SOURCE] = src
    st.session_state[DRAFT] = key
    st.session_state[DRAFT_DIGEST] = _digest(document) if restored is not None else None
    st.session_state[RESTORED] = {"at": restored} if restored is not None else None
    _arrive(version, baseline)
    st.session_state.pop(BUILDER_ARRIVING, None)


def _arrive(version: int | None, baseline: dict[str, Any] | None = None) -> None:
    st.session_state[GEN] = st.session_state.get(GEN, 0) + 1  # a new view, fitted to the new document
    st.session_state[CANVAS_KEY] = CANVAS
    st.session_state[SEEN] = None
    st.session_state[SELECTED] = None
    st.session_state[READONLY] = version
    st.session_state[CONFIRM_DELETE] = False
    st.session_state[BASELINE] = baseline
    reset_forms()
    redraw(bd.problem_nodes(bd.problems(doc())))


def _new_document() -> dict[str, Any]:
    """What "New" opens: the Settings page's run timeout for new workflows applies."""
    timeout_s = get_runtime().settings.saved.new_workflow_timeout_s
    return bd.new_document(_free_name("Untitled workflow"), timeout_s=timeout_s)


def _free_name(name: str) -> str:
    try:
        return bd.unique_name(name, lambda n: reader().find_workflow(n) is not None)
    except Exception:  # noqa: BLE001 - no store: any name will do
        return name


def options() -> dict[str, str]:
    """What can be opened: source -> label (saved workflows first, then drafts of documents never saved
    other than the open one, then the examples)."""
    found: dict[str, str] = {}
    for row in reader().workflows():
        found[f"saved:{row.id}"] = f"{row.name} · v{row.latest_version}"
    for draft in reader().drafts(limit=20):
        if draft.key.startswith("new:") and draft.key != st.session_state.get(DRAFT):
            name = draft.document.get("name") if isinstance(draft.document, dict) else None
            found[f"draft:{draft.key}"] = f"Draft · {name or 'untitled'} · {when_text(draft.updated_at)}"
    for path in sorted(EXAMPLES.glob("*.json")):
        try:
            name = json.loads(path.read_text(encoding="utf-8")).get("name") or path.stem
        except (OSError, ValueError):
            name = path.stem
        found[f"example:{path.name}"] = f"Example · {name}"
    return found


def load_source(src: str) -> dict[str, Any]:
    kind, _, rest = src.partition(":")
    if kind == "example":
        path = EXAMPLES / Path(rest).name
        return bd.parse_document(path.read_bytes(), path.name)
    if kind == "saved":
        found = reader().workflow_version(rest)
        if found is None:
            raise ValueError("that saved workflow no longer exists")
        return copy.deepcopy(found.document)
    raise ValueError(f"cannot open {src!r}")


# --- the canvas ------------------------------------------------------------------------------


def redraw(bad: set[str]) -> None:
    """Draw the document anew, as the next numbered drawing (see the module docstring)."""
    document = doc()
    sel = selected()
    node_sel = sel["id"] if sel and sel.get("kind") == "node" else None
    number = st.session_state[REDRAWS] = st.session_state.get(REDRAWS, 0) + 1
    state = to_state(document, editable=readonly() is None, selected=node_sel, redraw=number)
    for node in state.nodes:
        if node.id in bad:
            node.style.update(BAD_STYLE)
    st.session_state[FLOW] = state
    st.session_state[DRAWN] = {"doc": copy.deepcopy(document), "bad": sorted(bad), "readonly": readonly() is not None}


def needs_redraw(bad: set[str]) -> bool:
    drawn = st.session_state.get(DRAWN)
    return (
        drawn is None
        or drawn["readonly"] != (readonly() is not None)
        or drawn["bad"] != sorted(bad)
        or not same_graph(drawn["doc"], doc())
    )


def take_canvas_event() -> bool:
    """Fold a new canvas report (read from the component's session entry) into the document.

    Returns whether a new report arrived (also when it was dropped for being made from an older drawing).
    """
    raw = st.session_state.get(st.session_state.get(CANVAS_KEY, ""), None)
    if not isinstance(raw, dict) or "nodes" not in raw:
        return False
    stamp = raw.get("timestamp")
    if stamp == st.session_state.get(SEEN):
        return False
    st.session_state[SEEN] = stamp
    made_from = drawn_from(raw)
    if made_from is not None and made_from < st.session_state.get(REDRAWS, 0):
        return True  # made before our latest drawing reached the browser: the document has moved on
    state = StreamlitFlowState(
        nodes=[StreamlitFlowNode.from_dict(n) for n in raw.get("nodes") or []],
        edges=[StreamlitFlowEdge.from_dict(e) for e in raw.get("edges") or []],
        selected_id=raw.get("selectedId"),
        timestamp=int(stamp) - 1 if isinstance(stamp, (int, float)) else 0,
    )
    if readonly() is None:
        drawn = st.session_state.get(DRAWN) or {"bad": [], "readonly": False}
        merged = merge_canvas(doc(), state, base=drawn.get("doc"))
        _fill_new_whens(doc(), merged)
        if merged != doc():
            st.session_state[BUILDER_DOC] = merged
        st.session_state[DRAWN] = {**drawn, "doc": merge_canvas(drawn.get("doc") or merged, state)}
    st.session_state[FLOW] = state
    _select_from_canvas(state)
    _drop_missing_selection()
    return True


def _select_from_canvas(state: StreamlitFlowState) -> None:
    picked = state.selected_id
    if not picked:
        return
    if bd.find_node(doc(), picked) is not None:
        _select_node(picked)
        return
    drawn = next((e for e in state.edges if e.id == picked), None)
    if drawn is None:
        return
    candidates = [e for e in doc().get("edges", []) if e["source"] == drawn.source and e["target"] == drawn.target]
    if not candidates:
        return
    from ui.flow import edge_id

    edge = next((e for e in candidates if edge_id(e) == picked), candidates[0])
    select_edge(edge["source"], edge["target"], edge.get("when"))


def _drop_missing_selection() -> None:
    sel = selected()
    if sel is None:
        return
    if sel["kind"] == "node" and bd.find_node(doc(), sel["id"]) is None:
        st.session_state[SELECTED] = None
    if sel["kind"] == "edge" and bd.find_edge(doc(), sel["source"], sel["target"], sel.get("when")) is None:
        st.session_state[SELECTED] = None


def _select_node(node_id: str) -> None:
    st.session_state[SELECTED] = {"kind": "node", "id": node_id}


def select_edge(source_id: str, target: str, when: str | None) -> None:
    st.session_state[SELECTED] = {"kind": "edge", "source": source_id, "target": target, "when": when}


def sync_canvas() -> list[Problem]:
    """Take palette clicks and a canvas event, validate, and redraw when the canvas no longer matches.
    Returns the problems."""
    _take_palette_clicks()  # before the canvas report: its merge keeps the nodes added here
    take_canvas_event()
    follow_pending_run()
    keep_draft()
    sync_address()
    found = bd.problems(doc())
    bad = bd.problem_nodes(found)
    if needs_redraw(bad):
        redraw(bad)
    return found


# --- actions (callbacks) ----------------------------------------------------------------------


def act_new() -> None:
    open_doc(_new_document(), "new")
    flash("info", "New workflow: an input node wired to an output node. Add nodes from the palette.")


def act_open(choice_key: str) -> None:
    src = st.session_state.get(choice_key)
    label = options().get(src) if src else None
    if not src or not label:
        flash("warning", "Choose a workflow to open.")
        return
    if src.startswith("draft:"):
        draft = _read_draft(src.split(":", 1)[1])
        if draft is None:
            flash("warning", "That draft is gone (saved or discarded meanwhile).")
            return
        arriving = (copy.deepcopy(draft.document), draft.source, None, None, draft.key, draft.updated_at)
        st.session_state[BUILDER_ARRIVING] = arriving
        finish_arrival()
        return
    try:
        document = load_source(src)
    except (OSError, ValueError) as exc:
        messages.pin(OPEN_ERROR, f"Could not open it: {md_escape(exc)}")
        return
    open_doc(document, src)
    flash("success", f"Opened {md_escape(label)}.")


def act_import(upload_key: str) -> None:
    uploaded = st.session_state.get(upload_key)
    if uploaded is None:
        return
    imported = st.session_state.setdefault(IMPORTED, [])
    if uploaded.file_id in imported:
        return  # the browser sent the old uploader's file again (it still holds it until our rerun replaces it)
    import_bytes(uploaded.getvalue(), uploaded.name)
    imported.append(uploaded.file_id)  # (in place) only once imported: a stopped script has not taken the file
    del imported[:-20]
    st.session_state[UPLOAD_GEN] = st.session_state.get(UPLOAD_GEN, 0) + 1  # a fresh, empty uploader


def import_bytes(data: bytes, name: str) -> bool:
    try:
        document = bd.parse_document(data, name)
    except ValueError as exc:
        messages.pin(OPEN_ERROR, f"Import failed: {md_escape(exc)}")
        return False
    open_doc(document, "import")
    count = len(bd.problems(document))
    flash(
        "success" if not count else "warning",
        f"Imported {md_escape(name)}" + (f" — {count} problem(s) to fix, listed under the canvas." if count else "."),
    )
    return True


def act_save() -> None:
    """Store a version, with its problems if it has any (they are listed with it); drop the draft."""
    if readonly() is not None:
        return
    current = doc()
    name = current.get("name")
    if not isinstance(name, str) or not name.strip():
        flash("error", "Not saved: give the workflow a name first (Workflow settings); workflows are saved by name.")
        return
    found = bd.problems(current)
    try:
        document = copy.deepcopy(current) if found else bd.normalized(current)
        ref = get_runtime().save_workflow(document)
    except Exception as exc:  # noqa: BLE001 - a document the store cannot hold (say a YAML date): say why
        flash("error", f"Not saved: {md_escape(str(exc)[:300])}")
        return
    now_saved(document, ref.id)
    if found:
        flash(
            "warning",
            f"Saved as version {ref.version} with {len(found)} problem{'s' if len(found) != 1 else ''} "
            "(listed under the canvas and in Version history); fix them to run it.",
        )
    elif ref.created:
        flash("success", f"Saved as version {ref.version}.")
    else:
        flash("info", f"No changes: version {ref.version} is up to date.")


def now_saved(document: dict[str, Any], workflow_id: str) -> None:
    """The open document was just saved as ``workflow_id`` (Save, or a run, which saves it): it is the
    new baseline, and its drafts (under the old key and the workflow's) are dropped."""
    old_key = st.session_state.get(DRAFT)
    st.session_state[BUILDER_DOC] = document
    st.session_state[BUILDER_SOURCE] = f"saved:{workflow_id}"
    st.session_state[BASELINE] = copy.deepcopy(document)
    st.session_state[DRAFT] = workflow_id
    st.session_state[RESTORED] = None
    for key in {old_key, workflow_id} - {None}:
        with contextlib.suppress(Exception):  # a draft left behind is dropped by the next save
            get_runtime().drop_draft(str(key))
    st.session_state[DRAFT_DIGEST] = None


def act_discard_draft() -> None:
    """Drop the restored draft and open what was saved (or a new document)."""
    key = st.session_state.get(DRAFT)
    if key:
        get_runtime().drop_draft(str(key))
    wid = saved_id()
    found = reader().workflow_version(wid) if wid else None
    if found is not None:
        saved = found.document
        st.session_state[BUILDER_ARRIVING] = (
            copy.deepcopy(saved), f"saved:{wid}", None, copy.deepcopy(saved), wid, None
        )
    else:
        fresh = _new_document()
        new_key = f"new:{uuid.uuid4().hex[:16]}"
        st.session_state[BUILDER_ARRIVING] = (fresh, "new", None, copy.deepcopy(fresh), new_key, None)
    finish_arrival()
    flash("info", "Draft discarded.")


def act_duplicate() -> None:
    name = bd.unique_name(f"{doc().get('name') or 'Workflow'} (copy)", lambda n: reader().find_workflow(n) is not None)
    open_doc(bd.copy_of(doc(), name), "new")
    flash("info", f"Duplicated as “{md_escape(name)}” (not saved yet — press Save to keep it).")


def act_ask_delete() -> None:
    st.session_state[CONFIRM_DELETE] = True


def act_cancel_delete() -> None:
    st.session_state[CONFIRM_DELETE] = False


def act_delete() -> None:
    wid = saved_id()
    st.session_state[CONFIRM_DELETE] = False
    if wid is None:
        return
    name = doc().get("name")
    if get_runtime().archive_workflow(wid):
        get_runtime().drop_draft(wid)
        open_doc(_new_document(), "new")
        flash("success", f"Deleted “{md_escape(name)}”. Its runs and versions stay in History.")


def act_layout() -> None:
    """Arrange the nodes left to right by depth, and fit the view to them (a new view)."""
    positions = auto_positions(doc())
    for node in doc().get("nodes", []):
        x, y = positions[node["id"]]
        node["position"] = {"x": float(x), "y": float(y)}
    st.session_state[GEN] = st.session_state.get(GEN, 0) + 1  # a new view: fitted once drawn
    st.session_state.pop(DRAWN, None)  # redrawn in this run


def _take_palette_clicks() -> None:
    """Add a node per new palette click, each after the one before: the first after the selected node,
    or into the selected edge (``bd.add_node`` says how it is wired). Clicks are taken also when the
    document is read-only, and then never applied."""
    document, sel, editable = doc(), selected(), readonly() is None
    added: list[str] = []

    def apply(node_types: list[str]) -> None:  # no session-state access in here (see ui/palette.py)
        for node_type in node_types:
            # the value comes from the browser: only the palette's types
            if not editable or node_type not in bd.PALETTE:
                continue
            if added:
                added.append(bd.add_node(document, node_type, added[-1]))
            elif sel and sel["kind"] == "edge":
                added.append(bd.add_node(document, node_type, into=(sel["source"], sel["target"], sel.get("when"))))
            else:
                added.append(bd.add_node(document, node_type, sel["id"] if sel and sel["kind"] == "node" else None))

    palette.take_clicks(apply)
    if added:
        _select_node(added[-1])


def _fill_new_whens(before: dict[str, Any], after: dict[str, Any]) -> None:
    """An edge just drawn from a condition gets the next ``when`` value (``bd.next_when``) instead of none."""
    old = {(e.get("source"), e.get("target")) for e in before.get("edges", [])}
    for edge in after.get("edges", []):
        source = bd.find_node(after, edge["source"]) or {}
        if (edge["source"], edge["target"]) not in old and source.get("type") == "condition" and "when" not in edge:
            when = bd.next_when(after, edge["source"])
            if when is not None:
                edge["when"] = when


def act_close_inspector() -> None:
    st.session_state[SELECTED] = None


def act_delete_node(node_id: str) -> None:
    bd.delete_node(doc(), node_id)
    st.session_state[SELECTED] = None


def act_delete_edge(source_id: str, target: str, when: str | None) -> None:
    bd.delete_edge(doc(), source_id, target, when)
    st.session_state[SELECTED] = None


def act_open_version(version: int, as_copy: bool) -> None:
    wid = saved_id()
    found = reader().workflow_version(wid, version) if wid else None
    if found is None:
        flash("error", f"Version {version} was not found.")
        return
    document = copy.deepcopy(found.document)
    if as_copy:
        name = bd.unique_name(
            f"{document.get('name') or 'Workflow'} (v{version} copy)", lambda n: reader().find_workflow(n) is not None
        )
        open_doc(bd.copy_of(document, name), "new")
        flash("info", f"Opened version {version} as a copy named “{md_escape(name)}” (not saved yet).")
    else:
        open_doc(document, f"saved:{wid}", version=version)


def act_restore_version() -> None:
    version = readonly()
    if version is None:
        return
    ref = get_runtime().save_workflow(doc())
    had_draft = get_runtime().drop_draft(ref.id)  # the restored version is what is open now, not the draft
    document = doc()
    st.session_state[BUILDER_ARRIVING] = (document, f"saved:{ref.id}", None, copy.deepcopy(document), ref.id, None)
    finish_arrival()
    flash(
        "success",
        (
            f"Restored version {version} as version {ref.version}."
            if ref.created
            else f"Version {version} is already the latest."
        )
        + (" Your unsaved draft of the workflow was discarded." if had_draft else ""),
    )


def act_back_to_latest() -> None:
    wid = saved_id()
    found = reader().workflow_version(wid) if wid else None
    if found is None:
        return
    open_doc(copy.deepcopy(found.document), f"saved:{wid}")
