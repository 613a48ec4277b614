"""The MCP servers of one runtime: connections kept for reuse, their tools registered as ``SERVER__tool``.

Why this module exists: the SDK's client sessions live inside async context
managers that must be entered and left by one task, while tool calls come from
many tasks of the runtime's loop and lookups from any thread. :class:`McpHub`
owns a private event loop in a thread; each server has one owner task there that
holds its transport and ``ClientSession`` open until told to stop. Calls hop to
that loop and back (:func:`asyncio.wrap_future`), so cancelling the caller --
a deadline, a cancelled run -- cancels the in-flight request (the SDK drops it).

Lifecycle: a server is started on first use (a lookup that needs its tools, or
a call), kept, restarted on the next use after it crashed, and stopped by
:meth:`McpHub.close` (the runtime's shutdown). A stdio server runs in its own
process group under :mod:`tools.mcp.launch`, with exactly its config's ``env``
plus ``PATH``. A Streamable HTTP session that the server no longer knows (it
restarted, the session expired) is opened again and the call sent once more.

Names: ``SERVER__tool``; characters a tool name may not hold become ``_`` and
the name is cut to 64 characters (the model's function-name rule).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, TextIO, cast

import anyio
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import McpError
from pydantic import BaseModel, ConfigDict, create_model

from tools.errors import ToolError
from tools.mcp import launch
from tools.mcp.config import SEPARATOR, McpConfig, McpServerConfig
from tools.registry import ToolRegistry, ToolSpec

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 20.0  # starting a server and listing its tools
STOP_TIMEOUT_S = 5.0
RETRY_DOWN_S = 30.0  # a server that was down at a lookup is tried again at a lookup this much later

_ANY_ARGS: type[BaseModel] = create_model("McpArgs", __config__=ConfigDict(extra="allow"))


class McpServerDown(ToolError):
    """A server could not be started or reached; the message names it and says why."""


def tool_name(server: str, tool: str) -> str:
    """The registry name of ``tool`` of ``server``."""
    return (server + SEPARATOR + re.sub(r"[^A-Za-z0-9_-]", "_", tool))[:64]


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, McpError):
        return exc.error.message
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def content_value(result: types.CallToolResult) -> Any:
    """A call's contents as the tool's value: text as text, images and binary noted (never inlined)."""
    parts: list[str] = []
    for item in result.content:
        if isinstance(item, types.TextContent):
            parts.append(item.text)
        elif isinstance(item, (types.ImageContent, types.AudioContent)):
            kind = "image" if isinstance(item, types.ImageContent) else "audio"
            parts.append(f"[{kind} {item.mimeType}, {_decoded_size(item.data)} bytes, not shown]")
        elif isinstance(item, types.EmbeddedResource):
            res = item.resource
            if isinstance(res, types.TextResourceContents):
                parts.append(f"[resource {res.uri}]\n{res.text}")
            else:
                parts.append(f"[resource {res.uri}: {res.mimeType or 'binary'}, {_decoded_size(res.blob)} bytes]")
        elif isinstance(item, types.ResourceLink):
            parts.append(f"[resource link {item.uri}: {item.name}]")
    if not parts and result.structuredContent is not None:
        return result.structuredContent
    return parts[0] if len(parts) == 1 else "\n\n".join(parts)


def _decoded_size(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return len(data)


class _Server:
    """One configured server: its connection (opened on demand), its tools, its last failure."""

    def __init__(self, config: McpServerConfig, child_path: str, log_dir: Path | None) -> None:
        self.config = config
        self.child_path = child_path
        self.log_dir = log_dir
        self.session: ClientSession | None = None
        self.owner: asyncio.Task[None] | None = None
        self.stop: asyncio.Event | None = None
        self.lock: asyncio.Lock | None = None
        self.tools: dict[str, types.Tool] | None = None  # registry name -> tool, once listed
        self.error: str | None = None  # why the last start failed

    def _stdio_params(self) -> StdioServerParameters:
        spec = {
            "command": self.config.command,
            "args": list(self.config.args),
            "env": {**self.config.env, "PATH": self.child_path},
        }
        return StdioServerParameters(
            command=sys.executable,
            args=["-I", "-S", launch.__file__],
            env={launch.SPEC_VAR: json.dumps(spec)},
        )

    def _errlog(self) -> IO[str]:
        if self.log_dir is None:
            return open("/dev/null", "w", encoding="utf-8")  # noqa: SIM115  (closed by the owner task)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return (self.log_dir / f"{self.config.name}.log").open("a", encoding="utf-8")

    async def connect(self) -> ClientSession:
        """The open session, starting the server (and listing its tools) when none is."""
        if self.lock is None:
            self.lock = asyncio.Lock()
        async with self.lock:
            if self.session is not None and self.owner is not None and not self.owner.done():
                return self.session
            await self._disconnect()
            ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
            stop = asyncio.Event()
            self.stop = stop
            self.owner = asyncio.get_running_loop().create_task(self._own(ready, stop))
            try:
                session = await asyncio.wait_for(asyncio.shield(ready), START_TIMEOUT_S)
                listed = await asyncio.wait_for(_list_all(session), START_TIMEOUT_S)
            except BaseException as exc:
                await self._disconnect()
                self.error = (
                    f"timed out after {START_TIMEOUT_S:g} s" if isinstance(exc, TimeoutError) else _describe(exc)
                )
                if isinstance(exc, asyncio.CancelledError):
                    raise
                raise McpServerDown(f"MCP server '{self.config.name}' is not available: {self.error}") from None
            self.session, self.error = session, None
            self.tools = {tool_name(self.config.name, t.name): t for t in listed}
            return session

    async def _own(self, ready: asyncio.Future[ClientSession], stop: asyncio.Event) -> None:
        """Hold the transport and session open until ``stop`` (entered and left in this one task)."""
        errlog = self._errlog() if self.config.command else None
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self.config.command:
                    read, write = await stack.enter_async_context(
                        stdio_client(self._stdio_params(), errlog=cast(TextIO, errlog))
                    )
                else:
                    client = await stack.enter_async_context(
                        create_mcp_http_client(headers=dict(self.config.headers) or None)
                    )
                    read, write, _ = await stack.enter_async_context(
                        streamable_http_client(self.config.url, http_client=client)
                    )
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                if not ready.done():
                    ready.set_result(session)
                await stop.wait()
        except BaseException as exc:  # the server died, refused, or we were told to stop
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(_describe(exc)))
            if not isinstance(exc, (Exception, asyncio.CancelledError)):
                raise
        finally:
            if errlog is not None:
                errlog.close()
            self.session = None

    async def _disconnect(self) -> None:
        owner, self.owner, self.session = self.owner, None, None
        if owner is None:
            return
        if self.stop is not None:
            self.stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(owner), STOP_TIMEOUT_S)
        except (TimeoutError, Exception):
            owner.cancel()
            with contextlib.suppress(BaseException):
                await owner

    async def close(self) -> None:
        if self.lock is None:
            self.lock = asyncio.Lock()
        async with self.lock:
            await self._disconnect()

    async def call(self, tool: str, args: dict[str, Any]) -> Any:
        """Call ``tool`` (its MCP name); a server error, a crash or a lost session is a :class:`ToolError`."""
        for attempt in (1, 2):
            session = await self.connect()
            try:
                result = await session.call_tool(tool, args)
            except McpError as exc:
                lost = exc.error.code == types.CONNECTION_CLOSED or exc.error.message == "Session terminated"
                if lost:
                    await self.close()  # restarted on the next use
                    if attempt == 1 and not self.config.command:  # an HTTP session expired: the call never ran
                        continue
                    raise ToolError(
                        f"MCP server '{self.config.name}' went away during the call ({exc.error.message}); "
                        "it is restarted on the next call"
                    ) from None
                raise ToolError(f"MCP server '{self.config.name}': {exc.error.message}", retryable=False) from None
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                await self.close()  # the server had died before the call: it never ran; start it again
                if attempt == 1:
                    continue
                raise ToolError(f"MCP server '{self.config.name}' is not answering") from None
            except Exception as exc:
                await self.close()
                raise ToolError(f"MCP server '{self.config.name}' failed: {_describe(exc)}") from None
            if result.isError:
                text = content_value(result)
                raise ToolError(
                    f"{tool_name(self.config.name, tool)}: {text if isinstance(text, str) else json.dumps(text)}",
                    retryable=False,
                )
            return content_value(result)
        raise AssertionError("unreachable")


def _in_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _list_all(session: ClientSession) -> list[types.Tool]:
    listed: list[types.Tool] = []
    cursor: str | None = None
    while True:
        page = await session.list_tools(cursor=cursor) if cursor else await session.list_tools()
        listed.extend(page.tools)
        cursor = page.nextCursor
        if not cursor:
            return listed


class McpHub:
    """The configured MCP servers of one runtime and the tools they add to its registry.

    Args:
        config: the servers (:func:`tools.mcp.config.load_config`).
        registry: where their tools are registered (lazily, on the first lookup).
        child_path: the ``PATH`` a stdio server gets (the settings' ``child_path``).
        log_dir: where each stdio server's stderr goes (``NAME.log``); None discards it.
    """

    def __init__(
        self, config: McpConfig, registry: ToolRegistry, *, child_path: str, log_dir: Path | None = None
    ) -> None:
        self.config = config
        self.registry = registry
        self._servers = {s.name: _Server(s, child_path, log_dir) for s in config.servers}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mcp-hub", daemon=True)
        self._thread.start()
        self._loaded = False
        self._loaded_at = 0.0
        self._load_lock = threading.Lock()
        self._closed = False
        registry.add_source(self)

    # -- the registry's source protocol

    def ensure_loaded(self) -> None:
        """Start every server once and register its tools; a server that was down is tried again after
        :data:`RETRY_DOWN_S` (a failure is remembered for :meth:`explain`, never raised)."""
        if self._closed or threading.current_thread() is self._thread:
            return
        if self._loaded and (self._all_up() or time.monotonic() - self._loaded_at < RETRY_DOWN_S or _in_loop()):
            return  # a retry never blocks an event loop (a run's lookups): pages and submits retry
        with self._load_lock:
            if self._loaded and (self._all_up() or time.monotonic() - self._loaded_at < RETRY_DOWN_S):
                return
            self.refresh()
            self._loaded, self._loaded_at = True, time.monotonic()

    def _all_up(self) -> bool:
        return all(server.tools is not None for server in self._servers.values())

    def refresh(self) -> dict[str, str | None]:
        """Connect to each server, (re)register its tools; each server's error or None."""
        future = asyncio.run_coroutine_threadsafe(self._refresh(), self._loop)
        return future.result(START_TIMEOUT_S + STOP_TIMEOUT_S + 5)

    async def _refresh(self) -> dict[str, str | None]:
        async def one(server: _Server) -> None:
            with contextlib.suppress(ToolError):
                await server.connect()

        await asyncio.gather(*(one(s) for s in self._servers.values()))
        for server in self._servers.values():
            for name, tool in (server.tools or {}).items():
                self.registry.add_spec(self._spec(server, name, tool))
        return {name: server.error for name, server in self._servers.items()}

    def explain(self, name: str) -> str | None:
        server_name, sep, tool = name.partition(SEPARATOR)
        server = self._servers.get(server_name)
        if not sep or server is None:
            return None
        if server.tools is None:
            return f"unknown tool '{name}': MCP server '{server_name}' is down ({server.error or 'not started'})"
        names = ", ".join(sorted(server.tools)) or "(none)"
        return f"unknown tool '{name}': MCP server '{server_name}' has no tool '{tool}'; its tools: {names}"

    def status(self) -> dict[str, str | None]:
        """Each server's state for a page: None when its tools are listed, else why not."""
        return {n: (None if s.tools is not None else s.error or "not started") for n, s in self._servers.items()}

    # -- calls

    def _spec(self, server: _Server, name: str, tool: types.Tool) -> ToolSpec:
        schema = dict(tool.inputSchema or {})
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})

        async def call(args: dict[str, Any]) -> Any:
            return await self._call(server, tool.name, args)

        description = tool.description or tool.title or tool.name
        return ToolSpec(
            name=name,
            description=f"{description} (MCP server '{server.config.name}')",
            parameters=schema,
            timeout_s=server.config.timeout_s,
            func=call,
            args_model=_ANY_ARGS,
            is_async=True,
            raw_args=True,
        )

    async def _call(self, server: _Server, tool: str, args: dict[str, Any]) -> Any:
        if self._closed:
            raise ToolError("the MCP servers have been stopped (the runtime shut down)", retryable=False)
        future = asyncio.run_coroutine_threadsafe(server.call(tool, args), self._loop)
        return await asyncio.wrap_future(future)  # cancelling this cancels the call on the hub's loop

    # -- lifecycle

    def close(self) -> None:
        """Stop every server (stdio processes end) and the hub's loop; idempotent."""
        if self._closed:
            return
        self._closed = True

        async def stop_all() -> None:
            await asyncio.gather(*(s.close() for s in self._servers.values()), return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop_all(), self._loop).result(STOP_TIMEOUT_S * 2 + 5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STOP_TIMEOUT_S)
        if not self._thread.is_alive():
            self._loop.close()


def log_dir_for(data_dir: Path) -> Path:
    return data_dir / "logs" / "mcp"


__all__ = ["SEPARATOR", "McpHub", "McpServerDown", "content_value", "log_dir_for", "tool_name"]
