"""POST /v1/outcomes: what became of loans, matched to their decisions by decision id.

The route reads the body and hands it to the core (`model.records.outcomes.record_outcomes`), which
checks every item and records the valid ones in one transaction; this file only shapes the answer.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from model.core.errors import DecisionLogError
from model.records.outcomes import OutcomeReport, record_outcomes

from ..answers import JSON, ApiError, documented, json_response, parse_json, read_body
from ..deps import CallerDep, ServicesDep
from ..schemas import MAX_ITEMS, FieldProblem

router = APIRouter(prefix="/v1", tags=["outcomes"])


class Outcome(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "decision_id": "187b0f6f1c2a9e40c3d5a1f200000000", "outcome": "bad", "observed_at": "2027-03-31"}]}}

    decision_id: str = Field(description="the decision this loan came from, as POST /v1/decisions returned it")
    outcome: Literal["good", "bad", 1, 0] = Field(description="good (repaid as agreed) or bad (defaulted); "
                                                              "or 1 for good, 0 for bad")
    observed_at: str | None = Field(None, description="when it was observed: YYYY-MM-DD or an ISO 8601 UTC time")


class OutcomeResult(BaseModel):
    index: int = Field(description="the item's position in the request, from 0")
    decision_id: str
    status: Literal["recorded", "correction"] = Field(
        description="recorded; or correction: it replaced a different outcome recorded earlier (kept in the history)")


class OutcomeErrors(BaseModel):
    index: int = Field(description="the item's position in the request, from 0")
    errors: list[FieldProblem] = Field(description="why it was refused: unknown decision id, duplicate, invalid field")


@router.post(
    "/outcomes", summary="Record loan outcomes against their decisions",
    response_model=list[OutcomeResult | OutcomeErrors], responses=documented(400, 401, 413, 503),
    openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": {
        "oneOf": [{"$ref": "#/components/schemas/Outcome"},
                  {"type": "array", "maxItems": MAX_ITEMS, "items": {"$ref": "#/components/schemas/Outcome"}}],
    }}}}},
)
async def outcomes(request: Request, key: CallerDep, services: ServicesDep) -> Response:
    """One outcome (an object) or up to 10,000 (an array). The answer is a list with one item per
    outcome sent, in order: `recorded` or `correction`, or the reasons it was refused (an unknown
    decision id, the same outcome already on record, a repeated id, an invalid field). The valid
    items are recorded even when others are refused."""
    source = f"api:{key}"
    data = parse_json(await read_body(request))
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ApiError(400, "invalid_body", "the body must be a JSON object (one outcome) or an array of objects")
    if len(items) > MAX_ITEMS:
        raise ApiError(413, "too_large", f"{len(items):,} outcomes in one request; at most {MAX_ITEMS:,}")
    records = [i if isinstance(i, dict) else {"decision_id": None, "outcome": None, "_not_object": i} for i in items]
    try:
        report = await run_in_threadpool(record_outcomes, services.decision_log, records, source=source,
                                         recorded_by=source, first_row=0)
    except DecisionLogError as exc:
        raise ApiError(503, "unavailable", str(exc)) from exc
    return json_response(_answer(report, records))


def _answer(report: OutcomeReport, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    errors: dict[int, list[dict[str, Any]]] = {}
    for p in report.problems:
        errors.setdefault(p.row, []).append({"field": p.field, "value": p.value, "why": p.why})
    out = []
    for i, record in enumerate(records):
        if "_not_object" in record:
            out.append({"index": i, "errors": [{"field": "outcome", "value": record["_not_object"],
                                                "why": "must be a JSON object with decision_id and outcome"}]})
        elif i in errors:
            out.append({"index": i, "errors": errors[i]})
        else:
            out.append({"index": i, "decision_id": str(record["decision_id"]).strip(), "status": report.status[i]})
    return out
