"""The engine's one exception hierarchy: every error the engine raises on purpose is defined here.

Every error a user can meet carries a message that says what is wrong and,
where possible, how to fix it. Each says whether retrying can help
(``retryable``): a node's ``retry`` budget is spent only on errors that can
(a rate limit, a timeout, a flaky tool), never on ones that would fail the
same way again (a template error, a bad request, a refused argument).

The ``tools`` and ``memory`` packages may not import the engine, so they keep
their own hierarchies (``tools/errors.py``, ``memory/errors.py``); tool
errors reach the engine as a ``ToolResult`` whose ``retryable`` says the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2.exceptions import SecurityError


class EngineError(Exception):
    """Base of every error the engine raises on purpose.

    Attributes:
        retryable: whether another try may succeed; a node's ``retry`` is spent only when it is True.
            Set per class, or per error with ``retryable=`` when the cause decides.
    """

    retryable: bool = True

    def __init__(self, *args: object, retryable: bool | None = None) -> None:
        super().__init__(*args)
        if retryable is not None:
            self.retryable = retryable


def is_retryable(exc: BaseException) -> bool:
    """Whether another try may succeed: an error's own ``retryable``, else True (an unknown failure may pass)."""
    retryable = getattr(exc, "retryable", True)
    return retryable if isinstance(retryable, bool) else True


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

    retryable = False

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        count = len(self.problems)
        head = f"workflow is invalid ({count} problem{'s' if count != 1 else ''})"
        super().__init__(head + "".join(f"\n  - {p}" for p in self.problems))


class InputsInvalid(EngineError):
    """Run inputs do not match the workflow's ``inputs`` schema."""

    retryable = False

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

    retryable = False

    def __init__(self, node_id: str, limit: int):
        self.limit = limit
        super().__init__(
            node_id,
            f"would run more than max_iterations={limit} times in this run; "
            "check the loop's condition or raise settings.max_iterations",
        )


class ModelError(EngineError):
    """The language model endpoint failed in a way retrying will not fix.

    Attributes:
        retryable: True for failures worth retrying (rate limits, 5xx, lost connections).
    """

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message, retryable=retryable)


# --- templates ------------------------------------------------------------------


class RenderError(EngineError):
    """A template failed at run time; the message names the variable or operation.

    Not retryable (the same template over the same values fails the same way), except
    when the render time limit stopped it: that depends on the machine's load, like a timeout.
    """

    retryable = False


class ValueTooLarge(RenderError):
    """A lazy value (generator, range, view) has more items than a template may make."""


class RenderTimeLimit(SecurityError):
    """A template ran past its time limit, or was about to (``engine.template_budget``).

    A jinja2 ``SecurityError``, so the sandbox's own refusals and this one become one :class:`RenderError`.
    """


# --- nodes -------------------------------------------------------------------------


class AgentReplyInvalid(EngineError):
    """The model's final reply could not be used (e.g. JSON was asked for and not given); another try may do."""


class MapItemFailed(EngineError):
    """One item of a map failed (the message names the item), or ``config.items`` gave no list."""


class MemoryFailed(EngineError):
    """Required memory could not be read or written."""


class ToolFailed(EngineError):
    """A tool node's call did not succeed; ``retryable`` is the tool result's."""


# --- runs, reruns, node tests --------------------------------------------------------


class RunNotFound(EngineError):
    """No run has that id."""

    retryable = False

    def __init__(self, run_id: str):
        self.run_id = run_id
        super().__init__(f"no run with id '{run_id}' (list runs with: python -m engine runs)")


class NotResumable(EngineError):
    """The run is not interrupted or failed."""

    retryable = False


class ForkInvalid(EngineError):
    """The rerun request names an unknown node, pins a node that reruns, or edits a config badly."""

    retryable = False

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        count = len(self.problems)
        head = f"the rerun request is invalid ({count} problem{'s' if count != 1 else ''})"
        super().__init__(head + "".join(f"\n  - {p}" for p in self.problems))


class NotForkable(EngineError):
    """The source run is not finished (still running, or interrupted: resume it instead)."""

    retryable = False


class NotWaiting(EngineError):
    """The run or node is not waiting for a decision (not waiting, decided already, or unknown node)."""

    retryable = False


class DecisionInvalid(EngineError):
    """A decision whose value is not among the approval's options, or that names a field it lacks."""

    retryable = False


class NodeTestInvalid(EngineError):
    """The node cannot be tested: unknown node, a config that does not compile, or inputs that are not JSON."""

    retryable = False

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        head = "the node cannot be tested"
        super().__init__(head + "".join(f"\n  - {p}" for p in self.problems))


# --- the store and the install --------------------------------------------------------


class StoreError(EngineError):
    """The store cannot be opened or written; the message says why and what to do."""


class StoreUrlInvalid(StoreError):
    """The store URL (``--db`` or ``DATABASE_URL``) cannot be used as given: a typing error, not a broken store."""

    retryable = False


class DashboardError(EngineError):
    """The dashboard cannot be started from this install (a file the wheel ships is missing)."""

    retryable = False


# --- settings ---------------------------------------------------------------------------


class ConfigInvalid(EngineError):
    """Settings from the environment do not parse (``engine.config``); ``problems`` has one line per variable,
    each naming it. The message is those lines joined: print it as it is, no traceback."""

    retryable = False

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        count = len(self.problems)
        head = "" if count == 1 else f"{count} settings are invalid: "
        super().__init__(head + "; ".join(self.problems))
