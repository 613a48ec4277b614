"""Rerun benchmark: model requests of a rerun from the last node of a 3-agent chain.

Scenario (issue 14, "Rerun from a node"): a chain ``start -> a -> b -> c -> out``
of three agents runs against the local OpenAI-compatible server
(``tests/fake_openai.py``, through the real ``openai`` client) with
``python -m engine run``; then ``python -m engine rerun RUN --from c`` reruns it
from the last agent. Target: the rerun makes exactly one model request (``a``
and ``b`` are reused from the source run), against three for a full run.

Both commands are real subprocesses over one SQLite store in a temporary
``DATA_DIR``. ``tests/integration/test_rerun_cli.py`` asserts the figures
this prints.

Run: ``python bench/rerun_bench.py``. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fake_openai import FakeOpenAIServer  # noqa: E402

CHAIN: dict[str, Any] = {
    "format": "workflow/v1",
    "name": "rerun bench chain",
    "inputs": {"topic": {"type": "string", "default": "rivers"}},
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "a", "type": "agent", "config": {"prompt": "Outline {{ inputs.topic }}."}},
        {"id": "b", "type": "agent", "config": {"prompt": "Draft from: {{ nodes.a.output }}"}},
        {"id": "c", "type": "agent", "config": {"prompt": "Edit: {{ nodes.b.output }}"}},
        {"id": "out", "type": "output", "config": {"value": "{{ nodes.c.output }}"}},
    ],
    "edges": [
        {"source": "start", "target": "a"},
        {"source": "a", "target": "b"},
        {"source": "b", "target": "c"},
        {"source": "c", "target": "out"},
    ],
}


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise RuntimeError(f"python -m engine {args[0]} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc


def measure() -> dict[str, Any]:
    """Run the chain, rerun it from ``c``; the model requests and wall time of each."""
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        env.update(DATA_DIR=str(Path(tmp) / "data"), OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-bench")
        env.pop("DATABASE_URL", None)
        path = Path(tmp) / "chain.json"
        path.write_text(json.dumps(CHAIN), encoding="utf-8")
        events = Path(tmp) / "source.jsonl"
        began = time.perf_counter()
        _cli(env, "run", str(path), "--quiet", "--events", str(events))
        source_s = time.perf_counter() - began
        source_requests = len(server.requests)
        run_id = json.loads(events.read_text(encoding="utf-8").splitlines()[0])["run_id"]
        began = time.perf_counter()
        _cli(env, "rerun", run_id, "--from", "c", "--quiet")
        rerun_s = time.perf_counter() - began
        return {
            "bench": "rerun_from_last_of_3_agents",
            "source_requests": source_requests,
            "rerun_requests": len(server.requests) - source_requests,
            "source_s": round(source_s, 3),
            "rerun_s": round(rerun_s, 3),
        }


if __name__ == "__main__":
    print(json.dumps(measure()))
