"""Tools from Model Context Protocol servers, through the official ``mcp`` SDK (no protocol code of our own).

Why this package exists: teams ship their tools as MCP servers. The servers named
in ``mcp.json`` (:mod:`tools.mcp.config`) have their tools registered in a
runtime's registry as ``SERVER__tool`` (:mod:`tools.mcp.hub`), so agents and tool
nodes call them like any tool: same events, deadline, result cap and cancel.
Only servers in that file run; a workflow can name their tools, never add one.
"""

from __future__ import annotations

# The hub (tools.mcp.hub) imports the MCP SDK, half a second: import it from there, only where servers are configured.
from tools.mcp.config import SEPARATOR, McpConfig, McpServerConfig, load_config

__all__ = ["SEPARATOR", "McpConfig", "McpServerConfig", "load_config"]
