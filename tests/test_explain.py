"""Explanations: flip points where the curve really crosses, reasons that obey the law, vectorized curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from model.registry.store import load_model, save_version
from model.scoring.explain import CURVE_POINTS, REFINE_POINTS, REFINE_ROUNDS, _display_unit, grid_2d, sensitivity_curve
from model.scoring.reasons import MIN_LOG_ODDS, batch_reasons, log_odds
from model.training.data import generate_applicants, split_target
from model.training.train import train

from .conftest import EXAMPLE
from .test_data import user_applicants

FLIP_FIELDS = {"income": +1, "credit_score": +1, "loan_amount": -1}


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread():
    """Gradient boosting on a shared, busy machine: one OpenMP thread is many times faster than two."""
    with threadpool_limits(1, user_api="openmp"):
        yield


def _approved(model, applicant: dict, **changes) -> bool:
    return bool(model.predict({**applicant, **changes})[0])


def _money(x: float) -> str:
    return f"${x:,.0f}"


def _valid_range(model, applicant: dict, name: str) -> tuple[float, float]:
    """Training range, within hard bounds and employment ≤ age − 14 (worked out here, not by explain)."""
    f = model.schema[name]
    lo, hi = f.train_min, f.train_max
    if f.hard_min is not None:
        lo = max(lo, f.hard_min)
    if f.hard_max is not None:
        hi = min(hi, f.hard_max)
    if name == "employment_years":
        hi = min(hi, applicant["age"] - 14)
    return lo, hi


@pytest.fixture(scope="module")
def applicants() -> list[dict]:
    return generate_applicants(40, seed=31).drop(columns="approved").to_dict("records")


@pytest.fixture
def predict_calls(model, monkeypatch) -> list[int]:
    """Counts scoring calls (compiled or scikit-learn): one per vectorized batch, however many rows."""
    real = model.score_columns
    calls: list[int] = []

    def counted(columns, *args, **kwargs):
        calls.append(len(next(iter(columns.values()))))
        return real(columns, *args, **kwargs)

    monkeypatch.setattr(model, "score_columns", counted)
    return calls


# --- flip points -----------------------------------------------------------------------------
def test_flip_point_is_where_the_decision_changes(model, applicants):
    checked = {name: 0 for name in FLIP_FIELDS}
    labels = set()
    for applicant in applicants:
        decision = model.decide(applicant)
        for name, direction in FLIP_FIELDS.items():
            value = decision.flips[name].value
            if value is None:
                continue
            f = model.schema[name]
            lo, hi = _valid_range(model, applicant, name)
            span = hi - lo
            unit = _display_unit(f)
            assert unit <= span / 100, "display rounding must stay fine next to the range"
            tolerance = unit + span / (CURVE_POINTS - 1) / (REFINE_POINTS - 1) ** REFINE_ROUNDS + 1e-9 * span
            assert _approved(model, applicant, **{name: value}), (name, applicant, value)
            beyond = value - direction * tolerance  # a little on the rejected side
            beyond = min(max(beyond, lo), hi)
            assert not _approved(model, applicant, **{name: beyond}), (name, applicant, value, beyond)
            # The sentence shows the value as people write it.
            shown = _money(value) if f.unit == "$" else f"{value:,.0f}"
            assert shown in decision.flips[name].text and f.label.lower() in decision.flips[name].text.lower()
            checked[name] += 1
            labels.add(decision.label)
    assert min(checked.values()) >= 5, checked
    assert labels == {"Approved", "Rejected"}


def test_flip_for_the_current_field_of_a_rejected_applicant_points_to_approval(model):
    applicant = {"age": 30, "income": 30_000, "credit_score": 600, "loan_amount": 25_000, "employment_years": 3}
    decision = model.decide(applicant)
    assert decision.label == "Rejected"
    income = decision.flips["income"].value
    assert income is not None and income > applicant["income"]
    assert "Approved from" in decision.flips["income"].text
    loan = decision.flips["loan_amount"].value
    if loan is not None:
        assert loan < applicant["loan_amount"] and "Largest" in decision.flips["loan_amount"].text


def test_flip_points_respect_employment_at_most_age_minus_14(model, applicants):
    for applicant in applicants:
        value = model.decide(applicant).flips["employment_years"].value
        if value is not None:
            assert model.validate({**applicant, "employment_years": value}).ok, (applicant, value)


def test_no_flip_within_range_says_so_and_is_true(model):
    strong = {"age": 50, "income": 150_000, "credit_score": 820, "loan_amount": 5_000, "employment_years": 20}
    weak = {"age": 22, "income": 15_000, "credit_score": 420, "loan_amount": 40_000, "employment_years": 1}
    assert model.decide(strong).label == "Approved" and model.decide(weak).label == "Rejected"

    for applicant, name in [(strong, "employment_years"), (strong, "income"), (weak, "loan_amount"),
                            (weak, "credit_score")]:
        flip = model.decide(applicant).flips[name]
        assert flip.value is None
        f = model.schema[name]
        lo, hi = _valid_range(model, applicant, name)
        ends = [_approved(model, applicant, **{name: x}) for x in (lo, hi)]
        assert ends[0] == ends[1], "no flip within range: both ends decide alike"
        assert _written(f, lo) in flip.text and _written(f, hi) in flip.text
        assert f.label.lower() in flip.text.lower()
        if ends[0]:
            assert flip.text.startswith("Approved at any")
        else:
            assert flip.text.startswith("No ") and "would get this applicant approved" in flip.text


def test_age_never_gets_a_flip_sentence(model, applicants):
    for applicant in applicants[:5]:
        assert "age" not in model.decide(applicant).flips


# --- reasons ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def age_matters(tmp_path_factory):
    """A model trained where older applicants were approved far more often: age would be a reason."""
    rng = np.random.default_rng(8)
    n = 800
    frame = pd.DataFrame({
        "age": rng.integers(18, 76, n),
        "income": np.round(rng.lognormal(10.9, 0.4, n), -2),
        "credit_score": rng.integers(450, 850, n),
    })
    logit = 0.08 * (frame["age"] - 40) + 0.012 * (frame["credit_score"] - 650) + (np.log(frame["income"]) - 10.9)
    frame["approved"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    features, y, positive = split_target(frame, "approved", "1")
    result = train(features, y, target="approved", positive_label=positive, model="logistic")
    folder = tmp_path_factory.mktemp("age") / "model"
    save_version(folder, result.pipeline, result.card, result.holdout)
    return load_model(folder)


def test_age_that_lowers_a_young_applicants_score_is_disclosed_as_a_principal_reason(age_matters):
    assert age_matters.schema["age"].protected and age_matters.schema["age"].is_age
    applicant = {"age": 19, "income": 54_000, "credit_score": 640}
    decision = age_matters.decide(applicant)
    assert decision.label == "Rejected"
    # Age counts: it moves the probability more than any other field, so it may not be left out
    # (Regulation B comment 9(b)(2)-4), and it is said first, in plain words.
    assert decision.effects["age"] < 0 and counts(decision.probability, decision.probability - decision.effects["age"])
    assert decision.reasons[0].field == "age" and decision.reasons[0].direction == "against"
    assert decision.reasons[0].text.startswith("Age 19 years is well below the typical approved applicant's")
    v = age_matters.validate(applicant)
    [text] = batch_reasons(age_matters, v.clean, age_matters.approval_probability(v.clean))
    assert text.startswith("Age is well below the typical approved applicant's")


def test_age_is_never_a_reason_against_an_applicant_62_or_older(age_matters):
    """Even where a 62-year-old is below the typical approved applicant's age (here made 75), age is
    never given against them (1002.6(b)(2)(ii)); the other reasons still are."""
    model = load_model(age_matters.path)
    model.card["reference"]["age"] = 75.0
    for age in (62, 64, 70):
        applicant = {"age": age, "income": 20_000, "credit_score": 460}
        decision = model.decide(applicant)
        assert decision.label == "Rejected"
        assert decision.effects["age"] < 0, "age would lower the score against this reference"
        assert decision.reasons and all(r.field != "age" for r in decision.reasons)
        v = model.validate(applicant)
        [text] = batch_reasons(model, v.clean, model.approval_probability(v.clean))
        assert text and "Age" not in text
    young = model.decide({"age": 30, "income": 20_000, "credit_score": 460})
    assert any(r.field == "age" for r in young.reasons)


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory):
    """A user's model with six fields that count, so that more than four reasons could apply."""
    frame = user_applicants(600, seed=12)
    features, y, positive = split_target(frame, "decision", "yes")
    result = train(features, y, target="decision", positive_label=positive, model="logistic")
    folder = tmp_path_factory.mktemp("wide") / "model"
    save_version(folder, result.pipeline, result.card, result.holdout)
    return load_model(folder)


def test_at_most_four_reasons_the_strongest_first(wide_model):
    candidates = user_applicants(300, seed=13).drop(columns="decision").dropna().to_dict("records")
    capped = 0
    for applicant in candidates:
        d = wide_model.decide(applicant)
        assert len(d.reasons) <= 4
        supporting = sorted((abs(e) for e in d.effects.values()
                             if e != 0 and (e > 0) == d.approved and counts(d.probability, d.probability - e)),
                            reverse=True)
        assert [abs(r.effect) for r in d.reasons] == pytest.approx(supporting[:4])
        capped += len(supporting) > 4
    assert capped >= 3, "the sample must hold applicants with more than four possible reasons"


def test_reasons_support_the_decision(model, applicants):
    for applicant in applicants:
        d = model.decide(applicant)
        for r in d.reasons:
            assert r.direction == ("for" if d.approved else "against")
            assert (r.effect > 0) == d.approved


def _written(f, value: float) -> str:
    if f.unit == "$":
        return _money(value)
    if f.unit == "years":
        text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
        return f"{text} year" if text == "1" else f"{text} years"
    return f"{value:,.0f}"


def test_reason_text_names_the_field_the_value_and_the_typical_approved_value(model, applicants):
    reference = model.card["reference"]
    seen = 0
    for applicant in applicants:
        d = model.decide(applicant)
        for r in d.reasons:
            f = model.schema[r.field]
            assert r.text.startswith(f.label)
            assert _written(f, applicant[r.field]) in r.text
            assert f"typical approved applicant's {_written(f, reference[r.field])}" in r.text
            side = "above" if applicant[r.field] > reference[r.field] else "below"
            assert side in r.text
            assert "nan" not in r.text.lower() and "e+" not in r.text
            seen += 1
    assert seen >= 20


def test_typical_approved_applicant_is_the_median_of_approved_training_rows(model):
    data = generate_applicants(5000, seed=42)
    approved = data[data["approved"] == 1]
    for name, value in model.card["reference"].items():
        # The training split is 80% of the rows, so its median sits near the full one.
        assert abs(value - approved[name].median()) <= 0.05 * approved[name].std(), name


def test_batch_reasons_agree_with_single_decisions(model, applicants):
    frame = pd.DataFrame(applicants)
    v = model.validate(frame)
    texts = batch_reasons(model, v.clean, model.approval_probability(v.clean))
    assert len(texts) == len(applicants)
    for applicant, text in zip(applicants, texts, strict=True):
        d = model.decide(applicant)
        labels = [model.schema[r.field].label for r in d.reasons]
        parts = text.split("; ") if text else []
        assert len(parts) == len(labels) <= 4
        for label, part in zip(labels, parts, strict=True):
            assert part.startswith(label)


# --- curves and grids ------------------------------------------------------------------------
def test_sensitivity_curve_is_the_models_own_probabilities(model):
    curve = sensitivity_curve(model, EXAMPLE, "income")
    f = model.schema["income"]
    assert len(curve.values) == CURVE_POINTS == 200
    assert (curve.values[0], curve.values[-1]) == (f.train_min, f.train_max)
    assert np.all(np.diff(curve.values) > 0)
    rows = pd.DataFrame([EXAMPLE] * len(curve.values)).assign(income=curve.values)
    np.testing.assert_allclose(curve.probabilities, model.predict_proba(rows)[:, 1], rtol=0, atol=1e-12)
    assert curve.current == EXAMPLE["income"]
    assert curve.current_probability == pytest.approx(model.predict_proba(EXAMPLE)[0, 1], abs=1e-12)
    assert curve.threshold == model.threshold


def test_sensitivity_curve_stays_within_what_is_allowed(model):
    applicant = {**EXAMPLE, "age": 30, "employment_years": 4}
    curve = sensitivity_curve(model, applicant, "employment_years", points=50)
    assert len(curve.values) == 50
    assert curve.values[0] == 0 and curve.values[-1] == 30 - 14


def test_sensitivity_curve_flip_is_a_crossing(model):
    applicant = {"age": 30, "income": 30_000, "credit_score": 600, "loan_amount": 25_000, "employment_years": 3}
    curve = sensitivity_curve(model, applicant, "credit_score")
    [flip] = curve.flips
    approved = curve.probabilities >= model.threshold
    first = np.flatnonzero(approved)[0]
    assert curve.values[first - 1] <= flip <= curve.values[first]
    assert _approved(model, applicant, credit_score=flip)


def test_curve_and_decision_take_a_fixed_number_of_predict_calls(model, predict_calls):
    sensitivity_curve(model, EXAMPLE, "employment_years")  # approved throughout: no refinement
    assert predict_calls == [1 + CURVE_POINTS]
    predict_calls.clear()
    sensitivity_curve(model, EXAMPLE, "income", points=400)
    assert len(predict_calls) <= 1 + REFINE_ROUNDS and predict_calls[0] == 401
    predict_calls.clear()
    model.decide(EXAMPLE, curve_field="income")
    assert len(predict_calls) <= 1 + REFINE_ROUNDS
    assert predict_calls[0] >= 3 * CURVE_POINTS  # every curve and every swap in the first call


def test_grid_2d_matches_single_predictions(model, predict_calls):
    grid = grid_2d(model, EXAMPLE, "income", "credit_score", points=25)
    assert len(predict_calls) == 1
    assert grid.probabilities.shape == (len(grid.ys), len(grid.xs)) == (25, 25)
    assert np.all(np.diff(grid.xs) > 0) and np.all(np.diff(grid.ys) > 0)
    rng = np.random.default_rng(0)
    cells = [(int(i), int(j)) for i, j in rng.integers(0, 25, (12, 2))]
    rows = pd.DataFrame([{**EXAMPLE, "income": grid.xs[j], "credit_score": grid.ys[i]} for i, j in cells])
    expected = model.predict_proba(rows)[:, 1]
    np.testing.assert_allclose([grid.probabilities[i, j] for i, j in cells], expected, rtol=0, atol=1e-12)
    # Both fields raise approval: the surface never falls along either axis.
    assert (np.diff(grid.probabilities, axis=0) >= -1e-12).all()
    assert (np.diff(grid.probabilities, axis=1) >= -1e-12).all()
    assert grid.current == (EXAMPLE["income"], EXAMPLE["credit_score"])


def test_grid_2d_refuses_the_same_field_twice(model):
    with pytest.raises(ValueError, match="two different"):
        grid_2d(model, EXAMPLE, "income", "income")


def test_decision_curve_for_a_text_field_shows_each_category(wide_model):
    applicant = wide_model.schema.defaults()
    curve = sensitivity_curve(wide_model, applicant, "region")
    assert list(curve.values) == list(wide_model.schema["region"].categories)
    expected = [wide_model.predict_proba({**applicant, "region": r})[0, 1] for r in curve.values]
    np.testing.assert_allclose(curve.probabilities, expected, rtol=0, atol=1e-12)


def test_decide_accepts_a_text_curve_field(wide_model):
    applicant = wide_model.schema.defaults()
    decision = wide_model.decide(applicant, curve_field="region")
    assert list(decision.curve.values) == list(wide_model.schema["region"].categories)


def test_a_very_confident_rejection_still_gets_its_reasons(model):
    """At a probability of 1e-8 no field moves the probability by half a point, but each moves the
    log-odds: an applicant turned down must still hear why (and age is never one of the reasons)."""
    applicant = {"age": 30, "income": 15_000, "credit_score": 420, "loan_amount": 90_000, "employment_years": 1}
    d = model.decide(applicant)
    assert d.probability < 1e-4 and d.label == "Rejected"
    assert all(abs(e) < 0.005 for e in d.effects.values())  # the old probability rule found nothing here
    assert {r.field for r in d.reasons} >= {"credit_score", "income", "loan_amount"}
    assert all(r.direction == "against" for r in d.reasons) and all(r.field != "age" for r in d.reasons)
    v = model.validate(applicant)
    [text] = batch_reasons(model, v.clean, model.approval_probability(v.clean))
    parts = text.split("; ")  # the batch's reasons: the same fields in the same order, values left out
    assert [p.split(" is ")[0] for p in parts] == [model.schema[r.field].label for r in d.reasons]


def test_a_field_that_barely_moves_the_log_odds_is_no_reason(model):
    d = model.decide(EXAMPLE)
    for r in d.reasons:
        assert counts(d.probability, d.probability - r.effect)
    weak = [name for name, e in d.effects.items() if e != 0 and not counts(d.probability, d.probability - e)]
    assert not {r.field for r in d.reasons} & set(weak)


def counts(p: float, swapped: float) -> bool:
    """The reason rule in the test's own words: swapping the field moved the log-odds by MIN_LOG_ODDS."""
    return bool(abs(log_odds(p) - log_odds(swapped)) >= MIN_LOG_ODDS)


@pytest.mark.parametrize("applicant, label", [
    ({"age": 40, "income": 900_000, "credit_score": 850, "loan_amount": 1_000, "employment_years": 20}, "Approved"),
    ({"age": 40, "income": 15_000, "credit_score": 300, "loan_amount": "largest accepted", "employment_years": 0},
     "Rejected"),
])
def test_reasons_survive_a_probability_that_rounds_to_0_or_1(model, applicant, label):
    """Where the probability is exactly 0.0 or 1.0 (or as near as the bounds allow: 1e-100),
    swapping a field changes no probability at all; the model's log-odds still say which fields
    carry the decision."""
    if applicant["loan_amount"] == "largest accepted":
        applicant = {**applicant, "loan_amount": model.schema["loan_amount"].hard_max}
    d = model.decide(applicant)
    assert d.label == label and min(d.probability, 1 - d.probability) < 1e-12
    assert {r.field for r in d.reasons} >= {"income", "credit_score", "loan_amount"}
    v = model.validate(applicant)
    [text] = batch_reasons(model, v.clean, model.approval_probability(v.clean))
    assert len(text.split("; ")) == len(d.reasons)


@pytest.fixture(scope="module")
def boosted(tmp_path_factory):
    """A gradient-boosted model: not compiled, so its swaps are scored by scikit-learn."""
    frame = generate_applicants(600, seed=5)
    features, y, positive = split_target(frame, "approved", "1")
    result = train(features, y, target="approved", positive_label=positive, model="gbm")
    folder = tmp_path_factory.mktemp("gbm") / "model"
    save_version(folder, result.pipeline, result.card, result.holdout)
    loaded = load_model(folder)
    assert not loaded.compiled
    return loaded


@pytest.mark.parametrize("which", ["built-in", "csv with a text column", "gradient boosting"])
def test_the_form_decision_is_the_one_decision_path(which, model, boosted, tmp_path):
    """The Decide page's decision (explain.decide) is `decisions.decide`'s: the same probability,
    decision, refer flag and reasons in the same order with the same codes, for every applicant."""
    import shutil
    from pathlib import Path

    from model.scoring.decisions import decide
    from model.scoring.reasons import reason_text

    if which != "csv with a text column":
        subject = model if which == "built-in" else boosted
        rows = generate_applicants(60, seed=77).drop(columns="approved")
    else:
        fixtures = Path(__file__).parent / "fixtures"
        shutil.copytree(fixtures / "legacy_model", tmp_path / "legacy")
        subject = load_model(tmp_path / "legacy")
        rows = pd.read_csv(fixtures / "legacy_expected.csv").drop(columns="expected_probability")
    decided = decide(subject, rows)
    assert len(decided) == len(rows)
    reference = subject.card.reference
    gave_reasons = 0
    for i, applicant in enumerate(rows.to_dict("records")):
        one = subject.decide(applicant)
        combination = decided.reason_index[i]
        assert one.probability == pytest.approx(float(decided.probability[i]), abs=1e-12)
        assert one.decision == int(decided.decision[i])
        assert one.referred == bool(decided.referred[i])
        assert tuple(one.reason_codes) == decided.code_lists[combination]
        assert tuple(r.field for r in one.reasons) == decided.field_lists[combination]
        assert tuple(reason_text(subject.schema[r.field], one.applicant[r.field], reference[r.field], with_value=False)
                     for r in one.reasons) == decided.reason_lists[combination]
        gave_reasons += bool(one.reasons)
    assert gave_reasons > len(rows) // 2


def test_a_form_decision_by_a_boosted_model_takes_two_predict_calls(boosted, monkeypatch):
    """Its reasons come from the swaps scored with the curves, not from a scikit-learn call of their own."""
    boosted.decide(EXAMPLE)  # the one-off checks of a model's first decision are not counted
    estimator = boosted.pipeline[-1]
    calls: list[int] = []
    real = estimator.predict_proba
    monkeypatch.setattr(estimator, "predict_proba", lambda X: calls.append(len(X)) or real(X))
    boosted.decide(EXAMPLE, curve_field="income")
    assert 1 <= len(calls) <= 1 + REFINE_ROUNDS, calls
