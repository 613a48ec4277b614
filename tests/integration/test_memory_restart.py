"""Memory survives a restart: one process writes, a fresh process (and fresh objects) read.

Also: "My name is Alice" in one run, "What's my name?" in the next, through
the prompt block and the offline model; and the short-term store on
PostgreSQL through ``MEMORY_DATABASE_URL`` (skipped, with the reason, when no
server can be started).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memory import MemoryManager, ShortTermStore, format_memory_block, list_agents, reset_default_backends

pytest_plugins = ["tests.integration.pg"]

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import json, sys
from memory import MemoryManager
mm = MemoryManager("concierge")
ids = mm.add_interaction("My name is Alice and I live in Porto.", "Nice to meet you, Alice.",
                         run_id="run-1", node_id="chat", workflow="greeter")
fact = mm.add_memory("Alice's favourite drink is iced tea.", kind="fact", run_id="run-1")
print(json.dumps({"interaction": ids[0], "fact": fact}))
"""


def test_a_new_process_sees_old_turns_and_memories() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", WRITER], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    written = json.loads(done.stdout.strip().splitlines()[-1])

    reset_default_backends()  # nothing shared with the writer: new objects on the same DATA_DIR
    mm = MemoryManager("concierge")
    turns = mm.conversation()
    assert [(t.user, t.assistant, t.run_id) for t in turns] == [
        ("My name is Alice and I live in Porto.", "Nice to meet you, Alice.", "run-1")
    ]
    hits = mm.recall("What's my name?", n_results=2)
    assert hits[0].id == written["interaction"] and hits[0].metadata["workflow"] == "greeter"
    assert mm.recall("what does she like to drink?")[0].id == written["fact"]
    assert {m.id for m in mm.list_memories()} == set(written.values())
    assert [(s.agent_id, s.long_term_count, s.short_term_turns) for s in list_agents()] == [("concierge", 2, 1)]


async def test_whats_my_name_in_the_next_run_with_the_offline_model() -> None:
    from engine.llm.base import ChatRequest
    from engine.llm.offline_model import OfflineChatModel

    first = MemoryManager("alice-assistant")
    await first.aadd_interaction("My name is Alice.", "Hello Alice, nice to meet you.", run_id="run-1")

    reset_default_backends()
    second = MemoryManager("alice-assistant")  # the next run
    question = "What's my name?"
    block = format_memory_block(await second.arecall(question, 3), await second.aconversation())
    reply = await OfflineChatModel(token_delay_s=0).chat(
        ChatRequest(
            messages=[{"role": "system", "content": block}, {"role": "user", "content": question}], model="offline"
        ),
        lambda _delta: None,
    )
    assert "Alice" in reply.content and reply.content.startswith("From memory:")


def test_short_term_on_any_sqlalchemy_url(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORY_DATABASE_URL", store_url)
    store = ShortTermStore()
    assert store.url == store_url
    for i in range(5):
        store.add("pg-agent", f"question {i}", f"answer {i}", run_id="r1" if i < 3 else "r2", node_id="n")
    assert [t.user for t in store.window("pg-agent", budget_tokens=3 * (3 + 3 + 8))] == [
        "question 2",
        "question 3",
        "question 4",
    ]
    assert len(store.turns_for_run("r1")) == 3 and store.agents() == {"pg-agent": 5}
    assert store.clear("pg-agent") == 5 and store.count("pg-agent") == 0
