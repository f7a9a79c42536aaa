"""The Monitoring page, driven through Streamlit's AppTest on a log seeded through DecisionLog."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from model.core.formatting import percent
from model.records.log import DecisionLog, entries_for_rows, new_decision_ids
from model.registry.store import load_model
from model.training.data import generate_applicants

PAGE = "app_pages/monitoring.py"
DAYS = 6


def _log() -> DecisionLog:
    return DecisionLog(os.environ["LOANDESK_DB_URL"])


@pytest.fixture
def seeded(app_env) -> pd.DataFrame:
    """A week of real-looking decisions by the app's model, one day's batch under another version."""
    model = load_model(app_env)
    log = _log()
    start = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=DAYS)
    for day in range(DAYS):
        applicants = generate_applicants(40 + 10 * day, seed=200 + day)[model.features]
        validation = model.validate(applicants)
        probabilities = model.approval_probability(validation.clean)
        entries = entries_for_rows(model, validation.clean, probabilities, source="batch page",
                                   out_of_range=validation.out_of_range, officer="Ada")
        for k, (e, decision_id) in enumerate(zip(entries, new_decision_ids(len(entries)), strict=True)):
            e.decided_at = start + timedelta(days=day, minutes=k)
            e.decision_id = decision_id
            if day == 0:
                e.model_version = "20260101-000000-00000000"
        assert log.record(entries).ok
    frame = log.read()
    log.dispose()
    return frame


def _open(app):
    at = app.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _texts(at) -> str:
    return " ".join([m.value for m in at.markdown] + [e.value for kind in (at.info, at.warning, at.error,
                                                                           at.success, at.caption)
                                                      for e in kind])


def test_an_empty_log_says_so_and_offers_the_simulation(app):
    at = _open(app)
    assert any("No decisions on record yet" in i.value for i in at.info)
    assert not at.get("plotly_chart")
    next(b for b in at.button if b.label == "Score a simulated sample").click().run()
    assert not at.exception, at.exception
    frame = _log().read()
    assert len(frame) > 0 and frame["simulated"].all()
    assert any(f"{len(frame):,} simulated decisions scored" in s.value for s in at.success)
    assert any("simulated" in w.value and f"{len(frame):,}" in w.value for w in at.warning)
    assert _metric(at, "Simulated") == f"{len(frame):,}"
    drift_alert = " ".join(e.value for e in at.error)
    assert "Annual income" in drift_alert and "Credit score" in drift_alert


def test_the_page_on_a_seeded_log(app, seeded):
    at = _open(app)
    assert _metric(at, "Decisions") == f"{len(seeded):,}"
    assert _metric(at, "Approval rate") == percent(seeded["decision"].mean())
    assert _metric(at, "Simulated") == "0"
    assert _metric(at, "With an input out of range") == percent((seeded["out_of_range"] != "").mean())
    charts = at.get("plotly_chart")
    # daily ×2, expected bad rate, probabilities, PSI, one per input, fairness
    assert len(charts) == 2 + 1 + 1 + 1 + 5 + 1
    assert at.get("download_button")

    # Age bands, computed here independently from the seeded inputs.
    total, approved = Counter(), Counter()
    for inputs, decision in zip(seeded["inputs"], seeded["decision"], strict=True):
        age = inputs["age"]
        band = "18–24" if age < 25 else "25–39" if age < 40 else "40–61" if age < 62 else "62+"
        total[band] += 1
        approved[band] += decision
    best = max(approved[b] / total[b] for b in total)
    table = next(df.value for df in at.dataframe if "band" in df.value.columns).set_index("band")
    for band in ("18–24", "25–39", "40–61", "62+"):
        assert table.loc[band, "decisions"] == total[band]
        assert table.loc[band, "approval_rate"] == percent(approved[band] / total[band])
        assert table.loc[band, "ratio_to_highest"] == f"{approved[band] / total[band] / best:.2f}"
        flagged = approved[band] / total[band] / best < 0.8
        assert (table.loc[band, "flagged"] != "") == flagged

    # Out-of-range counts from the logged flags.
    oor = next(df.value for df in at.dataframe if "range" in df.value.columns).set_index("label")
    flagged = Counter(n for o in seeded["out_of_range"] for n in o.split(", ") if n)
    assert oor.loc["Annual income", "count"] == flagged["income"]

    # The log table shows the newest decisions, written for people.
    log_table = at.dataframe[-1].value
    assert len(log_table) == min(len(seeded), 500)
    assert log_table["Annual income"].str.startswith("$").all()
    assert set(log_table["Decision"]) <= {"Approved", "Rejected"}


def test_filters_by_date_and_version_and_simulated(app, seeded, app_env):
    from model.monitoring.report import log_simulated_sample

    at = _open(app)
    old = "20260101-000000-00000000"
    at.multiselect[0].set_value([old]).run()
    assert not at.exception, at.exception
    assert _metric(at, "Decisions") == f"{(seeded['model_version'] == old).sum():,}"

    at.multiselect[0].set_value([]).run()
    days = sorted(seeded["decided_at"].dt.date.unique())
    at.date_input[0].set_value((days[2], days[3])).run()
    assert not at.exception, at.exception
    in_range = seeded["decided_at"].dt.date.between(days[2], days[3]).sum()
    assert _metric(at, "Decisions") == f"{in_range:,}"

    log = _log()
    simulated = log_simulated_sample(load_model(app_env), log, n=120).written
    log.dispose()
    at = _open(app)
    assert _metric(at, "Decisions") == f"{len(seeded) + simulated:,}"
    assert _metric(at, "Simulated") == f"{simulated:,}"
    at.toggle[0].set_value(False).run()
    assert _metric(at, "Decisions") == f"{len(seeded):,}"
    assert _metric(at, "Simulated") == "0"


def test_a_model_without_age_says_fairness_is_not_applicable(app, app_env):
    from model.registry.store import save_version
    from model.training.train import train

    frame = generate_applicants(600, seed=9)
    features = frame.drop(columns=["age", "approved"])
    trained = train(features, frame["approved"].to_numpy(), target="approved", positive_label="1", model="logistic")
    save_version(app_env, trained.pipeline, trained.card, trained.holdout)
    model = load_model(app_env)
    clean = model.validate(features.head(80)).clean
    log = _log()
    assert log.record(entries_for_rows(model, clean, model.approval_probability(clean), source="form")).ok
    log.dispose()
    at = _open(app)
    assert any("Not applicable" in i.value and "age" in i.value for i in at.info)
    assert _metric(at, "Decisions") == "80"


def test_a_log_that_cannot_be_read_is_a_clear_error(app, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LOANDESK_DB_URL", f"sqlite:///{blocker / 'decisions.db'}")
    at = _open(app)
    assert any("decision log cannot be read" in e.value for e in at.error)
    assert not at.get("plotly_chart")



def _outcomes_for(seeded: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Good or bad for most approved decisions, drawn from the data rule; recorded through the core."""
    import numpy as np

    from model.records.outcomes import record_outcomes
    from model.training.data import approval_log_odds

    approved = seeded[seeded["decision"] == 1].iloc[::4 // 3 or 1]
    inputs = pd.DataFrame(list(approved["inputs"]), index=approved.index)
    rng = np.random.default_rng(seed)
    good = (rng.random(len(approved)) < 1 / (1 + np.exp(-approval_log_odds(inputs)))).astype(int)
    rows = approved.assign(good=good)
    log = _log()
    report = record_outcomes(log, [{"decision_id": i, "outcome": g} for i, g in zip(rows["decision_id"], good,
                                                                                     strict=True)], source="test")
    log.dispose()
    assert report.written == len(rows)
    return rows


def test_realized_auc_on_the_page_equals_roc_auc_score_on_the_same_rows(app, seeded):
    from sklearn.metrics import roc_auc_score

    rows = _outcomes_for(seeded)
    at = _open(app)
    assert _metric(at, "Loans with an outcome") == f"{len(rows):,}"
    assert _metric(at, "Realized AUC") == f"{roc_auc_score(rows['good'], rows['probability']):.3f}"
    assert _metric(at, "Bad rate among approved") == percent(1 - rows["good"].mean())
    assert _metric(at, "Predicted bad rate") == percent((1 - rows["probability"]).mean())
    table = next(df.value for df in at.dataframe if "Realized AUC" in df.value.columns)
    month = rows.assign(month=rows["decided_at"].dt.strftime("%Y-%m"),
                        version=rows["model_version"])
    for _, r in table.iterrows():
        mine = month[(month["month"] == r["Month"]) & (month["version"] == r["Version"])]
        assert r["Loans with an outcome"] == f"{len(mine):,}"
        if mine["good"].nunique() == 2:
            assert r["Realized AUC"] == f"{roc_auc_score(mine['good'], mine['probability']):.3f}"
    assert len(at.get("plotly_chart")) == 2 + 2 + 1 + 1 + 1 + 5 + 1  # with realized AUC and bad rate


def test_before_outcomes_the_page_shows_the_expected_bad_rate(app, seeded):
    at = _open(app)
    assert any("No outcomes recorded" in i.value for i in at.info)
    assert not any(m.label == "Realized AUC" for m in at.metric)


def test_the_page_shows_one_model_at_a_time_and_names_each_versions_model(app, seeded, app_env):
    model = load_model(app_env)
    log = _log()
    other = entries_for_rows(model, model.validate(generate_applicants(25, seed=3)[model.features]).clean,
                             [0.9] * 25, source="api")
    for e in other:
        e.model_name, e.model_version = "another_model", "20250101-000000-aaaaaaaa"
    assert log.record(other).ok
    log.dispose()
    at = _open(app)
    assert _metric(at, "Decisions") == f"{len(seeded):,}"  # the other model's decisions are not mixed in
    assert at.selectbox[0].value == model.name
    assert at.selectbox[0].options == [f"{model.name} (in use)", "another_model"]
    shown = at.multiselect[0].options
    assert all(f"· {model.name} (" in o for o in shown)
    assert any(o.startswith(model.version) and "in use" in o for o in shown)
    at.selectbox[0].set_value("another_model").run()
    assert not at.exception, at.exception
    assert any("No version of another_model is in the model folder" in w.value for w in at.warning)


def test_the_demo_draws_outcomes_and_the_page_measures_them(app):
    at = _open(app)
    next(b for b in at.button if b.label == "Score a simulated sample").click().run()
    next(b for b in at.button if b.label == "Simulate outcomes").click().run()
    assert not at.exception, at.exception
    frame = _log().read()
    approved = int(frame["decision"].sum())
    assert any(f"{approved:,} simulated outcomes drawn" in s.value for s in at.success), _texts(at)
    at = at.run()
    assert _metric(at, "Loans with an outcome") == f"{approved:,}"
    at.toggle[0].set_value(False).run()
    assert any("No decisions match" in i.value for i in at.info)


def test_override_and_refer_rates_by_officer_and_reason_are_shown_for_the_chosen_scope(app, seeded, app_env):
    from model.records.overrides import OVERRIDE_REASONS, record_override

    log = _log()
    frame = seeded[seeded["model_version"] != "20260101-000000-00000000"]  # the version in use
    chosen = frame.sort_values("decision_id").head(5)
    plan = ["UNVERIFIABLE", "UNVERIFIABLE", "COMPENSATING_FACTORS", "CUSTOMER_RELATIONSHIP", "UNVERIFIABLE"]
    for (_, row), reason in zip(chosen.iterrows(), plan, strict=True):
        record_override(log, row["decision_id"], final_decision=1 - int(row["decision"]), reason=reason,
                        note="checked by phone", officer="Ada")
    # a second override of the same decision is a second override, but the decision counts once
    first = chosen.iloc[0]
    record_override(log, first["decision_id"], final_decision=int(first["decision"]), reason="UNVERIFIABLE",
                    note="and back", officer="Ada")
    log.dispose()

    at = _open(app)
    assert _metric(at, "Override rate") == percent(5 / len(seeded))
    assert _metric(at, "Refer rate") == percent(seeded["referred"].astype(bool).mean())
    table = next(d.value for d in at.dataframe if "Override rate" in d.value.columns)
    got = dict(zip(table["Reason"], table["Overrides"], strict=True))
    assert got == {OVERRIDE_REASONS["UNVERIFIABLE"]: "4", OVERRIDE_REASONS["COMPENSATING_FACTORS"]: "1",
                   OVERRIDE_REASONS["CUSTOMER_RELATIONSHIP"]: "1"}
    assert set(table["Officer"]) == {"Ada"}
    assert set(table["Officer's decisions"]) == {f"{len(seeded):,}"}

    # the other version alone: none of the overridden decisions are in it
    old = "20260101-000000-00000000"
    at.multiselect[0].set_value([old]).run()
    assert not at.exception, at.exception
    assert _metric(at, "Override rate") == percent(0)
    assert not any("Override rate" in d.value.columns for d in at.dataframe)
    assert "No overrides on record for these decisions" in _texts(at)
