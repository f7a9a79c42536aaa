"""Watching a deployed model through its decision log: activity, drift, out-of-range inputs, fairness.

Plain pandas over the frame `DecisionLog.read` returns, so a notebook or a scheduled job can run the
same checks as the Monitoring page.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd

from model.core.formatting import format_value
from model.core.schema import Field
from model.records.log import DecisionLog, LogResult, entries_for, inputs_frame, new_decision_ids
from model.scoring.decisions import decide
from model.scoring.predictor import LoanModel
from model.training.data import generate_applicants

PSI_EPSILON = 1e-4  # stands in for an empty bin's share, so that ln(a/e) stays finite
PSI_WATCH = 0.1
PSI_ACT = 0.25
MIN_DRIFT_SAMPLE = 50  # below this, PSI mostly measures sampling noise
AGE_BANDS = (("18–24", 18, 25), ("25–39", 25, 40), ("40–61", 40, 62), ("62+", 62, np.inf))
FOUR_FIFTHS = 0.8
MIN_BAND_SIZE = 30  # a band with fewer decisions gives a rate too noisy to judge by
LOG_ROWS_SHOWN = 500
SIMULATED_SAMPLE_SIZE = 300
SIMULATION_SOURCE = "simulation"
SIMULATION_SEED_SHIFT = 1_000
# How the simulated sample drifts: poorer applicants with weaker credit than in training.
SIMULATED_SHIFTS = {"income": ("scale", 0.7), "credit_score": ("add", -60.0)}
SIMULATED_BEYOND_RANGE = 0.03  # and a few values past the training range, for the out-of-range section


# --- activity ------------------------------------------------------------------------------------
def daily_activity(log: pd.DataFrame) -> pd.DataFrame:
    """Per UTC day with decisions: decisions, approved, rejected and the approval rate."""
    if log.empty:
        return pd.DataFrame(columns=["day", "decisions", "approved", "rejected", "approval_rate"])
    day = log["decided_at"].dt.tz_convert("UTC").dt.floor("D").rename("day")
    out = log["decision"].astype(int).groupby(day).agg(decisions="size", approved="sum").reset_index()
    out["rejected"] = out["decisions"] - out["approved"]
    out["approval_rate"] = out["approved"] / out["decisions"]
    return out


# --- population stability ------------------------------------------------------------------------
def psi(expected: np.ndarray | list[float], actual: np.ndarray | list[float], epsilon: float = PSI_EPSILON) -> float:
    """Population Stability Index: sum((a − e) · ln(a / e)) over bins, empty bins set to `epsilon`."""
    e = np.clip(np.asarray(expected, dtype=float), epsilon, None)
    a = np.clip(np.asarray(actual, dtype=float), epsilon, None)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_band(value: float) -> str:
    """The usual reading: under 0.1 stable, 0.1 to 0.25 watch, over 0.25 act."""
    if value > PSI_ACT:
        return "act"
    return "watch" if value >= PSI_WATCH else "stable"


@dataclass(frozen=True)
class FieldDrift:
    """One field's recent distribution against its training distribution, bin by bin."""

    field: str
    bins: list[str]  # bin labels written for people
    expected: np.ndarray  # training shares (from the model card)
    actual: np.ndarray  # recent shares
    n: int  # recent values that were given

    @property
    def psi(self) -> float:
        return psi(self.expected, self.actual) if self.n else float("nan")

    @property
    def band(self) -> str:
        return psi_band(self.psi) if self.n else "no data"


def field_drift(f: Field, spec: dict[str, list], values: pd.Series) -> FieldDrift:
    """Bin recent values exactly as training was binned (`model.training.train.drift_bins`)."""
    values = values.dropna()
    if "edges" in spec:
        edges = np.asarray(spec["edges"], dtype=float)
        numbers = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
        counts = np.bincount(np.searchsorted(edges, numbers, side="right"), minlength=len(edges) + 1)
    else:
        text = values.astype(str)
        known = list(spec["categories"])
        counts = np.array([int((text == c).sum()) for c in known] + [int((~text.isin(known)).sum())])
    return field_drift_from_counts(f, spec, counts)


def field_drift_from_counts(f: Field, spec: dict[str, list], counts: np.ndarray) -> FieldDrift:
    """A field's drift from how many recent values fell in each training bin (the last one: unseen categories)."""
    counts = np.asarray(counts, dtype=int)
    if "edges" in spec:
        labels = _range_labels(f, np.asarray(spec["edges"], dtype=float))
        expected = np.asarray(spec["shares"], dtype=float)
    else:
        labels = [*spec["categories"], "(not seen in training)"]
        expected = np.append(np.asarray(spec["shares"], dtype=float), 0.0)
    n = int(counts.sum())
    actual = counts / n if n else np.zeros(len(counts))
    return FieldDrift(f.name, labels, expected, actual, n)


def _range_labels(f: Field, edges: np.ndarray) -> list[str]:
    """"$35,590–$42,400", "24–27": money keeps its sign, other units go on the axis title."""
    shown = [format_value(f, e) if f.unit == "$" else f"{e:,.0f}" if float(e).is_integer() else f"{e:,.1f}"
             for e in edges]
    if not shown:
        return ["all values"]
    middle = [f"{lo}–{hi}" for lo, hi in pairwise(shown)]
    return [f"under {shown[0]}", *middle, f"{shown[-1]} and over"]


def drift(model: LoanModel, log: pd.DataFrame) -> list[FieldDrift]:
    """Every input with training bins in the model card, against the log's recent inputs."""
    bins = model.card.drift_bins
    inputs = inputs_frame(log)
    out = []
    for f in model.schema.fields:
        if f.name not in bins:
            continue
        values = inputs[f.name] if f.name in inputs.columns else pd.Series(dtype=object)
        out.append(field_drift(f, bins[f.name], values))
    return out


def drift_table(model: LoanModel, drifts: list[FieldDrift]) -> pd.DataFrame:
    """One row per field: label, PSI, band, how many recent values."""
    return pd.DataFrame({
        "field": [d.field for d in drifts],
        "label": [model.schema[d.field].label for d in drifts],
        "psi": [d.psi for d in drifts],
        "band": [d.band for d in drifts],
        "values": [d.n for d in drifts],
    })


def probability_psi(holdout_probabilities: np.ndarray, recent: np.ndarray, bins: int = 10) -> float:
    """Score drift: PSI of recent approval probabilities against the hold-out's, on its deciles."""
    recent = np.asarray(recent, dtype=float)
    if len(recent) == 0:
        return float("nan")
    edges = np.unique(np.quantile(holdout_probabilities, np.linspace(0, 1, bins + 1)))[1:-1]
    shares = [np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1) / len(x)
              for x in (np.asarray(holdout_probabilities, dtype=float), recent)]
    return psi(shares[0], shares[1])


# --- out-of-range inputs -------------------------------------------------------------------------
def out_of_range_counts(model: LoanModel, log: pd.DataFrame) -> pd.DataFrame:
    """Per numeric field: how many logged decisions had it outside the training range, and what share."""
    names = log["out_of_range"].fillna("").str.split(r"\s*[,;]\s*", regex=True) if len(log) else pd.Series()
    flagged = pd.Series([n for row in names for n in row if n]).value_counts()
    fields = [f for f in model.schema.fields if f.is_number]
    extra = [n for n in flagged.index if n not in model.schema]  # logged by another model's schema
    counts = [int(flagged.get(f.name, 0)) for f in fields] + [int(flagged[n]) for n in extra]
    total = len(log)
    return pd.DataFrame({
        "field": [f.name for f in fields] + extra,
        "label": [f.label for f in fields] + extra,
        "range": [f"{format_value(f, f.train_min)} to {format_value(f, f.train_max)}" for f in fields]
                 + ["(not in this model)"] * len(extra),
        "count": counts,
        "share": [c / total if total else 0.0 for c in counts],
    })


def out_of_range_share(log: pd.DataFrame) -> float:
    """The share of decisions with at least one input outside the training range."""
    return float((log["out_of_range"].fillna("") != "").mean()) if len(log) else 0.0


# --- fairness ------------------------------------------------------------------------------------
def age_field(model: LoanModel) -> str | None:
    """The model's age field, whatever its name or case ('age', 'Age', 'AGE_YEARS'), or None."""
    return next((f.name for f in model.schema.fields if f.is_age), None)


def fairness_applicable(model: LoanModel) -> bool:
    return age_field(model) is not None


def age_bands(log: pd.DataFrame, field: str = "age") -> pd.DataFrame:
    """Approval rate per age band, its ratio to the best band's, flagged under four fifths."""
    ages = pd.to_numeric(inputs_frame(log).get(field, pd.Series(index=log.index, dtype=float)), errors="coerce")
    labels = [b[0] for b in AGE_BANDS]
    edges = [b[1] for b in AGE_BANDS] + [np.inf]
    band = pd.cut(ages, bins=edges, right=False, labels=labels)
    grouped = log["decision"].astype(int).groupby(band, observed=False)
    counts = pd.DataFrame({"decisions": grouped.size(), "approved": grouped.sum()}).reindex(labels).fillna(0)
    return band_table(counts["decisions"].to_numpy(), counts["approved"].to_numpy())


def band_table(decisions: np.ndarray, approved: np.ndarray) -> pd.DataFrame:
    """The age-band table from decisions and approvals per band, in AGE_BANDS order."""
    out = pd.DataFrame({"band": [b[0] for b in AGE_BANDS], "decisions": np.asarray(decisions, dtype=int),
                        "approved": np.asarray(approved, dtype=int)})
    out["approval_rate"] = out["approved"] / out["decisions"].where(out["decisions"] > 0)
    best = out["approval_rate"].max()
    out["ratio_to_highest"] = out["approval_rate"] / best if best and best > 0 else np.nan
    out["flagged"] = out["ratio_to_highest"] < FOUR_FIFTHS
    return out


# --- a simulated drifted sample (for demos) --------------------------------------------------------
def simulated_sample(model: LoanModel, n: int = SIMULATED_SAMPLE_SIZE, seed: int = 0) -> pd.DataFrame:
    """Applicants unlike the training data, to show what drift alerts look like.

    The built-in fields come from the applicant generator on another seed; a model trained on
    another CSV resamples its own hold-out. Then incomes fall by 30% and credit scores by 60 points
    (or, without those fields, every number moves half a standard deviation down), kept within
    each field's hard bounds. A few rows get one number past its training maximum.
    """
    rng = np.random.default_rng(seed)
    names = model.schema.names
    generated = generate_applicants(n, seed=seed + SIMULATION_SEED_SHIFT)
    if set(names) <= set(generated.columns):
        sample = generated[names].astype({f: float for f in model.schema.numbers})
    else:
        from model.registry.store import load_holdout

        holdout = load_holdout(model)
        sample = holdout[names].iloc[rng.integers(0, len(holdout), n)].reset_index(drop=True)
    shifts = {k: v for k, v in SIMULATED_SHIFTS.items() if k in model.schema.numbers}
    if not shifts:
        shifts = {f.name: ("add", -0.5 * (f.train_std or 0.0)) for f in model.schema.fields if f.is_number}
    for name, (how, amount) in shifts.items():
        f = model.schema[name]
        moved = sample[name] * amount if how == "scale" else sample[name] + amount
        moved = moved.clip(lower=_lowest(f), upper=f.hard_max)
        sample[name] = moved.round() if f.integer else moved
    beyond = [f for f in model.schema.fields if f.is_number and f.max_minus is None and f.train_std
              and (f.hard_max is None or f.hard_max > (f.train_max or 0.0))]
    if beyond:
        rows = np.flatnonzero(rng.random(n) < SIMULATED_BEYOND_RANGE)
        for row, k in zip(rows, rng.integers(0, len(beyond), len(rows)), strict=True):
            f = beyond[k]
            value = min(f.train_max + 0.5 * f.train_std, f.hard_max if f.hard_max is not None else np.inf)
            sample.loc[row, f.name] = np.ceil(value) if f.integer else value
    return sample


def _lowest(f: Field) -> float | None:
    """The smallest value validation accepts: the hard minimum, and never below 0 if training never was."""
    floors = [v for v in (f.hard_min, 0.0 if (f.train_min or 0) >= 0 else None) if v is not None]
    return max(floors) if floors else None


def log_simulated_sample(model: LoanModel, log: DecisionLog, n: int = SIMULATED_SAMPLE_SIZE, seed: int = 0,
                         officer: str | None = None) -> LogResult:
    """Score a simulated drifted sample and put it on record, marked simulated."""
    decided = decide(model, simulated_sample(model, n, seed))
    return log.record(entries_for(model, decided, source=SIMULATION_SOURCE, simulated=True, officer=officer,
                                  decision_ids=new_decision_ids(len(decided))))
