"""Liveness and readiness, for a load balancer: no key needed."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from ..answers import json_response
from ..deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The server is alive")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz", summary="The model is verified and loaded and decisions can be put on record",
            responses={503: {"description": "not ready, with the problems"}})
async def readyz(services: ServicesDep) -> Response:
    """From the last background check (`api.readiness`: one at a time, every second): a flood of
    calls costs the database nothing."""
    if services.readiness is None:
        return json_response({"status": "not ready", "problems": ["starting"]}, 503)
    status, body = services.readiness.answer()
    return json_response(body, status)
