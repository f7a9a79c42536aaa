"""The Monitoring page's database queries equal a pandas computation over the same log, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from model.monitoring import queries as q
from model.monitoring import report
from model.records.log import DecisionLog, decisions, entries_for_rows
from model.records.tables import monitoring_state
from model.registry.store import load_holdout
from model.training.data import generate_applicants

START = datetime(2026, 5, 1, 8, tzinfo=UTC)
OLD = "20260101-000000-00000000"


def _seed(log: DecisionLog, model, n: int = 480, days: int = 8, seed: int = 5, name: str | None = None) -> None:
    """n decisions over `days` UTC days; every third day by an older version, every fifth row simulated."""
    applicants = generate_applicants(n, seed=seed)[model.features]
    applicants.loc[applicants.index[::7], "income"] = model.schema["income"].train_max + 1_000  # out of range
    validation = model.validate(applicants)
    clean = validation.clean
    entries = entries_for_rows(model, clean, model.approval_probability(clean), source="batch page",
                               out_of_range=validation.out_of_range)
    for k, e in enumerate(entries):
        e.decided_at = START + timedelta(days=k % days, minutes=k)
        e.simulated = k % 5 == 0
        if (k % days) % 3 == 0:
            e.model_version = OLD
        if name:
            e.model_name = name
    assert log.record(entries).ok


@pytest.fixture
def log(log_url):
    log = DecisionLog(log_url)
    yield log
    log.dispose()


def _figures(log: DecisionLog, model, scope: q.Scope):
    holdout = load_holdout(model)["probability"].to_numpy()
    binning = q.Binning.of(model, holdout, "age")
    kept = q.counts(log, binning, scope)
    return kept.activity, binning, kept.bins


SCOPES = {
    "every version": lambda m: q.Scope(m.name),
    "one version, real only": lambda m: q.Scope(m.name, versions=(OLD,), simulated=False),
    "three days, simulated only": lambda m: q.Scope(m.name, start=(START + timedelta(days=2)).date(),
                                                   end=(START + timedelta(days=4)).date(), simulated=True),
}


def _pandas_view(frame: pd.DataFrame, scope: q.Scope) -> pd.DataFrame:
    keep = frame["model_name"] == scope.model_name
    if scope.versions is not None:
        keep &= frame["model_version"].isin(scope.versions)
    day = frame["decided_at"].dt.date
    if scope.start is not None:
        keep &= day >= scope.start
    if scope.end is not None:
        keep &= day <= scope.end
    if scope.simulated is not None:
        keep &= frame["simulated"] == scope.simulated
    return frame[keep]


@pytest.mark.parametrize("which", list(SCOPES))
def test_every_figure_equals_pandas_over_the_same_log(log, model, which):
    _seed(log, model)
    _seed(log, model, n=60, seed=6, name="another_model")  # never mixed in
    scope = SCOPES[which](model)
    live, binning, bins = _figures(log, model, scope)
    frame = _pandas_view(log.read(), scope)
    assert len(frame) > 20

    expected = report.daily_activity(frame)
    got = q.daily(live)
    pd.testing.assert_frame_equal(got[["decisions", "approved", "rejected"]], expected[["decisions", "approved",
                                                                                         "rejected"]],
                                  check_dtype=False)
    assert list(got["day"]) == list(expected["day"])
    assert live["out_of_range"].sum() == (frame["out_of_range"] != "").sum()
    approved = frame[frame["decision"] == 1]
    assert live["expected_bad"].sum() == pytest.approx((1 - approved["probability"]).sum(), rel=1e-12)

    for got_drift, want in zip(q.drift_from_bins(model, binning, bins), report.drift(model, frame), strict=True):
        assert got_drift.field == want.field and got_drift.n == want.n
        np.testing.assert_array_equal(got_drift.actual, want.actual)
        assert got_drift.psi == pytest.approx(want.psi, rel=1e-12)

    pd.testing.assert_frame_equal(q.age_bands_from_bins(bins), report.age_bands(frame), check_dtype=False)

    want_oor = report.out_of_range_counts(model, frame)
    got_oor = q.out_of_range_from_bins(model, bins, int(live["decisions"].sum()))
    pd.testing.assert_frame_equal(got_oor, want_oor, check_dtype=False)
    assert got_oor.set_index("field").loc["income", "count"] > 0

    five, deciles = q.probability_counts(bins, binning)
    hist, _ = np.histogram(frame["probability"], bins=np.linspace(0, 1, 21))
    np.testing.assert_array_equal(five, hist)
    holdout = load_holdout(model)["probability"].to_numpy()
    assert report.psi(np.bincount(np.searchsorted(binning.probability_edges, holdout, side="right"),
                                  minlength=len(deciles)) / len(holdout), deciles / deciles.sum()) == \
        pytest.approx(report.probability_psi(holdout, frame["probability"].to_numpy()), rel=1e-12)


def _state(log: DecisionLog) -> dict[str, tuple[int, int]]:
    with log.engine.connect() as conn:
        return {k: (n, i) for k, n, i in conn.execute(select(monitoring_state.c.key, monitoring_state.c.seen,
                                                             monitoring_state.c.last_id))}


def _check_against_pandas(log: DecisionLog, model, scope: q.Scope) -> None:
    live, binning, bins = _figures(log, model, scope)
    frame = _pandas_view(log.read(), scope)
    pd.testing.assert_frame_equal(q.age_bands_from_bins(bins), report.age_bands(frame), check_dtype=False)
    for got, want in zip(q.drift_from_bins(model, binning, bins), report.drift(model, frame), strict=True):
        np.testing.assert_array_equal(got.actual, want.actual)
    assert live["decisions"].sum() == len(frame) and live["approved"].sum() == frame["decision"].sum()


def test_new_decisions_are_added_to_the_kept_counts_without_a_rescan(log, model, monkeypatch):
    _seed(log, model)
    scope = q.Scope(model.name)
    _check_against_pandas(log, model, scope)
    assert set(_state(log)) == {"activity", f"bins:{_figures(log, model, scope)[1].key}"}
    assert all(v == (log.count(), int(log.read()["id"].max())) for v in _state(log).values())

    scanned: list[list] = []
    compute = q.compute_bins

    def spy(conn, binning, clauses):
        scanned.append(clauses)
        return compute(conn, binning, clauses)

    monkeypatch.setattr(q, "compute_bins", spy)
    _check_against_pandas(log, model, scope)
    assert scanned == []  # nothing new: nothing recomputed
    _seed(log, model, n=40, days=1, seed=11)  # more decisions
    _check_against_pandas(log, model, scope)
    assert len(scanned) == 1 and any("id >" in str(c.compile()) for c in scanned[0])  # only the new rows


@pytest.mark.postgres
@pytest.mark.parametrize("log_url", ["postgresql"], indirect=True)  # SQLite's one writer cannot do this
def test_decisions_committed_below_the_watermark_rebuild_the_counts(log, model):
    _seed(log, model)
    scope = q.Scope(model.name)
    _check_against_pandas(log, model, scope)
    # A transaction that got lower ids but committed after the last look (PostgreSQL sequences allow it).
    with log.writing() as conn:
        row = dict(conn.execute(select(decisions).limit(1)).mappings().one())
        conn.execute(decisions.insert().values({**row, "id": -1, "decision_id": "late"}))
    _check_against_pandas(log, model, scope)


def test_counts_that_cannot_be_kept_are_still_right(log, model, monkeypatch):
    _seed(log, model)

    def refuse(*_args, **_kwargs):
        raise OSError("read-only database")

    monkeypatch.setattr(DecisionLog, "writing", refuse)
    _, _, bins = _figures(log, model, q.Scope(model.name, simulated=False))
    frame = log.read()
    pd.testing.assert_frame_equal(q.age_bands_from_bins(bins), report.age_bands(frame[~frame["simulated"]]),
                                  check_dtype=False)


def test_recent_decisions_are_the_newest_of_the_scope(log, model):
    _seed(log, model)
    scope = q.Scope(model.name, versions=(OLD,))
    got = q.recent(log, scope, 10)
    frame = log.read()
    want = frame[frame["model_version"] == OLD].head(10)
    assert list(got["id"]) == list(want["id"])
    assert len(q.everything(log, scope)) == (frame["model_version"] == OLD).sum()
