"""The Settings page's values in the database, where every worker of queue mode reads them.

Why this module exists: in queue mode runs execute on ``python -m engine worker``
processes, possibly on other machines, which never see the dashboard's
``$DATA_DIR/settings.json``. The dashboard's Save (``Runtime.save_settings``)
therefore also writes them here, to the table ``studio_settings`` (one row,
``name = 'studio'``: the saved fields as JSON, and which endpoint fields were
ever changed on the page), and a worker reads the row when a run starts
(:func:`load_shared`, :func:`apply_shared`). The API key is never stored.

How a worker combines the row with its own settings (:func:`apply_shared`): an
endpoint field (base URL, model, embeddings) changed on the Settings page wins;
a field never changed there wins only where the worker's environment does not
set it, as the settings file does for a local process (a set variable wins).
Prices and the timeout for new workflows always come from the row.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Engine

from engine.config import Settings
from engine.errors import StoreError
from engine.settings import ENV_VARIABLES
from engine.settings import Settings as SavedSettings

ROW = "studio"

_metadata = sa.MetaData()
SETTINGS_TABLE = sa.Table(
    "studio_settings",
    _metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("document", sa.Text, nullable=False),  # engine.settings.Settings as JSON (never a key)
    sa.Column("applied", sa.Text, nullable=False, default="[]"),  # endpoint fields changed on the page (JSON list)
    sa.Column("updated_at", sa.Float, nullable=False),
)


@dataclass(frozen=True, slots=True)
class SharedSettings:
    """The row: the Settings page's fields, and the endpoint fields the page ever changed."""

    saved: SavedSettings
    applied: frozenset[str]


def create_table(engine: Engine) -> None:
    """The table, when missing (the migration ``0008_qmem``)."""
    _metadata.create_all(engine, tables=[SETTINGS_TABLE], checkfirst=True)


def load_shared(engine: Engine) -> SharedSettings | None:
    """The row, or None when nothing was saved yet.

    Raises:
        StoreError: the database cannot be read.
    """
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.select(SETTINGS_TABLE).where(SETTINGS_TABLE.c.name == ROW)).mappings().first()
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot read the shared settings: {_short(exc)}") from exc
    if row is None:
        return None
    return SharedSettings(_saved_from(row["document"]), frozenset(_names(row["applied"])))


def save_shared(engine: Engine, saved: SavedSettings, *, keep: Collection[str] = ()) -> SharedSettings:
    """Write ``saved`` as the row; the endpoint fields not in ``keep`` (changed on the page) join ``applied``.

    Raises:
        StoreError: the database cannot be written (run ``python -m engine migrate`` when the table is missing).
    """
    changed = {name for name in ENV_VARIABLES if name not in keep}
    try:
        with engine.begin() as conn:
            old = conn.execute(
                sa.select(SETTINGS_TABLE.c.applied).where(SETTINGS_TABLE.c.name == ROW).with_for_update()
            ).first()
            applied = frozenset(_names(old[0]) if old is not None else ()) | changed
            values = {
                "document": json.dumps(dataclasses.asdict(saved)),
                "applied": json.dumps(sorted(applied)),
                "updated_at": time.time(),
            }
            if old is None:
                conn.execute(SETTINGS_TABLE.insert().values(name=ROW, **values))
            else:
                conn.execute(SETTINGS_TABLE.update().where(SETTINGS_TABLE.c.name == ROW).values(**values))
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(
            f"cannot save the shared settings ({_short(exc)}): run `python -m engine migrate` once first"
        ) from exc
    return SharedSettings(saved, applied)


def apply_shared(settings: Settings, shared: SharedSettings | None) -> Settings:
    """``settings`` with the row taking effect (see the module docstring); unchanged when there is no row."""
    if shared is None:
        return settings
    keep = [name for name in ENV_VARIABLES if name not in shared.applied and name in settings.sources]
    return settings.with_saved(shared.saved, keep=keep)


def _saved_from(document: str) -> SavedSettings:
    try:
        raw = json.loads(document)
    except ValueError:
        return SavedSettings()
    known = {k: v for k, v in raw.items() if k in SavedSettings.__dataclass_fields__} if isinstance(raw, dict) else {}
    if not isinstance(known.get("prices", {}), dict):
        known.pop("prices")
    return SavedSettings(**known)


def _names(text: str) -> list[str]:
    try:
        names = json.loads(text or "[]")
    except ValueError:
        return []
    return [n for n in names if isinstance(n, str) and n in ENV_VARIABLES] if isinstance(names, list) else []


def _short(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]


__all__ = ["SETTINGS_TABLE", "SharedSettings", "apply_shared", "create_table", "load_shared", "save_shared"]
