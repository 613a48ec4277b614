"""Test-one-node benchmark (issue 14 §4): what the Builder's "Test node" costs.

Scenario: the 3-agent chain of ``bench/rerun_bench.py`` runs 20 times against the
local OpenAI-compatible server (``tests/fake_openai.py``, through the real
``openai`` client) on a Runtime over SQLite in a temporary ``DATA_DIR``. Then,
best of 5 each:

* ``context_ms``: ``Runtime.node_test_context`` of the last agent (finds its
  latest inputs in the store: what selecting a node costs the first time);
* ``agent_test_ms``: ``Runtime.test_node`` of the last agent (one model request);
* ``transform_test_ms``: ``Runtime.test_node`` of a template node;

and ``agent_test_requests``: model requests made by one agent test (target: 1),
``runs_added``: runs a test adds to History (target: 0).

Run: ``python bench/node_test_bench.py``. Prints one JSON line.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _best_ms(fn: Any, tries: int = 5) -> float:
    best = float("inf")
    for _ in range(tries):
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return round(best * 1000, 2)


def measure() -> dict[str, Any]:
    from bench.rerun_bench import CHAIN
    from engine.llm.openai_model import OpenAIChatModel
    from engine.runtime import Runtime
    from tests.fake_openai import FakeOpenAIServer

    doc = copy.deepcopy(CHAIN)
    doc["nodes"].insert(4, {"id": "shout", "type": "transform", "config": {"template": "{{ nodes.c.output | upper }}"}})
    doc["edges"] = [e for e in doc["edges"] if e["source"] != "c"] + [
        {"source": "c", "target": "shout"},
        {"source": "shout", "target": "out"},
    ]
    with FakeOpenAIServer() as server, tempfile.TemporaryDirectory() as tmp:
        model = OpenAIChatModel(base_url=server.base_url, api_key="sk-bench")
        with Runtime(data_dir=tmp, llm=model) as rt:
            for _ in range(20):
                run_id = rt.submit(doc, {})
                rt.wait(run_id, 60)
            runs = len(rt.store.list_runs(limit=1000))
            values = rt.node_test_context(doc, "c").values()
            context_ms = _best_ms(lambda: rt.node_test_context(doc, "c"))
            before = len(server.requests)
            rt.test_node(doc, "c", values)
            requests = len(server.requests) - before
            agent_ms = _best_ms(lambda: rt.test_node(doc, "c", values))
            transform_ms = _best_ms(lambda: rt.test_node(doc, "shout", {"nodes": {"c": "hello"}}))
            added = len(rt.store.list_runs(limit=1000)) - runs
    return {
        "context_ms": context_ms,
        "agent_test_ms": agent_ms,
        "transform_test_ms": transform_ms,
        "agent_test_requests": requests,
        "runs_added": added,
    }


if __name__ == "__main__":
    print(json.dumps(measure()))
