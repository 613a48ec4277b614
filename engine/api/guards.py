"""Who may talk to the API at all: the name it was reached by, the page that sent a request, the body's type.

Why this module exists: the API binds 127.0.0.1 with no token by default, and a
browser lets any web page the user visits send requests there. Three guards,
all plain ASGI middleware (so they cover WebSockets, ``/docs`` and
``/openapi.json`` too), stop that whether or not a token is set:

- :class:`HostGuard` answers 400 when the ``Host`` header is not the bound
  address, ``localhost``, ``127.0.0.1``, ``[::1]`` or a name in
  ``API_ALLOWED_HOSTS`` (any port). A DNS-rebinding page reaches the API
  under its own name, so it is refused before it can read anything.
- :class:`OriginGuard` answers 403 to every request that may change state
  (any method but GET and HEAD) and to every WebSocket handshake whose
  ``Origin`` is present, is not the API's own origin and is not in
  ``API_CORS_ORIGINS``. Browsers always send ``Origin`` on those; tools such
  as curl send none and are not affected.
- :class:`JsonBodyOnly` answers 415 to a request with a body whose
  ``Content-Type`` is not ``application/json``. A page can send
  ``text/plain``, form or multipart bodies cross-origin without a CORS
  preflight ("simple requests"); it cannot send ``application/json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from engine.api.auth import ASGIApp, Receive, Scope, Send, refuse

LOCAL_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names, not a bind
SAFE_METHODS = frozenset({"GET", "HEAD"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def split_host(header: str) -> tuple[str, int | None] | None:
    """``name[:port]`` or ``[v6][:port]`` as (lower-case name without brackets, port); None if malformed."""
    try:
        parts = urlsplit(f"//{header.strip()}")
        name, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not name or parts.username is not None or parts.password is not None or parts.path or parts.query:
        return None
    return name.lower(), port


def allowed_hosts(bind: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The names a request may reach the API by: loopback names, the bound address, ``API_ALLOWED_HOSTS``."""
    names = list(LOCAL_HOSTS)
    bound = bind.strip().strip("[]").lower()
    if bound not in WILDCARD_BINDS:
        names.append(bound)
    names.extend(n.strip().strip("[]").lower().rstrip(".") for n in extra if n.strip())
    return tuple(dict.fromkeys(names))


def host_allowed(name: str, patterns: Sequence[str]) -> bool:
    """``name`` equals a pattern, or a pattern is ``*.suffix`` it ends with, or a pattern is ``*``."""
    name = name.rstrip(".")
    for pattern in patterns:
        if pattern == "*" or name == pattern or (pattern.startswith("*.") and name.endswith(pattern[1:])):
            return True
    return False


def _origin_key(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin such as ``http://ui.example:8080``; None when it is not one."""
    try:
        parts = urlsplit(url.strip())
        scheme, name, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:
        return None
    if scheme not in DEFAULT_PORTS or not name:
        return None
    return scheme, name.lower(), port if port is not None else DEFAULT_PORTS[scheme]


class HostGuard:
    """400 for any request (HTTP or WebSocket) whose ``Host`` is missing or not an allowed name."""

    def __init__(self, app: ASGIApp, hosts: Sequence[str]):
        self.app = app
        self.hosts = tuple(hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"host")
        parsed = split_host(header) if header is not None else None
        if parsed is not None and host_allowed(parsed[0], self.hosts):
            await self.app(scope, receive, send)
            return
        shown = (header or "")[:100]
        detail = (
            f"Host '{shown}' is not allowed: use 127.0.0.1, localhost or the bound address, "
            "or add the name to API_ALLOWED_HOSTS"
        )
        await refuse(scope, receive, send, 400, detail)


class OriginGuard:
    """403 for a state-changing request or a WebSocket handshake from a page of a foreign origin."""

    def __init__(self, app: ASGIApp, origins: Sequence[str]):
        self.app = app
        self.any_origin = any(o.strip() == "*" for o in origins)
        self.origins = {key for key in (_origin_key(o) for o in origins) if key is not None}

    def allowed(self, scope: Scope, origin: str) -> bool:
        if self.any_origin:
            return True
        key = _origin_key(origin)
        if key is None:  # "null" (sandboxed frames, file: pages) or garbage
            return False
        if key in self.origins:
            return True
        # Same origin: a page the API itself serves (/docs "Try it out"). The Host was checked already.
        scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
        host = split_host(_header(scope, b"host") or "")
        if host is None or scheme not in DEFAULT_PORTS:
            return False
        return key == (scheme, host[0], host[1] if host[1] is not None else DEFAULT_PORTS[scheme])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or (kind == "http" and scope.get("method") in SAFE_METHODS):
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        if origin is None or self.allowed(scope, origin):
            await self.app(scope, receive, send)
            return
        detail = f"requests from pages of origin '{origin[:100]}' are refused; allow an origin with API_CORS_ORIGINS"
        await refuse(scope, receive, send, 403, detail)


def is_json(content_type: str | None) -> bool:
    """``application/json``, parameters (``; charset=utf-8``) allowed."""
    return content_type is not None and content_type.split(";", 1)[0].strip().lower() == "application/json"


class JsonBodyOnly:
    """415 for an HTTP request that has a body whose ``Content-Type`` is not ``application/json``."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope) or is_json(_header(scope, b"content-type")):
            await self.app(scope, receive, send)
            return
        shown = (_header(scope, b"content-type") or "none")[:100]
        detail = f"the body must be JSON sent with 'Content-Type: application/json' (got {shown})"
        await refuse(scope, receive, send, 415, detail)


def _has_body(scope: Scope) -> bool:
    if _header(scope, b"transfer-encoding") is not None:
        return True
    length = _header(scope, b"content-length")
    if length is None:
        return False
    return length.strip() != "0"


__all__ = ["HostGuard", "JsonBodyOnly", "OriginGuard", "allowed_hosts", "host_allowed", "is_json", "split_host"]
