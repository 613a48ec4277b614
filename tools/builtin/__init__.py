"""The built-in tools.

Why this package exists: importing it registers every built-in tool in the
default registry, through the same ``@tool`` decorator a user's tools use.
"""

from __future__ import annotations

from tools.builtin import (
    calculator,  # noqa: F401  (registers "calculator")
    file_reader,  # noqa: F401  (registers "file_reader")
    python_exec,  # noqa: F401  (registers "python")
    web_search,  # noqa: F401  (registers "web_search")
)
