"""The API's wiring: services started and stopped with the app, error answers, routers, OpenAPI.

Routes live in `routes/` (one router per resource) and take what they need from `deps.py`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from model.core.errors import ModelIntegrityError
from model.records.log import DecisionLog
from model.records.writer import LogWriter
from model.registry.store import default_model_dir

from .answers import ApiError, json_response
from .deps import Services
from .headers import SecurityHeaders
from .keys import KeyStore, KeysUnavailable
from .readiness import Readiness
from .registry import ActiveModel
from .routes import decisions, health, notices, outcomes
from .routes import model as model_routes
from .schemas import MAX_ITEMS, applicant_schema

log = logging.getLogger("loandesk.api")
SWITCH_SECONDS = 0.0005
# How long the log writer waits for another SQLite writer's lock before it journals the batch
# instead: a locked database costs a request at most this, never BUSY_SECONDS.
LOCK_WAIT_SECONDS = 1.0
DESCRIPTION = (
    "Loan decisions from the active LoanDesk model: `1` approved, `0` rejected, with a calibrated "
    "probability and the principal reasons. Send one applicant as a JSON object, or up to "
    f"{MAX_ITEMS:,} as an array. Fields are matched by name; extra fields are ignored. Every "
    "`/v1` request needs `Authorization: Bearer KEY` (keys come from `python serve.py --new-key NAME`). "
    "Every decision is on record before it is answered; its `decision_id` finds it in the decision log. "
    "When it cannot be put on record, the answer is 503 with Retry-After.")


def create_app(model_dir: str | Path | None = None, db_url: str | None = None,
               unsent_dir: Path | None = None) -> FastAPI:
    """The API over the active model in `model_dir`, logging to `db_url` (LOANDESK_DB_URL by default);
    `unsent_dir` holds the journal of decisions made while the log could not be written."""
    decision_log = DecisionLog(db_url, busy_seconds=LOCK_WAIT_SECONDS)
    services = Services(ActiveModel(Path(model_dir) if model_dir else default_model_dir()), decision_log,
                        KeyStore(decision_log))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The log writer thread runs Python too; a short switch interval hands the GIL back to the
        # event loop within a fraction of a millisecond instead of 5 ms, which is what p99 pays.
        sys.setswitchinterval(SWITCH_SECONDS)
        writer = services.writer = LogWriter(decision_log, unsent_dir)
        _start(services)
        # The model, the libraries and the app are long-lived: moved out of the collector's sight,
        # a request's garbage collections no longer walk them (halved the time of a large array).
        gc.collect()
        gc.freeze()
        readiness = services.readiness = Readiness(services.active, decision_log, writer, services.keys)
        await readiness.refresh()
        checking = asyncio.create_task(readiness.keep_checking())
        yield
        checking.cancel()
        services.keys.stop_refreshing()
        writer.close()  # after the server has answered the requests in flight
        decision_log.dispose()

    # The docs' JavaScript and CSS are served by this server (fastapi-offline bundles them), not
    # fetched from a CDN: a bank's network rarely lets a browser reach one.
    app = FastAPIOffline(title="LoanDesk decisions", version="1", lifespan=lifespan, description=DESCRIPTION)
    app.state.services = services
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    for routes in (health, model_routes, decisions, notices, outcomes):
        app.include_router(routes.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _start(services: Services) -> None:
    """Prepare the log, read the keys and load the model; a failure is logged and /readyz says so."""
    try:
        services.decision_log.ensure_schema()
    except Exception as exc:  # decisions still go on record, in the journal until it is back; /readyz says so
        log.error("the decision log cannot be prepared at %r: %s", services.decision_log, exc)
    try:
        services.keys.refresh()
    except KeysUnavailable as exc:  # answered with 503 until the refresher reads them
        log.error("%s", exc)
    services.keys.start_refreshing()
    try:
        services.active.get()
    except ModelIntegrityError as exc:  # answered with 503 until it is fixed; /readyz says why
        log.error("the model cannot be used: %s", exc)


async def _api_error(_: Request, exc: ApiError) -> Response:
    return json_response({"error": exc.error, "message": exc.message, "errors": exc.errors}, exc.status, exc.headers)


async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
    return json_response({"error": code, "message": str(exc.detail), "errors": []}, exc.status_code,
                         dict(exc.headers or {}))


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the request schema built from the served model's card."""
    model = app.state.services.active.get()
    cached = getattr(app.state, "openapi", None)
    if cached is not None and cached[0] == model.sha256:
        return cached[1]
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    spec.setdefault("components", {}).setdefault("schemas", {})["Applicant"] = applicant_schema(model.schema)
    spec["components"]["schemas"]["Outcome"] = outcomes.Outcome.model_json_schema()
    spec["info"]["x-model"] = {"name": model.name, "version": model.version}
    spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, operations in spec["paths"].items():
        if path.startswith("/v1/"):
            for operation in operations.values():
                operation["security"] = [{"bearer": []}]
    app.state.openapi = (model.sha256, spec)
    return spec
