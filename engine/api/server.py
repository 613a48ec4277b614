"""``serve()``: the HTTP API on uvicorn, with its own Runtime over the dashboard's store.

The bind rule: 127.0.0.1 (the default) needs no token; any other address
(127.0.0.2, 0.0.0.0, ::1, a LAN address) refuses to start unless
``API_TOKEN`` is set, and then every path but ``/health`` needs
``Authorization: Bearer <API_TOKEN>``. A token set while bound to 127.0.0.1
is enforced too.

Environment: ``API_TOKEN``; ``API_MAX_BODY_BYTES`` (request body cap, default
1 MiB); ``API_CORS_ORIGINS`` (comma-separated origins; CORS is off when
unset); ``API_SSE_KEEPALIVE_S`` (seconds between SSE keep-alive comments
on an idle stream, default 15); ``DATABASE_URL`` / ``DATA_DIR`` as for the
dashboard and the CLI.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

import uvicorn

from engine.api.app import create_app
from engine.api.auth import DEFAULT_MAX_BODY_BYTES, LOOPBACK, install_log_redaction, needs_token
from engine.runtime import Runtime
from engine.store import StoreError, StoreUrlInvalid

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
DEFAULT_PORT = 8787


class _Server(uvicorn.Server):
    """uvicorn's server, ending every live stream as soon as shutdown begins."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]):
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._on_shutdown()
        await super().shutdown(sockets=sockets)


def serve(
    host: str = LOOPBACK, port: int = DEFAULT_PORT, *, database_url: str | None = None, log_level: str = "info"
) -> int:
    """Run the API until interrupted; returns the process exit code (2: refused to start)."""
    token = os.environ.get("API_TOKEN") or None
    if needs_token(host) and not token:
        print(
            f"refusing to listen on {host}: any address but {LOOPBACK} needs API_TOKEN set "
            "(then clients send 'Authorization: Bearer <API_TOKEN>')",
            file=sys.stderr,
        )
        return EXIT_INVALID
    raw_cap = os.environ.get("API_MAX_BODY_BYTES", "").strip()
    try:
        max_body = int(raw_cap) if raw_cap else DEFAULT_MAX_BODY_BYTES
        if max_body <= 0:
            raise ValueError
    except ValueError:
        print(f"API_MAX_BODY_BYTES={raw_cap!r} must be a positive integer (bytes)", file=sys.stderr)
        return EXIT_INVALID
    raw_keepalive = os.environ.get("API_SSE_KEEPALIVE_S", "").strip()
    try:
        keepalive_s = float(raw_keepalive) if raw_keepalive else 15.0
        if not 0 < keepalive_s < 3600:
            raise ValueError
    except ValueError:
        print(f"API_SSE_KEEPALIVE_S={raw_keepalive!r} must be a number of seconds between 0 and 3600", file=sys.stderr)
        return EXIT_INVALID
    origins = [o.strip() for o in os.environ.get("API_CORS_ORIGINS", "").split(",") if o.strip()]
    try:
        runtime = Runtime(database_url=database_url)
    except StoreError as exc:
        print(f"store: {exc}", file=sys.stderr)
        return EXIT_INVALID if isinstance(exc, StoreUrlInvalid) else EXIT_FAILED
    server: _Server | None = None
    try:
        app = create_app(runtime, token=token, max_body_bytes=max_body, keepalive_s=keepalive_s, cors_origins=origins)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            timeout_graceful_shutdown=3,
            server_header=False,
        )
        install_log_redaction()  # after Config, which (re)configures uvicorn's loggers
        server = _Server(config, on_shutdown=app.state.hub.close)
        shown = f"[{host}]" if ":" in host else host
        print(
            f"API on http://{shown}:{port} (docs: /docs); token {'required' if token else 'not required'}; "
            f"store: {runtime.store.url.split('@')[-1]}",
            file=sys.stderr,
            flush=True,
        )
        # uvicorn handles SIGINT/SIGTERM itself, then re-raises the signal once it has stopped;
        # a SIGTERM handler of ours turns that into KeyboardInterrupt so the runtime below is
        # shut down (runs cancelled, every event committed) instead of the process dying.
        previous = _on_sigterm(_interrupt) if threading.current_thread() is threading.main_thread() else None
        try:
            server.run()
        except SystemExit:  # uvicorn exits this way when it cannot start (port in use, ...)
            return EXIT_FAILED
        except KeyboardInterrupt:
            pass
        finally:
            if previous is not None:
                _on_sigterm(previous)
    finally:
        runtime.shutdown()
    return EXIT_OK if server is not None and server.started else EXIT_FAILED


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _on_sigterm(handler: Any) -> Any:
    return signal.signal(signal.SIGTERM, handler)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` options, shared by ``python -m engine serve`` and ``python -m engine.api``."""
    parser.add_argument(
        "--host", default=LOOPBACK, help=f"address to bind (default {LOOPBACK}; any other needs API_TOKEN)"
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
