"""The API's routes, one router per resource; ``create_app`` includes them in this order.

A new route goes into the router of its resource (or a new module listed in :data:`ROUTERS`); it gets
the runtime and the rest through :mod:`engine.api.deps`, raises :class:`engine.api.errors.ApiError`
for a non-2xx answer and returns an instance of its ``response_model`` (from
:mod:`engine.api.schemas`).
"""

from __future__ import annotations

from fastapi import APIRouter

from engine.api.routes import evals, events, health, memory, runs, tools, workflows

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    tools.router,
    workflows.router,
    runs.router,
    events.router,
    memory.router,
    evals.router,
)

__all__ = ["ROUTERS"]
