"""Evaluations over HTTP (docs/evaluate.md): ``POST /evals`` starts one, ``GET /evals/{id}`` answers its rows and
aggregates, ``GET /evals/{id}/events`` streams its progress (SSE, like a run's events), ``POST /evals/{id}/cancel``
stops it, ``GET /evals/{a}/compare/{b}`` compares two.

The app keeps one :class:`~engine.evals.runner.Evaluator` over its runtime (made on first use).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from engine.api.deps import MAX_ID_CHARS, RuntimeDep, json_body, requested_workflow
from engine.api.errors import ApiError, errors
from engine.errors import Problem, WorkflowInvalid
from engine.evals.dataset import Dataset, DatasetInvalid, read_dataset
from engine.evals.results import compare, row_record
from engine.evals.runner import MAX_CONCURRENCY, EvalNotFound, Evaluator, evaluator_for
from engine.runtime import Runtime

router = APIRouter(tags=["evals"])


class DatasetFile(BaseModel):
    """An uploaded dataset file's text, named so its suffix (.csv, .jsonl, .json) says how to read it."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=300)
    content: str = Field(max_length=50_000_000)


class EvalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workflow: dict[str, Any] | None = None
    workflow_id: str | None = Field(None, max_length=MAX_ID_CHARS)
    rows: list[dict[str, Any]] | None = None
    dataset: DatasetFile | None = None
    scorers: list[str] = Field(default_factory=lambda: ["exact"], min_length=1, max_length=20)
    expected: str = Field("expected", min_length=1, max_length=200)
    concurrency: int = Field(4, ge=1, le=MAX_CONCURRENCY)
    threshold: float = Field(0.5, ge=0, le=1)


class EvalStarted(BaseModel):
    eval_id: str


class EvalProgress(BaseModel):
    status: str
    done: int
    total: int


def evaluator_of(connection: HTTPConnection) -> Evaluator:
    return evaluator_for(connection.app.state.api.runtime)


async def _evaluator(connection: HTTPConnection) -> Evaluator:
    return await run_in_threadpool(evaluator_of, connection)


EvaluatorDep = Annotated[Evaluator, Depends(_evaluator)]


def _problems(exc: ValidationError) -> list[Problem]:
    return [Problem(".".join(str(p) for p in e["loc"]) or "body", e["msg"]) for e in exc.errors()[:20]]


@router.post("/evals", status_code=202, response_model=EvalStarted, responses=errors(400, 401, 404, 413, 415, 422, 503))
async def start_eval(request: Request, runtime: RuntimeDep, evaluator: EvaluatorDep) -> EvalStarted:
    """Start an evaluation of ``workflow`` (a document) or ``workflow_id`` over ``rows`` or an uploaded ``dataset``."""
    body = await json_body(request)
    try:
        req = EvalRequest.model_validate(body)
    except ValidationError as exc:
        raise ApiError(422, "invalid evaluation request", _problems(exc)) from None
    problems = []
    if (req.workflow is None) == (req.workflow_id is None):
        problems.append(Problem("body", "give exactly one of 'workflow' (a document) or 'workflow_id'"))
    if (req.rows is None) == (req.dataset is None):
        problems.append(Problem("body", "give exactly one of 'rows' (a list of objects) or 'dataset' (a file)"))
    if problems:
        raise ApiError(422, "invalid evaluation request", problems)
    eval_id = await run_in_threadpool(_start, runtime, evaluator, req)
    return EvalStarted(eval_id=eval_id)


def _start(runtime: Runtime, evaluator: Evaluator, req: EvalRequest) -> str:
    workflow = requested_workflow(runtime, req.workflow_id, req.workflow)
    try:
        if req.dataset is not None:
            dataset = read_dataset(req.dataset.content.encode(), req.dataset.name)
        else:
            rows = req.rows or []
            if not rows:
                raise DatasetInvalid([Problem("rows", "is empty")])
            columns = list(dict.fromkeys(k for r in rows for k in r))
            dataset = Dataset("rows", columns, rows)
        return evaluator.start(
            workflow,
            dataset,
            req.scorers,
            expected=req.expected,
            concurrency=req.concurrency,
            threshold=req.threshold,
        )
    except DatasetInvalid as exc:
        raise ApiError(422, "the evaluation cannot start", exc.problems) from None
    except WorkflowInvalid as exc:
        raise ApiError(422, str(exc).splitlines()[0], exc.problems) from None


def _eval_out(evaluator: Evaluator, eval_id: str) -> dict[str, Any]:
    record = evaluator.get(eval_id)
    if record is None:
        raise ApiError(404, f"no evaluation with id '{eval_id}'")
    scorers = list(record.scorers)
    rows = evaluator.rows(eval_id)
    summary = evaluator.summary(eval_id)
    return {
        "eval_id": record.id,
        "status": record.status,
        "workflow_id": record.workflow_id,
        "workflow_version": record.workflow_version,
        "workflow_name": record.workflow_name,
        "dataset": record.dataset_name,
        "scorers": scorers,
        "threshold": record.threshold,
        "created_at": record.created_at,
        "finished_at": record.finished_at,
        "summary": summary.to_dict(),
        "rows": [row_record(r, scorers) for r in rows],
    }


@router.get("/evals/{eval_id}", response_model=dict[str, Any], responses=errors(401, 404, 422, 503))
def get_eval(evaluator: EvaluatorDep, eval_id: str) -> dict[str, Any]:
    """The evaluation: its status, aggregates (``summary``) and every row with its scores and run id."""
    return _eval_out(evaluator, eval_id[:MAX_ID_CHARS])


@router.post(
    "/evals/{eval_id}/cancel", status_code=202, response_model=dict[str, Any], responses=errors(401, 404, 409, 422, 503)
)
def cancel_eval(evaluator: EvaluatorDep, eval_id: str) -> dict[str, Any]:
    """Stop a running evaluation: running rows' runs are cancelled, the rest stay pending (resume runs them)."""
    if evaluator.get(eval_id[:MAX_ID_CHARS]) is None:
        raise ApiError(404, f"no evaluation with id '{eval_id[:MAX_ID_CHARS]}'")
    if not evaluator.cancel(eval_id):
        raise ApiError(409, "the evaluation is not running")
    return {"eval_id": eval_id, "cancelling": True}


@router.post("/evals/{eval_id}/resume", status_code=202, response_model=EvalStarted, responses=errors(401, 404, 409))
def resume_eval(evaluator: EvaluatorDep, eval_id: str) -> EvalStarted:
    """Continue an interrupted or cancelled evaluation (only its unfinished rows run)."""
    try:
        evaluator.resume(eval_id[:MAX_ID_CHARS])
    except EvalNotFound as exc:
        raise ApiError(404, str(exc)) from None
    except Exception as exc:
        raise ApiError(409, str(exc).splitlines()[0]) from None
    return EvalStarted(eval_id=eval_id)


@router.get("/evals/{a}/compare/{b}", response_model=dict[str, Any], responses=errors(401, 404, 422, 503))
def compare_evals(evaluator: EvaluatorDep, a: str, b: str) -> dict[str, Any]:
    """B against A per row (improved / regressed / same) and the per-scorer mean deltas."""
    ea, eb = evaluator.get(a[:MAX_ID_CHARS]), evaluator.get(b[:MAX_ID_CHARS])
    if ea is None or eb is None:
        raise ApiError(404, f"no evaluation with id '{(a if ea is None else b)[:MAX_ID_CHARS]}'")
    result = compare(evaluator.rows(ea.id), list(ea.scorers), evaluator.rows(eb.id), list(eb.scorers))
    return result.to_dict()


@router.get(
    "/evals/{eval_id}/events",
    response_model=EvalProgress,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}, **errors(401, 404)},
)
async def eval_events(request: Request, evaluator: EvaluatorDep, eval_id: str) -> EvalProgress | Response:
    """Progress now (JSON); with ``Accept: text/event-stream`` live Server-Sent Events: ``event: eval.progress``
    (``{"done", "total"}``) after each finished row, then one ``event: eval.ended`` (``{"status", "done",
    "total"}``); the stream then closes."""
    record = await run_in_threadpool(evaluator.get, eval_id[:MAX_ID_CHARS])
    if record is None:
        raise ApiError(404, f"no evaluation with id '{eval_id[:MAX_ID_CHARS]}'")
    if "text/event-stream" not in request.headers.get("accept", "").lower():
        summary = await run_in_threadpool(evaluator.summary, eval_id)
        return EvalProgress(status=record.status, done=summary.finished, total=summary.rows)

    async def frames() -> AsyncIterator[bytes]:
        seq, last = 0, None
        while True:
            progress = evaluator.progress(eval_id)
            if progress is None:
                record = await run_in_threadpool(evaluator.get, eval_id)
                summary = await run_in_threadpool(evaluator.summary, eval_id)
                data = {
                    "status": record.status if record else "unknown",
                    "done": summary.finished,
                    "total": summary.rows,
                }
                seq += 1
                yield _frame(seq, "eval.ended", data)
                return
            if progress != last:
                last = progress
                seq += 1
                yield _frame(seq, "eval.progress", {"done": progress[0], "total": progress[1]})
            await asyncio.sleep(0.1)

    return StreamingResponse(frames(), media_type="text/event-stream", headers={"cache-control": "no-cache"})


def _frame(seq: int, kind: str, data: dict[str, Any]) -> bytes:
    return f"id: {seq}\nevent: {kind}\ndata: {json.dumps(data)}\n\n".encode()
