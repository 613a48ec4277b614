"""User settings the dashboard can change: endpoint base URL, model, embeddings, limits.

They live in ``$DATA_DIR/settings.json`` and are applied to this process's
environment, which is what the engine reads (``OPENAI_BASE_URL``,
``OPENAI_MODEL``, ``MEMORY_EMBEDDINGS``). Variables already set in the
environment win over the file, so deployments stay in charge. The API key is
never stored here: it comes from the environment or
``.streamlit/secrets.toml`` (which Streamlit exports as environment variables).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

_ENV = {"base_url": "OPENAI_BASE_URL", "model": "OPENAI_MODEL", "embeddings": "MEMORY_EMBEDDINGS"}


@dataclass
class Settings:
    """What the Settings page edits. Empty strings mean "not set"."""

    base_url: str = ""
    model: str = ""
    embeddings: str = "offline"  # "offline" (MiniLM, ships with the studio) or "openai"
    new_workflow_timeout_s: float | None = None  # settings.timeout_s given to workflows made with "New"; None: none


def data_dir() -> Path:
    return Path(os.environ.get("DATA_DIR") or "./data").resolve()


def settings_path() -> Path:
    return data_dir() / "settings.json"


def load() -> Settings:
    """The saved settings (defaults when there is no file or it cannot be read)."""
    try:
        raw = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Settings()
    known = {k: v for k, v in raw.items() if k in Settings.__dataclass_fields__} if isinstance(raw, dict) else {}
    return Settings(**known)


def save(settings: Settings) -> Path:
    """Write the settings file (never a key) and apply it to this process."""
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(settings), indent=2), encoding="utf-8")
    apply(settings, override=True)
    return path


def apply(settings: Settings, *, override: bool = False) -> None:
    """Export the settings as environment variables (not over existing ones unless ``override``)."""
    for field, variable in _ENV.items():
        value = str(getattr(settings, field) or "")
        if override:
            if value:
                os.environ[variable] = value
            elif variable != "MEMORY_EMBEDDINGS":
                os.environ.pop(variable, None)
        elif value and not os.environ.get(variable):
            os.environ[variable] = value


def key_source() -> str | None:
    """Where the API key comes from, for display ("environment"), never the key itself."""
    return "environment" if os.environ.get("OPENAI_API_KEY") else None
