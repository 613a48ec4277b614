"""A local OpenAI-compatible HTTP server for tests.

It listens on 127.0.0.1 (an OS-chosen port) in a background thread and speaks
``POST /v1/chat/completions`` (JSON, or SSE when ``stream`` is true, in the
official chunk format, with a usage chunk when ``stream_options.include_usage``
is set) and ``GET /v1/models``. Tests script it with a FIFO queue of replies and
assert on what it received::

    with FakeOpenAIServer() as srv:
        srv.enqueue_text("Hello there")
        srv.enqueue_error(429)
        srv.enqueue_tool_calls([("search", {"q": "cats"})])
        ...  # point a client at srv.base_url ("http://127.0.0.1:PORT/v1")
        srv.requests[0]["model"], srv.authorizations[0]

When the queue is empty it answers with ``default`` (by default: echo the last
user message). ``require_key`` makes it answer 401 to any other bearer key, and
``models`` makes it answer 404 to any other model, the way the real API does.

Use it as a pytest fixture with ``pytest_plugins = ["tests.fake_openai"]`` in a
conftest, or ``from tests.fake_openai import fake_openai``.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

# ----------------------------------------------------------------- replies


@dataclass
class TextReply:
    """A text answer, streamed in several chunks.

    Attributes:
        text: the whole answer.
        chunks: split into this many pieces; None splits per word.
        delay_s: sleep this long before answering.
        chunk_delay_s: sleep this long between content chunks (streaming only).
        model: the model name to report; None reports the requested one.
        usage: report usage (when asked for); False mimics servers that never do.
        break_after: cut the connection after this many content chunks
            (streaming only), like a network failure mid-answer.
        finish: send the chunk with the ``finish_reason`` ("stop", or this
            text: "length", say) (streaming only); False ends the stream without one, and without a usage chunk, the
            way a llama.cpp server ends an answer it interrupts.
        done: send ``data: [DONE]`` at the end (streaming only).
    """

    text: str
    chunks: int | None = None
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    model: str | None = None
    break_after: int | None = None
    usage: bool = True
    finish: bool | str = True
    done: bool = True


@dataclass
class ToolCallsReply:
    """An answer that asks for tool calls; ``calls`` are ``(name, arguments)``.

    ``arguments`` is a dict (dumped to JSON) or the raw JSON text. In a stream,
    each call's arguments arrive split across several deltas, like the real API.
    """

    calls: list[tuple[str, dict[str, Any] | str]]
    content: str = ""
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    model: str | None = None
    arg_pieces: int = 3
    usage: bool = True


@dataclass
class ErrorReply:
    """An HTTP error with an OpenAI-style JSON body."""

    status: int
    message: str | None = None
    type: str | None = None
    code: str | None = None
    delay_s: float = 0.0
    retry_after: float | None = None


Reply = TextReply | ToolCallsReply | ErrorReply
DefaultReply = Callable[[dict[str, Any]], Reply]

_ERROR_DEFAULTS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to sample from this model.", "invalid_request_error", None),
    404: ("The model does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"),
    429: ("Rate limit reached for requests. Please try again shortly.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


def echo_last_user(body: dict[str, Any]) -> Reply:
    """The default reply: echo the last user message."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            return TextReply(f"echo: {_text_of(message.get('content'))}")
    return TextReply("echo: (no user message)")


def estimate_tokens(text: str) -> int:
    """About one token per four characters, at least one for any text."""
    return math.ceil(len(text) / 4) if text else 0


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _prompt_tokens(body: dict[str, Any]) -> int:
    chars = 0
    for message in body.get("messages") or []:
        chars += len(_text_of(message.get("content")))
        for call in message.get("tool_calls") or []:
            fn = call.get("function") or {}
            chars += len(fn.get("name", "")) + len(fn.get("arguments", ""))
    return max(1, math.ceil(chars / 4))


def _split(text: str, pieces: int | None) -> list[str]:
    if not text:
        return []
    if pieces is None:
        return re.findall(r"\s*\S+\s*", text) or [text]
    pieces = max(1, min(pieces, len(text)))
    size = math.ceil(len(text) / pieces)
    return [text[i : i + size] for i in range(0, len(text), size)]


# ----------------------------------------------------------------- server


class FakeOpenAIServer:
    """A scripted OpenAI-compatible endpoint on 127.0.0.1; see the module docstring."""

    def __init__(
        self,
        *,
        default: DefaultReply = echo_last_user,
        require_key: str | None = None,
        models: list[str] | None = None,
    ):
        self.default = default
        self.require_key = require_key
        self.models = models
        self.requests: list[dict[str, Any]] = []  # every chat completions body, parsed
        self.authorizations: list[str | None] = []  # the Authorization header of each
        self.paths: list[str] = []  # "METHOD /path" of every request
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ids = itertools.count(1)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FakeOpenAIServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()  # wakes handlers that are sleeping
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting

    def enqueue(self, *replies: Reply) -> None:
        """Queue replies; each chat request takes the next one."""
        with self._lock:
            self._queue.extend(replies)

    def enqueue_text(self, text: str, **options: Any) -> None:
        self.enqueue(TextReply(text, **options))

    def enqueue_tool_calls(self, calls: list[tuple[str, dict[str, Any] | str]], **options: Any) -> None:
        self.enqueue(ToolCallsReply(list(calls), **options))

    def enqueue_error(self, status: int, message: str | None = None, **options: Any) -> None:
        self.enqueue(ErrorReply(status, message, **options))

    @property
    def pending(self) -> int:
        """Replies still queued."""
        with self._lock:
            return len(self._queue)

    @property
    def last_request(self) -> dict[str, Any]:
        return self.requests[-1]

    # -- used by the handler

    def _record(self, body: dict[str, Any], authorization: str | None) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.authorizations.append(authorization)
            queued = self._queue.popleft() if self._queue else None
        if self.require_key is not None and authorization != f"Bearer {self.require_key}":
            return ErrorReply(401)
        if self.models is not None and body.get("model") not in self.models:
            return ErrorReply(404, f"The model `{body.get('model')}` does not exist or you do not have access to it.")
        return queued if queued is not None else self.default(body)

    def _next_id(self) -> str:
        return f"chatcmpl-fake{next(self._ids):06d}"

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stop.wait(seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out and hang up are expected here


class _ClientGone(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeOpenAIServer  # set on the subclass made in start()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    # -- routes

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self.fake.paths.append(f"GET {self.path}")
        if self.path.rstrip("/") == "/v1/models":
            names = self.fake.models or ["fake-model"]
            data = [{"id": n, "object": "model", "created": 1700000000, "owned_by": "fake"} for n in names]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_error_json(ErrorReply(404, f"Unknown path {self.path}"))

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self.fake.paths.append(f"POST {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_error_json(ErrorReply(404, f"Unknown path {self.path}"))
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send_error_json(ErrorReply(400, "We could not parse the JSON body of your request."))
            return
        reply = self.fake._record(body, self.headers.get("Authorization"))
        self.fake._sleep(reply.delay_s)
        try:
            if isinstance(reply, ErrorReply):
                self._send_error_json(reply)
            elif body.get("stream"):
                self._stream(body, reply)
            else:
                self._send_json(200, self._completion(body, reply))
        except (_ClientGone, BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -- bodies

    def _model(self, body: dict[str, Any], reply: TextReply | ToolCallsReply) -> str:
        return reply.model or str(body.get("model") or "fake-model")

    def _usage(self, body: dict[str, Any], reply: TextReply | ToolCallsReply) -> dict[str, int]:
        prompt = _prompt_tokens(body)
        if isinstance(reply, TextReply):
            completion = estimate_tokens(reply.text)
        else:
            completion = estimate_tokens(reply.content) + sum(
                estimate_tokens(name) + estimate_tokens(_args(a)) for name, a in reply.calls
            )
        completion = max(1, completion)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _completion(self, body: dict[str, Any], reply: TextReply | ToolCallsReply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "refusal": None}
        if isinstance(reply, TextReply):
            message["content"] = reply.text
            finish = "stop"
        else:
            message["content"] = reply.content or None
            message["tool_calls"] = [
                {"id": _call_id(i), "type": "function", "function": {"name": name, "arguments": _args(a)}}
                for i, (name, a) in enumerate(reply.calls)
            ]
            finish = "tool_calls"
        return {
            "id": self.fake._next_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self._model(body, reply),
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": self._usage(body, reply) if reply.usage else None,
        }

    def _stream(self, body: dict[str, Any], reply: TextReply | ToolCallsReply) -> None:
        include_usage = reply.usage and bool((body.get("stream_options") or {}).get("include_usage"))
        base = {
            "id": self.fake._next_id(),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self._model(body, reply),
            "system_fingerprint": "fp_fake",
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            data = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            if include_usage:
                data["usage"] = None
            return data

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        if isinstance(reply, TextReply):
            self._event(chunk({"role": "assistant", "content": "", "refusal": None}))
            for n, piece in enumerate(_split(reply.text, reply.chunks)):
                if reply.break_after is not None and n >= reply.break_after:
                    self._cut()
                    return
                if n:
                    self.fake._sleep(reply.chunk_delay_s)
                self._event(chunk({"content": piece}))
            finish: str | None = (reply.finish if isinstance(reply.finish, str) else "stop") if reply.finish else None
        else:
            first: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
            if reply.content:
                self._event(chunk({**first, "content": ""}))
                for piece in _split(reply.content, None):
                    self._event(chunk({"content": piece}))
                first = {}
            for i, (name, a) in enumerate(reply.calls):
                head = {"index": i, "id": _call_id(i), "type": "function", "function": {"name": name, "arguments": ""}}
                self._event(chunk({**first, "tool_calls": [head]}))
                first = {}
                for piece in _split(_args(a), reply.arg_pieces):
                    self.fake._sleep(reply.chunk_delay_s)  # the call's head went first
                    self._event(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
            finish = "tool_calls"
        if finish is not None:
            self._event(chunk({}, finish))
            if include_usage:
                self._event({**base, "choices": [], "usage": self._usage(body, reply)})
        if not isinstance(reply, TextReply) or reply.done:
            self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")  # the last chunk of the chunked encoding

    # -- wire

    def _event(self, data: dict[str, Any]) -> None:
        self._write_chunk(f"data: {json.dumps(data)}\n\n".encode())

    def _write_chunk(self, payload: bytes) -> None:
        if self.fake._stop.is_set():
            raise _ClientGone
        self.wfile.write(f"{len(payload):X}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()

    def _cut(self) -> None:
        """Hang up mid-body, so the client sees an incomplete chunked response."""
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)  # socket.SHUT_RDWR

    def _send_json(self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def _send_error_json(self, reply: ErrorReply) -> None:
        message, kind, code = _ERROR_DEFAULTS.get(reply.status, (f"HTTP {reply.status}", "server_error", None))
        error = {
            "message": reply.message or message,
            "type": reply.type or kind,
            "param": None,
            "code": reply.code or code,
        }
        headers = {"retry-after": f"{reply.retry_after:g}"} if reply.retry_after is not None else {}
        self._send_json(reply.status, {"error": error}, headers)


def _args(arguments: dict[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _call_id(index: int) -> str:
    return f"call_fake{index:04d}"


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A started ``FakeOpenAIServer``, closed after the test."""
    with FakeOpenAIServer() as server:
        yield server


__all__ = [
    "ErrorReply",
    "FakeOpenAIServer",
    "Reply",
    "TextReply",
    "ToolCallsReply",
    "echo_last_user",
    "estimate_tokens",
    "fake_openai",
]
