"""The mode switch: ``EXECUTION_MODE`` is ``local`` (the default) or ``queue``.

``local``: runs execute in the process that starts them (the dashboard, the API, the
CLI), on SQLite or PostgreSQL. ``queue``: they execute on ``python -m engine worker``
processes, which needs a PostgreSQL ``DATABASE_URL``. Kept free of Procrastinate's
import so that local mode never loads it. The mode is read with the other settings
(``settings.queue.mode``, :class:`engine.config.QueueSettings`), never from the
environment here.
"""

from __future__ import annotations

from sqlalchemy import make_url

from engine.config import EXECUTION_MODES, Settings
from engine.errors import EngineError

MODES = EXECUTION_MODES


class QueueModeInvalid(EngineError):
    """Queue mode cannot be used as configured; the message says what to set."""


def execution_mode(settings: Settings | None = None) -> str:
    """``EXECUTION_MODE`` of ``settings`` (default: the environment's now): ``local`` or ``queue``.

    Raises:
        ConfigInvalid: reading the environment, a value that does not parse (``EXECUTION_MODE='cluster'``
            "must be 'local' (the default) or 'queue'").
    """
    return (settings or Settings.from_env()).queue.mode


def require_postgres(url: str) -> None:
    """Refuse any store but PostgreSQL for queue mode, in one line."""
    if make_url(url).get_backend_name() != "postgresql":
        raise QueueModeInvalid(
            "EXECUTION_MODE=queue needs a PostgreSQL store: set DATABASE_URL=postgresql+psycopg://user@host:5432/db "
            "(SQLite cannot be shared by worker processes)"
        )


__all__ = ["MODES", "QueueModeInvalid", "execution_mode", "require_postgres"]
