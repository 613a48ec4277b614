"""uvicorn's HTTP protocol with a deadline on request headers.

Why this module exists: uvicorn's ``timeout_keep_alive`` only closes a
connection that is idle *after* a response. A connection that never sends a
request, or sends its headers a byte at a time, is never timed out: 500 such
connections stayed open for as long as their clients liked, each holding a
file descriptor and counting against ``limit_concurrency`` (so they can lock
every real client out with 503s). :func:`protocol_class` returns uvicorn's
protocol (httptools when installed, else h11) with one more timer: armed when
a connection opens and after each response, cancelled once a request's
headers are complete, and closing the connection when it fires.
"""

from __future__ import annotations

import asyncio
from typing import Any


def protocol_class(header_timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class whose connections must send complete headers within ``header_timeout_s``."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is optional in uvicorn
        return _h11_class(header_timeout_s)

    class HeaderDeadlineHttpTools(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            _arm(self, header_timeout_s)

        def on_headers_complete(self) -> None:
            _disarm(self)
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            _arm_for_next(self, header_timeout_s)

        def connection_lost(self, exc: Exception | None) -> None:
            _disarm(self)
            super().connection_lost(exc)

    return HeaderDeadlineHttpTools


def _h11_class(header_timeout_s: float) -> type[asyncio.Protocol]:
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadlineH11(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            _arm(self, header_timeout_s)

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE:  # a request's headers have arrived
                _disarm(self)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            _arm_for_next(self, header_timeout_s)

        def connection_lost(self, exc: Exception | None) -> None:
            _disarm(self)
            super().connection_lost(exc)

    return HeaderDeadlineH11


def _arm(protocol: Any, timeout_s: float) -> None:
    _disarm(protocol)
    protocol._deadline = protocol.loop.call_later(timeout_s, _expire, protocol)


def _arm_for_next(protocol: Any, timeout_s: float) -> None:
    """After a response: the next request's headers are due, unless one (pipelined) is already under way."""
    cycle = getattr(protocol, "cycle", None)
    if not protocol.transport.is_closing() and (cycle is None or cycle.response_complete):
        _arm(protocol, timeout_s)


def _disarm(protocol: Any) -> None:
    if protocol._deadline is not None:
        protocol._deadline.cancel()
        protocol._deadline = None


def _expire(protocol: Any) -> None:
    protocol._deadline = None
    if not protocol.transport.is_closing():
        protocol.transport.close()


__all__ = ["protocol_class"]
