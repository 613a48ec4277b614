"""Settings page, MCP servers: mcp.json edited without its env/headers values ever shown; the privileges warning."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

from engine.config import Settings
from tools.mcp.config import MASK
from ui.runtime import get_runtime

APP = str(Path(__file__).resolve().parents[2] / "app.py")
SECRETS = ("tok-SECRET-1", "hdr-SECRET-2")


def _file() -> Path:
    return Path(os.environ["DATA_DIR"]).resolve() / "mcp.json"


def _page() -> AppTest:
    get_runtime().update_settings(Settings.from_env())
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/settings.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _everything_shown(at: AppTest) -> str:
    kinds = ("markdown", "caption", "info", "success", "warning", "error", "code", "text", "text_input", "text_area")
    return "\n".join(str(getattr(e, "value", "")) for kind in kinds for e in at.get(kind))


def _area(at: AppTest) -> object:
    return next(a for a in at.text_area if a.key == "settings_mcp")


def test_mcp_json_is_edited_without_showing_secrets() -> None:
    path = _file()
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "mcpServers": {
            "files": {"command": "/bin/true", "args": ["x"], "env": {"TEAM_TOKEN": "tok-SECRET-1"}},
            "tickets": {"url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer hdr-SECRET-2"}},
        }
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    at = _page()
    shown = _everything_shown(at)
    assert "runs with the studio's privileges" in shown
    assert not [s for s in SECRETS if s in shown]
    area = _area(at)
    masked = json.loads(area.value)  # type: ignore[attr-defined]
    assert masked["mcpServers"]["files"]["env"] == {"TEAM_TOKEN": MASK}

    # a new variable is added and a new server; the masked value stays as it was
    masked["mcpServers"]["files"]["env"]["REGION"] = "eu"
    masked["mcpServers"]["notes"] = {"command": "/bin/true"}
    area.set_value(json.dumps(masked))  # type: ignore[attr-defined]
    next(b for b in at.button if b.label == "Save MCP servers").click().run()
    assert not at.exception, at.exception
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["mcpServers"]["files"]["env"] == {"TEAM_TOKEN": "tok-SECRET-1", "REGION": "eu"}
    assert saved["mcpServers"]["tickets"]["headers"] == {"Authorization": "Bearer hdr-SECRET-2"}
    assert set(saved["mcpServers"]) == {"files", "tickets", "notes"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    shown = _everything_shown(at)
    assert "Saved 3 MCP server(s)" in shown and not [s for s in SECRETS if s in shown]
    assert get_runtime().mcp is not None and set(get_runtime().mcp.status()) == {"files", "tickets", "notes"}

    # a bad entry saves nothing and says why
    _area(at).set_value('{"mcpServers": {"bad__name": {"command": "x"}}}')  # type: ignore[attr-defined]
    next(b for b in at.button if b.label == "Save MCP servers").click().run()
    assert "Nothing was saved" in _everything_shown(at)
    assert json.loads(path.read_text(encoding="utf-8")) == saved


def test_the_tools_page_lists_and_calls_an_mcp_tool() -> None:
    server = Path(__file__).resolve().parents[1] / "integration" / "mcp" / "server.py"
    path = _file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"mcpServers": {"t": {"command": sys.executable, "args": [str(server), "stdio"]}}}))
    get_runtime().reload_mcp()
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("views/tools.py")
    at.run()
    assert not at.exception, at.exception
    assert {"t__add", "t__echo", "calculator"} <= set(at.selectbox(key="tools_selected").options)
    at.selectbox(key="tools_selected").select("t__add").run()
    assert any("studio's privileges" in c.value for c in at.caption)
    at.number_input(key="tools_arg__t__add__a").set_value(2)
    at.number_input(key="tools_arg__t__add__b").set_value(3)
    next(b for b in at.button if b.label == "Call the tool").click().run()
    assert not at.exception, at.exception
    assert any(c.value == "5" for c in at.code), [c.value for c in at.code]
