"""Fixtures for the store tests: a throwaway PostgreSQL server and a fresh database per test.

``postgres_url`` (session scope) starts a real PostgreSQL server on 127.0.0.1
on a free port, in a temporary directory, with ``fsync=off`` (it is thrown
away at the end), following the commands measured in
``/work/shared/notes/install-facts.md`` section 4: ``initdb`` (as the
``postgres`` user via ``runuser`` when we are root, because initdb refuses to
run as root), ``pg_ctl start``, ``createdb testdb``. It yields
``postgresql+psycopg://postgres@127.0.0.1:PORT/testdb`` and stops and removes
the server afterwards. ``TEST_POSTGRES_URL`` points the tests at an already
running server instead (a URL whose user may ``CREATE DATABASE``).

When no server can be started (no PostgreSQL binaries, psycopg not installed,
root without a ``postgres`` user, initdb or start failing) the fixture calls
``pytest.skip`` with the reason, so the skip is visible in the report.

``store_url`` is parametrized ``["sqlite", "postgres"]``: a SQLite file in the
test's ``tmp_path``, or a database created for this test alone with
``CREATE DATABASE`` on the session's server (about 20 ms each).

Register with ``pytest_plugins = [..., "tests.integration.pg"]`` in
``tests/conftest.py``; until then the test modules import the fixtures.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_USER = "postgres"
ENV_URL = "TEST_POSTGRES_URL"


def _pg_bin() -> Path | None:
    """The newest Debian PostgreSQL bin directory, else initdb/pg_ctl on PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parent.name.split(".")],
    )
    for folder in reversed(found):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    """Run PostgreSQL's server tools as the ``postgres`` user when we are root."""
    return ["runuser", "-u", PG_USER, "--", *argv] if os.geteuid() == 0 else argv


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _Server:
    """One throwaway PostgreSQL cluster in a temporary directory."""

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        # short socket path, reachable by postgres
        self.dir = Path(tempfile.mkdtemp(prefix="pgtest-", dir="/tmp" if os.path.isdir("/tmp") else None))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = _free_port()
        self.started = False

    def _run(self, argv: list[str], what: str, *, as_server: bool = True, timeout: float = 60) -> None:
        cmd = _as_server_user(argv) if as_server else argv
        proc = subprocess.run(cmd, cwd=self.dir, check=False, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"{what} failed (exit {proc.returncode}): {' | '.join(detail)}")

    def start(self) -> str:
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(PG_USER)
            except KeyError:
                raise RuntimeError(f"running as root and there is no '{PG_USER}' user for initdb") from None
            if shutil.which("runuser") is None:
                raise RuntimeError("running as root and runuser is missing")
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self.dir.chmod(0o755)
        self._run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                PG_USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            "initdb",
        )
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        try:
            self._run(
                [
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-w",
                    "-t",
                    "30",
                    "-o",
                    options,
                    "start",
                ],
                "pg_ctl start",
            )
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; server log: {_log_tail(self.log)}") from None
        self.started = True
        createdb = self.bin / "createdb"
        self._run(
            [str(createdb), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, "testdb"],
            "createdb",
            as_server=False,
        )
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/testdb"

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run(
                    [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                    "pg_ctl stop",
                    timeout=30,
                )
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A URL of a real PostgreSQL database for this session (skips with the reason when none can be had)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("PostgreSQL tests skipped: psycopg is not installed (pip install 'psycopg[binary]')")
    given = os.environ.get(ENV_URL)
    if given:
        yield given
        return
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL tests skipped: no PostgreSQL server binaries (apt-get install postgresql)")
    server = _Server(bin_dir)
    try:
        url = server.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        server.stop()
        pytest.skip(f"PostgreSQL tests skipped: could not start a throwaway server: {exc}")
    try:
        yield url
    finally:
        server.stop()


def _fresh_postgres_database(server_url: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY'))
    finally:
        admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL: a SQLite file in ``tmp_path`` or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'studio.db'}"
    server_url = request.getfixturevalue("postgres_url")
    return _fresh_postgres_database(server_url)


__all__ = ["postgres_url", "store_url"]
