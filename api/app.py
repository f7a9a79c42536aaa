"""Routes: decisions for one applicant or an array, the model card, liveness and readiness.

The decision route reads the raw body and hands it to the core (`model.decide_rows`): FastAPI's
per-request model validation would cost more than the decision itself, and the core's validation
is the one every other face of LoanDesk uses. OpenAPI still documents the request, with a schema
built from the served model's card.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from model.core.formatting import decision_label
from model.records.log import DecisionLog, entries_for_decisions, new_decision_ids
from model.records.writer import LogWriter
from model.registry.store import ModelIntegrityError, default_model_dir
from model.scoring.predictor import LoanModel
from model.scoring.rows import RowDecision, RowErrors, decide_rows

from .answers import JSON, ApiError, documented, json_response, parse_json, problem, read_body, summary
from .keys import KeyStore, KeysUnavailable, bearer
from .registry import ActiveModel
from .schemas import (
    MAX_ITEMS,
    DecisionResult,
    ItemErrors,
    applicant_schema,
)

log = logging.getLogger("loandesk.api")
SWITCH_SECONDS = 0.0005
THREAD_ITEMS = 256  # arrays longer than this are decided off the event loop


def create_app(model_dir: str | Path | None = None, db_url: str | None = None,
               unsent_dir: Path | None = None) -> FastAPI:
    """The API over the active model in `model_dir`, logging to `db_url` (LOANDESK_DB_URL by default)."""
    active = ActiveModel(Path(model_dir) if model_dir else default_model_dir())
    decision_log = DecisionLog(db_url)
    keys = KeyStore(decision_log)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The log writer thread runs Python too; a short switch interval hands the GIL back to the
        # event loop within a fraction of a millisecond instead of 5 ms, which is what p99 pays.
        sys.setswitchinterval(SWITCH_SECONDS)
        app.state.writer = LogWriter(decision_log, unsent_dir)
        try:
            decision_log.ensure_schema()
        except Exception as exc:  # the decisions are still served, held for the log; /readyz says so
            log.error("the decision log cannot be prepared at %r: %s", decision_log, exc)
        try:
            keys.refresh()
        except KeysUnavailable as exc:  # answered with 503 until the refresher reads them
            log.error("%s", exc)
        keys.start_refreshing()
        try:
            active.get()
        except ModelIntegrityError as exc:  # answered with 503 until it is fixed; /readyz says why
            log.error("the model cannot be used: %s", exc)
        # The model, the libraries and the app are long-lived: moved out of the collector's sight,
        # a request's garbage collections no longer walk them (halved the time of a large array).
        gc.collect()
        gc.freeze()
        yield
        keys.stop_refreshing()
        app.state.writer.close()  # after the server has answered the requests in flight
        decision_log.dispose()

    # The docs' JavaScript and CSS are served by this server (fastapi-offline bundles them), not
    # fetched from a CDN: a bank's network rarely lets a browser reach one.
    app = FastAPIOffline(
        title="LoanDesk decisions", version="1", lifespan=lifespan,
        description=(
            "Loan decisions from the active LoanDesk model: `1` approved, `0` rejected, with a calibrated "
            "probability and the principal reasons. Send one applicant as a JSON object, or up to "
            f"{MAX_ITEMS:,} as an array. Fields are matched by name; extra fields are ignored. Every "
            "`/v1` request needs `Authorization: Bearer KEY` (keys come from `python serve.py --new-key NAME`). "
            "Every decision is written to the decision log; its `decision_id` finds it there."),
    )
    app.state.active, app.state.decision_log, app.state.keys = active, decision_log, keys

    def current() -> LoanModel:
        try:
            return active.get()
        except ModelIntegrityError as exc:
            raise ApiError(503, "unavailable", f"the model cannot be used: {exc}") from exc

    def authorized(request: Request) -> str:
        try:
            name = keys.name_for(bearer(request.headers.get("authorization")))
        except KeysUnavailable as exc:
            raise ApiError(503, "unavailable", str(exc)) from exc
        if name is None:
            raise ApiError(401, "unauthorized", "a valid API key is needed: send 'Authorization: Bearer KEY'",
                           headers={"WWW-Authenticate": "Bearer"})
        return name

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> Response:
        return json_response({"error": exc.error, "message": exc.message, "errors": exc.errors},
                     exc.status, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        return json_response({"error": code, "message": str(exc.detail), "errors": []}, exc.status_code, exc.headers)

    @app.get("/healthz", summary="The server is alive", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", summary="The model is verified and loaded and the decision log is writable", tags=["health"],
             responses={503: {"description": "not ready, with the problems"}})
    def readyz() -> Response:
        problems, about = [], {}
        try:
            model = active.get()
            about = {"model_name": model.name, "model_version": model.version}
        except ModelIntegrityError as exc:
            problems.append(f"model: {exc}")
        writer: LogWriter = app.state.writer
        if not writer.healthy:
            problems.append(f"decision log: cannot be written; {writer.unlogged:,} decision(s) held "
                            "(see the server log)")
        elif (why := log_check()) is not None:
            problems.append("decision log: cannot be reached (see the server log)")
            log.error("readiness: the decision log cannot be reached at %r: %s", decision_log, why)
        body = {"status": "not ready" if problems else "ready", **about,
                "unlogged_decisions": writer.unlogged, "problems": problems}
        return json_response(body, 503 if problems else 200)

    last_check: list = [-1e9, None]  # when the log was last pinged, and what it said

    def log_check() -> str | None:
        """The decision log's ping, at most once a second however often a balancer asks."""
        if time.monotonic() - last_check[0] > 1.0:
            last_check[:] = [time.monotonic(), decision_log.ping()]
        return last_check[1]

    @app.get("/v1/model", summary="The served model's card: schema, metrics, version", tags=["model"],
             responses=documented(401, 503))
    async def model_card(request: Request) -> Response:
        authorized(request)
        return json_response(public_card(current()))

    @app.post(
        "/v1/decisions", summary="Decide one applicant, or an array of applicants", tags=["decisions"],
        response_model=DecisionResult | list[DecisionResult | ItemErrors],
        responses=documented(400, 401, 413, 422, 503),
        openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": {
            "oneOf": [{"$ref": "#/components/schemas/Applicant"},
                      {"type": "array", "maxItems": MAX_ITEMS, "items": {"$ref": "#/components/schemas/Applicant"}}],
        }}}}},
    )
    async def decisions(request: Request) -> Response:
        """An object gives one result (or 422 with every bad field). An array gives a result per
        item, in order; an item that cannot be decided carries its own `errors`, and the rest are decided."""
        source = "api:" + authorized(request)
        data = parse_json(await read_body(request))
        model = current()
        writer: LogWriter = app.state.writer
        if isinstance(data, dict):
            [result] = decide_rows(model, [data])
            if isinstance(result, RowErrors):
                raise ApiError(422, "invalid_applicant", summary(result), [problem(e) for e in result.errors])
            answer: Any = _answer(model, [result], source, writer)[0]
        elif isinstance(data, list):
            if len(data) > MAX_ITEMS:
                raise ApiError(413, "too_large", f"{len(data):,} applicants in one request; at most {MAX_ITEMS:,}")
            if len(data) > THREAD_ITEMS:
                answer = await run_in_threadpool(_decide_array, model, data, source, writer)
            else:
                answer = _decide_array(model, data, source, writer)
        else:
            raise ApiError(400, "invalid_body", "the body must be a JSON object (one applicant) or an array of objects")
        if writer.behind:  # the log is far behind: this client waits, off the event loop, so others don't
            await run_in_threadpool(writer.wait_for_room)
        return json_response(answer)

    def openapi() -> dict[str, Any]:
        model = active.get()
        cached = getattr(app.state, "openapi", None)
        if cached is not None and cached[0] == model.sha256:
            return cached[1]
        spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        spec.setdefault("components", {}).setdefault("schemas", {})["Applicant"] = applicant_schema(model.schema)
        spec["info"]["x-model"] = {"name": model.name, "version": model.version}
        spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for path, operations in spec["paths"].items():
            if path.startswith("/v1/"):
                for operation in operations.values():
                    operation["security"] = [{"bearer": []}]
        app.state.openapi = (model.sha256, spec)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def public_card(model: LoanModel) -> dict[str, Any]:
    """What a client may know of the model: no training rows, no hold-out, no drift bins."""
    card = model.card
    keep = ("name", "version", "created_at", "model_kind", "target", "positive_label", "threshold",
            "schema", "metrics", "versions", "pipeline_sha256", "reference", "imported", "directions")
    out = {k: card[k] for k in keep if k in card}
    data = card.get("data", {})
    out["data"] = {k: data[k] for k in ("rows", "fingerprint", "approval_rate") if k in data}
    return out


def _decide_array(model: LoanModel, items: list, source: str, writer: LogWriter) -> list[dict]:
    results = decide_rows(model, items)
    answers = iter(_answer(model, [r for r in results if isinstance(r, RowDecision)], source, writer))
    return [next(answers) if isinstance(r, RowDecision) else
            {"index": i, "errors": [problem(e) for e in r.errors]} for i, r in enumerate(results)]


def _answer(model: LoanModel, results: list[RowDecision], source: str, writer: LogWriter) -> list[dict]:
    """The response items for decided rows, handed to the log writer before they are returned."""
    if not results:
        return []
    ids = new_decision_ids(len(results))
    name, version = model.name, model.version
    out = [{"decision_id": decision_id, "decision": r.decision, "label": decision_label(bool(r.decision)).lower(),
            "probability": r.probability, "threshold": r.threshold, "reasons": r.reasons,
            "out_of_range": r.out_of_range, "imputed": r.imputed, "model_name": name, "model_version": version}
           for r, decision_id in zip(results, ids, strict=True)]
    writer.submit(entries_for_decisions(model, results, source=source, decision_ids=ids))
    return out


