"""OpenAIEmbedder through the official client against a local ``/v1/embeddings`` server.

``FakeEmbeddingsServer`` speaks ``POST /v1/embeddings`` like the real API
(``input`` a string or a list, ``model``, ``dimensions``, ``encoding_format``)
and answers with deterministic bag-of-words vectors: a word hashed to a
dimension, so texts sharing words are close. It records every request and
its ``Authorization`` header; ``fail_with`` makes the next requests fail
with an OpenAI-style error. The long-term tests import it too.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import pytest

from memory import EmbedderMismatch, EmbeddingError, LongTermStore, MemoryManager, MemoryStoreError, ShortTermStore
from memory.embeddings import MiniLMEmbedder, OpenAIEmbedder, default_embedder
from memory.long_term import ChromaConnection

DEFAULT_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072}


def bag_of_words(text: str, dim: int) -> list[float]:
    vector = [0.0] * dim
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dim] += 1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    # Not unit length on purpose (x 3): the embedder must normalise what it gets.
    return [3 * x / norm for x in vector]


class FakeEmbeddingsServer:
    """A scripted OpenAI-compatible embeddings endpoint on 127.0.0.1 (see the module docstring)."""

    def __init__(self, *, require_key: str | None = None, models: tuple[str, ...] | None = None) -> None:
        self.require_key = require_key
        self.models = models
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        self._failures: deque[int] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    def __enter__(self) -> Self:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def fail_with(self, *statuses: int) -> None:
        with self._lock:
            self._failures.extend(statuses)

    def reply(self, body: dict[str, Any], authorization: str | None) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(body)
            self.authorizations.append(authorization)
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            return failure, _error(failure, "scripted failure")
        if self.require_key is not None and authorization != f"Bearer {self.require_key}":
            return 401, _error(401, "Incorrect API key provided.", "invalid_api_key")
        model = body.get("model")
        if self.models is not None and model not in self.models:
            return 404, _error(404, f"The model `{model}` does not exist", "model_not_found")
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        dim = int(body.get("dimensions") or DEFAULT_DIMS.get(str(model), 64))
        data = [{"object": "embedding", "index": i, "embedding": bag_of_words(t, dim)} for i, t in enumerate(texts)]
        data.reverse()  # the API does not promise order; the client sorts by index
        tokens = sum(len(t.split()) for t in texts)
        return 200, {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def _error(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code or str(status)}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeEmbeddingsServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/") != "/v1/embeddings":
            status, payload = 404, _error(404, f"Unknown path {self.path}")
        else:
            status, payload = self.fake.reply(json.loads(raw or b"{}"), self.headers.get("Authorization"))
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def embeddings_server() -> Iterator[FakeEmbeddingsServer]:
    with FakeEmbeddingsServer() as server:
        yield server



# ----------------------------------------------------------------- the embedder


def test_embeds_through_the_official_client(
    monkeypatch: pytest.MonkeyPatch, embeddings_server: FakeEmbeddingsServer
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", embeddings_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    embedder = OpenAIEmbedder()
    vectors = embedder.embed(["the red fox", "a blue whale", "the red fox jumps"])

    assert embedder.name == "openai:text-embedding-3-small"
    assert embedder.dim == 1536 and [len(v) for v in vectors] == [1536, 1536, 1536]
    assert all(abs(sum(x * x for x in v) - 1) < 1e-6 for v in vectors)  # re-normalised
    closer = sum(a * b for a, b in zip(vectors[0], vectors[2], strict=True))
    farther = sum(a * b for a, b in zip(vectors[0], vectors[1], strict=True))
    assert closer > farther  # order kept although the server answered in reverse
    request = embeddings_server.requests[0]
    assert request["model"] == "text-embedding-3-small"
    assert request["input"] == ["the red fox", "a blue whale", "the red fox jumps"]
    assert request["encoding_format"] == "float"
    assert embeddings_server.authorizations == ["Bearer sk-test-123"]


def test_model_dimensions_and_batches(monkeypatch: pytest.MonkeyPatch, embeddings_server: FakeEmbeddingsServer) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", embeddings_server.base_url)  # no key: a placeholder is sent
    monkeypatch.setenv("MEMORY_EMBEDDING_MODEL", "nomic-embed-text")
    embedder = OpenAIEmbedder(dimensions=32, batch_size=2)
    vectors = embedder.embed([f"text {i}" for i in range(5)])

    assert embedder.name == "openai:nomic-embed-text@32"
    assert len(vectors) == 5 and embedder.dim == 32
    assert [len(r["input"]) for r in embeddings_server.requests] == [2, 2, 1]
    assert all(r["dimensions"] == 32 and r["model"] == "nomic-embed-text" for r in embeddings_server.requests)
    assert embeddings_server.authorizations[0] == "Bearer not-needed"


def test_unknown_dimension_is_probed(monkeypatch: pytest.MonkeyPatch, embeddings_server: FakeEmbeddingsServer) -> None:
    embedder = OpenAIEmbedder("local-embedder", base_url=embeddings_server.base_url)
    assert embedder.dim == 64
    assert len(embeddings_server.requests) == 1


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ({"models": ("other-model",)}, "MEMORY_EMBEDDING_MODEL"),
        ({"require_key": "sk-right"}, "OPENAI_API_KEY"),
    ],
)
def test_endpoint_errors_say_what_to_fix(setup: dict[str, Any], expected: str) -> None:
    with FakeEmbeddingsServer(**setup) as server:
        embedder = OpenAIEmbedder(base_url=server.base_url, api_key="sk-wrong", max_retries=0)
        with pytest.raises(EmbeddingError, match=expected):
            embedder.embed(["hello"])


def test_server_errors_and_unreachable_endpoint(embeddings_server: FakeEmbeddingsServer) -> None:
    embeddings_server.fail_with(500)
    with pytest.raises(EmbeddingError, match="failed"):
        OpenAIEmbedder(base_url=embeddings_server.base_url, max_retries=0).embed(["x"])
    embeddings_server.fail_with(503)  # one retry succeeds
    assert len(OpenAIEmbedder(base_url=embeddings_server.base_url, max_retries=1).embed(["x"])) == 1

    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(EmbeddingError, match="cannot reach .*OPENAI_BASE_URL"):
        OpenAIEmbedder(base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, timeout_s=2).embed(["x"])


def test_environment_selects_the_embedder(
    monkeypatch: pytest.MonkeyPatch, embeddings_server: FakeEmbeddingsServer
) -> None:
    assert isinstance(default_embedder(), MiniLMEmbedder)
    monkeypatch.setenv("MEMORY_EMBEDDINGS", "openai")
    with pytest.raises(EmbeddingError, match="OPENAI_API_KEY .*OPENAI_BASE_URL"):
        default_embedder()
    monkeypatch.setenv("OPENAI_BASE_URL", embeddings_server.base_url)
    chosen = default_embedder()
    assert isinstance(chosen, OpenAIEmbedder) and chosen is default_embedder()
    monkeypatch.setenv("MEMORY_EMBEDDINGS", "word2vec")  # one line naming the variable and what it takes
    with pytest.raises(MemoryStoreError, match="MEMORY_EMBEDDINGS='word2vec' is not one of local, minilm, offline"):
        default_embedder()


# ----------------------------------------------------------------- with the stores


def test_memory_manager_with_openai_embeddings(
    monkeypatch: pytest.MonkeyPatch, embeddings_server: FakeEmbeddingsServer, tmp_path: Path
) -> None:
    monkeypatch.setenv("MEMORY_EMBEDDINGS", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", embeddings_server.base_url)
    mm = MemoryManager("openai-agent")
    assert mm.embedder.name == "openai:text-embedding-3-small"
    mm.add_memory("the deploy key lives in the vault")
    mm.add_memory("lunch is at noon on fridays")
    hits = mm.recall("where does the deploy key live")
    assert hits[0].text == "the deploy key lives in the vault"
    assert hits[0].metadata["embedder"] == "openai:text-embedding-3-small"


def test_a_collection_never_mixes_embedders(embeddings_server: FakeEmbeddingsServer, tmp_path: Path) -> None:
    connection = ChromaConnection(path=tmp_path / "chroma")
    short = ShortTermStore(f"sqlite:///{tmp_path / 'memory.db'}")
    local = MemoryManager("mixed", long_term=LongTermStore(connection, MiniLMEmbedder()), short_term=short)
    local.add_memory("made with MiniLM")

    remote = OpenAIEmbedder(base_url=embeddings_server.base_url)
    other = MemoryManager("mixed", long_term=LongTermStore(connection, remote), short_term=short)
    for attempt in (lambda: other.recall("anything"), lambda: other.add_memory("made with OpenAI")):
        with pytest.raises(EmbedderMismatch) as caught:
            attempt()
        message = str(caught.value)
        assert "all-MiniLM-L6-v2-onnx-int8" in message and "openai:text-embedding-3-small" in message
        assert "MEMORY_COLLECTION" in message and "MEMORY_EMBEDDINGS=local" in message
    assert embeddings_server.requests == []  # refused before anything was embedded
    assert local.count() == 1  # nothing was mixed in
    # Another prefix keeps both side by side.
    side = MemoryManager("mixed", long_term=LongTermStore(connection, remote, prefix="memory-openai"), short_term=short)
    side.add_memory("made with OpenAI")
    assert side.count() == 1 and local.count() == 1


def test_messages_never_name_the_base_urls_credentials() -> None:
    """A base URL may carry user:password@ or ?api-key=: errors name the URL without them."""
    embedder = OpenAIEmbedder(
        "text-embedding-3-small", base_url="http://user:hunter2@127.0.0.1:9/v1?api-key=s3cret", api_key="sk-x"
    )
    with pytest.raises(EmbeddingError) as caught:
        embedder.embed(["hello"])
    message = str(caught.value)
    assert "127.0.0.1:9/v1" in message and "hunter2" not in message and "s3cret" not in message
    with pytest.raises(EmbeddingError, match="base URL cannot be used") as caught:
        OpenAIEmbedder("text-embedding-3-small", base_url="http://user:hunter2@host:port/v1", api_key="sk-x")
    assert "hunter2" not in str(caught.value)
