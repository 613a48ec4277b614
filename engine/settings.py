"""User settings the dashboard can change: endpoint base URL, model, embeddings, limits.

They live in ``$DATA_DIR/settings.json`` and are applied to this process's
environment, which is what the engine reads (``OPENAI_BASE_URL``,
``OPENAI_MODEL``, ``MEMORY_EMBEDDINGS``). Variables already set in the
environment win over the file, so deployments stay in charge. The API key is
never stored here: it comes from the environment or
``.streamlit/secrets.toml`` (which Streamlit exports as environment variables).

Saving applies the saved values to this process at once, over such variables
too (until a restart, when the environment wins again), except for fields
passed as ``keep``: the Settings page passes the fields the user left as they
were, so saving one field neither copies an environment value into the file
nor undoes it in this process. :func:`in_effect` is what the process uses now,
:func:`sources` says which values come from the environment rather than the
file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from datadir import data_dir as _data_dir
from datadir import private_dir, private_file, write_private_text
from engine.llm import public_url, url_problems

_ENV = {"base_url": "OPENAI_BASE_URL", "model": "OPENAI_MODEL", "embeddings": "MEMORY_EMBEDDINGS"}
ENV_VARIABLES = dict(_ENV)  # field -> the environment variable the engine reads it from
OFFLINE_EMBEDDINGS = ("", "offline", "local", "minilm")  # MEMORY_EMBEDDINGS values memory takes for the shipped model

Source = Literal["environment", "override"]


@dataclass
class Settings:
    """What the Settings page edits. Empty strings mean "not set"."""

    base_url: str = ""
    model: str = ""
    embeddings: str = "offline"  # "offline" (MiniLM, ships with the studio) or "openai"
    new_workflow_timeout_s: float | None = None  # settings.timeout_s given to workflows made with "New"; None: none
    # model -> {"input": USD per 1M prompt tokens, "output": USD per 1M completion tokens} (engine.costs)
    prices: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)


def data_dir() -> Path:
    return _data_dir()


def settings_path() -> Path:
    return data_dir() / "settings.json"


def load() -> Settings:
    """The saved settings (defaults when there is no file or it cannot be read)."""
    path = settings_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        private_file(path)  # an older, world-readable file is tightened to 0600
    except (OSError, ValueError):
        return Settings()
    known = {k: v for k, v in raw.items() if k in Settings.__dataclass_fields__} if isinstance(raw, dict) else {}
    if not isinstance(known.get("prices", {}), dict):
        known.pop("prices")  # a hand-edited file: no prices rather than no settings
    return Settings(**known)


def save(settings: Settings, *, keep: Collection[str] = ()) -> Path:
    """Write the settings file (never a key) and apply it to this process.

    Fields named in ``keep`` are written to the file but not applied: what is
    in effect for them stays (an environment variable that overrides the file,
    say). Nothing is applied when writing fails.

    Raises:
        OSError: the file cannot be written (``DATA_DIR`` not writable, say).
    """
    path = settings_path()
    private_dir(path.parent)  # the data folder 0700, the file 0600: it can hold an endpoint's credentials
    write_private_text(path, json.dumps(asdict(settings), indent=2))
    apply(settings, override=True, skip=keep)
    return path


def apply(settings: Settings, *, override: bool = False, skip: Collection[str] = ()) -> None:
    """Export the settings as environment variables (not over existing ones unless ``override``; never ``skip``)."""
    for field, variable in _ENV.items():
        if field in skip:
            continue
        value = str(getattr(settings, field) or "")
        if override:
            if value:
                os.environ[variable] = value
            elif variable != "MEMORY_EMBEDDINGS":
                os.environ.pop(variable, None)
        elif value and not os.environ.get(variable):
            os.environ[variable] = value


def in_effect(saved: Settings | None = None) -> Settings:
    """The values this process uses now: the environment's, and the file's where there is no variable.

    ``embeddings`` is "openai" or "offline" (what ``memory.embeddings`` takes
    ``MEMORY_EMBEDDINGS`` to mean; an unknown value counts as "offline" here).
    """
    saved = load() if saved is None else saved
    return Settings(
        base_url=os.environ.get("OPENAI_BASE_URL", ""),
        model=os.environ.get("OPENAI_MODEL", ""),
        embeddings="openai" if _embeddings_env() == "openai" else "offline",
        new_workflow_timeout_s=saved.new_workflow_timeout_s,
    )


def sources(saved: Settings | None = None) -> dict[str, Source]:
    """The fields whose value in effect is not the file's, by where it comes from.

    "override": the file has another value, which the environment wins over
    (until the field is saved again from the page). "environment": the file
    has none (no settings file counts as none, not as its defaults). Fields
    not listed are in effect as saved.
    """
    saved = load() if saved is None else saved
    has_file = settings_path().is_file()
    found: dict[str, Source] = {}
    for field, variable in _ENV.items():
        env = os.environ.get(variable) or ""
        file = str(getattr(saved, field) or "") if has_file else ""
        if field == "embeddings":
            env_kind, file_kind = _embeddings_env(), file.strip().lower()
            same = env_kind == file_kind or (env_kind in OFFLINE_EMBEDDINGS and file_kind in OFFLINE_EMBEDDINGS)
        else:
            same = env == file
        if env and not same:
            found[field] = "override" if file else "environment"
    return found


def shown_base_url(effective: Settings) -> tuple[str, bool]:
    """The base URL in effect as a page may show it (no user-info, query or fragment), and whether that
    hides a part of it (which Save then keeps unless told to forget it)."""
    url = effective.base_url.strip()
    shown = public_url(url) if url else ""
    return shown, bool(url) and shown != url


@dataclass(frozen=True)
class Edit:
    """What the Settings form's Save means: the settings to write, the fields left as they were (written but
    not applied, see :func:`save`), and why nothing may be saved (empty when it may)."""

    settings: Settings
    keep: tuple[str, ...]
    problems: tuple[str, ...]


def edit(
    saved: Settings,
    effective: Settings,
    *,
    base_url: str,
    forget_hidden_url: bool,
    model: str,
    embeddings: str,
    new_workflow_timeout_s: float | None,
) -> Edit:
    """The form's values against what is in effect: a field left as shown keeps its saved value (so an
    environment value is neither copied into the file nor undone, and a URL's hidden part stays)."""
    shown, hidden = shown_base_url(effective)
    typed_url = base_url.strip()
    changed = {
        "base_url": typed_url != shown or (hidden and forget_hidden_url),
        "model": model.strip() != effective.model.strip(),
        "embeddings": embeddings != effective.embeddings,
    }
    problems = tuple(url_problems(typed_url)) if changed["base_url"] and typed_url else ()
    new = dataclasses.replace(
        saved,
        base_url=typed_url if changed["base_url"] else saved.base_url,
        model=model.strip() if changed["model"] else saved.model,
        embeddings=embeddings if changed["embeddings"] else saved.embeddings,
        new_workflow_timeout_s=new_workflow_timeout_s,
    )
    return Edit(new, tuple(field for field, was_changed in changed.items() if not was_changed), problems)


def _embeddings_env() -> str:
    return (os.environ.get("MEMORY_EMBEDDINGS") or "").strip().lower()


def embeddings_env_known() -> bool:
    """Whether ``MEMORY_EMBEDDINGS`` (unset counts) is a value memory takes: offline ones or ``openai``."""
    return _embeddings_env() in (*OFFLINE_EMBEDDINGS, "openai")


def key_source() -> str | None:
    """Where the API key comes from, for display ("environment"), never the key itself."""
    return "environment" if os.environ.get("OPENAI_API_KEY") else None
