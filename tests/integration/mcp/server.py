"""A test MCP server written with the SDK's server side: ``python server.py stdio`` or ``server.py http PORT``.

Tools: echo, add, sleep, fail, image, pid, env_keys and crash (the process dies mid-call).
``sleep`` writes ``started``/``cancelled`` lines to ``$MCP_TEST_LOG`` when that is set, so a test
can see that a cancelled call reached the server.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys

from mcp.server.fastmcp import FastMCP, Image

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)

port = int(sys.argv[2]) if len(sys.argv) > 2 else 8000
server = FastMCP("test-server", host="127.0.0.1", port=port, log_level="WARNING")


def _log(line: str) -> None:
    path = os.environ.get("MCP_TEST_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
async def sleep(seconds: float) -> str:
    """Sleep, then say so."""
    _log("started")
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        _log("cancelled")
        raise
    return f"slept {seconds}"


@server.tool()
def fail(message: str) -> str:
    """Always fail with the message."""
    raise ValueError(message)


@server.tool()
def image() -> Image:
    """A 1x1 PNG."""
    return Image(data=PNG, format="png")


@server.tool()
def pid() -> int:
    """This server's process id."""
    return os.getpid()


@server.tool()
def env_keys() -> list[str]:
    """The names of this server's environment variables."""
    return sorted(os.environ)


@server.tool()
def crash() -> str:
    """Die in the middle of the call."""
    os._exit(3)


if __name__ == "__main__":
    server.run("stdio" if sys.argv[1] == "stdio" else "streamable-http")
