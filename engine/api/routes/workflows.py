"""``/workflows``: list, save (validated, versioned) and read saved workflow documents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from engine.api.deps import RuntimeDep, WorkflowId, json_body, load_document
from engine.api.errors import ApiError, errors
from engine.api.schemas import WorkflowOut, WorkflowSaved, WorkflowSummary
from engine.workflow_schema import workflow_json_schema

router = APIRouter(tags=["workflows"])


@router.get("/workflows", response_model=list[WorkflowSummary], responses=errors(401, 503))
def list_workflows(runtime: RuntimeDep) -> list[WorkflowSummary]:
    """Saved workflows (not archived), most recently changed first."""
    return [
        WorkflowSummary(
            id=r.id, name=r.name, latest_version=r.latest_version, created_at=r.created_at, updated_at=r.updated_at
        )
        for r in runtime.reader.workflows()
    ]


@router.post(
    "/workflows",
    status_code=201,
    response_model=WorkflowSaved,
    responses=errors(400, 401, 403, 413, 415, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": workflow_json_schema(inline=True)}},
        }
    },
)
async def save_workflow(request: Request, runtime: RuntimeDep) -> WorkflowSaved:
    """Validate and save a document under its name; a changed document adds a version. Invalid: 422, not saved."""
    document = await json_body(request)

    def work() -> Any:
        return runtime.save_workflow(load_document(document, runtime.tools).to_dict())

    ref = await run_in_threadpool(work)
    return WorkflowSaved(id=ref.id, name=ref.name, version=ref.version, created=ref.created)


@router.get("/workflows/{workflow_id}", response_model=WorkflowOut, responses=errors(401, 404, 422, 503))
def get_workflow(
    runtime: RuntimeDep,
    workflow_id: WorkflowId,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> WorkflowOut:
    """A saved workflow's latest version, or version ``N`` with ``?version=N``."""
    row = runtime.reader.workflow(workflow_id)
    saved = runtime.reader.workflow_version(workflow_id, version) if row is not None else None
    if row is None or saved is None:
        if row is not None:
            raise ApiError(404, f"workflow '{workflow_id}' has no version {version}")
        raise ApiError(404, f"no workflow with id '{workflow_id}' (list them with GET /workflows)")
    return WorkflowOut(
        id=row.id,
        name=row.name,
        version=saved.version,
        latest_version=row.latest_version,
        versions=[v.version for v in runtime.reader.workflow_versions(workflow_id)],
        created_at=saved.created_at,
        document=saved.document,
    )
