"""The Learn page's lessons: every mistake really changes the answer, computed with the real model."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler

from model import load_model
from model.core.formatting import format_value
from model.core.pipeline import model_kind
from model.learn import lessons
from model.registry.store import list_versions, load_holdout, save_version
from model.training.data import generate_applicants
from model.training.train import train, train_builtin

from .conftest import EXAMPLE


@pytest.fixture(scope="module")
def gbm_model(tmp_path_factory):
    """A gradient-boosting model (the auto choice picks logistic regression on the built-in data)."""
    registry = tmp_path_factory.mktemp("gbm") / "loan_approval_model"
    result = train_builtin(model="gbm", rows=2000)
    save_version(registry, result.pipeline, result.card, result.holdout)
    return load_model(registry)


@pytest.fixture(params=["auto", "gbm"])
def any_model(request, model, gbm_model):
    return model if request.param == "auto" else gbm_model


def run_snippet(code: str, **names) -> dict:
    namespace = {"np": np, "pd": pd, "StandardScaler": StandardScaler, **names}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(code, namespace)
    return namespace


def test_example_customer_is_the_lessons(model):
    assert lessons.example_customer(model) == EXAMPLE


def test_both_kinds_are_covered(model, gbm_model):
    assert model_kind(model.pipeline) == "logistic"
    assert model_kind(gbm_model.pipeline) == "gbm"


def test_every_mistake_changes_the_probability_and_the_right_way_is_predict_proba(any_model):
    expected = any_model.predict_proba(EXAMPLE)[0, 1]
    found = lessons.mistakes(any_model)
    assert [m.key for m in found] == ["preprocessing", "feature_order", "model_only", "manual_transform"]
    for mistake in found:
        assert mistake.right == pytest.approx(expected, abs=1e-12), mistake.key
        assert abs(mistake.wrong - mistake.right) > 1e-4, mistake.key
        assert mistake.difference == pytest.approx(mistake.wrong - mistake.right)
        assert mistake.right_label == ("Approved" if any_model.predict(EXAMPLE)[0] == 1 else "Rejected")


def test_the_wrong_code_shown_reproduces_the_wrong_probability(any_model):
    """Each wrong way, done again by the code the page shows, with plain scikit-learn calls."""
    pipeline = any_model.pipeline
    today = lessons.todays_batch(any_model)[any_model.schema.names]
    for mistake in lessons.mistakes(any_model):
        assert mistake.code, mistake.key
        ns = run_snippet(mistake.code, pipeline=pipeline, today=today)
        assert ns["wrong"] == pytest.approx(mistake.wrong, abs=1e-9), mistake.key
        assert ns["wrong"] != pytest.approx(pipeline.predict_proba(pd.DataFrame([EXAMPLE]))[0, 1], abs=1e-4)


def test_unscaled_values_are_what_the_bare_classifier_says(any_model):
    raw = np.array([[EXAMPLE[n] for n in any_model.schema.names]], dtype=float)
    direct = any_model.pipeline.named_steps["model"].predict_proba(raw)[0, 1]
    assert lessons.unscaled_inputs(any_model).wrong == pytest.approx(direct)


def test_swapping_income_and_loan_amount_flips_the_example_customer(any_model):
    mistake = lessons.changed_order(any_model)
    swapped = {**EXAMPLE, "income": EXAMPLE["loan_amount"], "loan_amount": EXAMPLE["income"]}
    assert mistake.wrong == pytest.approx(any_model.predict_proba(swapped)[0, 1])
    assert mistake.decision_changed
    assert mistake.seen.loc["Annual income", "Wrong way: the model reads"] == "$18,000"


def test_refitting_the_scaler_uses_todays_batch(any_model):
    batch = lessons.todays_batch(any_model)
    names = any_model.schema.names
    assert len(batch) == lessons.BATCH_SIZE
    assert batch.iloc[0].to_dict() == pytest.approx({k: float(v) for k, v in EXAMPLE.items()})
    scaled = StandardScaler().fit_transform(batch[names].to_numpy(dtype=float))
    direct = any_model.pipeline.named_steps["model"].predict_proba(scaled[:1])[0, 1]
    assert lessons.model_only(any_model).wrong == pytest.approx(direct)


def test_typed_constants_are_close_to_but_not_the_fitted_ones(model):
    scaler = model.pipeline.named_steps["preprocess"].named_transformers_["numbers"].named_steps["scale"]
    mean, std = lessons.typed_constants(model)
    assert not np.allclose(mean, scaler.mean_)
    assert np.all(np.abs(mean - scaler.mean_) <= 0.5 * 10 ** np.floor(np.log10(np.abs(scaler.mean_))))
    assert np.all(np.abs(std - scaler.scale_) <= 0.5 * 10 ** np.floor(np.log10(scaler.scale_)))


def test_holdout_effect_counts_changed_decisions(model):
    mistake = lessons.unscaled_inputs(model)
    holdout = load_holdout(model)[model.schema.names]
    right = model.predict(holdout)
    wrong = (model.pipeline.named_steps["model"].predict_proba(holdout.to_numpy(dtype=float))[:, 1]
             >= model.threshold).astype(int)
    assert mistake.holdout_rows == len(holdout)
    assert mistake.changed_share == pytest.approx(np.mean(wrong != right))
    assert mistake.wrong_approval_rate == pytest.approx(wrong.mean())
    assert mistake.right_approval_rate == pytest.approx(right.mean())
    assert f"{100 * np.mean(wrong != right):.1f}%" in mistake.holdout_text


def test_loandesk_refuses_bare_arrays_and_matches_names_in_any_order(model):
    with pytest.raises(TypeError, match="matched by name"):
        model.predict(np.array([[EXAMPLE[n] for n in model.schema.names]]))
    guard = lessons.order_guard(model)
    assert "name" in guard.refusal
    assert guard.shuffled_columns != model.schema.names
    shuffled = pd.DataFrame([EXAMPLE])[list(reversed(model.schema.names))]
    assert guard.shuffled_probability == pytest.approx(model.predict_proba(shuffled)[0, 1])
    assert guard.shuffled_probability == pytest.approx(guard.probability)


def test_practice_flip_point_separates_the_decisions(any_model):
    p = lessons.practice(any_model, EXAMPLE["income"])
    assert p.field == "income"
    assert p.flip is not None
    below = any_model.predict({**EXAMPLE, "income": p.flip - 200})[0]
    above = any_model.predict({**EXAMPLE, "income": p.flip + 200})[0]
    assert (below, above) == (0, 1)
    assert p.probability == pytest.approx(any_model.predict_proba(EXAMPLE)[0, 1])


def test_practice_sentence_states_the_flip_and_the_measured_slope(model):
    p = lessons.practice(model, EXAMPLE["income"])
    lo = model.predict_proba({**EXAMPLE, "income": p.flip - p.step / 2})[0, 1]
    hi = model.predict_proba({**EXAMPLE, "income": p.flip + p.step / 2})[0, 1]
    assert p.step == 1000
    assert p.slope_at_flip == pytest.approx(hi - lo)
    sentence = lessons.practice_sentence(model, p)
    f = model.schema["income"]
    assert f"about {format_value(f, round(p.flip / 1000) * 1000)}" in sentence
    assert f"each extra $1,000 of annual income adds {100 * (hi - lo):.1f} points" in sentence


def test_practice_moves_only_the_marker_not_the_curve(model):
    low, high = lessons.practice(model, 20_000), lessons.practice(model, 90_000)
    np.testing.assert_allclose(low.curve.probabilities, high.curve.probabilities)
    assert low.probability == pytest.approx(model.predict_proba({**EXAMPLE, "income": 20_000})[0, 1])


def test_points_are_signed_percentage_points():
    assert lessons.points(-0.076) == "−7.6 points"
    assert lessons.points(0.14) == "+14.0 points"
    assert lessons.points(0.0004) == "+0.04 points"


def test_quiz_has_feedback_for_every_choice():
    quiz = lessons.QUIZ
    assert set(quiz.wrong) | {quiz.correct} == set(range(len(quiz.options)))
    assert quiz.correct not in quiz.wrong


def test_mistakes_work_for_a_model_with_a_category_column(tmp_path):
    frame = generate_applicants(600, seed=3)
    frame["region"] = np.where(np.arange(len(frame)) % 3 == 0, "north", "south")
    features, y = frame.drop(columns="approved"), frame["approved"].to_numpy()
    result = train(features, y, target="approved", positive_label="1", model="logistic")
    save_version(tmp_path / "m", result.pipeline, result.card, result.holdout)
    custom = load_model(tmp_path / "m")
    for mistake in lessons.mistakes(custom):
        assert mistake.code is None  # the shown code would not be this model's
        assert mistake.right == pytest.approx(custom.predict_proba(lessons.example_customer(custom))[0, 1])
        assert abs(mistake.wrong - mistake.right) > 1e-6, mistake.key


# --- the flow's snippets run as shown ----------------------------------------------------------
def test_flow_steps_that_read_run_against_the_trained_model(trained, model, monkeypatch):
    monkeypatch.setenv("LOANDESK_MODEL_DIR", str(trained))
    ns: dict = {}
    for step in lessons.FLOW[2:]:
        ns = run_snippet(step.code, **{k: v for k, v in ns.items() if not k.startswith("__")})
    assert ns["model"].version == model.version
    assert ns["checked"].errors == []
    assert ns["decision"].probability == pytest.approx(model.predict_proba(EXAMPLE)[0, 1])
    assert [s.step for s in lessons.FLOW] == ["Train", "Save", "Load", "Accept input", "Return predictions"]


def test_the_whole_flow_trains_saves_and_serves_a_new_version(registry, monkeypatch):
    monkeypatch.setenv("LOANDESK_MODEL_DIR", str(registry))
    before = {v.version for v in list_versions(registry)}
    ns: dict = {}
    for step in lessons.FLOW:
        ns = run_snippet(step.code, **{k: v for k, v in ns.items() if not k.startswith("__")})
    after = list_versions(registry)
    new = [v for v in after if v.version not in before]
    assert [v.version for v in new] == [ns["version"]]
    assert new[0].active
    assert ns["model"].version == ns["version"]
    assert ns["decision"].label in {"Approved", "Rejected"}
