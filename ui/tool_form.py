"""The Tools page's "Try it" form, generated from a tool's JSON schema.

One widget per argument, chosen by its schema: text for strings (a code
field for ``code``: the Ace editor, ui/code_field.py), whole or decimal numbers with the schema's bounds, a
checkbox for booleans, a choice for ``enum``, JSON text for arrays, objects
and anything else. ``collect`` turns the submitted widgets back into
arguments, leaving out optional ones left empty, and says what is wrong in a
line per argument instead of calling the tool with bad input. What was sent
last is remembered per tool for the session (``remember``), so switching
tools and back keeps it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import streamlit as st

from ui.code_field import code_field
from ui.text import md_escape

REMEMBERED = "tools_remembered"  # {tool name: {argument: value}} of the last call of each tool
CODE_NAMES = frozenset({"code", "source", "script"})  # string arguments shown as code
LONG_NAMES = frozenset({"text", "content", "body", "prompt", "message", "document"})  # several lines
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Arg:
    name: str
    schema: dict[str, Any]
    required: bool

    @property
    def kind(self) -> str:
        if isinstance(self.schema.get("enum"), list) and self.schema["enum"]:
            return "enum"
        kind = self.schema.get("type")
        if self.name in CODE_NAMES and kind == "string":
            return "code"
        return kind if kind in ("string", "integer", "number", "boolean") else "json"


def args_of(schema: dict[str, Any]) -> list[Arg]:
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = set(schema.get("required") or [])
    return [Arg(str(name), spec if isinstance(spec, dict) else {}, name in required) for name, spec in props.items()]


def key(tool: str, name: str) -> str:
    return f"tools_arg__{tool}__{name}"


def remembered(tool: str) -> dict[str, Any]:
    return dict((st.session_state.get(REMEMBERED) or {}).get(tool) or {})


def remember(tool: str, args: dict[str, Any]) -> None:
    st.session_state.setdefault(REMEMBERED, {})[tool] = dict(args)


def render(tool: str, schema: dict[str, Any]) -> None:
    """The widgets (call inside an ``st.form``), showing the arguments last sent, else the defaults."""
    last = remembered(tool)
    for arg in args_of(schema):
        spec = arg.schema
        value = last.get(arg.name, spec.get("default", _MISSING))
        label = md_escape(arg.name) + (" \\*" if arg.required else "")
        helptext = md_escape(str(spec.get("description") or "")) or None
        k = key(tool, arg.name)
        kind = arg.kind
        if kind == "enum":
            options = list(spec["enum"])
            st.selectbox(label, options, index=options.index(value) if value in options else None, key=k, help=helptext,
                         format_func=lambda v: json.dumps(v) if not isinstance(v, str) else v)
        elif kind == "code":  # the Ace editor: highlighting, a fixed-width font, Tab indents (ui/code_field.py)
            code_field(label, value=value if isinstance(value, str) else "", key=k, help=helptext,
                       language="python" if tool == "python" else "plain_text")
        elif kind == "string":
            text = value if isinstance(value, str) else ""
            long = arg.name in LONG_NAMES or int(spec.get("maxLength") or 0) > 1_000
            widget = st.text_area if long else st.text_input
            widget(label, value=text, key=k, help=helptext, **({"height": 90} if long else {}))
        elif kind in ("integer", "number"):
            whole = kind == "integer"
            number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
            bounds = {
                b: (int(spec[s]) if whole else float(spec[s]))
                for b, s in (("min_value", "minimum"), ("max_value", "maximum"))
                if isinstance(spec.get(s), (int, float))
            }
            st.number_input(
                label,
                value=(int(number) if whole else float(number)) if number is not None else None,
                step=1 if whole else None,
                key=k,
                help=helptext,
                placeholder="empty: not sent" if not arg.required else None,
                **bounds,
            )
        elif kind == "boolean":
            st.checkbox(label, value=bool(value) if value is not _MISSING else False, key=k, help=helptext)
        else:
            text = json.dumps(value, indent=2, ensure_ascii=False) if value is not _MISSING else ""
            st.text_area(label + " (JSON)", value=text, key=k, height=100, help=helptext, placeholder="null")


def collect(tool: str, schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The arguments from the submitted widgets, and a line per argument that is wrong or missing."""
    args: dict[str, Any] = {}
    errors: list[str] = []
    for arg in args_of(schema):
        raw = st.session_state.get(key(tool, arg.name))
        kind = arg.kind
        if kind == "json":
            text = str(raw or "").strip()
            if not text:
                value: Any = _MISSING
            else:
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as exc:
                    errors.append(f"{arg.name}: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})")
                    continue
        elif kind in ("string", "code"):
            value = str(raw) if raw else ("" if arg.required else _MISSING)
        elif kind == "boolean":
            value = bool(raw)
        else:
            value = raw if raw is not None else _MISSING
        if value is _MISSING:
            if arg.required:
                errors.append(f"{arg.name}: required")
            continue
        if kind == "integer" and isinstance(value, float) and value.is_integer():
            value = int(value)
        args[arg.name] = value
    return args, errors
