"""Everything the Monitoring page shows for one model, from the database's grouped counts.

`overview` runs the page's queries (decisions per day, the kept bins, realized performance) and
turns their small results into the figures; the page only draws them, and `bench/bench_monitoring.py`
times exactly this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from model.records.log import DecisionLog

from . import performance as perf
from . import queries as q
from .report import FieldDrift, age_field


@dataclass
class Overview:
    scope: q.Scope
    activity: pd.DataFrame  # per day, version and simulated flag, within the scope
    daily: pd.DataFrame
    decisions: int
    approved: int
    simulated: int
    with_out_of_range: int
    binning: q.Binning
    drift: list[FieldDrift]
    out_of_range: pd.DataFrame
    age_bands: pd.DataFrame | None  # None: the model has no age field
    probability_bins: np.ndarray  # decisions per five-point probability bin
    probability_deciles: np.ndarray  # decisions per hold-out probability decile
    holdout_deciles: np.ndarray  # the hold-out's share per decile
    reference: perf.Reference
    by_month: pd.DataFrame  # realized performance per month and version, assessed
    overall: pd.DataFrame  # the same over the whole scope (one row, or none without outcomes)
    outcomes_of_rejections: int
    expected: pd.DataFrame  # per month and version: approvals and their expected bad rate

    @property
    def approval_rate(self) -> float:
        return self.approved / self.decisions if self.decisions else float("nan")

    @property
    def probability_psi(self) -> float:
        from .report import psi

        n = self.probability_deciles.sum()
        return psi(self.holdout_deciles, self.probability_deciles / n) if n else float("nan")

    @property
    def alerts(self) -> list[tuple[str, str, str]]:
        """(month, version, what) for every realized figure outside its expected range."""
        return [(r["month"], r["model_version"], a) for _, r in self.by_month.iterrows() for a in r["alerts"]]


def overview(log: DecisionLog, model, scope: q.Scope, holdout: pd.DataFrame) -> Overview:
    """The page's figures for `scope`, measured against `model` (the reference version) and its hold-out."""
    holdout_p = holdout["probability"].to_numpy(dtype=float)
    binning = q.Binning.of(model, holdout_p, age_field(model))  # 'age', 'Age', 'AGE_YEARS' alike
    kept = q.counts(log, binning, scope)
    by_month, overall, rejected = perf.kept_realized(log, scope)
    shown, bins = kept.activity, kept.bins
    decisions = int(shown["decisions"].sum())
    five, deciles = q.probability_counts(bins, binning)
    counts = np.bincount(np.searchsorted(binning.probability_edges, holdout_p, side="right"),
                         minlength=len(binning.probability_edges) + 1)
    ref = perf.reference(holdout, model.threshold)
    return Overview(
        scope=scope, activity=shown, daily=q.daily(shown), decisions=decisions,
        approved=int(shown["approved"].sum()), simulated=int(shown.loc[shown["simulated"], "decisions"].sum()),
        with_out_of_range=int(shown["out_of_range"].sum()), binning=binning,
        drift=q.drift_from_bins(model, binning, bins),
        out_of_range=q.out_of_range_from_bins(model, bins, decisions),
        age_bands=q.age_bands_from_bins(bins) if binning.age else None,
        probability_bins=five, probability_deciles=deciles, holdout_deciles=counts / counts.sum(),
        reference=ref, by_month=perf.assess(by_month, ref), overall=perf.assess(overall, ref),
        outcomes_of_rejections=rejected, expected=expected_bad_rates(shown),
    )


def expected_bad_rates(activity: pd.DataFrame) -> pd.DataFrame:
    """Per month and version: approvals and the bad rate their calibrated probabilities predict."""
    months = activity.assign(month=activity["day"].str[:7])
    out = months.groupby(["month", "model_version"], as_index=False)[["approved", "expected_bad"]].sum()
    out["expected_bad_rate"] = out["expected_bad"] / out["approved"].where(out["approved"] > 0)
    return out.sort_values(["month", "model_version"]).reset_index(drop=True)
