"""The HTTP API: workflows, runs and their live event streams for clients outside the dashboard.

``create_app(runtime, token=..., max_body_bytes=...)`` builds the FastAPI app
over a :class:`~engine.runtime.Runtime`; ``serve()`` runs it on uvicorn with
its own Runtime over the dashboard's store (``python -m engine serve``).
"""

from __future__ import annotations

from engine.api.app import create_app
from engine.api.server import serve

__all__ = ["create_app", "serve"]
