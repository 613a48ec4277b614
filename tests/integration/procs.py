"""Reading the host's /proc in tests: which processes a test started (shared by the sandbox tests)."""

from __future__ import annotations

from pathlib import Path


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: state, ppid, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def descends_from(pid: int, ancestor: int) -> bool:
    """Whether ``pid`` is ``ancestor`` or one of its descendants (False once the chain is unreadable)."""
    for _ in range(64):
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
        try:
            pid = int(stat_fields(pid)[1])
        except (OSError, ValueError, IndexError):
            return False
    return False
