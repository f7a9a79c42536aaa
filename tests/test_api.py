"""The REST API (api/, serve.py) through FastAPI's TestClient, serve.py's key and replay commands as
subprocesses, Schemathesis against the OpenAPI document, and (with LOANDESK_TEST_PG_URL) PostgreSQL.

A real server under load and SIGTERM is in test_api_server.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from sqlalchemy import create_engine, select

import api.keys
import api.readiness
import api.registry
from api import create_app
from api.keys import KeyProblem, api_keys
from api.schemas import MAX_BODY_BYTES, MAX_ITEMS
from model.records import writer as log_writer
from model.records.log import DecisionLog, LogResult
from model.records.sealed import read_sealed
from model.registry.store import load_model, save_version

from .conftest import EXAMPLE, ROOT, private_pg_schema
from .test_data import user_applicants

PG_URL = os.environ.get("LOANDESK_TEST_PG_URL")
RESULT_FIELDS = {"decision_id", "decision", "label", "referred", "probability", "threshold", "reasons",
                 "reason_codes", "out_of_range", "imputed", "model_name", "model_version"}
HEX_ID = re.compile(r"[0-9a-f]{32}")
KEY_NAME = "origination"


# --- fixtures and helpers ----------------------------------------------------------------------
@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'decisions.db'}"


@pytest.fixture
def unsent(tmp_path) -> Path:
    return tmp_path / "unsent"


@pytest.fixture
def app(registry, db_url, unsent):
    return create_app(registry, db_url, unsent)


@pytest.fixture
def client(app):
    """A TestClient with the lifespan running: the log writer starts, and is closed (flushed) on exit."""
    with TestClient(app) as c:
        yield c


@pytest.fixture
def key(app) -> str:
    return app.state.services.keys.create(KEY_NAME)


@pytest.fixture
def auth(key) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def open_log():
    """DecisionLog(url), disposed of after the test."""
    made: list[DecisionLog] = []

    def make(url: str) -> DecisionLog:
        made.append(DecisionLog(url))
        return made[-1]

    yield make
    for lg in made:
        lg.dispose()


@pytest.fixture
def quick_key_refresh(monkeypatch):
    """A running app rereads the key table every 50 ms instead of every 2 s (its background thread)."""
    monkeypatch.setattr(api.keys, "KEYS_REFRESH_SECONDS", 0.05)


def eventually(check, seconds: float = 20.0):
    """Poll until `check()` returns something truthy: the key refresher runs on its own thread."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.02)


def post(client: TestClient, body, headers: dict[str, str]):
    return client.post("/v1/decisions", json=body, headers=headers)


def post_raw(client: TestClient, body: bytes, headers: dict[str, str]):
    return client.post("/v1/decisions", content=body, headers={**headers, "Content-Type": "application/json"})


def error_body(response, status: int, code: str) -> dict:
    """The documented error shape, with no Python internals leaking into it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text and 'File "' not in response.text
    body = response.json()
    assert set(body) == {"error", "message", "errors"}
    assert body["error"] == code and isinstance(body["message"], str) and body["message"]
    return body


def wait_until(condition, what: str, timeout: float = 20.0) -> None:
    """Poll for a background event; the timeout only stops a broken run from hanging."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def serve_py(*args: str, db_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LOANDESK_DB_URL": db_url, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "serve.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)


def applicants_with_incomes(incomes) -> list[dict]:
    return [{**EXAMPLE, "income": income} for income in incomes]


# --- 1. the contract ---------------------------------------------------------------------------
def test_one_applicant_gets_one_result_with_every_field_typed(client, auth, registry):
    response = post(client, EXAMPLE, auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == RESULT_FIELDS
    model = load_model(registry)
    assert HEX_ID.fullmatch(body["decision_id"])
    assert type(body["decision"]) is int and body["decision"] in (0, 1)
    assert body["label"] == ("approved" if body["decision"] else "rejected")
    assert type(body["probability"]) is float and 0 <= body["probability"] <= 1
    assert body["probability"] == pytest.approx(model.predict_proba(EXAMPLE)[0, 1], abs=1e-9)
    assert body["threshold"] == model.threshold
    assert body["decision"] == int(body["probability"] >= body["threshold"])
    assert isinstance(body["reasons"], list) and body["reasons"]
    assert all(isinstance(r, str) and r for r in body["reasons"])
    assert body["out_of_range"] == [] and body["imputed"] == []
    assert body["model_name"] == model.name and body["model_version"] == model.version


def test_an_array_gets_a_result_per_applicant_in_the_same_order(client, auth, registry):
    incomes = [150_000, 20_000, 62_000, 35_000, 300_000, 48_000]
    applicants = applicants_with_incomes(incomes)
    response = post(client, applicants, auth)
    assert response.status_code == 200, response.text
    results = response.json()
    assert isinstance(results, list) and len(results) == len(applicants)
    expected = load_model(registry).predict_proba(applicants)[:, 1]
    assert len(set(expected.round(6))) == len(incomes)  # the order is visible in the answers
    for result, p in zip(results, expected, strict=True):
        assert set(result) == RESULT_FIELDS
        assert result["probability"] == pytest.approx(p, abs=1e-9)
    assert len({r["decision_id"] for r in results}) == len(results)


def test_an_empty_array_gets_an_empty_array(client, auth, app):
    response = post(client, [], auth)
    assert response.status_code == 200 and response.json() == []


def test_bad_items_carry_their_own_errors_and_the_rest_are_decided(client, auth, registry, app, db_url, open_log):
    items = [
        EXAMPLE,
        {**EXAMPLE, "income": "lots", "age": 12},
        5,
        {**EXAMPLE, "income": 90_000},
        ["not", "an", "object"],
        {**EXAMPLE, "credit_score": None},
        {**EXAMPLE, "income": 30_000},
    ]
    response = post(client, items, auth)
    assert response.status_code == 200, response.text
    results = response.json()
    assert len(results) == len(items)

    assert results[1] == {"index": 1, "errors": [
        {"field": "age", "value": 12, "why": "must be at least 18"},
        {"field": "income", "value": "lots", "why": "is not a number"},
    ]}
    assert results[2]["index"] == 2 and [(e["field"], e["value"]) for e in results[2]["errors"]] == [("applicant", 5)]
    assert results[4]["index"] == 4
    assert [(e["field"], e["value"]) for e in results[4]["errors"]] == [("applicant", ["not", "an", "object"])]
    assert results[5] == {"index": 5, "errors": [{"field": "credit_score", "value": None, "why": "is required"}]}

    model = load_model(registry)
    good = {0: EXAMPLE, 3: items[3], 6: items[6]}
    for i, applicant in good.items():
        assert set(results[i]) == RESULT_FIELDS
        assert results[i]["probability"] == pytest.approx(model.predict_proba(applicant)[0, 1], abs=1e-9)
    log = open_log(db_url)
    assert log.count() == len(good)
    assert log.known_ids([results[i]["decision_id"] for i in good]) == {results[i]["decision_id"] for i in good}


def test_decision_is_probability_at_or_above_threshold(client, auth, registry):
    model = load_model(registry)
    applicants = [{**EXAMPLE, "income": income, "credit_score": score}
                  for income in (15_000, 40_000, 62_000, 120_000) for score in (420, 560, 650, 720, 800)]
    results = post(client, applicants, auth).json()
    expected = model.predict_proba(applicants)[:, 1]
    for result, p in zip(results, expected, strict=True):
        assert result["probability"] == pytest.approx(p, abs=1e-9)
        assert result["decision"] == int(result["probability"] >= model.threshold)
        assert result["label"] == ("approved" if result["decision"] else "rejected")
    assert {r["decision"] for r in results} == {0, 1}


def test_a_probability_exactly_at_the_threshold_is_approved(client, auth, app):
    served = app.state.services.active.get()
    p = post(client, EXAMPLE, auth).json()["probability"]
    served.threshold = p
    at = post(client, EXAMPLE, auth).json()
    assert at["threshold"] == at["probability"] == p
    assert at["decision"] == 1 and at["label"] == "approved"
    served.threshold = math.nextafter(p, 1.0)
    above = post(client, EXAMPLE, auth).json()
    assert above["decision"] == 0 and above["label"] == "rejected"


def test_field_order_and_extra_fields_do_not_matter(client, auth):
    shuffled = {k: EXAMPLE[k] for k in reversed(list(EXAMPLE))}
    extras = {"customer_id": "C-1", "notes": {"any": ["thing"]}, **EXAMPLE, "Income": "ignored, other case"}
    a, b, c = (post(client, body, auth).json() for body in (EXAMPLE, shuffled, extras))
    assert a["probability"] == b["probability"] == c["probability"]
    assert a["reasons"] == b["reasons"] == c["reasons"]
    assert a["decision_id"] != b["decision_id"] != c["decision_id"]


def test_out_of_range_fields_are_decided_and_flagged(client, auth, registry):
    model = load_model(registry)
    applicant = {**EXAMPLE, "income": model.schema["income"].train_max * 3}
    body = post(client, applicant, auth).json()
    assert body["out_of_range"] == ["income"]
    assert body["probability"] == pytest.approx(model.predict_proba(applicant)[0, 1], abs=1e-9)


def test_a_rejection_gives_its_reasons(client, auth):
    body = post(client, {**EXAMPLE, "credit_score": 450}, auth).json()
    assert body["decision"] == 0
    assert body["reasons"][0].startswith("Credit score is well below")


def test_the_decision_id_finds_the_logged_decision(app, auth, registry, db_url, open_log):
    with TestClient(app) as client:
        one = post(client, EXAMPLE, auth).json()
        many = post(client, applicants_with_incomes([30_000, 90_000]), auth).json()
    # leaving the client closed the writer, which wrote everything it held
    model = load_model(registry)
    log = open_log(db_url)
    assert log.count() == 3
    for result, applicant in zip([one, *many], [EXAMPLE, *applicants_with_incomes([30_000, 90_000])], strict=True):
        row = log.find(result["decision_id"])
        assert row is not None
        assert row["source"] == f"api:{KEY_NAME}"
        assert row["inputs"] == applicant
        assert row["probability"] == pytest.approx(result["probability"], abs=1e-12)
        assert row["threshold"] == result["threshold"] and row["decision"] == result["decision"]
        assert row["reasons"] == "; ".join(result["reasons"])
        assert row["model_name"] == model.name and row["model_version"] == model.version
        assert row["model_sha256"] == model.sha256
    assert log.find("0" * 32) is None


def test_the_source_is_the_name_of_the_key_used(client, app, db_url, open_log):
    other = app.state.services.keys.create("risk-batch.v2")
    result = post(client, EXAMPLE, {"Authorization": f"Bearer {other}"}).json()
    assert open_log(db_url).find(result["decision_id"])["source"] == "api:risk-batch.v2"


def test_a_body_of_exactly_the_limit_is_accepted(client, auth):
    base = json.dumps({**EXAMPLE, "pad": ""}).encode()
    body = json.dumps({**EXAMPLE, "pad": "x" * (MAX_BODY_BYTES - len(base))}).encode()
    assert len(body) == MAX_BODY_BYTES
    assert post_raw(client, body, auth).status_code == 200


def test_an_array_of_the_most_items_is_decided(client, auth, app, db_url, open_log):
    applicants = applicants_with_incomes(range(20_000, 20_000 + MAX_ITEMS))
    response = post(client, applicants, auth)
    assert response.status_code == 200, response.text[:300]
    results = response.json()
    assert len(results) == MAX_ITEMS and all("decision_id" in r for r in results)
    assert results[0]["probability"] < results[-1]["probability"]  # income rises along the array
    assert open_log(db_url).count() == MAX_ITEMS


def test_the_model_card_is_public_without_training_data(client, auth, registry):
    response = client.get("/v1/model", headers=auth)
    assert response.status_code == 200, response.text
    card = response.json()
    model = load_model(registry)
    assert card["name"] == model.name and card["version"] == model.version
    assert card["threshold"] == model.threshold
    assert card["schema"] == model.card["schema"] and card["metrics"] == model.card["metrics"]
    assert "drift_bins" in model.card and "drift_bins" not in card
    assert "drift_bins" not in response.text and "holdout" not in response.text
    assert set(card["data"]) <= {"rows", "fingerprint", "approval_rate"}


def test_a_new_active_version_is_served_without_a_restart(client, auth, registry, monkeypatch):
    from model.training.train import train_builtin

    monkeypatch.setattr(api.registry, "CHECK_SECONDS", 0)
    before = post(client, EXAMPLE, auth).json()["model_version"]
    other = train_builtin(seed=7, rows=1500)
    version = save_version(registry, other.pipeline, other.card, other.holdout)
    assert version != before
    after = post(client, EXAMPLE, auth).json()
    assert after["model_version"] == version
    assert after["probability"] == pytest.approx(load_model(registry).predict_proba(EXAMPLE)[0, 1], abs=1e-9)
    assert client.get("/v1/model", headers=auth).json()["version"] == version
    assert client.get("/openapi.json").json()["info"]["x-model"]["version"] == version
    assert eventually(lambda: client.get("/readyz").json()["model_version"] == version)  # checked every second


def test_a_model_that_cannot_be_used_gives_503(client, auth, registry, monkeypatch):
    monkeypatch.setattr(api.registry, "CHECK_SECONDS", 0)
    assert post(client, EXAMPLE, auth).status_code == 200
    (registry / "ACTIVE").write_text("no-such-version\n")
    body = error_body(post(client, EXAMPLE, auth), 503, "unavailable")
    assert "no-such-version" in body["message"]
    ready = eventually(lambda: (r := client.get("/readyz")).status_code == 503 and r)
    assert ready.status_code == 503 and ready.json()["status"] == "not ready"
    assert ready.json()["problems"] == ["model: cannot be used (see the server log)"]
    assert str(registry) not in ready.text  # no server paths to anyone who asks
    assert client.get("/healthz").status_code == 200


# --- 2. bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param({"income": "lots", "age": 12},
                 {"age": (12, "must be at least 18"), "income": ("lots", "is not a number")}, id="text-and-too-young"),
    pytest.param({"credit_score": 900}, {"credit_score": (900, "must be at most 850")}, id="above-the-maximum"),
    pytest.param({"loan_amount": -5}, {"loan_amount": (-5, "must not be negative")}, id="negative"),
    pytest.param({"employment_years": 30}, {"employment_years": (30, "must be at most age − 14 = 21")},
                 id="employed-longer-than-age-allows"),
    pytest.param({"age": True}, {"age": (True, "is not a number")}, id="boolean"),
    pytest.param({"income": [62_000]}, {"income": ([62_000], "is not a number")}, id="list"),
    pytest.param({"income": {"amount": 62_000}}, {"income": ({"amount": 62_000}, "is not a number")}, id="object"),
    pytest.param({"income": None}, {"income": (None, "is required")}, id="null-in-a-required-field"),
    pytest.param({"income": "  "}, {"income": ("  ", "is required")}, id="blank-text"),
    pytest.param({"age": "old", "income": "lots", "credit_score": 100, "loan_amount": None, "employment_years": -1},
                 {"age": ("old", "is not a number"), "income": ("lots", "is not a number"),
                  "credit_score": (100, "must be at least 300"), "loan_amount": (None, "is required"),
                  "employment_years": (-1, "must not be negative")}, id="every-field-bad"),
])
def test_invalid_fields_get_422_listing_every_one(client, auth, changes, expected):
    body = error_body(post(client, {**EXAMPLE, **changes}, auth), 422, "invalid_applicant")
    got = {e["field"]: (e["value"], e["why"]) for e in body["errors"]}
    assert got == expected
    assert len(body["errors"]) == len(expected)
    assert all(name in body["message"] for name in expected)


@pytest.mark.parametrize("value", [12, 2**64 - 1])
def test_a_bad_integer_is_echoed_as_sent(client, auth, value):
    """FieldProblem.value is documented as 'the value as sent': an integer stays an integer."""
    body = error_body(post_raw(client, json.dumps({**EXAMPLE, "age": value}).encode(), auth), 422,
                      "invalid_applicant")
    [problem] = body["errors"]
    assert problem["field"] == "age"
    assert type(problem["value"]) is int and problem["value"] == value, problem


@pytest.mark.parametrize("missing", [["income"], ["age", "employment_years"]])
def test_missing_required_fields_are_each_named(client, auth, missing):
    applicant = {k: v for k, v in EXAMPLE.items() if k not in missing}
    body = error_body(post(client, applicant, auth), 422, "invalid_applicant")
    assert [(e["field"], e["value"], e["why"]) for e in body["errors"]] == [
        (m, None, "is missing: every field of the model is required") for m in [k for k in EXAMPLE if k in missing]]


def test_an_empty_body_is_refused_naming_the_fields_expected(client, auth):
    body = error_body(post(client, {}, auth), 422, "invalid_applicant")
    assert body["errors"] == [{"field": "applicant", "value": None, "why": "has none of the model's fields; expected: "
                               "age, income, credit_score, loan_amount, employment_years"}]


@pytest.mark.parametrize("raw", [
    pytest.param(b"{", id="unclosed"),
    pytest.param(b'{"age": 35,}', id="trailing-comma"),
    pytest.param(b"{'age': 35}", id="single-quotes"),
    pytest.param(b"", id="empty"),
    pytest.param(b'{"age": 35} {"age": 36}', id="two-documents"),
    pytest.param(b"\xff\xfe{}", id="not-utf8"),
    pytest.param(b'{"income": 1e400}', id="overflowing-number"),
])
def test_malformed_json_is_400_invalid_json(client, auth, raw):
    error_body(post_raw(client, raw, auth), 400, "invalid_json")


@pytest.mark.parametrize("raw", [
    pytest.param(b"NaN", id="bare-nan"),
    pytest.param(json.dumps({**EXAMPLE, "income": math.nan}).encode(), id="nan-field"),
    pytest.param(json.dumps({**EXAMPLE, "income": math.inf}).encode(), id="infinity-field"),
    pytest.param(json.dumps([EXAMPLE, {**EXAMPLE, "loan_amount": -math.inf}]).encode(), id="minus-infinity-in-array"),
])
def test_nan_and_infinity_literals_are_400_invalid_json(client, auth, raw, app):
    assert b"NaN" in raw or b"Infinity" in raw
    error_body(post_raw(client, raw, auth), 400, "invalid_json")
    assert app.state.services.writer.unlogged == 0 and app.state.services.writer.written == 0  # nothing was decided


@pytest.mark.parametrize("raw", [b"5", b'"x"', b"null", b"true", b"false", b"3.5", b'"{\\"age\\": 35}"'])
def test_a_body_that_is_not_an_object_or_array_is_400_invalid_body(client, auth, raw):
    error_body(post_raw(client, raw, auth), 400, "invalid_body")


def test_a_body_over_the_limit_is_413(client, auth):
    base = json.dumps({**EXAMPLE, "pad": ""}).encode()
    body = json.dumps({**EXAMPLE, "pad": "x" * (MAX_BODY_BYTES - len(base) + 1)}).encode()
    assert len(body) == MAX_BODY_BYTES + 1
    error_body(post_raw(client, body, auth), 413, "too_large")


def test_a_streamed_body_over_the_limit_is_413_without_a_length(client, auth):
    chunk = b" " * 65_536

    def chunks():
        yield b"["
        for _ in range(MAX_BODY_BYTES // len(chunk) + 1):
            yield chunk
        yield b"]"

    response = client.post("/v1/decisions", content=chunks(), headers={**auth, "Content-Type": "application/json"})
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    error_body(response, 413, "too_large")


@pytest.mark.parametrize("raw", [
    b'{"age": 200, "age": 35, "income": 62000, "credit_score": 720, "loan_amount": 18000, "employment_years": 6}',
    b'[{"age": 35, "income": 62000, "credit_score": 720, "loan_amount": 18000, "employment_years": 6, "income": 1}]',
    b'{"age": 35, "income": 62000, "credit_score": 720, "loan_amount": 18000, "employment_years": 6, '
    b'"extra": {"a": 1, "a": 2}}',
], ids=["object", "in-an-array", "nested"])
def test_a_key_repeated_in_one_object_is_400_and_nothing_is_decided(client, auth, app, raw):
    """With repeats, whichever came last would win ({"age": 200, "age": 35} approved at 35)."""
    body = error_body(post_raw(client, raw, auth), 400, "duplicate_key")
    assert "more than once" in body["message"] and "'" in body["message"]
    assert app.state.services.writer.written == 0


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/jsonp", "text/json"])
def test_a_body_not_sent_as_json_is_415_and_not_decided(client, auth, app, content_type):
    headers = {**auth, **({"Content-Type": content_type} if content_type else {})}
    response = client.post("/v1/decisions", content=json.dumps(EXAMPLE).encode(), headers=headers)
    body = error_body(response, 415, "unsupported_media_type")
    assert "application/json" in body["message"]
    assert app.state.services.writer.written == 0


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON", "application/vnd.loandesk+json"])
def test_json_content_types_are_decided(client, auth, content_type):
    response = client.post("/v1/decisions", content=json.dumps(EXAMPLE).encode(),
                           headers={**auth, "Content-Type": content_type})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("method", "path", "status"), [
    ("POST", "/v1/decisions", 200), ("POST", "/v1/decisions", 422), ("GET", "/v1/model", 200),
    ("GET", "/v1/model", 401), ("GET", "/healthz", 200), ("GET", "/readyz", 200), ("GET", "/nowhere", 404),
    ("GET", "/openapi.json", 200), ("GET", "/docs", 200),
])
def test_every_answer_carries_the_security_headers(client, auth, method, path, status):
    headers = auth if status != 401 else {}
    body = {"age": 12} if status == 422 else EXAMPLE
    response = client.request(method, path, headers=headers, json=body if method == "POST" else None)
    assert response.status_code == status
    h = response.headers
    assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"
    assert h["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    if path == "/docs":
        assert "script-src 'self'" in h["content-security-policy"]  # Swagger UI, served by this server
    else:
        assert h["content-security-policy"].startswith("default-src 'none'") and h["cache-control"] == "no-store"


def test_more_than_the_most_items_is_413(client, auth, app):
    body = error_body(post(client, [EXAMPLE] * (MAX_ITEMS + 1), auth), 413, "too_large")
    assert f"{MAX_ITEMS:,}" in body["message"]
    assert app.state.services.writer.written == 0 and app.state.services.writer.unlogged == 0


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/"), ("GET", "/v1/decision"), ("POST", "/v2/decisions"), ("GET", "/v1/models"), ("POST", "/v1"),
])
def test_an_unknown_path_is_404_not_found(client, auth, method, path):
    error_body(client.request(method, path, headers=auth), 404, "not_found")


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/decisions"), ("PUT", "/v1/decisions"), ("DELETE", "/v1/decisions"),
    ("POST", "/v1/model"), ("POST", "/healthz"), ("DELETE", "/readyz"),
])
def test_a_wrong_method_is_405_method_not_allowed(client, auth, method, path):
    response = client.request(method, path, headers=auth)
    error_body(response, 405, "method_not_allowed")
    assert method not in response.headers["allow"]


# --- 3. keys -------------------------------------------------------------------------------------
def unauthorized(response) -> None:
    error_body(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("header", [
    None, "Bearer ldk_wrong", "Basic x", "Basic {key}", "Bearer", "Bearer ", "{key}", "Token {key}",
    "Bearer {key}x", "Bearer x{key}", "Bearer {key_without_prefix}",
])
def test_requests_without_a_valid_key_are_401(client, key, header):
    headers = {} if header is None else {
        "Authorization": header.format(key=key, key_without_prefix=key.removeprefix("ldk_"))}
    unauthorized(post(client, EXAMPLE, headers))
    unauthorized(client.get("/v1/model", headers=headers))


def test_the_key_is_checked_before_the_body(client):
    unauthorized(post_raw(client, b"{not json", {}))
    unauthorized(post(client, [EXAMPLE] * (MAX_ITEMS + 1), {}))


def test_the_scheme_is_case_insensitive(client, key):
    assert post(client, EXAMPLE, {"Authorization": f"bearer {key}"}).status_code == 200
    assert post(client, EXAMPLE, {"Authorization": f"BEARER  {key} "}).status_code == 200


def test_a_refused_request_is_not_logged(client, app, key):
    post(client, EXAMPLE, {"Authorization": "Bearer nope"})
    assert app.state.services.writer.written == 0 and app.state.services.writer.unlogged == 0


def test_a_revoked_key_is_refused(client, app, auth):
    other = app.state.services.keys.create("other-system")
    assert post(client, EXAMPLE, auth).status_code == 200
    assert app.state.services.keys.revoke(KEY_NAME) == 1
    unauthorized(post(client, EXAMPLE, auth))
    unauthorized(client.get("/v1/model", headers=auth))
    assert post(client, EXAMPLE, {"Authorization": f"Bearer {other}"}).status_code == 200  # others still work
    with pytest.raises(KeyProblem, match="no live key"):
        app.state.services.keys.revoke(KEY_NAME)


def test_a_key_revoked_from_the_command_line_is_refused_by_a_running_app(client, app, auth, db_url,
                                                                        quick_key_refresh):
    assert post(client, EXAMPLE, auth).status_code == 200
    done = serve_py("--revoke-key", KEY_NAME, db_url=db_url)
    assert done.returncode == 0, done.stderr
    assert eventually(lambda: post(client, EXAMPLE, auth).status_code == 401)  # the refresher, not the request
    unauthorized(post(client, EXAMPLE, auth))


def test_the_key_table_holds_no_key_only_salted_hashes(app, db_url, tmp_path):
    keys = {name: app.state.services.keys.create(name) for name in ("alpha", "beta")}
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(api_keys)).mappings().all()
    engine.dispose()
    assert sorted(r["name"] for r in rows) == ["alpha", "beta"]
    dump = " ".join(str(v) for r in rows for v in r.values())
    for k in keys.values():
        assert k.startswith("ldk_")
        assert k not in dump and k.removeprefix("ldk_") not in dump
    for r in rows:
        assert re.fullmatch(r"[0-9a-f]{64}", r["key_hash"]) and re.fullmatch(r"[0-9a-f]{32}", r["salt"])
        k = keys[r["name"]]
        assert r["key_hash"] == hashlib.sha256(bytes.fromhex(r["salt"]) + k.encode()).hexdigest()
        assert r["key_hash"] != hashlib.sha256(k.encode()).hexdigest()  # salted, not a bare hash
    assert rows[0]["salt"] != rows[1]["salt"]
    assert rows[0]["key_hash"] != rows[1]["key_hash"]
    raw = (tmp_path / "decisions.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("decisions.db-*"))
    assert not any(k.removeprefix("ldk_").encode() in raw for k in keys.values())


def test_two_keys_are_never_the_same(app):
    made = [app.state.services.keys.create(f"system-{i}") for i in range(20)]
    assert len(set(made)) == len(made)
    assert all(len(k) >= 40 for k in made)


def test_the_open_endpoints_need_no_key(client):
    assert client.get("/healthz").json() == {"status": "alive"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready" and ready.json()["problems"] == []
    assert client.get("/openapi.json").status_code == 200
    docs = client.get("/docs")
    assert docs.status_code == 200 and "openapi.json" in docs.text


def test_new_key_from_the_command_line_works_against_the_app(app, client, db_url, open_log, quick_key_refresh):
    done = serve_py("--new-key", "loan-origination", db_url=db_url)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1]
    assert key.startswith("ldk_") and " " not in key
    result = eventually(lambda: (r := post(client, EXAMPLE, {"Authorization": f"Bearer {key}"})).status_code == 200
                        and r)
    assert result.status_code == 200, result.text
    assert open_log(db_url).find(result.json()["decision_id"])["source"] == "api:loan-origination"


def test_a_live_name_cannot_get_a_second_key(db_url):
    first = serve_py("--new-key", "scoring", db_url=db_url)
    assert first.returncode == 0, first.stderr
    again = serve_py("--new-key", "scoring", db_url=db_url)
    assert again.returncode == 2
    assert "'scoring' exists already" in again.stderr and "--revoke-key scoring" in again.stderr
    assert "Traceback" not in again.stderr and "ldk_" not in again.stdout
    assert serve_py("--revoke-key", "scoring", db_url=db_url).returncode == 0
    renewed = serve_py("--new-key", "scoring", db_url=db_url)
    assert renewed.returncode == 0, renewed.stderr
    assert renewed.stdout.strip().splitlines()[-1] != first.stdout.strip().splitlines()[-1]
    listing = serve_py("--list-keys", db_url=db_url)
    assert listing.returncode == 0
    lines = [line for line in listing.stdout.splitlines() if line.startswith("scoring")]
    assert len(lines) == 2
    assert sum("revoked" in line for line in lines) == 1 and sum("live" in line for line in lines) == 1
    assert "ldk_" not in listing.stdout


@pytest.mark.parametrize("name", ["has space", "-starts-with-dash", "x" * 41, "naïve", "a/b", ""])
def test_an_invalid_key_name_is_refused_on_the_command_line(db_url, name, registry):
    # --model is given so that a command line taken for "serve" fails fast instead of serving
    done = serve_py(f"--new-key={name}", "--model", str(registry / "no-model-here"), db_url=db_url)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "is not a usable key name" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("name", ["", " ", "has space", "-x", "_x", "x" * 37, "a/b", "a:b", "naïve", "x\n"])
def test_an_invalid_key_name_is_refused_by_the_store(app, name):
    with pytest.raises(KeyProblem, match="not a usable key name"):
        app.state.services.keys.create(name)


def test_the_longest_name_fits_the_logs_source_column(client, app, db_url, open_log):
    """"api:" + a 36-character name is the most the log's 40-character source column holds."""
    name = "n" * 36
    auth = {"Authorization": f"Bearer {app.state.services.keys.create(name)}"}
    decided = post(client, EXAMPLE, auth).json()
    assert app.state.services.writer.healthy
    assert open_log(db_url).find(decided["decision_id"])["source"] == f"api:{name}"


def test_two_live_keys_of_one_name_are_impossible_even_in_a_race(app, db_url):
    """The check before the insert can race with another command; a unique index on live names cannot."""
    app.state.services.keys.create("racer")
    engine = create_engine(db_url)
    with pytest.raises(Exception, match="UNIQUE"), engine.begin() as conn:
        conn.execute(api_keys.insert().values(name="racer", salt="00" * 16, key_hash="00" * 32,
                                              created_at=datetime.now(UTC)))
    engine.dispose()


def test_a_first_key_on_a_new_machine_makes_the_log_folder(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'new' / 'folder' / 'decisions.db'}"
    done = serve_py("--new-key", "first", db_url=db_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("ldk_")


def test_a_server_never_reads_keys_on_a_requests_path(app, monkeypatch):
    """Until its refresher has read the table, a server answers 503 at once rather than hitting the
    database from the request (an unreachable one would stall every client for its timeout)."""
    reads = []
    monkeypatch.setattr(app.state.services.keys, "_reload", lambda: reads.append(1))
    app.state.services.keys._refreshing = True  # as after start_refreshing()
    with pytest.raises(api.keys.KeysUnavailable, match="not been read yet"):
        app.state.services.keys.name_for("ldk_anything")
    assert reads == []


def test_a_copy_of_the_keys_too_old_to_trust_is_refused(app, monkeypatch):
    """If the table cannot be reread for KEYS_MAX_AGE_SECONDS, a revoked key must not keep working."""
    key = app.state.services.keys.create("old-copy")
    assert app.state.services.keys.name_for(key) == "old-copy"
    monkeypatch.setattr(api.keys, "KEYS_MAX_AGE_SECONDS", 0.0)
    with pytest.raises(api.keys.KeysUnavailable, match="not been reread"):
        app.state.services.keys.name_for(key)


def test_revoking_an_unknown_name_is_exit_2(db_url):
    done = serve_py("--revoke-key", "nobody", db_url=db_url)
    assert done.returncode == 2 and "no live key named 'nobody'" in done.stderr


# --- 4. the decision log cannot be written -------------------------------------------------------
@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(log_writer, "RETRY_SECONDS", 0.05)
    monkeypatch.setattr(api.readiness, "CHECK_SECONDS", 0.05)


@pytest.fixture
def log_down(app, monkeypatch, fast_retries):
    """The decision log fails (as on a full disk) until `restore()`: writes and pings; counts the writes."""
    log = app.state.services.decision_log
    real_record, real_ping = log.record, log.ping
    attempts = []

    def failing(entries):
        attempts.append(len(list(entries)))
        return LogResult(0, "disk full at /var/lib/loandesk/decisions.db")

    monkeypatch.setattr(log, "record", failing)
    monkeypatch.setattr(log, "ping", lambda: "disk full at /var/lib/loandesk/decisions.db")

    class Down:
        tries = attempts

        @staticmethod
        def restore():
            monkeypatch.setattr(log, "record", real_record)
            monkeypatch.setattr(log, "ping", real_ping)

    return Down


def ready_when(client, condition, what: str) -> dict:
    """The /readyz body once `condition(status, body)` holds (it is refreshed in the background)."""
    seen = {}

    def check():
        response = client.get("/readyz")
        seen.clear()
        seen.update(response.json(), http_status=response.status_code)
        return condition(response.status_code, response.json())

    try:
        wait_until(check, f"/readyz to say {what}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; its last answer: {seen}") from None
    return seen


def test_while_the_log_is_down_decisions_are_journaled_then_written_when_it_is_back(
        client, app, auth, log_down, db_url, unsent, open_log):
    first = post(client, EXAMPLE, auth)
    assert first.status_code == 200  # answered: it is in the journal, fsynced
    rest = post(client, applicants_with_incomes([25_000, 70_000, 110_000]), auth)
    assert rest.status_code == 200
    ids = [first.json()["decision_id"], *(r["decision_id"] for r in rest.json())]
    assert log_down.tries and not app.state.services.writer.healthy and app.state.services.writer.journaled == len(ids)

    [segment] = unsent.glob("journal-*.jsonl")
    assert sorted(json.loads(line)["decision_id"] for line in read_sealed(segment)) == sorted(ids)
    assert segment.stat().st_mode & 0o777 == 0o600 and unsent.stat().st_mode & 0o777 == 0o700

    body = ready_when(client, lambda s, b: b["decision_log"] != "writable", "the log is down")
    assert body["status"] == "ready" and body["journal"] == "writable"
    assert body["unlogged_decisions"] == 0 and body["journal_segments"] == 1
    assert any(w.startswith("decision log: cannot be written") for w in body["warnings"])
    assert "disk full" not in json.dumps(body) and "/var/lib" not in json.dumps(body)  # the server log has those
    still = post(client, [EXAMPLE, {**EXAMPLE, "income": 95_000}], auth)  # still deciding
    assert still.status_code == 200
    ids += [r["decision_id"] for r in still.json()]
    assert open_log(db_url).count() == 0

    log_down.restore()  # the recovery thread's ping succeeds: the journal is replayed, then deleted
    wait_until(lambda: not list(unsent.glob("journal-*.jsonl")), "the journal to be replayed")
    log = open_log(db_url)
    assert log.known_ids(ids) == set(ids) and log.count() == len(ids)
    assert {log.find(i)["source"] for i in ids} == {f"api:{KEY_NAME}"}
    body = ready_when(client, lambda s, b: b["warnings"] == [], "all is well again")
    assert body["status"] == "ready" and body["decision_log"] == "writable" and body["journal_segments"] == 0
    after = post(client, EXAMPLE, auth).json()["decision_id"]
    assert log.find(after) is not None and log.count() == len(ids) + 1  # straight to the log again


def test_when_neither_the_log_nor_the_journal_can_be_written_the_answer_is_503_with_retry_after(
        registry, tmp_path, db_url, monkeypatch, open_log):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")  # the journal's folder cannot be made
    monkeypatch.setattr(log_writer, "RETRY_SECONDS", 0.05)
    monkeypatch.setattr(api.readiness, "CHECK_SECONDS", 0.05)
    app = create_app(registry, db_url, blocked / "unsent")
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {app.state.services.keys.create(KEY_NAME)}"}
        log = app.state.services.decision_log
        real_record = log.record
        monkeypatch.setattr(log, "record", lambda entries: LogResult(0, "disk I/O error"))
        monkeypatch.setattr(log, "ping", lambda: "disk I/O error")
        refused = post(client, EXAMPLE, auth)
        body = error_body(refused, 503, "unavailable")
        assert refused.headers["retry-after"].isdigit() and "try again" in body["message"]
        assert error_body(post(client, [EXAMPLE, EXAMPLE], auth), 503, "unavailable")
        ready = ready_when(client, lambda s, b: s == 503, "not ready")
        assert ready["status"] == "not ready" and ready["decision_log"] == ready["journal"] == "cannot be written"
        assert ready["problems"] == ["decisions cannot be put on record: neither the decision log nor the "
                                     "journal can be written (see the server log)"]
        assert str(tmp_path) not in json.dumps(ready)
        monkeypatch.setattr(log, "record", real_record)
        monkeypatch.setattr(log, "ping", lambda: None)
        wait_until(lambda: post(client, EXAMPLE, auth).status_code == 200, "decisions to be taken again")
    assert open_log(db_url).count() >= 1


def test_a_journal_left_by_a_crash_is_replayed_at_the_next_start_once(
        app, auth, log_down, unsent, db_url, registry, open_log):
    with TestClient(app) as client:
        ids = [post(client, EXAMPLE, auth).json()["decision_id"]]
        ids += [r["decision_id"] for r in post(client, applicants_with_incomes([30_000, 80_000]), auth).json()]
        bad_and_good = post(client, [{"age": 5}, EXAMPLE], auth).json()
        ids.append(bad_and_good[1]["decision_id"])
    [segment] = unsent.glob("journal-*.jsonl")  # closed with the log still down: kept
    lines = [json.loads(line) for line in read_sealed(segment)]
    assert sorted(line["decision_id"] for line in lines) == sorted(ids)
    assert {line["source"] for line in lines} == {f"api:{KEY_NAME}"}
    with segment.open("a") as torn:  # a crash mid-append: a line without its newline, never answered
        torn.write('{"model_name": "m", "decision_id": "ff')
    log = open_log(db_url)
    assert log.count() == 0

    again = create_app(registry, db_url, unsent)
    with TestClient(again):  # the recovery thread replays at start
        wait_until(lambda: not list(unsent.glob("journal-*.jsonl")), "the journal to be replayed")
    assert log.known_ids(ids) == set(ids) and log.count() == len(ids)
    row = log.find(ids[0])
    assert row["inputs"] == EXAMPLE and row["source"] == f"api:{KEY_NAME}"


def test_serve_py_replays_a_saved_file_once(app, auth, log_down, unsent, db_url, open_log):
    with TestClient(app) as client:
        ids = [r["decision_id"] for r in post(client, applicants_with_incomes([40_000, 50_000, 60_000]), auth).json()]
    [saved] = unsent.glob("journal-*.jsonl")
    done = serve_py("--replay", str(saved), db_url=db_url)
    assert done.returncode == 0, done.stderr
    assert "Wrote 3 decision(s)" in done.stdout
    again = serve_py("--replay", str(saved), db_url=db_url)
    assert again.returncode == 0 and "Wrote 0 decision(s)" in again.stdout
    log = open_log(db_url)
    assert log.known_ids(ids) == set(ids) and log.count() == 3


def test_a_log_that_cannot_be_opened_is_reported_by_readyz(registry, tmp_path):
    app = create_app(registry, "sqlite:////proc/loandesk-no-such-dir/decisions.db", tmp_path / "unsent")
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "not ready"
        assert ready.json()["decision_log"] == "cannot be written"
        # the keys live in the same database: no request can be checked, and the answer says so
        assert ready.json()["problems"] == ["api keys: cannot be checked (see the server log)"]
        assert "Traceback" not in ready.text and "/proc" not in ready.text
        error_body(post(client, EXAMPLE, {"Authorization": "Bearer ldk_x"}), 503, "unavailable")


def test_readyz_asks_the_database_even_when_no_decision_is_flowing(registry, tmp_path, monkeypatch):
    """A quiet replica whose database went away says so before a client finds out; it stays ready
    (its decisions go to the journal), so that a shared database's outage is not every replica's."""
    monkeypatch.setattr(api.readiness, "CHECK_SECONDS", 0.05)
    app = create_app(registry, f"sqlite:///{tmp_path / 'decisions.db'}", tmp_path / "unsent")
    with TestClient(app) as client:
        assert client.get("/readyz").json()["decision_log"] == "writable"
        monkeypatch.setattr(app.state.services.decision_log, "ping", lambda: "connection refused by db.internal:5432")
        body = ready_when(client, lambda s, b: b["decision_log"] != "writable", "the log is unreachable")
        assert body["status"] == "ready" and body["warnings"][0].startswith("decision log: cannot be written")
        assert "db.internal" not in json.dumps(body)  # hosts and users stay out of an unauthenticated answer


def test_a_flood_of_readyz_calls_never_reaches_the_database(client, app, monkeypatch):
    pings = []
    real = app.state.services.decision_log.ping
    monkeypatch.setattr(app.state.services.decision_log, "ping", lambda: pings.append(1) or real())
    answers = {client.get("/readyz").status_code for _ in range(300)}
    assert answers == {200}
    assert len(pings) <= 2  # the background check's, at most one a second


# --- 5. the OpenAPI document ---------------------------------------------------------------------
def test_openapi_documents_the_applicant_from_the_model_card(client, registry, auth):
    spec = client.get("/openapi.json").json()
    applicant = spec["components"]["schemas"]["Applicant"]
    model = load_model(registry)
    assert list(applicant["properties"]) == model.schema.names
    assert applicant["required"] == [f.name for f in model.schema.fields if f.required] == list(EXAMPLE)
    assert applicant["example"] == EXAMPLE
    props = applicant["properties"]
    assert (props["age"]["minimum"], props["age"]["maximum"]) == (18, 120)
    assert (props["credit_score"]["minimum"], props["credit_score"]["maximum"]) == (300, 850)
    assert props["income"]["minimum"] == 0 and props["income"]["maximum"] == model.schema["income"].hard_max
    assert model.schema["income"].hard_max >= 10 * model.schema["income"].train_max  # derived, with a wide margin
    assert "(years)" in props["age"]["description"] and "($)" in props["income"]["description"]
    body = spec["paths"]["/v1/decisions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/Applicant"} in body["oneOf"]
    array = next(s for s in body["oneOf"] if s.get("type") == "array")
    assert array["items"] == {"$ref": "#/components/schemas/Applicant"} and array["maxItems"] == MAX_ITEMS
    assert spec["paths"]["/v1/decisions"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]
    # the documented example is itself accepted
    assert post(client, applicant["example"], auth).status_code == 200


@pytest.fixture(scope="module")
def csv_model(tmp_path_factory) -> Path:
    """A model trained by train.py on a user's CSV: text column `region`, gaps, a yes/no target."""
    from .test_training import run_train

    folder = tmp_path_factory.mktemp("csv_model")
    csv = folder / "applicants.csv"
    user_applicants(500, seed=3).to_csv(csv, index=False)
    out = folder / "my_model"
    done = run_train("--data", str(csv), "--target", "decision", "--positive-label", "yes", "--out", str(out),
                     "--monotone", "pay=+1,debts=-1", cwd=folder)
    assert done.returncode == 0, done.stderr
    return out


def test_a_model_trained_on_a_users_csv_is_served_with_its_own_schema(csv_model, tmp_path):
    model = load_model(csv_model)
    app = create_app(csv_model, f"sqlite:///{tmp_path / 'csv.db'}", tmp_path / "unsent")
    key = app.state.services.keys.create("csv-client")
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(app) as client:
        applicant = client.get("/openapi.json").json()["components"]["schemas"]["Applicant"]
        props = applicant["properties"]
        assert list(props) == model.schema.names == ["pay", "score", "balance", "debts", "region", "savings"]
        assert applicant["required"] == model.schema.names  # every field is sent, null only where training had gaps
        assert set(props["region"]["enum"]) - {None} == {"north", "south", "east"}
        assert "string" in props["region"]["type"]
        assert "number" in props["savings"]["type"] and "imputed" in props["savings"]["description"]
        # The documented minimum is where validation starts refusing: training saw no negative debts.
        assert props["debts"]["minimum"] == 0
        below = {k: v for k, v in applicant["example"].items()} | {"debts": -1}
        refused = error_body(client.post("/v1/decisions", json=below, headers=auth), 422, "invalid_applicant")
        assert [e["field"] for e in refused["errors"]] == ["debts"]

        example = applicant["example"]
        assert set(example) == set(model.schema.names)
        good = client.post("/v1/decisions", json={**example, "region": "north"}, headers=auth)
        assert good.status_code == 200, good.text
        assert good.json()["probability"] == pytest.approx(
            model.predict_proba({**example, "region": "north"})[0, 1], abs=1e-9)
        assert good.json()["model_version"] == model.version

        unknown = error_body(client.post("/v1/decisions", json={**example, "region": "atlantis"}, headers=auth),
                             422, "invalid_applicant")
        assert [(e["field"], e["value"]) for e in unknown["errors"]] == [("region", "atlantis")]
        assert "not a known category" in unknown["errors"][0]["why"]

        gaps = client.post("/v1/decisions", json=[
            {**example, "savings": None},
            {**example, "region": None},
            {**example, "savings": None, "region": ""},
            {k: v for k, v in example.items() if k != "savings"},
            {**example, "pay": None},
        ], headers=auth).json()
        assert [r["imputed"] for r in gaps[:3]] == [["savings"], ["region"], ["region", "savings"]]
        assert gaps[3]["errors"] == [{"field": "savings", "value": None, "why": "is missing: every field of the "
                                      "model is required (send null when it is not known)"}]
        assert gaps[4]["errors"] == [{"field": "pay", "value": None, "why": "is required"}]  # no gaps in training

        # A CSV model refuses an empty body, and a body with one of its fields, naming what it expects.
        empty = error_body(client.post("/v1/decisions", json={}, headers=auth), 422, "invalid_applicant")
        assert empty["errors"][0]["why"] == ("has none of the model's fields; expected: pay, score, balance, debts, "
                                             "region, savings")
        one = error_body(client.post("/v1/decisions", json={"pay": 50_000}, headers=auth), 422, "invalid_applicant")
        assert [e["field"] for e in one["errors"]] == ["score", "balance", "debts", "region", "savings"]


# --- 6. Schemathesis: every documented operation, generated requests -----------------------------
@pytest.fixture
def fuzz_target(registry, tmp_path) -> dict:
    app = create_app(registry, f"sqlite:///{tmp_path / 'fuzz.db'}", tmp_path / "unsent")
    return {"app": app, "key": app.state.services.keys.create("schemathesis")}


def test_schemathesis_finds_no_server_error_and_no_schema_violation(fuzz_target):
    """Valid and invalid requests generated from /openapi.json for every operation, with a valid key:
    no 5xx, every answer documented and shaped as documented. Driven through Hypothesis directly
    rather than schemathesis' pytest plugin, which newer pytest releases break."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_target["app"])
    strategies = [result.ok().as_strategy(generation_mode=mode) for result in schema.get_all_operations()
                  for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    headers = {"Authorization": f"Bearer {fuzz_target['key']}"}
    seen: set[str] = set()

    @given(case=st.one_of(strategies))
    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        response = case.call_and_validate(
            headers=headers, checks=[not_a_server_error, response_schema_conformance, status_code_conformance])
        assert "Traceback" not in response.text
        seen.add(f"{case.method} {case.path} {response.status_code}")

    try:
        run()
    finally:
        lifespans = getattr(getattr(schemathesis, "python", None), "asgi", None)
        if lifespans is not None and hasattr(lifespans, "shutdown_lifespans"):
            lifespans.shutdown_lifespans()  # close the app's log writer now, not at interpreter exit
    assert {"POST /v1/decisions 200", "POST /v1/decisions 422", "GET /v1/model 200"} <= seen


# --- 7. PostgreSQL -------------------------------------------------------------------------------
@pytest.fixture
def pg_url():
    """A private, empty schema on the PostgreSQL server, dropped afterwards."""
    yield from private_pg_schema("API tests")


@pytest.mark.postgres
def test_postgres_keys_and_decisions(registry, pg_url, tmp_path, open_log):
    app = create_app(registry, pg_url, tmp_path / "unsent")
    key = app.state.services.keys.create("pg-client")
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(app) as client:
        unauthorized(post(client, EXAMPLE, {"Authorization": "Bearer ldk_wrong"}))
        one = post(client, EXAMPLE, auth).json()
        many = post(client, [*applicants_with_incomes([30_000, 90_000]), {"age": 3}], auth).json()
        assert many[2]["index"] == 2
        assert client.get("/readyz").status_code == 200
        app.state.services.keys.revoke("pg-client")
        unauthorized(post(client, EXAMPLE, auth))
    log = open_log(pg_url)
    ids = [one["decision_id"], many[0]["decision_id"], many[1]["decision_id"]]
    assert log.count() == 3 and log.known_ids(ids) == set(ids)
    row = log.find(one["decision_id"])
    assert row["source"] == "api:pg-client" and row["inputs"] == EXAMPLE
    assert row["probability"] == pytest.approx(one["probability"], abs=1e-12)
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        stored = " ".join(str(v) for r in conn.execute(select(api_keys)).all() for v in r)
    engine.dispose()
    assert key not in stored and key.removeprefix("ldk_") not in stored


@pytest.mark.postgres
def test_postgres_concurrent_requests_lose_no_decision(registry, pg_url, tmp_path, open_log):
    app = create_app(registry, pg_url, tmp_path / "unsent")
    auth = {"Authorization": f"Bearer {app.state.services.keys.create('pg-load')}"}
    received: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client_thread(client: TestClient, n: int) -> None:
        for i in range(20):
            single = {**EXAMPLE, "income": 30_000 + 1000 * n + i}
            body = single if i % 2 else applicants_with_incomes([40_000 + n, 50_000])
            response = post(client, body, auth)
            if response.status_code != 200:
                failures.append(response.text)
                continue
            results = response.json() if isinstance(response.json(), list) else [response.json()]
            with lock:
                received.extend(r["decision_id"] for r in results)

    with TestClient(app) as client:
        threads = [threading.Thread(target=client_thread, args=(client, n)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failures
    assert len(received) == 8 * (10 * 1 + 10 * 2) and len(set(received)) == len(received)
    log = open_log(pg_url)
    assert log.known_ids(received) == set(received)
    assert log.count() == len(received)


def test_integers_past_64_bits_are_refused_and_echoed_as_their_digits(client, auth):
    raw = (b'{"age": [-9223372036854775809], "income": 100000000000000000000000000000, "credit_score": 720, '
           b'"loan_amount": 18000, "employment_years": 6}')
    body = error_body(post_raw(client, raw, auth), 422, "invalid_applicant")
    values = {e["field"]: e["value"] for e in body["errors"]}
    assert values == {"age": ["-9223372036854775809"], "income": "100000000000000000000000000000"}


def test_the_notice_of_a_decision_still_in_the_journal_is_asked_for_again_later_never_not_found(
        client, app, auth, log_down, db_url, unsent, open_log):
    rejected = {**EXAMPLE, "income": 24_000, "credit_score": 540, "loan_amount": 30_000, "employment_years": 1}
    made = post(client, rejected, auth)
    assert made.status_code == 200 and made.json()["decision"] == 0
    decision_id = made.json()["decision_id"]
    assert open_log(db_url).find(decision_id) is None  # answered, but so far only in the journal

    waiting = client.get(f"/v1/decisions/{decision_id}/notice", headers=auth)
    assert waiting.status_code == 503 and waiting.headers["Retry-After"]
    assert waiting.json()["error"] == "unavailable"
    assert f"decision {decision_id} is on record in this server's journal" in waiting.json()["message"]
    unknown = client.get(f"/v1/decisions/{'f' * 32}/notice", headers=auth)
    assert unknown.status_code == 404  # an id nobody was given is still not found

    log_down.restore()
    wait_until(lambda: not list(unsent.glob("journal-*.jsonl")), "the journal to be replayed")
    ready = client.get(f"/v1/decisions/{decision_id}/notice", headers=auth)
    assert ready.status_code == 200 and ready.content.startswith(b"%PDF")
