"""``POST /runs/{id}/rerun`` (issue 14, rerun from a node) on a real uvicorn server subprocess whose
agents talk to the local OpenAI-compatible server through the real ``openai`` client.

Every POST sends ``application/json`` (the API's guards refuse other bodies with 415).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fake_openai import FakeOpenAIServer
from tests.integration.test_api import (
    STREAM_TIMEOUT,
    Gates,
    Server,
    assert_complete,
    at_gate,
    check_frame,
    follow_sse,
    gated_workflow,
    parse_sse,
    read_until,
    start_run,
    start_server,
)
from tests.integration.test_rerun_cli import CHAIN, user_text


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, model: FakeOpenAIServer) -> Iterator[Server]:
    server = start_server(
        tmp_path_factory.mktemp("rerun-api"), OPENAI_BASE_URL=model.base_url, OPENAI_API_KEY="sk-test"
    )
    yield server
    assert server.stop() == 0, server.log.read_text()[-3000:]
    assert "Traceback" not in server.log.read_text(errors="replace"), server.log.read_text()[-3000:]


def rerun(api: Server, run_id: str, body: Any) -> httpx.Response:
    with api.client() as client:
        return client.post(f"/runs/{run_id}/rerun", json=body)


def finished_chain_run(api: Server, doc: dict[str, Any] | None = None) -> str:
    run_id = start_run(api, {"workflow": doc or CHAIN})
    assert_complete(follow_sse(api, run_id))
    return run_id


def test_rerun_reuses_upstream_nodes_and_pins_reach_downstream_templates(api: Server, model: FakeOpenAIServer) -> None:
    run_id = finished_chain_run(api)
    before = len(model.requests)
    answer = rerun(api, run_id, {"from": "b", "outputs": {"a": "PINNED outline"}})
    assert answer.status_code == 202, answer.text
    new_id = answer.json()["run_id"]
    assert set(answer.json()) == {"run_id"} and new_id != run_id
    events = follow_sse(api, new_id)
    assert_complete(events)
    assert [user_text(r) for r in model.requests[before:]] == [
        "Draft from: PINNED outline",
        "Edit: echo: Draft from: PINNED outline",
    ]
    started = events[0]
    assert started["data"]["forked_from"] == {"run_id": run_id, "node": "b", "outputs": ["a"]}
    reused = [e["node_id"] for e in events if e["type"] == "node.completed" and e["data"].get("reused")]
    assert reused == ["start", "a"]
    with api.client() as client:
        record = client.get(f"/runs/{new_id}").json()
        listed = {r["run_id"]: r for r in client.get("/runs").json()}
    assert record["forked_from"] == {"run_id": run_id, "node": "b", "outputs": ["a"]}
    assert record["status"] == "completed" and record["result"] == {
        "out": "echo: Edit: echo: Draft from: PINNED outline"
    }
    assert listed[new_id]["forked_from"]["run_id"] == run_id and listed[run_id]["forked_from"] is None


def test_rerun_of_a_run_of_an_older_version_uses_that_version(api: Server, model: FakeOpenAIServer) -> None:
    doc = copy.deepcopy(CHAIN)
    doc["name"] = "rerun api versions"
    with api.client() as client:
        first = client.post("/workflows", json=doc).json()
        old_run = start_run(api, {"workflow_id": first["id"]})
        assert_complete(follow_sse(api, old_run))
        doc["nodes"][3]["config"]["prompt"] = "Polish: {{ nodes.b.output }}"
        assert client.post("/workflows", json=doc).json()["version"] == 2
        answer = client.post(f"/runs/{old_run}/rerun", json={"from": "c"})
        assert answer.status_code == 202, answer.text
        new_id = answer.json()["run_id"]
        assert_complete(follow_sse(api, new_id))
        record = client.get(f"/runs/{new_id}").json()
    assert record["workflow_version"] == 1
    assert user_text(model.requests[-1]).startswith("Edit: ")


def test_rerun_with_a_config_edit_of_the_picked_node(api: Server, model: FakeOpenAIServer) -> None:
    run_id = finished_chain_run(api)
    answer = rerun(api, run_id, {"from": "c", "config": {"prompt": "Summarise: {{ nodes.b.output }}"}})
    assert answer.status_code == 202, answer.text
    assert_complete(follow_sse(api, answer.json()["run_id"]))
    assert user_text(model.requests[-1]).startswith("Summarise: echo: Draft from")


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        ({"from": "nope"}, ["node 'nope'"]),
        ({"from": "b", "outputs": {"c": 1, "ghost": 2}}, ["output 'c'", "output 'ghost'"]),
        ({"from": "c", "config": {"prompt": 5, "colour": "red"}}, ["node 'c'", "node 'c'"]),
        ({"from": "c", "outputs": {"a": 1}, "config": {"max_steps": "many"}}, ["node 'c'"]),
        ({"node": "c"}, ["body.from", "body.node"]),
        ({"from": "c", "outputs": [1]}, ["body.outputs"]),
    ],
)
def test_bad_rerun_requests_are_422_listing_every_problem(
    api: Server, model: FakeOpenAIServer, body: dict[str, Any], problems: list[str]
) -> None:
    run_id = finished_chain_run(api)
    before = len(model.requests)
    answer = rerun(api, run_id, body)
    assert answer.status_code == 422, answer.text
    assert sorted(p["where"] for p in answer.json()["problems"]) == sorted(problems), answer.json()
    assert len(model.requests) == before


def test_rerun_needs_a_known_finished_run_and_a_json_body(api: Server, tmp_path: Path, model: FakeOpenAIServer) -> None:
    with api.client() as client:
        assert client.post("/runs/no-such-run/rerun", json={"from": "c"}).status_code == 404
        form = client.post("/runs/no-such-run/rerun", content=b"from=c", headers={"Content-Type": "text/plain"})
        assert form.status_code == 415
    gates = Gates(tmp_path, "rerun")
    run_id = start_run(api, {"workflow": gated_workflow("rerun gated"), "inputs": gates.inputs})
    with httpx.Client(timeout=STREAM_TIMEOUT, headers=api.headers) as client, client.stream(
        "GET", f"{api.url}/runs/{run_id}/events", headers={"Accept": "text/event-stream"}
    ) as response:
        messages = parse_sse(response.iter_lines())
        events = read_until(messages, at_gate("gate1"))
        running = client.post(f"{api.url}/runs/{run_id}/rerun", json={"from": "editor"})
        assert running.status_code == 409 and "running" in running.json()["detail"]
        assert client.post(f"{api.url}/runs/{run_id}/cancel").status_code == 202
        events += [check_frame(m) for m in messages]
    assert_complete(events, terminal="run.cancelled")
    # a cancelled run reruns: the writer agent is reused, the gate and what follows run
    gates.open_all()
    before = len(model.requests)
    answer = rerun(api, run_id, {"from": "gate1"})
    assert answer.status_code == 202, answer.text
    fork = follow_sse(api, answer.json()["run_id"])
    assert_complete(fork)
    assert [e["node_id"] for e in fork if e["type"] == "node.completed" and e["data"].get("reused")] == [
        "start",
        "writer",
    ]
    assert len(model.requests) == before + 1  # the editor only
