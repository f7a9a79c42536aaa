"""Realized performance: how the model did on the loans whose outcomes are known, against its hold-out.

Only approved decisions become loans, so only they have outcomes: realized figures are computed on
the approved decisions with an outcome, and compared with the hold-out's figures *on the rows it
would approve* (the whole hold-out's AUC would be higher and raise false alarms). Everything is
grouped in the database (`realized`): per month and version, the number of good and bad loans, the
pairs the model ranked right (the Mann–Whitney count behind the AUC), and the predicted bad count
with its variance. Intervals are 95%: Hanley–McNeil for an AUC, Wilson for a rate, and the
binomial spread of the predicted count for calibration. A figure outside the range the hold-out
leads one to expect for that many outcomes raises an alert.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sqlalchemy import Connection, delete, func, insert, select

from model.core.formatting import percent
from model.records.log import DecisionLog
from model.records.tables import monitoring_results, outcomes

from .queries import Scope, utc_month

log = logging.getLogger("loandesk.monitoring")

Z = 1.959963984540054  # two-sided 95%
MIN_OUTCOMES = 30  # fewer outcomes than this in a group give figures too noisy to alert on
PERFORMANCE_COLUMNS = ["outcomes", "good", "bad", "ranked_right", "predicted_bad", "predicted_var"]


# --- intervals ------------------------------------------------------------------------------------
def auc_se(auc: float, good: int, bad: int) -> float:
    """Hanley & McNeil (1982): the standard error of an AUC from `good` positives and `bad` negatives."""
    if good < 1 or bad < 1 or not math.isfinite(auc):
        return float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (good - 1) * (q1 - auc * auc) + (bad - 1) * (q2 - auc * auc)) / (good * bad)
    return math.sqrt(max(var, 0.0))


def wilson(k: float, n: float) -> tuple[float, float]:
    """The Wilson score interval of a proportion k/n."""
    if n <= 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# --- the hold-out, on the rows it would approve -----------------------------------------------------
@dataclass(frozen=True)
class Reference:
    """The hold-out's figures among the applicants it would approve, with their standard errors."""

    auc: float
    auc_se: float
    bad_rate: float
    approved: int
    predicted_bad_rate: float

    @property
    def bad_rate_interval(self) -> tuple[float, float]:
        return wilson(self.bad_rate * self.approved, self.approved)

    @property
    def auc_interval(self) -> tuple[float, float]:
        return self.auc - Z * self.auc_se, self.auc + Z * self.auc_se


def reference(holdout: pd.DataFrame, threshold: float) -> Reference:
    """The figures realized performance is held against, from the stored hold-out."""
    approved = holdout[holdout["probability"] >= threshold]
    y = approved["label"].to_numpy(dtype=int)
    p = approved["probability"].to_numpy(dtype=float)
    good, bad = int(y.sum()), int(len(y) - y.sum())
    auc = float(roc_auc_score(y, p)) if good and bad else float("nan")
    return Reference(auc=auc, auc_se=auc_se(auc, good, bad), bad_rate=bad / len(y) if len(y) else float("nan"),
                     approved=len(y), predicted_bad_rate=float((1 - p).mean()) if len(p) else float("nan"))


# --- in the database ------------------------------------------------------------------------------
def realized(conn: Connection, scope: Scope) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(per month and version, over the whole scope, outcomes of rejections), in one query.

    Over approved decisions with a current outcome: outcomes, good, bad, the good–bad pairs ranked
    right (ties count half) and the predicted bad count (sum of 1 − p) with its variance (sum of
    p(1 − p)). Outcomes recorded for rejected decisions are only counted: those applicants got no
    loan from the model's decision.
    """
    o = outcomes.c
    rows = (select(utc_month(o.decided_at).label("month"), o.model_version, o.decision,
                   o.probability.label("p"), o.outcome.label("g"))
            .where(o.is_current.is_(True), *scope.clauses(outcomes, simulated="decision_simulated"))).subquery("rows")
    c = rows.c
    # Per row, the bad (and good) loans scored at or below it, ties included, within its month and
    # version, and over the whole scope: one sort for each. Summed over the good loans and the bad
    # ones, they give the pairs ranked right with ties counting half (see _pairs).
    group = [c.month, c.model_version, c.decision]
    ranked = select(
        *group, c.p, c.g,
        func.sum(1 - c.g).over(partition_by=group, order_by=c.p).label("bad_upto"),
        func.sum(c.g).over(partition_by=group, order_by=c.p).label("good_upto"),
        func.sum(1 - c.g).over(partition_by=c.decision, order_by=c.p).label("bad_upto_all"),
        func.sum(c.g).over(partition_by=c.decision, order_by=c.p).label("good_upto_all"),
    ).subquery("ranked")
    r = ranked.c
    q = (select(r.month, r.model_version, r.decision, func.count(), func.sum(r.g), func.sum(1 - r.g),
                func.sum(r.g * r.bad_upto), func.sum((1 - r.g) * r.good_upto),
                func.sum(r.g * r.bad_upto_all), func.sum((1 - r.g) * r.good_upto_all),
                func.sum(1.0 - r.p), func.sum(r.p * (1.0 - r.p)))
         .group_by(r.month, r.model_version, r.decision).order_by(r.month, r.model_version))
    columns = ["month", "model_version", "decision", "outcomes", "good", "bad", "good_over", "bad_over",
               "good_over_all", "bad_over_all", "predicted_bad", "predicted_var"]
    frame = pd.DataFrame(conn.execute(q).all(), columns=columns)
    frame = frame.astype({c: float for c in columns[6:]} | {c: int for c in columns[2:6]})
    frame["ranked_right"] = _pairs(frame["good_over"], frame["bad_over"], frame["good"] * frame["bad"])
    approved = frame[frame["decision"] == 1]
    by_month = approved[["month", "model_version", *PERFORMANCE_COLUMNS]].reset_index(drop=True)
    whole = approved[["outcomes", "good", "bad", "good_over_all", "bad_over_all", "predicted_bad",
                      "predicted_var"]].sum()
    whole["ranked_right"] = _pairs(whole["good_over_all"], whole["bad_over_all"], whole["good"] * whole["bad"])
    overall = (pd.DataFrame([whole])[PERFORMANCE_COLUMNS].astype(by_month.dtypes[PERFORMANCE_COLUMNS].to_dict())
               if len(approved) else by_month.iloc[:0, 2:])
    return by_month, overall.reset_index(drop=True), int(frame.loc[frame["decision"] == 0, "outcomes"].sum())


def _pairs(good_over, bad_over, pairs):
    """Good–bad pairs ranked right, ties counting half (the Mann–Whitney U of the good loans).

    good_over = Σ over good loans of the bad ones scored at or below = U + ties/2, and bad_over = Σ over
    bad loans of the good ones at or below = (pairs − U) + ties/2; so U = (good_over − bad_over + pairs) / 2.
    """
    return (good_over - bad_over + pairs) / 2


def kept_realized(log_: DecisionLog, scope: Scope) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """`realized`, recomputed only when outcomes were recorded since it was last computed for this scope.

    The outcomes table only grows (a correction is a new row), so its row count and highest id say
    whether anything changed; the result is kept in `monitoring_results` for every session to share.
    """
    key = hashlib.sha256(json.dumps(["realized", dataclasses.asdict(scope)], default=str).encode()).hexdigest()
    r = monitoring_results.c
    with log_.reading() as conn:
        count, last = conn.execute(select(func.count(), func.coalesce(func.max(outcomes.c.id), 0))).one()
        mark = f"{count}:{last}"
        body = conn.execute(select(r.body).where(r.key == key, r.watermark == mark)).scalar()
        if body is not None:
            kept = json.loads(body)
            return pd.DataFrame(kept["by_month"]), pd.DataFrame(kept["overall"]), int(kept["rejected"])
        by_month, overall, rejected = realized(conn, scope)
    body = json.dumps({"by_month": by_month.to_dict("list"), "overall": overall.to_dict("list"), "rejected": rejected})
    try:
        with log_.writing() as conn:
            conn.execute(delete(monitoring_results).where(r.key == key))
            conn.execute(insert(monitoring_results).values(key=key, watermark=mark, body=body))
    except Exception as exc:  # a read-only log, another session's write: shown all the same
        log.warning("realized performance computed but not kept (%s)", str(exc).splitlines()[0][:160])
    return by_month, overall, rejected


# --- against the hold-out -------------------------------------------------------------------------
def assess(frame: pd.DataFrame, ref: Reference) -> pd.DataFrame:
    """Each group's realized AUC, bad rate and calibration, their intervals, the ranges the hold-out
    leads one to expect for that many outcomes, and the alerts."""
    out = frame.copy()
    pairs = out["good"] * out["bad"]
    out["auc"] = np.where(pairs > 0, out["ranked_right"] / pairs.where(pairs > 0, 1), np.nan)
    out["auc_low"], out["auc_high"], out["auc_expected_low"], out["auc_expected_high"] = np.nan, np.nan, np.nan, np.nan
    out["bad_rate"] = out["bad"] / out["outcomes"]
    out["predicted_bad_rate"] = out["predicted_bad"] / out["outcomes"]
    rows = []
    for _, g in out.iterrows():
        se = auc_se(g["auc"], g["good"], g["bad"])
        expected_se = math.sqrt(ref.auc_se ** 2 + auc_se(ref.auc, g["good"], g["bad"]) ** 2)
        low, high = wilson(g["bad"], g["outcomes"])
        spread = ref.bad_rate * (1 - ref.bad_rate)
        rate_se = math.sqrt(spread / ref.approved + spread / g["outcomes"]) if ref.approved else float("nan")
        calib_half = Z * math.sqrt(g["predicted_var"]) / g["outcomes"]
        row = {
            "auc_low": g["auc"] - Z * se, "auc_high": g["auc"] + Z * se,
            "auc_expected_low": ref.auc - Z * expected_se, "auc_expected_high": ref.auc + Z * expected_se,
            "bad_rate_low": low, "bad_rate_high": high,
            "bad_rate_expected_low": max(0.0, ref.bad_rate - Z * rate_se),
            "bad_rate_expected_high": min(1.0, ref.bad_rate + Z * rate_se),
            "calibration_low": max(0.0, g["predicted_bad_rate"] - calib_half),
            "calibration_high": min(1.0, g["predicted_bad_rate"] + calib_half),
        }
        row["alerts"] = _alerts(g, row)
        rows.append(row)
    extra = pd.DataFrame(rows, index=out.index, columns=[
        "auc_low", "auc_high", "auc_expected_low", "auc_expected_high", "bad_rate_low", "bad_rate_high",
        "bad_rate_expected_low", "bad_rate_expected_high", "calibration_low", "calibration_high", "alerts"])
    return pd.concat([out.drop(columns=[c for c in extra.columns if c in out.columns]), extra], axis=1)


def _alerts(g: pd.Series, row: dict) -> list[str]:
    """What falls outside its expected range, in words; nothing when the group is too small to tell."""
    if g["outcomes"] < MIN_OUTCOMES:
        return []
    found = []
    if math.isfinite(g["auc"]) and g["auc"] < row["auc_expected_low"]:
        found.append(f"AUC {g['auc']:.3f} is below the {row['auc_expected_low']:.3f} the hold-out leads one to expect")
    if g["bad_rate"] > row["bad_rate_expected_high"]:
        found.append(f"bad rate {percent(g['bad_rate'])} is above the expected "
                     f"{percent(row['bad_rate_expected_high'])}")
    if not row["calibration_low"] <= g["bad_rate"] <= row["calibration_high"]:
        side = "more" if g["bad_rate"] > row["calibration_high"] else "fewer"
        found.append(f"{side} bad loans than predicted ({percent(g['bad_rate'])} against "
                     f"{percent(g['predicted_bad_rate'])})")
    return found
