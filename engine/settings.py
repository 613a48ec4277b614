"""The Settings page's file: endpoint base URL, model, embeddings, prices, the timeout for new workflows.

They live in ``$DATA_DIR/settings.json`` (0600, written atomically). This
module only reads and writes that file and says what a Save means
(:func:`edit`); it never touches ``os.environ``. ``engine.config`` reads the
file once at start-up together with the environment (a set variable wins over
the file, so deployments stay in charge) into the ``Settings`` the engine is
handed; the dashboard's Save writes the file and hands the runtime new
``Settings`` (``engine.config.Settings.with_saved``): the fields the user
changed take effect over such variables until a restart, and the fields left
as they were (``keep``) stay as they are in effect, so saving one field
neither copies an environment value into the file nor undoes it. The API key
is never stored here: it comes from the environment or
``.streamlit/secrets.toml`` (which Streamlit exports as environment variables).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from datadir import private_dir, private_file, write_private_text
from engine.llm import public_url, url_problems

ENV_VARIABLES = {"base_url": "OPENAI_BASE_URL", "model": "OPENAI_MODEL", "embeddings": "MEMORY_EMBEDDINGS"}
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


def load(path: Path) -> Settings:
    """The settings saved in ``path`` (defaults when there is no file or it cannot be read)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        private_file(path)  # an older, world-readable file is tightened to 0600
    except (OSError, ValueError):
        return Settings()
    known = {k: v for k, v in raw.items() if k in Settings.__dataclass_fields__} if isinstance(raw, dict) else {}
    if not isinstance(known.get("prices", {}), dict):
        known.pop("prices")  # a hand-edited file: no prices rather than no settings
    return Settings(**known)


def save(settings: Settings, path: Path) -> Path:
    """Write the settings file ``path`` (never a key); returns it.

    Raises:
        OSError: the file cannot be written (``DATA_DIR`` not writable, say).
    """
    private_dir(path.parent)  # the data folder 0700, the file 0600: it can hold an endpoint's credentials
    write_private_text(path, json.dumps(asdict(settings), indent=2))
    return path


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
