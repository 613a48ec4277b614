"""``/runs``: start runs, read their records, and cancel, resume or rerun them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from engine.api.deps import (
    ID_PATTERN,
    MAX_ID_CHARS,
    RunId,
    RuntimeDep,
    json_body,
    requested_workflow,
    status_or_404,
    valid_id,
    wait_row_settled,
)
from engine.api.errors import ApiError, errors
from engine.api.schemas import DecisionRequest, RerunRequest, RunOut, RunRequest, RunStarted, RunStateOut, RunStatus
from engine.errors import (
    DecisionInvalid,
    ForkInvalid,
    InputsInvalid,
    NotForkable,
    NotResumable,
    NotWaiting,
    Problem,
    RunNotFound,
    WorkflowInvalid,
)
from engine.reader import RunRecord
from engine.runtime import RunInfo, Runtime

router = APIRouter(tags=["runs"])


def run_out(info: RunInfo, row: RunRecord | None) -> RunOut:
    """A run's record: the runtime's live view, the store's row for what only it knows."""
    return RunOut.model_validate(
        {
            "run_id": info.run_id,
            "status": info.status,
            "workflow_id": row.workflow_id if row is not None else None,
            "workflow_version": row.workflow_version if row is not None else None,
            "workflow_name": info.workflow_name,
            "inputs": info.inputs,
            "result": info.result,
            "error": info.error,
            "error_node": info.error_node,
            "created_at": info.created_at,
            "started_at": (row.started_at if row is not None and row.started_at else None) or info.created_at,
            "finished_at": info.finished_at,
            "prompt_tokens": info.prompt_tokens,
            "completion_tokens": info.completion_tokens,
            "total_tokens": info.prompt_tokens + info.completion_tokens,
            "tokens_estimated": info.tokens_estimated,
            "failed_tokens": info.failed_tokens,
            "last_seq": info.last_seq,
            "forked_from": info.forked_from,
        }
    )


def _body_problems(exc: ValidationError) -> list[Problem]:
    return [Problem("body" + "".join(f".{p}" for p in err["loc"]), err["msg"]) for err in exc.errors()]


@router.post(
    "/runs",
    status_code=202,
    response_model=RunStarted,
    responses=errors(400, 401, 403, 404, 413, 415, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": RunRequest.model_json_schema()}},
        }
    },
)
async def start_run(request: Request, runtime: RuntimeDep) -> RunStarted:
    """Start a run of ``workflow`` (a document) or ``workflow_id`` (a saved workflow's latest version)."""
    body = await json_body(request)
    try:
        req = RunRequest.model_validate(body)
    except ValidationError as exc:
        raise ApiError(422, "invalid run request", _body_problems(exc)) from None
    if (req.workflow is None) == (req.workflow_id is None):
        raise ApiError(
            422,
            "invalid run request",
            [Problem("body", "give exactly one of 'workflow' (a document) or 'workflow_id'")],
        )
    if req.workflow_id is not None and not valid_id(req.workflow_id):
        raise ApiError(404, "no workflow with that id (list them with GET /workflows)")
    run_id = await run_in_threadpool(_submit, runtime, req)
    return RunStarted(run_id=run_id)


def _submit(runtime: Runtime, req: RunRequest) -> str:
    workflow = requested_workflow(runtime, req.workflow_id, req.workflow)
    try:
        return runtime.submit(workflow, req.inputs or {})
    except InputsInvalid as exc:
        raise ApiError(422, "inputs are invalid", exc.problems) from None
    except WorkflowInvalid as exc:
        raise ApiError(422, str(exc).splitlines()[0], exc.problems) from None


@router.get("/runs", response_model=list[RunOut], responses=errors(401, 422, 503))
def list_runs(
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    status: RunStatus | None = None,
    workflow_id: Annotated[str | None, Query(max_length=MAX_ID_CHARS, pattern=ID_PATTERN)] = None,
) -> list[RunOut]:
    """Recent runs, newest first, optionally by status or workflow."""
    rows = runtime.reader.runs(limit=limit, status=status, workflow_id=workflow_id)
    live = set(runtime.running())
    out = []
    for row in rows:
        info = runtime.status(row.run_id) if row.run_id in live else None
        out.append(run_out(info or RunInfo.from_row(row), row))
    return out


@router.get("/runs/{run_id}", response_model=RunOut, responses=errors(401, 404, 422, 503))
def get_run(runtime: RuntimeDep, run_id: RunId) -> RunOut:
    """A run's status, inputs, result, error, times and token totals."""
    info = status_or_404(runtime, run_id)
    return run_out(info, runtime.reader.run(run_id))


@router.post(
    "/runs/{run_id}/cancel",
    status_code=202,
    response_model=RunStateOut,
    responses={
        200: {"model": RunStateOut, "description": "the run had already ended; it is left unchanged"},
        **errors(401, 404, 409, 422, 503),
    },
)
def cancel_run(runtime: RuntimeDep, run_id: RunId, response: Response) -> RunStateOut:
    """Cancel a queued or running run (202); a run that already ended is left as it is (200)."""
    info = status_or_404(runtime, run_id)
    if info.status == "waiting" and runtime.cancel(run_id):  # nothing runs: it ends cancelled at once
        return RunStateOut(run_id=run_id, status="cancelled")
    if info.status in ("running", "queued") and runtime.cancel(run_id):
        return RunStateOut(run_id=run_id, status="cancelling")
    if info.status in ("running", "queued"):
        info = status_or_404(runtime, run_id)
        if info.status in ("running", "queued"):  # still going, yet not ours to cancel
            raise ApiError(409, f"run '{run_id}' is running in another process (e.g. the dashboard); cancel it there")
    response.status_code = 200  # it had ended (before, or meanwhile)
    return RunStateOut(run_id=run_id, status=info.status)


@router.post(
    "/runs/{run_id}/resume",
    status_code=202,
    response_model=RunStarted,
    responses=errors(401, 404, 409, 422, 503),
)
def resume_run(runtime: RuntimeDep, run_id: RunId) -> RunStarted:
    """Continue an interrupted or failed run from its last committed state (202); others: 409."""
    info = status_or_404(runtime, run_id)
    if info.status == "running":
        raise ApiError(409, f"run '{run_id}' is running; only interrupted or failed runs can be resumed")
    wait_row_settled(runtime, run_id, info.status)
    try:
        runtime.resume(run_id)
    except RunNotFound as exc:
        raise ApiError(404, str(exc)) from None
    except NotResumable as exc:
        raise ApiError(409, str(exc)) from None
    except WorkflowInvalid as exc:
        raise ApiError(409, "the run's workflow version no longer validates", exc.problems) from None
    return RunStarted(run_id=run_id)


@router.post(
    "/runs/{run_id}/rerun",
    status_code=202,
    response_model=RunStarted,
    responses=errors(400, 401, 403, 404, 409, 413, 415, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": RerunRequest.model_json_schema(by_alias=True)}},
        }
    },
)
async def rerun_run(request: Request, runtime: RuntimeDep, run_id: RunId) -> RunStarted:
    """Rerun a completed, failed or cancelled run from node ``from`` as a new run (202 ``{"run_id"}``).

    Nodes ``from`` does not depend on reuse their outputs (``outputs`` pins some to other values);
    ``from`` and everything downstream run again, ``config`` editing ``from`` for this run only.
    Unknown node or a bad pin or config: 422 listing every problem; a run still running or interrupted: 409.
    """
    body = await json_body(request)
    try:
        req = RerunRequest.model_validate(body)
    except ValidationError as exc:
        raise ApiError(422, "invalid rerun request", _body_problems(exc)) from None
    new_id = await run_in_threadpool(_rerun, runtime, run_id, req)
    return RunStarted(run_id=new_id)


def _rerun(runtime: Runtime, run_id: str, req: RerunRequest) -> str:
    info = status_or_404(runtime, run_id)
    if info.status == "running":
        raise ApiError(409, f"run '{run_id}' is running; only completed, failed or cancelled runs can be rerun")
    wait_row_settled(runtime, run_id, info.status)
    try:
        return runtime.rerun(run_id, req.from_, outputs=req.outputs, config=req.config)
    except RunNotFound as exc:
        raise ApiError(404, str(exc)) from None
    except NotForkable as exc:
        raise ApiError(409, str(exc)) from None
    except ForkInvalid as exc:
        raise ApiError(422, str(exc).splitlines()[0], exc.problems) from None


@router.post(
    "/runs/{run_id}/approvals/{node}",
    status_code=202,
    response_model=RunStateOut,
    responses=errors(400, 401, 404, 409, 415, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": DecisionRequest.model_json_schema()}},
        }
    },
)
async def decide_approval(request: Request, runtime: RuntimeDep, run_id: RunId, node: str) -> RunStateOut:
    """Decide a waiting approval node (202); the run goes on from it with every finished node reused.

    Not waiting (or decided already): 409; a decision that is not an option, or an unknown field: 422.
    """
    body = await json_body(request)
    try:
        req = DecisionRequest.model_validate(body)
    except ValidationError as exc:
        raise ApiError(422, "invalid decision", _body_problems(exc)) from None
    await run_in_threadpool(_decide, runtime, run_id, node, req)
    return RunStateOut(run_id=run_id, status="resuming")


def _decide(runtime: Runtime, run_id: str, node: str, req: DecisionRequest) -> None:
    status_or_404(runtime, run_id)
    try:
        runtime.decide(
            run_id, node, req.decision, fields=req.fields, comment=req.comment, decided_by=req.decided_by or "api"
        )
    except RunNotFound as exc:
        raise ApiError(404, str(exc)) from None
    except NotWaiting as exc:
        raise ApiError(409, str(exc)) from None
    except DecisionInvalid as exc:
        raise ApiError(422, str(exc)) from None
