"""Decisions for a list of applicants at once, each with its reasons or its own field errors.

This is what a system calling LoanDesk needs (the REST API is one): every row is validated by the
schema, the good rows are scored and explained together in a few vectorized calls, and a bad row
carries its problems without holding up the others. One applicant is just a list of one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from model.core.metrics import approves
from model.core.schema import FieldError, column_array
from model.scoring.decisions import decide_validated

if TYPE_CHECKING:
    from model.scoring.predictor import LoanModel


@dataclass(slots=True)
class RowDecision:
    """One applicant's decision. `inputs` holds the values as scored (gaps as None), for the log."""

    probability: float
    threshold: float
    reasons: tuple[str, ...]
    out_of_range: list[str]
    imputed: list[str]
    inputs: dict[str, Any]
    reason_codes: tuple[str, ...] = ()  # one stable code per reason, in the same order
    referred: bool = False  # inside the model's refer band: an underwriter decides

    @property
    def decision(self) -> int:
        return int(approves(self.probability, self.threshold))


@dataclass(frozen=True)
class RowErrors:
    """Why one applicant could not be decided: every problem found, by field."""

    errors: list[FieldError]


def decide_rows(model: LoanModel, rows: list[Any]) -> list[RowDecision | RowErrors]:
    """A result for every row, in order. Fields are matched by name; extra fields are ignored.

    A row that is not a mapping of fields (a bare number, a list) gets an error of its own.
    """
    out: list[RowDecision | RowErrors | None] = [None] * len(rows)
    names = model.schema.names
    at = [i for i, row in enumerate(rows) if type(row) is dict]
    for i in sorted(set(range(len(rows))) - set(at)):
        out[i] = RowErrors([FieldError(i, "applicant", rows[i], NOT_AN_OBJECT)])
    if not at:
        return out  # type: ignore[return-value]
    # Every field gets a column (None where a row lacks it), so a missing field is a per-row
    # error, never a failure of the whole list. Every field must be sent: a gap is an explicit
    # null or "", and only for fields that had gaps in training (then imputed and flagged).
    objects = [rows[i] for i in at]
    columns = {name: column_array([row.get(name) for row in objects]) for name in names}
    validation = model.schema.validate_columns(columns, pd.RangeIndex(len(objects)))
    absent = np.zeros(len(objects), dtype=bool)
    for j, row in enumerate(objects):
        missing = [name for name in names if name not in row]
        if missing:
            absent[j] = True
            out[at[j]] = RowErrors(_missing_errors(model, at[j], missing))
    validation.bad_rows = validation.bad_rows | absent  # a row without all the fields is not decided
    decided = decide_validated(model, validation)
    for e in validation.errors:
        i = at[int(e.row)]
        if e.field not in rows[i] and absent[int(e.row)]:
            continue  # already said: the field is missing
        problems = out[i]
        if not isinstance(problems, RowErrors):
            problems = out[i] = RowErrors([])
        problems.errors.append(FieldError(i, e.field, rows[i].get(e.field), e.why))  # the value as sent
    good = decided.good
    flagged = _names_per_row(validation.out_of_range, good)
    gaps = _names_per_row(validation.imputed, good)
    inputs = [dict(zip(names, values, strict=True))
              for values in zip(*(_plain(decided.clean[name].tolist()) for name in names), strict=True)]
    lists, code_lists, index = decided.reason_lists, decided.code_lists, decided.reason_index
    threshold, referred = decided.threshold, decided.referred.tolist()
    for k, (j, p) in enumerate(zip(good.tolist(), decided.probability.tolist(), strict=True)):
        c = index[k]
        out[at[j]] = RowDecision(p, threshold, lists[c], flagged[k], gaps[k], inputs[k], code_lists[c], referred[k])
    return out  # type: ignore[return-value]


def _missing_errors(model: LoanModel, i: int, missing: list[str]) -> list[FieldError]:
    """A row without some of the model's fields: each is named; with none of them, the expected ones."""
    names = model.schema.names
    if len(missing) == len(names):
        return [FieldError(i, "applicant", None, "has none of the model's fields; expected: " + ", ".join(names))]
    return [FieldError(i, name, None, MISSING if model.schema[name].required else MISSING_GAP) for name in missing]


MISSING = "is missing: every field of the model is required"
MISSING_GAP = "is missing: every field of the model is required (send null when it is not known)"


def _names_per_row(masks: dict[str, np.ndarray], rows: np.ndarray) -> list[list[str]]:
    """For each of `rows`, the names whose mask is set there (most rows: none)."""
    out: list[list[str]] = [[] for _ in range(len(rows))]
    for name, mask in masks.items():
        for k in np.flatnonzero(mask[rows]).tolist():
            out[k].append(name)
    return out


NOT_AN_OBJECT = "must be an object of named fields, such as {\"income\": 62000}"


def _plain(values: list) -> list:
    """NaN (a gap) as None, for the log's JSON."""
    return [None if v != v else v for v in values]
