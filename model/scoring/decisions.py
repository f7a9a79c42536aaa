"""The one decision path: validate, score, decide at the threshold, reasons, out-of-range, imputed.

Every face of LoanDesk decides through `decide` (the Decide page's `explain.decide`, the API and
`decide_rows`, batch files, the simulation), columnar, so that a million rows cost a few vectorized
calls and one applicant is a table of one. Explanations (curves, flip points, grids) are built on
top of it in `explain`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from model.core.metrics import approves
from model.core.schema import Validation
from model.scoring.reason_codes import join_codes
from model.scoring.reasons import batch_reason_lists

if TYPE_CHECKING:
    from model.scoring.predictor import LoanModel


@dataclass
class Decided:
    """Many applicants decided at once. Per-row arrays cover the rows that passed validation (`good`)."""

    validation: Validation  # every row's problems, and the cleaned columns of all rows
    good: np.ndarray  # positions of the rows that passed validation
    clean: dict[str, np.ndarray]  # their validated values, by field
    probability: np.ndarray  # their calibrated approval probabilities
    threshold: float
    reason_index: np.ndarray  # their reasons, as indices into reason_lists and code_lists
    reason_lists: list[tuple[str, ...]]  # each distinct combination of reasons, strongest first
    code_lists: list[tuple[str, ...]]  # the same combinations as stable reason codes
    field_lists: list[tuple[str, ...]]  # the same combinations as the fields they name
    referred: np.ndarray  # inside the model's refer band, for each good row

    @property
    def decision(self) -> np.ndarray:
        """1 approved, 0 rejected, for each good row."""
        return approves(self.probability, self.threshold).astype(np.int8)

    @property
    def out_of_range(self) -> dict[str, np.ndarray]:
        """Per field, which good rows lie outside the training range."""
        return {name: mask[self.good] for name, mask in self.validation.out_of_range.items()}

    @property
    def imputed(self) -> dict[str, np.ndarray]:
        """Per field, which good rows had a gap that the pipeline fills."""
        return {name: mask[self.good] for name, mask in self.validation.imputed.items()}

    def reason_texts(self) -> np.ndarray:
        """The distinct reason combinations as `;`-separated texts: `reason_texts()[reason_index]`."""
        texts = np.empty(len(self.reason_lists), dtype=object)
        texts[:] = ["; ".join(parts) for parts in self.reason_lists]
        return texts

    def code_texts(self) -> np.ndarray:
        """The distinct combinations as `;`-separated reason codes: `code_texts()[reason_index]`."""
        codes = np.empty(len(self.code_lists), dtype=object)
        codes[:] = [join_codes(parts) for parts in self.code_lists]
        return codes

    def __len__(self) -> int:
        return len(self.good)


def decide(model: LoanModel, data: Any) -> Decided:
    """Decide every row of `data` (a frame, dict or list of dicts) that passes validation."""
    return decide_validated(model, model.validate(data))


def decide_columns(model: LoanModel, columns: Mapping[str, np.ndarray], index: pd.Index) -> Decided:
    """`decide` for raw column arrays by field name (as the API builds them from JSON)."""
    return decide_validated(model, model.schema.validate_columns(dict(columns), index))


def decide_validated(model: LoanModel, validation: Validation, probability: np.ndarray | None = None,
                     odds: tuple[np.ndarray, np.ndarray] | None = None) -> Decided:
    """Score and explain the rows of a validation that passed it.

    `probability` (and `odds`, as `reasons.batch_reason_lists` takes them), when given, are those
    rows' scores from a call the caller made anyway (the Decide page scores the applicant together
    with its swaps and curves), so that nothing is scored twice.
    """
    bad = validation.bad_rows
    good = np.flatnonzero(~bad)
    all_good = not bad.any()
    clean = {name: (column if all_good else column[good]) for name, column in validation.columns.items()}
    if probability is None:
        probability = model.score_columns(clean) if len(good) else np.empty(0)
    elif len(probability) != len(good):
        raise ValueError(f"{len(probability)} probabilities given for {len(good)} valid rows")
    index, lists, code_lists, field_lists = batch_reason_lists(model, clean, probability, odds)
    return Decided(validation, good, clean, probability, model.threshold, index, lists, code_lists, field_lists,
                   model.referred(probability))
