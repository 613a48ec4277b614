"""Every answer of the API other than 2xx: one exception, one body shape, the handlers that write it.

Errors are ``{"detail": str, "problems": [{"where", "message"}]}`` whatever raised them: a route
(:class:`ApiError`), FastAPI's parameter checks (422), Starlette (404 for an unknown path, 405), the
store (503), the engine (503) or a bug (500, logged, never a traceback to the client).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from engine.api.schemas import ErrorOut
from engine.errors import EngineError, Problem
from engine.store import StoreError

log = logging.getLogger("engine.api")


class ApiError(Exception):
    """An answer other than 2xx, with the problems behind it."""

    def __init__(self, status: int, detail: str, problems: Sequence[Problem] = ()):
        self.status = status
        self.detail = detail
        self.problems = list(problems)
        super().__init__(detail)


class JSON(JSONResponse):
    """Strict JSON that never fails on odd values: a bad value must not become a 500.

    Datetimes and other objects are written as their text. NaN and infinities,
    which strict JSON parsers reject, are written as ``null`` (the engine already
    turns them into null in outputs and events; this is the safety net for
    anything older or from elsewhere).
    """

    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
        except ValueError:  # a NaN or an infinity somewhere: rare, so only then walk the content
            text = json.dumps(_finite(content), ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)
        return text.encode("utf-8")


def _finite(value: Any, depth: int = 0) -> Any:
    """``value`` with NaN and infinities replaced by None (in lists, tuples and dicts too)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth > 500:  # deeper than json.dumps goes anyway
        return value
    if isinstance(value, dict):
        return {_finite_key(k): _finite(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v, depth + 1) for v in value]
    return value


def _finite_key(key: Any) -> Any:
    return key if not isinstance(key, float) or math.isfinite(key) else str(key)


def error_response(
    status: int, detail: str, problems: Sequence[Problem] = (), headers: dict[str, str] | None = None
) -> JSON:
    """The one error body: ``{"detail", "problems": [{"where", "message"}]}``."""
    body = ErrorOut.model_validate(
        {"detail": detail, "problems": [{"where": p.where, "message": p.message} for p in problems]}
    )
    return JSON(body.model_dump(mode="json"), status_code=status, headers=headers)


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in {
        400: "the body is not JSON",
        401: "missing or wrong API token",
        403: "sent by a page of an origin not in API_CORS_ORIGINS",
        404: "unknown id",
        409: "the run is in a state that does not allow this",
        413: "the body is over the size cap",
        415: "the body is not sent as Content-Type: application/json",
        422: "invalid workflow, inputs or parameters; `problems` lists every one",
        503: "the store or the memory package is unavailable",
    }.items()
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of a route (its ``responses=``)."""
    return {code: ERRORS[code] for code in codes}


async def _api_error(_request: Request, exc: ApiError) -> JSON:
    return error_response(exc.status, exc.detail, exc.problems)


async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSON:
    problems = [
        Problem(".".join(str(part) for part in err.get("loc", ())), str(err.get("msg", ""))) for err in exc.errors()
    ]
    return error_response(422, "invalid request parameters", problems)


async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSON:
    return error_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


async def _store_error(_request: Request, exc: StoreError) -> JSON:
    return error_response(503, f"the store is unavailable: {exc}")


async def _engine_error(_request: Request, exc: EngineError) -> JSON:
    return error_response(503, str(exc))


async def _internal(_request: Request, exc: Exception) -> JSON:
    log.error("internal error: %s: %s", type(exc).__name__, exc, exc_info=exc)
    return error_response(500, "internal error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error to the one body shape (the most specific handler wins)."""
    app.exception_handler(ApiError)(_api_error)
    app.exception_handler(RequestValidationError)(_invalid_request)
    app.exception_handler(StarletteHTTPException)(_http_error)
    app.exception_handler(StoreError)(_store_error)
    app.exception_handler(EngineError)(_engine_error)
    app.exception_handler(Exception)(_internal)


__all__ = ["ERRORS", "JSON", "ApiError", "error_response", "errors", "install_error_handlers"]
