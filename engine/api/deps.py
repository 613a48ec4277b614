"""What the routes share, handed to them by FastAPI's ``Depends`` instead of a closure.

``create_app`` puts one :class:`ApiContext` on ``app.state.api``; a route asks for the parts it
needs (``runtime: RuntimeDep``, ``hub: HubDep``, ``keepalive_s: KeepaliveDep``); the dependencies are
``async`` so that resolving them never costs a trip through the thread pool. The path types
(``RunId``, ``WorkflowId``, ``AgentId``) and the body helpers live here so that every router checks
ids and bodies the same way.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from starlette.requests import HTTPConnection

from engine.api.errors import ApiError
from engine.api.streams import StreamHub
from engine.errors import Problem, WorkflowInvalid
from engine.model import Workflow
from engine.runtime import RunInfo, Runtime
from engine.validate import load_workflow
from tools import ToolRegistry

MAX_SEQ = 2**62  # bigger numbers than any seq; also keeps SQLite's 64-bit integers happy
MAX_ID_CHARS = 200
ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"  # no control characters (PostgreSQL refuses NUL in text)

RunId = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN, description="a run id (POST /runs answers it)")
]
WorkflowId = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN, description="a saved workflow's id")
]
AgentId = Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN)]


@dataclass(frozen=True)
class ApiContext:
    """The app's shared parts: the runtime (owned by the caller), its stream hub and the SSE keep-alive."""

    runtime: Runtime
    hub: StreamHub
    keepalive_s: float


async def api_context(connection: HTTPConnection) -> ApiContext:
    context: ApiContext = connection.app.state.api
    return context


async def _runtime(context: Annotated[ApiContext, Depends(api_context)]) -> Runtime:
    return context.runtime


async def _hub(context: Annotated[ApiContext, Depends(api_context)]) -> StreamHub:
    return context.hub


async def _keepalive(context: Annotated[ApiContext, Depends(api_context)]) -> float:
    return context.keepalive_s


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
HubDep = Annotated[StreamHub, Depends(_hub)]
KeepaliveDep = Annotated[float, Depends(_keepalive)]


async def json_body(request: Request) -> Any:
    """The request's body parsed as JSON (400 when empty or not JSON)."""
    raw = await request.body()
    if not raw.strip():
        raise ApiError(400, "the request needs a JSON body")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc) or type(exc).__name__
        raise ApiError(400, f"the body is not valid JSON: {reason}") from None


def requested_workflow(runtime: Runtime, workflow_id: str | None, document: Any) -> Workflow:
    """The workflow a request names: a saved one by ``workflow_id`` (404 when unknown), else its document."""
    if workflow_id is not None:
        found = runtime.reader.workflow_version(workflow_id)
        if found is None:
            raise ApiError(404, f"no workflow with id '{workflow_id}' (list them with GET /workflows)")
        document = found.document
    return load_document(document, runtime.tools)


def load_document(document: Any, registry: ToolRegistry) -> Workflow:
    """Validate a document from a request (never a path: a string body is not read as a file)."""
    if not isinstance(document, dict):
        raise ApiError(
            422,
            "workflow is invalid (1 problem)",
            [Problem("document", f"must be a JSON object, got {type(document).__name__}")],
        )
    try:
        return load_workflow(document, tools=registry)
    except WorkflowInvalid as exc:
        raise ApiError(422, str(exc).splitlines()[0], exc.problems) from None
    except RecursionError:
        raise ApiError(422, "workflow is invalid (1 problem)", [Problem("document", "is nested too deeply")]) from None


def valid_id(text: str) -> bool:
    return 0 < len(text) <= MAX_ID_CHARS and re.match(ID_PATTERN, text) is not None


def status_or_404(runtime: Runtime, run_id: str) -> RunInfo:
    info = runtime.status(run_id)
    if info is None:
        raise ApiError(404, f"no run with id '{run_id}' (list runs with GET /runs)")
    return info


def wait_row_settled(runtime: Runtime, run_id: str, status: str, timeout_s: float = 5.0) -> None:
    """The runtime knows a run ended before its store row is committed; resume and rerun read the row."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = runtime.reader.run(run_id)
        if row is None or row.status == status or row.status != "running":
            return
        time.sleep(0.02)


__all__ = [
    "ID_PATTERN",
    "MAX_ID_CHARS",
    "MAX_SEQ",
    "AgentId",
    "ApiContext",
    "HubDep",
    "KeepaliveDep",
    "RunId",
    "RuntimeDep",
    "WorkflowId",
    "json_body",
    "load_document",
    "status_or_404",
    "valid_id",
    "wait_row_settled",
]
