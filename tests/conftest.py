"""Test-wide guards: no real model endpoint, a private data directory."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.fake_openai", "tests.integration.pg"]

_MODEL_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_MODEL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "OPENAI_CUSTOM_HEADERS",
    "OPENAI_ADMIN_KEY",
)
_MEMORY_ENV = (
    "CHROMA_HOST",
    "CHROMA_PORT",
    "MEMORY_EMBEDDINGS",
    "MEMORY_EMBEDDING_MODEL",
    "MEMORY_COLLECTION",
    "MEMORY_DATABASE_URL",
    "MEMORY_MAX_CHARS",
    "MEMORY_SHORT_TERM_TOKENS",
    "MEMORY_SHORT_TERM_MAX_TURNS",
    "MEMORY_MINILM_ONNX",
    "MEMORY_EMBEDDING_THREADS",
)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep every test off real endpoints and out of ./data.

    Tests that want a model endpoint point ``OPENAI_BASE_URL`` at the local fake
    server themselves.
    """
    for name in (*_MODEL_ENV, *_MEMORY_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path_factory.mktemp("data")))
    monkeypatch.setenv("OFFLINE_TOKEN_DELAY_S", "0")
    # web_search goes to a closed loopback port unless a test says otherwise: tests never reach the internet
    monkeypatch.setenv("WEB_SEARCH_PROVIDER", "searxng")
    monkeypatch.setenv("SEARXNG_URL", "http://127.0.0.1:9")
