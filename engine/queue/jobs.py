"""The run job on Procrastinate: its name, how it is deferred, Procrastinate's schema.

One Procrastinate job per run execution, of task :data:`TASK`, with ``lock`` and
``queueing_lock`` both the run id: two jobs of one run never execute at once, and
a second submit while one waits is refused by Procrastinate itself. The run's row
and its job are written in one transaction of the store (the job is deferred on
the store's own PostgreSQL connection), so a run is never ``queued`` without a job.
"""

from __future__ import annotations

from typing import Any

from procrastinate import SyncPsycopgConnector, exceptions, jobs, schema, sql
from procrastinate.manager import JobManager
from sqlalchemy import Connection, Engine, make_url

from engine.queue.mode import QueueModeInvalid

TASK = "studio.run_workflow"
QUEUE = "runs"
PROCRASTINATE_VERSION = "3.10.0"


def conninfo(url: str) -> str:
    """The store's SQLAlchemy URL as a libpq connection string for Procrastinate's pool."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def has_schema(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").scalar() is True


def apply_schema(engine: Engine) -> bool:
    """Create Procrastinate's tables and functions unless present; True when created now.

    Raises:
        QueueModeInvalid: Procrastinate's schema is there but from another version (its migrations apply).
    """
    created = False
    if not has_schema(engine):
        with engine.begin() as conn:
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")  # two migrates at once: one applies
            if conn.exec_driver_sql("SELECT to_regclass('procrastinate_jobs') IS NULL").scalar():
                conn.exec_driver_sql(schema.SchemaManager.get_schema().replace("%", "%%"))
                created = True
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO studio_meta (key, value) VALUES ('procrastinate', %(v)s) ON CONFLICT (key) DO NOTHING",
            {"v": PROCRASTINATE_VERSION},
        )
        found = conn.exec_driver_sql("SELECT value FROM studio_meta WHERE key = 'procrastinate'").scalar()
    if found != PROCRASTINATE_VERSION:
        raise QueueModeInvalid(
            f"the database holds Procrastinate's schema of version {found}, this install runs "
            f"{PROCRASTINATE_VERSION}: apply its migrations from {schema.SchemaManager.get_migrations_path()}"
        )
    return created


def defer(conn: Connection, run_id: str) -> bool:
    """Defer the run's job on ``conn`` (inside the caller's transaction); False when one already waits."""
    job = jobs.Job(
        id=None,
        queue=QUEUE,
        lock=run_id,
        queueing_lock=run_id,
        task_name=TASK,
        task_kwargs={"run_id": run_id},
    )
    raw = conn.connection.driver_connection
    try:
        with conn.begin_nested():  # a refused job must not undo the caller's other writes
            JobManager(SyncPsycopgConnector()).batch_defer_jobs([job], connection=raw)
    except exceptions.AlreadyEnqueued:
        return False
    return True


def run_jobs(conn: Connection, run_id: str, statuses: tuple[str, ...] = ("todo", "doing")) -> list[dict[str, Any]]:
    """The run's jobs in ``statuses`` (locked for this transaction), oldest first."""
    rows = conn.exec_driver_sql(
        "SELECT id, status::text AS status, attempts, worker_id FROM procrastinate_jobs "
        "WHERE lock = %(run)s AND status::text = ANY(%(statuses)s) ORDER BY id FOR UPDATE",
        {"run": run_id, "statuses": list(statuses)},
    )
    return [dict(row._mapping) for row in rows]


def call(conn: Connection, query: str, **params: Any) -> None:
    """Run one of Procrastinate's own queries (``procrastinate.sql.queries``) in the caller's transaction."""
    conn.exec_driver_sql(sql.queries[query], params)


__all__ = [
    "QUEUE",
    "TASK",
    "apply_schema",
    "call",
    "conninfo",
    "defer",
    "has_schema",
    "run_jobs",
]
