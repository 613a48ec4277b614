"""Memory benchmark: one JSON line per figure.

Figures (from the memory issue): add 10,000 long-term memories (memories/s,
embedding included) and recall top-5 with the query's embedding included
(p50 and p95 ms; target p50 <= 15 ms at 10k). Also reported: the offline
embedder's load time, its batch throughput and single-text latency, and the
short-term window query.

Run: ``python bench/memory_bench.py [--memories N] [--queries Q]``. It works
in a temporary ``DATA_DIR`` (PersistentClient) unless ``CHROMA_HOST`` /
``CHROMA_PORT`` point at a Chroma server, and embeds with whatever
``MEMORY_EMBEDDINGS`` selects (the offline MiniLM by default).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_SUBJECTS = [
    "The quarterly report",
    "My sister Clara",
    "The espresso machine",
    "Our team in Lisbon",
    "The backup server",
    "Grandma's apple pie",
    "The marathon training plan",
    "The new intern",
    "The kitchen sink",
    "The vintage bicycle",
    "The client from Osaka",
    "The hiking trail",
    "The chemistry exam",
    "The jazz concert",
    "The rental car",
    "The tomato seedlings",
    "The insurance claim",
    "The podcast episode",
    "The wedding venue",
    "The tax refund",
]
_PREDICATES = [
    "is due on",
    "needs attention before",
    "was postponed until",
    "should be reviewed on",
    "will arrive around",
    "broke down on",
    "got rescheduled to",
    "is booked for",
    "costs extra after",
    "was discussed on",
]
_DETAILS = [
    "because of the storm",
    "after the budget meeting",
    "so remind me twice",
    "and nobody told the manager",
    "according to the email",
    "unless it rains",
    "which annoyed everyone",
    "as agreed with the landlord",
    "before the flight to Berlin",
    "since the vet said so",
]
_QUERIES = [
    "when is the report due",
    "what happened with the espresso machine",
    "tell me about the hiking plans",
    "did the rental car arrive",
    "what do I know about the wedding venue",
    "any news on the tax refund",
    "what did the vet say",
    "is the concert still on",
    "where is the team based",
    "what about the bicycle",
]


def corpus(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        day = f"{rng.choice(['Monday', 'Tuesday', 'Friday', 'March 3', 'June 14', 'the 21st'])}"
        texts.append(f"{rng.choice(_SUBJECTS)} {rng.choice(_PREDICATES)} {day} {rng.choice(_DETAILS)} (note {i}).")
    return texts


class ReusedVectors:
    """An embedder under the real one's name that embeds ``distinct`` of the texts once (the real model) and
    gives text ``i`` the vector of text ``i % distinct`` moved by a little noise (cosine ~0.95 to it, so every
    vector is distinct): a 100,000-memory collection without 100,000 embeddings. Recall still embeds its
    queries with the real model."""

    def __init__(self, real: Any, texts: list[str], distinct: int, seed: int = 11):
        import numpy as np

        self.name, self.dim = real.name, real.dim
        base = np.asarray(real.embed(texts[:distinct]), dtype=np.float32)
        rng = np.random.default_rng(seed)
        moved = base[np.arange(len(texts)) % distinct] + rng.normal(0, 0.016, (len(texts), base.shape[1]))
        moved /= np.linalg.norm(moved, axis=1, keepdims=True)
        self._vectors = {text: vector for text, vector in zip(texts, moved.astype(np.float32).tolist(), strict=True)}

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [self._vectors[text] for text in texts]

    def embed_one(self, text: str) -> list[float]:
        return self._vectors[text]


def emit(name: str, value: float, unit: str, **extra: object) -> None:
    print(json.dumps({"bench": "memory", "figure": name, "value": round(value, 3), "unit": unit, **extra}), flush=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--batch", type=int, default=500, help="memories per add_memories call")
    parser.add_argument(
        "--distinct-vectors",
        type=int,
        default=0,
        help="embed only this many texts and give the others those vectors, slightly moved (to build 100k fast)",
    )
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="memory-bench-")
    os.environ.setdefault("DATA_DIR", tmp.name)

    started = time.perf_counter()
    from memory import MemoryManager, default_backends, default_embedder
    from memory.long_term import LongTermStore

    embedder = default_embedder()
    load = getattr(embedder, "load", None)
    if load is not None:
        load()
    emit("embedder_load", (time.perf_counter() - started) * 1000, "ms", embedder=embedder.name)

    texts = corpus(args.memories)
    sample = texts[:1000]
    embedder.embed(sample[:64])  # warm-up
    t0 = time.perf_counter()
    embedder.embed(sample)
    emit("embed_batch_throughput", len(sample) / (time.perf_counter() - t0), "texts/s", batch=32)
    single = []
    for text in _QUERIES * 10:
        t1 = time.perf_counter()
        embedder.embed([text])
        single.append((time.perf_counter() - t1) * 1000)
    emit("embed_one_p50", percentile(single, 50), "ms")

    agent = f"bench-{int(time.time())}"
    mm = MemoryManager(agent)
    adding = mm
    if args.distinct_vectors:  # the add path with the embedding precomputed: what Chroma's writes cost alone
        # its own store: the process's shared one for this embedder's name embeds with the real model
        reused = ReusedVectors(embedder, texts, args.distinct_vectors)
        store = LongTermStore.from_env(reused, connection=default_backends().connection)  # type: ignore[arg-type]
        adding = MemoryManager(agent, long_term=store)
        assert adding.long_term.embedder is reused
    t0, cpu0 = time.perf_counter(), time.process_time()
    for start in range(0, len(texts), args.batch):
        adding.add_memories(texts[start : start + args.batch], run_id="bench", node_id="bench")
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    figure = "add_memories_embedding_excluded" if args.distinct_vectors else "add_memories"
    emit(figure, len(texts) / elapsed, "memories/s", memories=len(texts), seconds=round(elapsed, 2))
    emit(figure + "_per_cpu_second", len(texts) / cpu, "memories/cpu-s", memories=len(texts), cpu_s=round(cpu, 2))
    assert mm.count() == len(texts), (mm.count(), len(texts))

    queries = [f"{q} {w}" for q in _QUERIES for w in ("", "please", "again", "today", "now", "exactly")]
    rng = random.Random(3)
    for q in queries[:10]:
        mm.recall(q)  # warm-up
    latencies = []
    for i in range(args.queries):
        query = rng.choice(queries) + f" #{i}"
        t1 = time.perf_counter()
        hits = mm.recall(query, n_results=5)
        latencies.append((time.perf_counter() - t1) * 1000)
        assert len(hits) == 5
    emit("recall_top5_p50", percentile(latencies, 50), "ms", memories=len(texts), target_ms=15)
    emit("recall_top5_p95", percentile(latencies, 95), "ms", memories=len(texts))
    emit("recall_top5_mean", statistics.fmean(latencies), "ms", memories=len(texts))

    for i in range(200):
        mm.add_interaction(f"question {i} about the plan", f"answer {i}: it is fine", save_to_longterm=False)
    window = []
    for _ in range(100):
        t1 = time.perf_counter()
        mm.conversation(budget_tokens=2000)
        window.append((time.perf_counter() - t1) * 1000)
    emit("short_term_window_p50", percentile(window, 50), "ms", turns=200, budget_tokens=2000)
    t1 = time.perf_counter()
    mm.list_memories(offset=0, limit=20)
    emit("list_memories_first_page", (time.perf_counter() - t1) * 1000, "ms", memories=len(texts))


if __name__ == "__main__":
    main()
