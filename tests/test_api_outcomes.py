"""POST /v1/outcomes: outcomes for decisions the API made, with unknown ids, duplicates and corrections."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api import create_app
from model.records.log import DecisionLog
from model.records.outcomes import history

from .conftest import EXAMPLE


@pytest.fixture
def served(registry, tmp_path):
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    app = create_app(registry, url, tmp_path / "unsent")
    with TestClient(app) as client:
        key = app.state.services.keys.create("servicing")
        yield client, {"Authorization": f"Bearer {key}"}, url


def _decide(client, auth, n: int = 3) -> list[str]:
    answer = client.post("/v1/decisions", json=[EXAMPLE] * n, headers=auth)
    assert answer.status_code == 200
    # answered only once on record: nothing to wait for
    return [r["decision_id"] for r in answer.json()]


def test_outcomes_are_recorded_and_each_item_answered_in_order(served):
    client, auth, url = served
    ids = _decide(client, auth)
    answer = client.post("/v1/outcomes", headers=auth, json=[
        {"decision_id": ids[0], "outcome": "good", "observed_at": "2030-01-01"},
        {"decision_id": ids[1], "outcome": 0},
        {"decision_id": "0" * 32, "outcome": "bad"},
        {"decision_id": ids[2], "outcome": "sometimes"},
        "not an object",
    ])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body[1] == {"index": 1, "decision_id": ids[1], "status": "recorded"}
    assert body[0]["errors"][0]["field"] == "observed_at" and "future" in body[0]["errors"][0]["why"]
    assert body[2] == {"index": 2, "errors": [{"field": "decision_id", "value": "0" * 32,
                                               "why": "no decision with this id is on record"}]}
    assert body[3]["errors"][0]["field"] == "outcome" and "good or bad" in body[3]["errors"][0]["why"]
    assert body[4]["index"] == 4 and "JSON object" in body[4]["errors"][0]["why"]
    log = DecisionLog(url)
    [row] = history(log, ids[1])
    assert row["outcome"] == 0 and row["source"] == "api:servicing" and row["recorded_by"] == "api:servicing"
    log.dispose()


def test_a_duplicate_is_refused_and_a_different_outcome_is_a_correction(served):
    client, auth, url = served
    [decision_id] = _decide(client, auth, 1)
    assert client.post("/v1/outcomes", headers=auth, json={"decision_id": decision_id, "outcome": "good"}
                       ).json() == [{"index": 0, "decision_id": decision_id, "status": "recorded"}]
    again = client.post("/v1/outcomes", headers=auth, json={"decision_id": decision_id, "outcome": 1}).json()
    assert "duplicate" in again[0]["errors"][0]["why"]
    fixed = client.post("/v1/outcomes", headers=auth, json={"decision_id": decision_id, "outcome": "bad"}).json()
    assert fixed == [{"index": 0, "decision_id": decision_id, "status": "correction"}]
    log = DecisionLog(url)
    assert [(r["outcome"], r["is_current"]) for r in history(log, decision_id)] == [(1, False), (0, True)]
    log.dispose()


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"[", 400, "invalid_json"), (b'"text"', 400, "invalid_body"),
])
def test_a_body_that_is_not_outcomes_is_refused(served, body, status, code):
    client, auth, _ = served
    answer = client.post("/v1/outcomes", headers={**auth, "Content-Type": "application/json"}, content=body)
    assert answer.status_code == status and answer.json()["error"] == code


def test_outcomes_need_a_key_and_are_documented(served):
    client, _, _ = served
    assert client.post("/v1/outcomes", json={"decision_id": "x", "outcome": "good"}).status_code == 401
    spec = client.get("/openapi.json").json()
    assert "/v1/outcomes" in spec["paths"] and "Outcome" in spec["components"]["schemas"]
    assert spec["paths"]["/v1/outcomes"]["post"]["security"] == [{"bearer": []}]
