"""Fairness on the hold-out: for every protected column (used by the model or not) and age bands.

Per group: the approval rate, its adverse impact ratio against the most-approved group (flagged
under four fifths, the EEOC's rule of thumb that fair-lending reviews borrow), the true-positive
rate among good loans (equal opportunity) and the bad-loan rate among the approved, each with a
bootstrap 95% confidence interval. The rates come from fairlearn's MetricFrame; the intervals from
one vectorized bootstrap of the rows here, because MetricFrame's own (`n_boot`) took 3 s per column
on 1,000 rows (200 resamples) against milliseconds, and cannot give the impact ratio's interval,
which needs the groups resampled together.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, selection_rate, true_positive_rate

from model.core.protected import AGE_BANDS, ProtectedColumn, card_columns
from model.registry.store import load_holdout
from model.scoring.predictor import LoanModel
from model.training.proxies import Proxy

FOUR_FIFTHS = 0.8
BOOTSTRAP = 200  # resamples: enough for a 95% interval to settle to about a point
QUANTILES = [0.025, 0.975]
NOT_GIVEN = "(not given)"
MAX_GROUPS = 12  # more distinct values than this: the smallest are pooled as "other"


@dataclass(frozen=True)
class Fairness:
    """One protected column's report; `table` has one row per group."""

    column: str
    basis: str
    used: bool  # whether the model takes this column as an input
    table: pd.DataFrame  # group, rows, approval_rate(+_low/_high), impact_ratio(+…), flagged,
    #                      tpr(+…), bad_rate(+…)

    @property
    def flagged(self) -> list[str]:
        return [str(g) for g in self.table.loc[self.table["flagged"], "group"]]

    @property
    def title(self) -> str:
        used = "used by the model" if self.used else "not used by the model"
        return f"{self.column} ({self.basis}; {used})"


def bad_rate_among_approved(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of bad loans (label 0) among the approved; NaN when the group has no approvals."""
    approved = np.asarray(y_pred) == 1
    return float(np.mean(np.asarray(y_true)[approved] == 0)) if approved.any() else float("nan")


def _tpr(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true = np.asarray(y_true)
    return float(true_positive_rate(y_true, y_pred, pos_label=1)) if np.any(y_true == 1) else float("nan")


METRICS = {"approval_rate": selection_rate, "tpr": _tpr, "bad_rate": bad_rate_among_approved}


def groups_of(values: pd.Series, age: bool = False) -> pd.Series:
    """A protected column's values as group names: age in bands, gaps as '(not given)', at most
    MAX_GROUPS groups (the rest pooled as 'other')."""
    if age:
        numbers = pd.to_numeric(values, errors="coerce")
        out = pd.Series(NOT_GIVEN, index=values.index, dtype=object)
        for label, lo, hi in AGE_BANDS:
            out[(numbers >= lo) & (numbers < hi)] = label
        return out
    if pd.api.types.is_float_dtype(values) and values.dropna().nunique() > MAX_GROUPS:
        bands = pd.qcut(values, 4, duplicates="drop")
        out = bands.astype(str).where(values.notna(), NOT_GIVEN)
        return out.astype(object)
    text = values.map(lambda v: NOT_GIVEN if v is None or (isinstance(v, float) and np.isnan(v)) else
                      (f"{v:g}" if isinstance(v, float) else str(v)))
    counts = text.value_counts()
    if len(counts) > MAX_GROUPS:
        text = text.where(text.isin(counts.index[:MAX_GROUPS - 1]), "other")
    return text.astype(object)


def fairness_of(groups: pd.Series, label: np.ndarray, approved: np.ndarray, *, column: str, basis: str,
                used: bool, n_boot: int = BOOTSTRAP, seed: int = 0, order: Sequence[str] | None = None) -> Fairness:
    """The report for one column whose rows are already named by group (`order`: how to list them)."""
    label = np.asarray(label, dtype=int)
    approved = np.asarray(approved, dtype=int)
    point = MetricFrame(metrics=METRICS, y_true=label, y_pred=approved,
                        sensitive_features=pd.Series(groups.to_numpy(), name=column)).by_group
    levels = [g for g in (order or []) if g in point.index] + [g for g in point.index if g not in (order or [])]
    point = point.reindex(levels)
    table = pd.DataFrame({"group": [str(g) for g in levels]})
    table["rows"] = groups.value_counts().reindex(levels).to_numpy()
    low, high = _bootstrap(groups.to_numpy(), np.array(levels, dtype=object), label, approved, n_boot, seed)
    for name in ("approval_rate", "impact_ratio", "tpr", "bad_rate"):
        if name == "impact_ratio":
            rate = point["approval_rate"].to_numpy(dtype=float)
            table[name] = rate / np.nanmax(rate) if np.nanmax(rate) > 0 else np.nan
        else:
            table[name] = point[name].to_numpy(dtype=float)
        table[f"{name}_low"], table[f"{name}_high"] = low[name], high[name]
        if name == "impact_ratio":
            table["flagged"] = table["impact_ratio"] < FOUR_FIFTHS
    return Fairness(column, basis, used, table)


def _rates(code: np.ndarray, k: int, label: np.ndarray, approved: np.ndarray) -> dict[str, np.ndarray]:
    """The four measures per group for rows named by group code (0..k-1); NaN where undefined."""
    def share(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(whole > 0, part / np.maximum(whole, 1), np.nan)

    rows = np.bincount(code, minlength=k)
    yes = np.bincount(code, weights=approved, minlength=k)
    good = np.bincount(code, weights=label, minlength=k)
    good_yes = np.bincount(code, weights=label * approved, minlength=k)
    rate = share(yes, rows)
    best = np.nanmax(rate) if np.isfinite(rate).any() else np.nan
    return {"approval_rate": rate, "impact_ratio": rate / best if best > 0 else np.full(k, np.nan),
            "tpr": share(good_yes, good), "bad_rate": share(yes - good_yes, yes)}


def _bootstrap(groups: np.ndarray, levels: np.ndarray, label: np.ndarray, approved: np.ndarray, n_boot: int,
               seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """95% intervals of every measure from one set of resamples of the rows (groups resampled
    together, so the most-approved group may change from one resample to the next)."""
    code = pd.Index(levels).get_indexer(groups)
    k, n = len(levels), len(groups)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[np.ndarray]] = {}
    for _ in range(n_boot):
        rows = rng.integers(0, n, n)
        for name, values in _rates(code[rows], k, label[rows], approved[rows]).items():
            draws.setdefault(name, []).append(values)
    low, high = {}, {}
    for name, stack in draws.items():
        matrix = np.vstack(stack)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a group with no approvals in some resample
            low[name], high[name] = np.nanquantile(matrix, QUANTILES, axis=0)
    return low, high


def fairness_report(holdout: pd.DataFrame, threshold: float, protected: Sequence[ProtectedColumn],
                    used: Sequence[str], n_boot: int = BOOTSTRAP, seed: int = 0) -> list[Fairness]:
    """A `Fairness` for each protected column kept in the hold-out (`label`, `probability` and the
    columns themselves); age, when found, in bands."""
    label = holdout["label"].to_numpy(dtype=int)
    approved = (holdout["probability"].to_numpy(dtype=float) >= threshold).astype(int)
    out = []
    for col in protected:
        if col.name not in holdout.columns:
            continue
        groups = groups_of(holdout[col.name], age=col.is_age)
        order = [b[0] for b in AGE_BANDS] if col.is_age else None
        out.append(fairness_of(groups, label, approved, column=col.name, basis=col.basis,
                               used=col.name in used, n_boot=n_boot, seed=seed, order=order))
    return out


def protected_columns(model: LoanModel) -> list[ProtectedColumn]:
    """The protected columns of a model: those its card records, and age from the schema of a card
    made before protected columns were recorded."""
    columns = [ProtectedColumn.from_dict(c) for c in card_columns(model.card)]
    names = {c.name for c in columns}
    columns += [ProtectedColumn(f.name, ("age",), "its name says age") for f in model.schema.fields
                if f.is_age and f.name not in names]
    return columns


def fairness(model: LoanModel, n_boot: int = BOOTSTRAP, seed: int = 0) -> list[Fairness]:
    """The fairness report of a model version, from its stored hold-out (nothing is retrained)."""
    holdout = load_holdout(model)
    return fairness_report(holdout, model.threshold, protected_columns(model), model.schema.names,
                           n_boot=n_boot, seed=seed)


def proxies(model: LoanModel) -> list[Proxy]:
    """How well the model's inputs predict each left-out protected column, as measured in training."""
    return [Proxy.from_dict(p) for p in (model.card.get("protected") or {}).get("proxies", [])]
