"""The CLI reads its settings once at start: a bad variable is one line naming it and exit 2 (real subprocesses);
the settings file is used where no variable is set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_cli import cli_env, result_of, run_cli

CALC = {
    "format": "workflow/v1",
    "name": "Ask",
    "inputs": {"q": {"type": "string"}},
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "ask", "type": "agent", "config": {"prompt": "{{ inputs.q }}"}},
        {"id": "out", "type": "output", "config": {"value": "{{ nodes.ask.output }}"}},
    ],
    "edges": [{"source": "start", "target": "ask"}, {"source": "ask", "target": "out"}],
}


@pytest.mark.parametrize("command", [("runs",), ("run", "wf.json", "--input", "q=hi")])
def test_a_bad_variable_stops_the_command_with_one_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    (tmp_path / "wf.json").write_text(json.dumps(CALC), encoding="utf-8")
    args = [str(tmp_path / a) if a == "wf.json" else a for a in command]
    proc = run_cli(tmp_path, *args, env=cli_env(tmp_path, PYTHON_TOOL_ISOLATION="docker", MEMORY_MAX_CHARS="5"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "2 settings are invalid: MEMORY_MAX_CHARS='5' must be a number of characters, a whole number of at least "
        "100; PYTHON_TOOL_ISOLATION='docker' is not one of bwrap, bwrap-root, rlimits-only, unshare"
    ], proc.stderr
    assert "Traceback" not in proc.stderr and not proc.stdout


def test_the_settings_file_names_the_endpoint_and_model_the_run_uses(tmp_path: Path, fake_openai) -> None:  # noqa: ANN001
    data = tmp_path / "data"
    data.mkdir()
    (data / "settings.json").write_text(
        json.dumps({"base_url": fake_openai.base_url, "model": "file-model"}), encoding="utf-8"
    )
    (tmp_path / "wf.json").write_text(json.dumps(CALC), encoding="utf-8")
    fake_openai.enqueue_text("from the file's endpoint")
    proc = run_cli(tmp_path, "run", str(tmp_path / "wf.json"), "--input", "q=hi", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert result_of(proc) == {"out": "from the file's endpoint"}
    assert fake_openai.last_request["model"] == "file-model"


@pytest.mark.parametrize("command", [("worker",), ("migrate",), ("runs",)])
def test_a_bad_queue_variable_stops_the_command_with_one_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    """The queue's variables are read with the others: refused before any store is opened (no PostgreSQL here)."""
    proc = run_cli(tmp_path, *command, env=cli_env(tmp_path, QUEUE_SWEEP_S="0", MAX_AUTO_RESUMES="-1"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "2 settings are invalid: QUEUE_SWEEP_S='0' must be a number of seconds above 0; "
        "MAX_AUTO_RESUMES='-1' must be a number of resumes, a whole number of at least 0"
    ], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "data" / "studio.db").exists()
