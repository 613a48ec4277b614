"""The node kinds by type name, and config checking shared by nodes and ``map``."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from engine.model import CONFIG_MODELS
from engine.nodes.agent import AGENT
from engine.nodes.approval import APPROVAL
from engine.nodes.base import Compiler, NodeContext, NodeKind
from engine.nodes.map import MAP
from engine.nodes.pure import CONDITION, INPUT, OUTPUT, TRANSFORM
from engine.nodes.tool import TOOL

KINDS: dict[str, NodeKind] = {k.type: k for k in (INPUT, AGENT, TOOL, CONDITION, TRANSFORM, MAP, OUTPUT, APPROVAL)}


def compile_config(node_type: str, config: dict[str, Any], compiler: Compiler, *, prefix: str = "config") -> Any:
    """Check ``config`` against the type's model and compile it; problems go to ``compiler``."""
    try:
        parsed = CONFIG_MODELS[node_type].model_validate(config)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            field = f"{prefix}.{loc}" if loc else prefix
            message = "unknown key (check the spelling)" if err["type"] == "extra_forbidden" else err["msg"]
            compiler.error(f"{field}: {message}")
        return None
    return KINDS[node_type].compile(parsed, compiler)


__all__ = ["KINDS", "Compiler", "NodeContext", "NodeKind", "compile_config"]
