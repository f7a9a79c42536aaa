"""The compiled logistic form: the saved pipeline's probabilities, without scikit-learn's per-call cost."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.special import expit

from model.scoring.compiled import compile_pipeline, probe_applicants
from model.scoring.predictor import LoanModel
from model.training.data import split_target
from model.training.train import train

from .test_data import user_applicants


def _compare(model: LoanModel, n: int, seed: int) -> float:
    frame = probe_applicants(model.schema, n, seed=seed)
    columns = {name: frame[name].to_numpy() for name in model.schema.names}
    expected = model.pipeline.predict_proba(frame)[:, 1]
    return float(np.max(np.abs(model.score_columns(columns) - expected)))


def test_builtin_model_is_compiled_and_matches_the_pipeline(model):
    assert model.compiled
    assert _compare(model, 4000, seed=11) <= 1e-9


@pytest.fixture(scope="module")
def csv_model() -> LoanModel:
    """A logistic model trained on a CSV with a text column and gaps."""
    features, y, positive = split_target(user_applicants(500, seed=3), "decision", "yes")
    result = train(features, y, target="decision", positive_label=positive, model="logistic")
    card = {**result.card, "name": "csv", "version": "test", "pipeline_sha256": "0" * 64}
    return LoanModel(result.pipeline, card, ".")


def test_text_columns_gaps_and_unknown_categories_match_the_pipeline(csv_model):
    assert csv_model.compiled and csv_model.schema.categories
    frame = probe_applicants(csv_model.schema, 3000, seed=5)
    assert frame[csv_model.schema.categories[0]].isin(["never-seen"]).any()  # unknown categories probed
    assert frame.isna().any().any()
    expected = csv_model.pipeline.predict_proba(frame)[:, 1]
    got = csv_model.score_columns({n: frame[n].to_numpy() for n in csv_model.schema.names})
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_gradient_boosting_is_left_to_scikit_learn():
    features, y, positive = split_target(user_applicants(300, seed=4), "decision", "yes")
    result = train(features, y, target="decision", positive_label=positive, model="gbm")
    gbm = LoanModel(result.pipeline, {**result.card, "name": "gbm", "version": "t", "pipeline_sha256": "0" * 64}, ".")
    assert not gbm.compiled
    frame = probe_applicants(gbm.schema, 300, seed=6)
    got = gbm.score_columns({n: frame[n].to_numpy() for n in gbm.schema.names})
    np.testing.assert_allclose(got, gbm.pipeline.predict_proba(frame)[:, 1], rtol=0, atol=1e-12)


def test_a_compiled_form_that_disagrees_is_never_used(model, monkeypatch, caplog):
    """Should the folding ever be wrong (a new scikit-learn, say), scikit-learn is used instead."""
    import model.scoring.compiled as compiled

    real_fold = compiled._fold

    def off_by_a_little(pipeline):
        form = real_fold(pipeline)
        return compiled.CompiledLogistic(form.numbers, form.categories, form.intercept + 1e-6, form.calibration)

    monkeypatch.setattr(compiled, "_fold", off_by_a_little)
    with caplog.at_level(logging.WARNING, logger="loandesk.compiled"):
        assert compile_pipeline(model.pipeline, model.schema) is None
    assert "differs from the pipeline" in caplog.text
    slow = LoanModel(model.pipeline, model.card, model.path)
    assert not slow.compiled
    frame = probe_applicants(model.schema, 200, seed=9)
    columns = {n: frame[n].to_numpy() for n in model.schema.names}
    np.testing.assert_allclose(slow.score_columns(columns), model.score_columns(columns), rtol=0, atol=1e-9)


def test_swapping_a_field_for_its_reference_matches_scikit_learn(model, monkeypatch):
    """Reasons swap one field at a time; the compiled form swaps a term of the sum instead of rescoring."""
    import model.scoring.predictor as predictor

    monkeypatch.setattr(predictor, "compile_pipeline", lambda *args: None)
    slow = LoanModel(model.pipeline, model.card, model.path)
    assert not slow.compiled
    frame = probe_applicants(model.schema, 500, seed=12)
    columns = {n: frame[n].to_numpy() for n in model.schema.names}
    names = ["income", "credit_score", "loan_amount"]
    reference = model.card["reference"]
    fast = expit(model.swapped_log_odds(columns, names, reference))
    assert fast.shape == (3, 500)
    np.testing.assert_allclose(fast, expit(slow.swapped_log_odds(columns, names, reference)), rtol=0, atol=1e-9)
    np.testing.assert_allclose(expit(model.log_odds(columns)), slow.score_columns(columns), rtol=0, atol=1e-9)
