"""``GET /tools``: the registered tools, with the JSON schema of their arguments."""

from __future__ import annotations

from fastapi import APIRouter

from engine.api.deps import RuntimeDep
from engine.api.errors import errors
from engine.api.schemas import ToolOut

router = APIRouter(tags=["tools"])


@router.get("/tools", response_model=list[ToolOut], responses=errors(401))
def list_tools(runtime: RuntimeDep) -> list[ToolOut]:
    """Every tool of the runtime: name, description and the JSON schema of its arguments."""
    specs = runtime.tools.list_tools()
    return [ToolOut(name=t.name, description=t.description, parameters=t.parameters) for t in specs]
