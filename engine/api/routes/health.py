"""``GET /health``: liveness, the one path that never needs the token (engine.api.auth lets it through)."""

from __future__ import annotations

from fastapi import APIRouter

from engine.api.schemas import HealthOut

router = APIRouter(tags=["server"])


@router.get("/health", response_model=HealthOut)
async def health() -> HealthOut:
    """Liveness; the one path that never needs the token."""
    return HealthOut()
