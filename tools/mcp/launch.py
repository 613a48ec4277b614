"""Start an MCP server with exactly the environment its config names, plus PATH.

Why this module exists: the SDK's stdio client hands a server a few variables
of the studio's own environment (HOME, USER, SHELL, ...) besides the ones asked
for. This launcher runs in the child process, reads what to run from one
variable the studio set for it, and replaces itself (``execvpe``) with the
server under exactly ``config env + PATH``: nothing of the studio's environment,
its keys included, reaches the server. Runs with ``python -I -S``: only the
standard library.
"""

from __future__ import annotations

import json
import os
import sys

SPEC_VAR = "STUDIO_MCP_LAUNCH"


def main() -> None:
    """Exec the server described in ``$STUDIO_MCP_LAUNCH`` (``{"command", "args", "env"}``)."""
    spec = json.loads(os.environ[SPEC_VAR])
    command: str = spec["command"]
    env: dict[str, str] = dict(spec["env"])
    try:
        os.execvpe(command, [command, *spec["args"]], env)
    except OSError as exc:
        sys.stderr.write(f"cannot start MCP server command {command!r}: {exc}\n")
        sys.exit(127)


if __name__ == "__main__":
    main()
