"""Decisions for one applicant or an array, each answered only once it is on record with the decision
id the client is given (committed to the log, or journaled while it is down; else 503).

The route reads the raw body and hands it to the core (`model.scoring.rows.decide_rows`): FastAPI's
per-request model validation would cost more than the decision itself, and the core's validation
is the one every other face of LoanDesk uses. OpenAPI still documents the request, with a schema
built from the served model's card.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from model.core.formatting import decision_label
from model.records.log import entries_for_decisions, new_decision_ids
from model.records.writer import LogWriter, NotDurable
from model.scoring.predictor import LoanModel
from model.scoring.rows import RowDecision, RowErrors, decide_rows

from ..answers import (
    JSON,
    ApiError,
    documented,
    json_response,
    parse_json,
    problem,
    read_body,
    require_json,
    summary,
    unavailable,
)
from ..deps import CallerDep, ModelDep, ServicesDep
from ..schemas import MAX_ITEMS, DecisionResult, ItemErrors

router = APIRouter(prefix="/v1", tags=["decisions"])
THREAD_ITEMS = 256  # arrays longer than this are decided off the event loop


@router.post(
    "/decisions", summary="Decide one applicant, or an array of applicants",
    response_model=DecisionResult | list[DecisionResult | ItemErrors],
    responses=documented(400, 401, 408, 413, 415, 422, 503),
    openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": {
        "oneOf": [{"$ref": "#/components/schemas/Applicant"},
                  {"type": "array", "maxItems": MAX_ITEMS, "items": {"$ref": "#/components/schemas/Applicant"}}],
    }}}}},
)
async def decisions(request: Request, name: CallerDep, services: ServicesDep, model: ModelDep) -> Response:
    """An object gives one result (or 422 with every bad field). An array gives a result per
    item, in order; an item that cannot be decided carries its own `errors`, and the rest are decided."""
    source = "api:" + name
    require_json(request)
    data = parse_json(await read_body(request))
    writer = services.writer
    assert writer is not None, "the app's lifespan starts the writer"
    durable: Future
    if isinstance(data, dict):
        [result] = decide_rows(model, [data])
        if isinstance(result, RowErrors):
            raise ApiError(422, "invalid_applicant", summary(result), [problem(e) for e in result.errors])
        answers, durable = _answer(model, [result], source, writer)
        answer: Any = answers[0]
    elif isinstance(data, list):
        if len(data) > MAX_ITEMS:
            raise ApiError(413, "too_large", f"{len(data):,} applicants in one request; at most {MAX_ITEMS:,}")
        if len(data) > THREAD_ITEMS:
            answer, durable = await run_in_threadpool(_decide_array, model, data, source, writer)
        else:
            answer, durable = _decide_array(model, data, source, writer)
    else:
        raise ApiError(400, "invalid_body", "the body must be a JSON object (one applicant) or an array of objects")
    try:  # answered only once on record: the writer commits this with whatever else came meanwhile
        await asyncio.wrap_future(durable)
    except NotDurable as exc:
        if exc.retry:
            raise unavailable(str(exc)) from None
        raise ApiError(500, "not_recorded", str(exc)) from None
    return json_response(answer)


def _decide_array(model: LoanModel, items: list, source: str, writer: LogWriter) -> tuple[list[dict], Future]:
    results = decide_rows(model, items)
    decided, durable = _answer(model, [r for r in results if isinstance(r, RowDecision)], source, writer)
    answers = iter(decided)
    return [next(answers) if isinstance(r, RowDecision) else
            {"index": i, "errors": [problem(e) for e in r.errors]} for i, r in enumerate(results)], durable


def _answer(model: LoanModel, results: list[RowDecision], source: str,
            writer: LogWriter) -> tuple[list[dict], Future]:
    """The response items for decided rows, and the future that says when they are on record."""
    ids = new_decision_ids(len(results))
    name, version = model.name, model.version
    out = [{"decision_id": decision_id, "decision": r.decision,
            "label": "referred" if r.referred else decision_label(bool(r.decision)).lower(), "referred": r.referred,
            "probability": r.probability, "threshold": r.threshold, "reasons": r.reasons,
            "reason_codes": r.reason_codes,
            "out_of_range": r.out_of_range, "imputed": r.imputed, "model_name": name, "model_version": version}
           for r, decision_id in zip(results, ids, strict=True)]
    try:
        durable = writer.submit(entries_for_decisions(model, results, source=source, decision_ids=ids))
    except NotDurable as exc:  # closing
        raise unavailable(str(exc)) from None
    return out, durable
