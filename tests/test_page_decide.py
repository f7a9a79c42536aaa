"""The Decide page, driven through Streamlit's AppTest."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest

from model.records.log import DecisionLog
from model.registry.store import load_model, save_version
from model.training.train import train

from .conftest import EXAMPLE


def _decision_text(at) -> str:
    return " ".join(m.value for m in at.markdown if "loandesk-decision" in m.value)


def _values(encoded) -> np.ndarray:
    """Plotly 6+ sends numpy arrays as {"dtype", "bdata"} (base64); plain lists stay lists."""
    if isinstance(encoded, dict):
        return np.frombuffer(base64.b64decode(encoded["bdata"]), dtype=encoded["dtype"])
    return np.asarray(encoded, dtype=float)


def _chart_specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


LABELS = {"age": "Age (years)", "income": "Annual income ($)", "credit_score": "Credit score (points)",
          "loan_amount": "Loan amount ($)", "employment_years": "Employment length (years)"}


def _fill(at, values: dict) -> None:
    inputs = {ni.label: ni for ni in at.number_input}
    for name, value in values.items():
        inputs[LABELS[name]].set_value(value)


def _submit(at, **changes):
    _fill(at, changes)
    at.button(key=next(b.key for b in at.button if b.label == "Decide")).click().run()
    assert not at.exception, at.exception
    return at


def test_renders_the_form_with_the_example_customer(app):
    at = app.run()
    assert not at.exception
    values = {ni.label: ni.value for ni in at.number_input}
    assert values["Age (years)"] == EXAMPLE["age"]
    assert values["Annual income ($)"] == EXAMPLE["income"]
    assert values["Credit score (points)"] == EXAMPLE["credit_score"]
    assert values["Loan amount ($)"] == EXAMPLE["loan_amount"]
    assert values["Employment length (years)"] == EXAMPLE["employment_years"]
    assert any("Enter the applicant" in i.value for i in at.info)


def test_submitting_the_example_shows_the_models_decision(app, app_env):
    at = _submit(app.run())
    model = load_model(app_env)
    expected = "Approved" if model.predict(EXAMPLE)[0] == 1 else "Rejected"
    assert expected in _decision_text(at)
    p = model.predict_proba(EXAMPLE)[0, 1]
    assert any(f"{100 * p:.1f}%" in m.value for m in at.markdown)
    assert len(at.get("plotly_chart")) == 3  # probability bar, sensitivity curve, heatmap
    flips = " ".join(m.value for m in at.markdown)
    assert "Largest loan amount approvable for this applicant" in flips


def test_moving_income_across_the_flip_point_flips_the_decision(app, app_env):
    model = load_model(app_env)
    flip = model.decide(EXAMPLE).flips["income"].value
    assert flip is not None, "the example customer should have an income flip point in range"
    at = _submit(app.run(), income=int(flip))
    assert "Approved" in _decision_text(at)
    at = _submit(at, income=int(flip) - 1500)
    assert "Rejected" in _decision_text(at)


def test_invalid_input_names_the_field_and_why(app, app_env):
    at = _submit(app.run(), age=30, employment_years=25.0)
    assert not _decision_text(at)
    assert at.error, "a clear error should be shown"
    text = " ".join(m.value for m in at.markdown)
    assert "Employment length" in text and "age − 14" in text
    assert DecisionLog(_db_url()).count() == 0


def test_switching_the_chart_field_redraws_the_curve(app):
    at = _submit(app.run())
    assert _chart_specs(at)[1]["layout"]["xaxis"]["title"]["text"] == "Annual income ($)"
    at.selectbox(key="decide.vary").select("credit_score").run()
    assert not at.exception
    spec = _chart_specs(at)[1]
    assert spec["layout"]["xaxis"]["title"]["text"] == "Credit score (points)"
    xs = _values(spec["data"][0]["x"])
    assert xs.min() >= 300 and xs.max() <= 850


def test_the_heatmap_marks_the_applicant(app):
    at = _submit(app.run())
    heat = _chart_specs(at)[2]
    marker = next(t for t in heat["data"] if t.get("mode") == "markers+text")
    assert marker["x"] == [EXAMPLE["income"]] and marker["y"] == [EXAMPLE["loan_amount"]]


def test_each_decision_goes_on_record_with_the_officer(app, app_env):
    at = app.run()
    at.text_input(key="officer").input("Dana Whitfield").run()
    at = _submit(at)
    log = DecisionLog(_db_url()).read()
    assert len(log) == 1
    row = log.iloc[0]
    assert row["officer"] == "Dana Whitfield" and row["source"] == "form"
    assert row["model_version"] == load_model(app_env).version
    at.selectbox(key="decide.vary").select("loan_amount").run()
    assert DecisionLog(_db_url()).count() == 1, "redrawing a chart must not log the decision again"


def test_sidebar_names_the_model_in_use(app, app_env):
    at = app.run()
    model = load_model(app_env)
    sidebar = at.sidebar.markdown[0]
    assert model.sha256[:8] in sidebar.value and model.name in sidebar.value
    assert model.version in sidebar.help


def test_a_model_trained_on_another_csv_gets_its_own_form(app, app_env, tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({
        "monthly_income": rng.normal(4000, 900, n).round(),
        "region": rng.choice(["north", "south", "east"], n),
        "debt_ratio": rng.uniform(0, 0.8, n).round(3),
    })
    y = ((frame["monthly_income"] / 4000 - frame["debt_ratio"] + rng.normal(0, 0.3, n)) > 0.5).astype(int).to_numpy()
    result = train(frame, y, target="repaid", positive_label="yes", model="logistic")
    save_version(app_env, result.pipeline, result.card, result.holdout)
    at = app.run()
    assert not at.exception
    assert {ni.label for ni in at.number_input} >= {"Monthly income", "Debt ratio"}
    region = [s for s in at.selectbox if s.label == "Region"]
    assert region and set(region[0].options) >= {"north", "south", "east"}
    at.button(key=next(b.key for b in at.button if b.label == "Decide")).click().run()
    assert not at.exception
    assert _decision_text(at)


def _db_url() -> str:
    import os

    return os.environ["LOANDESK_DB_URL"]


@pytest.fixture(autouse=True)
def _quiet_streamlit_warnings(caplog):
    caplog.set_level("ERROR", logger="streamlit")


def test_first_start_trains_the_built_in_model(app, tmp_path, monkeypatch):
    empty = tmp_path / "fresh" / "loan_approval_model"
    monkeypatch.setattr("model.registry.store.builtin_model_dir", lambda: empty)  # stands in for the built-in folder
    monkeypatch.setenv("LOANDESK_MODEL_DIR", str(empty))
    at = app.run()
    assert not at.exception
    model = load_model(empty)
    assert model.card["data"]["source"].startswith("built-in applicants")
    assert model.sha256[:8] in at.sidebar.markdown[0].value
    assert {ni.label for ni in at.number_input} >= set(LABELS.values())


def test_a_tampered_model_is_refused_on_the_page_without_a_traceback(app, app_env):
    model = load_model(app_env)
    with open(model.path / "pipeline.joblib", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02")
    at = app.run()
    assert not at.exception
    assert any("cannot be used" in e.value and "does not match its model card" in e.value for e in at.error)


def test_a_value_above_a_fields_maximum_is_reported_not_silently_ignored(app):
    at = _submit(app.run(), credit_score=900)
    errors = " ".join(e.value for e in at.error)
    assert "nothing was decided" in errors
    assert any("Credit score" in m.value and "(900" in m.value and "must be at most 850" in m.value
               for m in at.markdown)
    assert _decision_text(at) == ""


def test_a_cleared_field_is_reported_not_silently_kept(app):
    at = _submit(app.run())
    assert "Approved" in _decision_text(at) or "Rejected" in _decision_text(at)
    at = _submit(at, income=None)
    assert {ni.label: ni.value for ni in at.number_input}["Annual income ($)"] is None  # stays cleared
    assert any("nothing was decided" in e.value for e in at.error)
    assert any("Annual income" in m.value and "is required" in m.value for m in at.markdown)
    assert _decision_text(at) == ""
