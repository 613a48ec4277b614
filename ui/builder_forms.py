"""The Builder's side panel: a form fitted to the selected node's type, the edge form,
workflow settings and the inputs schema editor.

Each widget writes into the document from its ``on_change`` callback (so the
canvas redraw and the validation of the same run see the change). Widget keys
are ``builder_form.<epoch>.<node>.<field>`` (``builder_state.fkey``);
``builder_state.reset_forms`` starts a new epoch whenever the document is
replaced or a callback changes what another widget shows. Nothing typed
here is rendered as HTML; labels and ids shown in Markdown are escaped.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any

import streamlit as st

import tools
from engine import InputsInvalid, WorkflowInvalid
from engine.errors import Problem
from engine.model import MAP_INNER_TYPES
from ui import builder_doc as bd
from ui import builder_state as bs
from ui.flow import ICONS
from ui.nav import BUILDER_DOC, BUILDER_SOURCE, watch_run_next
from ui.runtime import get_runtime
from ui.text import md_escape

Apply = Callable[[dict[str, Any], Any], None]
RUN_ERRORS = "builder_run_errors"  # why "Start run" did not start (problems), shown once in the Run popover


# --- plumbing ----------------------------------------------------------------------------------


def code(text: object) -> str:
    """Text as a Markdown code span (shown literally; a backtick in it cannot close the span)."""
    return "`" + str(text).replace("`", "ˋ").replace("\n", " ") + "`"


def _key(node_id: str, field: str) -> str:
    return bs.fkey(node_id, field)


def _present(*keys: str) -> bool:
    """Whether the widgets' values are there.

    When reruns are interrupted (quick clicks), Streamlit can call a widget's
    ``on_change`` although the widget's value is gone; such calls must change
    nothing (they would blank the field in the document).
    """
    return all(key in st.session_state for key in keys)


def _on_node(node_id: str, key: str, apply: Apply) -> None:
    if not _present(key):
        return
    node = bd.find_node(bs.doc(), node_id)
    if node is not None:
        apply(node, st.session_state.get(key))


def _config(node: dict[str, Any]) -> dict[str, Any]:
    """The node's config, made a dict if an imported document had something else there."""
    if not isinstance(node.get("config"), dict):
        node["config"] = {}
    return node["config"]


def _cfg(field: str, *, optional: bool = True) -> Apply:
    def apply(node: dict[str, Any], value: Any) -> None:
        cfg = _config(node)
        if optional and (value is None or value == "" or value == []):
            cfg.pop(field, None)
        else:
            cfg[field] = value

    return apply


def _top(field: str) -> Apply:
    def apply(node: dict[str, Any], value: Any) -> None:
        if value is None or value == "":
            node.pop(field, None)
        else:
            node[field] = value

    return apply


def _json_field(key: str, apply: Callable[[Any], None], *, want: type | None = dict) -> None:
    """Callback body for a JSON text area: apply valid JSON, else keep an error to show."""
    if not _present(key):
        return
    text = st.session_state.get(key) or ""
    try:
        value = json.loads(text) if text.strip() else ({} if want is dict else None)
    except json.JSONDecodeError as exc:
        st.session_state[key + "__error"] = (
            f"Not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno}); the last valid value is kept."
        )
        return
    if want is not None and not isinstance(value, want):
        st.session_state[key + "__error"] = (
            f"Must be a JSON {'object' if want is dict else want.__name__}; the last valid value is kept."
        )
        return
    st.session_state.pop(key + "__error", None)
    apply(value)


def _show_error(key: str) -> None:
    message = st.session_state.get(key + "__error")
    if message:
        st.error(md_escape(message), icon=":material/error:")


def _text(
    node: dict[str, Any], field: str, label: str, apply: Apply, *, area: bool = False, disabled: bool, **kw: Any
) -> None:
    key = _key(node["id"], field)
    widget = st.text_area if area else st.text_input
    value = kw.pop("value", None)
    widget(
        label,
        value="" if value is None else str(value),
        key=key,
        on_change=_on_node,
        args=(node["id"], key, apply),
        disabled=disabled,
        **kw,
    )


def _number(
    node: dict[str, Any], field: str, label: str, value: Any, apply: Apply, *, disabled: bool, **kw: Any
) -> None:
    key = _key(node["id"], field)
    st.number_input(
        label, value=value, key=key, on_change=_on_node, args=(node["id"], key, apply), disabled=disabled, **kw
    )


# --- node inspector --------------------------------------------------------------------------------


def node_form(node: dict[str, Any], *, disabled: bool) -> None:
    node_id = node["id"]
    node_type = str(node.get("type"))
    head, close = st.columns([5, 1], vertical_alignment="center")
    head.markdown(
        f"#### {ICONS.get(node_type, '❔')} {md_escape(node.get('label') or node_id)}  \n:gray-badge[{md_escape(node_type)} node]"
    )
    close.button("✕", key="builder_close_inspector", help="Close", on_click=bs.act_close_inspector)

    id_key = _key(node_id, "id")
    st.text_input(
        "Id",
        value=node_id,
        key=id_key,
        on_change=_rename,
        args=(node_id, id_key),
        disabled=disabled,
        help="Templates use it as `nodes.<id>`. Renaming rewrites the edges and every `nodes.<id>` reference for you.",
    )
    _show_error(id_key)
    _text(node, "label", "Label", _top("label"), value=node.get("label"), disabled=disabled, placeholder=node_id)

    render = _FORMS.get(node_type)
    if render is not None:
        render(node, disabled)
    if node_type in bd.PALETTE:
        _retry_form(node, disabled)
    if node_type != "input":
        st.button(
            "Delete node",
            key="builder_delete_node",
            icon=":material/delete:",
            on_click=bs.act_delete_node,
            args=(node_id,),
            disabled=disabled,
            help="Removes the node and its edges (the node menu on the canvas does the same).",
        )


def _rename(old: str, key: str) -> None:
    if not _present(key):
        return
    new = str(st.session_state.get(key) or "").strip()
    try:
        rewritten = bd.rename_node(bs.doc(), old, new)
    except ValueError as exc:
        st.session_state[key + "__error"] = f"Not renamed: {exc}."
        return
    if new != old:
        bs.reset_forms()
        st.session_state[bs.SELECTED] = {"kind": "node", "id": new}
        extra = f" and {rewritten} template reference{'s' if rewritten != 1 else ''}" if rewritten else ""
        bs.flash("success", f"Renamed “{md_escape(old)}” to “{md_escape(new)}”: edges{extra} updated.")


def _input_form(node: dict[str, Any], disabled: bool) -> None:
    names = ", ".join(md_escape(n) for n in (bs.doc().get("inputs") or {})) or "none yet"
    st.caption(
        f"Passes the run's inputs on (`inputs.<name>` in templates). Declared inputs: {names}. Edit them under **Inputs**."
    )


def _agent_form(node: dict[str, Any], disabled: bool) -> None:
    cfg = node["config"] if isinstance(node.get("config"), dict) else {}
    _text(
        node,
        "prompt",
        "Prompt",
        _cfg("prompt", optional=False),
        area=True,
        value=cfg.get("prompt"),
        height=150,
        disabled=disabled,
        help="A Jinja2 template: `{{ inputs.<name> }}`, `{{ nodes.<id>.output }}`.",
    )
    _text(
        node,
        "system",
        "System message",
        _cfg("system"),
        area=True,
        value=cfg.get("system"),
        height=90,
        disabled=disabled,
    )
    left, right = st.columns(2)
    with left:
        _text(
            node,
            "model",
            "Model",
            _cfg("model"),
            value=cfg.get("model"),
            disabled=disabled,
            placeholder="workflow default",
        )
    with right:
        _number(
            node,
            "temperature",
            "Temperature",
            cfg.get("temperature"),
            _cfg("temperature"),
            min_value=0.0,
            max_value=2.0,
            step=0.1,
            placeholder="model default",
            disabled=disabled,
        )
    registry = [t.name for t in tools.list_tools()]
    chosen = [t for t in cfg.get("tools") or [] if isinstance(t, str)]
    key = _key(node["id"], "tools")
    st.multiselect(
        "Tools",
        options=registry + [t for t in chosen if t not in registry],
        default=chosen,
        key=key,
        on_change=_on_node,
        args=(node["id"], key, _cfg("tools")),
        disabled=disabled,
        placeholder="no tools",
        help="Tools the agent may call (from the tool registry).",
    )
    left, right = st.columns(2)
    with left:
        _number(
            node,
            "max_steps",
            "Max tool steps",
            int(cfg.get("max_steps", 5)),
            _cfg("max_steps", optional=False),
            min_value=0,
            max_value=100,
            step=1,
            disabled=disabled,
        )
    with right:
        key = _key(node["id"], "response_format")
        st.radio(
            "Response",
            ["text", "json"],
            index=1 if cfg.get("response_format") == "json" else 0,
            horizontal=True,
            key=key,
            on_change=_on_node,
            args=(node["id"], key, _cfg("response_format")),
            disabled=disabled,
        )
    _memory_form(node, cfg, disabled)


def _memory_form(node: dict[str, Any], cfg: dict[str, Any], disabled: bool) -> None:
    memory = cfg.get("memory") if isinstance(cfg.get("memory"), dict) else None
    key = _key(node["id"], "memory_on")

    def toggle(n: dict[str, Any], on: Any) -> None:
        c = _config(n)
        if bool(on) == isinstance(c.get("memory"), dict):
            return
        if on:
            c["memory"] = {"agent_id": n["id"], "short_term": True, "recall": 0, "save": True}
        else:
            c.pop("memory", None)

    st.toggle(
        "Memory",
        value=memory is not None,
        key=key,
        on_change=_on_node,
        args=(node["id"], key, toggle),
        disabled=disabled,
        help="Conversation memory and long-term recall for this agent.",
    )
    if memory is None:
        return

    def mem(field: str) -> Apply:
        def apply(n: dict[str, Any], value: Any) -> None:
            _config(n).setdefault("memory", {})[field] = value

        return apply

    with st.container(border=True):
        _text(
            node,
            "mem_agent",
            "Agent id",
            mem("agent_id"),
            value=memory.get("agent_id"),
            disabled=disabled,
            help="Memories are kept per agent id; agents sharing an id share memories.",
        )
        left, mid, right = st.columns(3)
        with left:
            key = _key(node["id"], "mem_short")
            st.checkbox(
                "Short-term",
                value=bool(memory.get("short_term", True)),
                key=key,
                on_change=_on_node,
                args=(node["id"], key, mem("short_term")),
                disabled=disabled,
                help="Keep the conversation between runs.",
            )
        with mid:
            _number(
                node,
                "mem_recall",
                "Recall k",
                int(memory.get("recall", 0)),
                mem("recall"),
                min_value=0,
                max_value=100,
                step=1,
                disabled=disabled,
            )
        with right:
            key = _key(node["id"], "mem_save")
            st.checkbox(
                "Save",
                value=bool(memory.get("save", True)),
                key=key,
                on_change=_on_node,
                args=(node["id"], key, mem("save")),
                disabled=disabled,
                help="Save the answer as a long-term memory.",
            )


def _tool_form(node: dict[str, Any], disabled: bool) -> None:
    cfg = node["config"] if isinstance(node.get("config"), dict) else {}
    specs = {t.name: t for t in tools.list_tools()}
    current = cfg.get("tool") if isinstance(cfg.get("tool"), str) else None
    names = list(specs) + ([current] if current and current not in specs else [])
    key = _key(node["id"], "tool")
    st.selectbox(
        "Tool",
        names,
        index=names.index(current) if current in names else None,
        key=key,
        on_change=_on_node,
        args=(node["id"], key, _cfg("tool", optional=False)),
        disabled=disabled,
        placeholder="choose a tool",
    )
    spec = specs.get(current or "")
    if spec is not None:
        st.caption(md_escape(spec.description))
        _schema_table(spec.parameters)
    elif current:
        st.warning(f"“{md_escape(current)}” is not a registered tool.", icon=":material/warning:")
    key = _key(node["id"], "args")

    def apply_args(value: Any) -> None:
        n = bd.find_node(bs.doc(), node["id"])
        if n is not None:
            _config(n)["args"] = value

    st.text_area(
        "Arguments (JSON object; strings are templates)",
        value=json.dumps(cfg.get("args") or {}, indent=2, ensure_ascii=False),
        key=key,
        height=120,
        on_change=_json_field,
        args=(key, apply_args),
        disabled=disabled,
    )
    _show_error(key)


def _schema_table(schema: dict[str, Any]) -> None:
    props = schema.get("properties") or {}
    if not props:
        st.caption("This tool takes no arguments.")
        return
    required = set(schema.get("required") or [])
    lines = []
    for name, prop in props.items():
        kind = prop.get("type", "any") if isinstance(prop, dict) else "any"
        need = (
            "required"
            if name in required
            else f"optional, default {json.dumps(prop.get('default'))}"
            if isinstance(prop, dict) and "default" in prop
            else "optional"
        )
        desc = prop.get("description", "") if isinstance(prop, dict) else ""
        lines.append(f"- {code(name)} · {md_escape(kind)} · {md_escape(need)} — {md_escape(desc)}")
    st.markdown("\n".join(lines))


def _condition_form(node: dict[str, Any], disabled: bool) -> None:
    cfg = node["config"] if isinstance(node.get("config"), dict) else {}
    _text(
        node,
        "expression",
        "Expression",
        _cfg("expression", optional=False),
        value=cfg.get("expression"),
        disabled=disabled,
        help="A Jinja2 expression without braces, e.g. nodes.score.output >= 7. Its value picks the edge whose when matches.",
    )
    outgoing = [e for e in bs.doc().get("edges", []) if e.get("source") == node["id"]]
    if outgoing:
        st.caption(
            "Branches: "
            + " · ".join(f"{code(e.get('when', '(no when)'))} → {md_escape(e['target'])}" for e in outgoing)
        )
    else:
        st.caption("Drag from this node to add branches, then click each edge to set its `when`.")


def _transform_form(node: dict[str, Any], disabled: bool) -> None:
    cfg = node["config"] if isinstance(node.get("config"), dict) else {}
    mode = "Template" if "template" in cfg and "expression" not in cfg else "Expression"
    key = _key(node["id"], "mode")

    def switch(n: dict[str, Any], value: Any) -> None:
        c = _config(n)
        if value == ("Template" if "template" in c and "expression" not in c else "Expression"):
            return
        text = c.pop("expression", None) or c.pop("template", None) or ""
        c.pop("expression", None)
        c.pop("template", None)
        c["template" if value == "Template" else "expression"] = text
        bs.reset_forms()

    st.radio(
        "Kind",
        ["Expression", "Template"],
        index=0 if mode == "Expression" else 1,
        horizontal=True,
        key=key,
        on_change=_on_node,
        args=(node["id"], key, switch),
        disabled=disabled,
    )
    field = "template" if mode == "Template" else "expression"
    _text(
        node,
        "transform_text",
        mode,
        _cfg(field, optional=False),
        area=True,
        value=cfg.get(field),
        height=100,
        disabled=disabled,
        help="Expression: a Jinja2 expression keeping its type (e.g. nodes.a.output | length). Template: text with {{ ... }}.",
    )


def _map_form(node: dict[str, Any], disabled: bool) -> None:
    cfg = node["config"] if isinstance(node.get("config"), dict) else {}
    inner = cfg.get("node") if isinstance(cfg.get("node"), dict) else {}
    _text(
        node,
        "items",
        "Items (expression giving a list)",
        _cfg("items", optional=False),
        value=cfg.get("items"),
        disabled=disabled,
    )
    key = _key(node["id"], "inner_type")

    def set_inner_type(n: dict[str, Any], value: Any) -> None:
        _config(n).setdefault("node", {})["type"] = value

    types = list(MAP_INNER_TYPES)
    st.selectbox(
        "Run for each item",
        types,
        index=types.index(inner.get("type")) if inner.get("type") in types else None,
        key=key,
        on_change=_on_node,
        args=(node["id"], key, set_inner_type),
        disabled=disabled,
        placeholder="node type",
    )
    key = _key(node["id"], "inner_config")

    def apply_inner(value: Any) -> None:
        n = bd.find_node(bs.doc(), node["id"])
        if n is not None:
            _config(n).setdefault("node", {})["config"] = value

    st.text_area(
        "Its config (JSON; templates see item and index)",
        value=json.dumps(inner.get("config") or {}, indent=2, ensure_ascii=False),
        key=key,
        height=120,
        on_change=_json_field,
        args=(key, apply_inner),
        disabled=disabled,
    )
    _show_error(key)
    _number(
        node,
        "concurrency",
        "Concurrency",
        int(cfg.get("concurrency", 8)),
        _cfg("concurrency", optional=False),
        min_value=1,
        max_value=1000,
        step=1,
        disabled=disabled,
    )


def _output_form(node: dict[str, Any], disabled: bool) -> None:
    cfg = node["config"] if isinstance(node.get("config"), dict) else {}
    value = cfg.get("value", "")
    is_json = not isinstance(value, str)
    key = _key(node["id"], "value_kind")

    def switch(n: dict[str, Any], kind: Any) -> None:
        c = _config(n)
        old = c.get("value", "")
        if (kind == "JSON") == (not isinstance(old, str)):
            return
        c["value"] = (
            ({"result": old} if isinstance(old, str) else old)
            if kind == "JSON"
            else (json.dumps(old) if not isinstance(old, str) else old)
        )
        bs.reset_forms()

    st.radio(
        "Value",
        ["Template", "JSON"],
        index=1 if is_json else 0,
        horizontal=True,
        key=key,
        on_change=_on_node,
        args=(node["id"], key, switch),
        disabled=disabled,
        help="Template: one text template. JSON: a value whose strings are templates.",
    )
    key = _key(node["id"], "value")
    if is_json:

        def apply_value(v: Any) -> None:
            n = bd.find_node(bs.doc(), node["id"])
            if n is not None:
                _config(n)["value"] = v

        st.text_area(
            "Value (JSON)",
            value=json.dumps(value, indent=2, ensure_ascii=False),
            key=key,
            height=120,
            on_change=_json_field,
            args=(key, apply_value, None),
            disabled=disabled,
            label_visibility="collapsed",
        )
        _show_error(key)
    else:
        st.text_area(
            "Value (template)",
            value=value,
            key=key,
            height=90,
            on_change=_on_node,
            args=(node["id"], key, _cfg("value", optional=False)),
            disabled=disabled,
            label_visibility="collapsed",
        )
    _text(
        node,
        "out_name",
        "Result name",
        _cfg("name"),
        value=cfg.get("name"),
        disabled=disabled,
        placeholder=node["id"],
        help="The key of this value in the run's result (defaults to the node id).",
    )


def _retry_form(node: dict[str, Any], disabled: bool) -> None:
    retry = node.get("retry") if isinstance(node.get("retry"), dict) else {}

    def set_retry(field: str) -> Apply:
        def apply(n: dict[str, Any], value: Any) -> None:
            n.setdefault("retry", {})[field] = value

        return apply

    with st.expander(
        "Retry and timeout", expanded=bool(retry) and retry.get("attempts", 1) > 1 or node.get("timeout_s") is not None
    ):
        left, mid, right = st.columns(3)
        with left:
            _number(
                node,
                "attempts",
                "Attempts",
                int(retry.get("attempts", 1)),
                set_retry("attempts"),
                min_value=1,
                max_value=100,
                step=1,
                disabled=disabled,
                help="1 = no retry.",
            )
        with mid:
            _number(
                node,
                "backoff",
                "Backoff (s)",
                float(retry.get("backoff_s", 1.0)),
                set_retry("backoff_s"),
                min_value=0.0,
                max_value=3600.0,
                step=0.5,
                disabled=disabled,
                help="Waits backoff × 2^k between attempts.",
            )
        with right:
            _number(
                node,
                "timeout",
                "Timeout (s)",
                node.get("timeout_s"),
                _top("timeout_s"),
                min_value=0.1,
                step=1.0,
                placeholder="none",
                disabled=disabled,
            )


_FORMS: dict[str, Callable[[dict[str, Any], bool], None]] = {
    "input": _input_form,
    "agent": _agent_form,
    "tool": _tool_form,
    "condition": _condition_form,
    "transform": _transform_form,
    "map": _map_form,
    "output": _output_form,
}


# --- edge inspector ---------------------------------------------------------------------------------


CUSTOM = "custom…"


def edge_form(edge: dict[str, Any], *, disabled: bool) -> None:
    doc = bs.doc()
    src, dst, when = edge["source"], edge["target"], edge.get("when")
    head, close = st.columns([5, 1], vertical_alignment="center")
    head.markdown(f"#### Edge  \n{code(src)} → {code(dst)}")
    close.button("✕", key="builder_close_inspector", help="Close", on_click=bs.act_close_inspector)
    source_node = bd.find_node(doc, src) or {}
    base = bs.fkey("edge", src, dst)
    if source_node.get("type") == "condition":
        choices = [*bd.WHEN_CHOICES, CUSTOM]
        current = when if when in bd.WHEN_CHOICES else (CUSTOM if when is not None else None)
        st.selectbox(
            "Taken when the condition's value is",
            choices,
            index=choices.index(current) if current else None,
            key=base + ".when",
            on_change=_set_when,
            args=(src, dst, when, base + ".when", base + ".custom"),
            disabled=disabled,
            placeholder="choose: true / false / default / a value",
            help="Booleans are written true/false; default is taken when no other edge of the condition matches.",
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
    st.button(
        "Delete edge",
        key="builder_delete_edge",
        icon=":material/delete:",
        on_click=bs.act_delete_edge,
        args=(src, dst, when),
        disabled=disabled,
    )


def _set_when(src: str, dst: str, old: str | None, select_key: str, custom_key: str) -> None:
    if not _present(select_key):
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
    if not _present(key):
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
            value=int(settings.get("max_iterations", 10)),
            min_value=1,
            step=1,
            key=bs.fkey("wf", "max_iterations"),
            on_change=_on_doc,
            args=(bs.fkey("wf", "max_iterations"), _setting("max_iterations")),
            disabled=disabled,
            help="How often any one node may run in one run (loops).",
        )
    with right:
        st.number_input(
            "Run timeout (s)",
            value=settings.get("timeout_s"),
            min_value=1.0,
            step=10.0,
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
            c1, c2, c3 = st.columns([3, 2, 1], vertical_alignment="bottom")
            c1.text_input(
                "Name",
                value=name,
                key=base + "name",
                on_change=_rename_input,
                args=(name, base + "name"),
                disabled=disabled,
            )
            kind = spec.get("type", "string")
            c2.selectbox(
                "Type",
                bd.INPUT_TYPES,
                index=bd.INPUT_TYPES.index(kind) if kind in bd.INPUT_TYPES else 0,
                key=base + "type",
                on_change=_on_input,
                args=(name, base, "type"),
                disabled=disabled,
            )
            c3.button(
                "",
                icon=":material/delete:",
                key=base + "delete",
                help=f"Remove the input {name}",
                on_click=_delete_input,
                args=(name,),
                disabled=disabled,
            )
            _show_error(base + "name")
            st.text_input(
                "Description",
                value=str(spec.get("description") or ""),
                key=base + "description",
                on_change=_on_input,
                args=(name, base, "description"),
                disabled=disabled,
            )
            d1, d2 = st.columns([1, 3], vertical_alignment="bottom")
            required = "default" not in spec
            d1.checkbox(
                "Required",
                value=required,
                key=base + "required",
                on_change=_on_input,
                args=(name, base, "required"),
                disabled=disabled,
                help="An input without a default must be given at run time.",
            )
            d2.text_input(
                "Default" + ("" if kind == "string" else " (JSON)"),
                value=bd.default_text(spec),
                key=base + "default",
                on_change=_on_input,
                args=(name, base, "default"),
                disabled=disabled or required,
                placeholder="none (required)" if required else "null",
            )
            _show_error(base + "default")
    st.button("Add input", icon=":material/add:", key="builder_add_input", on_click=_add_input, disabled=disabled)


def _rename_input(old: str, key: str) -> None:
    if not _present(key):
        return
    new = str(st.session_state.get(key) or "").strip()
    try:
        rewritten = bd.rename_input(bs.doc(), old, new)
    except ValueError as exc:
        st.session_state[key + "__error"] = f"Not renamed: {exc}."
        return
    bs.reset_forms()
    if rewritten:
        bs.flash(
            "success",
            f"Renamed input “{md_escape(old)}” to “{md_escape(new)}” and {rewritten} template reference{'s' if rewritten != 1 else ''}.",
        )


def _on_input(name: str, base: str, field: str) -> None:
    key = base + field
    spec = (bs.doc().get("inputs") or {}).get(name)
    if not isinstance(spec, dict) or not _present(key):
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
    rows = bs.store().workflow_versions(wid)
    if not rows:
        st.caption("No saved versions.")
        return
    latest = rows[-1].version
    for row in reversed(rows):
        when = dt.datetime.fromtimestamp(row.created_at).strftime("%Y-%m-%d %H:%M")
        nodes = len((row.document or {}).get("nodes", []))
        tag = " · latest" if row.version == latest else ""
        tag += " · viewing" if viewing == row.version else ""
        c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="center")
        c1.markdown(f"**v{row.version}**{tag}  \n:gray[{when} · {nodes} nodes]")
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


# --- run ---------------------------------------------------------------------------------------------------


def _run_key(name: str, spec: dict[str, Any]) -> str:
    sig = hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"builder_run_{name}_{sig}"  # a changed schema gets a fresh field with its new default


def run_form(*, blocked: bool) -> None:
    """A form generated from the workflow's ``inputs``; starting a run opens the Run page."""
    doc = bs.doc()
    inputs = (
        {k: v for k, v in (doc.get("inputs") or {}).items() if isinstance(v, dict)}
        if isinstance(doc.get("inputs"), dict)
        else {}
    )
    with st.form("builder_run_form", border=False):
        for name, spec in inputs.items():
            _run_field(name, spec)
        if blocked:
            st.caption(":red[The workflow has problems (listed under the canvas); fix them to run it.]")
        if inputs:
            st.caption("\\* required")
        else:
            st.caption("This workflow takes no inputs.")
        st.form_submit_button(
            "Start run",
            type="primary",
            icon=":material/play_arrow:",
            disabled=blocked,
            help="Fix the problems listed under the canvas first." if blocked else None,
            # a callback, not `if submitted:` in the page: a canvas report arriving while the page runs
            # interrupts the body and the submit would be lost; callbacks run before any interruption
            on_click=_submit_run,
            args=(inputs,),
        )
    errors = st.session_state.pop(RUN_ERRORS, None)
    if errors:
        st.error("Not started:\n" + "\n".join(f"- **{md_escape(p.where)}** {md_escape(p.message)}" for p in errors))


def _submit_run(inputs: dict[str, dict[str, Any]]) -> None:
    errors = _start_run(bs.doc(), inputs)
    if errors:
        st.session_state[RUN_ERRORS] = errors


def _run_field(name: str, spec: dict[str, Any]) -> None:
    kind = spec.get("type", "string")
    required = "default" not in spec
    default = spec.get("default")
    label = md_escape(name) + (" \\*" if required else "")
    helptext = str(spec.get("description") or "") or None
    key = _run_key(name, spec)
    if kind == "string":
        st.text_area(label, value=default if isinstance(default, str) else "", key=key, height=80, help=helptext)
    elif kind in ("number", "integer"):
        ok = isinstance(default, (int, float)) and not isinstance(default, bool)
        if kind == "integer":
            st.number_input(
                label, value=int(default) if ok else None, step=1, key=key, help=helptext, placeholder="a whole number"
            )
        else:
            st.number_input(
                label, value=float(default) if ok else None, key=key, help=helptext, placeholder="a number", format="%g"
            )
    elif kind == "boolean":
        st.checkbox(label, value=bool(default), key=key, help=helptext)
    else:
        text = json.dumps(default, indent=2, ensure_ascii=False) if default is not None else ""
        st.text_area(f"{label} ({kind}, JSON)", value=text, key=key, height=100, help=helptext)


def collect_inputs(inputs: dict[str, dict[str, Any]], raw: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """The run's inputs from the form's raw values; fields left empty are left out (defaults apply)."""
    values: dict[str, Any] = {}
    errors: list[Problem] = []
    for name, spec in inputs.items():
        kind = spec.get("type", "string")
        value = raw.get(name)
        if kind == "string":
            if value in (None, "") and ("default" not in spec or spec.get("default") is None):
                continue
            values[name] = str(value or "")
        elif kind in ("number", "integer"):
            if value is None:
                continue
            values[name] = int(value) if kind == "integer" else value
        elif kind == "boolean":
            values[name] = bool(value)
        else:
            text = str(value or "").strip()
            if not text:
                continue
            try:
                values[name] = bd.parse_value(kind, text)
            except ValueError as exc:
                errors.append(Problem(f"input '{name}'", str(exc)))
    return values, errors


def _start_run(doc: dict[str, Any], inputs: dict[str, dict[str, Any]]) -> list[Problem]:
    raw = {name: st.session_state.get(_run_key(name, spec)) for name, spec in inputs.items()}
    values, errors = collect_inputs(inputs, raw)
    if errors:
        return errors
    try:
        run_id = get_runtime().submit(doc, values)
    except (InputsInvalid, WorkflowInvalid) as exc:
        return exc.problems
    # Runtime.submit saved the workflow (by name): the builder now shows that saved version.
    row = bs.store().find_workflow(str(doc.get("name")))
    if row is not None and bs.readonly() is None:
        normal = bd.normalized(doc)
        st.session_state[BUILDER_DOC] = normal
        st.session_state[BUILDER_SOURCE] = f"saved:{row.id}"
        st.session_state[bs.BASELINE] = copy.deepcopy(normal)
    watch_run_next(run_id)
    return []
