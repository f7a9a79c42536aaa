"""decide_rows: many applicants at once, each with its decision or its own errors, in order."""

from __future__ import annotations

import numpy as np
import pytest

from model.scoring.reasons import batch_reasons
from model.scoring.rows import RowDecision, RowErrors, decide_rows
from model.training.data import BUILTIN_FEATURES, generate_applicants

from .conftest import EXAMPLE


def test_each_row_gets_the_models_probability_in_order(model):
    rows = generate_applicants(300, seed=8)[BUILTIN_FEATURES].to_dict("records")
    results = decide_rows(model, rows)
    assert all(isinstance(r, RowDecision) for r in results)
    expected = model.pipeline.predict_proba(generate_applicants(300, seed=8)[model.schema.names])[:, 1]
    np.testing.assert_allclose([r.probability for r in results], expected, rtol=0, atol=1e-9)
    assert [r.decision for r in results] == [int(p >= model.threshold) for p in expected]


def test_one_applicant_is_a_list_of_one_with_the_same_answer(model):
    rows = [dict(EXAMPLE, income=i) for i in (20_000, 62_000, 150_000)]
    many = decide_rows(model, rows)
    for row, result in zip(rows, many, strict=True):
        [alone] = decide_rows(model, [row])
        assert alone == result


def test_reasons_are_the_batch_reasons_as_a_list(model):
    frame = generate_applicants(200, seed=9)[model.schema.names]
    results = decide_rows(model, frame.to_dict("records"))
    v = model.validate(frame)
    texts = batch_reasons(model, v.clean, model.approval_probability(v.clean))
    assert ["; ".join(r.reasons) for r in results] == list(texts)
    assert any(r.reasons for r in results) and all(len(r.reasons) <= 4 for r in results)
    elderly = [r for r in results if r.inputs["age"] >= 62 and not r.decision]
    assert not any("Age" in reason for r in elderly for reason in r.reasons)  # never against 62 or older


def test_bad_rows_carry_every_error_and_the_rest_are_decided(model):
    rows = [
        EXAMPLE,
        {**EXAMPLE, "income": "lots", "age": 12},
        "not an applicant",
        {k: v for k, v in EXAMPLE.items() if k != "credit_score"},
        {**EXAMPLE, "credit_score": None, "note": "extra fields are ignored"},
        {**EXAMPLE, "income": 10**400},
        {**EXAMPLE, "loan_amount": [1, 2]},
        {**EXAMPLE, "income": "$62,000"},
    ]
    results = decide_rows(model, rows)
    assert isinstance(results[0], RowDecision) and isinstance(results[7], RowDecision)
    assert results[7].probability == results[0].probability  # "$62,000" reads as 62000
    problems = {i: {(e.field, e.why) for e in r.errors} for i, r in enumerate(results) if isinstance(r, RowErrors)}
    assert problems == {
        1: {("income", "is not a number"), ("age", "must be at least 18")},
        2: {("applicant", "must be an object of named fields, such as {\"income\": 62000}")},
        3: {("credit_score", "is missing: every field of the model is required")},
        4: {("credit_score", "is required")},
        5: {("income", "is not a finite number")},
        6: {("loan_amount", "is not a number")},
    }
    assert all(e.row == i for i, r in enumerate(results) if isinstance(r, RowErrors) for e in r.errors)


def test_out_of_range_and_inputs_for_the_log(model):
    high = model.schema["income"].train_max * 3
    [result] = decide_rows(model, [{**EXAMPLE, "income": high}])
    assert result.out_of_range == ["income"] and result.imputed == []
    assert result.inputs == {k: float(v) for k, v in {**EXAMPLE, "income": high}.items()}


def test_nothing_in_nothing_out(model):
    assert decide_rows(model, []) == []


@pytest.mark.parametrize("rows", [[1, 2], [None], [[EXAMPLE]]])
def test_lists_of_non_objects_are_all_refused(model, rows):
    results = decide_rows(model, rows)
    assert all(isinstance(r, RowErrors) and r.errors[0].field == "applicant" for r in results)
