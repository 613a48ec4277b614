"""Opening the database: where it is, SQLite's durability settings, and refusing foreign files.

The default is ``$DATA_DIR/studio.db`` (``DATA_DIR`` defaults to ``./data``)
in WAL mode with ``synchronous=FULL`` and a busy timeout; ``DATABASE_URL``
takes any SQLAlchemy URL instead (PostgreSQL: ``postgresql+psycopg://...``;
``postgres://``, as hosting services write it, means the same). A URL that
does not parse, names an unknown database or needs a driver that is not
installed is refused before anything is opened, with one line saying so
(:class:`StoreUrlInvalid`); its password is never shown.
A file at the path that is not a SQLite database, or a SQLite database some
other program made, is refused with a clear message and never written to.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, select
from sqlalchemy import text as sql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import SQLModel

from datadir import folder_for, private_sqlite
from engine.errors import StoreError, StoreUrlInvalid
from engine.store.tables import SCHEMA_APP, DraftRow, MetaRow

if TYPE_CHECKING:
    from engine.config import Settings

SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000
POSTGRES_DRIVER = "postgresql+psycopg"  # the driver requirements.txt installs (psycopg 3)
HEROKU_POSTGRES = "postgres"  # the scheme hosting services hand out; SQLAlchemy knows only "postgresql"
URL_EXAMPLES = "sqlite:////path/to/studio.db or postgresql+psycopg://user:password@host:5432/dbname"


def database_url(
    url: str | None = None, data_dir: str | Path | None = None, *, settings: Settings | None = None
) -> str:
    """The URL to use: the argument, else ``DATABASE_URL``, else a SQLite file under the data directory
    (``data_dir``, else ``DATA_DIR``); the variables are ``settings``' (default: the environment's).

    Raises:
        StoreUrlInvalid: the URL does not parse, names an unknown database, or its driver is not installed.
    """
    if url:
        return check_url(url, "the URL")
    if settings is None:
        from engine.config import Settings  # the default for direct use: the environment's settings

        settings = Settings.from_env()
    if settings.database_url:
        return check_url(settings.database_url, "DATABASE_URL")
    folder = Path(data_dir or settings.data_dir)
    return f"sqlite:///{folder.resolve() / 'studio.db'}"


def check_url(text: str, origin: str) -> str:
    """``text`` as a URL SQLAlchemy can open: ``postgres://`` becomes ``postgresql+psycopg://``.

    ``origin`` names where the URL came from in the message (``DATABASE_URL``).

    Raises:
        StoreUrlInvalid: one line, naming the URL without its password.
    """
    try:
        parsed = make_url(text.strip())
    except ArgumentError:
        raise StoreUrlInvalid(
            f"{origin} {_redacted(text)!r} is not a database URL; write it like {URL_EXAMPLES}"
        ) from None
    if parsed.drivername == HEROKU_POSTGRES:
        parsed = parsed.set(drivername=POSTGRES_DRIVER)
        text = parsed.render_as_string(hide_password=False)
    shown = parsed.render_as_string(hide_password=True)
    try:
        dialect = parsed.get_dialect()
    except ArgumentError:  # NoSuchModuleError: no such database in SQLAlchemy
        raise StoreUrlInvalid(
            f"{origin} {shown!r} names a database the studio cannot open ({parsed.get_backend_name()!r}); "
            f"use {URL_EXAMPLES}"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise StoreUrlInvalid(
            f"{origin} {shown!r} needs the Python driver {exc.name or parsed.drivername!r}, which is not installed; "
            f"install it, or use {URL_EXAMPLES}"
        ) from None
    return text.strip()


def _redacted(text: str, limit: int = 200) -> str:
    """A URL that did not parse, with anything like ``:password@`` masked, clipped."""
    masked = re.sub(r":[^:@/]*@", ":***@", text.strip())
    return masked if len(masked) <= limit else masked[:limit] + "..."


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL (None for other databases or in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def open_engine(url: str, data_dir: Path | None = None, *, pool_size: int | None = None) -> Engine:
    """Create the SQLAlchemy engine, check the file is ours, and apply migrations.

    ``pool_size`` (PostgreSQL): at most that many connections, none beyond (a queue worker's cap); default
    SQLAlchemy's pool (5, and 10 more while busy).

    Raises:
        StoreError: a foreign or corrupt file, an unwritable folder, or an unreachable server.
    """
    path = sqlite_path(url)
    if path is not None:
        try:
            folder_for(path, data_dir)  # the data folder (``data_dir``): 0700
        except OSError as exc:
            raise StoreError(
                f"cannot create the data directory {path.parent}: {exc.strerror} (it is not writable)"
            ) from None
        _check_writable(path.parent)
        _check_sqlite_file(path)
        try:
            private_sqlite(path)  # 0600, and so are the -wal and -shm files SQLite makes from it
        except OSError as exc:
            raise StoreError(f"cannot create the database file {path}: {exc.strerror or exc}") from None
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        capped = {} if pool_size is None else {"pool_size": pool_size, "max_overflow": 0}
        engine = create_engine(url, pool_pre_ping=True, **capped)
    try:
        migrate(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        where = path or make_url(url).render_as_string(hide_password=True)
        raise StoreError(f"cannot open the store at {where}: {_short(exc)}") from None
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _check_writable(folder: Path) -> None:
    """Refuse a data directory we cannot write (checked by writing, which also holds for root)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise StoreError(
            f"the data directory {folder} is not writable ({exc.strerror or exc}); "
            "make it writable or point DATA_DIR or DATABASE_URL elsewhere"
        ) from None


def _check_sqlite_file(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb") as handle:
        header = handle.read(16)
    if header != SQLITE_MAGIC:
        raise StoreError(
            f"{path} exists but is not a SQLite database (corrupt, or another program's file); "
            "it was left untouched. Move it away, or point DATA_DIR or DATABASE_URL elsewhere."
        )
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            owner = None
            if "studio_meta" in tables:
                found = conn.execute("SELECT value FROM studio_meta WHERE key='app'").fetchone()
                owner = found[0] if found else None
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is a damaged SQLite database ({exc}); it was left untouched.") from None
    if tables and owner != SCHEMA_APP:
        shown = ", ".join(sorted(tables)[:8])
        raise StoreError(
            f"{path} is a SQLite database of another program (tables: {shown}); it was left untouched. "
            "Point DATA_DIR or DATABASE_URL elsewhere."
        )


# --- migrations: applied in order, each recorded once -------------------------------


def _initial(engine: Engine) -> None:
    SQLModel.metadata.create_all(engine)


def _add_missing_columns(wanted: dict[str, list[tuple[str, str]]]) -> Callable[[Engine], None]:
    """A migration adding each ``(column, SQL type)`` a table lacks (a database made since has them already)."""

    def migrate(engine: Engine) -> None:
        present = inspect(engine)
        with engine.begin() as conn:
            for table, columns in wanted.items():
                have = {c["name"] for c in present.get_columns(table)}
                for column, kind in columns:
                    if column not in have:
                        conn.execute(sql(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))

    return migrate


def _drafts(engine: Engine) -> None:
    DraftRow.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]


def _evals(engine: Engine) -> None:
    """The evaluation tables (engine/evals): an evaluation and its rows."""
    from engine.evals.tables import EvalRowTable, EvalTable

    for table in (EvalTable, EvalRowTable):
        table.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined,union-attr]


def _eval_runs(engine: Engine) -> None:
    """An index on ``eval_rows.run_id``: History says which evaluation row each listed run is. A database made
    since has it already (``EvalRowTable``), hence ``IF NOT EXISTS``."""
    with engine.begin() as conn:
        conn.execute(sql("CREATE INDEX IF NOT EXISTS ix_eval_rows_run_id ON eval_rows (run_id)"))


def _statuses(engine: Engine) -> None:
    """A node execution that ended well is ``succeeded`` (engine/statuses.py); older rows said ``completed``."""
    with engine.begin() as conn:
        conn.execute(sql("UPDATE node_executions SET status = 'succeeded' WHERE status = 'completed'"))


def _reads(engine: Engine) -> None:
    """An index serving ``ORDER BY created_at DESC`` (the newest runs): without it a listing scans and sorts every
    run. A database made since has it already (``RunRow``), hence ``IF NOT EXISTS``."""
    with engine.begin() as conn:
        conn.execute(sql("CREATE INDEX IF NOT EXISTS ix_runs_created ON runs (created_at)"))


def _shared_settings(engine: Engine) -> None:
    """Queue mode: the Settings page's values where every worker reads them (engine.store.shared_settings)."""
    from engine.store.shared_settings import create_table

    create_table(engine)
    try:  # memory's turns table too, so that workers starting together need not race to create it
        from memory.short_term import turns_table
    except ImportError:  # memory is not installed: no agent can use it
        return
    turns_table.create(engine, checkfirst=True)


MIGRATIONS: list[tuple[str, Callable[[Engine], None]]] = [
    ("0001_initial", _initial),
    # runs.tokens_estimated / failed_tokens: some counts were estimated; tokens of failed (cut-off) tries
    (
        "0002_token_flags",
        _add_missing_columns(
            {
                "runs": [
                    ("tokens_estimated", "BOOLEAN NOT NULL DEFAULT FALSE"),
                    ("failed_tokens", "INTEGER NOT NULL DEFAULT 0"),
                ]
            }
        ),
    ),
    ("0003_drafts", _drafts),
    # rerun from a node: runs.forked_from (JSON, null) and node_executions.reused (false)
    (
        "0004_fork",
        _add_missing_columns(
            {"runs": [("forked_from", "JSON")], "node_executions": [("reused", "BOOLEAN NOT NULL DEFAULT false")]}
        ),
    ),
    # one status vocabulary: node executions that ended well say "succeeded" (idempotent: a plain UPDATE)
    ("0005_statuses", _statuses),
    # queue mode (engine/queue): runs.lease_epoch, the fence a worker's writes are checked against
    ("0006_queue", _add_missing_columns({"runs": [("lease_epoch", "INTEGER NOT NULL DEFAULT 0")]})),
    # the newest runs listed from an index (runs.created_at), not by scanning and sorting all of them
    ("0007_reads", _reads),
    # queue mode: the table studio_settings, the Settings page's values for every worker
    ("0008_qmem", _shared_settings),
    # evaluations (engine/evals): tables evals and eval_rows
    ("0009_evals", _evals),
    # History's evaluation column looks runs up in eval_rows by run_id
    ("0010_eval_runs", _eval_runs),
]


def migrate(engine: Engine) -> list[str]:
    """Apply the migrations not yet recorded; returns the ones applied now."""
    MetaRow.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]
    applied: list[str] = []
    with engine.begin() as conn:
        done = {key for (key,) in conn.execute(select(MetaRow.key))}  # type: ignore[call-overload]
        if "app" not in done:
            conn.execute(MetaRow.__table__.insert().values(key="app", value=SCHEMA_APP))  # type: ignore[attr-defined]
    for name, step in MIGRATIONS:
        key = f"migration:{name}"
        if key in done:
            continue
        step(engine)
        with engine.begin() as conn:
            conn.execute(MetaRow.__table__.insert().values(key=key, value=str(time.time())))  # type: ignore[attr-defined]
        applied.append(name)
    return applied


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0][:300]
