"""The API's guards: the bind rule, the bearer token, the body cap, refusals, and log redaction.

All of them are plain ASGI middleware or helpers, so they cover every route
FastAPI adds on its own (``/openapi.json``, ``/docs``) and WebSockets too.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK = "127.0.0.1"
OPEN_PATHS = frozenset({"/health"})
DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # 1 MiB; API_MAX_BODY_BYTES changes it


def needs_token(host: str) -> bool:
    """Any bind address but 127.0.0.1 (127.0.0.2, 0.0.0.0, ::1, a LAN address...) needs API_TOKEN."""
    return host != LOOPBACK


def token_ok(given: str | bytes | None, token: str) -> bool:
    """Constant-time comparison of a presented token with the configured one."""
    if given is None:
        return False
    raw = given if isinstance(given, bytes) else given.encode("utf-8", "surrogateescape")
    return hmac.compare_digest(raw, token.encode("utf-8"))


def _bearer(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers") or ():
        if name.lower() == b"authorization":
            scheme, _, credentials = value.strip().partition(b" ")
            if scheme.lower() == b"bearer":
                return credentials.strip()
            return None
    return None


def _query_token(scope: Scope) -> str | None:
    query = scope.get("query_string") or b""
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if key == "token":
            return value
    return None


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload, "more_body": False})


async def refuse(
    scope: Scope, receive: Receive, send: Send, status: int, detail: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """Answer ``{"detail": detail}`` with ``status``; a WebSocket is refused during its handshake.

    A refused WebSocket gets the HTTP status instead of the upgrade (or, where
    the server cannot send a response, is closed with 1008), so it never
    receives an event.
    """
    if scope["type"] == "http":
        await _send_json(send, status, {"detail": detail}, headers)
        return
    message = await receive()  # websocket.connect
    if message.get("type") != "websocket.connect":
        return
    if "websocket.http.response" in (scope.get("extensions") or {}):
        payload = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *headers],
            }
        )
        await send({"type": "websocket.http.response.body", "body": payload, "more_body": False})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": detail.encode()[:120].decode("utf-8", "ignore")})


UNAUTHORIZED = {"detail": "missing or wrong API token: send the header 'Authorization: Bearer <API_TOKEN>'"}


class TokenAuth:
    """Require ``Authorization: Bearer <token>`` on every path but ``/health``.

    WebSocket clients may pass ``?token=`` instead (browsers cannot set
    headers on a WebSocket). A refused WebSocket is answered with HTTP 401
    during the handshake (or closed with 1008 where the server cannot send a
    response), so it never receives an event.
    """

    def __init__(self, app: ASGIApp, token: str):
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if token_ok(_bearer(scope), self.token) or (kind == "websocket" and token_ok(_query_token(scope), self.token)):
            await self.app(scope, receive, send)
            return
        await refuse(scope, receive, send, 401, UNAUTHORIZED["detail"], ((b"www-authenticate", b"Bearer"),))


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, before any handler reads them.

    With ``read_timeout_s``, a body whose next piece takes longer than that to
    arrive is answered 408 and its connection closed (a client that sends its
    headers and then trickles or stops would otherwise hold it for ever).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, read_timeout_s: float | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        too_big = {"detail": f"request body is larger than the limit of {self.max_bytes} bytes (API_MAX_BODY_BYTES)"}
        for name, value in scope.get("headers") or ():
            if name.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json(send, 400, {"detail": "Content-Length is not a number"})
                    return
                if declared > self.max_bytes:
                    await _send_json(send, 413, too_big, ((b"connection", b"close"),))
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout_s)
            except TimeoutError:
                stalled = f"the request body stopped arriving for {self.read_timeout_s:g} s (API_CONN_TIMEOUT_S)"
                slow = {"detail": stalled}
                await _send_json(send, 408, slow, ((b"connection", b"close"),))
                return
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await _send_json(send, 413, too_big, ((b"connection", b"close"),))
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


_TOKEN_IN_URL = re.compile(r"([?&]token=)[^&\s\"']*", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide the value of any ``token`` query parameter in a URL or log line."""
    return _TOKEN_IN_URL.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    """A logging filter for uvicorn's access and error logs: ``?token=...`` never reaches a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "token=" in record.msg.lower():
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) and "token=" in a.lower() else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def install_log_redaction() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn", "engine.api"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
