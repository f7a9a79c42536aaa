"""Realized performance: the database's AUC equals scikit-learn's on the same joined rows; intervals; alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from model.monitoring import performance as perf
from model.monitoring import queries as q
from model.monitoring.report import log_simulated_sample
from model.monitoring.simulated_outcomes import log_simulated_outcomes
from model.records.log import DecisionLog, LogEntry, new_decision_ids
from model.records.outcomes import record_outcomes
from model.registry.store import load_holdout


@pytest.fixture
def log(log_url):
    log = DecisionLog(log_url)
    yield log
    log.dispose()


def _portfolio(log: DecisionLog, n: int = 900, seed: int = 3) -> pd.DataFrame:
    """Decisions over three months and two versions, with outcomes for most approvals (ties included)."""
    rng = np.random.default_rng(seed)
    ids = new_decision_ids(n)
    p = np.round(rng.uniform(0.2, 1.0, n), 2)  # rounded: many tied probabilities
    start = datetime(2026, 1, 10, tzinfo=UTC)
    entries = [LogEntry(model_name="m", model_version=f"v{k % 2}", model_sha256="0" * 64, source="api",
                        inputs={"x": k}, probability=float(p[k]), threshold=0.5, decision=int(p[k] >= 0.5),
                        decided_at=start + timedelta(days=int(k % 90)), decision_id=ids[k]) for k in range(n)]
    entries.append(LogEntry(model_name="other", model_version="v0", model_sha256="0" * 64, source="api",
                            inputs={}, probability=0.9, threshold=0.5, decision=1, decision_id="other-model"))
    assert log.record(entries).ok
    good = rng.random(n) < p
    chosen = rng.random(n) < 0.8
    rows = [{"decision_id": ids[k], "outcome": int(good[k])} for k in range(n) if chosen[k]]
    rows.append({"decision_id": "other-model", "outcome": 0})
    report = record_outcomes(log, rows, source="test")
    assert report.written == len(rows)
    frame = pd.DataFrame({"decision_id": ids, "p": p, "decision": (p >= 0.5).astype(int), "good": good.astype(int),
                          "has": chosen, "version": [f"v{k % 2}" for k in range(n)],
                          "month": [(start + timedelta(days=int(k % 90))).strftime("%Y-%m") for k in range(n)]})
    return frame


def test_the_realized_auc_equals_roc_auc_score_on_the_same_joined_rows(log):
    truth = _portfolio(log)
    with log.engine.connect() as conn:
        groups, whole, rejected = perf.realized(conn, q.Scope("m"))
    rows = truth[truth["has"] & (truth["decision"] == 1)]
    assert rejected == (truth["has"] & (truth["decision"] == 0)).sum()
    assert len(groups) == rows.groupby(["month", "version"]).ngroups == 8  # four months, two versions
    for _, g in groups.iterrows():
        mine = rows[(rows["month"] == g["month"]) & (rows["version"] == g["model_version"])]
        auc = g["ranked_right"] / (g["good"] * g["bad"])
        assert auc == pytest.approx(roc_auc_score(mine["good"], mine["p"]), abs=1e-12)
        assert (g["outcomes"], g["good"]) == (len(mine), mine["good"].sum())
        assert g["predicted_bad"] == pytest.approx((1 - mine["p"]).sum(), rel=1e-12)
        assert g["predicted_var"] == pytest.approx((mine["p"] * (1 - mine["p"])).sum(), rel=1e-12)
    all_auc = whole["ranked_right"].iloc[0] / (whole["good"].iloc[0] * whole["bad"].iloc[0])
    assert all_auc == pytest.approx(roc_auc_score(rows["good"], rows["p"]), abs=1e-12)


def test_a_correction_replaces_the_outcome_that_counts(log):
    truth = _portfolio(log, n=200)
    first = truth[truth["has"] & (truth["decision"] == 1)].iloc[0]
    record_outcomes(log, [{"decision_id": first["decision_id"], "outcome": 1 - int(first["good"])}], source="fix")
    truth.loc[truth["decision_id"] == first["decision_id"], "good"] = 1 - int(first["good"])
    with log.engine.connect() as conn:
        _, whole, _ = perf.realized(conn, q.Scope("m"))
    rows = truth[truth["has"] & (truth["decision"] == 1)]
    assert whole["good"].iloc[0] == rows["good"].sum() and whole["outcomes"].iloc[0] == len(rows)


def test_intervals_and_expected_ranges():
    assert perf.auc_se(0.8, 100, 100) == pytest.approx(0.0309, abs=5e-4)  # Hanley & McNeil's table
    low, high = perf.wilson(10, 100)
    assert (round(low, 4), round(high, 4)) == (0.0552, 0.1744)
    ref = perf.Reference(auc=0.80, auc_se=0.01, bad_rate=0.10, approved=2_000, predicted_bad_rate=0.10)
    fine = pd.DataFrame([{"outcomes": 1_000, "good": 900, "bad": 100, "ranked_right": 0.8 * 90_000,
                          "predicted_bad": 100.0, "predicted_var": 90.0}])
    assert perf.assess(fine, ref)["alerts"].iloc[0] == []
    worse = fine.assign(good=800, bad=200, ranked_right=0.70 * 160_000)
    alerts = perf.assess(worse, ref)["alerts"].iloc[0]
    assert len(alerts) == 3
    assert "AUC 0.700 is below" in alerts[0] and "bad rate 20.0%" in alerts[1] and "more bad loans" in alerts[2]
    tiny = fine.assign(outcomes=10, good=5, bad=5, ranked_right=0.1 * 25, predicted_bad=1.0, predicted_var=0.9)
    assert perf.assess(tiny, ref)["alerts"].iloc[0] == []  # too few outcomes to tell


def test_the_hold_out_reference_is_taken_on_the_rows_it_would_approve(model):
    holdout = load_holdout(model)
    ref = perf.reference(holdout, model.threshold)
    approved = holdout[holdout["probability"] >= model.threshold]
    assert ref.approved == len(approved)
    assert ref.auc == pytest.approx(roc_auc_score(approved["label"], approved["probability"]))
    assert ref.bad_rate == pytest.approx((approved["label"] == 0).mean())
    assert ref.auc < roc_auc_score(holdout["label"], holdout["probability"])


def test_the_demo_draws_outcomes_for_simulated_approvals_from_the_data_rule(log, model):
    log_simulated_sample(model, log, n=400, seed=2)
    report = log_simulated_outcomes(log, model, seed=1)
    frame = log.read()
    approved = frame[frame["decision"] == 1]
    assert report.written == len(approved) > 100 and not report.problems
    assert log_simulated_outcomes(log, model, seed=1).written == 0  # each decision gets one outcome
    with log.engine.connect() as conn:
        _, whole, _ = perf.realized(conn, q.Scope(model.name, simulated=True))
        assert perf.realized(conn, q.Scope(model.name, simulated=False))[1].empty
    auc = whole["ranked_right"].iloc[0] / (whole["good"].iloc[0] * whole["bad"].iloc[0])
    assert 0.6 < auc < 0.95  # the rule ranks loans as the model learned to


def test_kept_realized_performance_is_recomputed_when_outcomes_are_recorded(log):
    truth = _portfolio(log, n=300)
    scope = q.Scope("m")
    first = perf.kept_realized(log, scope)
    with log.reading() as conn:
        fresh = perf.realized(conn, scope)
    pd.testing.assert_frame_equal(first[0], fresh[0], check_dtype=False)
    again = perf.kept_realized(log, scope)  # from the kept result
    pd.testing.assert_frame_equal(again[0], fresh[0], check_dtype=False)
    pd.testing.assert_frame_equal(again[1], fresh[1], check_dtype=False)
    assert again[2] == fresh[2]
    waiting = truth[~truth["has"] & (truth["decision"] == 1)].iloc[0]
    record_outcomes(log, [{"decision_id": waiting["decision_id"], "outcome": "bad"}], source="later")
    later = perf.kept_realized(log, scope)
    assert later[1]["outcomes"].iloc[0] == fresh[1]["outcomes"].iloc[0] + 1
