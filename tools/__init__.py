"""Tools a model can call: a registry of plain Python functions plus the built-ins.

Why this package exists: it is the engine's standalone tool-calling library.
Decorate a function with :func:`tool` to make it callable by a model; call
any registered tool with :func:`call_tool`, which validates arguments, runs
the tool with a timeout and always answers with a :class:`ToolResult`.
Importing the package registers the built-in tools; plugin tools load on
first use (see :func:`load_plugins`).

This package never imports ``engine`` or ``streamlit``.
"""

from __future__ import annotations

import tools.builtin  # noqa: F401  (registers the built-in tools; they import `tool` from tools.registry)
from tools.errors import ToolError, UnknownTool
from tools.registry import (
    DEFAULT_MAX_RESULT_CHARS,
    DEFAULT_TIMEOUT_S,
    ENTRY_POINT_GROUP,
    MODULES_ENV_VAR,
    ToolRegistry,
    ToolResult,
    ToolSpec,
    call_tool,
    default_registry,
    get_tool,
    has_tool,
    list_tools,
    load_plugins,
    tool,
)

__all__ = [
    "DEFAULT_MAX_RESULT_CHARS",
    "DEFAULT_TIMEOUT_S",
    "ENTRY_POINT_GROUP",
    "MODULES_ENV_VAR",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "ToolSpec",
    "UnknownTool",
    "call_tool",
    "default_registry",
    "get_tool",
    "has_tool",
    "list_tools",
    "load_plugins",
    "tool",
]
