"""Queue mode: runs execute on a pool of worker processes over PostgreSQL, on Procrastinate.

``EXECUTION_MODE=local`` (the default) keeps today's in-process :class:`~engine.runtime.Runtime`.
``EXECUTION_MODE=queue`` gives the dashboard, the API and the CLI a
:class:`~engine.queue.client.QueueRuntime` that queues runs; ``python -m engine worker``
(:mod:`engine.queue.worker`) executes them; ``python -m engine migrate`` creates the tables.
See docs/queue.md.
"""

from __future__ import annotations

from engine.config import Settings
from engine.queue.mode import QueueModeInvalid, execution_mode
from engine.runtime import Runtime


def open_runtime(database_url: str | None = None, *, settings: Settings | None = None) -> Runtime:
    """The runtime of this process for ``EXECUTION_MODE``: in-process (local) or queueing (queue).

    ``settings`` (default: read from the environment now) are handed to the runtime.

    Raises:
        ConfigInvalid: reading the environment, values that do not parse (one line per variable).
        QueueModeInvalid: queue mode without a migrated PostgreSQL store.
        StoreError: the store cannot be opened.
    """
    settings = settings or Settings.from_env()
    if settings.queue.mode == "queue":
        from engine.queue.client import QueueRuntime

        return QueueRuntime(database_url=database_url, settings=settings)
    return Runtime(database_url=database_url, settings=settings)


def migrate(database_url: str | None = None, *, settings: Settings | None = None) -> list[str]:
    """Create or upgrade the studio's tables and, on PostgreSQL, Procrastinate's schema; lines saying what was done.

    The store is ``database_url``, else ``settings``' (default: the environment's).

    Raises:
        StoreError: the store cannot be opened. QueueModeInvalid: Procrastinate's schema is of another version.
    """
    from sqlalchemy import make_url

    from engine.queue.jobs import apply_schema
    from engine.store import Store

    store = Store(database_url, settings=settings)  # opening applies the studio's migrations (engine/store/db.py)
    try:
        lines = [f"studio tables: up to date in {store.url.split('@')[-1]}"]
        if make_url(store.url).get_backend_name() == "postgresql":
            created = apply_schema(store.engine)
            lines.append(f"Procrastinate schema: {'created' if created else 'present'}")
        else:
            lines.append("Procrastinate schema: skipped (queue mode needs PostgreSQL; this store is SQLite)")
    finally:
        store.close()
    return lines


__all__ = ["QueueModeInvalid", "execution_mode", "migrate", "open_runtime"]
