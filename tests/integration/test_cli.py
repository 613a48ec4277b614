"""``python -m engine`` as a real subprocess (spec: "Command line").

Every test starts the CLI with ``sys.executable -m engine`` from the repository
root, with no ``OPENAI_*`` variables (so agents use the offline model) and
``OFFLINE_TOKEN_DELAY_S=0``. Slow runs for the live-events and Ctrl-C checks
use a tool registered in the subprocess through ``TOOLS_MODULES``: it waits
until a gate file exists, so the test decides when the run may go on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60


# --------------------------------------------------------------------------- helpers


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["OFFLINE_TOKEN_DELAY_S"] = "0"
    env["DATA_DIR"] = str(tmp_path / "data")
    env.pop("TOOLS_MODULES", None)
    env.update(extra)
    return env


def run_cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=REPO,
        env=env or cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def write(tmp_path: Path, doc: Any, name: str = "wf.json") -> Path:
    path = tmp_path / name
    if isinstance(doc, str):
        path.write_text(doc, encoding="utf-8")
    elif name.endswith((".yaml", ".yml")):
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    else:
        path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def result_of(proc: subprocess.CompletedProcess[str]) -> Any:
    """stdout must be exactly one JSON object and nothing else."""
    assert proc.returncode == 0, f"exit {proc.returncode}\nstderr:\n{proc.stderr}"
    value = json.loads(proc.stdout)  # raises on anything besides one JSON document
    assert isinstance(value, dict)
    assert proc.stdout.strip().count("\n") == 0, proc.stdout
    return value


def read_events(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def check_event_stream(events: list[dict[str, Any]], terminal: str) -> None:
    assert events, "no events written"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "run.started"
    assert events[-1]["type"] == terminal
    assert sum(e["type"] in ("run.completed", "run.failed", "run.cancelled") for e in events) == 1
    assert len({e["run_id"] for e in events}) == 1
    for e in events:
        assert set(e) >= {"seq", "run_id", "ts", "type", "node_id", "data"}, e
        assert isinstance(e["ts"], (int, float)) and isinstance(e["data"], dict)
    ts = [e["ts"] for e in events]
    assert ts == sorted(ts)


def branchy() -> dict[str, Any]:
    """start -> total -> big? -> (big | small) -> answer; one branch is skipped."""
    return {
        "format": "workflow/v1",
        "name": "branchy",
        "inputs": {"a": {"type": "number"}, "b": {"type": "number", "default": 10}},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "total", "type": "transform", "config": {"expression": "inputs.a + inputs.b"}},
            {"id": "is_big", "type": "condition", "config": {"expression": "nodes.total.output > 100"}},
            {"id": "big", "type": "transform", "config": {"template": "big {{ nodes.total.output }}"}},
            {"id": "small", "type": "transform", "config": {"template": "small {{ nodes.total.output }}"}},
            {
                "id": "done",
                "type": "output",
                "config": {"name": "answer", "value": "{{ nodes.big.output or nodes.small.output }}"},
            },
        ],
        "edges": [
            {"source": "start", "target": "total"},
            {"source": "total", "target": "is_big"},
            {"source": "is_big", "target": "big", "when": "true"},
            {"source": "is_big", "target": "small", "when": "default"},
            {"source": "big", "target": "done"},
            {"source": "small", "target": "done"},
        ],
    }


def echo() -> dict[str, Any]:
    """Returns its inputs, to see how the CLI parsed them."""
    return {
        "format": "workflow/v1",
        "name": "echo",
        "inputs": {
            "n": {"type": "number", "default": 0},
            "xs": {"type": "array", "default": []},
            "flag": {"type": "boolean", "default": False},
            "s": {"type": "string", "default": ""},
            "obj": {"type": "object", "default": {}},
        },
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "out", "type": "output", "config": {"name": "all", "value": "{{ inputs }}"}},
        ],
        "edges": [{"source": "start", "target": "out"}],
    }


def single(node: dict[str, Any], inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """start -> <node> -> out."""
    return {
        "format": "workflow/v1",
        "name": "single",
        "inputs": inputs or {},
        "nodes": [
            {"id": "start", "type": "input"},
            node,
            {"id": "out", "type": "output", "config": {"value": "{{ nodes." + node["id"] + ".output }}"}},
        ],
        "edges": [{"source": "start", "target": node["id"]}, {"source": node["id"], "target": "out"}],
    }


# --------------------------------------------------------------------------- run: the happy path


def test_run_prints_one_json_object_and_exits_0(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "run", str(write(tmp_path, branchy())), "--input", "a=5")
    assert result_of(proc) == {"answer": "small 15"}


def test_run_shows_a_progress_line_per_node_on_stderr(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "run", str(write(tmp_path, branchy())), "--input", "a=500")
    assert result_of(proc) == {"answer": "big 510"}
    lines = proc.stderr.splitlines()

    def status_line(node_id: str, words: tuple[str, ...]) -> bool:
        return any(node_id in line.split() and any(w in line.lower() for w in words) for line in lines)

    for node_id in ("start", "total", "is_big", "big", "done"):
        assert status_line(node_id, ("ok", "completed", "done", "succeeded")), f"{node_id}:\n{proc.stderr}"
    assert status_line("small", ("skipped",)), proc.stderr


def test_run_accepts_a_yaml_file(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "run", str(write(tmp_path, branchy(), "wf.yaml")), "--input", "a=1", "--input", "b=2")
    assert result_of(proc) == {"answer": "small 3"}


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (
            ["n=3.5", 'xs=[1, "two", 3]', "flag=true", "s=hello world"],
            {"n": 3.5, "xs": [1, "two", 3], "flag": True, "s": "hello world"},
        ),
        (["n=-2", "flag=false", 'obj={"k": [1]}'], {"n": -2, "flag": False, "obj": {"k": [1]}}),
        (["s=[not json"], {"s": "[not json"}),
        (["s=a=b"], {"s": "a=b"}),
        (['s="42"'], {"s": "42"}),
        (["s="], {"s": ""}),
    ],
    ids=[
        "number-list-bool-string",
        "negative-false-object",
        "unparsable-is-string",
        "equals-in-value",
        "json-string",
        "empty",
    ],
)
def test_input_values_are_json_when_they_parse_else_strings(
    tmp_path: Path, pairs: list[str], expected: dict[str, Any]
) -> None:
    args = [a for pair in pairs for a in ("--input", pair)]
    proc = run_cli(tmp_path, "run", str(write(tmp_path, echo())), *args)
    got = result_of(proc)["all"]
    for key, value in expected.items():
        assert got[key] == value and type(got[key]) is type(value), (key, got[key])


def test_inputs_json(tmp_path: Path) -> None:
    given = {"n": 7, "xs": ["a"], "flag": True, "s": "x y", "obj": {"deep": {"k": None}}}
    proc = run_cli(tmp_path, "run", str(write(tmp_path, echo())), "--inputs-json", json.dumps(given))
    assert result_of(proc)["all"] == given


def test_events_file_has_one_json_line_per_event_gap_free(tmp_path: Path) -> None:
    events_path = tmp_path / "events.jsonl"
    proc = run_cli(tmp_path, "run", str(write(tmp_path, branchy())), "--input", "a=5", "--events", str(events_path))
    result = result_of(proc)
    events = read_events(events_path)
    check_event_stream(events, "run.completed")
    assert events[-1]["data"]["result"] == result
    assert events[0]["data"]["inputs"] == {"a": 5, "b": 10}
    skipped = [e["node_id"] for e in events if e["type"] == "node.skipped"]
    assert skipped == ["big"]
    completed = {e["node_id"] for e in events if e["type"] == "node.completed"}
    assert completed == {"start", "total", "is_big", "small", "done"}
    assert "seq" not in proc.stdout


# --------------------------------------------------------------------------- run: failures (exit 1)


@pytest.mark.parametrize(
    ("node", "words"),
    [
        ({"id": "divide", "type": "transform", "config": {"expression": "inputs.x / 0"}}, ("division", "zero")),
        (
            {"id": "divide", "type": "transform", "config": {"expression": "nodes.start.output.missing_key + 1"}},
            ("missing_key",),
        ),
        (
            {
                "id": "divide",
                "type": "transform",
                "config": {"template": "value: {{ nodes.start.output.missing_key }}"},
            },
            ("missing_key",),
        ),
    ],
    ids=["zero-division", "undefined-expression", "undefined-template"],
)
def test_failing_run_exits_1_with_the_error_on_stderr_and_nothing_on_stdout(
    tmp_path: Path, node: dict[str, Any], words: tuple[str, ...]
) -> None:
    events_path = tmp_path / "events.jsonl"
    doc = single(node, {"x": {"type": "number", "default": 3}})
    proc = run_cli(tmp_path, "run", str(write(tmp_path, doc)), "--events", str(events_path))
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert "divide" in proc.stderr
    assert any(w in proc.stderr.lower() for w in words), proc.stderr
    events = read_events(events_path)
    check_event_stream(events, "run.failed")
    assert events[-1]["node_id"] == "divide" or events[-1]["data"].get("node_id") == "divide"


def test_iteration_limit_exits_1_naming_the_node_and_limit(tmp_path: Path) -> None:
    doc = {
        "format": "workflow/v1",
        "name": "forever",
        "settings": {"max_iterations": 3},
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "body", "type": "transform", "config": {"expression": "iteration"}},
            {"id": "again", "type": "condition", "config": {"expression": "true"}},
            {"id": "out", "type": "output", "config": {"value": "never"}},
        ],
        "edges": [
            {"source": "start", "target": "body"},
            {"source": "body", "target": "again"},
            {"source": "again", "target": "body", "when": "true"},
            {"source": "again", "target": "out", "when": "default"},
        ],
    }
    proc = run_cli(tmp_path, "run", str(write(tmp_path, doc)))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "body" in proc.stderr and "3" in proc.stderr and "max_iterations" in proc.stderr


# --------------------------------------------------------------------------- invalid files and inputs (exit 2)


def broken_doc() -> dict[str, Any]:
    doc = branchy()
    doc["format"] = "workflow/v0"
    doc["nodes"][1]["config"] = {"expresion": "inputs.a"}
    doc["nodes"][3]["config"] = {"template": "{{ nodes.nope_node.output }}"}
    doc["nodes"].append({"id": "lookup", "type": "tool", "config": {"tool": "no_such_tool_xyz"}})
    doc["edges"].append({"source": "start", "target": "lookup"})
    doc["edges"].append({"source": "lookup", "target": "ghost_node"})
    return doc


BROKEN_WORDS = ("workflow/v0", "expresion", "nope_node", "no_such_tool_xyz", "ghost_node")


@pytest.mark.parametrize("command", ["run", "validate"])
def test_invalid_file_exits_2_listing_every_problem(tmp_path: Path, command: str) -> None:
    proc = run_cli(tmp_path, command, str(write(tmp_path, broken_doc())))
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    missing = [w for w in BROKEN_WORDS if w not in proc.stderr]
    assert not missing, f"not on stderr: {missing}\n{proc.stderr}"


def test_validate_exits_0_for_a_valid_file(tmp_path: Path) -> None:
    for name in ("wf.json", "wf.yaml"):
        proc = run_cli(tmp_path, "validate", str(write(tmp_path, branchy(), name)))
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["run", "validate"])
def test_malformed_json_exits_2_naming_the_line(tmp_path: Path, command: str) -> None:
    path = write(tmp_path, '{\n  "format": "workflow/v1",\n  "name": "x"\n  "nodes": []\n}')
    proc = run_cli(tmp_path, command, str(path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "line 4" in proc.stderr and "column" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["run", "validate"])
def test_missing_file_exits_2(tmp_path: Path, command: str) -> None:
    proc = run_cli(tmp_path, command, str(tmp_path / "nowhere.json"))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "nowhere.json" in proc.stderr
    assert "Traceback" not in proc.stderr


def needs_inputs() -> dict[str, Any]:
    return {
        "format": "workflow/v1",
        "name": "needs inputs",
        "inputs": {
            "count": {"type": "integer"},
            "topic": {"type": "string", "description": "what about"},
            "ratio": {"type": "number", "default": 0.5},
            "tags": {"type": "array", "default": []},
        },
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "out", "type": "output", "config": {"value": "{{ inputs }}"}},
        ],
        "edges": [{"source": "start", "target": "out"}],
    }


def test_missing_mistyped_and_unknown_inputs_exit_2_naming_each(tmp_path: Path) -> None:
    events_path = tmp_path / "events.jsonl"
    proc = run_cli(
        tmp_path,
        "run",
        str(write(tmp_path, needs_inputs())),
        "--input",
        "ratio=fast",
        "--input",
        'tags={"a": 1}',
        "--input",
        "bogus_extra=1",
        "--events",
        str(events_path),
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    for name in ("count", "topic", "ratio", "tags", "bogus_extra"):
        assert name in proc.stderr, f"{name} not named:\n{proc.stderr}"
    # nothing ran
    if events_path.exists():
        assert "node.started" not in events_path.read_text()


@pytest.mark.parametrize(
    "args",
    [
        ["--input", "count=1.5", "--input", "topic=x"],
        ["--input", "count=true", "--input", "topic=x"],
        ["--input", "count=1", "--input", "topic=x", "--input", "novalue"],
        ["--input", "count=1", "--input", "topic=x", "--inputs-json", "[1, 2]"],
        ["--input", "count=1", "--input", "topic=x", "--inputs-json", "{broken"],
        ["--inputs-json", '{"count": 1}'],
    ],
    ids=[
        "float-for-integer",
        "bool-for-integer",
        "no-equals",
        "inputs-json-not-object",
        "inputs-json-malformed",
        "topic-missing",
    ],
)
def test_bad_inputs_exit_2(tmp_path: Path, args: list[str]) -> None:
    proc = run_cli(tmp_path, "run", str(write(tmp_path, needs_inputs())), *args)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stdout == ""
    assert proc.stderr.strip()
    assert "Traceback" not in proc.stderr


def test_good_inputs_for_the_same_workflow_run(tmp_path: Path) -> None:
    proc = run_cli(
        tmp_path, "run", str(write(tmp_path, needs_inputs())), "--input", "count=3", "--input", "topic=42 owls"
    )
    assert result_of(proc) == {"out": {"count": 3, "topic": "42 owls", "ratio": 0.5, "tags": []}}


# --------------------------------------------------------------------------- the offline model


def agent_doc(prompt: str) -> dict[str, Any]:
    return single({"id": "writer", "type": "agent", "config": {"prompt": prompt}})


def test_offline_mark_goes_to_stderr_not_stdout(tmp_path: Path) -> None:
    events_path = tmp_path / "events.jsonl"
    doc = agent_doc("Summarize: The sky is blue today. Birds sing loudly in the trees.")
    proc = run_cli(tmp_path, "run", str(write(tmp_path, doc)), "--events", str(events_path))
    result = result_of(proc)
    assert "offline model" in proc.stderr.lower()
    assert "offline" not in proc.stdout.lower()
    events = read_events(events_path)
    check_event_stream(events, "run.completed")
    completed = [e for e in events if e["type"] == "llm.completed"]
    assert completed and all(e["data"]["model"] == "offline" for e in completed)
    text = "".join(e["data"]["delta"] for e in events if e["type"] == "llm.token")
    node_output = next(
        e["data"]["output"] for e in events if e["type"] == "node.completed" and e["node_id"] == "writer"
    )
    assert text == node_output == result["out"]


# --------------------------------------------------------------------------- live events and Ctrl-C

GATE_MODULE = '''
import asyncio
import os

from tools import tool


@tool(name="cli_test_gate", timeout_s=300, replace=True)
async def cli_test_gate(path: str) -> str:
    """Wait until the file at path exists."""
    while not os.path.exists(path):
        await asyncio.sleep(0.02)
    return "opened"
'''


def gate_setup(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    module_dir = tmp_path / "plugins"
    module_dir.mkdir()
    (module_dir / "cli_test_gate_tools.py").write_text(textwrap.dedent(GATE_MODULE), encoding="utf-8")
    gate = tmp_path / "gate.open"
    doc = single({"id": "wait", "type": "tool", "config": {"tool": "cli_test_gate", "args": {"path": str(gate)}}})
    wf = write(tmp_path, doc)
    pythonpath = os.pathsep.join(p for p in (str(module_dir), os.environ.get("PYTHONPATH", "")) if p)
    env = cli_env(tmp_path, TOOLS_MODULES="cli_test_gate_tools", PYTHONPATH=pythonpath)
    return wf, gate, env


def _default_sigint() -> None:
    """A test started in the background (`cmd &` in a script) inherits SIGINT ignored; Ctrl-C tests need it back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "engine", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def wait_for_event(
    proc: subprocess.Popen[str], path: Path, event_type: str, deadline_s: float = 30
) -> list[dict[str, Any]]:
    """Tail the events file until an event of ``event_type`` shows up while ``proc`` still runs."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"process ended early ({proc.returncode}) before {event_type}:\n{err}")
        if path.exists():
            text = path.read_text(encoding="utf-8")
            complete = text[: text.rfind("\n") + 1]
            events = [json.loads(line) for line in complete.splitlines()]
            if any(e["type"] == event_type for e in events):
                return events
        time.sleep(0.02)
    proc.kill()
    proc.communicate()
    pytest.fail(f"no {event_type} event within {deadline_s} s")


def test_events_file_is_written_live(tmp_path: Path) -> None:
    wf, gate, env = gate_setup(tmp_path)
    events_path = tmp_path / "events.jsonl"
    proc = start(["run", str(wf), "--events", str(events_path)], env)
    try:
        seen = wait_for_event(proc, events_path, "tool.called")
        assert proc.poll() is None, "the run must still be waiting on the gate"
        assert [e["type"] for e in seen][:2] == ["run.started", "node.started"]
        assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))
        gate.touch()
        out, err = proc.communicate(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert json.loads(out) == {"out": "opened"}
    check_event_stream(read_events(events_path), "run.completed")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_cancels_the_run_exit_1_and_run_cancelled_last(tmp_path: Path, sig: signal.Signals) -> None:
    wf, _gate, env = gate_setup(tmp_path)
    events_path = tmp_path / "events.jsonl"
    proc = start(["run", str(wf), "--events", str(events_path)], env)
    try:
        wait_for_event(proc, events_path, "tool.called")
        began = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, (proc.returncode, err)
    assert out == ""
    assert "cancelled" in err.lower()
    assert "Traceback" not in err
    assert took < 10
    events = read_events(events_path)
    check_event_stream(events, "run.cancelled")


def test_sigint_cancels_a_streaming_offline_agent(tmp_path: Path) -> None:
    events_path = tmp_path / "events.jsonl"
    prompt = "Explain in detail " + " ".join(f"topic{i}" for i in range(200))
    wf = write(tmp_path, agent_doc(prompt))
    env = cli_env(tmp_path, OFFLINE_TOKEN_DELAY_S="0.5")
    proc = start(["run", str(wf), "--events", str(events_path)], env)
    try:
        wait_for_event(proc, events_path, "llm.token")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, (proc.returncode, err)
    assert out == ""
    events = read_events(events_path)
    check_event_stream(events, "run.cancelled")
    assert not any(e["type"] == "node.completed" and e["node_id"] == "writer" for e in events)


# --------------------------------------------------------------------------- never a traceback


def _yaml_bool_when(tmp_path: Path) -> Path:
    text = yaml.safe_dump(branchy(), sort_keys=False).replace("when: 'true'", "when: true")
    assert "when: true" in text
    return write(tmp_path, text, "wf.yaml")


def _null_settings(tmp_path: Path) -> Path:
    return write(tmp_path, yaml.safe_dump(branchy(), sort_keys=False) + "settings:\n", "wf.yaml")


def _latin1(tmp_path: Path) -> Path:
    path = tmp_path / "wf.json"
    path.write_bytes(json.dumps({**branchy(), "name": "caf\u00e9"}, ensure_ascii=False).encode("latin-1"))
    return path


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            _yaml_bool_when,
            id="yaml-when-true",
        ),
        pytest.param(
            _null_settings,
            id="yaml-null-settings",
        ),
        pytest.param(
            _latin1,
            id="not-utf8",
        ),
    ],
)
def test_odd_files_give_exit_0_or_2_never_a_traceback(tmp_path: Path, make: Any) -> None:
    proc = run_cli(tmp_path, "validate", str(make(tmp_path)))
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 2)


def test_unwritable_events_path_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "no_such_dir" / "events.jsonl"
    proc = run_cli(tmp_path, "run", str(write(tmp_path, branchy())), "--input", "a=1", "--events", str(bad))
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "no_such_dir" in proc.stderr


# --------------------------------------------------------------------------- store URLs: one line, exit 2


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


BAD_URLS = [  # (id, how it is given, URL, words the one line must hold)
    ("db-not-a-url", "--db", "notaurl", ["'notaurl'", "not a database URL", "postgresql+psycopg://"]),
    ("env-not-a-url", "DATABASE_URL", "notaurl", ["DATABASE_URL", "'notaurl'", "not a database URL"]),
    (
        "db-mysql-no-driver",
        "--db",
        "mysql://ann:s3cret-pw@localhost/studio",
        ["mysql://ann:***@localhost/studio", "MySQLdb", "not installed"],
    ),
    (
        "env-mysql-no-driver",
        "DATABASE_URL",
        "mysql://ann:s3cret-pw@localhost/studio",
        ["DATABASE_URL", "MySQLdb", "not installed"],
    ),
    ("db-unknown-database", "--db", "nosuchdb://localhost/x", ["'nosuchdb'", "cannot open"]),
    ("db-password-no-scheme", "--db", "ann:s3cret-pw@localhost", ["ann:***@localhost", "not a database URL"]),
]


@pytest.mark.parametrize("command", ["runs", "show", "run", "resume", "serve"])
@pytest.mark.parametrize(("given", "url", "words"), [pytest.param(*case[1:], id=case[0]) for case in BAD_URLS])
def test_a_store_url_that_cannot_be_used_is_one_line_and_exit_2(
    tmp_path: Path, command: str, given: str, url: str, words: list[str]
) -> None:
    args = {
        "runs": ["runs"],
        "show": ["show", "0" * 32],
        "run": ["run", str(write(tmp_path, branchy())), "--input", "a=1"],
        "resume": ["resume", "0" * 32],
        "serve": ["serve", "--port", str(_free_port())],
    }[command]
    env = cli_env(tmp_path)
    if given == "--db":
        args += ["--db", url]
    else:
        env["DATABASE_URL"] = url
    proc = run_cli(tmp_path, *args, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "s3cret-pw" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("store: ") and all(w in lines[0] for w in words), lines[0]
    assert proc.stdout == ""
    assert not (tmp_path / "data").exists(), "nothing is created for a URL that was refused"


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])  # Heroku-style, and driverless
def test_postgres_and_postgresql_urls_open_postgresql_with_psycopg(
    tmp_path: Path, postgres_url: str, scheme: str
) -> None:
    from tests.integration.pg import _fresh_postgres_database

    fresh = _fresh_postgres_database(postgres_url)
    heroku_style = scheme + "://" + fresh.split("://", 1)[1]
    ran = run_cli(tmp_path, "run", str(write(tmp_path, branchy())), "--input", "a=1", "--quiet", "--db", heroku_style)
    assert result_of(ran) == {"answer": "small 11"}
    listed = run_cli(tmp_path, "runs", env=cli_env(tmp_path, DATABASE_URL=heroku_style))
    assert listed.returncode == 0, listed.stderr
    assert "branchy" in listed.stdout and "completed" in listed.stdout
    assert not (tmp_path / "data").exists(), "the run went to PostgreSQL, not to a SQLite file"


def test_an_unreachable_postgres_url_is_one_line_naming_the_server_without_its_password(tmp_path: Path) -> None:
    url = f"postgres://ann:s3cret-pw@127.0.0.1:{_free_port()}/studio"
    proc = run_cli(tmp_path, "runs", "--db", url)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "s3cret-pw" not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.strip()], proc.stderr
    assert "postgresql+psycopg://ann:***@127.0.0.1" in proc.stderr


# --------------------------------------------------------------------------- TOOLS_MODULES: the line only


def test_a_missing_tools_module_is_one_line_and_the_run_goes_on(tmp_path: Path) -> None:
    env = cli_env(tmp_path, TOOLS_MODULES="no_such_mod")
    doc = single({"id": "calc", "type": "tool", "config": {"tool": "calculator", "args": {"expression": "6 * 7"}}})
    proc = run_cli(tmp_path, "run", str(write(tmp_path, doc)), env=env)  # validating it looks the tools up
    assert result_of(proc) == {"out": 42}
    assert "Traceback" not in proc.stderr, proc.stderr
    named = [line for line in proc.stderr.splitlines() if "no_such_mod" in line]
    assert named == [
        "tool plugin module 'no_such_mod' (from $TOOLS_MODULES) failed to load: "
        "ModuleNotFoundError: No module named 'no_such_mod'"
    ], proc.stderr


def test_a_missing_tools_module_is_one_line_in_the_api_log(tmp_path: Path) -> None:
    import urllib.request

    port = _free_port()
    env = cli_env(tmp_path, TOOLS_MODULES="no_such_mod")
    server = subprocess.Popen(
        [sys.executable, "-m", "engine", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + TIMEOUT_S
        names: list[str] = []
        while time.monotonic() < deadline:
            try:
                for _ in range(3):  # every request looks the tools up
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/tools", timeout=10) as answer:
                        names = [t["name"] for t in json.loads(answer.read())]
                break
            except OSError:
                if server.poll() is not None:
                    break
                time.sleep(0.2)
        assert "calculator" in names, "the API serves the other tools"
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=TIMEOUT_S)
    assert "Traceback" not in stderr, stderr
    named = [line for line in stderr.splitlines() if "no_such_mod" in line]
    assert named == [
        "tool plugin module 'no_such_mod' (from $TOOLS_MODULES) failed to load: "
        "ModuleNotFoundError: No module named 'no_such_mod'"
    ], stderr


# --------------------------------------------------------------------------- estimated counts, failed tries


def test_estimated_counts_and_failed_tries_are_labelled(tmp_path: Path) -> None:
    """Against the local OpenAI-compatible server: a cut-off try, then an answer with no usage. The progress
    lines, the closing note, ``runs`` and ``show`` all say the counts are estimated and name the failed tries."""
    from tests.fake_openai import FakeOpenAIServer, TextReply

    with FakeOpenAIServer() as srv:
        srv.enqueue(TextReply("The sky", finish=False), TextReply("The sky is blue.", usage=False))
        env = cli_env(tmp_path, OPENAI_BASE_URL=srv.base_url, OPENAI_MODEL="fake-model")
        proc = run_cli(tmp_path, "run", str(write(tmp_path, agent_doc("Colour of the sky?"))), env=env)
    assert result_of(proc) == {"out": "The sky is blue."}
    lines = proc.stderr.splitlines()
    failed = next(line for line in lines if "try failed" in line)
    assert "(estimated)" in failed and "retrying" in failed and "cut the answer off" in failed
    assert any("llm fake-model:" in line and line.rstrip().endswith("tokens (estimated)") for line in lines), (
        proc.stderr
    )
    note = next(line for line in lines if line.startswith("note: ~"))
    assert "estimated" in note and "in failed tries" in note
    listed = run_cli(tmp_path, "runs", env=env)
    assert listed.returncode == 0 and " ~" in listed.stdout and "~ estimated" in listed.stdout
    run_id = listed.stdout.splitlines()[1].split()[0]
    shown = run_cli(tmp_path, "show", run_id, env=env)
    tokens_line = next(line for line in shown.stdout.splitlines() if line.startswith("tokens:"))
    assert tokens_line.startswith("tokens: ~") and "estimated" in tokens_line and "in failed tries" in tokens_line


def test_exact_counts_are_not_labelled(tmp_path: Path) -> None:
    from tests.fake_openai import FakeOpenAIServer

    with FakeOpenAIServer() as srv:
        srv.enqueue_text("The sky is blue.")
        env = cli_env(tmp_path, OPENAI_BASE_URL=srv.base_url, OPENAI_MODEL="fake-model")
        proc = run_cli(tmp_path, "run", str(write(tmp_path, agent_doc("Colour of the sky?"))), env=env)
    assert result_of(proc) == {"out": "The sky is blue."}
    assert "estimated" not in proc.stderr and "llm fake-model:" in proc.stderr
