"""The Decide page after the decision: its id, the notice beside a rejection, overrides, the refer band."""

from __future__ import annotations

import os

import pytest

from model.records.log import DecisionLog
from model.records.overrides import overrides_for
from model.registry.store import load_model
from model.training.workflows import copy_with_threshold

from .conftest import EXAMPLE
from .test_page_decide import _decision_text, _submit

REJECTED = {"income": 24_000, "credit_score": 540, "loan_amount": 30_000, "employment_years": 1}


def log() -> DecisionLog:
    return DecisionLog(os.environ["LOANDESK_DB_URL"])


def signed_in(app, name: str = "Dana Whitfield"):
    at = app.run()
    at.text_input(key="officer").input(name).run()
    return at


def notice_buttons(at) -> list:
    return [b for b in at.get("download_button") if "adverse action notice" in b.proto.label]


def fill_override(at, final: str, reason: str, note: str):
    at.radio(key="decide.override.final").set_value({"Approve": 1, "Reject": 0}[final])
    at.selectbox(key="decide.override.reason").set_value(reason)
    at.text_area(key="decide.override.note").input(note)
    at.button(key=next(b.key for b in at.button if b.label == "Record the final decision")).click().run()
    assert not at.exception, at.exception
    return at


def test_a_decision_shows_its_id_as_on_record(app, app_env):
    at = _submit(signed_in(app))
    [row] = log().read().to_dict("records")
    assert any(f"Decision id `{row['decision_id']}`" in c.value for c in at.caption)
    assert row["reason_codes"] and row["reason_codes"].split(";")[0].endswith(("_HIGH", "_LOW", "_DIFFERS"))


def test_a_rejection_offers_its_notice_and_an_approval_does_not(app, app_env):
    at = _submit(signed_in(app))
    assert "Approved" in _decision_text(at) and not notice_buttons(at)
    at = _submit(at, **REJECTED)
    assert "Rejected" in _decision_text(at)
    [button] = notice_buttons(at)
    newest = log().read().iloc[0]
    assert button.proto.label == "Download the adverse action notice (PDF)"
    assert at.text_input(key=f"decide.key_factors.{newest['decision_id']}") is not None  # the model uses a score


def test_an_officer_overrides_an_approval_with_a_reason_and_a_note_and_the_log_keeps_both(app, app_env):
    at = _submit(signed_in(app))
    decision_id = log().read().iloc[0]["decision_id"]
    at = fill_override(at, "Reject", "UNVERIFIABLE", "Pay slips do not match the stated income")
    [done] = overrides_for(log(), decision_id)
    assert (done.model_decision, done.final_decision, done.officer, done.reason) == \
           ("approved", 0, "Dana Whitfield", "UNVERIFIABLE")
    assert done.note == "Pay slips do not match the stated income"
    assert int(log().find(decision_id)["decision"]) == 1  # the model's decision is kept as it was
    assert any("Final decision: **Reject** (the model said approved)" in e.value for e in at.error)
    assert any("By Dana Whitfield: Information on the application could not be verified" in t.value for t in at.text)
    assert notice_buttons(at), "a rejection by override is owed a notice too"
    assert not at.text_area(key="decide.override.note").value  # recorded: the form starts afresh


def test_an_override_without_a_note_or_a_name_is_refused_and_nothing_is_recorded(app, app_env):
    at = _submit(app.run(), **REJECTED)
    at = fill_override(at, "Approve", "COMPENSATING_FACTORS", "Large savings held with us")
    assert any("needs the officer's name" in e.value for e in at.error)
    assert at.text_area(key="decide.override.note").value == "Large savings held with us"  # kept for the retry
    at.text_input(key="officer").input("Dana").run()
    at = fill_override(at, "Approve", "COMPENSATING_FACTORS", "   ")
    assert any("needs a note" in e.value for e in at.error)
    assert overrides_for(log(), log().read().iloc[0]["decision_id"]) == []


@pytest.fixture
def banded(app_env):
    """The active model with a refer band wide enough to catch the example customer."""
    model = load_model(app_env)
    p = float(model.predict_proba(EXAMPLE)[0, 1])
    width = min(0.98, 2 * abs(p - model.threshold) + 0.02)
    copy_with_threshold(app_env, model.version, model.threshold, refer_band=width, activate=True)
    return load_model(app_env)


def test_a_close_case_is_referred_to_an_underwriter_who_decides_it(app, banded):
    at = _submit(signed_in(app, "Uma Underwriter"))
    assert "Refer to underwriter" in _decision_text(at)
    row = log().read().iloc[0]
    assert bool(row["referred"]) and not notice_buttons(at)
    assert at.selectbox(key="decide.override.reason").value == "UNDERWRITER_REVIEW"
    at = fill_override(at, "Reject", "UNDERWRITER_REVIEW", "Debt elsewhere not in the application")
    [done] = overrides_for(log(), row["decision_id"])
    assert (done.model_decision, done.final_decision, done.officer) == ("referred", 0, "Uma Underwriter")
    assert notice_buttons(at)
