"""The HTTP API as a FastAPI app over one :class:`~engine.runtime.Runtime`: :func:`create_app` assembles it.

The routes live in :mod:`engine.api.routes`, one router per resource (see docs/api.md for the table):

- ``routes/health.py``: ``GET /health``
- ``routes/tools.py``: ``GET /tools``
- ``routes/workflows.py``: ``GET /workflows``, ``POST /workflows``, ``GET /workflows/{id}[?version=N]``
- ``routes/runs.py``: ``POST /runs``, ``GET /runs``, ``GET /runs/{id}``,
  ``POST /runs/{id}/cancel``, ``POST /runs/{id}/resume``, ``POST /runs/{id}/rerun``
- ``routes/events.py``: ``GET /runs/{id}/events?after=SEQ`` (a JSON list, or Server-Sent Events with
  ``Accept: text/event-stream``), ``WS /runs/{id}/ws?after=SEQ``
- ``routes/memory.py``: ``GET /memory/agents``, ``GET /memory/{agent_id}?query=&k=``

They get the runtime, the stream hub and the SSE keep-alive through :mod:`engine.api.deps`
(``app.state.api``), answer their ``response_model`` (:mod:`engine.api.schemas`) and report
everything else through :mod:`engine.api.errors` as ``{"detail": str, "problems": [{"where",
"message"}]}``: 400 for a body that is not JSON or a ``Host`` that is not allowed, 401 for a missing
or wrong token, 403 for a state-changing request or a WebSocket from a page of a foreign origin, 404
for unknown ids, 409 for a state conflict (resume a completed run), 413 for a body over the cap, 415
for a body that is not sent as ``application/json``, 422 for an invalid workflow, inputs or parameters
(``problems`` lists every one), 503 when the store or the memory package is unavailable.
``engine.api.guards`` says why the Host, Origin and Content-Type rules exist.

``/docs`` (Swagger UI) and ``/redoc`` are served with their scripts from the ``fastapi-offline``
package, so they work with no internet.

Handlers that touch the store or the runtime's blocking calls are plain ``def`` functions or hand
their work to the thread pool, so the event loop only ever streams.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from engine.api.auth import DEFAULT_MAX_BODY_BYTES, BodyLimit, TokenAuth
from engine.api.deps import ApiContext
from engine.api.errors import ApiError, install_error_handlers
from engine.api.guards import LOCAL_HOSTS, HostGuard, JsonBodyOnly, OriginGuard
from engine.api.routes import ROUTERS
from engine.api.streams import StreamHub
from engine.runtime import Runtime

DOCS_ASSETS = "/docs/assets"  # Swagger UI's and ReDoc's scripts, from the fastapi-offline package
API_VERSION = "1"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.api.hub.close()


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
    app = FastAPIOffline(  # FastAPI with /docs and /redoc assets served from the package, not a CDN
        title="Agentic Workflow Studio API",
        version=API_VERSION,
        description="Run workflows, read and stream their events (SSE, WebSocket), share runs with the dashboard.",
        lifespan=_lifespan,
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},  # no call to an online validator
    )
    hub = StreamHub(runtime)
    app.state.api = ApiContext(runtime=runtime, hub=hub, keepalive_s=keepalive_s)

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

    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


__all__ = ["ApiError", "create_app"]
