"""predict / predict_proba: input by column name, in any shape the lesson's users pass it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model import ValidationError
from model.training.data import generate_applicants

from .conftest import EXAMPLE


@pytest.fixture(scope="module")
def applicants(model) -> pd.DataFrame:
    """Valid applicants in the model's own column order (a fresh seed, not the training data)."""
    return generate_applicants(60, seed=2024)[model.schema.names]


def _pipeline_proba(model, frame: pd.DataFrame) -> np.ndarray:
    """The fitted pipeline called the plain scikit-learn way, on float columns in schema order."""
    return model.pipeline.predict_proba(frame[model.schema.names].astype(float))[:, 1]


def test_probabilities_are_the_pipelines_own(model, applicants):
    proba = model.predict_proba(applicants)
    assert proba.shape == (len(applicants), 2)
    np.testing.assert_allclose(proba[:, 1], _pipeline_proba(model, applicants), rtol=0, atol=1e-9)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_predict_applies_the_stored_threshold(model, applicants):
    p = _pipeline_proba(model, applicants)
    expected = np.where(p >= model.threshold, 1, 0)
    assert set(expected) == {0, 1}, "the sample should hold approved and rejected applicants"
    np.testing.assert_array_equal(model.predict(applicants), expected)


def test_shuffled_columns_give_identical_probabilities(model, applicants):
    rng = np.random.default_rng(0)
    reference = model.predict_proba(applicants)
    for _ in range(5):
        order = list(rng.permutation(applicants.columns))
        if order == list(applicants.columns):
            continue
        np.testing.assert_array_equal(model.predict_proba(applicants[order]), reference)
    reversed_dict = dict(reversed(list(EXAMPLE.items())))
    np.testing.assert_array_equal(model.predict_proba(reversed_dict), model.predict_proba(EXAMPLE))


def test_extra_columns_are_ignored(model, applicants):
    extra = applicants.assign(customer_id=np.arange(len(applicants)), notes="walk-in", income_usd=1.0)
    extra = extra[["notes", *reversed(applicants.columns), "customer_id", "income_usd"]]
    np.testing.assert_array_equal(model.predict_proba(extra), model.predict_proba(applicants))
    assert model.predict({**EXAMPLE, "name": "Ann", "zip": "02139"})[0] == model.predict(EXAMPLE)[0]


def test_missing_columns_are_all_named(model):
    partial = {k: v for k, v in EXAMPLE.items() if k not in ("income", "employment_years")}
    with pytest.raises(ValidationError) as info:
        model.predict(partial)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "income" in message and "employment_years" in message
    assert {e.field for e in info.value.errors} == {"income", "employment_years"}
    for name in ("age", "credit_score", "loan_amount"):
        assert name not in message


def test_every_column_missing_is_named_too(model):
    with pytest.raises(ValidationError) as info:
        model.predict_proba(pd.DataFrame({"unrelated": [1, 2]}))
    assert [e.field for e in info.value.errors] == model.schema.names


def test_dict_list_of_dicts_and_frame_agree(model, applicants):
    rows = applicants.head(4).to_dict("records")
    from_frame = model.predict_proba(pd.DataFrame(rows))
    from_list = model.predict_proba(rows)
    from_dicts = np.vstack([model.predict_proba(r) for r in rows])
    np.testing.assert_array_equal(from_list, from_frame)
    np.testing.assert_allclose(from_dicts, from_frame, rtol=0, atol=1e-12)
    assert model.predict_proba(rows[0]).shape == (1, 2)
    assert model.predict_proba(tuple(rows)).shape == (4, 2)


def test_ints_floats_and_numeric_text_mean_the_same(model):
    as_text = {k: str(v) for k, v in EXAMPLE.items()}
    as_float = {k: float(v) for k, v in EXAMPLE.items()}
    money = {**EXAMPLE, "income": "$62,000", "loan_amount": " 18,000 "}
    expected = model.predict_proba(EXAMPLE)
    for variant in (as_text, as_float, money):
        np.testing.assert_allclose(model.predict_proba(variant), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("bare", [
    np.array([[35, 62_000, 720, 18_000, 6]]),
    [[35, 62_000, 720, 18_000, 6]],
    [35, 62_000, 720, 18_000, 6],
    "age=35",
])
def test_inputs_without_column_names_are_refused(model, bare):
    with pytest.raises(TypeError, match="by name"):
        model.predict(bare)


def test_a_bad_row_stops_predict_and_names_itself(model, applicants):
    rows = applicants.head(3).to_dict("records")
    rows[1]["credit_score"] = "excellent"
    with pytest.raises(ValidationError) as info:
        model.predict(rows)
    [error] = info.value.errors
    assert (error.row, error.field, error.value) == (1, "credit_score", "excellent")
    assert "row 1" in str(info.value) and "credit_score" in str(info.value)


def test_input_is_not_modified(model, applicants):
    frame = applicants.head(5).copy()
    frame.loc[frame.index[0], "income"] = np.nan  # a blank required field: refused, frame untouched
    before = frame.copy()
    with pytest.raises(ValidationError):
        model.predict(frame)
    model.predict(frame.dropna())
    pd.testing.assert_frame_equal(frame, before)


def test_model_describes_itself(model, trained):
    assert model.features == model.schema.names
    assert model.version in repr(model) and model.name == trained.name
    assert model.path.parent.parent == trained


# --- bounds, complex numbers and bytes -------------------------------------------------------------
def test_every_number_field_has_an_upper_bound_stated_in_the_card(model):
    for f in model.schema.fields:
        if f.is_number:
            assert f.hard_max is not None and f.hard_max >= f.train_max, f.name
            assert f.bounds_basis, f.name
    income = model.schema["income"]  # no declared maximum: derived from training, with a wide margin
    assert income.hard_max >= 10 * income.train_max
    assert "derived from training" in income.bounds_basis and f"{income.train_max:,.0f}" in income.bounds_basis
    assert model.schema["age"].bounds_basis == "declared"
    [card_income] = [f for f in model.card["schema"]["fields"] if f["name"] == "income"]
    assert card_income["hard_max"] == income.hard_max and card_income["bounds_basis"] == income.bounds_basis


@pytest.mark.parametrize("value", [1e308, 10**400, 4e6])
def test_a_number_past_the_upper_bound_is_refused_not_decided(model, value):
    with pytest.raises(ValidationError) as refused:
        model.predict({**EXAMPLE, "income": value})
    [error] = refused.value.errors
    assert error.field == "income"
    assert error.why.startswith("must be at most") or error.why == "is not a finite number"
    assert "e+" not in error.why  # 3,800,000, not 3.8e+06


def test_a_card_saved_before_bounds_gets_them_when_loaded(model):
    from model.core.schema import Schema

    old = {"fields": [{k: v for k, v in f.items() if k != "bounds_basis"} | ({"hard_max": None} if f["name"] == "income"
                                                                               else {})
                      for f in model.card["schema"]["fields"]]}
    income = Schema.from_dict(old)["income"]
    assert income.hard_max == model.schema["income"].hard_max and "derived from training" in income.bounds_basis


@pytest.mark.parametrize(("value", "words"), [
    (3 + 4j, "is a complex number"), (np.complex128(62_000), "is a complex number"),
    (b"62000", "is bytes"), (bytearray(b"62000"), "is bytes"), (memoryview(b"62000"), "is bytes"),
])
def test_complex_numbers_and_bytes_are_refused_by_name(model, value, words):
    with pytest.raises(ValidationError) as refused:
        model.predict({**EXAMPLE, "income": value})
    [error] = refused.value.errors
    assert error.field == "income" and error.why.startswith(words)


def test_complex_and_bytes_columns_are_refused_by_name_row_by_row(model):
    frame = pd.DataFrame([EXAMPLE] * 3)
    frame["income"] = np.array([1 + 2j, 62_000, 3j])
    frame["credit_score"] = np.array([b"720", b"700", b"710"])
    with pytest.raises(ValidationError) as refused:
        model.predict(frame)
    found = {(e.row, e.field): e.why for e in refused.value.errors}
    assert found[(0, "income")].startswith("is a complex number") and found[(2, "income")].startswith("is a complex")
    assert all(found[(r, "credit_score")].startswith("is bytes") for r in range(3))
