"""Liveness and readiness, for a load balancer: no key needed."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter
from fastapi.responses import Response

from model.core.errors import ModelIntegrityError

from ..answers import json_response
from ..deps import Services, ServicesDep

log = logging.getLogger("loandesk.api")
router = APIRouter(tags=["health"])
PING_SECONDS = 1.0  # the decision log is pinged at most this often, however often a balancer asks


@router.get("/healthz", summary="The server is alive")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz", summary="The model is verified and loaded and the decision log is writable",
            responses={503: {"description": "not ready, with the problems"}})
def readyz(services: ServicesDep) -> Response:
    problems, about = [], {}
    try:
        model = services.active.get()
        about = {"model_name": model.name, "model_version": model.version}
    except ModelIntegrityError as exc:
        problems.append(f"model: {exc}")
    writer = services.writer
    if writer is not None and not writer.healthy:
        problems.append(f"decision log: cannot be written; {writer.unlogged:,} decision(s) held "
                        "(see the server log)")
    elif (why := _log_check(services)) is not None:
        problems.append("decision log: cannot be reached (see the server log)")
        log.error("readiness: the decision log cannot be reached at %r: %s", services.decision_log, why)
    body = {"status": "not ready" if problems else "ready", **about,
            "unlogged_decisions": writer.unlogged if writer is not None else 0, "problems": problems}
    return json_response(body, 503 if problems else 200)


_last_check: dict[int, tuple[float, str | None]] = {}  # per Services: when the log was last pinged, and what it said


def _log_check(services: Services) -> str | None:
    at, said = _last_check.get(id(services), (-1e9, None))
    if time.monotonic() - at > PING_SECONDS:
        at, said = time.monotonic(), services.decision_log.ping()
        _last_check[id(services)] = (at, said)
    return said
