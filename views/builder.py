"""Builder: draw a workflow on a canvas, edit each node in a side panel, validate live,
save versions, import/export, and run it.

The document being edited lives in ``st.session_state[BUILDER_DOC]``; the
canvas is drawn from it and canvas edits are folded back into it (see
``ui.builder_state``). Node ids renamed in the side panel rewrite the edges
and every ``nodes.<id>`` reference (``ui.builder_doc``).
"""

from __future__ import annotations

import streamlit as st

from ui import builder_doc as bd
from ui import builder_forms as forms
from ui import builder_state as bs
from ui import flash, leave_guard, node_forms, palette
from ui import run_form as run_popover
from ui.canvas import canvas, roomy_page
from ui.icons import icon_of
from ui.text import md_escape

PANEL = "builder_side_panel"  # the side panel is shown (the toggle's value; off: the canvas takes the full width)
CANVAS_HEIGHT = 620
SIDE = "builder_side"  # the side panel's container (its class st-key-builder_side scopes SIDE_CSS)
# In the side panel, a column holding a field is at least 8.5rem wide, and a row of them wraps instead
# of cutting labels and values ("stri" for "string") when the panel is narrow.
SIDE_CSS = """<style>
.st-key-builder_side [data-testid="stHorizontalBlock"] { flex-wrap: wrap; }
.st-key-builder_side [data-testid="stColumn"]:has([data-testid="stTextInput"], [data-testid="stNumberInput"],
  [data-testid="stSelectbox"], [data-testid="stCheckbox"], [data-testid="stRadio"], [data-testid="stToggle"]) {
  min-width: 8.5rem;
}
</style>"""

roomy_page()
st.html(SIDE_CSS)
st.session_state.setdefault(PANEL, True)
bs.init()
problems = bs.sync_canvas()
doc = bs.doc()
viewing = bs.readonly()
locked = viewing is not None
wid = bs.saved_id()

# --- header ------------------------------------------------------------------------------------------------

badges = []
if viewing is not None:
    badges.append(f":violet-badge[version {viewing} · read-only]")
elif wid is not None:
    row = bs.reader().workflow(wid)
    badges.append(f":blue-badge[saved · v{row.latest_version}]" if row else ":gray-badge[saved]")
else:
    src = bs.source()
    origin = {"new": "new", "import": "imported"}.get(
        src, "example · " + src.split(":", 1)[-1] if src.startswith("example:") else src
    )
    badges.append(f":gray-badge[{md_escape(origin)} · not saved]")
if bs.dirty() and not locked:
    badges.append(":orange-badge[unsaved changes]")
badges.append(
    ":green-badge[valid]" if not problems else f":red-badge[{len(problems)} problem{'s' if len(problems) != 1 else ''}]"
)
st.markdown(f"## {md_escape(doc.get('name') or 'Untitled workflow')}")
st.markdown(" ".join(badges))
with st.container():  # one slot whether or not there is a description (see "notices" below)
    if doc.get("description"):
        st.caption(md_escape(doc["description"]))

# --- toolbar -----------------------------------------------------------------------------------------------

with st.container(horizontal=True, vertical_alignment="center"):
    with st.popover("Open", icon=":material/folder_open:"):
        opts = bs.options()
        st.selectbox(
            "Saved workflows and examples",
            list(opts),
            format_func=lambda src: opts.get(src, src),
            index=None,
            key="builder_open_choice",
            placeholder="choose a workflow",
        )
        st.button("Open", key="builder_open", type="primary", on_click=bs.act_open, args=("builder_open_choice",))
        if bs.dirty() and not locked:
            st.caption(":orange[You have unsaved changes; opening another workflow replaces them.]")
        st.divider()
        upload_key = f"builder_upload_{st.session_state[bs.UPLOAD_GEN]}"
        st.file_uploader(
            "Import a workflow file (JSON or YAML)",
            type=["json", "yaml", "yml"],
            key=upload_key,
            on_change=bs.act_import,
            args=(upload_key,),
        )
    st.button(
        "New",
        key="builder_new",
        icon=":material/add_box:",
        on_click=bs.act_new,
        help="A new workflow: an input and an output node",
    )
    st.button(
        "Save",
        key="builder_save",
        icon=":material/save:",
        type="primary" if bs.dirty() else "secondary",
        on_click=bs.act_save,
        disabled=locked,
        help="Save a new version (only when something changed)"
        + (f"; it is saved with its {len(problems)} problem(s), which block only Run" if problems else ""),
    )
    st.button(
        "Duplicate",
        key="builder_duplicate",
        icon=":material/content_copy:",
        on_click=bs.act_duplicate,
        help="Open a copy under a new name",
    )
    st.download_button(
        "Export",
        data=bd.export_json(doc),
        file_name=bd.file_name(doc),
        mime="application/json",
        key="builder_export",
        icon=":material/download:",
        on_click="ignore",
        help="Download the workflow as JSON",
    )
    st.button(
        "Delete",
        key="builder_delete",
        icon=":material/delete:",
        on_click=bs.act_ask_delete,
        disabled=wid is None or locked,
        help="Delete the saved workflow (its runs stay)" if wid else "Only saved workflows can be deleted",
    )
    with st.popover("Run", icon=":material/play_arrow:", type="primary"):
        st.markdown(f"**Run {md_escape(doc.get('name') or 'workflow')}**")
        if problems:
            st.error(
                f"Run is blocked by {len(problems)} problem{'s' if len(problems) != 1 else ''}:\n"
                + "\n".join(f"- **{md_escape(p.where)}**: {md_escape(p.message)}" for p in problems[:8])
                + (f"\n- … and {len(problems) - 8} more (under the canvas)" if len(problems) > 8 else ""),
                icon=":material/block:",
            )
        run_popover.run_form(blocked=bool(problems))

# Flash messages, the delete question and the read-only notice come and go in one slot: an element
# appearing or vanishing above the canvas would move it in the page's element tree, and Streamlit then
# re-creates the canvas's iframe (reloading the component and losing its view) on every such rerun.
notices = st.container()
with notices:
    leave_guard.guard(unsaved=bs.unsaved(), key="builder_leave_guard")
    flash.show(bs.FLASH)
    flash.show_pinned(bs.OPEN_ERROR)  # the canvas's reruns would eat a once-only message

    if (restored := bs.restored()) is not None and not locked:
        with st.container(border=True, horizontal=True, vertical_alignment="center"):
            st.info(
                f"Restored draft: your unsaved edits from {bs.when_text(restored['at'])} are back. "
                "Save to keep them as a version, or discard them.",
                icon=":material/restore:",
                width="stretch",
            )
            st.button("Discard draft", key="builder_discard_draft", on_click=bs.act_discard_draft)

    if st.session_state.get(bs.CONFIRM_DELETE) and wid is not None:
        with st.container(border=True):
            st.warning(
                f"Delete “{md_escape(doc.get('name'))}”? It disappears from the lists; "
                "its versions and runs stay in History.",
                icon=":material/warning:",
            )
            with st.container(horizontal=True):
                st.button("Yes, delete", key="builder_delete_confirm", type="primary", on_click=bs.act_delete)
                st.button("Cancel", key="builder_delete_cancel", on_click=bs.act_cancel_delete)

    if locked:
        with st.container(border=True):
            st.info(
                f"You are looking at version {viewing}, read-only. "
                "Edit a copy of it, restore it as the latest version, or go back.",
                icon=":material/history:",
            )
            with st.container(horizontal=True):
                st.button("Edit as a copy", key="builder_ro_copy", on_click=bs.act_open_version, args=(viewing, True))
                st.button("Restore as latest", key="builder_ro_restore", on_click=bs.act_restore_version)
                st.button("Back to latest", key="builder_ro_back", on_click=bs.act_back_to_latest)

# --- canvas and side panel ---------------------------------------------------------------------------------

with st.container(horizontal=True, vertical_alignment="center", gap="small"):
    sel = bs.selected()
    picked = bd.find_node(doc, sel["id"]) if sel and sel["kind"] == "node" else None
    after = picked["id"] if picked and picked.get("type") != "output" else None
    into = (sel["source"], sel["target"]) if sel and sel["kind"] == "edge" else None
    st.caption(
        f"Insert a node into **{md_escape(into[0])} → {md_escape(into[1])}**"
        if into
        else "Add a node" + (f" after **{md_escape(after)}**" if after else ""),
        width=240,  # fixed: the palette must not move under the pointer when the selection changes
    )
    palette.render(
        [
            {
                "type": node_type,
                "label": node_type.capitalize(),
                "icon": icon_of(node_type).material,
                "help": f"Add a {node_type} node" + (f", wired after “{after}”" if after else ""),  # plain text
            }
            for node_type in bd.PALETTE
        ],
        disabled=locked,
    )
    st.button(
        "Layout",
        key="builder_layout",
        icon=":material/account_tree:",
        on_click=bs.act_layout,
        disabled=locked,
        help="Arrange the nodes left to right by depth and fit them in the view",
    )
    st.toggle(
        "Side panel",
        value=st.session_state[PANEL],
        key="builder_side_panel_toggle",
        on_change=lambda: st.session_state.__setitem__(PANEL, st.session_state["builder_side_panel_toggle"]),
        help="Hide the side panel to give the canvas the page's full width (the inspector then shows below it)",
    )

if st.session_state[PANEL]:
    canvas_col, side_col = st.columns([0.7, 0.3], gap="small")
else:
    canvas_col, side_col = st.container(), None

with canvas_col:
    canvas(
        st.session_state[bs.CANVAS_KEY],
        st.session_state[bs.FLOW],
        view_key=bs.view_key(),
        height=CANVAS_HEIGHT,
        show_controls=True,
        show_minimap=True,
        allow_new_edges=not locked,
        enable_node_menu=not locked,
        enable_edge_menu=not locked,
        get_node_on_click=True,
        get_edge_on_click=True,
    )
    st.caption(
        "Drag from a node's right handle to another node to connect them · click a node or an edge to edit it · "
        "right-click a node or an edge to delete it · scroll to zoom, drag the background to pan."
    )
    if problems:
        st.error(
            f"**{len(problems)} problem{'s' if len(problems) != 1 else ''}**"
            + (" (nodes outlined in red on the canvas)" if bd.problem_nodes(problems) else "")
            + ":\n"
            + "\n".join(f"- **{md_escape(p.where)}**: {md_escape(p.message)}" for p in problems),
            icon=":material/error:",
        )
    else:
        n_nodes, n_edges = len(doc.get("nodes", [])), len(doc.get("edges", []))
        st.success(f"Valid — {n_nodes} nodes, {n_edges} edges. Ready to run.", icon=":material/check_circle:")
        if warned := bd.warnings(doc):
            st.warning(
                f"**{len(warned)} warning{'s' if len(warned) != 1 else ''}** (they do not block Run):\n"
                + "\n".join(f"- **{md_escape(p.where)}**: {md_escape(p.message)}" for p in warned),
                icon=":material/warning:",
            )


def side_panel() -> None:
    with st.container(key=SIDE):
        side_panel_body()


def side_panel_body() -> None:
    with st.container(border=True):
        sel = bs.selected()
        node = bd.find_node(doc, sel["id"]) if sel and sel["kind"] == "node" else None
        edge = (
            bd.find_edge(doc, sel["source"], sel["target"], sel.get("when")) if sel and sel["kind"] == "edge" else None
        )
        if node is not None:
            node_forms.node_form(node, disabled=locked)
        elif edge is not None:
            forms.edge_form(edge, disabled=locked)
        else:
            st.markdown("#### Inspector")
            st.caption(
                "Click a node or an edge on the canvas to edit it here. A node from the palette goes after the "
                "selected node (into its edge when it has exactly one; a new branch after a condition), or into the "
                "selected edge."
            )
            names = [n["id"] for n in doc.get("nodes", [])]
            st.selectbox(
                "Or pick a node",
                names,
                index=None,
                key="builder_pick_node",
                placeholder="node id",
                on_change=lambda: (
                    st.session_state.__setitem__(
                        bs.SELECTED, {"kind": "node", "id": st.session_state["builder_pick_node"]}
                    )
                    if st.session_state.get("builder_pick_node")
                    else None
                ),
            )
    with st.expander("Workflow settings", icon=":material/tune:"):
        forms.settings_form(disabled=locked)
    with st.expander(f"Inputs ({len(doc.get('inputs') or {})})", icon=":material/input:"):
        forms.inputs_form(disabled=locked)
    with st.expander("Version history", icon=":material/history:", expanded=locked):
        forms.versions_panel(viewing=viewing)


if side_col is not None:
    with side_col:
        side_panel()
else:
    side_panel()
