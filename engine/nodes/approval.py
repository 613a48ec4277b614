"""The approval node: a person decides before the run goes on.

Compiling checks the options and ``on_timeout``; running renders the request
(message and fields). Waiting is not done here: the executor emits
``approval.requested`` and pauses the run (status ``waiting``, no task held);
a decision (``approval.decided``) continues it with every finished node reused
(engine/approvals.py, docs/semantics.md "Approvals: a run waits for a person").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.model import ApprovalConfig
from engine.nodes.base import Compiler, NodeContext, NodeKind, ValueTree, reads
from engine.templates import Compiled

FAIL = "fail"  # on_timeout: the node fails when nobody decided in time


@dataclass(frozen=True, slots=True)
class ApprovalSpec:
    message: Compiled | None
    fields: dict[str, ValueTree]
    options: tuple[str, ...]
    timeout_s: float | None
    on_timeout: str | None


def _compile(config: ApprovalConfig, compiler: Compiler) -> ApprovalSpec:
    options = tuple(config.options)
    if len(set(options)) != len(options):
        compiler.error("config.options: each option must appear once")
    if "default" in options:
        compiler.error("config.options: 'default' is reserved for the edge taken when no other matches")
    if config.on_timeout is not None and config.on_timeout != FAIL and config.on_timeout not in options:
        compiler.error(f"config.on_timeout must be one of the options ({', '.join(options)}) or 'fail'")
    if (config.timeout_s is None) != (config.on_timeout is None):
        compiler.error("config.timeout_s and config.on_timeout go together: give both or neither")
    return ApprovalSpec(
        message=compiler.template("config.message", config.message),
        fields={name: compiler.value(f"config.fields.{name}", value) for name, value in config.fields.items()},
        options=options,
        timeout_s=config.timeout_s,
        on_timeout=config.on_timeout,
    )


async def _run(spec: ApprovalSpec, ctx: NodeContext) -> Any:
    """The request as rendered: ``{"message", "fields"}`` (the executor asks and waits)."""
    variables = ctx.vars()
    templates = [spec.message, *(t for tree in spec.fields.values() for t in tree.templates())]
    ctx.set_input({"reads": reads(templates, variables)})  # before rendering: a failed render still shows it
    message = spec.message.render(variables) if spec.message is not None else ""
    fields = {name: tree.render(variables) for name, tree in spec.fields.items()}
    return {"message": str(message), "fields": fields}


def decision_output(decided: dict[str, Any]) -> dict[str, Any]:
    """The node's output from its ``approval.decided`` data."""
    return {
        "decision": decided.get("decision"),
        "fields": dict(decided.get("fields") or {}),
        "comment": decided.get("comment") or "",
        "decided_by": decided.get("decided_by") or "",
        "decided_at": decided.get("decided_at"),
    }


APPROVAL = NodeKind("approval", _compile, _run)
