"""score.py run as a user runs it: exit codes, one-line errors without tracebacks, the summary, the log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from model.records import access
from model.records.batches import replay_file
from model.records.log import DecisionLog
from model.records.sealed import UnsealedFileError
from model.registry.store import list_versions
from model.training.data import generate_applicants

from .conftest import ROOT

FEATURES = ["age", "income", "credit_score", "loan_amount", "employment_years"]


@pytest.fixture
def env(trained, tmp_path) -> dict[str, str]:
    return {**os.environ, "LOANDESK_MODEL_DIR": str(trained), "LOANDESK_DB_URL": f"sqlite:///{tmp_path / 'log.db'}"}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "score.py"), *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def applicants_csv(path: Path, n: int = 50, bad_incomes: tuple[int, ...] = ()) -> Path:
    frame = generate_applicants(n, seed=21)[FEATURES].astype(object)
    for i in bad_incomes:
        frame.loc[i, "income"] = "unknown"
    frame.to_csv(path, index=False)
    return path


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("score.py: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


def test_scores_a_file_prints_the_summary_and_records_the_decisions(model, env, tmp_path):
    source = applicants_csv(tmp_path / "applicants.csv", bad_incomes=(4, 9))
    result = run(env, source, "-o", tmp_path / "decisions.csv")
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(tmp_path / "decisions.csv")
    approved = int((out["decision"] == 1).sum())
    rejected = int((out["decision"] == 0).sum())
    assert approved + rejected == 48
    assert f"Scored 48 of 50 row(s) with {model.name} version {model.version}: {approved} approved, " \
           f"{rejected} rejected, 2 with errors." in result.stdout
    assert "row 5: income = 'unknown': is not a number" in result.stdout
    assert "row 10: income = 'unknown'" in result.stdout
    assert "first row under the header" in result.stdout
    log = DecisionLog(env["LOANDESK_DB_URL"])
    assert log.count() == 48 and set(log.read()["source"]) == {"command"}
    assert set(log.read()["officer"]) == {access.shell().label}  # who ran it, as the OS names them
    assert "48 decision(s) recorded" in result.stdout


def test_no_log_records_nothing(env, tmp_path):
    result = run(env, applicants_csv(tmp_path / "a.csv"), "-o", tmp_path / "d.csv", "--no-log")
    assert result.returncode == 0, result.stderr
    assert "not recorded (--no-log)" in result.stdout
    assert DecisionLog(env["LOANDESK_DB_URL"]).count() == 0
    assert len(pd.read_csv(tmp_path / "d.csv")) == 50


def test_the_default_output_sits_beside_the_input(env, tmp_path):
    result = run(env, applicants_csv(tmp_path / "march.csv"), "--no-log")
    assert result.returncode == 0, result.stderr
    assert len(pd.read_csv(tmp_path / "march-decisions.csv")) == 50


def test_parquet_output(env, tmp_path):
    result = run(env, applicants_csv(tmp_path / "a.csv"), "-o", tmp_path / "d.parquet", "--no-log")
    assert result.returncode == 0, result.stderr
    out = pd.read_parquet(tmp_path / "d.parquet")
    assert len(out) == 50 and out["probability"].between(0, 1).all()


def test_a_missing_file_fails_in_one_line(env, tmp_path):
    assert_one_line_error(run(env, tmp_path / "nope.csv", "-o", tmp_path / "d.csv"), "nope.csv", "no such file")
    assert not (tmp_path / "d.csv").exists()


def test_missing_columns_are_named(env, tmp_path):
    generate_applicants(10, seed=1)[["age", "income", "loan_amount"]].to_csv(tmp_path / "a.csv", index=False)
    assert_one_line_error(run(env, tmp_path / "a.csv", "-o", tmp_path / "d.csv"),
                          "credit_score", "employment_years", "missing")
    assert not (tmp_path / "d.csv").exists()


def test_a_file_that_is_not_a_csv_fails_in_one_line(env, tmp_path):
    (tmp_path / "photo.csv").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    assert_one_line_error(run(env, tmp_path / "photo.csv", "-o", tmp_path / "d.csv"), "not a CSV")


def test_an_empty_file_fails_in_one_line(env, tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    assert_one_line_error(run(env, tmp_path / "empty.csv", "-o", tmp_path / "d.csv"), "empty")


def test_every_row_invalid_writes_the_errors_and_exits_non_zero(env, tmp_path):
    source = applicants_csv(tmp_path / "a.csv", n=3, bad_incomes=(0, 1, 2))
    result = run(env, source, "-o", tmp_path / "d.csv")
    assert result.returncode == 1
    assert "no row could be scored" in result.stderr and "Traceback" not in result.stderr
    assert pd.read_csv(tmp_path / "d.csv")["error"].notna().all()


def test_a_tampered_model_is_refused_in_one_line(registry, env, tmp_path):
    version = list_versions(registry)[0].version
    pipeline = registry / "versions" / version / "pipeline.joblib"
    pipeline.write_bytes(pipeline.read_bytes()[:-10] + b"0123456789")
    result = run({**env, "LOANDESK_MODEL_DIR": str(registry)}, applicants_csv(tmp_path / "a.csv"),
                 "-o", tmp_path / "d.csv")
    assert_one_line_error(result, "does not match its model card")
    assert not (tmp_path / "d.csv").exists()


def test_model_and_version_options_choose_the_model(registry, env, tmp_path, model):
    source = applicants_csv(tmp_path / "a.csv")
    by_folder = run(env, source, "-o", tmp_path / "d.csv", "--no-log", "--model", model.path)
    assert by_folder.returncode == 0 and f"version {model.version}" in by_folder.stdout
    by_version = run(env, source, "-o", tmp_path / "d.csv", "--no-log", "--model", registry,
                     "--version", model.version)
    assert by_version.returncode == 0 and f"version {model.version}" in by_version.stdout
    assert_one_line_error(run(env, source, "--model", registry, "--version", "19990101-000000-deadbeef"),
                          "19990101-000000-deadbeef")


def test_a_wrong_command_line_exits_2_with_usage(env):
    result = run(env)
    assert result.returncode == 2 and "usage: score.py" in result.stderr


def test_a_log_that_cannot_take_the_run_exits_3_naming_the_unsent_file_and_the_output_is_complete(env, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    result = run({**env, "LOANDESK_DB_URL": f"sqlite:///{blocker / 'log.db'}"},
                 applicants_csv(tmp_path / "a.csv"), "-o", tmp_path / "d.csv")
    assert result.returncode == 3, result.stderr
    unsent = sorted((tmp_path / "unsent").glob("batch-*.jsonl"))
    assert len(unsent) == 1 and str(unsent[0]) in result.stderr and "--replay" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(pd.read_csv(tmp_path / "d.csv")) == 50


def test_a_run_killed_midway_leaves_no_decision_counted_and_no_output(env, tmp_path):
    """kill -9 while decisions are being spooled: nothing is on record, the spool can never be replayed."""
    frame = generate_applicants(200_000, seed=5)[FEATURES]
    frame.to_csv(tmp_path / "big.csv", index=False)
    process = subprocess.Popen([sys.executable, str(ROOT / "score.py"), str(tmp_path / "big.csv"), "-o",
                                str(tmp_path / "d.csv"), "-q"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            spools = list((tmp_path / "unsent").glob(".batch-*.spool"))
            if spools and spools[0].stat().st_size > 1 << 20:  # well into the run: thousands of decisions spooled
                break
            time.sleep(0.01)
        assert process.poll() is None, "the run finished before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    log = DecisionLog(env["LOANDESK_DB_URL"])
    assert log.count() == 0
    assert not (tmp_path / "d.csv").exists()
    [spool] = list((tmp_path / "unsent").glob(".batch-*.spool"))
    with pytest.raises(UnsealedFileError):
        replay_file(spool, log)
    assert log.count() == 0


@pytest.mark.parametrize("newline", ["\r", "\r\n"])
def test_old_mac_and_windows_line_endings_are_scored(env, tmp_path, newline):
    path = tmp_path / "a.csv"
    frame = generate_applicants(30, seed=21)[FEATURES]
    path.write_bytes(frame.to_csv(index=False, lineterminator=newline).encode())
    result = run(env, path, "-o", tmp_path / "d.csv")
    assert result.returncode == 0, result.stderr
    assert "Scored 30 of 30 row(s)" in result.stdout and "Traceback" not in result.stderr
    assert DecisionLog(env["LOANDESK_DB_URL"]).count() == 30


def test_an_unterminated_quote_exits_1_naming_its_row_and_records_nothing(env, tmp_path):
    path = tmp_path / "a.csv"
    rows = generate_applicants(1001, seed=21)[FEATURES].to_csv(index=False).splitlines()
    rows[2] = rows[2].replace(",", ',"', 1)  # the second applicant's income opens a quote never closed
    path.write_text("\n".join(rows) + "\n")
    result = run(env, path, "-o", tmp_path / "d.csv")
    assert result.returncode == 1
    assert_one_line_error(result, "row 2 (line 3)", "never closed")
    assert not (tmp_path / "d.csv").exists() and DecisionLog(env["LOANDESK_DB_URL"]).count() == 0


def test_scoring_the_same_file_twice_warns_the_second_time(env, tmp_path):
    path = applicants_csv(tmp_path / "a.csv")
    assert "already on record" not in run(env, path, "-o", tmp_path / "d.csv").stderr
    again = run(env, path, "-o", tmp_path / "d2.csv")
    assert again.returncode == 0
    assert "Warning: This file (SHA-256" in again.stderr and "already on record" in again.stderr
