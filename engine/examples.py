"""The example workflows shipped with the studio, found by name from any working folder.

Why this module exists: after ``pip install`` the examples live in site-packages (``examples/`` next
to ``engine/``, as in a checkout), where nobody types a path to. ``workflow-studio run calculator_agent``
runs the shipped ``examples/calculator_agent.json`` when no file of that name exists in the current
folder; ``workflow-studio examples`` lists them with their paths.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["EXAMPLES", "example_files", "workflow_file"]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SUFFIXES = (".json", ".yaml", ".yml")


def example_files() -> list[Path]:
    """Every shipped example workflow, sorted by name."""
    if not EXAMPLES.is_dir():
        return []
    return sorted(p for p in EXAMPLES.iterdir() if p.is_file() and p.suffix in SUFFIXES)


def workflow_file(given: str) -> Path:
    """``given`` as a path when it exists, else the shipped example it names (``calculator_agent``,
    ``calculator_agent.json`` or ``examples/calculator_agent.json``), else ``given`` unchanged (its
    loader then says the file does not exist)."""
    path = Path(given)
    if path.exists():
        return path
    stem = path.name
    for example in example_files():
        if stem in (example.name, example.stem) and (path.parent in (Path("."), Path("examples"))):
            return example
    return path
