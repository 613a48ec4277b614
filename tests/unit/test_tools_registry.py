"""The tool registry: schemas from signatures, safe calls, results, plugins."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import pytest
from pydantic import BaseModel, Field

import tools
import tools.registry as registry_module
from tools import ToolError, ToolRegistry, ToolResult, ToolSpec, UnknownTool

# ----------------------------------------------------------------- fixtures


@pytest.fixture
def registry() -> ToolRegistry:
    return ToolRegistry()


@pytest.fixture
def default(monkeypatch: pytest.MonkeyPatch) -> ToolRegistry:
    """A fresh, plugin-autoloading registry standing in for the process-wide default."""
    fresh = ToolRegistry(autoload_plugins=True)
    monkeypatch.setattr(registry_module, "_default", fresh)
    monkeypatch.delenv("TOOLS_MODULES", raising=False)
    monkeypatch.setattr(registry_module, "_iter_entry_points", lambda: [])
    return fresh


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write importable plugin modules; yields ``write(source) -> module name``."""
    monkeypatch.syspath_prepend(str(tmp_path))
    written: list[str] = []

    def write(source: str) -> str:
        name = f"ws_test_plugin_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        written.append(name)
        return name

    yield write
    for name in written:
        sys.modules.pop(name, None)


# ------------------------------------------------------------ schema derivation


class Point(BaseModel):
    x: float
    y: float


def f_basic(a: int, b: str = "x", c: float | None = None, d: bool = False) -> None:
    """Do a basic thing.

    This second paragraph is not part of the description.

    Args:
        a: The first number.
        b (str): A label that is
            described over two lines.
        c: Optional scale.

    Returns:
        Nothing.
    """


def f_literal(mode: Literal["fast", "slow"], tags: list[str], weights: dict[str, float] | None = None) -> None:
    """Pick a mode."""


def f_annotated(q: Annotated[str, Field(description="The query text.")], n: int = 3) -> None:
    """Search.

    Args:
        q: Overridden by the Annotated description.
        n: How many results.
    """


def f_model(p: Point, pts: list[Point] = []) -> None:  # noqa: B006 - default is never mutated
    """Use points."""


def f_optional(x: Optional[int], y: list[int] | None = None) -> None:  # noqa: UP045 - testing Optional on purpose
    """Optional things."""


def f_no_args() -> str:
    """No arguments at all."""
    return "ok"


def f_multiline_summary(v: int) -> None:
    """First line of the summary
    continues on a second line.

    Args:
        v: A value.
    """


def f_undocumented(v: int) -> None:
    pass


@pytest.mark.parametrize(
    ("func", "description", "required", "properties"),
    [
        (
            f_basic,
            "Do a basic thing.",
            ["a"],
            {
                "a": {"type": "integer", "description": "The first number."},
                "b": {"type": "string", "default": "x", "description": "A label that is described over two lines."},
                "c": {
                    "anyOf": [{"type": "number"}, {"type": "null"}],
                    "default": None,
                    "description": "Optional scale.",
                },
                "d": {"type": "boolean", "default": False},
            },
        ),
        (
            f_literal,
            "Pick a mode.",
            ["mode", "tags"],
            {
                "mode": {"enum": ["fast", "slow"], "type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "weights": {
                    "anyOf": [{"type": "object", "additionalProperties": {"type": "number"}}, {"type": "null"}],
                    "default": None,
                },
            },
        ),
        (
            f_annotated,
            "Search.",
            ["q"],
            {
                "q": {"type": "string", "description": "The query text."},
                "n": {"type": "integer", "default": 3, "description": "How many results."},
            },
        ),
        (
            f_model,
            "Use points.",
            ["p"],
            {
                "p": {"$ref": "#/$defs/Point"},
                "pts": {"type": "array", "items": {"$ref": "#/$defs/Point"}, "default": []},
            },
        ),
        (
            f_optional,
            "Optional things.",
            ["x"],
            {
                "x": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                "y": {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}], "default": None},
            },
        ),
        (f_no_args, "No arguments at all.", [], {}),
        (
            f_multiline_summary,
            "First line of the summary continues on a second line.",
            ["v"],
            {"v": {"type": "integer", "description": "A value."}},
        ),
        (f_undocumented, "", ["v"], {"v": {"type": "integer"}}),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_schema_is_derived_from_signature_and_docstring(
    registry: ToolRegistry, func: Any, description: str, required: list[str], properties: dict[str, Any]
) -> None:
    spec = registry.register(func)
    schema = spec.parameters
    assert spec.name == func.__name__
    assert spec.description == description
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == required
    assert schema["properties"] == properties  # exact: no pydantic "title" noise
    assert spec.openai_schema() == {
        "type": "function",
        "function": {"name": func.__name__, "description": description, "parameters": schema},
    }


def test_pydantic_model_definitions_are_included(registry: ToolRegistry) -> None:
    schema = registry.register(f_model).parameters
    assert schema["$defs"]["Point"]["properties"].keys() == {"x", "y"}
    assert schema["$defs"]["Point"]["required"] == ["x", "y"]


def test_parameter_names_that_clash_with_basemodel_work(registry: ToolRegistry) -> None:
    def clash(json: str, model_config: int, schema: bool = True) -> list[Any]:
        return [json, model_config, schema]

    spec = registry.register(clash)
    assert set(spec.parameters["properties"]) == {"json", "model_config", "schema"}
    assert spec.parameters["required"] == ["json", "model_config"]


# ------------------------------------------------------------ decorator / names


def test_decorator_bare_and_with_options_returns_the_function(registry: ToolRegistry) -> None:
    @registry.tool
    def plain(a: int) -> int:
        """Add one."""
        return a + 1

    @registry.tool(name="renamed-tool", description="Custom words.", timeout_s=2.5)
    async def fancy(a: int) -> int:
        return a * 2

    assert plain(1) == 2  # still an ordinary function
    assert asyncio.iscoroutinefunction(fancy)
    spec = registry.get_tool("renamed-tool")
    assert (spec.name, spec.description, spec.timeout_s, spec.func) == ("renamed-tool", "Custom words.", 2.5, fancy)
    assert registry.get_tool("plain").timeout_s is None
    assert [s.name for s in registry.list_tools()] == ["plain", "renamed-tool"]
    assert registry.has_tool("plain") and not registry.has_tool("fancy")
    assert "plain" in registry and len(registry) == 2


def test_module_level_decorator_registers_in_the_default_registry(default: ToolRegistry) -> None:
    @tools.tool(name="zeta")
    def z() -> int:
        return 1

    @tools.tool
    def alpha() -> int:
        return 2

    assert [s.name for s in tools.list_tools()] == ["alpha", "zeta"]
    assert tools.get_tool("zeta").func is z
    assert tools.has_tool("alpha") and not tools.has_tool("calculator")
    assert isinstance(tools.get_tool("alpha"), ToolSpec)


def _star_args(*items: int) -> None: ...


def _star_kwargs(**options: int) -> None: ...


def _unannotated(a, b: int) -> None: ...  # type: ignore[no-untyped-def]


def _generator(n: int):  # type: ignore[no-untyped-def]
    yield n


def _unresolvable(a: NoSuchType) -> None: ...  # type: ignore[name-defined]  # noqa: F821


@pytest.mark.parametrize(
    ("func", "kwargs", "message"),
    [
        (_star_args, {}, "*items is not supported"),
        (_star_kwargs, {}, "**options is not supported"),
        (_unannotated, {}, "parameter 'a' has no type annotation"),
        (_generator, {}, "generator functions are not supported"),
        (_unresolvable, {}, "cannot resolve the type hints"),
        (f_no_args, {"name": "1starts-with-digit"}, "invalid tool name"),
        (f_no_args, {"name": "has space"}, "invalid tool name"),
        (f_no_args, {"name": "dotted.name"}, "invalid tool name"),
        (f_no_args, {"name": "-dash-first"}, "invalid tool name"),
        (f_no_args, {"name": "x" * 65}, "invalid tool name"),
        (f_no_args, {"name": ""}, "invalid tool name"),
        (f_no_args, {"name": "trailing\n"}, "invalid tool name"),
        (f_no_args, {"timeout_s": 0}, "timeout_s must be a positive number"),
        (f_no_args, {"timeout_s": -1.0}, "timeout_s must be a positive number"),
    ],
)
def test_bad_tools_are_rejected_at_decoration(
    registry: ToolRegistry, func: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=None) as info:
        registry.tool(**kwargs)(func)
    assert message in str(info.value)
    assert registry.list_tools() == []


@pytest.mark.parametrize("name", ["a", "_", "A-b_9", "x" * 64, "web_search", "read-file"])
def test_valid_names_are_accepted(registry: ToolRegistry, name: str) -> None:
    registry.register(f_no_args, name=name)
    assert registry.has_tool(name)


def test_duplicate_name_is_rejected_unless_replace(registry: ToolRegistry) -> None:
    def first() -> int:
        return 1

    def second() -> int:
        return 2

    registry.register(first, name="dup")
    with pytest.raises(TypeError, match="already registered.*replace=True"):
        registry.register(second, name="dup")
    assert registry.get_tool("dup").func is first
    registry.register(second, name="dup", replace=True)
    assert registry.get_tool("dup").func is second
    registry.register(second, name="dup")  # re-registering the very same function is harmless


def test_unknown_tool_lists_available(registry: ToolRegistry) -> None:
    registry.register(f_no_args, name="beta")
    registry.register(f_no_args, name="alpha")
    with pytest.raises(UnknownTool) as info:
        registry.get_tool("gamma")
    assert isinstance(info.value, KeyError)
    assert str(info.value) == "Unknown tool 'gamma'. Available tools: alpha, beta."


async def test_call_unknown_tool_is_a_result_listing_available(registry: ToolRegistry) -> None:
    registry.register(f_no_args, name="only_one")
    result = await registry.call_tool("nope", {})
    assert not result.ok
    assert result.error == "Unknown tool 'nope'. Available tools: only_one."
    assert result.as_text() == "Error: Unknown tool 'nope'. Available tools: only_one."


# ----------------------------------------------------------------------- calls


async def test_sync_tool_runs_in_a_worker_thread_without_blocking_the_loop(registry: ToolRegistry) -> None:
    seen: dict[str, int] = {}

    @registry.tool
    def slow(seconds: float) -> str:
        seen["thread"] = threading.get_ident()
        time.sleep(seconds)
        return "done"

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    result = await registry.call_tool("slow", {"seconds": 0.2})
    ticking.cancel()
    assert result == ToolResult(ok=True, value="done", duration_ms=result.duration_ms)
    assert result.duration_ms >= 190
    assert seen["thread"] != threading.get_ident()
    assert ticks >= 8, f"the event loop was blocked (only {ticks} ticks in 0.2 s)"


async def test_async_tool_is_awaited_on_the_loop(registry: ToolRegistry) -> None:
    @registry.tool
    async def add(a: int, b: int = 10) -> dict[str, int]:
        await asyncio.sleep(0)
        return {"sum": a + b, "thread": threading.get_ident()}

    result = await registry.call_tool("add", {"a": 1})
    assert result.ok and result.value == {"sum": 11, "thread": threading.get_ident()}


async def test_arguments_are_validated_and_coerced(registry: ToolRegistry) -> None:
    received: list[Any] = []

    @registry.tool
    def take(p: Point, n: int, mode: Literal["a", "b"] = "a", items: list[int] | None = None) -> str:
        received.append((p, n, mode, items))
        return "ok"

    result = await registry.call_tool("take", {"p": {"x": 1, "y": "2.5"}, "n": "7", "items": [1, "2"]})
    assert result.ok
    assert received == [(Point(x=1, y=2.5), 7, "a", [1, 2])]


async def test_omitted_optional_arguments_use_the_functions_own_defaults(registry: ToolRegistry) -> None:
    sentinel: list[int] = []

    def uses_default(a: int, bucket: list[int] = sentinel) -> bool:
        return bucket is sentinel

    registry.register(uses_default)
    assert (await registry.call_tool("uses_default", {"a": 1})).value is True
    assert (await registry.call_tool("uses_default", {"a": 1, "bucket": []})).value is False
    missing = await registry.call_tool("uses_default", None)  # None means "no arguments"
    assert missing.error is not None and missing.error.startswith("Invalid arguments")


async def test_positional_only_parameters_are_passed_positionally(registry: ToolRegistry) -> None:
    def pos(a: int, /, b: int) -> int:
        return a - b

    registry.register(pos)
    assert (await registry.call_tool("pos", {"a": 5, "b": 2})).value == 3


def _strict(n: int, mode: Literal["x", "y"], items: list[int], flag: bool = False) -> None: ...


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, ["(3 problems)", "n: Field required", "mode: Field required", "items: Field required"]),
        (
            {"n": "ten", "mode": "z", "items": [1, "two", 3], "flag": "maybe", "extra": 1},
            [
                "(5 problems)",
                "n: Input should be a valid integer",
                "'ten'",
                "mode: Input should be 'x' or 'y'",
                "items.1: Input should be a valid integer",
                "flag: Input should be a valid boolean",
                "extra: unexpected argument",
            ],
        ),
        ({"n": 1, "mode": "x", "items": "nope"}, ["(1 problem)", "items: Input should be a valid list"]),
        ({"n": 1.5, "mode": "x", "items": []}, ["n: Input should be a valid integer", "1.5"]),
    ],
)
async def test_validation_errors_list_every_bad_field(
    registry: ToolRegistry, args: dict[str, Any], expected: list[str]
) -> None:
    registry.register(_strict, name="strict")
    result = await registry.call_tool("strict", args)
    assert not result.ok and result.value is None
    assert result.error is not None and result.error.startswith("Invalid arguments for tool 'strict'")
    for fragment in expected:
        assert fragment in result.error


@pytest.mark.parametrize("args", [[1, 2], "n=1", 42])
async def test_non_object_arguments_are_a_result(registry: ToolRegistry, args: Any) -> None:
    registry.register(_strict, name="strict")
    result = await registry.call_tool("strict", args)
    assert not result.ok and "expected a JSON object" in (result.error or "")


class _Boom(Exception):
    pass


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ValueError("bad input value"), "ValueError: bad input value"),
        (_Boom(), "_Boom"),
        (ToolError("the file does not exist; check the path"), "the file does not exist; check the path"),
        (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero"),
    ],
)
@pytest.mark.parametrize("is_async", [False, True])
async def test_tool_exceptions_become_failed_results(
    registry: ToolRegistry, exc: Exception, expected: str, is_async: bool
) -> None:
    if is_async:

        async def failing() -> None:
            raise exc

    else:

        def failing() -> None:
            raise exc

    registry.register(failing)
    result = await registry.call_tool("failing", {})
    assert result.ok is False and result.value is None
    assert result.error == expected
    assert result.as_text() == f"Error: {expected}"


@pytest.mark.parametrize(
    ("tool_timeout", "call_timeout", "expected"),
    [(None, 0.1, 0.1), (0.1, None, 0.1), (5.0, 0.15, 0.15)],
)
@pytest.mark.parametrize("is_async", [False, True])
async def test_timeouts_give_a_failed_result_promptly(
    registry: ToolRegistry, tool_timeout: float | None, call_timeout: float | None, expected: float, is_async: bool
) -> None:
    if is_async:

        async def sleepy() -> str:
            await asyncio.sleep(5)
            return "late"

    else:

        def sleepy() -> str:
            time.sleep(0.3)  # a worker thread cannot be killed; keep it short so it finishes soon after
            return "late"

    registry.register(sleepy, timeout_s=tool_timeout)
    started = time.perf_counter()
    result = await registry.call_tool("sleepy", {}, timeout_s=call_timeout)
    elapsed = time.perf_counter() - started
    assert not result.ok
    assert f"timed out after {expected:g} s" in (result.error or "")
    assert expected <= elapsed < expected + 0.25


async def test_default_timeout_is_30_seconds(registry: ToolRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    assert tools.DEFAULT_TIMEOUT_S == 30.0
    monkeypatch.setattr(registry_module, "DEFAULT_TIMEOUT_S", 0.05)

    async def forever() -> None:
        await asyncio.sleep(5)

    registry.register(forever)
    result = await registry.call_tool("forever", {})
    assert "timed out after 0.05 s" in (result.error or "")


async def test_a_tool_ignoring_cancellation_is_still_reported_as_timed_out(registry: ToolRegistry) -> None:
    """Async tools must let CancelledError through; one that swallows it returns late, as a timeout."""
    finished = asyncio.Event()

    async def stubborn() -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            await asyncio.sleep(0.3)  # swallows the cancellation and carries on
            finished.set()
        return "late"

    registry.register(stubborn)
    started = time.perf_counter()
    result = await registry.call_tool("stubborn", {}, timeout_s=0.1)
    assert not result.ok and "timed out after 0.1 s" in (result.error or "")
    assert finished.is_set() and time.perf_counter() - started < 1.0


async def test_cancellation_propagates_and_cancels_the_tool(registry: ToolRegistry) -> None:
    started, cleaned_up = asyncio.Event(), asyncio.Event()

    async def waits() -> str:
        started.set()
        try:
            await asyncio.sleep(10)
        finally:
            cleaned_up.set()
        return "never"

    registry.register(waits)
    call = asyncio.create_task(registry.call_tool("waits", {}))
    await started.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.wait_for(cleaned_up.wait(), 1)


async def test_cancelled_error_raised_by_a_tool_is_not_turned_into_a_result(registry: ToolRegistry) -> None:
    async def cancels() -> None:
        raise asyncio.CancelledError

    registry.register(cancels)
    with pytest.raises(asyncio.CancelledError):
        await registry.call_tool("cancels", {})


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"timeout_s": 0}, "timeout_s"), ({"max_result_chars": 0}, "max_result")]
)
async def test_caller_bugs_raise(registry: ToolRegistry, kwargs: dict[str, Any], message: str) -> None:
    registry.register(f_no_args)
    with pytest.raises(ValueError, match=message):
        await registry.call_tool("f_no_args", {}, **kwargs)


# --------------------------------------------------------------------- results


@dataclasses.dataclass
class _Pair:
    a: int
    b: tuple[int, int]


class _Opaque:
    def __str__(self) -> str:
        return "<opaque thing>"


@pytest.mark.parametrize(
    ("value", "expected", "text"),
    [
        ("plain text", "plain text", "plain text"),
        (42, 42, "42"),
        (1.5, 1.5, "1.5"),
        (None, None, "null"),
        (True, True, "true"),
        ((1, 2, (3, 4)), [1, 2, [3, 4]], "[1, 2, [3, 4]]"),
        ({"k": (1,), 2: "two"}, {"k": [1], "2": "two"}, '{"k": [1], "2": "two"}'),
        (Point(x=1, y=2), {"x": 1.0, "y": 2.0}, '{"x": 1.0, "y": 2.0}'),
        ([Point(x=0, y=0)], [{"x": 0.0, "y": 0.0}], '[{"x": 0.0, "y": 0.0}]'),
        (_Pair(1, (2, 3)), {"a": 1, "b": [2, 3]}, '{"a": 1, "b": [2, 3]}'),
        (_Opaque(), "<opaque thing>", "<opaque thing>"),
        ({"nested": [_Opaque()]}, {"nested": ["<opaque thing>"]}, '{"nested": ["<opaque thing>"]}'),
        ("ünïcödé ✓", "ünïcödé ✓", "ünïcödé ✓"),
    ],
)
async def test_values_are_made_json_serialisable(registry: ToolRegistry, value: Any, expected: Any, text: str) -> None:
    def give() -> Any:
        return value

    registry.register(give)
    result = await registry.call_tool("give", {})
    assert result.ok and not result.truncated
    assert result.value == expected
    assert result.as_text() == text


async def test_unserialisable_value_is_a_failed_result(registry: ToolRegistry) -> None:
    def huge() -> int:
        return 10**5000  # more digits than str(int) allows by default

    registry.register(huge)
    result = await registry.call_tool("huge", {})
    assert not result.ok and "cannot be turned into JSON" in (result.error or "")


@pytest.mark.parametrize(
    ("value", "limit", "total"),
    [
        ("x" * 123_456, 20_000, 123_456),
        ({"data": "y" * 50_000}, 1000, len('{"data": "') + 50_000 + 2),
        (list(range(10_000)), 500, len(str(list(range(10_000))))),
    ],
)
async def test_long_results_are_truncated_with_a_marker(
    registry: ToolRegistry, value: Any, limit: int, total: int
) -> None:
    def big() -> Any:
        return value

    registry.register(big)
    result = await registry.call_tool("big", {}, max_result_chars=limit)
    assert result.ok and result.truncated
    marker = f"… [truncated: result was {total} characters, showing the first {limit}]"
    assert isinstance(result.value, str) and result.value.endswith(marker)
    assert len(result.value) == limit + len(marker)
    assert result.as_text() == result.value


async def test_result_exactly_at_the_limit_is_not_truncated(registry: ToolRegistry) -> None:
    def exact() -> str:
        return "z" * 100

    registry.register(exact)
    result = await registry.call_tool("exact", {}, max_result_chars=100)
    assert result.ok and not result.truncated and result.value == "z" * 100


def test_tool_result_defaults_and_frozen() -> None:
    result = ToolResult(ok=True)
    assert (result.value, result.error, result.duration_ms, result.truncated) == (None, None, 0.0, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.ok = False  # type: ignore[misc]
    assert ToolResult(ok=False, error="nope").as_text() == "Error: nope"


async def test_a_failed_call_says_whether_calling_again_may_help(registry: ToolRegistry) -> None:
    def final(x: int) -> int:
        raise ToolError("x must be even", retryable=False)

    def passing(x: int) -> int:
        raise ToolError("the backend is busy")

    def crashing(x: int) -> int:
        raise ConnectionError("reset by peer")

    async def slow(x: int) -> int:
        await asyncio.sleep(5)
        return x

    for fn in (final, passing, crashing):
        registry.register(fn)
    registry.register(slow, timeout_s=0.05)
    outcomes = {
        name: (await registry.call_tool(name, args)).retryable
        for name, args in [
            ("final", {"x": 1}),
            ("passing", {"x": 1}),
            ("crashing", {"x": 1}),
            ("slow", {"x": 1}),
            ("final", {"x": "not a number"}),  # invalid arguments: the same call fails again
            ("nowhere", {}),  # unknown tool
        ]
    }
    assert outcomes == {"final": False, "passing": True, "crashing": True, "slow": True, "nowhere": False}
    assert (await registry.call_tool("final", {"x": "no"})).retryable is False
    assert (await registry.call_tool("final", {"x": 1})).error == "x must be even"


def test_a_copy_has_the_tools_and_then_goes_its_own_way(registry: ToolRegistry) -> None:
    def one() -> int:
        return 1

    def two() -> int:
        return 2

    registry.register(one)
    copy = registry.copy()
    copy.register(two)
    registry.unregister("one")
    assert [t.name for t in copy.list_tools()] == ["one", "two"]
    assert registry.list_tools() == []
    default_copy = tools.default_registry().copy()
    assert {"calculator", "python"} <= {t.name for t in default_copy.list_tools()}
    assert default_copy is not tools.default_registry()


def _raises_tool_error_with_detail() -> int:
    raise ToolError("short message", detail="long\ndetail for people")


def _raises_tool_error() -> int:
    raise ToolError("short message")


def _raises_value_error() -> int:
    raise ValueError("short message")


def _returns_an_error_looking_value() -> dict[str, str]:
    return {"error": "this is data, not a failure"}


@pytest.mark.parametrize(
    ("func", "ok", "error", "detail"),
    [
        (_raises_tool_error_with_detail, False, "short message", "long\ndetail for people"),
        (_raises_tool_error, False, "short message", None),
        (_raises_value_error, False, "ValueError: short message", None),
        (_returns_an_error_looking_value, True, None, None),  # only raising reports a failure
    ],
)
async def test_a_failure_is_reported_by_raising_and_its_detail_is_kept_apart(
    registry: ToolRegistry, func: Any, ok: bool, error: str | None, detail: str | None
) -> None:
    registry.register(func, name="t")
    result = await registry.call_tool("t", {})
    assert (result.ok, result.error, result.detail) == (ok, error, detail)
    if not ok:
        assert result.as_text() == f"Error: {error}"  # what a model reads never includes the detail


# ---------------------------------------------------------------------- plugins


async def test_plugins_load_from_tools_modules_lazily_once(
    default: ToolRegistry, plugin_dir: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = plugin_dir(
        '''
        from tools import tool

        @tool
        def plugin_echo(text: str) -> str:
            """Echo the text back."""
            return text
        '''
    )
    second = plugin_dir(
        """
        from tools import tool

        @tool
        def plugin_shout(text: str) -> str:
            return text.upper()
        """
    )
    monkeypatch.setenv("TOOLS_MODULES", f" {first} , ,{second}")
    assert first not in sys.modules
    names = [s.name for s in tools.list_tools()]  # the first lookup loads plugins
    assert names == ["plugin_echo", "plugin_shout"]
    result = await tools.call_tool("plugin_echo", {"text": "hi"})
    assert result.ok and result.value == "hi"

    late = plugin_dir(
        """
        from tools import tool

        @tool
        def plugin_late() -> int:
            return 1
        """
    )
    monkeypatch.setenv("TOOLS_MODULES", late)
    assert not tools.has_tool("plugin_late")  # lazy loading happens once per process
    assert tools.load_plugins() == []  # an explicit call loads again (idempotent for already-loaded ones)
    assert tools.has_tool("plugin_late") and tools.has_tool("plugin_echo")


def test_broken_plugins_are_reported_not_raised(
    default: ToolRegistry, plugin_dir: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    good = plugin_dir(
        """
        from tools import tool

        @tool
        def fine() -> str:
            return "fine"
        """
    )
    crashing = plugin_dir("raise RuntimeError('plugin exploded on import')\n")
    clashing = plugin_dir(
        """
        from tools import tool

        @tool
        def fine() -> str:  # same name as the good plugin's tool
            return "other"
        """
    )
    missing = "no_such_plugin_module_xyz"
    monkeypatch.setenv("TOOLS_MODULES", ",".join([good, crashing, missing, clashing]))
    with caplog.at_level(logging.WARNING, logger="tools.registry"):
        errors = tools.load_plugins()
    assert len(errors) == 3
    assert f"'{crashing}'" in errors[0] and "RuntimeError: plugin exploded on import" in errors[0]
    assert f"'{missing}'" in errors[1] and "ModuleNotFoundError" in errors[1]
    assert f"'{clashing}'" in errors[2] and "already registered" in errors[2]
    assert all("TOOLS_MODULES" in e for e in errors)
    for error in errors:
        assert error in caplog.text
    assert [s.name for s in tools.list_tools()] == ["fine"]  # the good plugin still loaded


BROKEN_PLUGINS = [  # (id, module source or None for a module that does not exist, words of the one line)
    ("missing", None, ["ModuleNotFoundError", "No module named"]),
    (
        "raises",
        "x = 1\nraise RuntimeError('first line\\nsecond line')\n",
        ["RuntimeError: first line second line", ".py:2)"],
    ),
    ("syntax", "def broken(:\n", ["SyntaxError", "line 1"]),
    ("imports-missing", "import no_such_dependency_xyz\n", ["No module named 'no_such_dependency_xyz'"]),
]


@pytest.mark.parametrize(("source", "words"), [pytest.param(c[1], c[2], id=c[0]) for c in BROKEN_PLUGINS])
def test_a_broken_plugin_is_one_warning_line_without_traceback_logged_once(
    default: ToolRegistry,
    plugin_dir: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    source: str | None,
    words: list[str],
) -> None:
    module = plugin_dir(source) if source is not None else "no_such_plugin_module_xyz"
    monkeypatch.setenv("TOOLS_MODULES", module)
    with caplog.at_level(logging.DEBUG, logger="tools.registry"):
        for _ in range(3):  # the Tools page loads plugins on every rerun
            (error,) = tools.load_plugins()
    assert f"'{module}'" in error and "\n" not in error and all(w in error for w in words), error
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == [error], "one line, once"
    assert warnings[0].exc_info is None, "no traceback at WARNING"
    assert any(r.exc_info for r in caplog.records if r.levelno == logging.DEBUG), "the traceback is kept at DEBUG"


def test_entry_point_plugins(default: ToolRegistry, plugin_dir: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    module = plugin_dir(
        """
        from tools import tool

        @tool
        def from_entry_point() -> str:
            return "ep"
        """
    )
    group = tools.ENTRY_POINT_GROUP
    assert group == "workflow_studio.tools"
    points = [
        EntryPoint(name="good", value=module, group=group),
        EntryPoint(name="bad", value="no_such_ep_module_xyz", group=group),
    ]
    monkeypatch.setattr(registry_module, "_iter_entry_points", lambda: points)
    assert tools.has_tool("from_entry_point")  # lazily loaded
    errors = tools.load_plugins()
    assert len(errors) == 1 and "'bad'" in errors[0] and "no_such_ep_module_xyz" in errors[0]


# --------------------------------------------------------------------- package


def test_importing_tools_registers_the_builtins() -> None:
    spec = tools.default_registry().get_tool("calculator")
    assert spec.parameters["required"] == ["expression"]
    assert spec.description.startswith("Evaluate an arithmetic expression")


def test_tools_package_does_not_import_engine_or_streamlit() -> None:
    code = (
        "import sys, tools; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('engine', 'streamlit')]; "
        "assert not bad, bad; print(len(tools.list_tools()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr


def test_the_four_builtin_tools_are_registered_on_import() -> None:
    assert {"calculator", "python", "web_search", "file_reader"} <= {t.name for t in tools.list_tools()}
