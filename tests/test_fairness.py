"""Prohibited bases kept out, age by law, proxies and the fairness report, on synthetic data with
known protected columns (tests/fair_data.py)."""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pytest
import tomli_w

from api.schemas import applicant_schema
from model import evaluation
from model.core.pipeline import MonotonicityError, base_estimator
from model.core.protected import ProtectedColumn
from model.evaluation.fairness import FOUR_FIFTHS, fairness_of, fairness_report, groups_of
from model.registry.store import load_holdout, load_model, save_version
from model.scoring.reasons import batch_reasons
from model.scoring.rows import RowDecision, RowErrors, decide_rows
from model.training.data import DataError, split_target
from model.training.proxies import measure_proxy
from model.training.spec import ColumnSpec, draft_spec, read_spec, write_spec
from model.training.train import train
from tests.fair_data import credit_frame

PROTECTED_NAMES = ("Race", "single")


def _train(frame: pd.DataFrame, **kwargs):
    features, y, positive = split_target(frame, "outcome", "granted")
    return train(features, y, target="outcome", positive_label=positive, **{"model": "logistic", **kwargs})


def _saved(trained, folder):
    save_version(folder, trained.pipeline, trained.card, trained.holdout)
    return load_model(folder)


@pytest.fixture(scope="module")
def fair_model(tmp_path_factory):
    return _saved(_train(credit_frame()), tmp_path_factory.mktemp("fair") / "model")


# --- prohibited bases --------------------------------------------------------------------------
def test_protected_columns_are_left_out_of_the_model_and_kept_beside_the_hold_out(fair_model):
    assert fair_model.schema.names == ["Age", "zip_index", "pti", "credit"]
    holdout = load_holdout(fair_model)
    assert {"Race", "single"} <= set(holdout.columns)
    assert set(holdout["Race"]) == {"White", "Black", "Asian"}
    columns = {c["name"]: c for c in fair_model.card["protected"]["columns"]}
    assert columns["Race"]["rule"] == 'its name contains "race"' and not columns["Race"]["used"]
    assert columns["single"]["basis"] == "marital status" and not columns["single"]["used"]
    assert columns["Age"]["used"] and columns["Age"]["age"]
    assert "never a reason against an applicant 62 or older" in columns["Age"]["status"]


def test_no_form_reason_api_schema_or_batch_column_of_a_default_model_holds_a_protected_column(fair_model):
    names = set(fair_model.schema.names)  # the form, the batch file's required columns and the API all follow it
    assert not names & set(PROTECTED_NAMES)
    properties = applicant_schema(fair_model.schema)["properties"]
    assert not set(properties) & set(PROTECTED_NAMES)
    assert set(applicant_schema(fair_model.schema)["required"]) == names
    holdout = load_holdout(fair_model)
    rows = holdout.drop(columns=["label", "probability"]).to_dict("records")  # Race and single sent too
    results = decide_rows(fair_model, rows)
    assert all(isinstance(r, RowDecision) for r in results)
    texts = " ".join(reason for r in results for reason in r.reasons)
    assert texts and "Race" not in texts and "Single" not in texts
    assert all(set(r.inputs) == names for r in results)  # what is logged: the model's fields only
    v = fair_model.validate(holdout)
    assert not any("Race" in t for t in batch_reasons(fair_model, v.clean, fair_model.approval_probability(v.clean)))


def test_changing_only_a_left_out_column_changes_no_decision(fair_model):
    holdout = load_holdout(fair_model).drop(columns=["label", "probability"])
    before = fair_model.predict(holdout)
    after = fair_model.predict(holdout.assign(Race="Black", single=1))
    assert (before == after).all()


def test_an_allowed_protected_column_is_used_with_its_justification_recorded(tmp_path):
    why = "special purpose credit program under 1002.8"
    model = _saved(_train(credit_frame(), allowed={"single": why}), tmp_path / "m")
    f = model.schema["single"]
    assert f.protected and f.basis == "marital_status" and not f.is_age
    [entry] = [c for c in model.card["protected"]["columns"] if c["name"] == "single"]
    assert entry["used"] and entry["justification"] == why and "allowed by --allow" in entry["status"]
    assert "Race" not in model.schema


@pytest.mark.parametrize("allowed, problem", [
    ({"income": "x"}, "unknown column"), ({"credit": "x"}, "not a protected column"),
    ({"Age": "x"}, "age is used without --allow"),
])
def test_allow_refuses_what_it_cannot_mean(allowed, problem):
    with pytest.raises(DataError, match=problem):
        _train(credit_frame(300), allowed=allowed)


def test_a_declared_column_is_left_out_like_a_found_one():
    trained = _train(credit_frame(400), declared={"zip_index": "declared"})
    assert "zip_index" not in trained.schema and "zip_index" in trained.holdout.columns
    [entry] = [c for c in trained.card["protected"]["columns"] if c["name"] == "zip_index"]
    assert entry["rule"] == "named by --protected"


# --- age ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def falling_age():
    """Data where approval falls steeply as age rises: a free model would learn it."""
    return credit_frame(1500, seed=5, age_effect=-0.06)


def test_logistic_regression_refuses_a_negative_age_coefficient_whatever_the_case_of_age(falling_age):
    with pytest.raises(MonotonicityError, match="Age"):
        _train(falling_age, model="logistic")


def test_gradient_boosting_never_lets_approval_fall_as_age_rises(falling_age, tmp_path):
    model = _saved(_train(falling_age, model="gbm"), tmp_path / "gbm")
    assert model.schema["Age"].monotone == 1 and model.schema["Age"].is_age
    holdout = load_holdout(model).drop(columns=["label", "probability"])
    for _, row in holdout.head(20).iterrows():
        grid = pd.DataFrame([{**row.to_dict(), "Age": a} for a in range(18, 81)])[model.schema.names]
        p = model.predict_proba(grid)[:, 1]
        assert np.all(np.diff(p) >= -1e-12)


def test_auto_takes_the_kind_whose_age_direction_holds(falling_age):
    trained = _train(falling_age, model="auto")
    assert trained.card["model_kind"] == "gbm"
    assert any("Age" in note for note in trained.card["selection"]["refused"])


def test_age_keeps_its_direction_on_the_fitted_logistic_model(fair_model):
    coef = dict(zip(fair_model.pipeline.named_steps["preprocess"].get_feature_names_out(),
                    base_estimator(fair_model.pipeline).coef_[0], strict=True))
    assert coef["Age"] >= 0


@pytest.mark.parametrize("sign", [-1, 0])
def test_monotone_refuses_to_turn_age_around_by_its_own_name(sign):
    with pytest.raises(DataError, match="Age is protected"):
        _train(credit_frame(300), monotone={"Age": sign})


def test_young_applicants_are_told_when_age_lowered_their_score_and_the_elderly_never(fair_model):
    young = {"Age": 19, "zip_index": 0.0, "pti": 0.45, "credit": 560}
    decision = fair_model.decide(young)
    assert not decision.approved and any(r.field == "Age" for r in decision.reasons)
    [row] = decide_rows(fair_model, [young])
    assert any(r.startswith("Age ") for r in row.reasons)
    fair_model.card["reference"]["Age"] = 79.0  # now even 62-78 sit below the typical approved age
    for age in (62, 70, 78):
        decision = fair_model.decide({**young, "Age": age})
        assert not decision.approved and decision.effects["Age"] < 0
        assert all(r.field != "Age" for r in decision.reasons)


# --- proxies -----------------------------------------------------------------------------------
def test_a_strong_proxy_is_measured_and_named_and_a_weak_one_is_not_flagged(fair_model):
    proxies = {p.column: p for p in evaluation.proxies(fair_model)}
    race, single = proxies["Race"], proxies["single"]
    assert race.measure == "AUC" and race.value > 0.75 and race.warn
    assert race.strongest[0][0] == "zip_index"
    assert 0.35 < single.value < 0.65 and not single.warn
    assert "zip_index" in race.sentence() and "above 0.70" in race.sentence()


def test_the_proxy_threshold_is_configurable():
    trained = _train(credit_frame(400), proxy_threshold=0.95)
    assert not any(p["warn"] for p in trained.card["protected"]["proxies"])
    with pytest.raises(DataError, match="--proxy-threshold"):
        _train(credit_frame(300), proxy_threshold=0.3)


def test_a_protected_number_is_measured_by_correlation():
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600)})
    proxy = measure_proxy(x, pd.Series(2 * x["a"] + rng.normal(scale=0.3, size=600), name="income_of_spouse"))
    assert proxy.measure == "correlation" and proxy.value > 0.9 and proxy.strongest[0][0] == "a"


# --- the fairness report -----------------------------------------------------------------------
def test_fairness_rates_are_the_plain_definitions_with_intervals_around_them(fair_model):
    holdout = load_holdout(fair_model)
    reports = {r.column: r for r in evaluation.fairness(fair_model)}
    assert set(reports) == {"Race", "single", "Age"}
    assert reports["Age"].used and not reports["Race"].used
    approved = holdout["probability"] >= fair_model.threshold
    table = reports["Race"].table.set_index("group")
    best = max(approved[holdout["Race"] == g].mean() for g in table.index)
    for group, row in table.iterrows():
        mine = holdout["Race"] == group
        good = mine & (holdout["label"] == 1)
        assert row["rows"] == mine.sum()
        assert row["approval_rate"] == pytest.approx(approved[mine].mean())
        assert row["impact_ratio"] == pytest.approx(approved[mine].mean() / best)
        assert row["flagged"] == (row["impact_ratio"] < FOUR_FIFTHS)
        assert row["tpr"] == pytest.approx(approved[good].mean())
        assert row["bad_rate"] == pytest.approx((holdout.loc[mine & approved, "label"] == 0).mean())
        for name in ("approval_rate", "impact_ratio", "tpr", "bad_rate"):
            assert row[f"{name}_low"] <= row[name] + 1e-9 and row[name] <= row[f"{name}_high"] + 1e-9


def test_age_is_reported_in_bands_the_last_one_62_and_older(fair_model):
    [age] = [r for r in evaluation.fairness(fair_model) if r.column == "Age"]
    assert list(age.table["group"]) == ["under 25", "25–39", "40–61", "62 or older"]
    holdout = load_holdout(fair_model)
    assert age.table.set_index("group").loc["62 or older", "rows"] == (holdout["Age"] >= 62).sum()


def test_a_group_under_four_fifths_is_flagged():
    groups = pd.Series(["a"] * 100 + ["b"] * 100)
    approved = np.r_[np.ones(80), np.zeros(20), np.ones(50), np.zeros(50)].astype(int)  # a: 80%, b: 50%
    label = np.ones(200, dtype=int)
    report = fairness_of(groups, label, approved, column="g", basis="race", used=False)
    assert report.flagged == ["b"]
    assert report.table.set_index("group").loc["b", "impact_ratio"] == pytest.approx(0.5 / 0.8)


def test_old_cards_get_age_from_the_schema_and_gaps_are_a_group_of_their_own(model):
    reports = evaluation.fairness(model)  # the built-in model's card
    assert [r.column for r in reports] == ["age"]
    gaps = groups_of(pd.Series(["x", None, "y"]))
    assert list(gaps) == ["x", "(not given)", "y"]


def test_the_report_covers_only_columns_the_hold_out_keeps():
    holdout = pd.DataFrame({"label": [1, 0, 1, 0], "probability": [0.9, 0.2, 0.7, 0.6], "sex": list("fmfm")})
    cols = [ProtectedColumn("sex", ("sex",), "x"), ProtectedColumn("race", ("race",), "y")]
    [only] = fairness_report(holdout, 0.5, cols, used=[], n_boot=20)
    assert only.column == "sex"


# --- required fields ---------------------------------------------------------------------------
def test_every_field_is_required_and_only_fields_with_gaps_take_null(fair_model, user_model):
    assert all(f.required for f in fair_model.schema.fields)  # no gaps in training
    [none] = decide_rows(fair_model, [{}])
    assert isinstance(none, RowErrors)
    [e] = none.errors
    assert e.field == "applicant" and e.why == "has none of the model's fields; expected: Age, zip_index, pti, credit"
    [one] = decide_rows(fair_model, [{"Age": 30}])
    assert {e.field for e in one.errors} == {"zip_index", "pti", "credit"}
    assert all(e.why.startswith("is missing") for e in one.errors)
    [null] = decide_rows(fair_model, [{"Age": 30, "zip_index": None, "pti": 0.2, "credit": 700}])
    assert [(e.field, e.why) for e in null.errors] == [("zip_index", "is required")]
    gappy = user_model.schema["savings"]  # had gaps in training: an explicit null is imputed
    assert not gappy.required and user_model.schema["pay"].required
    row = {f.name: f.default for f in user_model.schema.fields}
    [ok] = decide_rows(user_model, [{**row, "savings": None}])
    assert isinstance(ok, RowDecision) and ok.imputed == ["savings"]
    [missing] = decide_rows(user_model, [{k: v for k, v in row.items() if k != "savings"}])
    assert missing.errors[0].why == "is missing: every field of the model is required (send null when it is not known)"


@pytest.fixture(scope="module")
def user_model(tmp_path_factory):
    from tests.test_data import user_applicants

    features, y, positive = split_target(user_applicants(400, seed=1), "decision", "yes")
    trained = train(features, y, target="decision", positive_label=positive, model="logistic")
    return _saved(trained, tmp_path_factory.mktemp("user") / "model")


# --- the column spec ---------------------------------------------------------------------------
def test_a_written_spec_reads_back_and_names_the_fields(tmp_path):
    frame = credit_frame(400).drop(columns="outcome")
    path = write_spec(frame, tmp_path / "spec.toml")
    spec = read_spec(path)
    assert spec.columns["Race"]["protected"] == "race" and spec.columns["pti"]["protected"] is False
    assert spec.columns["Age"]["label"] == "Age" and spec.columns["Age"]["unit"] == "years"
    edited = tomllib.loads(path.read_text())
    assert edited["columns"]["pti"]["label"] == "Payment-to-income ratio"  # a common code, read as words
    edited["columns"]["pti"].update(label="Monthly payment over income", description="Payment over income.",
                                    monotone=-1)
    path.write_text(tomli_w.dumps(edited))
    pti = _train(credit_frame(600), spec=read_spec(path)).schema["pti"]
    assert (pti.label, pti.help, pti.monotone) == ("Monthly payment over income", "Payment over income.", -1)
    with pytest.raises(DataError, match="the file exists"):
        write_spec(frame, path)  # an edited spec is never overwritten
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "planted.toml").symlink_to(victim)
    with pytest.raises(DataError, match="the file exists"):
        write_spec(frame, tmp_path / "planted.toml")  # nor a file reached through a link planted at the name
    assert victim.read_text() == "keep me"


@pytest.mark.parametrize("body, problem", [
    ('[columns.pti]\nlable = "x"\n', "pti.lable: unknown key"),
    ('[columns.pti]\nmonotone = 2\n', "pti.monotone: should be +1, -1 or 0"),
    ('[columns.pti]\nprotected = "maybe"\n', "pti.protected: should be true, false or one of"),
    ('[columns.pti]\nlabel = 3\n', "pti.label: should be text"),
    ('[columns.pti\n', "not valid TOML"),
])
def test_a_bad_spec_is_refused_naming_column_and_key(tmp_path, body, problem):
    path = tmp_path / "spec.toml"
    path.write_text(body)
    with pytest.raises(DataError, match=problem.replace("(", r"\(").replace("+", r"\+")):
        read_spec(path)


def test_a_spec_cannot_unprotect_a_found_column_nor_name_an_unknown_one():
    with pytest.raises(DataError, match="--allow Race --justification"):
        _train(credit_frame(300), spec=ColumnSpec({"Race": {"protected": False}}))
    with pytest.raises(DataError, match="not in the data: nope"):
        _train(credit_frame(300), spec=ColumnSpec({"nope": {"label": "x"}}))
    draft = draft_spec(credit_frame(50).drop(columns="outcome"))
    assert draft["columns"]["single"]["protected"] == "marital_status"


# --- what would change the decision, and the Learn page's words ------------------------------------
def test_a_field_with_no_declared_direction_gets_its_flip_point_shown_precisely(fair_model):
    applicant = {"Age": 45, "zip_index": 0.0, "pti": 0.55, "credit": 700}
    decision = fair_model.decide(applicant)
    assert not decision.approved and fair_model.schema["pti"].monotone == 0
    flip = decision.flips["pti"]
    assert flip.text.startswith("Approved up to a payment-to-income ratio of ") and flip.value is not None
    shown = flip.text.rsplit(" ", 1)[-1]
    assert len(shown.split(".")[1]) >= 3, shown  # 0.4123, never "0.4"
    assert float(shown) == pytest.approx(flip.value)
    assert fair_model.predict({**applicant, "pti": flip.value})[0] == 1
    assert fair_model.predict({**applicant, "pti": flip.value + 0.002})[0] == 0


def test_a_curve_that_crosses_twice_gets_both_ends_of_its_approved_stretch(tmp_path):
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"ratio": rng.uniform(0, 1, 3000), "credit": rng.integers(500, 800, 3000)})
    logit = 2.5 - 60 * (frame["ratio"] - 0.5) ** 2 + 0.01 * (frame["credit"] - 650)
    frame["outcome"] = np.where(rng.random(3000) < 1 / (1 + np.exp(-logit)), "granted", "denied")
    model = _saved(_train(frame, model="gbm"), tmp_path / "peak")
    applicant = {"ratio": 0.05, "credit": 780}
    flip = model.decide(applicant).flips["ratio"]
    assert len(flip.crossings) >= 2 and flip.text.startswith("Approved with a ratio from 0.")
    low, high = flip.crossings[0], flip.crossings[-1]
    assert 0.15 < low < 0.5 < high < 0.85
    for value, approved in ((0.05, 0), ((low + high) / 2, 1), (0.95, 0)):
        assert model.predict({**applicant, "ratio": value})[0] == approved


def test_learn_reads_the_flip_side_from_the_curve_and_writes_the_step_it_means(fair_model):
    from model.learn import lessons

    p = lessons.practice(fair_model, 0.3, field="pti")
    sentence = lessons.practice_sentence(fair_model, p)
    assert "below it this customer is approved, above it rejected" in sentence
    assert "each extra 0.01 of payment-to-income ratio takes away" in sentence and "0.0 of" not in sentence


def test_v1_model_says_what_approved_means_and_any_prohibited_basis_in_use(tmp_path, fair_model):
    from api.routes.model import public_card

    why = "special purpose credit program"
    allowed = _saved(_train(credit_frame(500), allowed={"single": why}), tmp_path / "allowed")
    card = public_card(allowed)
    assert card["prohibited_bases_used"] == [{"column": "single", "basis": "marital status", "justification": why}]
    assert card["label_meaning"].startswith("approved means outcome = granted: ")
    assert {c["name"] for c in card["protected"]["columns"]} == {"Age", "Race", "single"}
    assert public_card(fair_model)["prohibited_bases_used"] == []
