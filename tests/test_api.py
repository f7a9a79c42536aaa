"""The REST API (serve.py) through FastAPI's TestClient: same model, same validation, every call logged."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api import create_app
from model.artifact import load_model
from model.decision_log import DecisionLog

from .conftest import EXAMPLE


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'decisions.db'}"


@pytest.fixture
def client(registry, db_url):
    return TestClient(create_app(registry, db_url, api_keys=[]))


def test_a_decision_matches_the_model_and_is_logged(client, registry, db_url):
    response = client.post("/v1/decisions", json=EXAMPLE, params={"officer": "batch-system"})
    assert response.status_code == 200, response.text
    body = response.json()
    model = load_model(registry)
    assert body["probability"] == pytest.approx(model.predict_proba(EXAMPLE)[0, 1], abs=1e-12)
    assert body["decision"] == model.predict(EXAMPLE)[0]
    assert body["label"] == ("Approved" if body["decision"] else "Rejected")
    assert body["model_version"] == model.version and body["logged"] is True
    assert "income" in body["flips"]
    log = DecisionLog(db_url).read()
    assert len(log) == 1 and log.iloc[0]["source"] == "api" and log.iloc[0]["officer"] == "batch-system"


def test_fields_are_matched_by_name_and_extras_ignored(client):
    shuffled = {k: EXAMPLE[k] for k in reversed(list(EXAMPLE))} | {"customer_id": "C-1"}
    a = client.post("/v1/decisions", json=EXAMPLE).json()
    b = client.post("/v1/decisions", json=shuffled).json()
    assert a["probability"] == b["probability"]


def test_invalid_values_get_a_422_naming_each_field(client):
    response = client.post("/v1/decisions", json={**EXAMPLE, "income": "lots", "age": 12})
    assert response.status_code == 422
    problems = {p["field"]: p for p in response.json()["detail"]}
    assert set(problems) == {"income", "age"}
    assert problems["income"]["why"] == "is not a number"
    assert "18" in problems["age"]["why"]


def test_missing_fields_are_all_named(client):
    response = client.post("/v1/decisions", json={"age": 40})
    assert response.status_code == 422
    assert {p["field"] for p in response.json()["detail"]} == {"income", "credit_score", "loan_amount",
                                                                "employment_years"}


def test_a_batch_reports_bad_rows_and_decides_the_rest(client, db_url):
    rows = [EXAMPLE, {**EXAMPLE, "credit_score": 990}, {**EXAMPLE, "income": 30_000}]
    body = client.post("/v1/decisions/batch", json={"applicants": rows}).json()
    assert body["scored"] == 2 and body["rejected_rows"] == 1
    bad = body["results"][1]
    assert bad["result"] is None and bad["errors"][0]["field"] == "credit_score"
    assert body["results"][0]["result"]["label"] in {"Approved", "Rejected"}
    assert DecisionLog(db_url).count() == 2


def test_api_keys_are_enforced_when_configured(registry, db_url):
    client = TestClient(create_app(registry, db_url, api_keys=["s3cret"]))
    assert client.post("/v1/decisions", json=EXAMPLE).status_code == 401
    assert client.post("/v1/decisions", json=EXAMPLE, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.post("/v1/decisions", json=EXAMPLE, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert client.get("/health").status_code == 200


def test_a_retrained_model_is_served_without_a_restart(client, registry):
    from model.artifact import save_version
    from model.training import train_builtin

    before = client.get("/health").json()["version"]
    other = train_builtin(seed=7, rows=1500)
    version = save_version(registry, other.pipeline, other.card, other.holdout)
    assert before != version
    assert client.get("/health").json()["version"] == version
    assert client.post("/v1/decisions", json=EXAMPLE).json()["model_version"] == version


def test_a_tampered_model_is_refused_with_503(client, registry):
    model = load_model(registry)
    (model.path / "pipeline.joblib").write_bytes(b"not a pipeline")
    response = client.post("/v1/decisions", json=EXAMPLE)
    assert response.status_code == 503 and "does not match its model card" in response.json()["detail"]
