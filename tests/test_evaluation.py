"""model/evaluation.py: every number the Model page shows, checked against an independent recomputation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

from model import evaluation
from model.registry.store import load_holdout, load_model, save_version
from model.training.train import evaluate, train, train_builtin


@pytest.fixture(scope="module")
def holdout(model) -> pd.DataFrame:
    return load_holdout(model)


@pytest.fixture(scope="module")
def report(model) -> evaluation.Report:
    return evaluation.report(model)


def _rates(y: np.ndarray, p: np.ndarray, t: float) -> dict[str, float]:
    """The three explorer rates by their plain definitions, with pandas, independently of the module."""
    frame = pd.DataFrame({"good": y == 1, "approved": p >= t})
    approved = frame[frame.approved]
    return {
        "approval_rate": frame.approved.mean(),
        "bad_rate_among_approved": (~approved.good).mean() if len(approved) else 0.0,
        "good_rejected_share": (~frame[frame.good].approved).mean(),
    }


def test_card_metrics_match_a_recomputation_from_the_stored_holdout(model, holdout):
    y, p = holdout["label"].to_numpy(), holdout["probability"].to_numpy()
    t = model.threshold
    expected = {
        "auc": roc_auc_score(y, p),
        "brier": brier_score_loss(y, p),
        "log_loss": log_loss(y, np.clip(p, 1e-6, 1 - 1e-6)),
        "accuracy": accuracy_score(y, (p >= t).astype(int)),
        **_rates(y, p, t),
    }
    card = model.card["metrics"]
    for key, value in expected.items():
        assert card[key] == pytest.approx(value, abs=1e-12), key
    assert card["n_test"] == len(holdout)


def test_the_stored_probabilities_are_this_pipelines_own(model, holdout):
    """So every plot drawn from the hold-out describes the version it is stored with."""
    fresh = model.approval_probability(model.validate(holdout[model.schema.names]).clean)
    np.testing.assert_allclose(holdout["probability"], fresh, rtol=0, atol=1e-12)


def test_report_recomputes_the_cards_metrics(model, report):
    for key in ("auc", "brier", "log_loss", "accuracy", "approval_rate", "bad_rate_among_approved",
                "good_rejected_share"):
        assert report.metrics[key] == pytest.approx(model.card["metrics"][key], abs=1e-12), key
    assert report.version == model.version and report.threshold == model.threshold
    assert report.rows == model.card["metrics"]["n_test"]


def test_roc_curve_and_auc(report, holdout):
    y, p = holdout["label"].to_numpy(), holdout["probability"].to_numpy()
    roc = report.roc
    # AUC as the chance that a random good loan outscores a random bad one (ties count half).
    good, bad = p[y == 1], p[y == 0]
    pairs = (good[:, None] > bad[None, :]).mean() + 0.5 * (good[:, None] == bad[None, :]).mean()
    assert roc.auc == pytest.approx(pairs, abs=1e-12)
    assert roc.auc == pytest.approx(np.trapezoid(roc.true_positive_rate, roc.false_positive_rate), abs=1e-9)
    assert roc.false_positive_rate[0] == 0 and roc.true_positive_rate[-1] == 1
    assert np.all(np.diff(roc.false_positive_rate) >= 0) and np.all(np.diff(roc.true_positive_rate) >= 0)


def test_precision_recall_curve(report, holdout):
    pr = report.precision_recall
    assert pr.base_rate == pytest.approx(holdout["label"].mean())
    # At recall 1 (everyone approved) precision is the share of good loans.
    assert pr.precision[np.argmax(pr.recall)] == pytest.approx(pr.base_rate)
    assert pr.base_rate < pr.average_precision <= 1


def test_reliability_bins_match_a_pandas_groupby(report, holdout):
    rel = report.reliability
    bins = pd.cut(holdout["probability"], np.linspace(0, 1, 11), include_lowest=True, right=False)
    grouped = holdout.groupby(bins, observed=True).agg(predicted=("probability", "mean"),
                                                       observed=("label", "mean"), rows=("label", "size"))
    np.testing.assert_allclose(rel.predicted, grouped["predicted"], atol=1e-12)
    np.testing.assert_allclose(rel.observed, grouped["observed"], atol=1e-12)
    np.testing.assert_array_equal(rel.rows, grouped["rows"])
    assert rel.rows.sum() == len(holdout)
    assert rel.brier == pytest.approx(np.mean((holdout["probability"] - holdout["label"]) ** 2))


def test_confusion_matrix_is_labelled_good_bad_by_approved_rejected(holdout):
    y, p = holdout["label"].to_numpy(), holdout["probability"].to_numpy()
    t = 0.62
    conf = evaluation.confusion(y, p, t)
    approved = p >= t
    expected = [[np.sum((y == 1) & approved), np.sum((y == 1) & ~approved)],
                [np.sum((y == 0) & approved), np.sum((y == 0) & ~approved)]]
    np.testing.assert_array_equal(conf.counts, expected)
    assert evaluation.ACTUALS == ("Good loan", "Bad loan") and evaluation.OUTCOMES == ("Approved", "Rejected")
    assert conf.true_positive_rate == pytest.approx(1 - _rates(y, p, t)["good_rejected_share"])
    assert conf.precision == pytest.approx(1 - _rates(y, p, t)["bad_rate_among_approved"])
    assert conf.shares.sum() == pytest.approx(1)


def test_threshold_table_matches_the_plain_definitions_at_every_threshold(report, holdout):
    y, p = holdout["label"].to_numpy(), holdout["probability"].to_numpy()
    table = report.thresholds
    np.testing.assert_allclose(table["threshold"], evaluation.THRESHOLDS)
    for row in table.itertuples():
        expected = _rates(y, p, row.threshold)
        for key, value in expected.items():
            assert getattr(row, key) == pytest.approx(value, abs=1e-12), (row.threshold, key)
    assert np.all(np.diff(table["approval_rate"]) <= 0)
    assert np.all(np.diff(table["good_rejected_share"]) >= 0)


def test_threshold_table_at_ties_and_beyond_every_score():
    y = np.array([1, 0, 1, 1, 0, 0, 1])
    p = np.array([0.9, 0.9, 0.6, 0.4, 0.4, 0.1, 0.6])
    thresholds = np.array([0.05, 0.1, 0.4, 0.41, 0.6, 0.9, 0.95])
    table = evaluation.threshold_table(y, p, thresholds)
    for row in table.itertuples():
        expected = _rates(y, p, row.threshold)
        assert row.approval_rate == pytest.approx(expected["approval_rate"])
        assert row.bad_rate_among_approved == pytest.approx(expected["bad_rate_among_approved"])
        assert row.good_rejected_share == pytest.approx(expected["good_rejected_share"])
    above = table.iloc[-1]
    assert above.approval_rate == 0 and above.good_rejected_share == 1 and above.bad_rate_among_approved == 0


def test_report_at_another_threshold_agrees_with_training_evaluate(report):
    rates, conf = report.at(0.7)
    assert rates == evaluate(report.label, report.probability, 0.7)
    assert conf.threshold == 0.7 and conf.counts.sum() == report.rows


def test_logistic_effects_are_the_standardized_coefficients_in_the_schemas_words(model):
    effects = evaluation.feature_effects(model)
    assert effects.method == "coefficients"
    frame = effects.frame
    estimator = model.pipeline.named_steps["model"]
    inner = getattr(estimator, "calibrated_classifiers_", [None])[0]
    fitted = inner.estimator if inner is not None else estimator
    names = list(model.pipeline.named_steps["preprocess"].get_feature_names_out())
    coef = dict(zip(names, fitted.coef_[0], strict=True))
    for row in frame.itertuples():
        assert row.effect == pytest.approx(coef[row.feature])
        assert row.label == model.schema[row.feature].label
    assert list(frame["effect"].abs()) == sorted(frame["effect"].abs(), reverse=True)
    signs = dict(zip(frame["feature"], np.sign(frame["effect"]), strict=True))
    assert signs["loan_amount"] < 0 and signs["credit_score"] > 0 and signs["income"] > 0


def test_gradient_boosting_effects_are_permutation_importances(tmp_path):
    trained = train_builtin(seed=3, rows=2000, model="gbm")
    registry = tmp_path / "gbm"
    save_version(registry, trained.pipeline, trained.card, trained.holdout)
    gbm = load_model(registry)
    effects = evaluation.feature_effects(gbm)
    assert effects.method == "permutation"
    frame = effects.frame.set_index("feature")
    assert set(frame.index) == set(gbm.schema.names)
    # The built-in rule leans on credit score and debt burden; age counts for little.
    assert set(frame.index[:2]) <= {"credit_score", "loan_amount", "income"}
    assert frame.loc["credit_score", "effect"] > 0.05 > frame.loc["age", "effect"]
    assert (frame["spread"] >= 0).all()
    assert "AUC" in effects.description


def test_one_hot_columns_are_named_field_and_category(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    purpose = rng.choice(["car", "home", "study"], n)
    score = rng.normal(650, 60, n)
    y = ((score - 650) / 60 + (purpose == "home") + rng.normal(0, 1, n) > 0).astype(int)
    features = pd.DataFrame({"credit_score": score, "purpose": purpose})
    trained = train(features, y, target="ok", positive_label="1", model="logistic")
    save_version(tmp_path, trained.pipeline, trained.card, trained.holdout)
    labels = set(evaluation.feature_effects(load_model(tmp_path)).frame["label"])
    assert {"Purpose: car", "Purpose: home", "Purpose: study", "Credit score"} <= labels


def test_versions_side_by_side(model, report, tmp_path):
    other = train_builtin(seed=7, model="logistic")
    save_version(tmp_path, other.pipeline, other.card, other.holdout)
    second = evaluation.report(load_model(tmp_path))
    table = evaluation.comparison_table([report, second])
    assert list(table.columns) == [model.version, second.version]
    assert table.loc["AUC", model.version] == f"{roc_auc_score(report.label, report.probability):.3f}"
    assert table.loc["AUC", second.version] == f"{roc_auc_score(second.label, second.probability):.3f}"
    assert table.loc["Threshold", model.version] == f"{100 * model.threshold:.1f}%"
    assert table.loc["Kind", second.version] == "Logistic regression"
    rejected = 100 * _rates(second.label, second.probability, second.threshold)["good_rejected_share"]
    assert table.loc["Good applicants rejected", second.version] == f"{rejected:.1f}%"
    assert not evaluation.same_holdout([report, second])  # another seed: other hold-out applicants
    assert evaluation.same_holdout([report, report])
