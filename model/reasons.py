"""The principal reasons behind a decision, in plain language, for one applicant or a whole batch.

A reason compares a field with the typical approved applicant (stored in the model card): its effect
is how much the approval probability moves when that field alone takes the typical value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .formatting import format_value
from .schema import Field

MAX_REASONS = 4  # more principal reasons than this stop being useful to an applicant
MIN_EFFECT = 0.005  # a field that moves the probability less than half a point is no reason


@dataclass(frozen=True)
class Reason:
    field: str
    effect: float  # probability change from this value vs the typical approved applicant's
    direction: str  # "against" or "for"
    text: str


def reason_text(f: Field, value: Any, reference: Any, with_value: bool = True) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{f.label} was not given"
    if not f.is_number:
        shown = f" '{value}'" if with_value else ""
        return f"{f.label}{shown} differs from the typical approved applicant's '{reference}'"
    gap = float(value) - float(reference)
    size = abs(gap) / (f.train_std or 1.0)
    shown = f" {format_value(f, value)}" if with_value else ""
    return f"{f.label}{shown} is {_how(size)}{_side(gap)} the typical approved applicant's {format_value(f, reference)}"


def _how(size: float) -> str:
    return "well " if size > 1 else ("slightly " if size < 0.25 else "")


def _side(gap: float) -> str:
    return "above" if gap > 0 else "below"


def _reason_table(f: Field, reference: Any) -> list[str]:
    """Every phrase a field can produce in a batch, indexed by `_reason_codes`."""
    if not f.is_number:
        return [f"{f.label} was not given", reason_text(f, "", reference, with_value=False)]
    phrases = [f"{f.label} was not given"]
    for side in ("above", "below"):
        for how in ("well ", "slightly ", ""):
            phrases.append(f"{f.label} is {how}{side} the typical approved applicant's {format_value(f, reference)}")
    return phrases


def _reason_codes(f: Field, values: np.ndarray, reference: Any) -> np.ndarray:
    """Index into `_reason_table` for each row (vectorized)."""
    if not f.is_number:
        missing = np.array([v is None or (isinstance(v, float) and math.isnan(v)) for v in values])
        return np.where(missing, 0, 1)
    values = values.astype(float)
    gap = values - float(reference)
    size = np.abs(gap) / (f.train_std or 1.0)
    how = np.where(size > 1, 0, np.where(size < 0.25, 1, 2))
    code = 1 + np.where(gap > 0, 0, 3) + how
    return np.where(np.isnan(values), 0, code)


def batch_reasons(model, clean: pd.DataFrame, probabilities: np.ndarray) -> np.ndarray:
    """The principal reasons for many validated rows at once, `;`-separated, by the same rule as
    `decide` (each field swapped for the typical approved applicant's value) in one predict call.

    The row's own values are left out of the text: they stand beside it in the output.
    """
    reference = model.card.get("reference", {})
    fields = [f for f in model.schema.fields if f.name in reference and not f.protected]
    n = len(clean)
    if n == 0 or not fields:
        return np.full(n, "", dtype=object)
    names = model.schema.names
    stacked = {name: np.tile(clean[name].to_numpy(), len(fields)) for name in names}
    for k, f in enumerate(fields):
        stacked[f.name][k * n:(k + 1) * n] = reference[f.name]
    swapped = model.approval_probability(pd.DataFrame(stacked, columns=names, copy=False)).reshape(len(fields), n)
    effects = probabilities[None, :] - swapped
    approved = probabilities >= model.threshold
    relevant = np.where(approved, effects > MIN_EFFECT, effects < -MIN_EFFECT)
    strength = np.where(relevant, np.abs(effects), -1.0)
    order = np.argsort(-strength, axis=0, kind="stable")[:MAX_REASONS]
    # Encode each row's reasons as one integer (field, phrase) per rank, so that the text is built
    # once per distinct combination rather than once per row.
    tables = [_reason_table(f, reference[f.name]) for f in fields]
    width = max(len(t) for t in tables)
    codes = np.stack([_reason_codes(f, clean[f.name].to_numpy(), reference[f.name]) for f in fields])
    cols = np.arange(n)
    key = np.zeros(n, dtype=np.int64)
    base = len(fields) * width + 1
    for rank in range(min(MAX_REASONS, len(fields))):
        pick = order[rank]
        digit = np.where(strength[pick, cols] > 0, 1 + pick * width + codes[pick, cols], 0)
        key = key * base + digit
    unique, inverse = np.unique(key, return_inverse=True)
    texts = np.empty(len(unique), dtype=object)
    for i, combo in enumerate(unique):
        parts, combo = [], int(combo)
        while combo:
            combo, digit = divmod(combo, base)
            if digit:
                k, code = divmod(digit - 1, width)
                parts.append(tables[k][code])
        texts[i] = "; ".join(reversed(parts))
    return texts[inverse]
