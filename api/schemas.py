"""Response models. Requests are plain JSON objects of fields: the core validates them by the live schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

MAX_BATCH = 1000


class Flip(BaseModel):
    value: float | None
    text: str


class DecisionOut(BaseModel):
    decision: int = Field(description="1 approved, 0 rejected")
    label: str = Field(description="Approved or Rejected")
    probability: float = Field(description="calibrated approval probability")
    threshold: float
    reasons: list[str]
    out_of_range: list[str]
    imputed: list[str]
    flips: dict[str, Flip]
    model_name: str
    model_version: str
    logged: bool
    log_warning: str | None = None


class FieldProblem(BaseModel):
    row: int | None
    field: str
    value: Any
    why: str


class RowOut(BaseModel):
    row: int
    result: DecisionOut | None = None
    errors: list[FieldProblem] = []


class BatchOut(BaseModel):
    results: list[RowOut]
    scored: int
    rejected_rows: int
