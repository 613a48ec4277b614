"""The built-in tools.

Why this package exists: importing it registers every built-in tool in the
default registry, through the same ``@tool`` decorator a user's tools use.
"""

from __future__ import annotations

from tools.builtin import calculator  # noqa: F401  (registers "calculator")
