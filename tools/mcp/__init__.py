"""Tools from Model Context Protocol servers, through the official ``mcp`` SDK (no protocol code of our own).

Why this package exists: teams ship their tools as MCP servers. The servers named
in ``mcp.json`` (:mod:`tools.mcp.config`) have their tools registered in a
runtime's registry as ``SERVER__tool`` (:mod:`tools.mcp.hub`), so agents and tool
nodes call them like any tool: same events, deadline, result cap and cancel.
Only servers in that file run; a workflow can name their tools, never add one.
"""

from __future__ import annotations

from tools.mcp.config import McpConfig, McpServerConfig, load_config
from tools.mcp.hub import SEPARATOR, McpHub

__all__ = ["SEPARATOR", "McpConfig", "McpHub", "McpServerConfig", "load_config"]
