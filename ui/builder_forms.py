"""The Builder's side panel beyond the node inspector (``ui.node_forms``): the edge
form, workflow settings, the inputs schema editor and the version list.

Each widget writes into the document from its ``on_change`` callback (so the
canvas redraw and the validation of the same run see the change); keys come
from ``builder_state.fkey``. Nothing typed here is rendered as HTML; labels
and ids shown in Markdown are escaped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import streamlit as st

from engine.model import Settings
from engine.timefmt import format_ts
from ui import builder_doc as bd
from ui import builder_state as bs
from ui.form_fields import code, number_field, present, references, renamed, show_error
from ui.text import md_escape

_SETTINGS = {name: number_field(Settings, name) for name in ("max_iterations", "timeout_s")}


# --- edge inspector ---------------------------------------------------------------------------------


CUSTOM = "custom…"


def edge_form(edge: dict[str, Any], *, disabled: bool) -> None:
    doc = bs.doc()
    src, dst, when = edge["source"], edge["target"], edge.get("when")
    head, remove, close = st.columns([4, 1, 1], vertical_alignment="center")
    head.markdown(f"#### Edge  \n{code(src)} → {code(dst)}")
    with remove:  # before the fields, and behind a confirmation: Tab from a field never reaches it
        delete_popover("edge", bs.act_delete_edge, (src, dst, when), disabled=disabled)
    close.button(
        "", icon=":material/close:", key="builder_close_inspector", help="Close", on_click=bs.act_close_inspector
    )
    source_node = bd.find_node(doc, src) or {}
    base = bs.fkey("edge", src, dst)
    if source_node.get("type") == "condition":
        named = bd.condition_values(doc, src)  # the values its expression compares with or returns
        fixed = [*named, *(c for c in bd.WHEN_CHOICES if c not in named)]
        choices = [*fixed, CUSTOM]
        current = when if when in fixed else (CUSTOM if when is not None else None)
        st.selectbox(
            "Taken when the condition's value is",
            choices,
            index=choices.index(current) if current else None,
            key=base + ".when",
            on_change=_set_when,
            args=(src, dst, when, base + ".when", base + ".custom"),
            disabled=disabled,
            placeholder="choose: " + " / ".join(fixed) + " / a value",
            help="The first choices are the values the condition's expression names; booleans are written "
            "true/false; default is taken when no other edge of the condition matches.",
        )
        if current == CUSTOM or st.session_state.get(base + ".when") == CUSTOM:
            st.text_input(
                "Value",
                value=when if current == CUSTOM else "",
                key=base + ".custom",
                on_change=_set_when,
                args=(src, dst, when, base + ".when", base + ".custom"),
                disabled=disabled,
                placeholder="e.g. urgent",
            )
        if when is None:
            st.warning("Edges leaving a condition need a `when`.", icon=":material/warning:")
    else:
        st.caption(f"Edges from a {md_escape(source_node.get('type', '?'))} node are always taken.")
        if when is not None:
            st.warning(
                f"This edge carries {code('when: ' + str(when))}, which only edges from a condition may.",
                icon=":material/warning:",
            )
            st.button(
                "Remove when", key="builder_edge_unwhen", on_click=_unset_when, args=(src, dst, when), disabled=disabled
            )


def delete_popover(what: str, action: Callable[..., None], args: tuple[Any, ...], *, disabled: bool) -> None:
    """A delete action behind a small popover with the one destructive button, placed before the fields of
    the inspector: Tab from a text field goes on to the next field, never onto a delete button."""
    with st.popover("", icon=":material/delete:", help=f"Delete this {what}…", disabled=disabled):
        st.button(
            f"Delete {what}",
            key=f"builder_delete_{what}",
            icon=":material/delete:",
            type="primary",
            on_click=action,
            args=args,
            disabled=disabled,
        )


def _set_when(src: str, dst: str, old: str | None, select_key: str, custom_key: str) -> None:
    if not present(select_key):
        return
    edge = bd.find_edge(bs.doc(), src, dst, old)
    if edge is None or edge.get("when") != old:
        # the browser sent the value of an edge form no longer shown (the edge was just rewired, say by a
        # palette insert): taking it would select an edge that is gone and lose the current selection
        return
    choice = st.session_state.get(select_key)
    if choice == CUSTOM:
        new = str(st.session_state.get(custom_key) or "").strip() or None
        if new is None:
            return  # wait for the value
    else:
        new = choice
    bd.set_edge_when(bs.doc(), src, dst, old, new)
    bs.select_edge(src, dst, new)


def _unset_when(src: str, dst: str, when: str | None) -> None:
    bd.set_edge_when(bs.doc(), src, dst, when, None)
    bs.select_edge(src, dst, None)


# --- workflow settings and inputs ----------------------------------------------------------------------


def _on_doc(key: str, apply: Callable[[dict[str, Any], Any], None]) -> None:
    if not present(key):
        return
    apply(bs.doc(), st.session_state.get(key))


def _setting(field: str) -> Callable[[dict[str, Any], Any], None]:
    def apply(doc: dict[str, Any], value: Any) -> None:
        settings = doc.setdefault("settings", {})
        if value is None or value == "":
            settings.pop(field, None)
        else:
            settings[field] = value
        if not settings:
            doc.pop("settings", None)

    return apply


def settings_form(*, disabled: bool) -> None:
    doc = bs.doc()
    settings = doc.get("settings") if isinstance(doc.get("settings"), dict) else {}
    st.text_input(
        "Name",
        value=str(doc.get("name") or ""),
        key=bs.fkey("wf", "name"),
        on_change=_on_doc,
        args=(bs.fkey("wf", "name"), lambda d, v: d.__setitem__("name", str(v or "").strip())),
        disabled=disabled,
        help="Workflows are saved by name: saving under a new name creates a new saved workflow.",
    )
    st.text_area(
        "Description",
        value=str(doc.get("description") or ""),
        key=bs.fkey("wf", "description"),
        height=80,
        on_change=_on_doc,
        args=(bs.fkey("wf", "description"), lambda d, v: d.__setitem__("description", str(v or ""))),
        disabled=disabled,
    )
    left, mid, right = st.columns(3)
    with left:
        st.text_input(
            "Model",
            value=str(settings.get("model") or ""),
            key=bs.fkey("wf", "model"),
            on_change=_on_doc,
            args=(bs.fkey("wf", "model"), _setting("model")),
            placeholder="OPENAI_MODEL",
            disabled=disabled,
        )
    with mid:
        st.number_input(
            "Max iterations",
            **_SETTINGS["max_iterations"].widget_args(settings.get("max_iterations")),
            key=bs.fkey("wf", "max_iterations"),
            on_change=_on_doc,
            args=(bs.fkey("wf", "max_iterations"), _setting("max_iterations")),
            disabled=disabled,
            help="How often any one node may run in one run (loops).",
        )
    with right:
        st.number_input(
            "Run timeout (s)",
            **{**_SETTINGS["timeout_s"].widget_args(settings.get("timeout_s")), "step": 10.0},
            key=bs.fkey("wf", "timeout"),
            placeholder="none",
            on_change=_on_doc,
            args=(bs.fkey("wf", "timeout"), _setting("timeout_s")),
            disabled=disabled,
        )


def inputs_form(*, disabled: bool) -> None:
    doc = bs.doc()
    inputs = doc.get("inputs") if isinstance(doc.get("inputs"), dict) else {}
    if not inputs:
        st.caption("No inputs: runs start with an empty object.")
    for name, spec in list(inputs.items()):
        spec = spec if isinstance(spec, dict) else {}
        base = bs.fkey("in", name) + "."
        with st.container(border=True):
            c1, c3 = st.columns([5, 1], vertical_alignment="bottom")
            c1.text_input(
                "Name",
                value=name,
                key=base + "name",
                on_change=_rename_input,
                args=(name, base + "name"),
                disabled=disabled,
            )
            kind = spec.get("type", "string")
            c3.button(
                "",
                icon=":material/delete:",
                key=base + "delete",
                help=f"Remove the input {md_escape(name)}",
                on_click=_delete_input,
                args=(name,),
                disabled=disabled,
            )
            show_error(base + "name")
            d1, d2 = st.columns(2, vertical_alignment="bottom")
            d1.selectbox(
                "Type",
                bd.INPUT_TYPES,
                index=bd.INPUT_TYPES.index(kind) if kind in bd.INPUT_TYPES else 0,
                key=base + "type",
                on_change=_on_input,
                args=(name, base, "type"),
                disabled=disabled,
            )
            required = "default" not in spec
            d2.checkbox(
                "Required",
                value=required,
                key=base + "required",
                on_change=_on_input,
                args=(name, base, "required"),
                disabled=disabled,
                help="An input without a default must be given at run time.",
            )
            st.text_input(
                "Description",
                value=str(spec.get("description") or ""),
                key=base + "description",
                on_change=_on_input,
                args=(name, base, "description"),
                disabled=disabled,
            )
            st.text_input(
                "Default" + ("" if kind == "string" else " (JSON)"),
                value=bd.default_text(spec),
                key=base + "default",
                on_change=_on_input,
                args=(name, base, "default"),
                disabled=disabled or required,
                placeholder="none (required)" if required else "null",
            )
            show_error(base + "default")
    st.button("Add input", icon=":material/add:", key="builder_add_input", on_click=_add_input, disabled=disabled)


def _rename_input(old: str, key: str) -> None:
    done = renamed(key, lambda new: bd.rename_input(bs.doc(), old, new))
    if done is None:
        return
    new, count = done
    bs.reset_forms()
    if count:
        bs.flash("success", f"Renamed input “{md_escape(old)}” to “{md_escape(new)}” and {references(count)}.")


def _on_input(name: str, base: str, field: str) -> None:
    key = base + field
    spec = (bs.doc().get("inputs") or {}).get(name)
    if not isinstance(spec, dict) or not present(key):
        return
    value = st.session_state.get(key)
    if field == "required":
        if bool(value) == ("default" not in spec):
            return
        if value:
            spec.pop("default", None)
        else:
            spec["default"] = "" if spec.get("type", "string") == "string" else None
        bs.reset_forms()
    elif field == "default":
        try:
            spec["default"] = bd.parse_value(
                spec.get("type", "string"),
                str(value or "") or ("" if spec.get("type", "string") == "string" else "null"),
            )
        except ValueError as exc:
            st.session_state[key + "__error"] = f"Default {exc}; not applied."
            return
        st.session_state.pop(key + "__error", None)
    elif field == "type":
        if value == spec.get("type", "string"):
            return
        spec["type"] = value
        if "default" in spec and not _fits(str(value), spec["default"]):
            spec["default"] = "" if value == "string" else None
        bs.reset_forms()
    elif field == "description":
        spec["description"] = str(value or "")


def _fits(kind: str, value: Any) -> bool:
    if value is None:
        return True
    if kind == "string":
        return isinstance(value, str)
    try:
        bd.parse_value(kind, json.dumps(value))
    except (ValueError, TypeError):
        return False
    return True


def _delete_input(name: str) -> None:
    bd.delete_input(bs.doc(), name)
    bs.reset_forms()


def _add_input() -> None:
    bd.add_input(bs.doc())


# --- versions ----------------------------------------------------------------------------------------------


def versions_panel(*, viewing: int | None) -> None:
    wid = bs.saved_id()
    if wid is None:
        st.caption("Save the workflow to keep versions of it.")
        return
    rows = bs.reader().workflow_versions(wid)
    if not rows:
        st.caption("No saved versions.")
        return
    latest = rows[-1].version
    for row in reversed(rows):
        when = format_ts(row.created_at, seconds=False)
        nodes = len((row.document or {}).get("nodes", []))
        found = bd.problems(row.document or {})  # saved with problems: listed with it
        tag = " · latest" if row.version == latest else ""
        tag += " · viewing" if viewing == row.version else ""
        c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="center")
        flaws = f" · :red[{len(found)} problem{'s' if len(found) != 1 else ''}]" if found else ""
        c1.markdown(f"**v{row.version}**{tag}  \n:gray[{when} · {nodes} nodes]{flaws}")
        if found:
            c1.caption("\n".join(f"- {md_escape(str(p))}" for p in found[:5]))
        c2.button(
            "View",
            key=f"builder_ver_view_{row.version}",
            help="Open this version read-only",
            on_click=bs.act_open_version,
            args=(row.version, False),
            disabled=row.version == latest and viewing is None,
        )
        c3.button(
            "Copy",
            key=f"builder_ver_copy_{row.version}",
            help="Open this version as a new, editable copy",
            on_click=bs.act_open_version,
            args=(row.version, True),
        )
