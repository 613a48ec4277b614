"""Queue mode under chaos (issue 16): streaming runs, reconnecting SSE clients, a worker killed mid-stream.

Real parts only: the suite's throwaway PostgreSQL, real ``python -m engine worker`` and
``serve`` processes, the real openai client in the workers against tests/fake_openai.py
over HTTP (each answer streamed in 30 chunks, 100 ms apart). Every run has an SSE client on
the API process that drops its connection after a random number of frames and reconnects
with ``Last-Event-ID``. While tokens stream, the worker holding the most runs is killed
(``kill -9``) and a replacement starts: every run must end ``completed`` with its stored
seqs exactly 1..last, every client must have seen each seq once and in order, the node
finished before the kill must not run again, and the interrupted node runs again marked
``restarted`` (the agent, when the kill came during token streaming; the tool node,
during a tool call; the map with all its items, during a map). There is no window between
commit and notify to kill a worker in: the NOTIFY is sent by the batch's own transaction,
so PostgreSQL delivers it at that commit or not at all (engine/store/writer.py). Three
running runs are then cancelled through the API process.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.fake_openai import FakeOpenAIServer, TextReply
from tests.integration import test_queue
from tests.integration.test_queue import Queue, log_of, wait_for

pytest_plugins = ["tests.integration.pg", "tests.integration.chroma_server"]

q, runtime = test_queue.q, test_queue.runtime  # the queue tests' fixtures: a fresh database, a QueueRuntime
RUNS = 8
X = "{{ inputs.x }}"


ITEMS = 3  # the map's items, when s2 is a map


def streaming_doc(*, map_s2: bool = False) -> dict[str, Any]:
    """start -> s1 (a tool call) -> reply (an agent streaming its answer) -> s2 (a tool call, or a map of
    ITEMS tool calls) -> out."""
    step = {"tool": "itest_step", "args": {"label": "s2", "value": X}}
    s2 = {"id": "s2", "type": "map", "config": {"items": f"range({ITEMS})", "node": {"type": "tool", "config": step}}}
    return {
        "format": "workflow/v1",
        "name": "chaos stream",
        "inputs": {"x": {"type": "integer"}},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "s1", "type": "tool", "config": {"tool": "itest_step", "args": {"label": "s1", "value": X}}},
            {"id": "reply", "type": "agent", "config": {"prompt": "Tell a story about {{ nodes.s1.output }}"}},
            s2 if map_s2 else {"id": "s2", "type": "tool", "config": step},
            {"id": "out", "type": "output", "config": {"value": "{{ nodes.reply.output }}"}},
        ],
        "edges": [
            {"source": "start", "target": "s1"},
            {"source": "s1", "target": "reply"},
            {"source": "reply", "target": "s2"},
            {"source": "s2", "target": "out"},
        ],
    }


def story(body: dict[str, Any]) -> TextReply:
    return TextReply("once upon a time " * 10, chunks=30, chunk_delay_s=0.1)


class Client(threading.Thread):
    """One SSE client of a run that drops and reconnects at random; ``seen`` holds every seq it received."""

    def __init__(self, base: str, run_id: str, rng: random.Random):
        super().__init__(daemon=True)
        self.base, self.run_id, self.rng = base, run_id, rng
        self.seen: list[int] = []
        self.reconnects = 0
        self.error: str | None = None

    def run(self) -> None:
        deadline = time.monotonic() + 90
        try:
            with httpx.Client(base_url=self.base, timeout=30) as http:
                while time.monotonic() < deadline:
                    headers = {"accept": "text/event-stream"}
                    if self.seen:
                        headers["last-event-id"] = str(self.seen[-1])
                    budget = self.rng.randint(3, 25)
                    with http.stream("GET", f"/runs/{self.run_id}/events", headers=headers) as stream:
                        if stream.status_code == 204:
                            return  # over, nothing after our cursor
                        dropped = False
                        for line in stream.iter_lines():
                            if line.startswith("id:"):
                                self.seen.append(int(line[3:]))
                                budget -= 1
                                if budget == 0:
                                    dropped = True
                                    break  # drop the connection mid-stream
                        if not dropped:
                            return  # the server ended the stream: the run is over
                    self.reconnects += 1
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = repr(exc)


def _owners(q: Queue, ids: list[str]) -> Counter[int]:
    rows = q.query("SELECT owner FROM runs WHERE run_id = ANY(:ids) AND status = 'running'", ids=ids)
    return Counter(int(owner.split(":")[1]) for (owner,) in rows if owner)


@pytest.mark.parametrize("during", ["token streaming", "a tool call", "a map"])
def test_killing_the_busiest_worker_loses_and_repeats_nothing(q: Queue, runtime: Any, during: str) -> None:
    rng = random.Random(16)
    streaming = during == "token streaming"
    per_run = ITEMS if during == "a map" else 1  # s2's tool calls in one execution of s2
    hold = None if streaming else q.hold("s2")
    with FakeOpenAIServer(default=story) as llm:
        model = {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "k"}

        def worker() -> Any:
            proc = q.start("worker", "--concurrency", "4", **model)
            wait_for(lambda: "ready" in log_of(proc), proc, what="the worker to be ready")
            return proc

        workers = [worker(), worker()]
        server = q.start("serve", "--port", "0")
        announce = wait_for(lambda: "API on http://" in log_of(server) and log_of(server), server, what="the API")
        base = announce.split("API on ", 1)[1].split(" ", 1)[0].rstrip(";")
        ids = [runtime.submit(streaming_doc(map_s2=during == "a map"), {"x": x}) for x in range(RUNS)]
        clients = [Client(base, run_id, rng) for run_id in ids]
        for client in clients:
            client.start()
        if streaming:
            there = "SELECT count(DISTINCT run_id) FROM events WHERE type = 'llm.token' AND run_id = ANY(:ids)"
        else:
            there = "SELECT count(*) FROM events WHERE type = 'node.started' AND node_id = 's2' AND run_id = ANY(:ids)"
        wait_for(lambda: q.query(there, ids=ids)[0][0] == RUNS, timeout=40, what=f"every run in {during}")
        busiest, held = _owners(q, ids).most_common(1)[0]
        victim = next(w for w in workers if w.pid == busiest)
        killed_runs = [run_id for run_id in ids if f":{busiest}:" in q.run_row(run_id)["owner"]]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        workers.append(worker())  # the replacement
        if hold is not None:
            hold.unlink()
        infos = [runtime.wait(run_id, timeout=60) for run_id in ids]
        for client in clients:
            client.join(30)

        assert [info.status for info in infos] == ["completed"] * RUNS, [(i.status, i.error) for i in infos]
        assert q.counts()["s1"] == RUNS  # finished by every run before the kill: never again
        rerun = 0
        for run_id, client in zip(ids, clients, strict=True):
            events = q.events(run_id)
            last = len(events)
            assert [seq for seq, *_ in events] == list(range(1, last + 1)), run_id
            assert client.error is None, client.error
            assert client.seen == list(range(1, last + 1)), (run_id, client.seen)
            completions = Counter(node for _, kind, node, _ in events if kind == "node.completed")
            assert all(n == 1 for n in completions.values()), completions
            restarted = [node for _, kind, node, data in events if kind == "node.started" and data.get("restarted")]
            cut = [i for i, (_, kind, _, data) in enumerate(events) if kind == "log" and data.get("interrupted")]
            if run_id in killed_runs:  # the node in flight at the kill runs again, marked; none that had finished
                assert len(cut) == 1 and f"pid {busiest}" in events[cut[0]][3]["message"]
                before = events[: cut[0]]
                began = [n for _, kind, n, _ in before if kind == "node.started"]
                finished = {n for _, kind, n, _ in before if kind == "node.completed"}
                assert restarted == [n for n in began if n not in finished], (run_id, restarted, began, finished)
                assert during != "token streaming" or "reply" in began
                rerun += 1
            else:
                assert not restarted and not cut, run_id
        # executions: once per run, plus at most once more for a run cut off in that node
        assert RUNS * per_run <= q.counts()["s2"] <= (RUNS + rerun) * per_run
        assert RUNS <= len(llm.requests) <= RUNS + rerun
        assert len(killed_runs) == held >= 1
        assert sum(c.reconnects for c in clients) >= RUNS  # the clients did drop and come back

        if not streaming:
            return
        # cancel three running runs through the API process
        hold = q.hold("s1")
        more = [runtime.submit(streaming_doc(), {"x": x}) for x in range(3)]
        wait_for(lambda: q.counts()["s1"] >= RUNS + 3, what="three runs in s1")
        with httpx.Client(base_url=base, timeout=10) as http:
            assert all(http.post(f"/runs/{run_id}/cancel").status_code == 202 for run_id in more)
        ended = [runtime.wait(run_id, timeout=15) for run_id in more]
        hold.unlink()
        assert [info.status for info in ended] == ["cancelled"] * 3
        for run_id in more:
            events = q.events(run_id)
            assert events[-1][1] == "run.cancelled" and [e[0] for e in events] == list(range(1, len(events) + 1))
