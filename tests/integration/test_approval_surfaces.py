"""Deciding an approval from the API and the CLI (issue 19), and a wait that survives kill -9.

Real parts: ``python -m engine.api`` (uvicorn) as a subprocess over a SQLite store, ``python -m engine approve``
as another process, SIGKILL of the server while its run waits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.store import Store
from tests.integration.test_api import REPO, Server, server_env, start_run, start_server, stored_events
from tests.unit.test_approval import gate_doc

WAIT_S = 30


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Server]:
    server = start_server(tmp_path / "api")
    yield server
    server.stop()


def run_status(api: Server, run_id: str) -> str:
    with api.client() as client:
        return str(client.get(f"/runs/{run_id}").json()["status"])


def wait_for(api: Server, run_id: str, status: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while run_status(api, run_id) != status:
        assert time.monotonic() < deadline, f"run {run_id} is {run_status(api, run_id)}, not {status}"
        time.sleep(0.05)


def decide(api: Server, run_id: str, node: str, body: dict[str, Any]) -> Any:
    with api.client() as client:
        return client.post(f"/runs/{run_id}/approvals/{node}", json=body)


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = server_env(root)
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_api_decides_with_202_and_refuses_with_409_and_422(api: Server) -> None:
    run_id = start_run(api, {"workflow": gate_doc()})
    wait_for(api, run_id, "waiting")
    assert decide(api, run_id, "ok", {"decision": "maybe"}).status_code == 422
    assert decide(api, run_id, "ok", {"decision": "approve", "fields": {"nope": 1}}).status_code == 422
    assert decide(api, run_id, "ok", {"decision": "approve", "extra": 1}).status_code == 422
    assert decide(api, run_id, "draft", {"decision": "approve"}).status_code == 409
    assert decide(api, "0" * 32, "ok", {"decision": "approve"}).status_code == 404
    answer = decide(api, run_id, "ok", {"decision": "approve", "fields": {"body": "edited"}, "comment": "go"})
    assert answer.status_code == 202, answer.text
    wait_for(api, run_id, "completed")
    with api.client() as client:
        assert client.get(f"/runs/{run_id}").json()["result"] == {"sent": "edited|go"}
    again = decide(api, run_id, "ok", {"decision": "approve"})
    assert again.status_code == 409 and "not waiting" in again.json()["detail"]
    decided = [e for e in stored_events(api, run_id) if e["type"] == "approval.decided"]
    assert len(decided) == 1 and decided[0]["data"]["decided_by"] == "api"


def test_the_api_cancels_a_waiting_run(api: Server) -> None:
    run_id = start_run(api, {"workflow": gate_doc()})
    wait_for(api, run_id, "waiting")
    with api.client() as client:
        answer = client.post(f"/runs/{run_id}/cancel")
    assert answer.status_code == 202 and answer.json()["status"] == "cancelled"
    assert run_status(api, run_id) == "cancelled"
    assert decide(api, run_id, "ok", {"decision": "approve"}).status_code == 409


def test_kill_9_while_waiting_then_the_cli_decides_from_another_process(tmp_path: Path) -> None:
    root = tmp_path / "api"
    server = start_server(root)
    try:
        run_id = start_run(server, {"workflow": gate_doc()})
        wait_for(server, run_id, "waiting")
    finally:
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)
    bad = cli(root, "approve", run_id, "ok", "--decision", "maybe")
    assert bad.returncode == 2 and "not an option" in bad.stderr and "Traceback" not in bad.stderr
    bad_field = cli(root, "approve", run_id, "ok", "--decision", "approve", "--field", "body=not json")
    assert bad_field.returncode == 2 and "not JSON" in bad_field.stderr
    done = cli(root, "approve", run_id, "ok", "--decision", "approve", "--field", 'body="by cli"', "--comment", "yes")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"sent": "by cli|yes"}
    again = cli(root, "approve", run_id, "ok", "--decision", "approve")
    assert again.returncode == 2 and "not waiting" in again.stderr
    store = Store(None, data_dir=str(root / "data"))
    try:
        log = store.events(run_id)
    finally:
        store.close()
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    started = Counter(str(e.node_id) for e in log if e.type == "node.started")
    assert started == Counter({"in": 1, "draft": 1, "ok": 1, "sent": 1})  # no finished node ran again
    [decided] = [e for e in log if e.type == "approval.decided"]
    assert str(decided.data["decided_by"]).startswith("cli:")


def test_the_cli_run_of_a_workflow_that_waits_exits_3_with_the_command_to_decide(tmp_path: Path) -> None:
    path = tmp_path / "gate.json"
    path.write_text(json.dumps(gate_doc()), encoding="utf-8")
    result = cli(tmp_path, "run", str(path))
    assert result.returncode == 3, result.stderr
    assert "python -m engine approve" in result.stderr and "waits for a decision at ok:" in result.stderr
