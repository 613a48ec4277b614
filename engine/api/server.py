"""``serve()``: the HTTP API on uvicorn, with its own Runtime over the dashboard's store.

The bind rule: 127.0.0.1 (the default) needs no token; any other address
(127.0.0.2, 0.0.0.0, ::1, a LAN address) refuses to start unless
``API_TOKEN`` is set, and then every path but ``/health`` needs
``Authorization: Bearer <API_TOKEN>``. A token set while bound to 127.0.0.1
is enforced too.

Whatever the address and the token, requests must name an allowed host
(``Host``: loopback names, the bound address, ``API_ALLOWED_HOSTS``), pages of
foreign origins cannot change anything or open a WebSocket, and bodies must be
``application/json`` (see :mod:`engine.api.guards`).

Environment: ``API_TOKEN``; ``API_MAX_BODY_BYTES`` (request body cap, default
1 MiB); ``API_CORS_ORIGINS`` (comma-separated origins; CORS is off when
unset); ``API_ALLOWED_HOSTS`` (comma-separated extra host names, ``*.suffix``
allowed); ``API_SSE_KEEPALIVE_S`` (seconds between SSE keep-alive comments
on an idle stream, default 15); ``API_CONN_TIMEOUT_S`` (seconds a connection
may stay idle, take to send a request's headers, or pause within a body,
default 5);
``API_MAX_CONNECTIONS`` (connections and requests at once before new requests
get 503, default 500); ``DATABASE_URL`` / ``DATA_DIR`` as for the dashboard
and the CLI.

The port is bound before anything is announced: a busy port or an address
that cannot be bound is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import errno
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

import uvicorn

from engine.api.app import create_app
from engine.api.auth import LOOPBACK, install_log_redaction, needs_token
from engine.api.guards import allowed_hosts
from engine.api.protocol import protocol_class
from engine.config import ConfigInvalid, Settings
from engine.queue import QueueModeInvalid, open_runtime
from engine.store import StoreError, StoreUrlInvalid

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
DEFAULT_PORT = 8787
DEFAULT_CONN_TIMEOUT_S = 5
DEFAULT_MAX_CONNECTIONS = 500


class _Server(uvicorn.Server):
    """uvicorn's server, ending every live stream as soon as shutdown begins."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None], announce: str):
        super().__init__(config)
        self._on_shutdown = on_shutdown
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:  # listening: only now is it true that the API is served
            print(self._announce, file=sys.stderr, flush=True)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._on_shutdown()
        await super().shutdown(sockets=sockets)


def serve(
    host: str = LOOPBACK,
    port: int = DEFAULT_PORT,
    *,
    database_url: str | None = None,
    log_level: str = "info",
    settings: Settings | None = None,
) -> int:
    """Run the API until interrupted; returns the process exit code (2: refused to start).

    ``settings`` (default: read from the environment now, :mod:`engine.config`) give the token, the limits
    and the runtime's configuration.
    """
    if settings is None:
        try:
            settings = Settings.from_env()
        except ConfigInvalid as exc:
            print(exc, file=sys.stderr)
            return EXIT_INVALID
    api = settings.api
    token = api.token or None
    if needs_token(host) and not token:
        print(
            f"refusing to listen on {host}: any address but {LOOPBACK} needs API_TOKEN set "
            "(then clients send 'Authorization: Bearer <API_TOKEN>')",
            file=sys.stderr,
        )
        return EXIT_INVALID
    max_body, keepalive_s = api.max_body_bytes, api.sse_keepalive_s
    conn_timeout, max_connections = api.conn_timeout_s, api.max_connections
    origins = list(api.cors_origins)
    hosts = allowed_hosts(host, list(api.allowed_hosts))
    try:
        sock = bind(host, port)
    except OSError as exc:
        print(bind_error(host, port, exc), file=sys.stderr)
        return EXIT_INVALID
    try:
        runtime = open_runtime(database_url, settings=settings)  # runs in this process, or queued for workers
    except QueueModeInvalid as exc:
        sock.close()
        print(f"queue mode: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except StoreError as exc:
        sock.close()
        print(f"store: {exc}", file=sys.stderr)
        return EXIT_INVALID if isinstance(exc, StoreUrlInvalid) else EXIT_FAILED
    server: _Server | None = None
    try:
        app = create_app(
            runtime,
            token=token,
            max_body_bytes=max_body,
            keepalive_s=keepalive_s,
            cors_origins=origins,
            allowed_hosts=hosts,
            body_timeout_s=conn_timeout,
        )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            timeout_graceful_shutdown=3,
            server_header=False,
            http=protocol_class(conn_timeout),
            timeout_keep_alive=conn_timeout,
            limit_concurrency=max_connections,
        )
        install_log_redaction()  # after Config, which (re)configures uvicorn's loggers
        shown = f"[{host}]" if ":" in host else host
        announce = (
            f"API on http://{shown}:{sock.getsockname()[1]} (docs: /docs); "
            f"token {'required' if token else 'not required'}; "
            f"hosts: {', '.join(hosts)}; store: {runtime.reader.location.split('@')[-1]}"
        )
        server = _Server(config, on_shutdown=app.state.api.hub.close, announce=announce)
        # uvicorn handles SIGINT/SIGTERM itself, then re-raises the signal once it has stopped;
        # a SIGTERM handler of ours turns that into KeyboardInterrupt so the runtime below is
        # shut down (runs cancelled, every event committed) instead of the process dying.
        previous = _on_sigterm(_interrupt) if threading.current_thread() is threading.main_thread() else None
        try:
            server.run(sockets=[sock])
        except SystemExit:  # uvicorn exits this way when it cannot start (port in use, ...)
            return EXIT_FAILED
        except KeyboardInterrupt:
            pass
        finally:
            if previous is not None:
                _on_sigterm(previous)
    finally:
        sock.close()
        runtime.shutdown()
    return EXIT_OK if server is not None and server.started else EXIT_FAILED


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening; uvicorn listens on it)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is not busy
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def bind_error(host: str, port: int, exc: OSError) -> str:
    """One line a user can act on for a failed bind."""
    shown = f"[{host}]" if ":" in host else host
    if exc.errno == errno.EADDRINUSE:
        return f"cannot serve on {shown}:{port}: the port is in use (another server?); choose one with --port"
    if exc.errno == errno.EACCES:
        return f"cannot serve on {shown}:{port}: permission denied (ports below 1024 need privileges); use --port"
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return f"cannot serve on {shown}:{port}: no such address on this machine; check --host"
    return f"cannot serve on {shown}:{port}: {exc.strerror or exc}"


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _on_sigterm(handler: Any) -> Any:
    return signal.signal(signal.SIGTERM, handler)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` options, shared by ``python -m engine serve`` and ``python -m engine.api``."""
    parser.add_argument(
        "--host",
        default=LOOPBACK,
        help=f"address to bind (default {LOOPBACK}; any other needs API_TOKEN; names clients use: API_ALLOWED_HOSTS)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--db", metavar="URL", help="store URL (default: DATABASE_URL, else $DATA_DIR/studio.db)")
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug", "trace"]
    )


def run_from_args(args: argparse.Namespace) -> int:
    return serve(args.host, args.port, database_url=args.db, log_level=args.log_level)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.api", description="Serve the HTTP API.")
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


__all__ = ["add_arguments", "main", "run_from_args", "serve"]
