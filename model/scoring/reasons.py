"""The principal reasons behind a decision, in plain language, for one applicant or a whole batch.

A reason compares a field with the typical approved applicant (stored in the model card): its effect
is how much the approval probability moves when that field alone takes the typical value.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer

from model.core.formatting import format_value
from model.core.metrics import approves
from model.core.protected import ELDERLY_AGE
from model.core.schema import Field
from model.scoring.reason_codes import DIFFERS, HIGH, LOW, MISSING, join_codes, reason_code

if TYPE_CHECKING:
    from model.scoring.predictor import LoanModel

Columns: TypeAlias = pd.DataFrame | Mapping[str, np.ndarray]  # validated rows, by field name

MAX_REASONS = 4  # more principal reasons than this stop being useful to an applicant
# A field that moves the log-odds less than this is no reason: about half a percentage point of
# probability near 50%. Measured in log-odds, not probability, so that a very confident decision
# (a probability of 0.00001, where no single field moves the probability by half a point) still
# gets the reasons that push it there.
MIN_LOG_ODDS = 0.02


def log_odds(p: np.ndarray | float) -> np.ndarray:
    """log(p / (1 − p)), finite even at 0 and 1."""
    p = np.clip(p, 1e-300, 1 - 1e-16)
    return np.log(p) - np.log1p(-p)


@dataclass(frozen=True)
class Reason:
    field: str
    effect: float  # probability change from this value vs the typical approved applicant's
    direction: str  # "against" or "for"
    text: str
    code: str = ""  # the stable reason code (model/scoring/reason_codes.py): CREDIT_SCORE_LOW


def never_against(f: Field, value: Any, supports: bool) -> bool:
    """Whether a field may not be given as a reason here: age is never a reason against an applicant
    62 or older (Regulation B 1002.6(b)(2)(ii)). Otherwise every principal reason is disclosed, age
    for a younger applicant and an allowed protected field too (comment 9(b)(2)-4: none may be left out)."""
    if supports or not f.is_age:
        return False
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and float(value) >= ELDERLY_AGE


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
    """Every phrase a field can produce in a batch, indexed by `_phrase_index`."""
    if not f.is_number:
        return [f"{f.label} was not given", reason_text(f, "", reference, with_value=False)]
    phrases = [f"{f.label} was not given"]
    for side in ("above", "below"):
        for how in ("well ", "slightly ", ""):
            phrases.append(f"{f.label} is {how}{side} the typical approved applicant's {format_value(f, reference)}")
    return phrases


def _code_table(f: Field) -> list[str]:
    """The reason code of each phrase of `_reason_table`."""
    if not f.is_number:
        return [reason_code(f.name, MISSING), reason_code(f.name, DIFFERS)]
    return [reason_code(f.name, MISSING)] + [reason_code(f.name, HIGH)] * 3 + [reason_code(f.name, LOW)] * 3


def _phrase_index(f: Field, values: np.ndarray, reference: Any) -> np.ndarray:
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


def batch_reasons(model: LoanModel, clean: Columns, probabilities: np.ndarray) -> np.ndarray:
    """The principal reasons for many validated rows at once, `;`-separated, by the same rule as
    `decide` (each field swapped for the typical approved applicant's value).

    The row's own values are left out of the text: they stand beside it in the output.
    """
    inverse, texts, _ = batch_reason_table(model, clean, probabilities)
    return texts[inverse]


def batch_reason_table(model: LoanModel, clean: Columns,
                       probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`batch_reasons` as indices into a short table of distinct combinations: `texts[inverse]` is
    each row's text and `codes[inverse]` its reason codes (`;`-separated, as reason_codes.join_codes).

    Rows share a handful of combinations, so a writer can dictionary-encode them instead of
    copying a million strings.
    """
    inverse, lists, code_lists, _ = batch_reason_lists(model, clean, probabilities)
    texts = np.empty(len(lists), dtype=object)
    texts[:] = ["; ".join(parts) for parts in lists]
    codes = np.empty(len(lists), dtype=object)
    codes[:] = [join_codes(parts) for parts in code_lists]
    return inverse, texts, codes


def batch_reason_lists(model: LoanModel, clean: Columns, probabilities: np.ndarray,
                       odds: tuple[np.ndarray, np.ndarray] | None = None,
                       ) -> tuple[np.ndarray, list[tuple[str, ...]], list[tuple[str, ...]], list[tuple[str, ...]]]:
    """`batch_reason_table` with each distinct combination as its reasons, their codes and their fields,
    strongest first (the fields let the Decide page word a reason with the applicant's own value).

    `odds`: the rows' log-odds (as `LoanModel.log_odds` gives them) and their log-odds with each
    field of the card's reference in turn set to its reference value, shape (fields, rows), when
    the caller scored them already (the Decide page does, in the call that draws its curves).
    """
    reference = model.card.reference
    fields = [f for f in model.schema.fields if f.name in reference]
    n = len(probabilities)
    if n == 0 or not fields:
        return np.zeros(n, dtype=np.intp), [()], [()], [()]
    # A reason supports the decision: it raised the probability of an approved row (effect > 0)
    # or lowered that of a rejected one. Its strength is the size of the effect; -1: no reason.
    # Measured in log-odds, which never saturate the way probabilities do near 0 and 1.
    if odds is None:
        base = model.log_odds({name: np.asarray(clean[name]) for name in model.schema.names}, probabilities)
        swapped = _swapped_log_odds(model, clean, fields, reference)
    else:
        base, swapped = np.asarray(odds[0], dtype=float), np.asarray(odds[1], dtype=float).reshape(len(fields), n)
    strength = base[None, :] - swapped
    rejected = ~approves(probabilities, model.threshold)
    np.negative(strength, out=strength, where=rejected)
    strength[strength < MIN_LOG_ODDS] = -1.0
    for k, f in enumerate(fields):  # age is never a reason against an applicant 62 or older
        if f.is_age:
            with np.errstate(invalid="ignore"):
                strength[k, rejected & (np.asarray(clean[f.name], dtype=float) >= ELDERLY_AGE)] = -1.0
    # Each row's reasons as one integer: a digit (field, phrase) per rank, strongest first, so the
    # text is built once per distinct combination rather than once per row.
    tables = _tables.get(model)
    if tables is None:
        tables = _tables[model] = [_reason_table(f, reference[f.name]) for f in fields]
        _code_tables[model] = [_code_table(f) for f in fields]
    code_tables = _code_tables[model]
    width = max(len(t) for t in tables)
    radix = len(fields) * width + 1
    ranks = min(MAX_REASONS, len(fields))
    place = np.append(radix ** np.arange(ranks - 1, -1, -1, dtype=np.int64), 0)  # rank ≥ ranks: left out
    key = np.zeros(n, dtype=np.int64)
    # Each field's place when a row's fields are sorted strongest first (ties: schema order). Two
    # stable argsorts do it for all fields at once, fastest for few rows (one applicant: 2 µs
    # against 44); over many rows the pairwise comparisons of `_rank` are faster.
    order = np.argsort(np.argsort(-strength, axis=0, kind="stable"), axis=0) if n <= SMALL else None
    for k, f in enumerate(fields):
        if n <= SMALL and not (strength[k] >= 0).any():
            continue  # a reason for none of these rows (most fields, for one applicant): adds nothing
        rank = np.minimum(order[k] if order is not None else _rank(strength, k), ranks)
        rank[strength[k] < 0] = ranks
        digit = 1 + k * width + _phrase_index(f, np.asarray(clean[f.name]), reference[f.name])
        key += digit * place[rank]
    if n == 1:  # one applicant (the API's common case): no need for pandas' hashing
        inverse, unique = np.zeros(1, dtype=np.intp), key.tolist()
    else:
        inverse, unique = pd.factorize(key)
        unique = unique.tolist()
    known = _texts.setdefault(model, {})  # a batch comes in chunks that share most combinations
    lists, code_lists, field_lists = [], [], []
    for combo in unique:
        parts = known.get(combo)
        if parts is None:
            found, found_codes, found_fields, rest = [], [], [], combo
            while rest:
                rest, d = divmod(rest, radix)
                if d:
                    k, phrase = divmod(d - 1, width)
                    found.append(tables[k][phrase])
                    found_codes.append(code_tables[k][phrase])
                    found_fields.append(fields[k].name)
            parts = known[combo] = (tuple(reversed(found)), tuple(reversed(found_codes)),
                                    tuple(reversed(found_fields)))
        lists.append(parts[0])
        code_lists.append(parts[1])
        field_lists.append(parts[2])
    return inverse, lists, code_lists, field_lists


def _rank(strength: np.ndarray, k: int) -> np.ndarray:
    """Field k's place when each row's fields are sorted strongest first (ties: schema order)."""
    rank = np.zeros(strength.shape[1], dtype=np.int64)
    for j in range(len(strength)):
        if j != k:
            rank += (strength[j] > strength[k]) if j > k else (strength[j] >= strength[k])
    return rank


def _swapped_log_odds(model, clean: Columns, fields: list[Field], reference: dict) -> np.ndarray:
    """Log-odds with each field in turn set to the reference value: shape (fields, rows)."""
    if model.compiled:  # the compiled form swaps one term of each row's sum: no plan needed
        return _swap_by_predict(model, clean, fields, reference)
    if not isinstance(clean, pd.DataFrame):
        clean = pd.DataFrame({name: clean[name] for name in model.schema.names}, copy=False)
    plan = _swap_plan(model, fields, reference)
    if plan is not None and not plan.checked:
        sample = clean.iloc[:SAMPLE_CHECK]
        fast = plan(sample)
        plan.checked = fast is not None and np.allclose(
            log_odds(fast), _swap_by_predict(model, sample, fields, reference), rtol=0, atol=1e-9)
        if not plan.checked:  # this pipeline is not column-separable after all: never try again
            _plans[model] = plan = None
    out = plan(clean) if plan is not None else None
    return log_odds(out) if out is not None else _swap_by_predict(model, clean, fields, reference)


def _swap_by_predict(model, clean: Columns, fields: list[Field], reference: dict) -> np.ndarray:
    """The general way: every row once per swapped field, scored in one call (log-odds)."""
    columns = {name: np.asarray(clean[name]) for name in model.schema.names}
    return model.swapped_log_odds(columns, [f.name for f in fields], reference)


SMALL = 4096  # rows up to which the fields' places are found by sorting (see batch_reason_lists)
SAMPLE_CHECK = 64  # rows on which the fast path is checked against the general one, once per model
_plans: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_texts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {combination: (reasons, codes, fields)}
_tables: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> each field's phrases
_code_tables: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> each phrase's reason code


class _SwapPlan:
    """Swapping one field for its reference value in the *transformed* rows, not the raw ones.

    When every preprocessing step works column by column (impute, scale, encode), a field's
    transformed columns depend on that field alone, so the swapped rows are the transformed rows
    with those columns overwritten: the preprocessing runs once instead of once per field, and
    only the final estimator sees the stacked rows. Checked against `_swap_by_predict` on the
    first rows it sees before it is trusted.
    """

    def __init__(self, pre, estimator, columns: list[np.ndarray], values: list[np.ndarray]):
        self.pre, self.estimator, self.columns, self.values = pre, estimator, columns, values
        self.checked = False

    def __call__(self, clean: pd.DataFrame) -> np.ndarray | None:
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            z = self.pre.transform(clean)
            if not isinstance(z, np.ndarray) or z.ndim != 2:
                return None
            n, k = len(z), len(self.columns)
            stacked = np.empty((k * n, z.shape[1]), dtype=z.dtype)
            for i, (cols, values) in enumerate(zip(self.columns, self.values, strict=True)):
                part = stacked[i * n:(i + 1) * n]
                part[:] = z
                part[:, cols] = values
            return self.estimator.predict_proba(stacked)[:, 1].reshape(k, n)


def _swap_plan(model, fields: list[Field], reference: dict) -> _SwapPlan | None:
    if model in _plans:
        return _plans[model]
    _plans[model] = plan = _make_swap_plan(model, fields, reference)
    return plan


def _make_swap_plan(model, fields: list[Field], reference: dict) -> _SwapPlan | None:
    pipeline = model.pipeline
    if len(pipeline) < 2 or not isinstance(pipeline[0], ColumnTransformer):
        return None
    pre, estimator = pipeline[:-1], pipeline[-1]
    base = {f.name: reference.get(f.name, f.default) for f in model.schema.fields}
    try:
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            z_ref = pre.transform(_probe(model, base, None, []))
            owner = np.full(z_ref.shape[1], -1)
            moved = {}
            for i, f in enumerate(model.schema.fields):
                variants = list(f.categories) if not f.is_number else [f.train_min, f.train_max, f.train_median]
                z = pre.transform(_probe(model, base, f.name, [*variants, None]))
                cols = np.flatnonzero((z != z[:1]).any(axis=0))
                if (owner[cols] >= 0).any():  # a column that moves with two fields: not separable
                    return None
                owner[cols] = i
                moved[f.name] = cols
    except (ValueError, TypeError, AttributeError, IndexError):
        return None
    columns = [moved[f.name] for f in fields]
    return _SwapPlan(pre, estimator, columns, [z_ref[0, cols] for cols in columns])


def _probe(model, base: dict, name: str | None, variants: list) -> pd.DataFrame:
    """The reference applicant, once per variant of one field (or once, unchanged)."""
    rows = [base] if name is None else [{**base, name: v} for v in variants]
    frame = pd.DataFrame(rows, columns=model.schema.names)
    for f in model.schema.fields:
        frame[f.name] = frame[f.name].astype(float if f.is_number else object)
    return frame
