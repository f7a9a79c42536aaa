"""What the API takes and gives, as OpenAPI documents it.

The request schema is not written here: `applicant_schema` builds it from the served model's card,
so a model trained on another CSV is documented with its own fields, bounds and categories.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from model.core.formatting import format_value
from model.core.schema import Field as SchemaField
from model.core.schema import Schema

MAX_ITEMS = 10_000  # applicants in one request
MAX_BODY_BYTES = 8 * 1024 * 1024  # enough for MAX_ITEMS applicants with long field names


class FieldProblem(BaseModel):
    field: str = Field(description="the field's name, or 'applicant' when the item is not an object")
    value: Any = Field(description="the value as sent")
    why: str = Field(description="what is wrong with it, in words")


class DecisionResult(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "decision_id": "187b0f6f1c2a9e40c3d5a1f200000000", "decision": 1, "label": "approved",
        "referred": False, "probability": 0.8604, "threshold": 0.5,
        "reasons": ["Credit score is slightly above the typical approved applicant's 708",
                    "Annual income is slightly above the typical approved applicant's $60,500"],
        "reason_codes": ["CREDIT_SCORE_HIGH", "INCOME_HIGH"],
        "out_of_range": [], "imputed": [], "model_name": "loan_approval_model",
        "model_version": "20261125-103954-ba71e881"}]}}

    decision_id: str = Field(description="finds this decision in the decision log")
    decision: Literal[0, 1] = Field(description="1 approved, 0 rejected: the model's side of the threshold")
    label: Literal["approved", "rejected", "referred"] = Field(
        description="referred: inside the model's refer band around the threshold, for an underwriter to decide")
    referred: bool = Field(description="inside the model's refer band (see label)")
    probability: float = Field(ge=0, le=1, description="calibrated probability of approval")
    threshold: float = Field(ge=0, le=1, description="approved when probability ≥ threshold")
    reasons: list[str] = Field(description="the principal reasons, strongest first, in plain language")
    reason_codes: list[str] = Field(description="a stable code for each reason, in the same order "
                                                "(FIELD_LOW, FIELD_HIGH, FIELD_MISSING, FIELD_DIFFERS)")
    out_of_range: list[str] = Field(description="fields outside the range seen in training: treat with care")
    imputed: list[str] = Field(description="fields sent as null (allowed where training had gaps) and filled in "
                                           "by the model")
    model_name: str
    model_version: str


class ItemErrors(BaseModel):
    """An item of an array request that could not be decided; the other items were."""

    index: int = Field(description="the item's position in the request, from 0")
    errors: list[FieldProblem]


class ErrorBody(BaseModel):
    error: str = Field(description="a stable code: invalid_json, invalid_body, invalid_applicant, "
                                   "unauthorized, too_large, not_found, method_not_allowed, not_a_rejection, "
                                   "unavailable")
    message: str = Field(description="what went wrong, for a person")
    errors: list[FieldProblem] = Field(default_factory=list, description="every bad field, for invalid_applicant")


def applicant_schema(schema: Schema) -> dict[str, Any]:
    """JSON Schema of one applicant, from the model's own schema (extra fields are allowed and ignored)."""
    properties = {f.name: _property(f) for f in schema.fields}
    return {
        "title": "Applicant",
        "type": "object",
        "properties": properties,
        "required": schema.names,  # every field is sent; a gap is an explicit null where training had gaps
        "additionalProperties": True,
        "example": {f.name: f.default for f in schema.fields if f.default is not None},
        "description": "One applicant, fields by name. Fields not listed here are ignored.",
    }


def _property(f: SchemaField) -> dict[str, Any]:
    nullable = not f.required
    if not f.is_number:
        out: dict[str, Any] = {"type": ["string", "null"] if nullable else "string",
                               "enum": [*f.categories, *([None] if nullable else [])]}
    else:
        out = {"type": ["number", "null"] if nullable else "number"}
        if f.lowest is not None:
            out["minimum"] = f.lowest
        if f.hard_max is not None:
            out["maximum"] = f.hard_max
    words = [f.title + "."]
    if f.help:
        words.append(f.help)
    if f.is_number and f.train_min is not None and f.train_max is not None:
        words.append(f"Seen in training: {format_value(f, f.train_min)} to {format_value(f, f.train_max)}; "
                     "values outside are decided but flagged in out_of_range.")
    if f.max_minus is not None:
        words.append(f"At most {f.max_minus[0]} − {f.max_minus[1]:g}.")
    if nullable:
        words.append("May be null when not known (training had gaps here): it is then filled in and listed in "
                     "imputed. The field itself must be sent.")
    out["description"] = " ".join(words)
    if f.default is not None:
        out["examples"] = [f.default]
    return out
