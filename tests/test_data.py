"""The built-in applicants, and reading a user's training CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from model.registry.store import load_holdout
from model.training.data import (
    BUILTIN_FEATURES,
    BUILTIN_TARGET,
    DataError,
    approval_log_odds,
    generate_applicants,
    read_training_csv,
    split_target,
)


def user_applicants(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A user's own data: no built-in field names, a text column and gaps, a yes/no target.

    `balance` can be negative in training; `pay`, `score` and `savings` never are. `region` and
    `savings` have gaps; "north" is the most common region. The label falls with `debts` and rises
    with the rest.
    """
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "pay": np.round(rng.lognormal(10.8, 0.4, n), -2),
        "score": rng.integers(400, 850, n).astype(float),
        "balance": np.round(rng.normal(500, 1500, n)),
        "debts": np.round(rng.gamma(2.0, 4000, n), -1),
        "region": rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2]),
        "savings": np.round(rng.gamma(2.0, 5000, n)),
    })
    logit = (
        1.2 * (np.log(frame["pay"]) - 10.8) / 0.4 + 1.5 * (frame["score"] - 625) / 130
        - 1.0 * (frame["debts"] - 8000) / 5600 + 0.8 * (frame["savings"] - 10_000) / 7000
        + frame["region"].map({"north": 0.8, "south": 0.0, "east": -0.8}) + 0.3
    )
    frame["decision"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    frame.loc[rng.random(n) < 0.1, "region"] = None
    frame.loc[rng.random(n) < 0.1, "savings"] = np.nan
    return frame


# --- the built-in applicants -----------------------------------------------------------------
def test_same_seed_same_applicants_other_seed_others():
    a, b = generate_applicants(500, seed=3), generate_applicants(500, seed=3)
    pd.testing.assert_frame_equal(a, b)
    other = generate_applicants(500, seed=4)
    assert not a.equals(other)
    assert list(a.columns) == [*BUILTIN_FEATURES, BUILTIN_TARGET]


def test_applicants_are_realistic():
    frame = generate_applicants(20_000, seed=11)
    assert frame["age"].between(18, 75).all()
    assert frame["credit_score"].between(300, 850).all()
    assert (frame["employment_years"] <= frame["age"] - 16).all()
    assert (frame["employment_years"] >= 0).all()
    assert (frame["income"] > 0).all() and (frame["loan_amount"] > 0).all()
    assert set(frame[BUILTIN_TARGET].unique()) == {0, 1}
    # Spread across the ranges, not piled on a bound.
    assert frame["age"].nunique() > 40 and frame["credit_score"].std() > 40
    assert 0.5 < frame[BUILTIN_TARGET].mean() < 0.85


def test_label_follows_the_documented_rule_with_noise():
    frame = generate_applicants(20_000, seed=5)
    y = frame[BUILTIN_TARGET].to_numpy()
    odds = approval_log_odds(frame)
    # The rule separates well but not perfectly: the Bernoulli draw is the noise.
    assert 0.87 <= roc_auc_score(y, odds) <= 0.92
    # Each documented direction shows in the data.
    for name, sign in [("credit_score", 1), ("income", 1), ("loan_amount", -1), ("employment_years", 1)]:
        corr = np.corrcoef(frame[name], y)[0, 1]
        assert np.sign(corr) == sign, name
    # The rule's probabilities are calibrated against the drawn labels, decile by decile.
    p = 1 / (1 + np.exp(-odds))
    deciles = pd.qcut(p, 10, labels=False)
    by_decile = pd.DataFrame({"p": p, "y": y}).groupby(deciles).mean()
    np.testing.assert_allclose(by_decile["y"], by_decile["p"], atol=0.05)


def test_builtin_model_holdout_auc_is_good_but_not_perfect(model):
    holdout = load_holdout(model)
    auc = roc_auc_score(holdout["label"], holdout["probability"])
    assert 0.85 <= auc <= 0.92
    assert auc == pytest.approx(model.card["metrics"]["auc"])
    # The stored probabilities are the model's own.
    features = holdout[model.schema.names]
    np.testing.assert_allclose(model.predict_proba(features)[:, 1], holdout["probability"], rtol=0, atol=1e-12)


def test_zero_applicants_is_refused():
    with pytest.raises(DataError):
        generate_applicants(0)


# --- a user's CSV ----------------------------------------------------------------------------
def test_csv_comma_semicolon_and_bom_read_alike(tmp_path):
    frame = user_applicants(60)
    comma = tmp_path / "comma.csv"
    frame.to_csv(comma, index=False)
    semi = tmp_path / "semi.csv"
    semi.write_text(frame.to_csv(index=False, sep=";"), encoding="utf-8-sig")
    a, b = read_training_csv(comma), read_training_csv(semi)
    assert list(a.columns) == list(frame.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b)
    assert a["region"].isna().sum() == frame["region"].isna().sum()


@pytest.mark.parametrize("content, problem", [
    pytest.param(b"", "empty", id="empty"),
    pytest.param(b"\n \n\n", "empty", id="blank-lines"),
    pytest.param(b"\xef\xbb\xbf\r\n", "empty", id="bom-only"),
    pytest.param(b"pay,score,decision\n", "no rows", id="header-only"),
    pytest.param(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4, "not a CSV", id="zip"),
    pytest.param(bytes(range(1, 256)) * 8, "not a CSV", id="binary-without-nul"),
    pytest.param(b"a,b,decision\n1,2,yes\n1,2,3,4,5\n", "could not be read as CSV", id="ragged"),
])
def test_unusable_files_get_one_line_errors(tmp_path, content, problem):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=problem) as info:
        read_training_csv(path)
    assert "\n" not in str(info.value)


def test_missing_file_and_folder_are_refused(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_training_csv(tmp_path / "absent.csv")
    with pytest.raises(DataError, match="not a file"):
        read_training_csv(tmp_path)


def test_split_target_turns_the_positive_label_into_one():
    frame = user_applicants(80)
    features, y, positive = split_target(frame, "decision", "yes")
    assert positive == "yes"
    np.testing.assert_array_equal(y, (frame["decision"] == "yes").astype(int))
    assert "decision" not in features.columns and len(features.columns) == len(frame.columns) - 1
    _, y_no, _ = split_target(frame, "decision", "no")
    np.testing.assert_array_equal(y_no, 1 - y)


def test_the_label_direction_is_never_guessed_beyond_0_1_and_true_false():
    frame = user_applicants(80)
    with pytest.raises(DataError, match="means approved with --approved-value no or --approved-value yes"):
        split_target(frame, "decision", None)  # yes/no: which is approval is the user's to say
    _, y, positive = split_target(frame, "decision", "yes")
    assert positive == "yes" and y.sum() == (frame["decision"] == "yes").sum()
    ones = frame.assign(decision=(frame["decision"] == "yes").astype(int))
    _, y, positive = split_target(ones, "decision", None)
    assert positive == "1" and y.sum() == ones["decision"].sum()
    flags = frame.assign(decision=frame["decision"] == "yes")
    assert split_target(flags, "decision", None)[2] == "True"
    for negative in ("deny", "denied", "is_default", "Rejected", "bad_loan", "charged_off"):
        named = ones.rename(columns={"decision": negative})
        with pytest.raises(DataError, match="reads as a bad outcome, so 1 may mean rejected"):
            split_target(named, negative, None)
        assert split_target(named, negative, "0")[1].sum() == (ones["decision"] == 0).sum()


@pytest.mark.parametrize("change, problem", [
    (lambda f: f.drop(columns="decision"), "target column 'decision' not found"),
    (lambda f: f.assign(decision=np.resize(["a", "b", "c"], len(f))), "exactly two values; it has 3"),
    (lambda f: f.assign(decision="yes"), "exactly two values; it has 1"),
    (lambda f: f.assign(decision=f["decision"].where(f.index > 3)), "empty value"),
    (lambda f: f[["decision"]], "no feature columns"),
])
def test_split_target_errors_say_what_is_wrong(change, problem):
    with pytest.raises(DataError, match=problem):
        split_target(change(user_applicants(80)), "decision", "yes")


def test_positive_label_must_occur():
    with pytest.raises(DataError, match="'maybe' does not occur") as info:
        split_target(user_applicants(80), "decision", "maybe")
    assert "'no'" in str(info.value) and "'yes'" in str(info.value)
