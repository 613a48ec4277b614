"""A version saved with problems (the Builder's Save allows it, issue 13) is stored as typed and is
never run: the HTTP API (a real uvicorn server) answers ``POST /runs`` by its ``workflow_id`` with a
422 listing the problems, and serves the document as saved."""

from __future__ import annotations

from pathlib import Path

from engine.store import Store
from tests.integration.test_api import start_server

HALF_BUILT = {
    "format": "workflow/v1",
    "name": "Half built",
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "think", "type": "agent", "config": {"prompt": "{{ nodes.nowhere.output }}"}},
    ],
    "edges": [{"source": "start", "target": "think"}],
}


def test_a_version_saved_with_problems_is_refused_by_run_with_its_problems(tmp_path: Path) -> None:
    server = start_server(tmp_path / "api")
    try:
        store = Store(data_dir=server.data_dir)
        try:
            ref = store.save_workflow(HALF_BUILT)
        finally:
            store.close()
        with server.client() as client:
            shown = client.get(f"/workflows/{ref.id}")
            assert shown.status_code == 200
            assert "nowhere" in shown.text  # as saved, not normalised away
            answer = client.post("/runs", json={"workflow_id": ref.id, "inputs": {}})
        assert answer.status_code == 422, answer.text
        assert "nowhere" in answer.text and "think" in answer.text
    finally:
        server.stop()
    assert "Traceback" not in server.log.read_text(errors="replace")
