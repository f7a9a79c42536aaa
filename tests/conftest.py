"""Shared fixtures: one trained built-in model per session, private copies for tests that change it."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from model.registry.store import load_model, save_version
from model.training.train import train_builtin

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "streamlit_app.py"
OUTPUT = ROOT / "test-output"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

EXAMPLE = {"age": 35, "income": 62_000, "credit_score": 720, "loan_amount": 18_000, "employment_years": 6}


@pytest.fixture(autouse=True, scope="session")
def _no_test_writes_the_projects_own_log(tmp_path_factory):
    """Commands run by tests (train.py records activations in the change history) get a throwaway
    decision log unless a test names one, never the project's data/decisions.db."""
    if "LOANDESK_DB_URL" not in os.environ:
        os.environ["LOANDESK_DB_URL"] = f"sqlite:///{tmp_path_factory.mktemp('default-log') / 'decisions.db'}"
        yield
        os.environ.pop("LOANDESK_DB_URL", None)
    else:
        yield


def private_pg_schema(purpose: str) -> Iterator[str]:
    """A URL for a private, empty schema on the PostgreSQL server, dropped afterwards; skips (fails in
    CI) without LOANDESK_TEST_PG_URL. Use it as the body of a generator fixture: `yield from ...`."""
    pg_url = os.environ.get("LOANDESK_TEST_PG_URL")
    if not pg_url:
        if IN_CI:
            pytest.fail(f"LOANDESK_TEST_PG_URL is not set, but CI must run the PostgreSQL {purpose} "
                        "(.ci/run starts the server and sets it)")
        pytest.skip(f"LOANDESK_TEST_PG_URL is not set: no PostgreSQL server for the {purpose} (.ci/run starts one)")
    schema = f"loandesk_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(autouse=True)
def private_files(tmp_path, monkeypatch) -> None:
    """Unsent files and the replay key go to the test's own folder, never to the project's data/."""
    monkeypatch.setenv("LOANDESK_UNSENT_DIR", str(tmp_path / "unsent"))
    monkeypatch.setenv("LOANDESK_REPLAY_KEY_FILE", str(tmp_path / "replay.key"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def log_url(request, tmp_path) -> Iterator[str]:
    """A fresh, empty decision-log database: a SQLite file, or a private schema on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'decisions.db'}"
        return
    yield from private_pg_schema(request.node.module.__name__.rsplit(".", 1)[-1].removeprefix("test_") + " tests")


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """A model folder holding the built-in model, trained once per test session. Do not modify."""
    registry = tmp_path_factory.mktemp("artifacts") / "loan_approval_model"
    result = train_builtin()
    save_version(registry, result.pipeline, result.card, result.holdout)
    return registry


@pytest.fixture(scope="session")
def model(trained):
    return load_model(trained)


@pytest.fixture
def registry(trained, tmp_path) -> Path:
    """A private copy of the trained model folder, for tests that add or activate versions."""
    target = tmp_path / "loan_approval_model"
    shutil.copytree(trained, target)
    return target


@pytest.fixture
def app_env(registry, tmp_path, monkeypatch) -> Path:
    """Point the app at a private model copy and a private SQLite log, with fresh Streamlit caches."""
    import streamlit as st

    monkeypatch.setenv("LOANDESK_MODEL_DIR", str(registry))
    monkeypatch.setenv("LOANDESK_DB_URL", f"sqlite:///{tmp_path / 'decisions.db'}")
    st.cache_resource.clear()
    st.cache_data.clear()
    yield registry
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def app(app_env):
    """An AppTest of the whole app (st.navigation), not yet run."""
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(APP), default_timeout=120)


@pytest.fixture
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT
