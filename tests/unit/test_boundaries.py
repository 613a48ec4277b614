"""Who may import whom: engine, tools and memory never import streamlit; tools and memory never import engine;
datadir imports nothing of the project."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = {
    "engine": {"streamlit", "views"},
    "tools": {"streamlit", "engine", "views", "memory"},
    "memory": {"streamlit", "engine", "views"},
    "datadir": {"streamlit", "engine", "views", "memory", "tools", "ui"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_imports_respect_the_layers(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & RULES[package])
        for path in (ROOT / package).rglob("*.py")
        if _imports(path) & RULES[package]
    }
    assert offenders == {}


# The python tool's child runner executes user code on purpose: it runs only inside the sandbox process.
SANDBOX_CHILD = ROOT / "tools" / "builtin" / "_python_child.py"


def test_no_eval_or_exec_in_the_app_packages() -> None:
    calls = []
    for package in ("engine", "tools", "memory", "views"):
        for path in (ROOT / package).rglob("*.py"):
            if path == SANDBOX_CHILD:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec"):
                    calls.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert calls == []
