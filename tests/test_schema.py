"""The schema: what training learned about each field, and validation that reports every problem."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from model import Schema, ValidationError
from model.core.schema import KNOWN_FIELDS
from model.registry.store import load_model, save_version
from model.training.data import read_training_csv, split_target
from model.training.train import train

from .conftest import EXAMPLE
from .test_data import user_applicants


@pytest.fixture(scope="module")
def user_model(tmp_path_factory):
    """A model trained on a user's CSV with a text column and gaps, through the public steps."""
    folder = tmp_path_factory.mktemp("user")
    csv = folder / "applicants.csv"
    user_applicants(400, seed=1).to_csv(csv, index=False)
    features, y, positive = split_target(read_training_csv(csv), "decision", "yes")
    result = train(features, y, target="decision", positive_label=positive, model="logistic")
    save_version(folder / "model", result.pipeline, result.card, result.holdout)
    return load_model(folder / "model")


def _user_row(model, **changes) -> dict:
    return {**model.schema.defaults(), **changes}


def _errors(validation) -> dict[tuple, str]:
    return {(e.row, e.field): e.why for e in validation.errors}


# --- what training learned -------------------------------------------------------------------
def test_builtin_schema_knows_its_fields(model):
    schema = model.schema
    assert schema.names == ["age", "income", "credit_score", "loan_amount", "employment_years"]
    assert schema.numbers == schema.names and schema.categories == []
    for f in schema.fields:
        assert f.required and f.label and f.unit
        assert f.monotone == KNOWN_FIELDS[f.name]["monotone"]
        assert f.train_min <= f.train_median <= f.train_max
    assert schema["age"].protected and not schema["income"].protected
    assert schema["income"].unit == "$" and schema["credit_score"].hard_max == 850
    assert schema["employment_years"].max_minus == ("age", 14)


def test_user_schema_is_inferred_from_the_data(user_model):
    frame = user_applicants(400, seed=1).drop(columns="decision")
    schema = user_model.schema
    assert schema.names == list(frame.columns)
    assert schema.categories == ["region"]
    assert schema["region"].categories == tuple(sorted(frame["region"].dropna().unique()))
    for name in schema.numbers:
        f = schema[name]
        assert (f.train_min, f.train_max) == (frame[name].min(), frame[name].max())
        # every field is required; a blank is allowed only where training had gaps
        assert f.required == (not frame[name].isna().any()) and f.monotone == 0 and not f.protected
    assert schema["pay"].label == "Pay"


def test_schema_survives_the_model_card(model, user_model):
    for m in (model, user_model):
        again = Schema.from_dict(m.card["schema"])
        assert again == m.schema
        assert Schema.from_dict(again.to_dict()) == again


# --- each validation error -------------------------------------------------------------------
def test_text_in_a_number_field(model):
    v = model.validate({**EXAMPLE, "income": "sixty thousand", "credit_score": "7OO"})
    assert _errors(v) == {(0, "income"): "is not a number", (0, "credit_score"): "is not a number"}
    assert [e.value for e in v.errors] == ["sixty thousand", "7OO"]


@pytest.mark.parametrize("text, value", [("62000", 62_000), ("$62,000", 62_000), (" 62,000.50 ", 62_000.5),
                                         ("1,062,000", 1_062_000), ("6.2e4", 62_000), ("$ 62000", 62_000)])
def test_numbers_written_as_people_write_them(model, text, value):
    v = model.validate({**EXAMPLE, "income": text})
    assert v.ok and v.clean["income"].iloc[0] == value


@pytest.mark.parametrize("text", ["62.000,50", "62,00", "6,2000", "62 000", "62000$", "(62000)", "sixty", "1,2,3"])
def test_numbers_that_could_be_misread_are_refused_not_guessed(model, text):
    v = model.validate({**EXAMPLE, "income": text})
    assert _errors(v) == {(0, "income"): "is not a number"}


def test_infinite_numbers_are_refused(model):
    v = model.validate({**EXAMPLE, "income": math.inf})
    assert _errors(v) == {(0, "income"): "is not a finite number"}


def test_unknown_category(user_model):
    v = user_model.validate([_user_row(user_model, region="west"), _user_row(user_model, region=" north ")])
    [error] = v.errors
    assert (error.row, error.field, error.value) == (0, "region", "west")
    assert "not a known category" in error.why
    for known in user_model.schema["region"].categories:
        assert known in error.why
    assert v.bad_rows.tolist() == [True, False]
    assert v.clean["region"].iloc[1] == "north"


def test_negative_value_where_training_had_none(user_model):
    assert user_model.schema["pay"].train_min >= 0 and user_model.schema["balance"].train_min < 0
    v = user_model.validate(_user_row(user_model, pay=-100, savings=-1, balance=-2500))
    assert set(_errors(v)) == {(0, "pay"), (0, "savings")}
    assert all("negative" in e.why for e in v.errors)


@pytest.mark.parametrize("age, ok", [(17, False), (18, True), (75, True), (76, True), (120, True), (121, False),
                                     (-5, False), (15, False)])
def test_age_must_be_18_to_120(model, age, ok):
    v = model.validate({**EXAMPLE, "age": age, "employment_years": 4})
    assert v.ok == ok
    if not ok:
        [error] = v.errors  # employment_years is not also judged against an age that was refused
        assert (error.field, error.value) == ("age", age)
        assert ("18" if age < 18 else "120") in error.why


def test_ages_beyond_training_are_flagged_out_of_range_not_refused(model):
    v = model.validate([{**EXAMPLE, "age": 90}, EXAMPLE])
    assert v.ok
    assert v.out_of_range["age"].tolist() == [True, False]


def test_employment_years_at_most_age_minus_14(model):
    rows = [{**EXAMPLE, "age": 30, "employment_years": 16}, {**EXAMPLE, "age": 30, "employment_years": 16.5},
            {**EXAMPLE, "age": 20, "employment_years": 9}]
    v = model.validate(rows)
    assert set(_errors(v)) == {(1, "employment_years"), (2, "employment_years")}
    why = _errors(v)[(2, "employment_years")]
    assert "age" in why and "14" in why and "6" in why


@pytest.mark.parametrize("blank", [None, np.nan, "", "   "])
def test_required_fields_may_not_be_blank(model, blank):
    v = model.validate({**EXAMPLE, "credit_score": blank})
    assert _errors(v) == {(0, "credit_score"): "is required"}
    assert not v.imputed["credit_score"].any()
    with pytest.raises(ValidationError, match="credit_score"):
        model.predict({**EXAMPLE, "credit_score": blank})


def test_all_errors_are_reported_at_once_with_row_field_value_and_why(model):
    frame = pd.DataFrame(
        [EXAMPLE,
         {**EXAMPLE, "age": 15, "income": "lots", "loan_amount": -1},
         EXAMPLE,
         {**EXAMPLE, "credit_score": 900, "employment_years": 40, "age": 40}],
        index=["a", "b", "c", "d"],
    )
    v = model.validate(frame)
    found = [(e.row, e.field, e.value) for e in v.errors]
    assert found == [("b", "age", 15), ("b", "income", "lots"), ("b", "loan_amount", -1),
                     ("d", "credit_score", 900), ("d", "employment_years", 40)]
    assert all(e.why for e in v.errors)
    assert v.bad_rows.tolist() == [False, True, False, True]
    messages = v.row_messages()
    assert set(messages) == {"b", "d"} and "income" in messages["b"] and "lots" in messages["b"]
    with pytest.raises(ValidationError) as info:
        model.predict(frame)
    assert len(info.value.errors) == 5
    text = str(info.value)
    for row, field, value in found:
        assert f"row {row}" in text and field in text and repr(value) in text


def test_good_rows_keep_their_values_when_others_are_bad(model):
    frame = pd.DataFrame([EXAMPLE, {**EXAMPLE, "income": "n/a"}, {**EXAMPLE, "income": 90_000}])
    v = model.validate(frame)
    good = v.clean[~v.bad_rows]
    assert good["income"].tolist() == [62_000, 90_000]
    np.testing.assert_allclose(model.approval_probability(good), model.predict_proba(frame[~v.bad_rows])[:, 1])


# --- gaps and range --------------------------------------------------------------------------
def test_gaps_in_optional_fields_are_imputed_and_reported(user_model):
    rows = [_user_row(user_model, savings=None, region=""), _user_row(user_model, savings=np.nan),
            _user_row(user_model, region=None), _user_row(user_model)]
    v = user_model.validate(rows)
    assert v.ok
    assert v.imputed["savings"].tolist() == [True, True, False, False]
    assert v.imputed["region"].tolist() == [True, False, True, False]
    assert not v.imputed["pay"].any()
    assert np.isfinite(user_model.predict_proba(rows)).all()


def test_a_gap_in_a_text_column_is_filled_with_the_most_common_category(user_model):
    common = user_applicants(400, seed=1)["region"].mode()[0]
    blanks = [_user_row(user_model, region=gap) for gap in (None, "", " ", np.nan)]
    expected = user_model.predict_proba(_user_row(user_model, region=common))[0, 1]
    np.testing.assert_allclose(user_model.predict_proba(blanks)[:, 1], expected, rtol=0, atol=1e-12)
    others = [r for r in user_model.schema["region"].categories if r != common]
    assert all(user_model.predict_proba(_user_row(user_model, region=r))[0, 1] != expected for r in others)


def test_a_gap_in_a_number_column_is_filled_near_the_training_median(user_model):
    median = user_applicants(400, seed=1)["savings"].median()
    blank = user_model.predict_proba(_user_row(user_model, savings=None))[0, 1]
    at_median = user_model.predict_proba(_user_row(user_model, savings=median))[0, 1]
    far = user_model.predict_proba(_user_row(user_model, savings=median * 4))[0, 1]
    assert abs(blank - at_median) < 0.1 * abs(far - at_median)


def test_the_raw_pipeline_fills_gaps_as_the_model_does(user_model):
    """Someone calling the scikit-learn pipeline directly, with pandas' NaN gaps, gets the same numbers."""
    rows = [_user_row(user_model, savings=None, region=None), _user_row(user_model, region=None),
            _user_row(user_model)]
    raw = pd.DataFrame(rows)[user_model.schema.names]
    raw["region"] = raw["region"].astype(object).where(raw["region"].notna(), np.nan)
    raw["savings"] = raw["savings"].astype(float)
    np.testing.assert_allclose(user_model.predict_proba(rows)[:, 1], user_model.pipeline.predict_proba(raw)[:, 1],
                               rtol=0, atol=1e-12)


def test_values_outside_training_range_are_scored_and_flagged(model):
    income = model.schema["income"]
    rows = [{**EXAMPLE, "income": income.train_max * 3}, {**EXAMPLE, "income": income.train_min / 2}, EXAMPLE]
    v = model.validate(rows)
    assert v.ok
    assert v.out_of_range["income"].tolist() == [True, True, False]
    assert not v.out_of_range["credit_score"].any()
    proba = model.predict_proba(rows)[:, 1]
    assert np.isfinite(proba).all()


def test_decision_lists_imputed_and_out_of_range_fields(model, user_model):
    decision = user_model.decide(_user_row(user_model, savings=None))
    assert decision.imputed == ["savings"] and decision.out_of_range == []
    decision = model.decide({**EXAMPLE, "age": 95, "employment_years": 20})
    assert decision.out_of_range == ["age"] and decision.imputed == []
