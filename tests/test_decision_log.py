"""The decision log, against SQLite and (when LOANDESK_TEST_PG_URL is set) PostgreSQL."""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import threading
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text, update

from model.records.log import (
    SCHEMA_VERSION,
    DecisionLog,
    DecisionLogError,
    LogEntry,
    default_url,
    entries_for_rows,
    entry_for,
    inputs_frame,
    meta,
)
from ui.tables import export_frame

from .conftest import EXAMPLE

PG_URL = os.environ.get("LOANDESK_TEST_PG_URL")
WRITERS, PER_WRITER = 20, 50


@pytest.fixture
def open_log(log_url):
    """DecisionLog(url) for the test's database; every log made is disposed of afterwards."""
    made: list[DecisionLog] = []

    def make(url: str = log_url) -> DecisionLog:
        made.append(DecisionLog(url))
        return made[-1]

    yield make
    for lg in made:
        lg.dispose()


def _entry(i: int = 0, **changes) -> LogEntry:
    values = dict(
        model_name="loan_approval_model", model_version="v1", model_sha256="a" * 64, source="form",
        inputs={"age": 30 + i, "income": 50_000.0 + i}, probability=0.5 + i / 1000, threshold=0.5,
        decision=1, reasons="", out_of_range="",
    )
    values.update(changes)
    return LogEntry(**values)


# --- writing and reading -------------------------------------------------------------------------
def test_a_decision_goes_on_record_with_everything_a_lender_must_show(open_log, model):
    decision = model.decide({**EXAMPLE, "income": 900_000})
    log = open_log()
    result = log.record(entry_for(model, decision, source="form", officer="  Ada Lovelace "))
    assert result.ok and result.written == 1
    row = log.read().iloc[0]
    assert row["model_name"] == model.name and row["model_version"] == model.version
    assert row["model_sha256"] == model.sha256
    assert row["source"] == "form" and row["officer"] == "Ada Lovelace" and not row["simulated"]
    assert row["inputs"] == pytest.approx(decision.applicant)
    assert row["probability"] == pytest.approx(decision.probability)
    assert row["threshold"] == model.threshold and row["decision"] == decision.decision
    assert row["reasons"] == "; ".join(r.text for r in decision.reasons)
    assert "income" in row["out_of_range"].split(", ")
    assert row["decided_at"].tzinfo is not None
    assert abs(row["decided_at"] - pd.Timestamp.now(tz="UTC")) < pd.Timedelta(minutes=5)


def test_numpy_values_and_gaps_are_stored_as_plain_values(open_log):
    log = open_log()
    entry = _entry(inputs={"age": np.int64(41), "income": np.float64("nan"), "color": None},
                   probability=np.float64(0.73), threshold=np.float32(0.5), decision=np.int64(1),
                   simulated=np.bool_(True), officer="   ")
    assert log.record(entry).ok
    row = log.read().iloc[0]
    assert row["inputs"] == {"age": 41, "income": None, "color": None}
    assert row["probability"] == pytest.approx(0.73) and row["decision"] == 1
    assert row["simulated"] and row["officer"] is None


def test_times_are_utc_whatever_zone_they_were_given_in(open_log):
    log = open_log()
    paris = timezone(timedelta(hours=1))
    log.record(_entry(decided_at=datetime(2026, 3, 1, 0, 30, tzinfo=paris)))  # 23:30 UTC the day before
    stored = log.read()["decided_at"].iloc[0]
    assert stored == pd.Timestamp("2026-02-28 23:30", tz="UTC")
    assert len(log.read(start=date(2026, 2, 28), end=date(2026, 3, 1))) == 1
    assert log.read(start=date(2026, 3, 1)).empty


def test_read_filters_by_time_version_and_simulated(open_log):
    log = open_log()
    base = datetime(2026, 5, 1, 12, tzinfo=UTC)
    entries = [
        _entry(i, decided_at=base + timedelta(days=i % 5), model_version=f"v{i % 2}", simulated=i % 3 == 0)
        for i in range(30)
    ]
    assert log.record(entries).written == 30
    frame = log.read()
    assert len(frame) == 30
    assert frame["decided_at"].is_monotonic_decreasing, "newest first"
    start, end = base + timedelta(days=1), base + timedelta(days=3)
    expect = [e for e in entries if start <= e.decided_at < end]
    assert len(log.read(start=start, end=end)) == len(expect)
    assert len(log.read(start=start.replace(tzinfo=None), end=end.replace(tzinfo=None))) == len(expect)
    assert set(log.read(versions=["v1"])["model_version"]) == {"v1"}
    assert len(log.read(versions=["v1"])) == sum(e.model_version == "v1" for e in entries)
    assert log.read(versions=[]).empty
    assert len(log.read(simulated=False)) == sum(not e.simulated for e in entries)
    assert log.read(simulated=True)["simulated"].all()
    assert len(log.read(limit=7)) == 7
    summary = log.summary().set_index("model_version")
    assert summary.loc["v0", "decisions"] == sum(e.model_version == "v0" for e in entries)
    assert summary.loc["v1", "last"] == max(e.decided_at for e in entries if e.model_version == "v1")


def test_the_schema_is_created_once_and_carries_its_version(open_log):
    first, second = open_log(), open_log()
    assert first.count() == 0
    assert first.schema_version() == SCHEMA_VERSION
    assert second.record(_entry()).ok
    assert second.schema_version() == SCHEMA_VERSION and first.count() == 1
    with first.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM loandesk_meta")).scalar() == 1


def test_a_log_from_a_newer_loandesk_is_refused_with_a_warning_not_corrupted(open_log, caplog):
    old = open_log()
    old.record(_entry())
    with old.engine.begin() as conn:
        conn.execute(update(meta).where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION + 1)))
    newcomer = open_log()
    with caplog.at_level(logging.ERROR, logger="loandesk.decision_log"):
        result = newcomer.record(_entry(1))
    assert result.written == 0 and "upgrade LoanDesk" in result.warning
    with pytest.raises(DecisionLogError, match="upgrade LoanDesk"):
        newcomer.read()
    assert old.count() == 1


def test_a_batch_is_written_in_one_bulk_insert(open_log, model):
    from model.scoring.reasons import batch_reasons
    from model.training.data import generate_applicants

    applicants = generate_applicants(400, seed=7)[model.features]
    applicants.loc[3, "income"] = 2_000_000  # outside the training range
    validation = model.validate(applicants)
    probabilities = model.approval_probability(validation.clean)
    reasons = batch_reasons(model, validation.clean, probabilities)
    entries = entries_for_rows(model, validation.clean, probabilities, source="batch page", reasons=reasons,
                               out_of_range=validation.out_of_range, officer="Ada")
    log = open_log()
    assert log.record(entries).written == 400
    frame = log.read().sort_values("id").reset_index(drop=True)
    assert frame["decided_at"].nunique() == 1, "one batch, one time"
    assert frame["out_of_range"][3] == "income" and (frame["out_of_range"].drop(3) == "").all()
    np.testing.assert_allclose(frame["probability"], probabilities)
    assert (frame["decision"] == (probabilities >= model.threshold)).all()
    assert list(frame["reasons"]) == list(reasons)
    pd.testing.assert_frame_equal(inputs_frame(frame)[model.features], validation.clean.astype(float),
                                  check_dtype=False)


# --- concurrency ---------------------------------------------------------------------------------
def _write_many(url: str, writer: int) -> None:
    log = DecisionLog(url)
    try:
        for i in range(PER_WRITER):
            result = log.record(_entry(i, inputs={"writer": writer, "i": i}))
            assert result.ok, result.warning
    finally:
        log.dispose()


def test_concurrent_writers_in_threads_lose_nothing(open_log, log_url):
    errors: list[BaseException] = []

    def run(writer: int) -> None:
        try:
            _write_many(log_url, writer)
        except BaseException as exc:  # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    _assert_every_write_landed(open_log())


def test_concurrent_writers_in_processes_lose_nothing(open_log, log_url):
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_write_many, args=(log_url, w)) for w in range(WRITERS)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    assert [p.exitcode for p in processes] == [0] * WRITERS
    _assert_every_write_landed(open_log())


def _assert_every_write_landed(log: DecisionLog) -> None:
    frame = log.read()
    assert len(frame) == log.count() == WRITERS * PER_WRITER
    pairs = {(d["writer"], d["i"]) for d in frame["inputs"]}
    assert pairs == {(w, i) for w in range(WRITERS) for i in range(PER_WRITER)}


# --- failures ------------------------------------------------------------------------------------
def _unwritable_sqlite_url(tmp_path) -> str:
    """A database under a plain file where a folder should be: unwritable even for root."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("I am a file")
    return f"sqlite:///{blocker / 'decisions.db'}"


def test_an_unwritable_location_gives_the_officer_a_warning_and_logs_the_failure(tmp_path, caplog):
    log = DecisionLog(_unwritable_sqlite_url(tmp_path))
    with caplog.at_level(logging.ERROR, logger="loandesk.decision_log"):
        one = log.record(_entry())
        many = log.record([_entry(i) for i in range(3)])
    assert one.written == 0 and not one.ok
    assert one.warning.startswith("This decision could not be written to the decision log")
    assert "It stands" in one.warning and "administrator" in one.warning
    assert many.warning.startswith("These 3 decisions could not be written")
    failures = [r for r in caplog.records if r.name == "loandesk.decision_log" and r.levelno == logging.ERROR]
    assert len(failures) == 2
    assert "1 decision(s) not recorded" in failures[0].getMessage()
    assert "not-a-folder" in failures[0].getMessage()
    with pytest.raises(DecisionLogError, match="cannot be read"):
        log.read()


def test_an_unreachable_server_gives_a_warning_too(caplog):
    log = DecisionLog("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    with caplog.at_level(logging.ERROR, logger="loandesk.decision_log"):
        result = log.record(_entry())
    assert result.written == 0 and "could not be written" in result.warning
    assert any("secret" not in r.getMessage() and "***" in r.getMessage() for r in caplog.records), \
        "the failure is logged, without the password"


def test_decide_page_shows_the_decision_and_the_warning_when_the_log_cannot_be_written(
        app, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("LOANDESK_DB_URL", _unwritable_sqlite_url(tmp_path))
    at = app.run()
    with caplog.at_level(logging.ERROR, logger="loandesk.decision_log"):
        at.button(key=next(b.key for b in at.button if b.label == "Decide")).click().run()
    assert not at.exception, at.exception
    shown = " ".join(m.value for m in at.markdown)
    assert "Approved" in shown or "Rejected" in shown
    assert "Approval probability" in shown
    assert any("could not be written to the decision log" in w.value for w in at.warning)
    assert any(r.name == "loandesk.decision_log" for r in caplog.records)


# --- configuration and export --------------------------------------------------------------------
def test_default_url_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("LOANDESK_DB_URL", raising=False)
    assert default_url().startswith("sqlite:///") and default_url().endswith("data/decisions.db")
    monkeypatch.setenv("LOANDESK_DB_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert DecisionLog().url == f"sqlite:///{tmp_path / 'x.db'}"


def test_first_use_creates_the_sqlite_folder_in_wal_mode(tmp_path):
    path = tmp_path / "new" / "deeper" / "decisions.db"
    log = DecisionLog(f"sqlite:///{path}")
    assert log.record(_entry()).ok and path.is_file()
    with log.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar().lower() == "wal"
    log.dispose()


def test_export_has_one_column_per_input_and_the_decision_in_words(open_log, tmp_path):
    log = open_log()
    log.record([_entry(0, decision=1, simulated=True), _entry(1, decision=0, reasons="Income is low; x")])
    frame = log.read()
    path = tmp_path / "log.csv"
    export_frame(frame).to_csv(path, index=False)
    back = pd.read_csv(path).sort_values("id").reset_index(drop=True)
    assert "inputs" not in back.columns
    assert list(back["age"]) == [30, 31] and list(back["income"]) == [50_000, 50_001]
    assert list(back["decision"]) == ["Approved", "Rejected"]
    assert list(back["simulated"]) == [True, False]
    assert back["reasons"][1] == "Income is low; x"
    assert all(math.isclose(a, b) for a, b in zip(back["probability"], [0.5, 0.501], strict=True))
    assert back["decided_at"].str.endswith("Z").all()
