"""The tools' settings: plugin modules, the python sandbox's knobs, file_reader's roots, web_search's backend.

Why this module exists: a tool must not read ``os.environ`` while it runs (a
dashboard Save would race with it, and nobody could hand a run other
settings). The studio reads these once, as part of ``engine.config.Settings``
(``settings.tools``), and hands them to each run; the engine wraps a run (and
the Tools page's calls) in :func:`using`, and a tool asks :func:`current`.
``tools`` may not import ``engine``, so this part of the settings lives here.

Outside such a run (a library caller, a test calling a tool directly)
:func:`current` builds them from the environment at that moment
(:meth:`ToolSettings.from_env`): the default for direct use.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from datadir.env import EnvReader
from tools.errors import ToolError

__all__ = ["ISOLATION_MODES", "ToolSettings", "current", "using"]

ISOLATION_MODES = ("bwrap", "unshare", "bwrap-root", "rlimits-only")  # strongest first (tools.builtin.python_exec)
WEB_SEARCH_PROVIDERS = ("auto", "searxng", "ddgs")


@dataclass(frozen=True, slots=True)
class ToolSettings:
    """What the built-in tools and the plugin loader are configured with (see docs/configuration.md)."""

    modules: tuple[str, ...] = ()  # TOOLS_MODULES
    isolation: str | None = None  # PYTHON_TOOL_ISOLATION: None = the strongest mode that works here
    allow_weak_sandbox: bool = False  # PYTHON_TOOL_ALLOW_WEAK_SANDBOX
    cgroup: str | None = None  # PYTHON_TOOL_CGROUP
    files_root: tuple[str, ...] = ()  # FILES_ROOT; empty: $DATA_DIR/files and the samples
    data_dir: Path = Path("data")  # DATA_DIR
    file_reader_max_bytes: int = 16 * 1024  # FILE_READER_MAX_BYTES
    web_search_provider: str = "auto"  # WEB_SEARCH_PROVIDER
    searxng_url: str = ""  # SEARXNG_URL
    web_search_timeout_s: float = 8.0  # WEB_SEARCH_TIMEOUT_S (at most 60)
    mcp_config: str = ""  # MCP_CONFIG; empty: $DATA_DIR/mcp.json (tools.mcp)
    child_path: str = os.defpath  # PATH: the one variable of the studio's environment an MCP server is handed

    @property
    def mcp_config_file(self) -> Path:
        """The MCP servers' config file: ``MCP_CONFIG``, else ``mcp.json`` in the data directory."""
        return Path(self.mcp_config).expanduser() if self.mcp_config else self.data_dir / "mcp.json"

    @classmethod
    def read(cls, env: EnvReader) -> ToolSettings:
        """From ``env``; bad values go to ``env.problems`` (one line each) and keep their defaults."""
        return cls(
            modules=env.items("TOOLS_MODULES"),
            isolation=env.choice("PYTHON_TOOL_ISOLATION", "", {m: m for m in ISOLATION_MODES}) or None,
            allow_weak_sandbox=env.flag("PYTHON_TOOL_ALLOW_WEAK_SANDBOX"),
            cgroup=env.optional("PYTHON_TOOL_CGROUP"),
            files_root=env.items("FILES_ROOT", os.pathsep),
            data_dir=Path(env.text("DATA_DIR", "data")),
            file_reader_max_bytes=env.integer("FILE_READER_MAX_BYTES", 16 * 1024, what="bytes"),
            web_search_provider=env.choice("WEB_SEARCH_PROVIDER", "auto", {p: p for p in WEB_SEARCH_PROVIDERS}),
            searxng_url=env.text("SEARXNG_URL"),
            web_search_timeout_s=min(60.0, env.number("WEB_SEARCH_TIMEOUT_S", 8.0)),
            mcp_config=env.text("MCP_CONFIG"),
            child_path=env.text("PATH", os.defpath),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ToolSettings:
        """From ``environ`` (default: this process's environment), for direct use of the tools.

        Raises:
            ToolError: a value does not parse (every such variable, one line each).
        """
        env = EnvReader(os.environ if environ is None else environ)
        settings = cls.read(env)
        if env.problems:
            raise ToolError("; ".join(env.problems), retryable=False)
        return settings


_current: ContextVar[ToolSettings | None] = ContextVar("tool_settings", default=None)


def current() -> ToolSettings:
    """The settings of the run this call belongs to; outside a run, the environment's now."""
    settings = _current.get()
    return settings if settings is not None else ToolSettings.from_env()


@contextlib.contextmanager
def using(settings: ToolSettings) -> Iterator[ToolSettings]:
    """Tool calls made in this block (and in tasks and threads it starts) use ``settings``."""
    token = _current.set(settings)
    try:
        yield settings
    finally:
        _current.reset(token)
