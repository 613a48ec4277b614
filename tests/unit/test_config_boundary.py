"""Who may read the process environment: engine/config.py and the few places listed here, each with its reason.

Everything else is handed its settings (``engine.config.Settings``, and its parts ``tools.config.ToolSettings``
and ``memory.config.MemorySettings``); a module that reads ``os.environ`` at call time would race with the
dashboard's Save and could not be given other settings.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "tools", "memory", "datadir", "ui", "views")

ALLOWED = {
    "engine/config.py": "the one place the studio's settings are read from the environment",
    "tools/config.py": "the tools' part of the settings (tools may not import engine); its from_env is the default "
    "for calling a tool directly, outside a run",
    "memory/config.py": "memory's part of the settings (memory may not import engine); its from_env is the default "
    "for using memory directly, outside a run",
    "tools/mcp/launch.py": "runs in an MCP server's child process, not the studio: reads what to exec from the one "
    "variable the studio set for it",
    "memory/short_term.py": "tiktoken reads TIKTOKEN_CACHE_DIR / DATA_GYM_CACHE_DIR itself when it loads an encoding; "
    "the check whether an encoding is cached must see the same values tiktoken will",
}


def _reads(path: Path) -> list[str]:
    """Lines that touch ``os.environ``, ``os.getenv``/``putenv``/``unsetenv`` or ``environ`` imported from os."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in ("environ", "environb", "getenv", "putenv", "unsetenv")
        ):
            found.append(f"{node.lineno}: os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            names = {alias.name for alias in node.names} & {"environ", "environb", "getenv", "putenv", "unsetenv"}
            found.extend(f"{node.lineno}: from os import {name}" for name in sorted(names))
    return sorted(found, key=lambda line: int(line.split(":")[0]))


def test_no_module_outside_the_config_modules_reads_the_environment() -> None:
    files = [ROOT / "app.py", *(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))]
    offenders = {
        rel: lines for path in files if (rel := str(path.relative_to(ROOT))) not in ALLOWED and (lines := _reads(path))
    }
    assert offenders == {}


def test_each_allowed_module_still_reads_it() -> None:
    """An allow-list entry that no longer reads the environment is dropped, so the list stays the truth."""
    assert [rel for rel in ALLOWED if not _reads(ROOT / rel)] == []


def test_the_check_finds_every_way_of_reading() -> None:
    sample = "import os\nfrom os import getenv\nos.environ.get('A')\nos.getenv('B')\nx = os.environ['C']\n"
    path = ROOT / "tests" / "unit" / "_environ_sample.py"
    try:
        path.write_text(sample, encoding="utf-8")
        assert _reads(path) == ["2: from os import getenv", "3: os.environ", "4: os.getenv", "5: os.environ"]
    finally:
        path.unlink()
