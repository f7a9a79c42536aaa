"""How a fitted model's approval moves as each number rises, measured rather than assumed.

A pipeline trained elsewhere comes with no promise about its directions: approval may fall as income
rises, or, unlawfully, as age rises. Each numeric field is swept over a grid of its range for a
sample of real applicants, everything else held fixed, in one predict call per field; the direction
is what every applicant's curve does. Age (any column whose name says so) must never fall.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from model.core.protected import is_age_name

GRID_POINTS = 25  # values per field, evenly spaced over the range seen in the data
SAMPLE_ROWS = 200  # applicants whose curves are measured
TOLERANCE = 1e-9  # a change in probability smaller than this is rounding, not a direction

Score = Callable[[pd.DataFrame], np.ndarray]  # rows → approval probability


@dataclass(frozen=True)
class Direction:
    """What approval does as one field rises, across the sampled applicants."""

    field: str
    direction: str  # "rises", "falls", "flat" (no effect) or "mixed"
    rows: int  # applicants measured
    rows_rising: int  # whose approval rises somewhere as the field rises
    rows_falling: int  # whose approval falls somewhere as the field rises
    largest_fall: float  # the largest drop in approval probability as the field rises (0: none)
    fall_row: int | None = None  # the labelled row (numbered from 1) where that drop happens
    fall_from: float | None = None  # the field's value where that row's approval was highest ...
    fall_to: float | None = None  # ... and where it had fallen the most
    p_from: float | None = None
    p_to: float | None = None

    @property
    def monotone(self) -> int:
        """+1, −1 or 0, as the schema records a direction."""
        return {"rises": 1, "falls": -1}.get(self.direction, 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Direction:
        return cls(**data)

    def sentence(self, label: str | None = None) -> str:
        """'Approval rises as age rises (200 of 200 applicants).' and, for a fall, where it is largest."""
        label = label or self.field
        if self.direction == "flat":
            return f"{label} does not move approval for any of the {self.rows:,} applicants tested."
        if self.direction == "rises":
            return f"Approval never falls as {label} rises (it rises for {self.rows_rising:,} of {self.rows:,})."
        text = (f"Approval falls as {label} rises for {self.rows_falling:,} of {self.rows:,} applicants tested"
                + (f" (and rises for {self.rows_rising:,})" if self.rows_rising else "") + ".")
        if self.fall_row is not None:
            text += (f" Largest fall: labelled row {self.fall_row}, from {self.p_from:.1%} at {label} "
                     f"{self.fall_from:g} to {self.p_to:.1%} at {self.fall_to:g}.")
        return text


def phrase(d: Direction, label: str) -> str:
    """'rises with income', 'falls with loan amount', 'is not moved by region', 'goes both ways with age'."""
    return {"rises": f"rises with {label}", "falls": f"falls with {label}", "flat": f"is not moved by {label}"
            }.get(d.direction, f"goes both ways with {label}")


def measure(score: Score, frame: pd.DataFrame, fields: Iterable[str], *, rows: int = SAMPLE_ROWS,
            points: int = GRID_POINTS) -> dict[str, Direction]:
    """The direction of every field in `fields` (numbers) over its range in `frame`.

    `frame` holds the applicants (index = row number from 0), in the columns `score` expects.
    """
    sample = frame.iloc[np.unique(np.linspace(0, len(frame) - 1, min(rows, len(frame))).astype(int))]
    out = {}
    for name in fields:
        values = frame[name].astype(float).dropna()
        if values.empty or values.min() == values.max():
            out[name] = Direction(name, "flat", len(sample), 0, 0, 0.0)
            continue
        grid = np.unique(np.linspace(values.min(), values.max(), points))
        if np.all(np.mod(values, 1) == 0):
            grid = np.unique(np.round(grid))
        out[name] = _sweep(score, sample, name, grid)
    return out


def _sweep(score: Score, sample: pd.DataFrame, name: str, grid: np.ndarray) -> Direction:
    n, k = len(sample), len(grid)
    rows = sample.loc[sample.index.repeat(k)].reset_index(drop=True)
    rows[name] = np.tile(grid, n)
    p = np.asarray(score(rows), dtype=float).reshape(n, k)
    steps = np.diff(p, axis=1)
    rising = (steps > TOLERANCE).any(axis=1)
    falling = (steps < -TOLERANCE).any(axis=1)
    direction = ("mixed" if rising.any() and falling.any() else "rises" if rising.any()
                 else "falls" if falling.any() else "flat")
    peak = np.maximum.accumulate(p, axis=1)
    drop = peak - p
    r, j = np.unravel_index(int(np.argmax(drop)), drop.shape)
    largest = float(drop[r, j])
    if largest <= TOLERANCE:
        return Direction(name, direction, n, int(rising.sum()), int(falling.sum()), 0.0)
    i = int(np.argmax(p[r, :j + 1]))
    return Direction(name, direction, n, int(rising.sum()), int(falling.sum()), largest,
                     fall_row=int(sample.index[r]) + 1, fall_from=float(grid[i]), fall_to=float(grid[j]),
                     p_from=float(p[r, i]), p_to=float(p[r, j]))


def is_age_column(name: str) -> bool:
    """Whether a column's name says it is the applicant's age ('age', 'Age', 'AGE_YEARS', 'applicantAge'),
    not the age of an account or a birth date: the fair-lending rule book's rule, one for all of LoanDesk."""
    return is_age_name(name)
