"""A Dask run and the decision log, as a single-machine run: a warning when its files are already on
record, and a sealed unsent file (exit 3) when the log cannot take a run whose output is complete."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

import model.batch.dask_engine as engine
from model.batch.dask_engine import MANIFEST, read_dataset, score_dataset
from model.batch.files import score_file
from model.core.errors import DecisionLogError
from model.records.batches import earlier_batches, replay_file
from model.records.log import DecisionLog
from model.records.tables import batches, staged_decisions

from .conftest import ROOT
from .test_dask_engine import client, messy_applicants, write_csv  # noqa: F401 - client is a fixture


def test_rescoring_a_file_or_some_files_already_on_record_warns(model, client, tmp_path):  # noqa: F811
    log = DecisionLog(f"sqlite:///{tmp_path / 'log.db'}")
    frame = messy_applicants(2_000)
    (tmp_path / "in").mkdir()
    a = write_csv(tmp_path / "in" / "a.csv", frame.iloc[:1_000])
    b = write_csv(tmp_path / "in" / "b.csv", frame.iloc[1_000:])
    first = score_dataset(model, a, tmp_path / "one", client=client, log=log)
    assert first.rescoring is None
    again = score_dataset(model, a, tmp_path / "two", client=client, log=log)
    assert again.rescoring and "already on record once" in again.rescoring and first.batch_id in again.rescoring
    single = score_file(model, b, tmp_path / "b.csv", log=log)  # b on record from the single-process path
    several = score_dataset(model, tmp_path / "in", tmp_path / "three", client=client, log=log)
    assert several.rescoring and "2 of the 2 file(s) are already on record" in several.rescoring
    assert single.batch_id in several.rescoring and "a.csv" in several.rescoring
    whole = score_dataset(model, f"{tmp_path}/in/*.csv", tmp_path / "four", client=client, log=log)
    assert whole.rescoring and "This input" in whole.rescoring and several.batch_id in whole.rescoring
    assert log.count() == first.scored * 2 + single.scored + several.scored * 2  # warned, and recorded again


def fail_commit(*_args, **_kwargs):
    raise DecisionLogError("the decision log could not take the batch's decisions (database is locked)")


def test_a_log_that_refuses_the_commit_leaves_a_sealed_unsent_file_replayed_once(model, client, tmp_path,  # noqa: F811
                                                                                monkeypatch):
    log = DecisionLog(f"sqlite:///{tmp_path / 'log.db'}")
    source = write_csv(tmp_path / "book.csv", messy_applicants(20_000))
    commit, replay = engine.staging.commit, engine.replay_file
    monkeypatch.setattr(engine.staging, "commit", fail_commit)

    def no_replay(*_args, **_kwargs):
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(engine, "replay_file", no_replay)
    summary = score_dataset(model, source, tmp_path / "out", client=client, log=log, partition_bytes=1 << 17)
    assert summary.partitions >= 3 and summary.unsent is not None and summary.unsent.exists()
    assert summary.unsent.parent == tmp_path / "unsent" and summary.unsent.stat().st_mode & 0o777 == 0o600
    assert "serve.py --replay" in (summary.log_warning or "")
    assert read_dataset(tmp_path / "out").num_rows == 20_000  # the output is complete, as on a single machine
    assert not (tmp_path / "out" / ".log").exists() and (tmp_path / "out" / MANIFEST).exists()
    assert log.count() == 0
    with log.engine.connect() as conn:  # the staged rows were removed: nothing of the run counts twice
        assert conn.execute(select(func.count()).select_from(staged_decisions)).scalar() == 0
    monkeypatch.setattr(engine.staging, "commit", commit)  # (not undo(): that would drop the test's key file)
    monkeypatch.setattr(engine, "replay_file", replay)
    replayed = replay_file(summary.unsent, log)
    assert replayed.written == summary.scored == log.count() and replayed.batch_id == summary.batch_id
    [batch] = earlier_batches(log, summary.input_sha256)
    assert batch.batch_id == summary.batch_id and batch.rows == 20_000 and batch.decisions == summary.scored
    assert set(log.read()["batch_sha256"]) == {summary.input_sha256}
    out = read_dataset(tmp_path / "out").to_pandas()
    assert sorted(log.read()["decision_id"]) == sorted(out["decision_id"].dropna())  # the ids the output shows
    assert replay_file(summary.unsent, log).written == 0 and log.count() == summary.scored  # exactly once


def test_a_commit_refused_once_goes_on_record_from_the_kept_decisions(model, client, tmp_path,  # noqa: F811
                                                                      monkeypatch):
    """As a single-machine run's commit replays its spool: the run is on record, once, no unsent file."""
    log = DecisionLog(f"sqlite:///{tmp_path / 'log.db'}")
    source = write_csv(tmp_path / "book.csv", messy_applicants(5_000))
    monkeypatch.setattr(engine.staging, "commit", fail_commit)
    summary = score_dataset(model, source, tmp_path / "out", client=client, log=log, partition_bytes=1 << 16)
    assert summary.unsent is None and summary.logged == summary.scored == log.count()
    assert not list((tmp_path / "unsent").glob("batch-*.jsonl"))
    with log.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(batches)).scalar() == 1


@pytest.fixture
def env(trained, tmp_path) -> dict[str, str]:
    return {**os.environ, "LOANDESK_MODEL_DIR": str(trained), "LOANDESK_DB_URL": f"sqlite:///{tmp_path / 'log.db'}"}


def test_score_py_on_dask_exits_3_naming_the_unsent_file_when_the_log_cannot_be_reached(env, tmp_path):
    """The single-process test's case (test_score_cli): the log's folder is a file."""
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    source = write_csv(tmp_path / "book.csv", messy_applicants(3_000))
    broken = {**env, "LOANDESK_DB_URL": f"sqlite:///{blocker / 'log.db'}"}
    result = subprocess.run([sys.executable, str(ROOT / "score.py"), str(source), "--engine", "dask", "--workers",
                             "2"], cwd=ROOT, env=broken, capture_output=True, text=True, timeout=300)
    assert result.returncode == 3, result.stderr
    [unsent] = sorted((tmp_path / "unsent").glob("batch-*.jsonl"))
    assert str(unsent) in result.stderr and "--replay" in result.stderr and "Traceback" not in result.stderr
    assert read_dataset(tmp_path / "book-decisions").num_rows == 3_000
    log = DecisionLog(env["LOANDESK_DB_URL"])  # the log is back: the replay puts the run on record
    written = replay_file(unsent, log).written
    assert written == log.count() == read_dataset(tmp_path / "book-decisions").column("decision").null_count * -1 \
        + 3_000
    again = subprocess.run([sys.executable, str(ROOT / "score.py"), str(source), "--engine", "dask", "--workers",
                            "2", "-o", str(tmp_path / "again")], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0 and "Warning: This input (SHA-256" in again.stderr
    assert "already on record once" in again.stderr
