"""Turn plain Python functions into tools a model can call, and call them safely.

Why this module exists: a language model calls tools by name with a JSON object
of arguments. Something has to (1) describe each tool to the model as a JSON
schema, (2) check the model's arguments against that schema, (3) run the tool
without blocking the event loop or hanging forever, and (4) turn whatever
happens -- a value, a bad argument, a crash, a timeout -- into a result the
model can read and act on. This module does exactly that, and nothing else.

A tool is an ordinary function registered with :func:`tool`. Its argument
schema is derived from its type hints through pydantic, its description from
its docstring. Built-in tools (``tools.builtin``) and plugin tools (entry
points in group ``workflow_studio.tools`` or modules named in the environment
variable ``TOOLS_MODULES``) register the same way a user's own tools do.

This package is a standalone library: it must never import ``engine`` or
``streamlit``.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import inspect
import itertools
import json
import logging
import re
import threading
import time
import traceback
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from tools import config as tool_settings
from tools.deadlines import with_deadline
from tools.errors import DeadlinePassed, ToolError, UnknownTool
from tools.plain import to_plain

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

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S: float = 30.0
"""Timeout of a call when neither the call nor the tool sets one."""

DEFAULT_MAX_RESULT_CHARS: int = 20_000
"""Longest result text handed back before it is truncated."""

ENTRY_POINT_GROUP = "workflow_studio.tools"
"""importlib.metadata entry-point group scanned for plugin tools."""

MODULES_ENV_VAR = "TOOLS_MODULES"
"""Environment variable: comma-separated importable modules that register tools."""

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")  # OpenAI's function-name rule (used with fullmatch)

F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class ToolSpec:
    """A registered tool.

    Attributes:
        name: the name a model calls it by.
        description: what the tool does, for the model.
        parameters: JSON schema of the arguments: an object schema with
            ``properties``, ``required`` and ``"additionalProperties": false``.
            Treat it as read-only.
        timeout_s: the tool's own timeout, or ``None`` for the default.
        func: the original Python function.
        args_model: the pydantic model the arguments are validated with
            (properties are aliases of its fields).
    """

    name: str
    description: str
    parameters: dict[str, Any]
    timeout_s: float | None
    func: Callable[..., Any]
    args_model: type[BaseModel] = field(repr=False, compare=False)
    is_async: bool = field(default=False, repr=False, compare=False)
    raw_args: bool = field(default=False, repr=False, compare=False)  # func takes the arguments as one dict
    _param_names: tuple[tuple[str, str, bool], ...] = field(default=(), repr=False, compare=False)

    def openai_schema(self) -> dict[str, Any]:
        """The tool in OpenAI's chat-completions ``tools`` format."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass(frozen=True)
class ToolResult:
    """What a tool call produced.

    Attributes:
        ok: whether the tool ran and returned a value.
        value: the JSON-serialisable value (``None`` when not ok). When the
            result was too long it is the truncated text plus a marker.
        error: why the call failed, in words a model or user can act on.
        detail: more about the failure for people (from :class:`ToolError`'s
            ``detail``), or ``None``; a model is never shown it.
        duration_ms: wall time of the call.
        truncated: whether ``value`` was cut to ``max_result_chars``.
        retryable: for a failure, whether calling again may succeed (a timeout, a
            tool's own retryable error); False for an unknown tool, invalid
            arguments, a result that is not JSON or a non-retryable ``ToolError``.
    """

    ok: bool
    value: Any = None
    error: str | None = None
    duration_ms: float = 0.0
    truncated: bool = False
    detail: str | None = None
    retryable: bool = False

    def as_text(self) -> str:
        """What a model should see: the value as text, or ``"Error: ..."``."""
        if not self.ok:
            return f"Error: {self.error}"
        return _value_text(self.value)


# ------------------------------------------------------------------- signatures


def _first_paragraph(doc: str) -> str:
    """The docstring's first paragraph as one line ("" if it starts with a section)."""
    para: list[str] = []
    for line in doc.strip().splitlines():
        if not line.strip():
            break
        para.append(line.strip())
    text = " ".join(para)
    return "" if _SECTION_RE.fullmatch(text) else text


_SECTION_RE = re.compile(
    r"(Args|Arguments|Parameters|Params|Returns?|Yields?|Raises|Examples?|Notes?|Attributes|See Also|Warnings?):"
)
_ARGS_HEADER_RE = re.compile(r"(Args|Arguments|Parameters|Params):")
_ARG_LINE_RE = re.compile(r"\*{0,2}(?P<name>\w+)\s*(\([^)]*\))?\s*:\s*(?P<desc>.*)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _docstring_arg_descriptions(doc: str) -> dict[str, str]:
    """Per-parameter descriptions from a Google-style ``Args:`` section."""
    lines = doc.splitlines()
    out: dict[str, str] = {}
    i = 0
    while i < len(lines) and not _ARGS_HEADER_RE.fullmatch(lines[i].strip()):
        i += 1
    if i == len(lines):
        return out
    header_indent = _indent(lines[i])
    entry_indent: int | None = None
    current: str | None = None
    for line in lines[i + 1 :]:
        if not line.strip():
            continue
        ind = _indent(line)
        if ind <= header_indent:
            break  # next section (or end of the Args block)
        if entry_indent is None:
            entry_indent = ind
        match = _ARG_LINE_RE.fullmatch(line.strip())
        if ind <= entry_indent and match:
            current = match["name"]
            out[current] = match["desc"].strip()
        elif current is not None:
            out[current] = f"{out[current]} {line.strip()}".strip()
    return {k: v for k, v in out.items() if v}


def _build_args_model(
    func: Callable[..., Any], tool_name: str
) -> tuple[type[BaseModel], dict[str, Any], tuple[tuple[str, str, bool], ...]]:
    """Pydantic model + JSON schema + (param, field, positional-only) triples for ``func``."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"tool {tool_name!r}: cannot read the signature of {func!r}: {exc}") from exc
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:  # NameError for forward references that do not resolve, etc.
        raise TypeError(f"tool {tool_name!r}: cannot resolve the type hints of {func.__qualname__}: {exc}") from exc

    fields: dict[str, Any] = {}
    params: list[tuple[str, str, bool]] = []
    for index, (pname, param) in enumerate(sig.parameters.items()):
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            star = "*" if param.kind is inspect.Parameter.VAR_POSITIONAL else "**"
            raise TypeError(
                f"tool {tool_name!r}: {star}{pname} is not supported; a tool needs a fixed, named set of parameters"
            )
        if pname not in hints:
            raise TypeError(
                f"tool {tool_name!r}: parameter {pname!r} has no type annotation; "
                "annotate every parameter so its JSON schema can be derived"
            )
        # Fields get neutral internal names with the parameter name as alias, so parameters
        # called e.g. "json", "schema", "model_x" or "_private" cannot clash with BaseModel.
        internal = f"p{index}"
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[internal] = (hints[pname], Field(default, alias=pname))
        params.append((pname, internal, param.kind is inspect.Parameter.POSITIONAL_ONLY))

    model_name = re.sub(r"\W", "_", f"{tool_name}_args")
    try:
        model = create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)
        schema = model.model_json_schema()
    except Exception as exc:
        raise TypeError(f"tool {tool_name!r}: cannot build a JSON schema from its type hints: {exc}") from exc

    schema.pop("title", None)
    schema["type"] = "object"
    schema.setdefault("properties", {})
    schema.setdefault("required", [])
    schema["additionalProperties"] = False
    doc_args = _docstring_arg_descriptions(inspect.getdoc(func) or "")
    for pname, prop in schema["properties"].items():
        prop.pop("title", None)
        if pname in doc_args and "description" not in prop:
            prop["description"] = doc_args[pname]
    return model, schema, tuple(params)


def _is_async_callable(func: Callable[..., Any]) -> bool:
    # B004 is about testing callability; this reads an object's __call__ to see whether calling it is async
    call = getattr(func, "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(call)


# ------------------------------------------------------------------------ results


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool):
        return "null" if value is None else ("true" if value else "false")
    if isinstance(value, (int, float)):
        return repr(value)  # only its length matters: scalars are never cut
    return json.dumps(value, ensure_ascii=False)


def _truncation_marker(total: int, shown: int) -> str:
    return f"… [truncated: result was {total} characters, showing the first {shown}]"


def _format_validation_error(tool_name: str, exc: ValidationError) -> str:
    problems: list[str] = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(part) for part in err["loc"]) or "(arguments)"
        msg = err["msg"]
        if err["type"] not in ("missing", "extra_forbidden"):
            shown = repr(err.get("input"))
            msg = f"{msg} (got {shown[:80] + '…' if len(shown) > 80 else shown})"
        elif err["type"] == "extra_forbidden":
            msg = "unexpected argument (not a parameter of this tool)"
        problems.append(f"{where}: {msg}")
    count = len(problems)
    return f"Invalid arguments for tool {tool_name!r} ({count} problem{'s' if count != 1 else ''}): " + "; ".join(
        problems
    )


def _describe_exception(exc: BaseException) -> str:
    if isinstance(exc, ToolError):
        return str(exc) or type(exc).__name__
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _describe_load_error(exc: BaseException) -> str:
    """An import failure in one line: the exception, and where in the plugin's own code it was raised."""
    text = " ".join(_describe_exception(exc).split())  # one line, whatever the message held
    if isinstance(exc, (ModuleNotFoundError, SyntaxError)):  # the message names the module, or file and line
        return text
    frames = list(traceback.walk_tb(exc.__traceback__))
    if not frames or frames[-1][0].f_code.co_filename.startswith("<"):  # <frozen importlib...>: nothing to point at
        return text
    frame, lineno = frames[-1]
    return f"{text} (at {frame.f_code.co_filename}:{lineno})"


class ToolSource(typing.Protocol):
    """Tools registered from outside Python functions (MCP servers, :mod:`tools.mcp`)."""

    def ensure_loaded(self) -> None:
        """Register this source's tools into its registry if not done yet (never raises)."""

    def explain(self, name: str) -> str | None:
        """Why ``name`` is missing when this source owns it (a server down, no such tool on it), else None."""


def _iter_entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


# One counter for every registry: a generation names one registry's set of tools at one moment,
# so a validated workflow cached under it (engine.validate) is never reused after a tool changes.
_GENERATIONS = itertools.count(1)


class ToolRegistry:
    """A set of named tools: register them, describe them, call them."""

    def __init__(self, *, autoload_plugins: bool = False) -> None:
        """Create an empty registry.

        Args:
            autoload_plugins: load plugins (see :meth:`load_plugins`) on the
                first lookup or call. Only the default registry does this.
        """
        self._tools: dict[str, ToolSpec] = {}
        self._lock = threading.RLock()  # guards _tools
        self._plugins_lock = threading.Lock()  # serialises the one lazy plugin load
        self._autoload_plugins = autoload_plugins
        self._plugins_loaded = False
        self._plugin_errors_logged: set[str] = set()  # each plugin failure is logged once
        self._generation = next(_GENERATIONS)
        self._sources: list[ToolSource] = []  # tools from elsewhere (MCP servers), asked on lookups

    def add_source(self, source: ToolSource) -> None:
        """Let ``source`` register its tools lazily (on the next lookup) and explain names it owns."""
        with self._lock:
            self._sources.append(source)

    def add_spec(self, spec: ToolSpec, *, replace: bool = True) -> None:
        """Register a ready-made spec (a tool source's tools, whose schema is not derived from a function)."""
        if not _NAME_RE.fullmatch(spec.name):
            raise TypeError(f"invalid tool name {spec.name!r}")
        with self._lock:
            if spec.name in self._tools and not replace:
                raise TypeError(f"a tool named {spec.name!r} is already registered")
            self._tools[spec.name] = spec
            self._generation = next(_GENERATIONS)

    def unknown_message(self, name: str) -> str:
        """Why ``name`` is not a tool here, in one line: a source's reason (a server that is down), else the list."""
        self._ensure_plugins()
        for source in list(self._sources):
            reason = source.explain(name)
            if reason:
                return reason
        return f"unknown tool '{name}'; available: {', '.join(sorted(self._tools))}"

    # -- registration

    def register(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout_s: float | None = None,
        replace: bool = False,
    ) -> ToolSpec:
        """Register ``func`` as a tool and return its spec.

        Raises:
            TypeError: bad name, duplicate name (without ``replace``), *args or
                **kwargs, an unannotated parameter, or type hints pydantic cannot
                turn into a schema.
        """
        tool_name = name if name is not None else getattr(func, "__name__", None)
        if not isinstance(tool_name, str) or not _NAME_RE.fullmatch(tool_name):
            raise TypeError(
                f"invalid tool name {tool_name!r}: use 1-64 letters, digits, '_' or '-', "
                "not starting with a digit or '-'"
            )
        if not callable(func):
            raise TypeError(f"tool {tool_name!r}: {func!r} is not callable")
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError(f"tool {tool_name!r}: generator functions are not supported; return a value instead")
        if timeout_s is not None and not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
            raise TypeError(f"tool {tool_name!r}: timeout_s must be a positive number of seconds, got {timeout_s!r}")
        model, schema, params = _build_args_model(func, tool_name)
        doc = inspect.getdoc(func) or ""
        spec = ToolSpec(
            name=tool_name,
            description=description if description is not None else _first_paragraph(doc),
            parameters=schema,
            timeout_s=float(timeout_s) if timeout_s is not None else None,
            func=func,
            args_model=model,
            is_async=_is_async_callable(func),
            _param_names=params,
        )
        with self._lock:
            existing = self._tools.get(tool_name)
            if existing is not None and not replace and existing.func is not func:
                where = getattr(existing.func, "__module__", "?")
                raise TypeError(
                    f"a tool named {tool_name!r} is already registered (from {where}); "
                    "pick another name or pass replace=True"
                )
            self._tools[tool_name] = spec
            self._generation = next(_GENERATIONS)
        return spec

    @overload
    def tool(self, func: F, /) -> F: ...

    @overload
    def tool(
        self,
        func: None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout_s: float | None = None,
        replace: bool = False,
    ) -> Callable[[F], F]: ...

    def tool(
        self,
        func: F | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout_s: float | None = None,
        replace: bool = False,
    ) -> F | Callable[[F], F]:
        """Decorator registering a function here; usable bare or with options. Returns the function."""

        def decorate(f: F) -> F:
            self.register(f, name=name, description=description, timeout_s=timeout_s, replace=replace)
            return f

        return decorate(func) if func is not None else decorate

    def copy(self) -> ToolRegistry:
        """A new registry holding this one's tools (plugins loaded first); what either registers later stays its own.

        The way to run with the usual tools plus a few of one's own, without touching the default registry::

            registry = tools.default_registry().copy()
            registry.register(my_tool)
            Runtime(tools=registry)
        """
        self._ensure_plugins()
        fresh = ToolRegistry()
        with self._lock:
            fresh._tools = {name: spec for name, spec in self._tools.items() if not spec.raw_args}
        fresh._generation = next(_GENERATIONS)
        return fresh

    @property
    def generation(self) -> int:
        """Changes whenever a tool is registered or removed; unique across registries."""
        return self._generation

    def unregister(self, name: str) -> None:
        """Remove a tool (no error if absent)."""
        with self._lock:
            self._tools.pop(name, None)
            self._generation = next(_GENERATIONS)

    # -- lookup

    def _ensure_plugins(self) -> None:
        for source in self._sources:
            source.ensure_loaded()
        if self._autoload_plugins and not self._plugins_loaded:
            with self._plugins_lock:
                if not self._plugins_loaded:
                    self._plugins_loaded = True  # set first: a plugin may look tools up while importing
                    self.load_plugins()

    def list_tools(self) -> list[ToolSpec]:
        """Every registered tool, sorted by name."""
        self._ensure_plugins()
        with self._lock:
            return [self._tools[n] for n in sorted(self._tools)]

    def get_tool(self, name: str) -> ToolSpec:
        """The tool called ``name``; raises :class:`UnknownTool` listing the available names."""
        self._ensure_plugins()
        spec = self._tools.get(name)  # a dict read is atomic; writers hold the lock
        if spec is None:
            with self._lock:
                raise UnknownTool(name, self._tools)
        return spec

    def has_tool(self, name: str) -> bool:
        """Whether a tool called ``name`` is registered."""
        self._ensure_plugins()
        with self._lock:
            return name in self._tools

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.has_tool(name)

    def __len__(self) -> int:
        return len(self.list_tools())

    # -- plugins

    def load_plugins(self, modules: Sequence[str] | None = None) -> list[str]:
        """Import plugin modules so that their ``@tool`` functions register.

        Sources: entry points in group ``workflow_studio.tools`` and ``modules``
        (default: the settings' ``TOOLS_MODULES``, :mod:`tools.config`). Safe to call again
        (imports are cached). A plugin that fails to import is reported in
        the returned list of error strings, never raised, and logged as one
        warning line (once per registry: pages call this on every rerun);
        the traceback is logged at DEBUG level only.
        """
        errors: list[str] = []
        try:
            entry_points = list(_iter_entry_points())
        except Exception as exc:  # broken distribution metadata
            entry_points = []
            errors.append(f"cannot list entry points in group {ENTRY_POINT_GROUP!r}: {_describe_exception(exc)}")
            self._log_plugin_error(errors[-1])
        for ep in entry_points:
            try:
                ep.load()
            except Exception as exc:
                errors.append(
                    f"tool plugin entry point {ep.name!r} ({ep.value}) failed to load: {_describe_load_error(exc)}"
                )
                self._log_plugin_error(errors[-1])
        for module in tool_settings.current().modules if modules is None else modules:
            try:
                importlib.import_module(module)
            except Exception as exc:
                errors.append(
                    f"tool plugin module {module!r} (from ${MODULES_ENV_VAR}) failed to load: "
                    f"{_describe_load_error(exc)}"
                )
                self._log_plugin_error(errors[-1])
        return errors

    def _log_plugin_error(self, error: str) -> None:
        """One warning line per distinct failure; the traceback (we are in the ``except``) at DEBUG."""
        logger.debug("%s", error, exc_info=True)
        with self._lock:
            if error in self._plugin_errors_logged:
                return
            self._plugin_errors_logged.add(error)
        logger.warning("%s", error)

    # -- calling

    async def call_tool(
        self,
        name: str,
        args: Mapping[str, Any] | None,
        *,
        timeout_s: float | None = None,
        max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
    ) -> ToolResult:
        """Validate ``args``, run the tool with a timeout, and describe the outcome.

        Never raises for the tool's own failure (unknown tool, invalid
        arguments, an exception in the tool, a timeout): those come back as
        ``ToolResult(ok=False, error=...)``. ``asyncio.CancelledError``
        propagates. Sync tools run in a worker thread; on timeout that thread
        cannot be killed and finishes in the background, its result discarded.

        Args:
            name: the tool's name.
            args: the arguments, a JSON object (``None`` means no arguments).
            timeout_s: per-call timeout; default the tool's own, else 30 s.
            max_result_chars: longest result text kept before truncation.

        Raises:
            ValueError: ``timeout_s`` or ``max_result_chars`` not positive (a caller bug).
        """
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
        if max_result_chars < 1:
            raise ValueError(f"max_result_chars must be at least 1, got {max_result_chars!r}")
        started = time.perf_counter()

        def failed(error: str, detail: str | None = None, *, retryable: bool = False) -> ToolResult:
            elapsed = (time.perf_counter() - started) * 1000
            return ToolResult(ok=False, error=error, detail=detail, duration_ms=elapsed, retryable=retryable)

        try:
            spec = self.get_tool(name)
        except UnknownTool as exc:
            return failed(exc.message)
        if args is None:
            args = {}
        if type(args) is not dict and not isinstance(args, Mapping):
            return failed(
                f"Invalid arguments for tool {name!r}: expected a JSON object of named arguments, "
                f"got {type(args).__name__}"
            )
        try:
            validated = spec.args_model.model_validate(args if type(args) is dict else dict(args))
        except ValidationError as exc:
            return failed(_format_validation_error(name, exc))

        positional, keywords = ([dict(args)], {}) if spec.raw_args else _call_arguments(spec, validated)
        limit = timeout_s if timeout_s is not None else spec.timeout_s
        if limit is None:
            limit = DEFAULT_TIMEOUT_S
        try:
            work = spec.func(*positional, **keywords) if spec.is_async else self._invoke(spec, positional, keywords)
            raw = await with_deadline(work, limit)
        except DeadlinePassed:
            message = f"Tool {name!r} timed out after {limit:g} s; try again with a smaller or simpler request"
            return failed(message, retryable=True)
        except Exception as exc:  # the tool's own failure; CancelledError propagates
            logger.debug("tool %r raised", name, exc_info=True)
            detail = exc.detail if isinstance(exc, ToolError) else None
            retryable = getattr(exc, "retryable", True)  # a ToolError says; any other exception may pass next time
            shown = detail if isinstance(detail, str) and detail else None
            return failed(_describe_exception(exc), shown, retryable=retryable is not False)

        try:
            value = to_plain(raw, "fields")
            text = _value_text(value)
        except Exception as exc:  # e.g. an int too large for str(), a broken __str__
            return failed(f"Tool {name!r} returned a value that cannot be turned into JSON: {_describe_exception(exc)}")
        truncated = len(text) > max_result_chars
        if truncated:
            value = text[:max_result_chars] + _truncation_marker(len(text), max_result_chars)
        return ToolResult(ok=True, value=value, duration_ms=(time.perf_counter() - started) * 1000, truncated=truncated)

    @staticmethod
    async def _invoke(spec: ToolSpec, positional: list[Any], keywords: dict[str, Any]) -> Any:
        """A sync tool, in a worker thread (async tools are awaited directly)."""
        result = await asyncio.to_thread(spec.func, *positional, **keywords)
        if inspect.isawaitable(result):  # e.g. a sync wrapper returning a coroutine
            result = await typing.cast(Awaitable[Any], result)
        return result


def _call_arguments(spec: ToolSpec, validated: BaseModel) -> tuple[list[Any], dict[str, Any]]:
    """The validated arguments as the function takes them: positional-only ones, then keywords."""
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    for pname, internal, positional_only in spec._param_names:
        if positional_only:
            positional.append(getattr(validated, internal))
        elif internal in validated.model_fields_set:  # omitted -> the function's own default applies
            keywords[pname] = getattr(validated, internal)
    return positional, keywords


# ------------------------------------------------------------ the default registry

_default = ToolRegistry(autoload_plugins=True)


def default_registry() -> ToolRegistry:
    """The process-wide registry the module-level functions use."""
    return _default


@overload
def tool(func: F, /) -> F: ...


@overload
def tool(
    func: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float | None = None,
    replace: bool = False,
) -> Callable[[F], F]: ...


def tool(
    func: F | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float | None = None,
    replace: bool = False,
) -> F | Callable[[F], F]:
    """Register a sync or async function as a tool; use as ``@tool`` or ``@tool(name=..., ...)``.

    The argument schema comes from the type hints, the description from the
    docstring's first paragraph, per-parameter descriptions from its ``Args:``
    section (or ``Annotated[..., Field(description=...)]``). Returns the
    function unchanged.

    Args:
        func: the function (when used bare).
        name: tool name; default the function's name.
        description: overrides the docstring's first paragraph.
        timeout_s: the tool's own timeout in seconds (default 30 s).
        replace: allow replacing an existing tool of the same name.
    """
    decorate = _default.tool(name=name, description=description, timeout_s=timeout_s, replace=replace)
    return decorate if func is None else decorate(func)


def list_tools() -> list[ToolSpec]:
    """Every registered tool, sorted by name (loads plugins on first use)."""
    return _default.list_tools()


def get_tool(name: str) -> ToolSpec:
    """The tool called ``name``; raises :class:`UnknownTool` listing the available names."""
    return _default.get_tool(name)


def has_tool(name: str) -> bool:
    """Whether a tool called ``name`` is registered."""
    return _default.has_tool(name)


async def call_tool(
    name: str,
    args: Mapping[str, Any] | None,
    *,
    timeout_s: float | None = None,
    max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
) -> ToolResult:
    """Call a tool of the default registry; see :meth:`ToolRegistry.call_tool`."""
    return await _default.call_tool(name, args, timeout_s=timeout_s, max_result_chars=max_result_chars)


def load_plugins(modules: Sequence[str] | None = None) -> list[str]:
    """Load plugin tools into the default registry; returns error strings (never raises)."""
    return _default.load_plugins(modules)
