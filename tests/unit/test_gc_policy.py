"""engine/gc_policy.py: the first generation's threshold is raised once, and a program's own thresholds are kept.

Each case runs in a fresh interpreter: the thresholds are process-wide.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _thresholds_after(setup: str) -> str:
    code = "\n".join(
        ["import gc", setup, "from engine.gc_policy import tune_for_many_tasks", "tune_for_many_tasks()"]
        + ["print(gc.get_threshold())"]
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


def test_default_thresholds_are_raised_for_many_tasks() -> None:
    assert _thresholds_after("gc.set_threshold(700, 10, 10)") == "(10000, 10, 10)"


def test_thresholds_a_program_chose_are_kept() -> None:
    assert _thresholds_after("gc.set_threshold(2000, 5, 5)") == "(2000, 5, 5)"
