"""The offline all-MiniLM-L6-v2 embedder: real vectors, real model file, nothing downloaded."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from memory import embeddings
from memory.config import MemorySettings
from memory.embeddings import MINILM_DIM, MINILM_NAME, MiniLMEmbedder
from memory.errors import EmbeddingError


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder().load()


def cos(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))


def test_vectors_are_unit_length_384(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed(["hello world", "A much longer sentence about the weather in Lisbon in spring."])
    assert embedder.name == MINILM_NAME == "all-MiniLM-L6-v2-onnx-int8" and embedder.dim == MINILM_DIM == 384
    assert [len(v) for v in vectors] == [384, 384]
    assert all(isinstance(x, float) for x in vectors[0])
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)
    assert embedder.embed([]) == []


def test_meaning_not_words(embedder: MiniLMEmbedder) -> None:
    query, paraphrase, same_words = embedder.embed(
        [
            "How do I reset my password?",
            "I forgot my login credentials and need new ones.",
            "My password reset the how do I.",  # shares words, not meaning... still close: check the ranking below
        ]
    )
    unrelated = embedder.embed_one("The giraffe is the tallest land animal.")
    assert cos(query, paraphrase) > 0.4 > cos(query, unrelated)
    assert cos(query, same_words) > cos(query, unrelated)


def test_batching_and_padding_do_not_change_vectors(embedder: MiniLMEmbedder) -> None:
    texts = [f"sentence number {i} " + "with more words " * (i % 7) for i in range(70)]  # several batches
    together = np.array(embedder.embed(texts))
    alone = np.array([embedder.embed_one(t) for t in texts[:10]] + [embedder.embed_one(texts[-1])])
    assert np.abs(together[:10] - alone[:10]).max() < 1e-4
    assert np.abs(together[-1] - alone[-1]).max() < 1e-4  # order restored after sorting by length


def test_long_texts_are_truncated_not_refused(embedder: MiniLMEmbedder) -> None:
    long = "memory " * 5000
    vector = embedder.embed_one(long)
    assert len(vector) == 384
    assert cos(vector, embedder.embed_one("memory " * 300)) > 0.99  # only the first 256 tokens count


def test_loaded_once_and_thread_safe(embedder: MiniLMEmbedder) -> None:
    runtime = embeddings._load_runtime()
    assert MiniLMEmbedder().load() is not None and embeddings._load_runtime() is runtime
    texts = [f"thread safety check {i}" for i in range(16)]
    expected = np.array(embedder.embed(texts))
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(np.array(MiniLMEmbedder().embed(texts)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 6
    assert all(np.abs(r - expected).max() < 1e-5 for r in results)


def test_a_missing_model_file_says_what_to_do(tmp_path) -> None:
    with pytest.raises(EmbeddingError, match="MEMORY_MINILM_ONNX"):
        embeddings._model_file(MemorySettings(minilm_onnx=str(tmp_path / "nope.onnx")))
    shipped = embeddings._model_file(MemorySettings())
    assert shipped.name == "model.onnx" and shipped.stat().st_size == 22_928_619
