"""The engine's public API: load a workflow, run it, read its events.

Everything else (CLI, runtime, dashboard, tests, benchmarks) goes through
these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.config import Settings
from engine.errors import (
    ConfigInvalid,
    EngineError,
    InputsInvalid,
    IterationLimit,
    ModelError,
    NodeError,
    NodeTimeout,
    Problem,
    WorkflowInvalid,
)
from engine.events import EVENT_TYPES, TERMINAL_TYPES, Event
from engine.executor import EventSink, RunResult, execute
from engine.gc_policy import tune_for_many_tasks
from engine.inputs import check_inputs
from engine.llm import ChatModel, default_chat_model
from engine.model import Workflow
from engine.validate import load_workflow
from tools import ToolRegistry


async def run_workflow(
    workflow: Workflow | Mapping[str, Any] | str,
    inputs: Mapping[str, Any] | None = None,
    *,
    on_event: EventSink | None = None,
    llm: ChatModel | None = None,
    run_id: str | None = None,
    settings: Settings | None = None,
    tools: ToolRegistry | None = None,
) -> RunResult:
    """Run a workflow to its end and return how it ended.

    ``settings`` (default: read from the environment now, :class:`engine.config.Settings`) choose the model
    (unless ``llm`` is given) and configure the tools and memory. Its tools come from ``tools``
    (default: :func:`tools.default_registry`).

    Inputs are checked before anything runs. Cancelling the task running this
    coroutine cancels the run: running nodes are cancelled and the result has
    status ``cancelled`` (the coroutine returns it rather than raising).

    Raises:
        WorkflowInvalid: ``workflow`` is a document or path that does not validate.
        InputsInvalid: ``inputs`` do not match the workflow's schema.
    """
    tune_for_many_tasks()  # engine/gc_policy.py
    loaded = load_workflow(workflow, tools=tools)
    values = check_inputs(loaded, inputs)
    settings = settings or Settings.now()
    model = llm or default_chat_model(settings.llm)
    return await execute(loaded, values, llm=model, on_event=on_event, run_id=run_id, settings=settings, tools=tools)


__all__ = [
    "EVENT_TYPES",
    "TERMINAL_TYPES",
    "ChatModel",
    "ConfigInvalid",
    "EngineError",
    "Event",
    "EventSink",
    "InputsInvalid",
    "IterationLimit",
    "ModelError",
    "NodeError",
    "NodeTimeout",
    "Problem",
    "RunResult",
    "Settings",
    "Workflow",
    "WorkflowInvalid",
    "check_inputs",
    "load_workflow",
    "run_workflow",
]
