"""Monitoring figures: PSI, drift bins, daily activity, out-of-range counts, age bands, the simulated sample."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from model import monitoring as mon
from model.core.schema import Field
from model.records.log import DecisionLog
from model.training.data import generate_applicants
from ui.tables import readable_log


def _log(rows: list[dict]) -> pd.DataFrame:
    """A frame shaped like DecisionLog.read(), from (inputs, decision, ...) dicts."""
    now = datetime(2026, 6, 1, 9, tzinfo=UTC)
    columns = ["decided_at", "inputs", "decision", "probability", "out_of_range", "simulated", "source",
               "officer", "reasons", "model_version"]
    frame = pd.DataFrame([{
        "decided_at": r.get("decided_at", now), "inputs": r.get("inputs", {}), "decision": r.get("decision", 1),
        "probability": r.get("probability", 0.6), "out_of_range": r.get("out_of_range", ""),
        "simulated": r.get("simulated", False), "source": "form", "officer": None, "reasons": "",
        "model_version": "v1",
    } for r in rows], columns=columns)
    frame["decided_at"] = pd.to_datetime(frame["decided_at"], utc=True)
    return frame


# --- PSI -----------------------------------------------------------------------------------------
def test_psi_matches_a_hand_computed_case():
    # Two bins, 50/50 in training, 70/30 now: (0.7 − 0.5)·ln(0.7/0.5) + (0.3 − 0.5)·ln(0.3/0.5)
    by_hand = 0.2 * math.log(1.4) + (-0.2) * math.log(0.6)
    assert mon.psi([0.5, 0.5], [0.7, 0.3]) == pytest.approx(by_hand)
    assert by_hand == pytest.approx(0.16946, abs=1e-5)


def test_psi_of_an_empty_bin_uses_the_epsilon_and_stays_finite():
    eps = mon.PSI_EPSILON
    expected, actual = [0.5, 0.5, 0.0], [0.5, 0.4, 0.1]
    by_hand = 0 + (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.1 - eps) * math.log(0.1 / eps)
    assert mon.psi(expected, actual) == pytest.approx(by_hand)
    assert math.isfinite(mon.psi([0.5, 0.5], [1.0, 0.0]))


def test_psi_is_zero_for_the_same_distribution_and_symmetric():
    shares = [0.1, 0.2, 0.3, 0.4]
    assert mon.psi(shares, shares) == 0
    assert mon.psi([0.2, 0.8], [0.6, 0.4]) == pytest.approx(mon.psi([0.6, 0.4], [0.2, 0.8]))


@pytest.mark.parametrize(("value", "band"), [(0.0, "stable"), (0.0999, "stable"), (0.1, "watch"),
                                             (0.25, "watch"), (0.2501, "act"), (3.0, "act")])
def test_psi_bands(value, band):
    assert mon.psi_band(value) == band


# --- binning like training -----------------------------------------------------------------------
def test_numbers_are_binned_exactly_as_training_bins_them():
    f = Field("income", "number", "Annual income", unit="$")
    spec = {"edges": [10.0, 20.0], "shares": [0.25, 0.5, 0.25]}
    values = pd.Series([5, 10, 15, 19.9, 20, 25, None])  # an edge belongs to the bin above it
    d = mon.field_drift(f, spec, values)
    assert d.n == 6
    np.testing.assert_allclose(d.actual, [1 / 6, 3 / 6, 2 / 6])
    assert d.psi == pytest.approx(mon.psi([0.25, 0.5, 0.25], [1 / 6, 3 / 6, 2 / 6]))
    assert d.bins == ["under $10", "$10–$20", "$20 and over"]


def test_training_like_values_are_stable_and_shifted_ones_are_not(model):
    spec = model.card["drift_bins"]["credit_score"]
    f = model.schema["credit_score"]
    edges = np.asarray(spec["edges"])
    # Values placed bin by bin in the training shares: the same distribution, so PSI ≈ 0.
    mids = np.concatenate([[edges[0] - 1], (edges[:-1] + edges[1:]) / 2, [edges[-1] + 1]])
    counts = np.round(np.asarray(spec["shares"]) * 10_000).astype(int)
    same = pd.Series(np.repeat(mids, counts))
    assert mon.field_drift(f, spec, same).psi < 0.001
    shifted = mon.field_drift(f, spec, same - 80)
    assert shifted.band == "act"


def test_categories_unseen_in_training_get_a_bin_of_their_own():
    f = Field("color", "category", "Colour", categories=("blue", "red"))
    spec = {"categories": ["blue", "red"], "shares": [0.5, 0.5]}
    d = mon.field_drift(f, spec, pd.Series(["blue", "blue", "green", None]))
    assert d.bins == ["blue", "red", "(not seen in training)"]
    np.testing.assert_allclose(d.actual, [2 / 3, 0, 1 / 3])
    eps = mon.PSI_EPSILON
    by_hand = ((2 / 3 - 0.5) * math.log((2 / 3) / 0.5) + (eps - 0.5) * math.log(eps / 0.5)
               + (1 / 3 - eps) * math.log((1 / 3) / eps))
    assert d.psi == pytest.approx(by_hand)


def test_a_field_never_given_has_no_psi():
    f = Field("income", "number", "Annual income", unit="$")
    d = mon.field_drift(f, {"edges": [1.0], "shares": [0.5, 0.5]}, pd.Series([], dtype=float))
    assert d.n == 0 and math.isnan(d.psi) and d.band == "no data"


def test_probability_psi_is_small_for_the_holdout_itself_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    holdout = rng.beta(4, 2, 5_000)
    assert mon.probability_psi(holdout, holdout) == pytest.approx(0, abs=1e-9)
    assert mon.probability_psi(holdout, rng.beta(2, 4, 2_000)) > mon.PSI_ACT
    assert math.isnan(mon.probability_psi(holdout, np.array([])))


# --- activity and out-of-range ---------------------------------------------------------------------
def test_daily_activity_counts_each_utc_day():
    start = datetime(2026, 6, 1, 22, tzinfo=UTC)
    rng = np.random.default_rng(1)
    rows = [{"decided_at": start + timedelta(hours=int(h)), "decision": int(d)}
            for h, d in zip(rng.integers(0, 72, 200), rng.integers(0, 2, 200), strict=True)]
    daily = mon.daily_activity(_log(rows)).set_index("day")
    by_day = Counter(r["decided_at"].date() for r in rows)
    approved = Counter(r["decided_at"].date() for r in rows if r["decision"])
    assert sorted(d.date() for d in daily.index) == sorted(by_day)
    for day, row in daily.iterrows():
        assert row["decisions"] == by_day[day.date()]
        assert row["approved"] == approved[day.date()]
        assert row["rejected"] == by_day[day.date()] - approved[day.date()]
        assert row["approval_rate"] == pytest.approx(approved[day.date()] / by_day[day.date()])
    assert mon.daily_activity(_log([])).empty


def test_out_of_range_counts_and_shares_per_field(model):
    flagged = ["income, age", "income", "", "credit_score;income", "", "employment_years"]
    counts = mon.out_of_range_counts(model, _log([{"out_of_range": o} for o in flagged])).set_index("field")
    for name in model.schema.numbers:
        n = sum(name in [p.strip() for p in o.replace(";", ",").split(",")] for o in flagged)
        assert counts.loc[name, "count"] == n
        assert counts.loc[name, "share"] == pytest.approx(n / len(flagged))
    assert counts.loc["income", "range"].startswith("$")
    assert mon.out_of_range_share(_log([{"out_of_range": o} for o in flagged])) == pytest.approx(4 / 6)


# --- fairness ------------------------------------------------------------------------------------
def _band_of(age: float) -> str:
    if age < 25:
        return "18–24"
    if age < 40:
        return "25–39"
    if age < 62:
        return "40–61"
    return "62+"


def test_age_band_figures_on_a_seeded_log():
    rng = np.random.default_rng(5)
    ages = np.concatenate([[18, 24, 25, 39, 40, 61, 62, 75], rng.integers(18, 80, 400)])
    # Older applicants approved less often in this made-up log, so that a band gets flagged.
    decisions = (rng.random(len(ages)) < np.where(ages >= 62, 0.35, 0.7)).astype(int)
    bands = mon.age_bands(_log([{"inputs": {"age": int(a)}, "decision": int(d)}
                                for a, d in zip(ages, decisions, strict=True)])).set_index("band")
    assert list(bands.index) == ["18–24", "25–39", "40–61", "62+"]
    total, approved = Counter(), Counter()
    for a, d in zip(ages, decisions, strict=True):
        total[_band_of(a)] += 1
        approved[_band_of(a)] += d
    rates = {b: approved[b] / total[b] for b in total}
    best = max(rates.values())
    for band in bands.index:
        assert bands.loc[band, "decisions"] == total[band]
        assert bands.loc[band, "approved"] == approved[band]
        assert bands.loc[band, "approval_rate"] == pytest.approx(rates[band])
        assert bands.loc[band, "ratio_to_highest"] == pytest.approx(rates[band] / best)
        assert bands.loc[band, "flagged"] == (rates[band] / best < 0.8)
    assert bands.loc["62+", "flagged"]


def test_an_empty_age_band_is_not_flagged_and_has_no_rate():
    bands = mon.age_bands(_log([{"inputs": {"age": 30}, "decision": 1}, {"inputs": {"age": 45}, "decision": 0},
                                {"inputs": {"age": None}, "decision": 0}])).set_index("band")
    assert bands["decisions"].sum() == 2, "rows without an age are left out"
    assert bands.loc["25–39", "ratio_to_highest"] == 1.0
    assert bands.loc["40–61", "approval_rate"] == 0 and bands.loc["40–61", "flagged"]
    assert math.isnan(bands.loc["62+", "approval_rate"]) and not bands.loc["62+", "flagged"]


# --- the simulated sample --------------------------------------------------------------------------
def test_the_simulated_sample_is_poorer_with_weaker_credit_and_valid(model):
    sample = mon.simulated_sample(model, n=1_000, seed=3)
    base = generate_applicants(1_000, seed=3 + mon.SIMULATION_SEED_SHIFT)
    validation = model.validate(sample)
    assert validation.ok, validation.errors[:3]
    beyond = validation.out_of_range["income"] | validation.out_of_range["age"] | validation.out_of_range["loan_amount"]
    assert 0 < beyond.sum() < 0.1 * len(sample)
    plain = ~beyond
    np.testing.assert_allclose(sample["income"][plain], np.round(base["income"][plain] * 0.7))
    np.testing.assert_allclose(sample["credit_score"], np.clip(base["credit_score"] - 60, 300, 850))
    pd.testing.assert_frame_equal(sample, mon.simulated_sample(model, n=1_000, seed=3))


def test_a_simulated_sample_goes_on_record_marked_and_shows_drift(model, tmp_path):
    log = DecisionLog(f"sqlite:///{tmp_path / 'decisions.db'}")
    result = mon.log_simulated_sample(model, log, n=2_000, seed=1, officer="Demo")
    assert result.ok and result.written == 2_000
    frame = log.read()
    assert frame["simulated"].all() and set(frame["source"]) == {mon.SIMULATION_SOURCE}
    assert set(frame["officer"]) == {"Demo"}
    table = mon.drift_table(model, mon.drift(model, frame)).set_index("field")
    assert table.loc["income", "band"] == "act" and table.loc["credit_score", "band"] == "act"
    for name in ("age", "loan_amount", "employment_years"):
        assert table.loc[name, "band"] == "stable", table
    assert frame["out_of_range"].ne("").any()
    assert readable_log(model, frame)["Source"].eq("simulated").all()
    log.dispose()


def test_a_model_without_the_builtin_fields_or_age(tmp_path):
    from model.training.train import train

    rng = np.random.default_rng(0)
    n = 400
    features = pd.DataFrame({"turnover": rng.normal(100, 20, n).round(1), "staff": rng.integers(1, 50, n),
                             "sector": rng.choice(["retail", "farm", "tech"], n)})
    y = (features["turnover"] + rng.normal(0, 10, n) > 100).to_numpy().astype(int)
    trained = train(features, y, target="repaid", positive_label="1", model="logistic")
    from model.registry.store import load_model, save_version

    save_version(tmp_path / "m", trained.pipeline, trained.card, trained.holdout)
    other = load_model(tmp_path / "m")
    assert not mon.fairness_applicable(other)
    sample = mon.simulated_sample(other, n=500, seed=2)
    assert other.validate(sample).ok
    assert sample["turnover"].mean() < trained.holdout["turnover"].mean()
    log = DecisionLog(f"sqlite:///{tmp_path / 'decisions.db'}")
    assert mon.log_simulated_sample(other, log, n=500).written == 500
    table = mon.drift_table(other, mon.drift(other, log.read())).set_index("field")
    assert list(table.index) == ["turnover", "staff", "sector"]
    assert table.loc["turnover", "psi"] > table.loc["sector", "psi"]
    log.dispose()


# --- the log for people ----------------------------------------------------------------------------
def test_the_readable_log_writes_values_for_people(model):
    frame = _log([{"inputs": {"age": 35, "income": 62_000.0}, "decision": 1, "probability": 0.714},
                  {"inputs": {"age": 70, "income": 15_000.0}, "decision": 0, "probability": 0.2,
                   "simulated": True}])
    table = readable_log(model, frame)
    assert list(table["Decision"]) == ["Approved", "Rejected"]
    assert list(table["Approval probability"]) == ["71.4%", "20.0%"]
    assert list(table["Annual income"]) == ["$62,000", "$15,000"]
    assert list(table["Source"]) == ["form", "simulated"]
    assert table["Decided (UTC)"][0] == "01 Jun 2026, 09:00"
