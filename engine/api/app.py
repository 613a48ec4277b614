"""The HTTP API as a FastAPI app over one :class:`~engine.runtime.Runtime`.

Routes (JSON unless said; see the README's "HTTP API" section and ``/docs``):

- ``GET /health``
- ``GET /workflows``, ``POST /workflows``, ``GET /workflows/{id}[?version=N]``
- ``POST /runs``, ``GET /runs``, ``GET /runs/{id}``
- ``GET /runs/{id}/events?after=SEQ`` (a JSON list, or Server-Sent Events with
  ``Accept: text/event-stream``), ``WS /runs/{id}/ws?after=SEQ``
- ``POST /runs/{id}/cancel``, ``POST /runs/{id}/resume``, ``POST /runs/{id}/rerun``
- ``GET /tools``, ``GET /memory/agents``, ``GET /memory/{agent_id}?query=&k=``

Errors are ``{"detail": str, "problems": [{"where", "message"}]}``: 400 for
a body that is not JSON or a ``Host`` that is not allowed, 401 for a missing
or wrong token, 403 for a state-changing request or a WebSocket from a page
of a foreign origin, 404 for unknown ids, 409 for a state conflict (resume a
completed run), 413 for a body over the cap, 415 for a body that is not sent
as ``application/json``, 422 for an invalid workflow, inputs or parameters
(``problems`` lists every one), 503 when the store or the memory package is
unavailable. ``engine.api.guards`` says why the Host, Origin and
Content-Type rules exist.

``/docs`` (Swagger UI) and ``/redoc`` are served with their scripts from the
``fastapi-offline`` package, so they work with no internet.

Handlers that touch the store or the runtime's blocking calls are plain
``def`` functions or hand their work to the thread pool, so the event loop
only ever streams.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, is_dataclass
from typing import Annotated, Any

from fastapi import FastAPI, Header, Path, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocketDisconnect

import tools
from engine.api.auth import DEFAULT_MAX_BODY_BYTES, BodyLimit, TokenAuth
from engine.api.guards import LOCAL_HOSTS, HostGuard, JsonBodyOnly, OriginGuard
from engine.api.schemas import (
    ErrorOut,
    EventOut,
    HealthOut,
    MemoryOut,
    RerunRequest,
    RunOut,
    RunRequest,
    RunStarted,
    RunStateOut,
    RunStatus,
    ToolOut,
    WorkflowOut,
    WorkflowSaved,
    WorkflowSummary,
)
from engine.api.streams import KEEPALIVE, StreamHub, Subscription
from engine.errors import EngineError, InputsInvalid, Problem, WorkflowInvalid
from engine.fork import ForkInvalid, NotForkable
from engine.model import Workflow
from engine.reader import RunRecord
from engine.runtime import NotResumable, RunInfo, RunNotFound, Runtime
from engine.store import StoreError
from engine.validate import load_workflow

log = logging.getLogger("engine.api")

DOCS_ASSETS = "/docs/assets"  # Swagger UI's and ReDoc's scripts, from the fastapi-offline package
MAX_SEQ = 2**62  # bigger numbers than any seq; also keeps SQLite's 64-bit integers happy
MAX_ID_CHARS = 200
API_VERSION = "1"

ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"  # no control characters (PostgreSQL refuses NUL in text)
RunId = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN, description="a run id (POST /runs answers it)")
]
WorkflowId = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN, description="a saved workflow's id")
]

WORKFLOW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A workflow/v1 document (see docs: workflow file format). Unknown top-level keys are an error.",
    "properties": {
        "format": {"type": "string", "enum": ["workflow/v1"]},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "settings": {"type": "object"},
        "inputs": {"type": "object"},
        "nodes": {"type": "array", "items": {"type": "object"}},
        "edges": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["format", "name", "nodes"],
}


class ApiError(Exception):
    """An answer other than 2xx, with the problems behind it."""

    def __init__(self, status: int, detail: str, problems: Sequence[Problem] = ()):
        self.status = status
        self.detail = detail
        self.problems = list(problems)
        super().__init__(detail)


class JSON(JSONResponse):
    """Strict JSON that never fails on odd values: a bad value must not become a 500.

    Datetimes and other objects are written as their text. NaN and infinities,
    which strict JSON parsers reject, are written as ``null`` (the engine already
    turns them into null in outputs and events; this is the safety net for
    anything older or from elsewhere).
    """

    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
        except ValueError:  # a NaN or an infinity somewhere: rare, so only then walk the content
            text = json.dumps(_finite(content), ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
        return text.encode("utf-8")


def _finite(value: Any, depth: int = 0) -> Any:
    """``value`` with NaN and infinities replaced by None (in lists, tuples and dicts too)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth > 500:  # deeper than json.dumps goes anyway
        return value
    if isinstance(value, dict):
        return {_finite_key(k): _finite(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v, depth + 1) for v in value]
    return value


def _finite_key(key: Any) -> Any:
    return key if not isinstance(key, float) or math.isfinite(key) else str(key)


def _error(status: int, detail: str, problems: Sequence[Problem] = (), headers: dict[str, str] | None = None) -> JSON:
    body = {"detail": detail, "problems": [{"where": p.where, "message": p.message} for p in problems]}
    return JSON(body, status_code=status, headers=headers)


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in {
        400: "the body is not JSON",
        401: "missing or wrong API token",
        403: "sent by a page of an origin not in API_CORS_ORIGINS",
        404: "unknown id",
        409: "the run is in a state that does not allow this",
        413: "the body is over the size cap",
        415: "the body is not sent as Content-Type: application/json",
        422: "invalid workflow, inputs or parameters; `problems` lists every one",
        503: "the store or the memory package is unavailable",
    }.items()
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: ERRORS[code] for code in codes}


# --------------------------------------------------------------------------- helpers


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise ApiError(400, "the request needs a JSON body")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc) or type(exc).__name__
        raise ApiError(400, f"the body is not valid JSON: {reason}") from None


def _load(document: Any) -> Workflow:
    """Validate a document from a request (never a path: a string body is not read as a file)."""
    if not isinstance(document, dict):
        raise ApiError(
            422,
            "workflow is invalid (1 problem)",
            [Problem("document", f"must be a JSON object, got {type(document).__name__}")],
        )
    try:
        return load_workflow(document)
    except WorkflowInvalid as exc:
        raise ApiError(422, str(exc).splitlines()[0], exc.problems) from None
    except RecursionError:
        raise ApiError(422, "workflow is invalid (1 problem)", [Problem("document", "is nested too deeply")]) from None


def _valid_id(text: str) -> bool:
    return 0 < len(text) <= MAX_ID_CHARS and re.match(ID_PATTERN, text) is not None


def _run_out(info: RunInfo, row: RunRecord | None) -> dict[str, Any]:
    return {
        "run_id": info.run_id,
        "status": info.status,
        "workflow_id": row.workflow_id if row is not None else None,
        "workflow_version": row.workflow_version if row is not None else None,
        "workflow_name": info.workflow_name,
        "inputs": info.inputs,
        "result": info.result,
        "error": info.error,
        "error_node": info.error_node,
        "created_at": info.created_at,
        "started_at": (row.started_at if row is not None and row.started_at else None) or info.created_at,
        "finished_at": info.finished_at,
        "prompt_tokens": info.prompt_tokens,
        "completion_tokens": info.completion_tokens,
        "total_tokens": info.prompt_tokens + info.completion_tokens,
        "tokens_estimated": info.tokens_estimated,
        "failed_tokens": info.failed_tokens,
        "last_seq": info.last_seq,
        "forked_from": info.forked_from,
    }


def _row_info(row: RunRecord) -> RunInfo:
    return RunInfo.from_row(row)


def _plain(value: Any) -> Any:
    """A memory hit or agent (dict, dataclass, pydantic model, object) as JSON-able data."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if callable(getattr(value, "to_dict", None)) and not isinstance(value, type):
        return _plain(value.to_dict())
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if hasattr(value, "model_dump"):
        return _plain(value.model_dump())
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "__dict__"):
        return _plain({k: v for k, v in vars(value).items() if not k.startswith("_")})
    return str(value)


def _memory() -> Any:
    try:
        import memory
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        raise ApiError(
            503, f"agent memory is not available: the memory package cannot be imported ({type(exc).__name__})"
        ) from None
    if not callable(getattr(memory, "list_agents", None)) or getattr(memory, "MemoryManager", None) is None:
        raise ApiError(
            503, "agent memory is not available in this installation yet (memory.list_agents / MemoryManager missing)"
        )
    return memory


@contextmanager
def _memory_errors(memory: Any) -> Iterator[None]:
    """The memory package's own errors: bad input is a 422, anything else of its kind a 503."""
    base = getattr(memory, "MemoryStoreError", None)
    invalid = getattr(memory, "InvalidMemory", None)
    if not isinstance(base, type):
        yield
        return
    try:
        yield
    except base as exc:
        if isinstance(invalid, type) and isinstance(exc, invalid):
            raise ApiError(422, f"invalid memory request: {exc}") from None
        raise ApiError(503, f"agent memory is unavailable: {exc}") from None


def _agent_id(agent: Any) -> str | None:
    if isinstance(agent, str):
        return agent
    plain = _plain(agent)
    if isinstance(plain, dict):
        found = plain.get("agent_id") or plain.get("id") or plain.get("name")
        return str(found) if found is not None else None
    return None


# --------------------------------------------------------------------------- streaming responses


class EventStream(Response):
    """Server-Sent Events for one subscription; ends after the run's terminal event."""

    media_type = "text/event-stream"

    def __init__(self, sub: Subscription, keepalive_s: float):
        self.sub = sub
        self.keepalive_s = keepalive_s
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache", "x-accel-buffering": "no"})

    async def __call__(self, scope: Any, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        sub = self.sub

        async def watch_disconnect() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    sub.disconnect()
                    return

        watcher = asyncio.create_task(watch_disconnect())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for batch in sub.batches(self.keepalive_s):
                body = KEEPALIVE if batch is None else b"".join(frame.sse for frame in batch)
                await send({"type": "http.response.body", "body": body, "more_body": True})
            if not sub.gone:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away while we wrote
            pass
        finally:
            watcher.cancel()
            sub.close()


# --------------------------------------------------------------------------- the app


def create_app(
    runtime: Runtime,
    *,
    token: str | None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    keepalive_s: float = 15.0,
    cors_origins: Sequence[str] = (),
    allowed_hosts: Sequence[str] = LOCAL_HOSTS,
    body_timeout_s: float | None = None,
) -> FastAPI:
    """The API over ``runtime`` (which the caller owns and shuts down).

    Args:
        token: when set, every path but ``/health`` needs ``Authorization: Bearer <token>``
            (WebSockets may pass ``?token=``).
        max_body_bytes: request bodies over this are refused with 413.
        keepalive_s: an SSE comment is sent after this long without an event.
        cors_origins: origins allowed by CORS; none (CORS off) by default. Pages of other
            origins cannot change anything or open a WebSocket (403).
        allowed_hosts: the names the API may be reached by (``Host``, any port; ``*.suffix``
            and ``*`` match many); others get 400. :func:`engine.api.guards.allowed_hosts`
            builds the list from the bind address and ``API_ALLOWED_HOSTS``.
        body_timeout_s: a request body whose next piece takes longer than this gets 408.
    """
    hub = StreamHub(runtime)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        hub.close()

    app = FastAPIOffline(  # FastAPI with /docs and /redoc assets served from the package, not a CDN
        title="Agentic Workflow Studio API",
        version=API_VERSION,
        description="Run workflows, read and stream their events (SSE, WebSocket), share runs with the dashboard.",
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},  # no call to an online validator
    )
    app.state.runtime = runtime
    app.state.hub = hub

    # Middleware: the last added runs first. Host, then Origin (a foreign page is refused before
    # anything else); CORS outside auth, so it answers preflights (browsers send no token on them)
    # and adds its headers to 401s and 415s too; auth before the body is read.
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, read_timeout_s=body_timeout_s)
    app.add_middleware(JsonBodyOnly)
    if token:
        app.add_middleware(TokenAuth, token=token)
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["*"], allow_headers=["*"])
    app.add_middleware(OriginGuard, origins=list(cors_origins))
    app.add_middleware(HostGuard, hosts=list(allowed_hosts))

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSON:
        return _error(exc.status, exc.detail, exc.problems)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSON:
        problems = [
            Problem(".".join(str(part) for part in err.get("loc", ())), str(err.get("msg", ""))) for err in exc.errors()
        ]
        return _error(422, "invalid request parameters", problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSON:
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> JSON:
        return _error(503, f"the store is unavailable: {exc}")

    @app.exception_handler(EngineError)
    async def _engine_error(_request: Request, exc: EngineError) -> JSON:
        return _error(503, str(exc))

    @app.exception_handler(Exception)
    async def _internal(_request: Request, exc: Exception) -> JSON:
        log.error("internal error: %s: %s", type(exc).__name__, exc, exc_info=exc)
        return _error(500, "internal error; the server log has the details")

    # --- health, tools ---------------------------------------------------------------

    @app.get("/health", response_model=HealthOut, tags=["server"])
    def health() -> JSON:
        """Liveness; the one path that never needs the token."""
        return JSON({"status": "ok"})

    @app.get("/tools", response_model=list[ToolOut], tags=["tools"], responses=_errors(401))
    def list_tools() -> JSON:
        """Every registered tool: name, description and the JSON schema of its arguments."""
        return JSON(
            [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in tools.list_tools()]
        )

    # --- workflows ---------------------------------------------------------------------

    @app.get("/workflows", response_model=list[WorkflowSummary], tags=["workflows"], responses=_errors(401, 503))
    def list_workflows() -> JSON:
        """Saved workflows (not archived), most recently changed first."""
        rows = runtime.reader.workflows()
        return JSON(
            [
                {
                    "id": r.id,
                    "name": r.name,
                    "latest_version": r.latest_version,
                    "created_at": r.created_at,
                    "updated_at": r.updated_at,
                }
                for r in rows
            ]
        )

    @app.post(
        "/workflows",
        status_code=201,
        response_model=WorkflowSaved,
        tags=["workflows"],
        responses=_errors(400, 401, 403, 413, 415, 422, 503),
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": WORKFLOW_SCHEMA}}}},
    )
    async def save_workflow(request: Request) -> JSON:
        """Validate and save a document under its name; a changed document adds a version. Invalid: 422, not saved."""
        document = await _json_body(request)

        def work() -> Any:
            return runtime.save_workflow(_load(document).to_dict())

        ref = await run_in_threadpool(work)
        return JSON({"id": ref.id, "name": ref.name, "version": ref.version, "created": ref.created}, status_code=201)

    @app.get(
        "/workflows/{workflow_id}",
        response_model=WorkflowOut,
        tags=["workflows"],
        responses=_errors(401, 404, 422, 503),
    )
    def get_workflow(workflow_id: WorkflowId, version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> JSON:
        """A saved workflow's latest version, or version ``N`` with ``?version=N``."""
        row = runtime.reader.workflow(workflow_id)
        saved = runtime.reader.workflow_version(workflow_id, version) if row is not None else None
        if row is None or saved is None:
            if row is not None:
                raise ApiError(404, f"workflow '{workflow_id}' has no version {version}")
            raise ApiError(404, f"no workflow with id '{workflow_id}' (list them with GET /workflows)")
        versions = [v.version for v in runtime.reader.workflow_versions(workflow_id)]
        return JSON(
            {
                "id": row.id,
                "name": row.name,
                "version": saved.version,
                "latest_version": row.latest_version,
                "versions": versions,
                "created_at": saved.created_at,
                "document": saved.document,
            }
        )

    # --- runs ----------------------------------------------------------------------------

    @app.post(
        "/runs",
        status_code=202,
        response_model=RunStarted,
        tags=["runs"],
        responses=_errors(400, 401, 403, 404, 413, 415, 422, 503),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": RunRequest.model_json_schema()}},
            }
        },
    )
    async def start_run(request: Request) -> JSON:
        """Start a run of ``workflow`` (a document) or ``workflow_id`` (a saved workflow's latest version)."""
        body = await _json_body(request)
        try:
            req = RunRequest.model_validate(body)
        except ValidationError as exc:
            problems = [Problem("body" + "".join(f".{p}" for p in err["loc"]), err["msg"]) for err in exc.errors()]
            raise ApiError(422, "invalid run request", problems) from None
        if (req.workflow is None) == (req.workflow_id is None):
            raise ApiError(
                422,
                "invalid run request",
                [Problem("body", "give exactly one of 'workflow' (a document) or 'workflow_id'")],
            )
        if req.workflow_id is not None and not _valid_id(req.workflow_id):
            raise ApiError(404, "no workflow with that id (list them with GET /workflows)")

        def work() -> str:
            if req.workflow_id is not None:
                found = runtime.reader.workflow_version(req.workflow_id)
                if found is None:
                    raise ApiError(404, f"no workflow with id '{req.workflow_id}' (list them with GET /workflows)")
                workflow = _load(found.document)
            else:
                workflow = _load(req.workflow)
            try:
                return runtime.submit(workflow, req.inputs or {})
            except InputsInvalid as exc:
                raise ApiError(422, "inputs are invalid", exc.problems) from None
            except WorkflowInvalid as exc:
                raise ApiError(422, str(exc).splitlines()[0], exc.problems) from None

        run_id = await run_in_threadpool(work)
        return JSON({"run_id": run_id}, status_code=202)

    @app.get("/runs", response_model=list[RunOut], tags=["runs"], responses=_errors(401, 422, 503))
    def list_runs(
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        status: RunStatus | None = None,
        workflow_id: Annotated[str | None, Query(max_length=MAX_ID_CHARS, pattern=ID_PATTERN)] = None,
    ) -> JSON:
        """Recent runs, newest first, optionally by status or workflow."""
        rows = runtime.reader.runs(limit=limit, status=status, workflow_id=workflow_id)
        live = set(runtime.running())
        out = []
        for row in rows:
            info = runtime.status(row.run_id) if row.run_id in live else None
            out.append(_run_out(info or _row_info(row), row))
        return JSON(out)

    def _status_or_404(run_id: str) -> RunInfo:
        info = runtime.status(run_id)
        if info is None:
            raise ApiError(404, f"no run with id '{run_id}' (list runs with GET /runs)")
        return info

    @app.get("/runs/{run_id}", response_model=RunOut, tags=["runs"], responses=_errors(401, 404, 422, 503))
    def get_run(run_id: RunId) -> JSON:
        """A run's status, inputs, result, error, times and token totals."""
        info = _status_or_404(run_id)
        return JSON(_run_out(info, runtime.reader.run(run_id)))

    @app.get(
        "/runs/{run_id}/events",
        response_model=list[EventOut],
        tags=["runs"],
        responses={
            200: {
                "description": "a JSON list of events; with `Accept: text/event-stream`, a live SSE stream "
                "(`id:` seq, `event:` type, `data:` the event JSON) that ends after the run's terminal event",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            204: {"description": "SSE only: the run is over and nothing is left after `after` / Last-Event-ID"},
            **_errors(400, 401, 404, 422, 503),
        },
    )
    async def run_events(
        request: Request,
        run_id: RunId,
        after: Annotated[int, Query(ge=0, le=MAX_SEQ, description="only events with a greater seq")] = 0,
        last_event_id: Annotated[
            str | None, Header(alias="Last-Event-ID", description="SSE reconnect: wins over `after`")
        ] = None,
    ) -> Response:
        """The run's events after ``after``; streamed live as SSE when the client accepts ``text/event-stream``.

        SSE on a run that is over with nothing after the client's position answers 204, the one
        answer that makes a browser's ``EventSource`` stop reconnecting.
        """
        info = await run_in_threadpool(_status_or_404, run_id)
        if "text/event-stream" in request.headers.get("accept", "").lower():
            start = after
            if last_event_id is not None and last_event_id.strip():
                text = last_event_id.strip()
                if not (text.isascii() and text.isdigit()) or int(text) > MAX_SEQ:
                    raise ApiError(
                        400, "Last-Event-ID must be the seq (a non-negative integer) of the last event received"
                    )
                start = int(text)
            if info.finished and info.last_seq <= start:
                return Response(status_code=204, headers={"cache-control": "no-cache"})
            return EventStream(hub.subscribe(run_id, start), keepalive_s)
        events = await run_in_threadpool(runtime.events_since, run_id, after)
        return JSON([e.to_dict() for e in events])

    @app.websocket("/runs/{run_id}/ws")
    async def run_ws(websocket: WebSocket, run_id: str, after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0) -> None:
        """The same sequence as SSE, one event JSON per text message; closed (1000) after the terminal event."""
        if not _valid_id(run_id) or await run_in_threadpool(runtime.status, run_id) is None:
            detail = f"no run with id '{run_id[:MAX_ID_CHARS]}'"
            if "websocket.http.response" in (websocket.scope.get("extensions") or {}):
                await websocket.send_denial_response(_error(404, detail))
            else:
                await websocket.close(code=4404, reason=detail[:120])
            return
        await websocket.accept()
        sub = hub.subscribe(run_id, after)

        async def watch_disconnect() -> None:
            try:
                while (await websocket.receive())["type"] != "websocket.disconnect":
                    pass
            except (WebSocketDisconnect, RuntimeError, OSError):
                pass
            finally:
                sub.disconnect()

        watcher = asyncio.create_task(watch_disconnect())
        try:
            async for batch in sub.batches(keepalive_s):
                for frame in batch or ():
                    await websocket.send_text(frame.json)
            if not sub.gone:  # 1000: the run is over; 1001: the server is going away first
                await websocket.close(code=1000 if sub.feed.done else 1001)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            watcher.cancel()
            sub.close()

    @app.post(
        "/runs/{run_id}/cancel",
        status_code=202,
        response_model=RunStateOut,
        tags=["runs"],
        responses={
            200: {"model": RunStateOut, "description": "the run had already ended; it is left unchanged"},
            **_errors(401, 404, 409, 422, 503),
        },
    )
    def cancel_run(run_id: RunId) -> JSON:
        """Cancel a queued or running run (202); a run that already ended is left as it is (200)."""
        info = _status_or_404(run_id)
        if info.status not in ("running", "queued"):
            return JSON({"run_id": run_id, "status": info.status}, status_code=200)
        if runtime.cancel(run_id):
            return JSON({"run_id": run_id, "status": "cancelling"}, status_code=202)
        info = _status_or_404(run_id)
        if info.status not in ("running", "queued"):  # it ended meanwhile
            return JSON({"run_id": run_id, "status": info.status}, status_code=200)
        raise ApiError(409, f"run '{run_id}' is running in another process (e.g. the dashboard); cancel it there")

    @app.post(
        "/runs/{run_id}/resume",
        status_code=202,
        response_model=RunStarted,
        tags=["runs"],
        responses=_errors(401, 404, 409, 422, 503),
    )
    def resume_run(run_id: RunId) -> JSON:
        """Continue an interrupted or failed run from its last committed state (202); others: 409."""
        info = _status_or_404(run_id)
        if info.status == "running":
            raise ApiError(409, f"run '{run_id}' is running; only interrupted or failed runs can be resumed")
        _wait_row_settled(run_id, info.status)
        try:
            runtime.resume(run_id)
        except RunNotFound as exc:
            raise ApiError(404, str(exc)) from None
        except NotResumable as exc:
            raise ApiError(409, str(exc)) from None
        except WorkflowInvalid as exc:
            raise ApiError(409, "the run's workflow version no longer validates", exc.problems) from None
        return JSON({"run_id": run_id}, status_code=202)

    @app.post(
        "/runs/{run_id}/rerun",
        status_code=202,
        response_model=RunStarted,
        tags=["runs"],
        responses=_errors(400, 401, 403, 404, 409, 413, 415, 422, 503),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": RerunRequest.model_json_schema(by_alias=True)}},
            }
        },
    )
    async def rerun_run(request: Request, run_id: RunId) -> JSON:
        """Rerun a completed, failed or cancelled run from node ``from`` as a new run (202 ``{"run_id"}``).

        Nodes ``from`` does not depend on reuse their outputs (``outputs`` pins some to other values);
        ``from`` and everything downstream run again, ``config`` editing ``from`` for this run only.
        Unknown node or a bad pin or config: 422 listing every problem; a run still running or interrupted: 409.
        """
        body = await _json_body(request)
        try:
            req = RerunRequest.model_validate(body)
        except ValidationError as exc:
            problems = [Problem("body" + "".join(f".{p}" for p in err["loc"]), err["msg"]) for err in exc.errors()]
            raise ApiError(422, "invalid rerun request", problems) from None

        def work() -> str:
            info = _status_or_404(run_id)
            if info.status == "running":
                raise ApiError(409, f"run '{run_id}' is running; only completed, failed or cancelled runs can be rerun")
            _wait_row_settled(run_id, info.status)
            try:
                return runtime.rerun(run_id, req.from_, outputs=req.outputs, config=req.config)
            except RunNotFound as exc:
                raise ApiError(404, str(exc)) from None
            except NotForkable as exc:
                raise ApiError(409, str(exc)) from None
            except ForkInvalid as exc:
                raise ApiError(422, str(exc).splitlines()[0], exc.problems) from None

        new_id = await run_in_threadpool(work)
        return JSON({"run_id": new_id}, status_code=202)

    def _wait_row_settled(run_id: str, status: str, timeout_s: float = 5.0) -> None:
        """The runtime knows a run ended before its store row is committed; resume reads the row."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            row = runtime.reader.run(run_id)
            if row is None or row.status == status or row.status != "running":
                return
            time.sleep(0.02)

    # --- memory ------------------------------------------------------------------------------

    @app.get("/memory/agents", response_model=list[Any], tags=["memory"], responses=_errors(401, 503))
    def memory_agents() -> JSON:
        """Agents that have long-term memories."""
        memory = _memory()
        with _memory_errors(memory):
            return JSON([_plain(agent) for agent in memory.list_agents()])

    @app.get("/memory/{agent_id}", response_model=MemoryOut, tags=["memory"], responses=_errors(401, 404, 422, 503))
    def memory_recall(
        agent_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN)],
        query: Annotated[
            str | None, Query(max_length=4000, description="recall by meaning; without it, list memories")
        ] = None,
        k: Annotated[int, Query(ge=1, le=100, description="how many hits")] = 5,
        offset: Annotated[int, Query(ge=0, le=1_000_000, description="listing only: skip this many")] = 0,
    ) -> JSON:
        """An agent's memories: the ``k`` best hits for ``query`` (with scores and provenance), else a page of them."""
        memory = _memory()
        with _memory_errors(memory):
            known = {_agent_id(agent) for agent in memory.list_agents()}
            if agent_id not in known:
                raise ApiError(404, f"no memories for agent '{agent_id}' (list agents with GET /memory/agents)")
            manager = memory.MemoryManager(agent_id)
            if query and query.strip():
                hits = manager.recall(query, n_results=k)
            else:
                hits = manager.list_memories(offset=offset, limit=k)
        return JSON({"agent_id": agent_id, "query": query or None, "hits": [_plain(hit) for hit in hits]})

    return app


__all__ = ["ApiError", "create_app"]
