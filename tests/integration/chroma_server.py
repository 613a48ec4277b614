"""A real Chroma server for the tests: ``chroma run`` (the CLI the chromadb package ships) on a free port.

Queue mode keeps long-term memory on a Chroma server (``CHROMA_HOST``), so its
tests start one per session, with its data in a temporary folder, and stop it
at the end. The fixture ``chroma_server`` yields ``(host, port)``; bench/queue_bench.py
starts its own with :func:`running_chroma`.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _chroma_cli() -> list[str]:
    found = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    return [found]


@contextmanager
def running_chroma(folder: Path) -> Iterator[tuple[str, int]]:
    """``chroma run`` with its data and log in ``folder`` (made if missing) until the block ends; yields
    ``(host, port)``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = open(folder / "server.log", "w+", encoding="utf-8")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*_chroma_cli(), "run", "--path", str(folder / "data"), "--host", HOST, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://{HOST}:{port}/api/v2/heartbeat", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"the Chroma server did not start:\n{log.read()[-2000:]}")
            time.sleep(0.2)
        yield HOST, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    with running_chroma(tmp_path_factory.mktemp("chroma-server")) as address:
        yield address
