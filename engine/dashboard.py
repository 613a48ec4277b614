"""``workflow-studio ui``: start the dashboard from an install as ``streamlit run app.py`` does in a checkout.

Why this module exists: an installed studio has no checkout to ``cd`` into. ``app.py`` and its pages
(``views/``), ``ui/`` and ``examples/`` are installed side by side in site-packages exactly as they sit
in the repository, so the dashboard finds them next to ``app.py``; but Streamlit reads its settings
only from ``~/.streamlit``, the current folder's ``.streamlit`` and the script folder's ``.streamlit``,
and site-packages has none. The studio's settings are not cosmetic: ``.streamlit/config.toml`` makes
the dashboard listen on 127.0.0.1 only and refuse other hosts and origins (it can run code and has no
login). So this module reads that file (from the checkout, or the copy the wheel ships as
``engine/streamlit_config/config.toml``) and passes every setting to ``streamlit run`` as a flag; a
flag the user gives (``workflow-studio ui --server.port 8600``) replaces the studio's value for that
key. Streamlit runs as its own program (this process is replaced by it on POSIX, so Ctrl-C and
``kill`` reach it directly); the engine never imports streamlit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

from engine.errors import DashboardError

__all__ = ["DashboardError", "app_path", "config_path", "main", "streamlit_command", "streamlit_flags"]

ROOT = Path(__file__).resolve().parents[1]  # the checkout, or site-packages when installed
CHECKOUT_CONFIG = ROOT / ".streamlit" / "config.toml"
INSTALLED_CONFIG = Path(__file__).resolve().with_name("streamlit_config") / "config.toml"

Scalar = str | int | float | bool


def app_path() -> Path:
    """The dashboard's ``app.py``: next to the ``engine`` package, in a checkout and in site-packages alike."""
    path = ROOT / "app.py"
    if not path.is_file():
        raise DashboardError(f"the dashboard's app.py is missing from {ROOT}; reinstall agentic-workflow-studio")
    return path


def config_path() -> Path:
    """The studio's Streamlit settings: the checkout's ``.streamlit/config.toml``, else the installed copy."""
    for path in (CHECKOUT_CONFIG, INSTALLED_CONFIG):
        if path.is_file():
            return path
    raise DashboardError(
        f"the dashboard's settings file is missing ({INSTALLED_CONFIG}); reinstall agentic-workflow-studio"
    )


def _flag_value(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _user_keys(args: Sequence[str]) -> set[str]:
    """The ``section.option`` keys the user set on the command line (``--server.port 8600`` or ``=8600``)."""
    return {arg[2:].split("=", 1)[0] for arg in args if arg.startswith("--") and "." in arg.split("=", 1)[0]}


def streamlit_flags(config: dict[str, object], user_args: Sequence[str] = ()) -> list[str]:
    """``--section.option=value`` flags for every setting in ``config`` that ``user_args`` does not set.

    A list becomes one flag per item (Streamlit's repeatable options); an empty list is left out, which
    is Streamlit's own default for its list options (``server.corsAllowedOrigins``: none).
    """
    taken = _user_keys(user_args)
    flags: list[str] = []
    for section, options in config.items():
        if not isinstance(options, dict):
            raise DashboardError(f"the dashboard's settings file has {section!r} outside a [section]")
        for option, value in options.items():
            key = f"{section}.{option}"
            if key in taken:
                continue
            values = value if isinstance(value, list) else [value]
            flags.extend(f"--{key}={_flag_value(item)}" for item in values)
    return flags


def streamlit_command(user_args: Sequence[str] = ()) -> list[str]:
    """The command that starts the dashboard: ``python -m streamlit run app.py <settings> <user args>``."""
    with config_path().open("rb") as handle:
        config = tomllib.load(handle)
    return [
        sys.executable, "-m", "streamlit", "run", str(app_path()),
        *streamlit_flags(config, user_args), *user_args,
    ]


def main(user_args: Sequence[str] = ()) -> int:
    """Start the dashboard in the foreground; returns Streamlit's exit code (where it is not exec'd)."""
    try:
        command = streamlit_command(user_args)
    except (DashboardError, OSError, tomllib.TOMLDecodeError) as exc:
        print(f"workflow-studio ui: {exc}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execv(command[0], command)  # streamlit becomes this process: signals and exit code are its own
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 130
