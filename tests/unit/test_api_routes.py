"""Every HTTP route declares its answer's model and returns it (engine/api/routes/, docs/api.md "Module layout").

A route that returned a ``JSONResponse`` or a dict built by hand would skip FastAPI's check of the
answer against ``response_model``, and the OpenAPI description would become documentation only again.
"""

from __future__ import annotations

import typing
from typing import Any

import pytest
from fastapi import Response
from fastapi.routing import APIRoute

from engine.api.routes import ROUTERS

ROUTES = [route for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)]


def test_the_routers_hold_every_route_of_the_api() -> None:
    paths = {(method, route.path) for route in ROUTES for method in route.methods}
    assert {
        ("GET", "/health"),
        ("GET", "/tools"),
        ("GET", "/workflows"),
        ("POST", "/workflows"),
        ("GET", "/workflows/{workflow_id}"),
        ("POST", "/runs"),
        ("GET", "/runs"),
        ("GET", "/runs/{run_id}"),
        ("GET", "/runs/{run_id}/events"),
        ("POST", "/runs/{run_id}/cancel"),
        ("POST", "/runs/{run_id}/resume"),
        ("POST", "/runs/{run_id}/rerun"),
        ("POST", "/runs/{run_id}/approvals/{node}"),
        ("GET", "/memory/agents"),
        ("GET", "/memory/{agent_id}"),
        ("POST", "/evals"),
        ("GET", "/evals/{eval_id}"),
        ("GET", "/evals/{eval_id}/events"),
        ("POST", "/evals/{eval_id}/cancel"),
        ("POST", "/evals/{eval_id}/resume"),
        ("GET", "/evals/{a}/compare/{b}"),
    } == paths


@pytest.mark.parametrize("route", ROUTES, ids=[f"{sorted(r.methods)[0]} {r.path}" for r in ROUTES])
def test_a_route_returns_its_response_model(route: APIRoute) -> None:
    assert route.response_model is not None
    returned: Any = typing.get_type_hints(route.endpoint)["return"]
    # The events route also answers a stream (SSE) or a 204: those are Responses, sent as they are.
    members = typing.get_args(returned)
    if Response in members:
        returned = typing.Union[tuple(t for t in members if t is not Response)]  # noqa: UP007 - built at run time
    assert returned == route.response_model
