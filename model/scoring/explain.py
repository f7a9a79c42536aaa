"""Why a decision came out as it did, and what would change it.

The decision itself (probability, reasons, codes, refer band) comes from the one decision path,
`decisions.decide_validated`; this module adds what only a person at a form needs. Every
explanation batches its rows into as few predict calls as possible: a single-row predict costs
about as much as a 200-row one, so the applicant is scored with its swaps and curves in one call
(and a small one refines the flip points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from model.core.formatting import decision_label, format_value, with_article
from model.core.metrics import approves
from model.core.schema import Field, Schema
from model.scoring.decisions import decide_validated
from model.scoring.reasons import Reason, reason_text

if TYPE_CHECKING:
    from model.scoring.predictor import LoanModel

CURVE_POINTS = 200
REFINE_POINTS = 32
REFINE_ROUNDS = 1


@dataclass(frozen=True)
class FlipPoint:
    field: str
    value: float | None  # None: the decision does not change within the training range
    text: str
    crossings: tuple[float, ...] = ()  # every value where the decision changes, in order


@dataclass(frozen=True)
class Curve:
    field: str
    values: np.ndarray
    probabilities: np.ndarray
    current: float | None
    current_probability: float
    threshold: float
    flips: tuple[float, ...] = ()


@dataclass(frozen=True)
class Grid:
    x_field: str
    y_field: str
    xs: np.ndarray
    ys: np.ndarray
    probabilities: np.ndarray  # shape (len(ys), len(xs))
    current: tuple[float | None, float | None]
    threshold: float


@dataclass(frozen=True)
class Decision:
    applicant: dict[str, Any]
    probability: float
    threshold: float
    reasons: list[Reason]
    out_of_range: list[str]
    imputed: list[str]
    flips: dict[str, FlipPoint]
    curve: Curve | None
    model_name: str
    model_version: str
    effects: dict[str, float] = field(default_factory=dict)
    referred: bool = False  # close to the threshold, inside the model's refer band: an underwriter decides

    @property
    def approved(self) -> bool:
        return bool(approves(self.probability, self.threshold))

    @property
    def decision(self) -> int:
        return int(self.approved)

    @property
    def label(self) -> str:
        return decision_label(self.approved, self.referred)

    @property
    def reason_codes(self) -> list[str]:
        return [r.code for r in self.reasons]


# --- building blocks -------------------------------------------------------------------------
def _repeat(row: dict[str, Any], n: int) -> dict[str, np.ndarray]:
    """Column arrays holding one applicant n times, ready to be overwritten in slices."""
    return {name: np.full(n, value, dtype=float if isinstance(value, float) else object)
            for name, value in row.items()}


def value_range(schema: Schema, f: Field, row: dict[str, Any]) -> tuple[float, float]:
    """Where a field may go for this applicant: the training range, within the hard bounds and the
    cross-field rules (employment length can never exceed age − 14, so neither end may break it)."""
    lo, hi = float(f.train_min), float(f.train_max)
    if f.hard_min is not None:
        lo = max(lo, float(f.hard_min))
    if f.hard_max is not None:
        hi = min(hi, float(f.hard_max))
    if f.max_minus is not None and _finite(row.get(f.max_minus[0])):
        hi = min(hi, float(row[f.max_minus[0]]) - f.max_minus[1])
    for g in schema.fields:
        if g.max_minus is not None and g.max_minus[0] == f.name and _finite(row.get(g.name)):
            lo = max(lo, float(row[g.name]) + g.max_minus[1])
    return lo, max(lo, hi)


def view_range(schema: Schema, f: Field, row: dict[str, Any]) -> tuple[float, float]:
    """Where a chart should look: the middle 98% of training values, widened to show this applicant."""
    lo, hi = value_range(schema, f, row)
    view_lo = f.train_p01 if f.train_p01 is not None else lo
    view_hi = f.train_p99 if f.train_p99 is not None else hi
    current = row.get(f.name)
    if _finite(current):
        view_lo, view_hi = min(view_lo, current), max(view_hi, current)
    view_lo, view_hi = max(lo, view_lo), min(hi, view_hi)
    return (view_lo, view_hi) if view_hi > view_lo else (lo, hi)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def curve_grid(schema: Schema, f: Field, row: dict[str, Any], points: int = CURVE_POINTS) -> np.ndarray:
    """The values a sensitivity curve visits for this applicant, evenly spaced."""
    return np.linspace(*value_range(schema, f, row), points)


def _row(validation) -> dict[str, Any]:
    """The single validated applicant as {field: value}: floats for numbers, objects for categories."""
    return {name: (float(col[0]) if col.dtype.kind == "f" else col[0]) for name, col in validation.columns.items()}


def _one_row(model, applicant: Any):
    validation = model.validate(applicant)
    validation.raise_if_errors()
    if len(validation.index) != 1:
        raise ValueError(f"expected one applicant, got {len(validation.index)} rows")
    return validation


def _crossings(values: np.ndarray, probs: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Index pairs (i, i+1) between which the decision changes."""
    approved = approves(probs, threshold)
    return [(i, i + 1) for i in np.flatnonzero(approved[:-1] != approved[1:])]


def _refine(model, row: pd.DataFrame, brackets: list[tuple[str, float, float]]) -> list[float]:
    """Narrow each (field, lo, hi) bracket around a decision change, all fields in one call a round.

    A k-ary bisection: each round evaluates REFINE_POINTS points inside every bracket at once and
    keeps the sub-interval where the decision changes. Returns the approved end of each bracket.
    """
    threshold = model.threshold
    current = list(brackets)
    ends = [lo for _, lo, _ in current]
    for _ in range(REFINE_ROUNDS if current else 0):
        grids = [np.linspace(lo, hi, REFINE_POINTS) for _, lo, hi in current]
        cols = _repeat(row, REFINE_POINTS * len(current))
        for k, ((name, _, _), grid) in enumerate(zip(current, grids, strict=True)):
            cols[name][k * REFINE_POINTS:(k + 1) * REFINE_POINTS] = grid
        probs = model.score_columns(cols)
        for k, ((name, lo, hi), grid) in enumerate(zip(current, grids, strict=True)):
            p = probs[k * REFINE_POINTS:(k + 1) * REFINE_POINTS]
            pairs = _crossings(grid, p, threshold)
            if pairs:  # always, unless the model is not deterministic
                i, j = pairs[0]
                current[k] = (name, grid[i], grid[j])
                ends[k] = grid[i] if approves(float(p[i]), threshold) else grid[j]
            else:
                ends[k] = lo if approves(float(p[0]), threshold) else hi
    return [float(e) for e in ends]


def _display_unit(f: Field) -> float:
    """The step a flip point is shown to: a thousandth of the training range (a whole unit at least
    for whole numbers), so a flip at 0.545 reads 0.545, never 0.5."""
    span = float(f.train_max) - float(f.train_min)
    unit = 10 ** math.floor(math.log10(span / 1000)) if span > 0 else 1
    return max(unit, 1.0) if f.integer else unit


def flip_decimals(f: Field) -> int:
    """Decimals that show a flip point of `f` to its display unit."""
    return max(0, -math.floor(math.log10(_display_unit(f)) + 1e-9))


def _round_towards_approval(f: Field, value: float, lower_is_approved: bool) -> float:
    """Round for display so that the shown value is itself still approved."""
    unit = _display_unit(f)
    rounded = (math.floor if lower_is_approved else math.ceil)(value / unit) * unit
    return float(round(rounded, flip_decimals(f) + 2))


def _approved_spans(grid: np.ndarray, probs: np.ndarray, threshold: float,
                    crossings: list[float]) -> list[tuple[float, float]]:
    """The stretches of the curve's range where the applicant is approved, their ends at the
    refined crossings (in order)."""
    edges = [float(grid[0]), *crossings, float(grid[-1])]
    approved_first = bool(approves(probs[0], threshold))
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1) if (i % 2 == 0) == approved_first]


def flip_sentence(f: Field, value: float | None, grid: np.ndarray, curve_probs: np.ndarray, threshold: float,
                  crossings: tuple[float, ...] = ()) -> str:
    label = f.label.lower()
    digits = flip_decimals(f)
    rng = f"{format_value(f, grid[0])} to {format_value(f, grid[-1])}"
    if len(crossings) > 1:
        spans = _approved_spans(grid, curve_probs, threshold, list(crossings))
        parts = [f"{format_value(f, lo, digits)} to {format_value(f, hi, digits)}" for lo, hi in spans]
        return f"Approved with {with_article(label)} from " + " or from ".join(parts)
    if value is None:
        if np.all(approves(curve_probs, threshold)):
            return f"Approved at any {label} from {rng}"
        if not np.any(approves(curve_probs, threshold)):
            return f"No {label} from {rng} would get this applicant approved"
        return f"The decision changes more than once as {label} varies"
    shown = format_value(f, value, digits)
    if approves(curve_probs[-1], threshold):  # approved above the flip point
        return f"Approved from {with_article(label)} of {shown}"
    if f.monotone < 0:
        return f"Largest {label} approvable for this applicant: {shown}"
    return f"Approved up to {with_article(label)} of {shown}"


# --- the public explanations -----------------------------------------------------------------
def decide(model: LoanModel, applicant: Any, curve_field: str | None = None) -> Decision:
    """One applicant's decision from the one decision path (`decisions.decide_validated`: decision,
    reasons and their codes, refer band, out-of-range, imputed), explained on top of it: each
    field's effect, the flip points and the curve. The applicant is scored in the same call as its
    swaps and curves, so the whole costs two predict calls (the second refines the flip points)."""
    validation = _one_row(model, applicant)
    row = _row(validation)
    schema = model.schema
    reference = model.card.reference
    # What would change the decision: every number but a prohibited basis (nobody is told to be
    # older or of another race), monotone or not, wherever its curve crosses the threshold.
    flip_fields = [f for f in schema.fields if f.is_number and not f.protected and f.train_max > f.train_min]
    curve_fields = [f.name for f in flip_fields]
    text_curve = bool(curve_field) and not schema[curve_field].is_number
    if curve_field and not text_curve and curve_field not in curve_fields:
        curve_fields.append(curve_field)
    swap_fields = [f for f in schema.fields if f.name in reference]

    n_swaps = len(swap_fields)
    total = 1 + n_swaps + CURVE_POINTS * len(curve_fields)
    cols = _repeat(row, total)
    for k, f in enumerate(swap_fields):
        cols[f.name][1 + k] = reference[f.name]
    grids = {}
    for k, name in enumerate(curve_fields):
        grids[name] = curve_grid(schema, schema[name], row)
        start = 1 + n_swaps + k * CURVE_POINTS
        cols[name][start:start + CURVE_POINTS] = grids[name]
    probs = model.score_columns(cols)
    head = 1 + n_swaps  # the applicant, then the applicant with each field swapped for the reference's
    lo = model.log_odds({name: col[:head] for name, col in cols.items()}, probs[:head])
    decided = decide_validated(model, validation, probability=probs[:1], odds=(lo[:1], lo[1:head, None]))
    p = float(decided.probability[0])
    threshold = model.threshold
    effects = {f.name: p - float(probs[1 + k]) for k, f in enumerate(swap_fields)}
    values = row
    # The reasons are the one path's, in its order; worded here with the applicant's own values.
    combination = int(decided.reason_index[0])
    direction = "for" if approves(p, threshold) else "against"
    reasons = [Reason(name, effects[name], direction, reason_text(schema[name], values[name], reference[name]), code)
               for name, code in zip(decided.field_lists[combination], decided.code_lists[combination], strict=True)]

    curve_probs = {}
    brackets = []
    for k, name in enumerate(curve_fields):
        start = 1 + n_swaps + k * CURVE_POINTS
        curve_probs[name] = probs[start:start + CURVE_POINTS]
        brackets += [(name, grids[name][i], grids[name][j])
                     for i, j in _crossings(grids[name], curve_probs[name], threshold)]
    crossings: dict[str, list[float]] = {}
    for (name, _, _), end in zip(brackets, _refine(model, row, brackets), strict=True):
        crossings.setdefault(name, []).append(end)

    flips = {}
    for f in flip_fields:
        points = crossings.get(f.name, [])
        value = None
        if len(points) == 1:  # one flip: shown rounded to the side that is still approved
            approved_above = bool(approves(curve_probs[f.name][-1], threshold))
            value = _round_towards_approval(f, points[0], lower_is_approved=not approved_above)
        elif points:  # several: the one nearest this applicant
            value = min(points, key=lambda v: abs(v - float(row[f.name])) if _finite(row[f.name]) else 0)
        flips[f.name] = FlipPoint(f.name, value, flip_sentence(f, value, grids[f.name], curve_probs[f.name],
                                                               threshold, tuple(points)), tuple(points))

    curve = None
    if text_curve:
        curve = sensitivity_curve(model, applicant, curve_field)  # one small call over the categories
    elif curve_field:
        shown = flips.get(curve_field)
        points = tuple(crossings.get(curve_field, ()))
        flips_here = ((shown.value,) if len(points) < 2 and shown is not None and shown.value is not None
                      else points)
        curve = Curve(curve_field, grids[curve_field], curve_probs[curve_field],
                      values[curve_field], p, threshold, flips_here)
    return Decision(
        applicant={k: _plain(v) for k, v in values.items()},
        probability=p, threshold=threshold, reasons=reasons,
        out_of_range=validation.fields_flagged(validation.out_of_range, 0),
        imputed=validation.fields_flagged(validation.imputed, 0),
        flips=flips, curve=curve, model_name=model.name, model_version=model.version,
        effects=effects, referred=bool(decided.referred[0]),
    )


def sensitivity_curve(model: LoanModel, applicant: Any, field_name: str, points: int = CURVE_POINTS) -> Curve:
    """Approval probability across one field's training range, all else fixed, in one call."""
    row = _row(_one_row(model, applicant))
    f = model.schema[field_name]
    values = curve_grid(model.schema, f, row, points) if f.is_number else np.array(f.categories, dtype=object)
    cols = _repeat(row, len(values) + 1)
    cols[field_name][1:] = values
    probs = model.score_columns(cols)
    curve_probs = probs[1:]
    flips: tuple[float, ...] = ()
    if f.is_number:
        pairs = _crossings(values, curve_probs, model.threshold)
        brackets = [(field_name, values[i], values[j]) for i, j in pairs]
        flips = tuple(_refine(model, row, brackets)) if brackets else ()
    current = row[field_name]
    return Curve(field_name, values, curve_probs, _plain(current), float(probs[0]),
                 model.threshold, flips)


def grid_2d(model: LoanModel, applicant: Any, x_field: str, y_field: str, points: int = 40) -> Grid:
    """Approval probability over two numeric fields' training ranges, in one call."""
    if x_field == y_field:
        raise ValueError("choose two different fields")
    row = _row(_one_row(model, applicant))
    fx, fy = model.schema[x_field], model.schema[y_field]
    for f in (fx, fy):
        if not f.is_number:
            raise ValueError(f"{f.name} is not a number field")
    xs = np.linspace(*view_range(model.schema, fx, row), points)
    ys = np.linspace(*view_range(model.schema, fy, row), points)
    gx, gy = np.meshgrid(xs, ys)
    cols = _repeat(row, gx.size)
    cols[x_field][:] = gx.ravel()
    cols[y_field][:] = gy.ravel()
    probs = model.score_columns(cols).reshape(gx.shape)
    return Grid(x_field, y_field, xs, ys, probs,
                (_plain(row[x_field]), _plain(row[y_field])), model.threshold)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value

