"""A folder nothing can write to, even root: shared by the store, CLI and dashboard tests of a read-only DATA_DIR.

``chmod 0555`` does not stop root, so as root the folder is made immutable
with ``chattr +i`` (undone afterwards); the test is skipped, with the reason,
when the folder cannot be made unwritable here.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """Make ``folder`` unwritable even for root (``chattr +i``); ``chmod 0555`` when not root."""
    if os.geteuid() == 0:
        made = subprocess.run(["chattr", "+i", str(folder)], check=False, capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"cannot make a directory unwritable as root here (chattr +i: {made.stderr.strip()})")

        def undo() -> None:
            subprocess.run(["chattr", "-i", str(folder)], check=False, capture_output=True)
    else:
        folder.chmod(0o555)

        def undo() -> None:
            folder.chmod(0o755)
    try:
        probe = folder / ".probe"
        try:
            probe.write_bytes(b"")
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip(f"{folder} is still writable after chattr/chmod; cannot test a read-only data dir here")
        yield
    finally:
        undo()
