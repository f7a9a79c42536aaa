"""The API's reason codes and its notice endpoint: GET /v1/decisions/{decision_id}/notice."""

from __future__ import annotations

import io
import re

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from api import create_app
from model.records.log import DecisionLog
from model.records.notices import notices_for
from model.records.overrides import record_override

from .conftest import EXAMPLE

REJECTED = {**EXAMPLE, "income": 24_000, "credit_score": 540, "loan_amount": 30_000, "employment_years": 1}


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'decisions.db'}"


@pytest.fixture
def app(registry, db_url, tmp_path):
    return create_app(registry, db_url, tmp_path / "unsent")


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture
def auth(app) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.state.services.keys.create('origination')}"}


def decide(client, auth, applicant) -> dict:
    response = client.post("/v1/decisions", json=applicant, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def text_of(pdf: bytes) -> str:
    return re.sub(r"\s+", " ", " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages))


def test_results_carry_a_stable_code_for_every_reason(client, auth):
    [approved, rejected] = client.post("/v1/decisions", json=[EXAMPLE, REJECTED], headers=auth).json()
    for result in (approved, rejected):
        assert len(result["reason_codes"]) == len(result["reasons"]) > 0
        assert all(re.fullmatch(r"[A-Z0-9_]+_(LOW|HIGH|MISSING|DIFFERS)", c) for c in result["reason_codes"])
        assert result["referred"] is False
    assert rejected["label"] == "rejected" and "CREDIT_SCORE_LOW" in rejected["reason_codes"]
    assert "AGE_LOW" not in rejected["reason_codes"]  # age never counts against an applicant


def test_the_notice_of_a_rejection_is_a_pdf_with_its_reasons_and_is_recorded(client, auth, db_url):
    result = decide(client, auth, REJECTED)
    response = client.get(f"/v1/decisions/{result['decision_id']}/notice", headers=auth,
                          params={"key_factors": "Serious delinquency; Too many recent inquiries"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert f"adverse-action-notice-{result['decision_id']}.pdf" in response.headers["content-disposition"]
    text = text_of(response.content)
    for code in result["reason_codes"]:
        assert f"reason code {code}" in text
    assert "Credit score from the consumer reporting agency too low (your score: 540)" in text
    assert "Your credit score: 540" in text and "Scores range from a low of 300 to a high of 850" in text
    assert "1. Serious delinquency 2. Too many recent inquiries" in text
    assert "The Federal Equal Credit Opportunity Act prohibits creditors from discriminating" in text
    [record] = notices_for(DecisionLog(db_url), result["decision_id"])
    assert record.produced_by == "api:origination" and record.source == "api"
    assert record.reason_codes == ";".join(result["reason_codes"][:4])


def test_an_unknown_decision_has_no_notice(client, auth):
    response = client.get("/v1/decisions/ffffffffffffffffffffffffffffffff/notice", headers=auth)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "no decision 'ffffffffffffffffffffffffffffffff' on record" in response.json()["message"]


def test_an_approval_has_no_notice_unless_an_officer_overrode_it_to_a_rejection(client, auth, db_url):
    result = decide(client, auth, EXAMPLE)
    url = f"/v1/decisions/{result['decision_id']}/notice"
    refused = client.get(url, headers=auth)
    assert refused.status_code == 409
    assert refused.json()["error"] == "not_a_rejection" and "was approved" in refused.json()["message"]
    record_override(DecisionLog(db_url), result["decision_id"], final_decision=0, reason="UNVERIFIABLE",
                    note="Pay slips did not match the stated income", officer="Dana")
    response = client.get(url, headers=auth)
    assert response.status_code == 200
    text = text_of(response.content)
    assert "Unable to verify the information on your application (reason code OVERRIDE_UNVERIFIABLE)" in text
    assert "Pay slips" not in text  # the officer's note is for the log, not the letter


def test_the_notice_needs_a_key(client):
    assert client.get("/v1/decisions/ffffffffffffffffffffffffffffffff/notice").status_code == 401


def test_the_notice_route_is_documented(client, auth):
    spec = client.get("/openapi.json").json()
    route = spec["paths"]["/v1/decisions/{decision_id}/notice"]["get"]
    assert {"200", "401", "404", "409"} <= set(route["responses"])
    assert "application/pdf" in route["responses"]["200"]["content"]
