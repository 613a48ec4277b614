"""Every error the ``tools`` package raises on purpose: the registry's, the deadline's and the built-in tools'.

Why this module exists: one place to see what a tool call can fail with and
whether trying again can help. A failed call reaches a caller as a
``ToolResult`` whose ``error`` is the message and whose ``retryable`` is the
error's: a workflow node spends its ``retry`` budget only on failures that
another try may fix (a timeout, a search backend that is down, a flaky
plugin), never on ones that fail the same way again (a refused expression,
a file outside the allowed folder, code that does not parse).

This package may not import ``engine`` (tests/unit/test_boundaries.py), so
this hierarchy is separate from ``engine.errors``; messages follow the same
rule: one line a user (or a model) can act on.
"""

from __future__ import annotations

from collections.abc import Iterable


class ToolError(Exception):
    """Raise from a tool to report a failure whose message is shown verbatim.

    Any other exception is reported as ``"<ExceptionType>: <message>"`` and
    counts as retryable. Raising is the one way a tool reports a failure: a
    returned value is always a success, whatever it contains.

    Args:
        message: what went wrong, in words a model or user can act on (the
            call's ``error``; a model reads it).
        detail: optional longer text for people (a traceback, printed
            output, a backend's raw error): kept in ``ToolResult.detail`` and
            in the ``tool.result`` event, never shown to a model.
        retryable: whether calling again with the same arguments may succeed;
            default the class's (True for ``ToolError`` itself).
    """

    retryable: bool = True

    def __init__(self, message: str = "", *, detail: str | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.detail = detail
        if retryable is not None:
            self.retryable = retryable


class UnknownTool(KeyError):
    """No tool of that name is registered; the message lists the available ones."""

    retryable = False

    def __init__(self, name: str, available: Iterable[str]):
        self.name = name
        self.available = sorted(available)
        listed = ", ".join(self.available) if self.available else "(none)"
        self.message = f"Unknown tool {name!r}. Available tools: {listed}."
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class DeadlinePassed(Exception):
    """A call ran past its deadline (and was cancelled); the registry turns it into a timeout result."""

    retryable = True


# ------------------------------------------------------------------ built-in tools


class CalculatorError(ToolError, ValueError):
    """The expression is not allowed or cannot be computed; the message says why."""

    retryable = False


class FileReaderError(ToolError):
    """The file cannot be read by this tool; the message says why (and what is allowed)."""

    retryable = False


class SearchUnavailable(ToolError):
    """No search backend could answer; the message says why and what to configure."""


class PythonToolError(ToolError):
    """Base of the ``python`` tool's errors; the message is shown to the model verbatim."""


class CodeRefused(PythonToolError):
    """The pre-check refused the code before anything ran."""

    retryable = False


class CodeSyntaxError(PythonToolError):
    """The code does not parse."""

    retryable = False


class CodeTimeout(PythonToolError):
    """The code exceeded its wall-clock or CPU-time limit and was stopped."""


class CodeMemoryLimit(PythonToolError):
    """The code exceeded its memory limit."""


class CodeCrashed(PythonToolError):
    """The code's process died without reporting a result (signal, os._exit, ...)."""


class CodeFailed(PythonToolError):
    """The code ran and failed: it raised an exception or exited with a non-zero status.

    The message is the exception (``"ZeroDivisionError: division by zero (line 3)"``);
    ``detail`` holds the printed output and the traceback, for people.
    """


class CodeCancelled(PythonToolError):
    """The call was cancelled while the code ran; it was stopped."""


class SandboxUnavailable(PythonToolError):
    """No acceptable isolation is available on this machine (a setting, not a passing failure)."""

    retryable = False


__all__ = [
    "CalculatorError",
    "CodeCancelled",
    "CodeCrashed",
    "CodeFailed",
    "CodeMemoryLimit",
    "CodeRefused",
    "CodeSyntaxError",
    "CodeTimeout",
    "DeadlinePassed",
    "FileReaderError",
    "PythonToolError",
    "SandboxUnavailable",
    "SearchUnavailable",
    "ToolError",
    "UnknownTool",
]
