"""Routes: a decision for one applicant or a list, the model card, health. Every decision is logged."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader

from model.artifact import ModelIntegrityError, default_model_dir
from model.decision_log import DecisionLog, entry_for
from model.explain import Decision
from model.predictor import LoanModel
from model.schema import ValidationError

from .registry import ActiveModel
from .schemas import MAX_BATCH, BatchOut, DecisionOut, FieldProblem, RowOut

log = logging.getLogger("loandesk.api")
key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
EXAMPLE = {"age": 35, "income": 62000, "credit_score": 720, "loan_amount": 18000, "employment_years": 6}


def create_app(model_dir: str | Path | None = None, db_url: str | None = None,
               api_keys: list[str] | None = None) -> FastAPI:
    """The API over the active model in `model_dir`; keys from LOANDESK_API_KEYS unless given."""
    active = ActiveModel(Path(model_dir) if model_dir else default_model_dir())
    decision_log = DecisionLog(db_url)
    keys = api_keys if api_keys is not None else [
        k.strip() for k in os.environ.get("LOANDESK_API_KEYS", "").split(",") if k.strip()]
    if not keys:
        log.warning("LOANDESK_API_KEYS is not set: the API accepts requests without a key")

    app = FastAPI(title="LoanDesk", version="1", description=(
        "Loan decisions from the active LoanDesk model: 1 approved, 0 rejected, with a calibrated "
        "probability, the principal reasons and what would change the decision. Fields are matched "
        "by name; see GET /v1/model for the schema."))

    def authorized(key: Annotated[str | None, Security(key_header)] = None) -> None:
        if keys and not any(secrets.compare_digest(key or "", k) for k in keys):
            raise HTTPException(status_code=401, detail="missing or wrong X-API-Key header")

    def current() -> LoanModel:
        try:
            return active.get()
        except ModelIntegrityError as exc:
            raise HTTPException(status_code=503, detail=f"the model cannot be used: {exc}") from exc

    @app.exception_handler(ValidationError)
    def invalid(_: Request, exc: ValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": [_problem(e).model_dump() for e in exc.errors]})

    @app.get("/health")
    def health() -> dict[str, Any]:
        model = current()
        return {"status": "ok", "model": model.name, "version": model.version}

    @app.get("/v1/model", dependencies=[Depends(authorized)])
    def model_card() -> dict[str, Any]:
        model = current()
        card = model.card
        return {"name": model.name, "version": model.version, "threshold": model.threshold,
                "created_at": card.get("created_at"), "metrics": card.get("metrics"),
                "schema": card["schema"], "target": card["target"]}

    @app.post("/v1/decisions", response_model=DecisionOut, dependencies=[Depends(authorized)])
    def decide(applicant: Annotated[dict[str, Any], Body(examples=[EXAMPLE])],
               officer: str | None = None) -> DecisionOut:
        """One applicant's decision (a JSON object of fields, by name; extra fields are ignored)."""
        model = current()
        decision = model.decide(applicant)
        result = decision_log.record(entry_for(model, decision, source="api", officer=officer))
        return _out(decision, result.ok, result.warning)

    @app.post("/v1/decisions/batch", response_model=BatchOut, dependencies=[Depends(authorized)])
    def decide_many(applicants: Annotated[list[dict[str, Any]], Body(embed=True, max_length=MAX_BATCH)],
                    officer: str | None = None) -> BatchOut:
        """Up to 1,000 applicants; a bad row is reported with its errors and the rest are decided."""
        model = current()
        validation = model.validate(applicants)
        problems: dict[int, list[FieldProblem]] = {}
        for e in validation.errors:
            problems.setdefault(int(e.row), []).append(_problem(e))
        rows, decisions = [], []
        for i, applicant in enumerate(applicants):
            if i in problems:
                rows.append(RowOut(row=i, errors=problems[i]))
                continue
            decision = model.decide(applicant)
            decisions.append(decision)
            rows.append(RowOut(row=i, result=_out(decision, True, None)))
        result = decision_log.record([entry_for(model, d, source="api", officer=officer) for d in decisions])
        for row in rows:
            if row.result is not None:
                row.result.logged, row.result.log_warning = result.ok, result.warning
        return BatchOut(results=rows, scored=len(decisions), rejected_rows=len(problems))

    return app


def _problem(e) -> FieldProblem:
    return FieldProblem(row=None if e.row is None else int(e.row), field=e.field, value=e.value, why=e.why)


def _out(decision: Decision, logged: bool, warning: str | None) -> DecisionOut:
    return DecisionOut(
        decision=decision.decision, label=decision.label, probability=decision.probability,
        threshold=decision.threshold, reasons=[r.text for r in decision.reasons],
        out_of_range=decision.out_of_range, imputed=decision.imputed,
        flips={k: {"value": v.value, "text": v.text} for k, v in decision.flips.items()},
        model_name=decision.model_name, model_version=decision.model_version,
        logged=logged, log_warning=warning,
    )
