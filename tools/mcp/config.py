"""The MCP servers' configuration: ``mcp.json`` in the data directory (or the file ``MCP_CONFIG`` names).

Why this module exists: one reader and one writer of the format users already
know from other MCP clients::

    {"mcpServers": {"NAME": {"command": "...", "args": [...], "env": {...}}}}   # stdio
    {"mcpServers": {"NAME": {"url": "http://host/mcp", "headers": {...}}}}       # Streamable HTTP

plus an optional ``"timeout"`` (seconds per call) per server. A server name is
1-32 letters, digits, ``-`` or ``_`` without ``__`` (its tools are called
``NAME__tool``). Problems are collected as one line each, never raised: a bad
entry is skipped and reported, the others still work. :func:`masked` is the
form a page may show: every ``env``/``headers`` value replaced.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MASK = "********"
SEPARATOR = "__"  # a server's tools are registered as SERVER__tool, so a server name never holds it
_SERVER_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")


@dataclass(frozen=True)
class McpServerConfig:
    """One server: ``command`` (stdio) or ``url`` (Streamable HTTP). Its secrets live in env/headers."""

    name: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout_s: float | None = None

    @property
    def transport(self) -> str:
        return "stdio" if self.command else "http"


@dataclass(frozen=True)
class McpConfig:
    """The servers of one config file and the problems found reading it (one line each)."""

    servers: tuple[McpServerConfig, ...] = ()
    problems: tuple[str, ...] = ()
    path: Path | None = None


def _strings(value: Any, what: str, problems: list[str]) -> dict[str, str] | None:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        problems.append(f"{what} must be an object of text values")
        return None
    return dict(value)


def parse_config(document: Any, path: Path | None = None) -> McpConfig:
    """The servers described by a parsed ``mcp.json`` document."""
    problems: list[str] = []
    servers: list[McpServerConfig] = []
    entries = document.get("mcpServers", {}) if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        return McpConfig((), ('mcp.json must be {"mcpServers": {"NAME": {...}}}',), path)
    for name, entry in entries.items():
        where = f"MCP server {name!r}"
        if not isinstance(name, str) or not _SERVER_NAME_RE.fullmatch(name) or SEPARATOR in name:
            problems.append(f"{where}: a name is 1-32 letters, digits, '-' or '_' (no '__'), starting with a letter")
            continue
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be an object with 'command' or 'url'")
            continue
        command, url = entry.get("command", ""), entry.get("url", "")
        if not isinstance(command, str) or not isinstance(url, str) or bool(command) == bool(url):
            problems.append(f"{where}: give exactly one of 'command' (stdio) or 'url' (Streamable HTTP)")
            continue
        if url and not re.match(r"https?://", url):
            problems.append(f"{where}: 'url' must start with http:// or https://")
            continue
        args = entry.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            problems.append(f"{where}: 'args' must be a list of text")
            continue
        env = _strings(entry.get("env"), f"{where}: 'env'", problems)
        headers = _strings(entry.get("headers"), f"{where}: 'headers'", problems)
        timeout = entry.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
            problems.append(f"{where}: 'timeout' must be a positive number of seconds")
            continue
        if env is None or headers is None:
            continue
        servers.append(
            McpServerConfig(
                name=name,
                command=command,
                args=tuple(args),
                env=env,
                url=url,
                headers=headers,
                timeout_s=float(timeout) if timeout is not None else None,
            )
        )
    return McpConfig(tuple(servers), tuple(problems), path)


def load_config(path: Path) -> McpConfig:
    """The config in ``path``; no file means no servers."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return McpConfig((), (), path)
    except OSError as exc:
        return McpConfig((), (f"cannot read {path}: {exc.strerror}",), path)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return McpConfig((), (f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})",), path)
    return parse_config(document, path)


def masked(document: Any) -> Any:
    """``document`` with every ``env`` and ``headers`` value replaced by :data:`MASK` (what a page shows)."""
    if not isinstance(document, dict) or not isinstance(document.get("mcpServers"), dict):
        return document
    servers: dict[str, Any] = {}
    for name, entry in document["mcpServers"].items():
        if isinstance(entry, dict):
            entry = dict(entry)
            for key in ("env", "headers"):
                if isinstance(entry.get(key), dict):
                    entry[key] = {k: MASK for k in entry[key]}
        servers[name] = entry
    return {**document, "mcpServers": servers}


def unmask(edited: Any, saved: Any) -> Any:
    """``edited`` (from a page) with each :data:`MASK` value put back from ``saved`` (the file's)."""
    if not isinstance(edited, dict) or not isinstance(edited.get("mcpServers"), dict):
        return edited
    old = saved.get("mcpServers", {}) if isinstance(saved, dict) else {}
    servers: dict[str, Any] = {}
    for name, entry in edited["mcpServers"].items():
        if isinstance(entry, dict):
            entry = dict(entry)
            before = old.get(name, {}) if isinstance(old, dict) else {}
            for key in ("env", "headers"):
                values, previous = entry.get(key), before.get(key, {}) if isinstance(before, dict) else {}
                if isinstance(values, dict):
                    entry[key] = {
                        k: (previous.get(k, "") if v == MASK and isinstance(previous, dict) else v)
                        for k, v in values.items()
                    }
        servers[name] = entry
    return {**edited, "mcpServers": servers}


def read_document(path: Path) -> dict[str, Any]:
    """The file's JSON document as it is (``{"mcpServers": {}}`` when missing or unreadable), for editing."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {"mcpServers": {}}
    return document if isinstance(document, dict) else {"mcpServers": {}}


def edit(text: str, saved: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """The document to save from a page's edited (masked) text, or None and why not (one line each)."""
    try:
        edited = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]
    document = unmask(edited, saved)
    problems = list(parse_config(document).problems)
    if problems:
        return None, problems
    return document, []


def save_document(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` readable by this user only (it holds the servers' secrets).

    Raises:
        OSError: the folder is not writable.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
        json.dump(document, out, indent=2)
        out.write("\n")
    os.replace(temporary, path)
