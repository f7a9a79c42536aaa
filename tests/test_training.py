"""Training: monotone and lawful models, calibrated probabilities, and train.py on a user's CSV."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, brier_score_loss, roc_auc_score
from threadpoolctl import threadpool_info, threadpool_limits

from model import DataError, MonotonicityError, ValidationError, load_model
from model.registry.store import active_version, list_versions, save_version
from model.training.data import generate_applicants, split_target
from model.training.train import evaluate, parse_monotone, train, train_builtin

from .conftest import ROOT
from .test_data import user_applicants

RISING = ["income", "credit_score", "employment_years", "age"]
FALLING = ["loan_amount"]


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread():
    """Gradient boosting on a shared, busy machine: one OpenMP thread is many times faster than two."""
    with threadpool_limits(1, user_api="openmp"):
        yield


def run_train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT),
                                        "LOANDESK_DB_URL": f"sqlite:///{cwd / 'decisions.db'}"}, timeout=600)


@pytest.fixture(scope="module", params=["logistic", "gbm"])
def kind_model(request, tmp_path_factory):
    """The built-in model of each kind, saved and loaded like any other."""
    result = train_builtin(rows=3000, model=request.param)
    registry = tmp_path_factory.mktemp(request.param) / "model"
    save_version(registry, result.pipeline, result.card, result.holdout)
    loaded = load_model(registry)
    assert loaded.card["model_kind"] == request.param
    return loaded


# --- monotone and lawful ---------------------------------------------------------------------
def _grid_rows(model, applicant: dict, name: str, points: int = 60) -> pd.DataFrame:
    """The applicant repeated, `name` rising over (a little beyond) its training range, all rows valid."""
    f = model.schema[name]
    lo, hi = f.train_min, min(f.train_max * 1.2, f.hard_max or np.inf)
    if name == "employment_years":
        hi = applicant["age"] - 14
    if name == "age":
        lo, hi = max(18, np.ceil(applicant["employment_years"]) + 14), 120
    rows = pd.DataFrame([applicant] * points)
    rows[name] = np.linspace(lo, hi, points)
    return rows


def test_approval_never_moves_the_wrong_way(kind_model):
    applicants = generate_applicants(40, seed=77).drop(columns="approved")
    checked = 0
    for applicant in applicants.to_dict("records"):
        for name in RISING + FALLING:
            p = kind_model.predict_proba(_grid_rows(kind_model, applicant, name))[:, 1]
            steps = np.diff(p)
            if name in RISING:
                assert steps.min() >= -1e-12, (name, applicant)
            else:
                assert steps.max() <= 1e-12, (name, applicant)
            checked += 1
    assert checked == 40 * 5


def test_the_fields_that_matter_do_move_the_probability(kind_model):
    """The monotone check above must not pass because the model ignores its inputs."""
    applicant = {"age": 40, "income": 60_000, "credit_score": 660, "loan_amount": 20_000, "employment_years": 8}
    for name in ["income", "credit_score", "loan_amount"]:
        p = kind_model.predict_proba(_grid_rows(kind_model, applicant, name))[:, 1]
        assert p.max() - p.min() > 0.2, name


def test_older_applicants_never_score_lower(kind_model):
    applicants = generate_applicants(200, seed=12).drop(columns="approved")
    applicants = applicants[applicants["age"] < 62]
    older = applicants.assign(age=np.maximum(applicants["age"], 62) + 10)
    young = kind_model.predict_proba(applicants)[:, 1]
    old = kind_model.predict_proba(older)[:, 1]
    assert (old >= young - 1e-12).all()


def _falls_with_income(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.uniform(20_000, 150_000, n)
    other = rng.normal(0, 1, n)
    logit = -(income - 85_000) / 20_000 + 0.5 * other
    ok = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"income": income.round(-2), "other": other, "ok": ok})


def test_logistic_with_a_wrong_sign_fails_training_loudly():
    features, y, positive = split_target(_falls_with_income(), "ok", "1")
    with pytest.raises(MonotonicityError, match="income") as info:
        train(features, y, target="ok", positive_label=positive, model="logistic", monotone={"income": 1})
    assert "--model gbm" in str(info.value)


def test_gbm_keeps_the_direction_the_data_contradicts():
    features, y, positive = split_target(_falls_with_income(), "ok", "1")
    result = train(features, y, target="ok", positive_label=positive, model="gbm", monotone={"income": 1})
    grid = pd.DataFrame({"income": np.linspace(20_000, 150_000, 50), "other": 0.0})
    assert (np.diff(result.pipeline.predict_proba(grid)[:, 1]) >= -1e-12).all()


def test_auto_falls_back_to_the_model_that_keeps_the_direction():
    features, y, positive = split_target(_falls_with_income(), "ok", "1")
    result = train(features, y, target="ok", positive_label=positive, model="auto", monotone={"income": 1})
    assert result.card["model_kind"] == "gbm"
    assert set(result.card["selection"]["cv_auc"]) == {"logistic", "gbm"}


@pytest.mark.parametrize("sign", [-1, 0])
def test_age_cannot_be_allowed_to_count_against_older_applicants(sign):
    frame = generate_applicants(300, seed=4)
    features, y, positive = split_target(frame, "approved", "1")
    with pytest.raises(DataError, match="age is protected"):
        train(features, y, target="approved", positive_label=positive, model="gbm", monotone={"age": sign})


def test_unconstrained_fields_may_go_either_way():
    features, y, positive = split_target(_falls_with_income(), "ok", "1")
    result = train(features, y, target="ok", positive_label=positive, model="logistic", monotone={"income": 0})
    assert result.card["model_kind"] == "logistic"


# --- probabilities, metrics, selection -------------------------------------------------------
def test_probabilities_are_calibrated_on_the_holdout(model):
    from model.registry.store import load_holdout

    holdout = load_holdout(model)
    y, p = holdout["label"].to_numpy(), holdout["probability"].to_numpy()
    assert abs(p.mean() - y.mean()) < 0.03
    bins = pd.qcut(p, 5, labels=False)
    by_bin = pd.DataFrame({"p": p, "y": y}).groupby(bins).mean()
    np.testing.assert_allclose(by_bin["y"], by_bin["p"], atol=0.08)
    # Better than always predicting the base rate.
    assert brier_score_loss(y, p) < brier_score_loss(y, np.full_like(p, y.mean()))


def test_evaluate_matches_scikit_learn_and_counts_decisions():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 500), 0, 1)
    m = evaluate(y, p, 0.6)
    approved = p >= 0.6
    assert m["auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))
    assert m["accuracy"] == pytest.approx(accuracy_score(y, approved.astype(int)))
    assert m["approval_rate"] == pytest.approx(approved.mean())
    assert m["bad_rate_among_approved"] == pytest.approx(np.mean(y[approved] == 0))
    assert m["good_rejected_share"] == pytest.approx(np.mean(~approved[y == 1]))


def test_auto_records_the_cross_validated_choice(model):
    selection = model.card["selection"]
    assert set(selection["cv_auc"]) == {"logistic", "gbm"}
    assert all(0.8 < auc < 0.95 for auc in selection["cv_auc"].values())
    assert selection["chosen"] == model.card["model_kind"]


def test_same_seed_same_model():
    a = train_builtin(rows=800, seed=9, model="gbm")
    b = train_builtin(rows=800, seed=9, model="gbm")
    grid = generate_applicants(100, seed=1).drop(columns="approved").astype(float)
    np.testing.assert_array_equal(a.pipeline.predict_proba(grid), b.pipeline.predict_proba(grid))
    assert a.card["data"]["fingerprint"] == b.card["data"]["fingerprint"]
    assert a.card["metrics"] == b.card["metrics"]


def test_small_data_trains_on_one_openmp_thread(monkeypatch):
    """On a busy shared machine two OpenMP threads can stall a 5,000-row fit for minutes."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    seen = []
    real_fit = HistGradientBoostingClassifier.fit

    def fit(self, *args, **kwargs):
        seen.extend(p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp")
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", fit)
    with threadpool_limits(2, user_api="openmp"):
        train_builtin(rows=600, model="gbm")
        assert all(p["num_threads"] == 2 for p in threadpool_info() if p["user_api"] == "openmp")
    assert seen and set(seen) == {1}


@pytest.mark.parametrize("text, expected", [
    ("income=+1,loan_amount=-1", {"income": 1, "loan_amount": -1}),
    (" income = 1 , debts=-1 ", {"income": 1, "debts": -1}),
    ("", {}),
    (None, {}),
    ("age=0", {"age": 0}),
])
def test_parse_monotone(text, expected):
    assert parse_monotone(text) == expected


@pytest.mark.parametrize("text", ["income", "income=up", "income=+2", "=1"])
def test_parse_monotone_refuses_what_it_cannot_read(text):
    with pytest.raises(DataError, match="--monotone"):
        parse_monotone(text)


@pytest.mark.parametrize("change, kwargs, problem", [
    (lambda f: f.head(30), {}, "too few"),
    (lambda f: f.assign(decision=np.where(np.arange(len(f)) < 5, "no", "yes")), {}, "at least 10"),
    (lambda f: f, {"test_size": 0.9}, "--test-size"),
    (lambda f: f, {"monotone": {"salary": 1}}, "unknown column"),
    (lambda f: f, {"monotone": {"region": 1}}, "text column"),
    (lambda f: f, {"model": "forest"}, "--model"),
    (lambda f: f.assign(notes=None, extra=np.nan), {}, "no values at all: notes, extra"),
])
def test_train_refuses_what_cannot_work(change, kwargs, problem):
    features, y, positive = split_target(change(user_applicants(200, seed=2)), "decision", "yes")
    with pytest.raises(DataError, match=problem):
        train(features, y, target="decision", positive_label=positive, **kwargs)


# --- train.py on a user's CSV ----------------------------------------------------------------
def test_train_py_on_a_csv_with_text_columns_and_gaps(tmp_path):
    frame = user_applicants(500, seed=3)
    assert frame["region"].isna().any() and frame["savings"].isna().any()
    csv = tmp_path / "applicants.csv"
    frame.to_csv(csv, index=False)
    out = tmp_path / "my_model"
    done = run_train("--data", str(csv), "--target", "decision", "--positive-label", "yes", "--out", str(out),
                     "--monotone", "pay=+1,debts=-1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "AUC" in done.stdout and str(out) in done.stdout

    model = load_model(out)
    assert model.version == active_version(out) and model.version in done.stdout
    assert model.schema.categories == ["region"] and model.card["positive_label"] == "yes"
    assert model.schema["pay"].monotone == 1 and model.schema["debts"].monotone == -1
    assert model.card["metrics"]["auc"] > 0.75
    rows = frame.drop(columns="decision").head(50)
    proba = model.predict_proba(rows)[:, 1]
    assert ((proba > 0) & (proba < 1)).all()
    assert roc_auc_score(frame["decision"].head(50) == "yes", proba) > 0.7
    # Columns in another order, with the target still attached, give the same answer.
    np.testing.assert_allclose(model.predict_proba(frame.head(50).iloc[:, ::-1])[:, 1], proba, rtol=0, atol=1e-12)
    with pytest.raises(ValidationError, match="region"):
        model.predict({**rows.iloc[0].to_dict(), "region": "atlantis"})


def test_gbm_on_text_columns_and_gaps():
    frame = user_applicants(500, seed=4)
    features, y, positive = split_target(frame, "decision", "yes")
    result = train(features, y, target="decision", positive_label=positive, model="gbm")
    assert result.card["model_kind"] == "gbm" and result.card["metrics"]["auc"] > 0.75
    proba = result.pipeline.predict_proba(result.holdout[features.columns])[:, 1]
    np.testing.assert_allclose(proba, result.holdout["probability"])


def _one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


@pytest.mark.parametrize("setup, args, problem", [
    ("good", ["--target", "outcome"], "target column 'outcome' not found"),
    ("three", ["--target", "decision"], "exactly two values"),
    ("good", ["--target", "decision", "--positive-label", "approved"], "'approved' does not occur"),
    ("empty", ["--target", "decision"], "empty"),
    ("binary", ["--target", "decision"], "not a CSV"),
    ("missing", ["--target", "decision"], "no such file"),
    ("good", ["--target", "decision", "--approved-value", "yes", "--monotone", "pay=up"], "--monotone"),
], ids=["no-target", "three-values", "label-absent", "empty-file", "not-a-csv", "no-file", "bad-monotone"])
def test_train_py_errors_are_one_line_without_traceback(tmp_path, setup, args, problem):
    csv = tmp_path / "data.csv"
    frame = user_applicants(120, seed=5)
    if setup == "good":
        frame.to_csv(csv, index=False)
    elif setup == "three":
        frame.assign(decision=np.resize(["yes", "no", "maybe"], len(frame))).to_csv(csv, index=False)
    elif setup == "empty":
        csv.write_bytes(b"")
    elif setup == "binary":
        csv.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 8)
    out = tmp_path / "model"
    line = _one_line_error(run_train("--data", str(csv), *args, "--out", str(out), cwd=tmp_path))
    assert problem in line
    assert not out.exists() or not list_versions(out)


def test_train_py_cannot_write_its_output_is_one_line_error(tmp_path):
    csv = tmp_path / "data.csv"
    user_applicants(120, seed=5).to_csv(csv, index=False)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = _one_line_error(run_train("--data", str(csv), "--target", "decision", "--positive-label", "yes",
                                     "--model", "logistic", "--out", str(blocker), cwd=tmp_path))
    assert str(blocker) in line
    assert blocker.read_text() == "not a folder"


def test_train_py_wrong_coefficient_sign_is_one_line_error(tmp_path):
    csv = tmp_path / "falls.csv"
    _falls_with_income().to_csv(csv, index=False)
    line = _one_line_error(run_train("--data", str(csv), "--target", "ok", "--positive-label", "1",
                                     "--model", "logistic", "--monotone", "income=+1", "--out",
                                     str(tmp_path / "m"), cwd=tmp_path))
    assert "income" in line and "wrong way" in line


def test_train_py_lists_and_activates_versions(registry, tmp_path):
    [only] = list_versions(registry)
    listed = run_train("--list", "--out", str(registry), cwd=tmp_path)
    assert listed.returncode == 0 and f"* {only.version}" in listed.stdout
    line = _one_line_error(run_train("--activate", "no-such-version", "--out", str(registry), cwd=tmp_path))
    assert only.version in line
    assert active_version(registry) == only.version


def test_a_numeric_column_with_a_few_words_is_refused_by_name():
    """'n/a' among 200 incomes would otherwise turn income into a 200-category text column."""
    from model.training.data import DataError, generate_applicants, split_target
    from model.training.train import train

    frame = generate_applicants(200, 3)
    frame["income"] = frame["income"].astype(object)
    frame.loc[[4, 17], "income"] = ["n/a", "unknown"]
    features, y, positive = split_target(frame, "approved", "1")
    with pytest.raises(DataError) as err:
        train(features, y, target="approved", positive_label=positive)
    message = str(err.value)
    assert "'income'" in message and "'n/a'" in message and "'unknown'" in message and "row 5" in message
    frame.loc[[4, 17], "income"] = None  # left empty, they are imputed and training goes on
    features, y, positive = split_target(frame, "approved", "1")
    assert train(features, y, target="approved", positive_label=positive, model="gbm").schema["income"].is_number


@pytest.mark.parametrize("kind", ["logistic", "gbm"])
def test_every_kind_of_model_trained_on_a_csv_with_text_and_gaps_loads_back_and_predicts_the_same(kind, tmp_path):
    """A version that train.py saves and makes active must be one the safe loader then loads: a
    gradient-boosted model with a category column once could not be (its partial(check_array))."""
    from model.registry.store import load_model, save_version
    from model.training.data import split_target
    from model.training.train import train

    from .test_data import user_applicants

    frame = user_applicants(500, seed=3)
    features, y, positive = split_target(frame, "decision", "yes")
    result = train(features, y, target="decision", positive_label=positive, model=kind)
    folder = tmp_path / "model"
    save_version(folder, result.pipeline, result.card, result.holdout)
    loaded = load_model(folder)
    rows = features.head(50)
    np.testing.assert_allclose(loaded.predict_proba(rows)[:, 1], result.pipeline.predict_proba(rows)[:, 1],
                               rtol=0, atol=1e-12)
    assert loaded.schema.categories


def test_a_pipeline_the_safe_loader_would_refuse_is_never_saved(tmp_path):
    from sklearn.preprocessing import FunctionTransformer

    from model.core.errors import UnsafePickleError
    from model.registry.store import save_version
    from model.training.data import split_target
    from model.training.train import train

    from .test_data import user_applicants

    frame = user_applicants(300, seed=4)
    features, y, positive = split_target(frame, "decision", "yes")
    result = train(features, y, target="decision", positive_label=positive, model="logistic")
    result.pipeline.steps.insert(0, ("sneaky", FunctionTransformer(os.path.basename)))  # not model-making code
    with pytest.raises(UnsafePickleError, match=r"posixpath\.basename.*nothing was saved"):
        save_version(tmp_path / "model", result.pipeline, result.card, result.holdout)
    assert not list((tmp_path / "model" / "versions").glob("*"))
    assert not (tmp_path / "model" / "ACTIVE").exists()
