"""``/evals`` over a real ``python -m engine.api`` server (issue 18): start with inline rows or an uploaded file,
bad datasets answered 422 with every problem, progress as SSE, cancel then resume, compare."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_api import Server, start_server

REPO = Path(__file__).resolve().parents[2]
CALC = json.loads((REPO / "examples" / "eval" / "calculator_eval.json").read_text())
CSV = (REPO / "examples" / "eval" / "arithmetic.csv").read_text()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("evalapi"), OFFLINE_TOKEN_DELAY_S="0.01")
    yield server
    assert server.stop() == 0, server.log.read_text()[-3000:]
    assert "Traceback" not in server.log.read_text(errors="replace"), server.log.read_text()[-3000:]


def _wait(client: httpx.Client, eval_id: str, status: tuple[str, ...] = ("completed",)) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = client.get(f"/evals/{eval_id}").json()
        if body["status"] in status:
            return body
        time.sleep(0.1)
    raise AssertionError(f"evaluation {eval_id} did not reach {status}")


def test_inline_rows_with_a_bad_row(api: Server) -> None:
    rows = [
        {"question": "What is 2 + 2?", "expected": 4},
        {"question": 7, "expected": 7},
        {"question": "What is 3 * 3?"},
    ]
    with api.client() as client:
        started = client.post("/evals", json={"workflow": CALC, "rows": rows, "scorers": ["numeric", "contains"]})
        assert started.status_code == 202, started.text
        body = _wait(client, started.json()["eval_id"])
    by_row = {r["row"]: r for r in body["rows"]}
    assert by_row[0]["status"] == "completed" and by_row[0]["score.numeric"] == 1.0 and by_row[0]["run_id"]
    assert by_row[1]["status"] == "completed"  # a number converts to the string input
    assert by_row[2]["score.numeric"] == 0.0 and "no expected" in by_row[2]["reason.numeric"]
    summary = body["summary"]
    assert summary["rows"] == 3 and summary["completed"] == 3
    assert {s["scorer"] for s in summary["scorers"]} == {"numeric", "contains"}


def test_bad_requests_list_every_problem(api: Server) -> None:
    with api.client() as client:
        bad = client.post(
            "/evals",
            json={
                "workflow": CALC,
                "rows": [{"prompt": "x"}],
                "scorers": ["numeric:x", "nosuch"],
                "expected": "answer",
            },
        )
        assert bad.status_code == 422
        text = bad.text
        assert "question" in text and "numeric:x" in text and "nosuch" in text and "answer" in text
        both = client.post("/evals", json={"rows": [{"question": "x"}]})
        assert both.status_code == 422 and "workflow" in both.text
        assert client.get("/evals/nope").status_code == 404


def test_uploaded_csv_with_sse_progress_then_compare(api: Server) -> None:
    dataset = {"name": "arithmetic.csv", "content": CSV}
    with api.client() as client:
        first = client.post("/evals", json={"workflow": CALC, "dataset": dataset, "scorers": ["numeric"]}).json()
        frames: list[tuple[str, dict[str, Any]]] = []
        with client.stream("GET", f"/evals/{first['eval_id']}/events", headers={"Accept": "text/event-stream"}) as s:
            kind = ""
            for line in s.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    frames.append((kind, json.loads(line[6:])))
        assert frames[-1][0] == "eval.ended" and frames[-1][1] == {"status": "completed", "done": 32, "total": 32}
        assert any(k == "eval.progress" for k, _ in frames)
        broken = dict(CALC, name="Calculator eval, echo")
        broken["nodes"] = [n for n in CALC["nodes"] if n["id"] != "solver"]
        broken["nodes"][-1] = dict(broken["nodes"][-1], config={"value": "{{ inputs.question }}"})
        broken["edges"] = [{"source": "start", "target": "answer"}]
        second = client.post("/evals", json={"workflow": broken, "dataset": dataset, "scorers": ["numeric"]}).json()
        _wait(client, second["eval_id"])
        result = client.get(f"/evals/{first['eval_id']}/compare/{second['eval_id']}").json()
    assert result["counts"]["regressed"] > 20 and result["counts"]["improved"] == 0
    assert result["deltas"]["numeric"] < 0


def test_cancel_then_resume(api: Server) -> None:
    rows = [{"question": f"What is {i} * 3?", "expected": i * 3} for i in range(40)]
    with api.client() as client:
        eval_id = client.post(
            "/evals", json={"workflow": CALC, "rows": rows, "scorers": ["numeric"], "concurrency": 1}
        ).json()["eval_id"]
        assert client.post(f"/evals/{eval_id}/cancel").status_code == 202
        body = _wait(client, eval_id, ("cancelled",))
        assert body["summary"]["pending"] > 0
        assert client.post(f"/evals/{eval_id}/cancel").status_code == 409
        assert client.post(f"/evals/{eval_id}/resume").status_code == 202
        body = _wait(client, eval_id)
    assert body["summary"]["completed"] == 40 and body["summary"]["scorers"][0]["mean"] == 1.0
