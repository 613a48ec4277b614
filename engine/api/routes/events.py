"""A run's events: ``GET /runs/{id}/events`` (a JSON list, or live Server-Sent Events) and ``WS /runs/{id}/ws``.

Both streams come from the app's :class:`~engine.api.streams.StreamHub` (one feed thread per watched run,
shared by its subscribers) and end after the run's terminal event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from engine.api.deps import MAX_ID_CHARS, MAX_SEQ, HubDep, KeepaliveDep, RunId, RuntimeDep, status_or_404, valid_id
from engine.api.errors import ApiError, error_response, errors
from engine.api.schemas import EventOut
from engine.api.streams import KEEPALIVE, Subscription

router = APIRouter(tags=["runs"])


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


def _start_seq(after: int, last_event_id: str | None) -> int:
    """Where an SSE stream starts: ``Last-Event-ID`` (a reconnect) wins over ``after``."""
    if last_event_id is None or not last_event_id.strip():
        return after
    text = last_event_id.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_SEQ:
        raise ApiError(400, "Last-Event-ID must be the seq (a non-negative integer) of the last event received")
    return int(text)


@router.get(
    "/runs/{run_id}/events",
    response_model=list[EventOut],
    responses={
        200: {
            "description": "a JSON list of events; with `Accept: text/event-stream`, a live SSE stream "
            "(`id:` seq, `event:` type, `data:` the event JSON) that ends after the run's terminal event",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        204: {"description": "SSE only: the run is over and nothing is left after `after` / Last-Event-ID"},
        **errors(400, 401, 404, 422, 503),
    },
)
async def run_events(
    request: Request,
    runtime: RuntimeDep,
    hub: HubDep,
    keepalive_s: KeepaliveDep,
    run_id: RunId,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ, description="only events with a greater seq")] = 0,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", description="SSE reconnect: wins over `after`")
    ] = None,
) -> list[EventOut] | Response:
    """The run's events after ``after``; streamed live as SSE when the client accepts ``text/event-stream``.

    SSE on a run that is over with nothing after the client's position answers 204, the one
    answer that makes a browser's ``EventSource`` stop reconnecting.
    """
    info = await run_in_threadpool(status_or_404, runtime, run_id)
    if "text/event-stream" in request.headers.get("accept", "").lower():
        start = _start_seq(after, last_event_id)
        if info.finished and info.last_seq <= start:
            return Response(status_code=204, headers={"cache-control": "no-cache"})
        return EventStream(hub.subscribe(run_id, start), keepalive_s)
    events = await run_in_threadpool(runtime.events_since, run_id, after)
    return [EventOut.model_validate(e.to_dict()) for e in events]


@router.websocket("/runs/{run_id}/ws")
async def run_ws(
    websocket: WebSocket,
    runtime: RuntimeDep,
    hub: HubDep,
    keepalive_s: KeepaliveDep,
    run_id: str,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
) -> None:
    """The same sequence as SSE, one event JSON per text message; closed (1000) after the terminal event."""
    if not valid_id(run_id) or await run_in_threadpool(runtime.status, run_id) is None:
        detail = f"no run with id '{run_id[:MAX_ID_CHARS]}'"
        if "websocket.http.response" in (websocket.scope.get("extensions") or {}):
            await websocket.send_denial_response(error_response(404, detail))
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
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        try:
            async for batch in sub.batches(keepalive_s):
                for frame in batch or ():
                    await websocket.send_text(frame.json)
            if not sub.gone:  # 1000: the run is over; 1001: the server is going away first
                await websocket.close(code=1000 if sub.feed.done else 1001)
        finally:
            watcher.cancel()
            sub.close()
