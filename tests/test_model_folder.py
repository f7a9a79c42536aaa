"""The model folder is never guessed: a wrong one is an error naming it in the app, score.py and serve.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import model.registry.store as store
from model.registry.store import holds_versions, load_model, may_train_builtin, model_folder_problem

from .conftest import ROOT


def _wrong_folders(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Each kind of wrong model folder, and what its error must say."""
    empty = tmp_path / "empty"
    empty.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    (project / "loan_approval_model.pkl").write_bytes(b"not really a pickle")
    return {
        "a typo": (tmp_path / "artifacts" / "loan_aproval_model", "does not exist"),
        "an empty folder": (empty, "holds no LoanDesk versions"),
        "a .pkl file": (project / "loan_approval_model.pkl", "python train.py --import"),
        "a folder holding a .pkl": (project, "python train.py --import"),
    }


KINDS = ["a typo", "an empty folder", "a .pkl file", "a folder holding a .pkl"]


@pytest.fixture(autouse=True)
def _quiet_streamlit_warnings(caplog):
    caplog.set_level("ERROR", logger="streamlit")


@pytest.mark.parametrize("kind", KINDS)
def test_the_app_names_a_wrong_model_folder_and_trains_nothing_into_it(app, tmp_path, monkeypatch, kind):
    path, says = _wrong_folders(tmp_path)[kind]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    monkeypatch.setenv("LOANDESK_MODEL_DIR", str(path))
    at = app.run()
    assert not at.exception, at.exception
    shown = " ".join(e.value for e in at.error)
    assert str(path) in shown and says in shown and "LOANDESK_MODEL_DIR" in shown
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing trained, nothing created
    for page in ("app_pages/model.py", "app_pages/batch.py", "app_pages/monitoring.py", "app_pages/learn.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert str(path) in " ".join(e.value for e in at.error), page


def test_the_built_in_folder_is_trained_on_a_first_start_and_only_it(app, tmp_path, monkeypatch):
    builtin = tmp_path / "artifacts" / "loan_approval_model"
    monkeypatch.setattr(store, "builtin_model_dir", lambda: builtin)
    monkeypatch.setenv("LOANDESK_MODEL_DIR", str(builtin))
    assert may_train_builtin(builtin) and not may_train_builtin(tmp_path / "elsewhere")
    at = app.run()
    assert not at.exception
    assert load_model(builtin).card["data"]["source"].startswith("built-in applicants")
    assert holds_versions(builtin) and not may_train_builtin(builtin)


def test_messages_say_where_the_path_came_from(tmp_path):
    missing = tmp_path / "nope"
    assert model_folder_problem(missing, "LOANDESK_MODEL_DIR").startswith(f"LOANDESK_MODEL_DIR is {missing}")
    assert "unset LOANDESK_MODEL_DIR" in model_folder_problem(missing, "LOANDESK_MODEL_DIR")
    assert model_folder_problem(missing, "--model").startswith(f"--model is {missing}")
    assert model_folder_problem(missing).startswith(str(missing))


def test_a_model_folder_and_a_version_folder_have_no_problem(trained):
    assert model_folder_problem(trained) is None
    version = next((trained / "versions").iterdir())
    assert model_folder_problem(version) is None


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOANDESK_DB_URL": f"sqlite:///{tmp_path / 'log.db'}",
           "LOANDESK_UNSENT_DIR": str(tmp_path / "unsent")}
    env.pop("LOANDESK_MODEL_DIR", None)
    return env


@pytest.mark.parametrize("kind", KINDS)
def test_score_py_names_a_wrong_model_folder(tmp_path, env, kind):
    path, says = _wrong_folders(tmp_path)[kind]
    (tmp_path / "applicants.csv").write_text("age,income,credit_score,loan_amount,employment_years\n"
                                             "35,62000,720,18000,6\n")
    done = subprocess.run([sys.executable, str(ROOT / "score.py"), str(tmp_path / "applicants.csv"), "--model",
                           str(path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1
    assert f"--model is {path}" in done.stderr and says in done.stderr


def test_score_py_names_loandesk_model_dir_when_it_is_wrong(tmp_path, env):
    path = tmp_path / "typo"
    (tmp_path / "applicants.csv").write_text("age\n35\n")
    done = subprocess.run([sys.executable, str(ROOT / "score.py"), str(tmp_path / "applicants.csv")], cwd=tmp_path,
                          env={**env, "LOANDESK_MODEL_DIR": str(path)}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and f"LOANDESK_MODEL_DIR is {path}" in done.stderr
    assert not path.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_serve_py_refuses_to_start_on_a_wrong_model_folder(tmp_path, env, kind):
    path, says = _wrong_folders(tmp_path)[kind]
    done = subprocess.run([sys.executable, str(ROOT / "serve.py"), "--model", str(path), "--port", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert f"--model is {path}" in done.stderr and says in done.stderr
    assert "Serving" not in done.stdout


def test_serve_py_trains_nothing_into_a_mistyped_loandesk_model_dir(tmp_path, env):
    path = tmp_path / "artifacts" / "typo"
    done = subprocess.run([sys.executable, str(ROOT / "serve.py"), "--port", "1"], cwd=tmp_path,
                          env={**env, "LOANDESK_MODEL_DIR": str(path)}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and f"LOANDESK_MODEL_DIR is {path}" in done.stderr
    assert "training the built-in" not in done.stdout and not path.exists()
