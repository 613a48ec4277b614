"""The mode switch: ``EXECUTION_MODE`` is ``local`` (the default) or ``queue``.

``local``: runs execute in the process that starts them (the dashboard, the API, the
CLI), on SQLite or PostgreSQL. ``queue``: they execute on ``python -m engine worker``
processes, which needs a PostgreSQL ``DATABASE_URL``. Kept free of Procrastinate's
import so that local mode never loads it.
"""

from __future__ import annotations

import os

from sqlalchemy import make_url

from engine.errors import EngineError

MODES = ("local", "queue")


class QueueModeInvalid(EngineError):
    """Queue mode cannot be used as configured; the message says what to set."""


def execution_mode() -> str:
    """``EXECUTION_MODE``: ``local`` (default) or ``queue``.

    Raises:
        QueueModeInvalid: any other value.
    """
    mode = (os.environ.get("EXECUTION_MODE") or "local").strip().lower()
    if mode not in MODES:
        raise QueueModeInvalid(f"EXECUTION_MODE={mode!r} must be 'local' (the default) or 'queue'")
    return mode


def require_postgres(url: str) -> None:
    """Refuse any store but PostgreSQL for queue mode, in one line."""
    if make_url(url).get_backend_name() != "postgresql":
        raise QueueModeInvalid(
            "EXECUTION_MODE=queue needs a PostgreSQL store: set DATABASE_URL=postgresql+psycopg://user@host:5432/db "
            "(SQLite cannot be shared by worker processes)"
        )


__all__ = ["MODES", "QueueModeInvalid", "execution_mode", "require_postgres"]
