"""The Builder's node inspector: a form fitted to the selected node's type.

Each widget is bound to one field of the node (``_widget``): its
``on_change`` finds the node in the document by id and applies the new
value, so the canvas redraw and the validation of the same run see it.
Widget keys are ``builder_form.<epoch>.<node>.<field>`` (``builder_state.fkey``);
``builder_state.reset_forms`` starts a new epoch whenever a callback changes
what another widget shows. Nothing typed here is rendered as HTML; labels
and ids shown in Markdown are escaped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import streamlit as st

from engine.model import MAP_INNER_TYPES, AgentConfig, MapConfig, MemoryConfig, Node, RetryPolicy
from ui import builder_doc as bd
from ui import builder_state as bs
from ui import node_test, tool_form
from ui.builder_forms import delete_popover
from ui.code_field import code_field
from ui.form_fields import NumberField, code, json_field, number_field, present, references, renamed, show_error
from ui.icons import material
from ui.runtime import get_runtime
from ui.text import md_escape

Apply = Callable[[dict[str, Any], Any], None]  # (node, new value) -> changes the node in place

# numeric fields: defaults and bounds come from the engine's model, so the forms cannot drift from it
_AGENT = {name: number_field(AgentConfig, name) for name in ("temperature", "max_steps", "max_tokens")}
_MEMORY_RECALL = number_field(MemoryConfig, "recall")
_MAP_CONCURRENCY = number_field(MapConfig, "concurrency")
_RETRY = {name: number_field(RetryPolicy, name) for name in ("attempts", "backoff_s")}
_NODE_TIMEOUT = number_field(Node, "timeout_s")


# --- binding widgets to node fields ----------------------------------------------------------------


def _key(node_id: str, field: str) -> str:
    return bs.fkey(node_id, field)


def _on_node(node_id: str, key: str, apply: Apply) -> None:
    if not present(key):
        return
    node = bd.find_node(bs.doc(), node_id)
    if node is not None:
        apply(node, st.session_state.get(key))


def _widget(widget: Callable[..., Any], node: dict[str, Any], field: str, label: str, apply: Apply, **kw: Any) -> None:
    """``widget`` (st.text_input, st.number_input, ...) bound to ``field`` of ``node``."""
    key = _key(node["id"], field)
    widget(label, key=key, on_change=_on_node, args=(node["id"], key, apply), **kw)


def _text(
    node: dict[str, Any], field: str, label: str, apply: Apply, value: Any, *, area: bool = False, **kw: Any
) -> None:
    widget = st.text_area if area else st.text_input
    _widget(widget, node, field, label, apply, value="" if value is None else str(value), **kw)


def _number(
    node: dict[str, Any], field: str, label: str, apply: Apply, value: Any, spec: NumberField, **kw: Any
) -> None:
    """A number input with the engine model's default and bounds (``spec``); a value in the document that is
    not a number in range shows as an empty field (the validation under the canvas says what is wrong)."""
    _widget(st.number_input, node, field, label, apply, **{**spec.widget_args(value), **kw})


def _json_area(
    node: dict[str, Any], field: str, label: str, value: Any, apply: Apply, *, want: type | None = dict, **kw: Any
) -> None:
    """A JSON text area: valid JSON is applied, anything else leaves the value as it was and says why."""
    node_id = node["id"]
    key = _key(node_id, field)

    def apply_found(parsed: Any) -> None:
        found = bd.find_node(bs.doc(), node_id)
        if found is not None:
            apply(found, parsed)

    value_text = json.dumps(value, indent=2, ensure_ascii=False)
    st.text_area(label, value=value_text, key=key, on_change=json_field, args=(key, apply_found, want), **kw)
    show_error(key)


def _config(node: dict[str, Any]) -> dict[str, Any]:
    """The node's config, made a dict if an imported document had something else there."""
    if not isinstance(node.get("config"), dict):
        node["config"] = {}
    return node["config"]


def _cfg(field: str, *, optional: bool = True) -> Apply:
    """Set ``config.<field>``; an optional field left empty is removed."""

    def apply(node: dict[str, Any], value: Any) -> None:
        cfg = _config(node)
        if optional and (value is None or value == "" or value == []):
            cfg.pop(field, None)
        else:
            cfg[field] = value

    return apply


def _top(field: str) -> Apply:
    """Set a top-level node field (label, timeout_s); left empty, it is removed."""

    def apply(node: dict[str, Any], value: Any) -> None:
        if value is None or value == "":
            node.pop(field, None)
        else:
            node[field] = value

    return apply


def _cfg_in(parent: str, field: str) -> Apply:
    """Set ``config.<parent>.<field>`` (the memory settings, a map's inner node)."""

    def apply(node: dict[str, Any], value: Any) -> None:
        _config(node).setdefault(parent, {})[field] = value

    return apply


def _retry(field: str) -> Apply:
    def apply(node: dict[str, Any], value: Any) -> None:
        retry = node.get("retry") if isinstance(node.get("retry"), dict) else {}
        node["retry"] = {**retry, field: value}

    return apply


def _cfg_of(node: dict[str, Any]) -> dict[str, Any]:
    return node["config"] if isinstance(node.get("config"), dict) else {}


# --- the inspector -------------------------------------------------------------------------------------


def node_form(node: dict[str, Any], *, disabled: bool) -> None:
    node_id = node["id"]
    node_type = str(node.get("type"))
    head, remove, close = st.columns([4, 1, 1], vertical_alignment="center")
    head.markdown(
        f"#### {material(node_type)} {md_escape(node.get('label') or node_id)}  \n"
        f":gray-badge[{md_escape(node_type)} node]"
    )
    if node_type != "input":
        with remove:  # before the fields, behind a confirmation: Tab from a field never reaches it
            delete_popover("node", bs.act_delete_node, (node_id,), disabled=disabled)
    close.button(
        "", icon=":material/close:", key="builder_close_inspector", help="Close", on_click=bs.act_close_inspector
    )
    node_test.panel(node_id)  # run only this node with its latest inputs (engine/single_node.py)

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
    show_error(id_key)
    _text(node, "label", "Label", _top("label"), node.get("label"), disabled=disabled, placeholder=node_id)

    render = _FORMS.get(node_type)
    if render is not None:
        render(node, disabled)
    if node_type in bd.PALETTE:
        _retry_form(node, disabled)


def _rename(old: str, key: str) -> None:
    done = renamed(key, lambda new: bd.rename_node(bs.doc(), old, new))
    if done is not None and done[0] != old:
        new, count = done
        bs.reset_forms()
        st.session_state[bs.SELECTED] = {"kind": "node", "id": new}
        extra = f" and {references(count)}" if count else ""
        bs.flash("success", f"Renamed “{md_escape(old)}” to “{md_escape(new)}”: edges{extra} updated.")


# --- one form per node type -------------------------------------------------------------------------------


def _input_form(node: dict[str, Any], disabled: bool) -> None:
    names = ", ".join(md_escape(n) for n in (bs.doc().get("inputs") or {})) or "none yet"
    st.caption(
        f"Passes the run's inputs on (`inputs.<name>` in templates). Declared inputs: {names}. "
        "Edit them under **Inputs**."
    )


def _agent_form(node: dict[str, Any], disabled: bool) -> None:
    cfg = _cfg_of(node)
    prompt_help = "A Jinja2 template: `{{ inputs.<name> }}`, `{{ nodes.<id>.output }}`."
    _text(
        node,
        "prompt",
        "Prompt",
        _cfg("prompt", optional=False),
        cfg.get("prompt"),
        area=True,
        height=150,
        disabled=disabled,
        help=prompt_help,
    )
    _text(node, "system", "System message", _cfg("system"), cfg.get("system"), area=True, height=90, disabled=disabled)
    left, right = st.columns(2)
    with left:
        _text(
            node, "model", "Model", _cfg("model"), cfg.get("model"), disabled=disabled, placeholder="workflow default"
        )
    with right:
        _widget(
            st.number_input,
            node,
            "temperature",
            "Temperature",
            _cfg("temperature"),
            **_AGENT["temperature"].widget_args(cfg.get("temperature")),
            placeholder="model default",
            disabled=disabled,
        )
    registry = [t.name for t in get_runtime().tools.list_tools()]  # the runtime's: MCP servers' tools too
    chosen = [t for t in cfg.get("tools") or [] if isinstance(t, str)]
    _widget(
        st.multiselect,
        node,
        "tools",
        "Tools",
        _cfg("tools"),
        options=registry + [t for t in chosen if t not in registry],
        default=chosen,
        disabled=disabled,
        placeholder="no tools",
        help="Tools the agent may call (from the tool registry).",
    )
    left, middle, right = st.columns(3)
    with left:
        _number(
            node,
            "max_steps",
            "Max tool steps",
            _cfg("max_steps", optional=False),
            cfg.get("max_steps"),
            _AGENT["max_steps"],
            disabled=disabled,
        )
    with middle:
        _number(
            node,
            "max_tokens",
            "Max tokens",
            _cfg("max_tokens"),
            cfg.get("max_tokens"),
            _AGENT["max_tokens"],
            placeholder="no limit",
            help="The most tokens each answer of the model may have (sent as max_tokens).",
            disabled=disabled,
        )
    with right:
        _widget(
            st.radio,
            node,
            "response_format",
            "Response",
            _cfg("response_format"),
            options=["text", "json"],
            index=1 if cfg.get("response_format") == "json" else 0,
            horizontal=True,
            disabled=disabled,
        )
    _memory_form(node, cfg, disabled)


def _toggle_memory(node: dict[str, Any], on: Any) -> None:
    cfg = _config(node)
    if bool(on) == isinstance(cfg.get("memory"), dict):
        return
    if on:
        cfg["memory"] = {"agent_id": node["id"], "short_term": True, "recall": 0, "save": True}
    else:
        cfg.pop("memory", None)


def _memory_form(node: dict[str, Any], cfg: dict[str, Any], disabled: bool) -> None:
    memory = cfg.get("memory") if isinstance(cfg.get("memory"), dict) else None
    _widget(
        st.toggle,
        node,
        "memory_on",
        "Memory",
        _toggle_memory,
        value=memory is not None,
        disabled=disabled,
        help="Conversation memory and long-term recall for this agent.",
    )
    if memory is None:
        return
    with st.container(border=True):
        _text(
            node,
            "mem_agent",
            "Agent id",
            _cfg_in("memory", "agent_id"),
            memory.get("agent_id"),
            disabled=disabled,
            help="Memories are kept per agent id; agents sharing an id share memories.",
        )
        left, mid, right = st.columns(3)
        with left:
            _memory_flag(node, memory, "short_term", "Short-term", "Keep the conversation between runs.", disabled)
        with mid:
            _number(
                node,
                "mem_recall",
                "Recall k",
                _cfg_in("memory", "recall"),
                memory.get("recall"),
                _MEMORY_RECALL,
                disabled=disabled,
            )
        with right:
            _memory_flag(node, memory, "save", "Save", "Save the answer as a long-term memory.", disabled)


def _memory_flag(
    node: dict[str, Any], memory: dict[str, Any], name: str, label: str, help: str, disabled: bool
) -> None:
    """A checkbox for ``memory.<name>``, unset meaning the engine model's default."""
    default = MemoryConfig.model_fields[name].default
    _widget(
        st.checkbox,
        node,
        f"mem_{name}",
        label,
        _cfg_in("memory", name),
        value=bool(memory.get(name, default)),
        disabled=disabled,
        help=help,
    )


def _tool_form(node: dict[str, Any], disabled: bool) -> None:
    cfg = _cfg_of(node)
    specs = {t.name: t for t in get_runtime().tools.list_tools()}
    current = cfg.get("tool") if isinstance(cfg.get("tool"), str) else None
    names = list(specs) + ([current] if current and current not in specs else [])
    _widget(
        st.selectbox,
        node,
        "tool",
        "Tool",
        _cfg("tool", optional=False),
        options=names,
        index=names.index(current) if current in names else None,
        disabled=disabled,
        placeholder="choose a tool",
    )
    spec = specs.get(current or "")
    if spec is not None:
        st.caption(md_escape(spec.description))
        _schema_table(spec.parameters)
        _code_args(node, spec.parameters, disabled)
    elif current:
        st.warning(f"“{md_escape(current)}” is not a registered tool.", icon=":material/warning:")
    _json_area(
        node,
        "args",
        "Arguments (JSON object; strings are templates)",
        cfg.get("args") or {},
        _cfg("args", optional=False),
        height=120,
        disabled=disabled,
    )


def _code_args(node: dict[str, Any], schema: dict[str, Any], disabled: bool) -> None:
    """A code editor for each code argument of the tool (the ``python`` tool's ``code``), applied with its
    Apply button (or Ctrl+Enter); the JSON of the arguments below shows the same value."""
    args = _cfg_of(node).get("args")
    if disabled or (args is not None and not isinstance(args, dict)):
        return
    for arg in tool_form.args_of(schema):
        current = (args or {}).get(arg.name, "")
        if arg.kind != "code" or not isinstance(current, str):
            continue
        digest = hashlib.sha1(current.encode()).hexdigest()[:10]  # a new value (from the JSON below) is a new editor
        text = code_field(
            f"{md_escape(arg.name)} · Apply or Ctrl+Enter keeps an edit",
            value=current,
            key=_key(node["id"], f"code-{arg.name}-{digest}"),
            language="python" if node.get("config", {}).get("tool") == "python" else "plain_text",
            lines=8,
            auto_update=False,
        )
        if text != current:
            found = bd.find_node(bs.doc(), node["id"])
            if found is not None:
                found_args = _config(found).setdefault("args", {})
                if isinstance(found_args, dict):
                    found_args[arg.name] = text
                    bs.reset_forms()
                    st.rerun()


def _schema_table(schema: dict[str, Any]) -> None:
    props = schema.get("properties") or {}
    if not props:
        st.caption("This tool takes no arguments.")
        return
    required = set(schema.get("required") or [])
    lines = []
    for name, prop in props.items():
        prop = prop if isinstance(prop, dict) else {}
        if name in required:
            need = "required"
        elif "default" in prop:
            need = f"optional, default {json.dumps(prop.get('default'))}"
        else:
            need = "optional"
        kind, desc = prop.get("type", "any"), prop.get("description", "")
        lines.append(f"- {code(name)} · {md_escape(kind)} · {md_escape(need)} — {md_escape(desc)}")
    st.markdown("\n".join(lines))


def _condition_form(node: dict[str, Any], disabled: bool) -> None:
    cfg = _cfg_of(node)
    _text(
        node,
        "expression",
        "Expression",
        _cfg("expression", optional=False),
        cfg.get("expression"),
        disabled=disabled,
        help="A Jinja2 expression without braces, e.g. nodes.score.output >= 7. "
        "Its value picks the edge whose when matches.",
    )
    outgoing = [e for e in bs.doc().get("edges", []) if e.get("source") == node["id"]]
    if outgoing:
        st.caption(
            "Branches: "
            + " · ".join(f"{code(e.get('when', '(no when)'))} → {md_escape(e['target'])}" for e in outgoing)
        )
    else:
        st.caption("Drag from this node to add branches, then click each edge to set its `when`.")


def _transform_mode(cfg: dict[str, Any]) -> str:
    return "Template" if "template" in cfg and "expression" not in cfg else "Expression"


def _switch_transform(node: dict[str, Any], mode: Any) -> None:
    cfg = _config(node)
    if mode == _transform_mode(cfg):
        return
    text = cfg.pop("expression", None) or cfg.pop("template", None) or ""
    cfg.pop("expression", None)
    cfg.pop("template", None)
    cfg["template" if mode == "Template" else "expression"] = text
    bs.reset_forms()


def _transform_form(node: dict[str, Any], disabled: bool) -> None:
    cfg = _cfg_of(node)
    mode = _transform_mode(cfg)
    _widget(
        st.radio,
        node,
        "mode",
        "Kind",
        _switch_transform,
        options=["Expression", "Template"],
        index=0 if mode == "Expression" else 1,
        horizontal=True,
        disabled=disabled,
    )
    field = "template" if mode == "Template" else "expression"
    _text(
        node,
        "transform_text",
        mode,
        _cfg(field, optional=False),
        cfg.get(field),
        area=True,
        height=100,
        disabled=disabled,
        help="Expression: a Jinja2 expression keeping its type (e.g. nodes.a.output | length). "
        "Template: text with {{ ... }}.",
    )


def _map_form(node: dict[str, Any], disabled: bool) -> None:
    cfg = _cfg_of(node)
    inner = cfg.get("node") if isinstance(cfg.get("node"), dict) else {}
    _text(
        node,
        "items",
        "Items (expression giving a list)",
        _cfg("items", optional=False),
        cfg.get("items"),
        disabled=disabled,
    )
    types = list(MAP_INNER_TYPES)
    _widget(
        st.selectbox,
        node,
        "inner_type",
        "Run for each item",
        _cfg_in("node", "type"),
        options=types,
        index=types.index(inner.get("type")) if inner.get("type") in types else None,
        disabled=disabled,
        placeholder="node type",
    )
    _json_area(
        node,
        "inner_config",
        "Its config (JSON; templates see item and index)",
        inner.get("config") or {},
        _cfg_in("node", "config"),
        height=120,
        disabled=disabled,
    )
    _number(
        node,
        "concurrency",
        "Concurrency",
        _cfg("concurrency", optional=False),
        cfg.get("concurrency"),
        _MAP_CONCURRENCY,
        disabled=disabled,
    )


def _switch_output(node: dict[str, Any], kind: Any) -> None:
    cfg = _config(node)
    old = cfg.get("value", "")
    if (kind == "JSON") == (not isinstance(old, str)):
        return
    if kind == "JSON":
        cfg["value"] = {"result": old} if isinstance(old, str) else old
    else:
        cfg["value"] = old if isinstance(old, str) else json.dumps(old)
    bs.reset_forms()


def _output_form(node: dict[str, Any], disabled: bool) -> None:
    cfg = _cfg_of(node)
    value = cfg.get("value", "")
    is_json = not isinstance(value, str)
    _widget(
        st.radio,
        node,
        "value_kind",
        "Value",
        _switch_output,
        options=["Template", "JSON"],
        index=1 if is_json else 0,
        horizontal=True,
        disabled=disabled,
        help="Template: one text template. JSON: a value whose strings are templates.",
    )
    if is_json:
        _json_area(
            node,
            "value",
            "Value (JSON)",
            value,
            _cfg("value", optional=False),
            want=None,
            height=120,
            disabled=disabled,
            label_visibility="collapsed",
        )
    else:
        _text(
            node,
            "value",
            "Value (template)",
            _cfg("value", optional=False),
            value,
            area=True,
            height=90,
            disabled=disabled,
            label_visibility="collapsed",
        )
    _text(
        node,
        "out_name",
        "Result name",
        _cfg("name"),
        cfg.get("name"),
        disabled=disabled,
        placeholder=node["id"],
        help="The key of this value in the run's result (defaults to the node id).",
    )


def _retry_form(node: dict[str, Any], disabled: bool) -> None:
    retry = node.get("retry") if isinstance(node.get("retry"), dict) else {}
    expanded = bool(retry) or node.get("timeout_s") is not None
    with st.expander("Retry and timeout", expanded=expanded):
        left, mid, right = st.columns(3)
        with left:
            _number(
                node,
                "attempts",
                "Attempts",
                _retry("attempts"),
                retry.get("attempts"),
                _RETRY["attempts"],
                disabled=disabled,
                help="1 = no retry.",
            )
        with mid:
            _number(
                node,
                "backoff",
                "Backoff (s)",
                _retry("backoff_s"),
                retry.get("backoff_s"),
                _RETRY["backoff_s"],
                step=0.5,
                disabled=disabled,
                help="Waits backoff × 2^k between attempts.",
            )
        with right:
            _number(
                node,
                "timeout",
                "Timeout (s)",
                _top("timeout_s"),
                node.get("timeout_s"),
                _NODE_TIMEOUT,
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
