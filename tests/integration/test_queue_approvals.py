# ruff: noqa: F811 - the fixtures q and runtime are imported, and named again as parameters
"""Approvals in queue mode (issue 19): a waiting run holds no job; a decision queues a new one.

Real parts, as in tests/integration/test_queue.py (whose fixtures these are): a
throwaway PostgreSQL, ``python -m engine migrate``, real ``python -m engine
worker`` processes, Procrastinate's own tables read directly, the CLI as
another process. The ``runtime`` fixture is the QueueRuntime a dashboard or the
API holds; it applies no timeouts itself, so a timeout decided here was decided
by a worker.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from engine.errors import DecisionInvalid, NotResumable, NotWaiting
from tests.integration.test_queue import Queue, log_of, q, runtime, wait_for  # noqa: F401 - the fixtures
from tests.unit.test_approval import gate_doc

pytest_plugins = ["tests.integration.pg", "tests.integration.chroma_server"]


def _status(q: Queue, run_id: str) -> str:
    return str(q.run_row(run_id).get("status"))


def _open_jobs(q: Queue, run_id: str) -> list[tuple[str, str | None, int]]:
    return [job for job in q.jobs(run_id) if job[0] in ("todo", "doing")]


def _waiting_without_job(q: Queue, run_id: str) -> None:
    wait_for(lambda: _status(q, run_id) == "waiting", timeout=30, what=f"run {run_id} to wait")
    wait_for(lambda: not _open_jobs(q, run_id), timeout=15, what="its job to close")
    assert [job[0] for job in q.jobs(run_id)] == ["succeeded"]  # the job ended cleanly with the run's wait


def _started(q: Queue, run_id: str) -> Counter[str]:
    return Counter(str(node) for _, kind, node, _ in q.events(run_id) if kind == "node.started")


def _kinds(q: Queue, run_id: str, kind: str) -> list[dict[str, Any]]:
    return [data for _, k, _, data in q.events(run_id) if k == kind]


def test_a_waiting_run_holds_no_job_and_a_decision_continues_it_on_a_worker(q: Queue, runtime: Any) -> None:
    server = q.start("serve", "--port", "0")
    worker = q.worker()
    here, by_cli = runtime.submit(gate_doc()), runtime.submit(gate_doc(), {"text": "cli"})
    by_api = runtime.submit(gate_doc(), {"text": "api"})
    for run_id in (here, by_cli, by_api):
        _waiting_without_job(q, run_id)
    time.sleep(1.5)  # three of the worker's sweep ticks: a waiting run is neither swept nor queued again
    assert _status(q, here) == "waiting" and not _open_jobs(q, here)
    assert [r["node"] for r in runtime.waiting_approvals(here)] == ["ok"]
    with pytest.raises(NotResumable, match="python -m engine approve"):
        runtime.resume(here)

    with pytest.raises(DecisionInvalid, match="not an option"):
        runtime.decide(here, "ok", "maybe")
    with pytest.raises(NotWaiting, match="waiting: ok"):
        runtime.decide(here, "draft", "approve")
    assert _status(q, here) == "waiting" and len(q.jobs(here)) == 1 and not _kinds(q, here, "approval.decided")

    runtime.decide(here, "ok", "approve", fields={"body": "edited"}, comment="go", decided_by="test")
    # one transaction wrote the decision, the run's new status and its job: all three are there at once
    assert _status(q, here) in ("queued", "running", "completed") and len(q.jobs(here)) == 2
    [decided] = _kinds(q, here, "approval.decided")
    assert decided["decision"] == "approve" and decided["decided_by"] == "test"
    info = runtime.wait(here, timeout=30)
    assert info.status == "completed" and info.result == {"sent": "edited|go"}, info
    assert _started(q, here) == Counter({"in": 1, "draft": 1, "ok": 1, "sent": 1})  # no finished node ran again
    events = q.events(here)
    assert [seq for seq, *_ in events] == list(range(1, len(events) + 1))
    row = q.run_row(here)
    assert row["owner"].split(":")[1] == str(worker.pid)  # it went on on the worker, not in this process
    assert row["lease_epoch"] == 2 and log_of(worker).count(f"run {here} claimed") == 2
    assert [job[0] for job in q.jobs(here)] == ["succeeded", "succeeded"]
    with pytest.raises(NotWaiting, match="completed, not waiting"):
        runtime.decide(here, "ok", "approve")

    done = q.cli("approve", by_cli, "ok", "--decision", "approve", "--field", 'body="by cli"', "--quiet")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"sent": "by cli|"}
    assert _started(q, by_cli) == Counter({"in": 1, "draft": 1, "ok": 1, "sent": 1})
    assert str(_kinds(q, by_cli, "approval.decided")[0]["decided_by"]).startswith("cli:")
    assert q.run_row(by_cli)["owner"].split(":")[1] == str(worker.pid)

    announce = wait_for(lambda: "API on http://" in log_of(server) and log_of(server), server, what="the API")
    base = announce.split("API on ", 1)[1].split(" ", 1)[0].rstrip(";")
    with httpx.Client(base_url=base, timeout=10) as client:
        answer = client.post(f"/runs/{by_api}/approvals/ok", json={"decision": "reject", "comment": "no"})
        assert answer.status_code == 202, answer.text
        again = client.post(f"/runs/{by_api}/approvals/ok", json={"decision": "approve"})
        assert again.status_code == 409 and "not waiting" in again.json()["detail"], again.text
    assert runtime.wait(by_api, timeout=30).result == {"dropped": "dropped: no"}
    assert _started(q, by_api) == Counter({"in": 1, "draft": 1, "ok": 1, "dropped": 1})
    assert q.run_row(by_api)["owner"].split(":")[1] == str(worker.pid)  # not the API server's process


def test_two_decisions_at_once_one_wins_and_a_waiting_run_cancels_without_a_job(q: Queue, runtime: Any) -> None:
    q.worker()
    raced, cancelled = runtime.submit(gate_doc()), runtime.submit(gate_doc())
    for run_id in (raced, cancelled):
        _waiting_without_job(q, run_id)

    outcomes: list[str] = []

    def decide(decision: str) -> None:
        try:
            runtime.decide(raced, "ok", decision, decided_by=decision)
            outcomes.append(f"won {decision}")
        except NotWaiting as exc:
            outcomes.append(f"refused: {exc}")

    # both decisions start while the run's row is locked elsewhere, so both are in flight when it frees
    with q.engine.begin() as conn:
        conn.execute(text("SELECT 1 FROM runs WHERE run_id = :r FOR UPDATE"), {"r": raced})
        threads = [threading.Thread(target=decide, args=(d,)) for d in ("approve", "reject")]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        assert not outcomes  # both wait for the row
    for thread in threads:
        thread.join(15)
    assert sorted(o.split(" ")[0] for o in outcomes) == ["refused:", "won"], outcomes
    assert "is queued, not waiting" in next(o for o in outcomes if o.startswith("refused")), outcomes
    [decided] = _kinds(q, raced, "approval.decided")
    assert len(q.jobs(raced)) == 2  # one new job, not two
    info = runtime.wait(raced, timeout=30)
    assert info.status == "completed"
    winner = decided["decision"]
    assert info.result == ({"sent": "draft of hello|"} if winner == "approve" else {"dropped": "dropped: "}), info

    assert runtime.cancel(cancelled) is True
    assert _status(q, cancelled) == "cancelled"  # at once: nothing runs it, no job is needed
    ends = [(kind, node) for _, kind, node, _ in q.events(cancelled)][-2:]
    assert ends == [("node.failed", "ok"), ("run.cancelled", None)], ends
    assert _kinds(q, cancelled, "node.failed")[-1]["cancelled"] is True
    assert [job[0] for job in q.jobs(cancelled)] == ["succeeded"]  # the first job only
    rows = q.query("SELECT status FROM node_executions WHERE run_id = :r AND node_id = 'ok'", r=cancelled)
    assert rows == [("cancelled",)], rows
    with pytest.raises(NotWaiting):
        runtime.decide(cancelled, "ok", "approve")
    assert runtime.cancel(cancelled) is False
    time.sleep(1.0)
    assert _status(q, cancelled) == "cancelled" and len(q.jobs(cancelled)) == 1


def test_a_due_timeout_is_applied_by_one_worker_with_no_dashboard_sweeping(q: Queue, runtime: Any) -> None:
    workers = [q.worker(), q.worker()]
    run_id = runtime.submit(gate_doc(timeout_s=1, on_timeout="reject"))
    failing = runtime.submit(gate_doc(timeout_s=1, on_timeout="fail"))
    ended = ("completed", "failed", "cancelled")
    wait_for(lambda: _status(q, run_id) in ended, timeout=30, what="the timeout to be applied")
    info = runtime.status(run_id)
    assert info.status == "completed" and info.result == {"dropped": "dropped: "}, info
    [decided] = _kinds(q, run_id, "approval.decided")
    assert decided["decided_by"] == "timeout" and decided["timed_out"] is True and decided["decision"] == "reject"
    assert _started(q, run_id) == Counter({"in": 1, "draft": 1, "ok": 1, "dropped": 1})
    said = [log_of(w).count(f"run {run_id}: approval 'ok' timed out: 'reject'; queued") for w in workers]
    assert sorted(said) == [0, 1], said  # one worker decided it; the other's sweep found it taken
    assert [job[0] for job in q.jobs(run_id)] == ["succeeded", "succeeded"]

    wait_for(lambda: _status(q, failing) == "failed", timeout=30, what="on_timeout: fail")
    row = q.run_row(failing)
    assert "on_timeout: fail" in (row["error"] or ""), row
    assert len(_kinds(q, failing, "approval.decided")) == 1


def test_the_sweep_leaves_a_waiting_run_whose_worker_died_before_closing_its_job(q: Queue, runtime: Any) -> None:
    """What a worker leaves when killed between committing ``run.waiting`` and closing the job (in-process
    sweep): one run still waiting, one decided meanwhile (queued, with the decision's job)."""
    from engine.queue.worker import QueueWorker, WorkerSettings

    waiting, decided = runtime.submit(gate_doc()), runtime.submit(gate_doc())
    with q.engine.begin() as conn:
        dead = conn.execute(text("SELECT worker_id FROM procrastinate_register_worker_v1()")).scalar()
        conn.execute(text("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'"))
        for run_id in (waiting, decided):
            conn.execute(text("SELECT procrastinate_fetch_job_v2(ARRAY['runs'], :w)"), {"w": dead})
            conn.execute(text("UPDATE runs SET status = 'waiting', lease_epoch = 1 WHERE run_id = :r"), {"r": run_id})
            request = {"message": "m", "fields": {}, "options": ["approve"], "execution": 0, "iteration": 0}
            conn.execute(
                text("INSERT INTO events (run_id, seq, ts, type, node_id, data) VALUES (:r, 1, 0, :t, 'ok', :d)"),
                {"r": run_id, "t": "approval.requested", "d": json.dumps(request)},
            )
            conn.execute(text("UPDATE runs SET last_seq = 1 WHERE run_id = :r"), {"r": run_id})
    runtime.decide(decided, "ok", "approve")
    assert [job[0] for job in q.jobs(decided)] == ["doing", "todo"]
    worker = QueueWorker(q.url, WorkerSettings(stalled_s=3))

    async def sweep() -> list[str]:
        async with worker.app.open_async():
            return await worker.sweep()

    try:
        assert asyncio.run(sweep()) == []
    finally:
        worker.store.close()
    row = q.run_row(waiting)
    assert row["status"] == "waiting" and row["lease_epoch"] == 1 and len(q.events(waiting)) == 1  # left as it was
    assert [job[0] for job in q.jobs(waiting)] == ["succeeded"]  # its job closed, not retried: the run holds none
    assert q.run_row(decided)["status"] == "queued" and q.run_row(decided)["lease_epoch"] == 1
    assert [job[0] for job in q.jobs(decided)] == ["succeeded", "todo"]  # the decision's job carries the run
