"""users.py and train.py --activate/--history as a user runs them, against a private decision log."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from model.records import access
from model.records.log import DecisionLog
from model.records.people import People
from model.registry.store import active_version
from model.training.changes import model_changes
from model.training.workflows import copy_with_threshold

from .conftest import ROOT


@pytest.fixture
def env(tmp_path, registry) -> dict[str, str]:
    return {**os.environ, "LOANDESK_DB_URL": f"sqlite:///{tmp_path / 'log.db'}", "LOANDESK_MODEL_DIR": str(registry),
            "USER": "carol", "LOGNAME": "carol"}


def run(env: dict[str, str], script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_users_are_added_listed_changed_and_removed(env):
    assert run(env, "users.py", "add", "Ann@Bank.example", "--role", "officer", "--role", "risk").returncode == 0
    assert run(env, "users.py", "add", "bob@bank.example", "--role", "admin").returncode == 0
    listed = run(env, "users.py", "list")
    assert listed.returncode == 0
    assert "ann@bank.example" in listed.stdout and "officer, risk" in listed.stdout and "os:carol" in listed.stdout
    changed = run(env, "users.py", "set-role", "ann@bank.example", "--role", "auditor")
    assert changed.stdout.strip() == "ann@bank.example: auditor"
    people = People(DecisionLog(env["LOANDESK_DB_URL"]))
    assert people.roles_of("ann@bank.example") == {"auditor"}
    assert run(env, "users.py", "remove", "ann@bank.example").returncode == 0
    assert people.roles_of("ann@bank.example") == frozenset()
    assert set(people.changes()["actor"]) == {"os:carol"}


@pytest.mark.parametrize(("args", "words"), [
    (["add", "ann@bank.example", "--role", "boss"], ["'boss' is not a role", "officer, risk, auditor, admin"]),
    (["add", "not-an-email", "--role", "officer"], ["not an email address"]),
    (["add", "a\x01b@bank.example", "--role", "officer"], ["control"]),
])
def test_bad_input_is_one_line_naming_the_value(env, args, words):
    result = run(env, "users.py", *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    for word in words:
        assert word in result.stderr


def test_train_py_activate_is_recorded_with_the_os_user_and_history_prints_it(env, registry):
    log = DecisionLog(env["LOANDESK_DB_URL"])
    desk = model_changes(log, registry)
    first = active_version(registry)
    risk = [access.person(f"{n}@bank.example", n, None, {"risk"}) for n in ("rita", "sam")]
    second = desk.approve(risk[1], desk.propose_threshold(risk[0], first, 0.6, "Quarterly review").id).result_version
    done = run(env, "train.py", "--activate", first, "--out", str(registry))
    assert done.returncode == 0, done.stderr
    assert "os:carol" in done.stdout and active_version(registry) == first
    history = run(env, "train.py", "--history", "--out", str(registry))
    lines = history.stdout.strip().splitlines()
    assert len(lines) == 3
    assert "activated" in lines[0] and "os:carol" in lines[0] and f"{second} -> {first}" in lines[0]
    assert "approved" in lines[1] and "sam@bank.example" in lines[1] and "50.0% -> 60.0%" in lines[1]
    assert "proposed" in lines[2] and "rita@bank.example" in lines[2] and "Quarterly review" in lines[2]


def test_train_py_activate_refuses_when_the_history_cannot_be_written(env, registry, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    first = active_version(registry)
    second = copy_with_threshold(registry, first, 0.6)
    result = run({**env, "LOANDESK_DB_URL": f"sqlite:///{blocker / 'log.db'}"}, "train.py", "--activate", second,
                 "--out", str(registry))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "nothing was changed" in result.stderr
    assert active_version(registry) == first


def test_a_version_trained_from_the_shell_is_recorded_when_it_becomes_active(env, tmp_path):
    out = tmp_path / "fresh_model"
    done = run(env, "train.py", "--rows", "800", "--model", "logistic", "--out", str(out))
    assert done.returncode == 0, done.stderr
    history = model_changes(DecisionLog(env["LOANDESK_DB_URL"]), out).history()
    assert list(history["action"]) == ["activated"]
    row = history.iloc[0]
    assert row["actor"] == "os:carol" and row["to_version"] == active_version(out) and row["from_version"] is None
    assert "trained with train.py" in row["note"]


def test_train_py_set_threshold_is_recorded_with_the_os_user(env, registry):
    before = active_version(registry)
    done = run(env, "train.py", "--out", str(registry), "--set-threshold", "0.61")
    assert done.returncode == 0, done.stderr
    assert "(active); recorded as os:carol" in done.stdout
    after = active_version(registry)
    assert after != before
    row = model_changes(DecisionLog(env["LOANDESK_DB_URL"]), registry).history().iloc[0]
    assert (row["action"], row["actor"], row["from_version"], row["to_version"]) == ("activated", "os:carol", before,
                                                                                      after)
    assert row["to_threshold"] == 0.61 and "--set-threshold" in row["note"]
