"""The engine's one exception hierarchy.

Every error a user can meet carries a message that says what is wrong and,
where possible, how to fix it. Control-flow signals (a node asking for a
retry) are kept apart from final failures.
"""

from __future__ import annotations

from dataclasses import dataclass


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a workflow document.

    Attributes:
        where: what the problem is about, e.g. ``node 'research'``,
            ``edge start -> research`` or ``settings.max_iterations``.
        message: what is wrong, in words a user can act on.
    """

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class WorkflowInvalid(EngineError):
    """A workflow document failed validation; ``problems`` lists every problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        count = len(self.problems)
        head = f"workflow is invalid ({count} problem{'s' if count != 1 else ''})"
        super().__init__(head + "".join(f"\n  - {p}" for p in self.problems))


class InputsInvalid(EngineError):
    """Run inputs do not match the workflow's ``inputs`` schema."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("inputs are invalid" + "".join(f"\n  - {p}" for p in self.problems))


class NodeError(EngineError):
    """A node failed; the message names the node."""

    def __init__(self, node_id: str, message: str):
        self.node_id = node_id
        self.reason = message
        super().__init__(f"node '{node_id}': {message}")


class NodeTimeout(NodeError):
    """One execution of a node took longer than its ``timeout_s``."""

    def __init__(self, node_id: str, timeout_s: float):
        self.timeout_s = timeout_s
        super().__init__(node_id, f"timed out after {timeout_s:g} s (raise the node's timeout_s if it needs longer)")


class IterationLimit(NodeError):
    """A node would run more often than ``settings.max_iterations`` allows."""

    def __init__(self, node_id: str, limit: int):
        self.limit = limit
        super().__init__(
            node_id,
            f"would run more than max_iterations={limit} times in this run; "
            "check the loop's condition or raise settings.max_iterations",
        )


class TemplateError(NodeError):
    """A template or expression failed while rendering (e.g. an undefined variable)."""


class ModelError(EngineError):
    """The language model endpoint failed in a way retrying will not fix.

    Attributes:
        retryable: True for failures worth retrying (rate limits, 5xx, lost connections).
    """

    def __init__(self, message: str, *, retryable: bool = False):
        self.retryable = retryable
        super().__init__(message)


class ToolNotAllowed(EngineError):
    """An agent asked for a tool its node does not list."""


class ConfigInvalid(EngineError):
    """Settings from the environment do not parse (``engine.config``); ``problems`` has one line per variable,
    each naming it. The message is those lines joined: print it as it is, no traceback."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        count = len(self.problems)
        head = "" if count == 1 else f"{count} settings are invalid: "
        super().__init__(head + "; ".join(self.problems))
