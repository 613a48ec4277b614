# ruff: noqa: F811 - the fixtures q and runtime are imported, and named again as parameters
"""Rerun from a node (a fork) in queue mode (issue 16): queued with its job, started on a worker.

Real parts, as in tests/integration/test_queue.py (whose fixtures these are): a
throwaway PostgreSQL, ``python -m engine migrate``, real ``python -m engine
worker`` processes, the API and the CLI as other processes. The chain's tool
nodes note each execution in a counter file (tests/integration/test_resume.py's
plugin), so "reused, no tool call" is counted where the tools run: on the workers.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from engine.errors import ForkInvalid, NotForkable
from tests.integration.test_queue import Queue, _holder, log_of, q, runtime, wait_for  # noqa: F401 - fixtures
from tests.integration.test_resume import chain_doc

pytest_plugins = ["tests.integration.pg", "tests.integration.chroma_server"]

TOOL_NODES = ("s1", "s2", "s3", "s4")


def _source(q: Queue, runtime: Any) -> str:
    """A completed chain run (x = 10: out 14), each tool node run once."""
    run_id = runtime.submit(chain_doc(), {"x": 10})
    info = runtime.wait(run_id, timeout=45)
    assert info.status == "completed" and info.result == {"out": 14}, info
    assert all(q.counts()[n] == 1 for n in TOOL_NODES), q.counts()
    return run_id


def _of(q: Queue, run_id: str, kind: str) -> list[tuple[str | None, dict[str, Any]]]:
    return [(node, data) for _, k, node, data in q.events(run_id) if k == kind]


def _forked_from_row(q: Queue, run_id: str) -> Any:
    [(value,)] = q.query("SELECT forked_from FROM runs WHERE run_id = :r", r=run_id)
    return value if isinstance(value, dict) else json.loads(value)


def test_a_rerun_runs_on_a_worker_reusing_upstream_and_a_pinned_value_reaches_downstream(
    q: Queue, runtime: Any
) -> None:
    worker = q.worker()
    source = _source(q, runtime)
    edit = {"args": {"label": "s3b", "value": "{{ nodes.s2.output }}"}}
    new = runtime.rerun(source, "s3", outputs={"s2": 100}, config=edit)
    assert new != source and len(q.jobs(new)) == 1  # the row and its job, written together
    info = runtime.wait(new, timeout=45)
    assert info.status == "completed" and info.result == {"out": 102}, info  # s2 pinned to 100: s3b 101, s4 102

    counts = q.counts()  # upstream reused: no tool call; s3 (edited: label s3b) and s4 ran again
    assert (counts["s1"], counts["s2"], counts["s3"], counts["s3b"], counts["s4"]) == (1, 1, 1, 1, 2), counts
    assert [node for node, _ in _of(q, new, "tool.called")] == ["s3", "s4"]
    reused = {node: data for node, data in _of(q, new, "node.completed") if data.get("reused")}
    assert set(reused) == {"start", "s1", "gate", "s2"} and reused["s2"]["output"] == 100, reused
    assert {node for node, data in _of(q, new, "node.started") if data.get("reused")} == set(reused)
    [(_, started)] = _of(q, new, "run.started")
    expected = {"run_id": source, "node": "s3", "config": edit, "outputs": ["s2"]}
    assert started["forked_from"] == expected  # as local mode's: the names of the pins, not their values
    assert _forked_from_row(q, new) == {**expected, "pins": {"s2": 100}}  # the row keeps the values
    row = q.run_row(new)
    assert row["owner"].split(":")[1] == str(worker.pid) and f"run {new} claimed" in log_of(worker)
    shown = q.cli("show", new)
    assert shown.returncode == 0, shown.stderr
    assert f"forked from: run {source} at node 's3'" in shown.stdout and "pinned outputs: s2" in shown.stdout
    assert "pins" not in shown.stdout
    by_cli = q.cli("rerun", source, "--from", "s4", "--output", "s3=7", "--quiet")  # queues, then follows it
    assert by_cli.returncode == 0, by_cli.stderr
    assert json.loads(by_cli.stdout) == {"out": 8} and q.counts()["s4"] == 3


def test_bad_reruns_fail_as_in_local_mode_a_queued_one_cancels_and_the_api_answers_202(
    q: Queue, runtime: Any
) -> None:
    worker = q.worker()
    source = _source(q, runtime)
    worker.terminate()  # no worker: a rerun stays queued
    worker.wait(15)
    before = q.query("SELECT count(*) FROM runs")
    with pytest.raises(ForkInvalid, match="node 'nope': no such node in this workflow version"):
        runtime.rerun(source, "nope")
    with pytest.raises(ForkInvalid, match="runs again in a rerun from 's2'") as caught:
        runtime.rerun(source, "s2", outputs={"s3": 1, "ghost": 2})
    assert [p.where for p in caught.value.problems] == ["output 's3'", "output 'ghost'"]  # every problem at once
    with pytest.raises(ForkInvalid):
        runtime.rerun(source, "s3", config={"tool": "no_such_tool"})
    assert q.query("SELECT count(*) FROM runs") == before  # nothing queued

    queued = runtime.rerun(source, "s4")
    assert q.run_row(queued)["status"] == "queued" and q.jobs(queued)[0][0] == "todo"
    assert runtime.cancel(queued) is True
    events = q.events(queued)
    assert [kind for _, kind, _, _ in events] == ["run.started", "run.cancelled"]
    assert events[0][3]["forked_from"] == {"run_id": source, "node": "s4"}  # as a local fork cancelled at once

    server = q.start("serve", "--port", "0")
    worker = q.worker()
    hold = q.hold("s2")
    running = runtime.submit(chain_doc(), {"x": 1})
    wait_for(lambda: q.run_row(running).get("status") == "running", worker, what="the run to start")
    with pytest.raises(NotForkable, match=f"run '{running}' is running; only completed, failed or cancelled"):
        runtime.rerun(running, "s3")
    announce = wait_for(lambda: "API on http://" in log_of(server) and log_of(server), server, what="the API")
    base = announce.split("API on ", 1)[1].split(" ", 1)[0].rstrip(";")
    with httpx.Client(base_url=base, timeout=10) as client:
        busy = client.post(f"/runs/{running}/rerun", json={"from": "s3"})
        assert busy.status_code == 409 and "is running" in busy.json()["detail"], busy.text
        unknown = client.post(f"/runs/{source}/rerun", json={"from": "nope"})
        assert unknown.status_code == 422 and "no such node" in unknown.text, unknown.text
        answer = client.post(f"/runs/{source}/rerun", json={"from": "s4", "outputs": {"s3": 40}})
        assert answer.status_code == 202, answer.text
        new = answer.json()["run_id"]
        wait_for(lambda: client.get(f"/runs/{new}").json()["status"] == "completed", worker, what="the API's rerun")
        record = client.get(f"/runs/{new}").json()
        assert record["result"] == {"out": 41}, record
        assert record["forked_from"] == {"run_id": source, "node": "s4", "outputs": ["s3"]}  # no values here
    assert q.run_row(new)["owner"].split(":")[1] == str(worker.pid)  # ran on the worker, not in the API's process
    hold.unlink()
    assert runtime.wait(running, timeout=45).status == "completed"


def test_a_fork_interrupted_on_a_worker_continues_on_another_from_its_own_log(q: Queue, runtime: Any) -> None:
    workers = [q.worker(), q.worker()]
    source = _source(q, runtime)
    hold = q.hold("s4b")
    new = runtime.rerun(source, "s4", config={"args": {"label": "s4b", "value": "{{ nodes.s3.output }}"}})
    wait_for(lambda: q.counts()["s4b"] >= 1, what="the edited s4 to start")
    wait_for(lambda: ("s4", False) in {(n, d.get("reused", False)) for n, d in _of(q, new, "node.started")},
             what="s4's start committed")
    victim = _holder(q, new, workers)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(10)
    time.sleep(0.2)
    hold.unlink()
    info = runtime.wait(new, timeout=60)
    assert info.status == "completed" and info.result == {"out": 14}, info
    counts = q.counts()  # the edit was applied again on the other worker: s4b twice, the original s4 never again
    assert Counter({n: counts[n] for n in (*TOOL_NODES, "s4b")}) == Counter(
        {"s1": 1, "s2": 1, "s3": 1, "s4": 1, "s4b": 2}
    ), counts
    events = q.events(new)
    assert [seq for seq, *_ in events] == list(range(1, len(events) + 1))
    assert len(_of(q, new, "run.started")) == 1
    reused = [node for node, data in _of(q, new, "node.completed") if data.get("reused")]
    assert sorted(reused) == ["gate", "s1", "s2", "s3", "start"]  # once each: the resume reloaded, not re-emitted
    restarted = [node for node, data in _of(q, new, "node.started") if data.get("restarted")]
    assert restarted == ["s4"]
    assert any(d.get("resumed") for _, d in _of(q, new, "log"))
