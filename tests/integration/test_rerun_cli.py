"""``python -m engine rerun`` (issue 14, rerun from a node) as a real subprocess against the local
OpenAI-compatible server (real ``openai`` client), over a SQLite store in a tmp ``DATA_DIR``.

What is checked: reused nodes make no model request, pinned outputs reach the rerun nodes'
prompts, ``forked_from`` is stored and shown, the source run's workflow version is the one that
reruns, a config edit holds for the rerun only, and bad requests exit 2 with every problem named.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from engine.store import Store
from tests.fake_openai import FakeOpenAIServer
from tests.integration.test_cli import REPO, cli_env, read_events, run_cli, write

BENCH = REPO / "bench" / "rerun_bench.py"


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("rerun_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHAIN: dict[str, Any] = _bench().CHAIN


def env_for(tmp_path: Path, server: FakeOpenAIServer) -> dict[str, str]:
    return cli_env(tmp_path, OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-test")


def user_text(request: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content")) for m in request["messages"] if m.get("role") == "user")


def source_run(tmp_path: Path, env: dict[str, str], doc: dict[str, Any] | None = None, name: str = "wf.json") -> str:
    events = tmp_path / f"{name}.events.jsonl"
    proc = run_cli(tmp_path, "run", str(write(tmp_path, doc or CHAIN, name)), "--events", str(events), env=env)
    assert proc.returncode in (0, 1), proc.stderr
    return read_events(events)[0]["run_id"]


def test_the_bench_figure_rerun_from_the_last_of_three_agents_is_one_model_request() -> None:
    figures = _bench().measure()
    assert figures["source_requests"] == 3
    assert figures["rerun_requests"] == 1


def test_pinned_output_reaches_the_rerun_node_and_reused_nodes_make_no_request(
    tmp_path: Path, fake_openai: FakeOpenAIServer
) -> None:
    env = env_for(tmp_path, fake_openai)
    run_id = source_run(tmp_path, env)
    assert len(fake_openai.requests) == 3
    events_path = tmp_path / "rerun.jsonl"
    proc = run_cli(
        tmp_path, "rerun", run_id, "--from", "c", "--output", 'b="PINNED draft"', "--events", str(events_path), env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"out": "echo: Edit: PINNED draft"}
    assert len(fake_openai.requests) == 4  # only c asked the model
    assert user_text(fake_openai.requests[-1]) == "Edit: PINNED draft"
    events = read_events(events_path)
    new_id = events[0]["run_id"]
    assert new_id != run_id
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "run.started"
    assert events[0]["data"]["forked_from"] == {"run_id": run_id, "node": "c", "outputs": ["b"]}
    reused = {
        e["node_id"]: e["data"]["output"] for e in events if e["type"] == "node.completed" and e["data"].get("reused")
    }
    assert set(reused) == {"start", "a", "b"} and reused["b"] == "PINNED draft"
    assert [e["node_id"] for e in events if e["type"] == "llm.completed"] == ["c"]
    assert "reused a" in proc.stderr
    store = Store(data_dir=tmp_path / "data")
    try:
        row = store.get_run(new_id)
        pinned = {"run_id": run_id, "node": "c", "outputs": ["b"], "pins": {"b": "PINNED draft"}}
        assert row is not None and row.forked_from == pinned  # the row keeps the values (a queue worker reads them)
        assert {n.node_id: n.reused for n in store.node_executions(new_id)} == {
            "start": True,
            "a": True,
            "b": True,
            "c": False,
            "out": False,
        }
        assert store.get_run(run_id).forked_from is None  # type: ignore[union-attr]
    finally:
        store.close()
    shown = run_cli(tmp_path, "show", new_id, env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"forked from: run {run_id} at node 'c', pinned outputs: b" in shown.stdout
    assert [line.split()[-3] for line in shown.stdout.splitlines() if line.strip().startswith("+")] == [
        "reused",
        "reused",
        "reused",
        "succeeded",
        "succeeded",
    ]


def test_a_failed_run_reruns_from_its_failed_node(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    env = env_for(tmp_path, fake_openai)
    fake_openai.enqueue_text("outline")
    fake_openai.enqueue_text("draft")
    fake_openai.enqueue_error(400, "the prompt was refused")  # not retried: c fails, the run fails
    run_id = source_run(tmp_path, env)
    proc = run_cli(tmp_path, "rerun", run_id, "--from", "c", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"out": "echo: Edit: draft"}
    assert len(fake_openai.requests) == 4


def test_a_rerun_uses_the_source_runs_workflow_version(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    env = env_for(tmp_path, fake_openai)
    old_run = source_run(tmp_path, env)
    changed = copy.deepcopy(CHAIN)
    changed["nodes"][3]["config"]["prompt"] = "Polish: {{ nodes.b.output }}"
    new_run = source_run(tmp_path, env, changed, "wf2.json")
    assert user_text(fake_openai.requests[-1]).startswith("Polish: ")
    proc = run_cli(tmp_path, "rerun", old_run, "--from", "c", "--quiet", env=env)
    assert proc.returncode == 0, proc.stderr
    assert user_text(fake_openai.requests[-1]).startswith("Edit: ")  # version 1's prompt, not the latest
    store = Store(data_dir=tmp_path / "data")
    try:
        versions = {r.run_id: r.workflow_version for r in store.list_runs()}
    finally:
        store.close()
    assert versions[old_run] == 1 and versions[new_run] == 2
    assert sorted(versions.values()) == [1, 1, 2]  # the rerun is of version 1


def test_a_config_edit_holds_for_the_rerun_only(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    env = env_for(tmp_path, fake_openai)
    run_id = source_run(tmp_path, env)
    edit = json.dumps({"prompt": "Rewrite: {{ nodes.b.output }}", "temperature": 0.1})
    proc = run_cli(tmp_path, "rerun", run_id, "--from", "c", "--config", edit, "--quiet", env=env)
    assert proc.returncode == 0, proc.stderr
    assert user_text(fake_openai.requests[-1]).startswith("Rewrite: echo: Draft from")
    assert fake_openai.requests[-1]["temperature"] == 0.1
    store = Store(data_dir=tmp_path / "data")
    try:
        (workflow,) = store.list_workflows()
        assert len(store.workflow_versions(workflow.id)) == 1  # the saved workflow is unchanged
    finally:
        store.close()


def _interrupted_run(tmp_path: Path) -> str:
    """A run row whose owner process is gone: the next runtime marks it interrupted."""
    store = Store(data_dir=tmp_path / "data")
    try:
        ref = store.save_workflow(CHAIN)
        store.create_run(run_id="f" * 32, workflow=ref, inputs={}, owner=f"{socket.gethostname()}:999999999:1")
        store.flush()
    finally:
        store.close()
    return "f" * 32


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--from", "nope"], ["node 'nope': no such node in this workflow version (its nodes: start, a, b, c, out)"]),
        (
            ["--from", "b", "--output", "c=1", "--output", "zz=2"],
            ["output 'c': node 'c' runs again", "output 'zz': no node"],
        ),
        (["--from", "c", "--output", "b=not json"], ["--output b: the value is not JSON"]),
        (
            ["--from", "c", "--config", '{"prompt": 5, "colour": "red"}'],
            ["config.prompt", "config.colour: unknown key"],
        ),
        (["--from", "c", "--config", "[1]"], ["--config must be a JSON object"]),
    ],
)
def test_bad_rerun_requests_exit_2_naming_every_problem(
    tmp_path: Path, fake_openai: FakeOpenAIServer, args: list[str], expected: list[str]
) -> None:
    env = env_for(tmp_path, fake_openai)
    run_id = source_run(tmp_path, env)
    proc = run_cli(tmp_path, "rerun", run_id, *args, env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    for text in expected:
        assert text in proc.stderr, proc.stderr
    assert len(fake_openai.requests) == 3  # nothing ran


def test_runs_that_cannot_be_rerun_exit_2(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    env = env_for(tmp_path, fake_openai)
    missing = run_cli(tmp_path, "rerun", "0" * 32, "--from", "c", env=env)
    assert missing.returncode == 2 and "no run with id" in missing.stderr
    run_id = _interrupted_run(tmp_path)
    refused = run_cli(tmp_path, "rerun", run_id, "--from", "c", env=env)
    assert refused.returncode == 2, refused.stderr
    assert f"run '{run_id}' is interrupted; only completed, failed or cancelled runs can be rerun" in refused.stderr
    assert "Traceback" not in refused.stderr and not fake_openai.requests
