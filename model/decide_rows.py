"""Decisions for a list of applicants at once, each with its reasons or its own field errors.

This is what a system calling LoanDesk needs (the REST API is one): every row is validated by the
schema, the good rows are scored and explained together in a few vectorized calls, and a bad row
carries its problems without holding up the others. One applicant is just a list of one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .reasons import batch_reason_lists
from .schema import FieldError


@dataclass(frozen=True)
class RowDecision:
    """One applicant's decision. `inputs` holds the values as scored (gaps as None), for the log."""

    probability: float
    threshold: float
    reasons: tuple[str, ...]
    out_of_range: list[str]
    imputed: list[str]
    inputs: dict[str, Any]

    @property
    def decision(self) -> int:
        return int(self.probability >= self.threshold)


@dataclass(frozen=True)
class RowErrors:
    """Why one applicant could not be decided: every problem found, by field."""

    errors: list[FieldError]


def decide_rows(model, rows: list[Any]) -> list[RowDecision | RowErrors]:
    """A result for every row, in order. Fields are matched by name; extra fields are ignored.

    A row that is not a mapping of fields (a bare number, a list) gets an error of its own.
    """
    out: list[RowDecision | RowErrors | None] = [None] * len(rows)
    names = model.schema.names
    # Every field is present (None where a row lacks it), so a missing field is a per-row
    # "is required" error or a gap to impute, never a failure of the whole list.
    at, fields = [], []
    for i, row in enumerate(rows):
        if isinstance(row, dict):
            at.append(i)
            fields.append({name: row.get(name) for name in names})
        else:
            out[i] = RowErrors([FieldError(i, "applicant", row, NOT_AN_OBJECT)])
    if not fields:
        return out  # type: ignore[return-value]
    validation = model.validate(fields)
    for e in validation.errors:
        i = at[int(e.row)]
        if out[i] is None:
            out[i] = RowErrors([])
        out[i].errors.append(FieldError(i, e.field, e.value, e.why))
    good = np.flatnonzero(~validation.bad_rows)
    clean = {name: validation.columns[name][good] for name in names}
    probabilities = model.score_columns(clean) if len(good) else np.empty(0)
    codes, lists = batch_reason_lists(model, clean, probabilities)
    flagged = {name: mask[good] for name, mask in validation.out_of_range.items() if mask.any()}
    gaps = {name: mask[good] for name, mask in validation.imputed.items() if mask.any()}
    values = {name: clean[name].tolist() for name in names}
    threshold = model.threshold
    for k, j in enumerate(good.tolist()):
        out[at[j]] = RowDecision(
            probability=float(probabilities[k]), threshold=threshold, reasons=lists[codes[k]],
            out_of_range=[name for name, mask in flagged.items() if mask[k]],
            imputed=[name for name, mask in gaps.items() if mask[k]],
            inputs={name: _plain(values[name][k]) for name in names},
        )
    return out  # type: ignore[return-value]


NOT_AN_OBJECT = "must be an object of named fields, such as {\"income\": 62000}"


def _plain(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value
