"""The background log writer: batches off the request path, nothing dropped when the database fails."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import create_engine, text

from model.records import writer as lw
from model.records.log import SCHEMA_VERSION, DecisionLog, LogEntry, LogResult
from model.records.writer import LogWriter, replay


def _entry(i: int) -> LogEntry:
    return LogEntry(model_name="m", model_version="v1", model_sha256="0" * 64, source="api:test",
                    inputs={"income": 1000.0 * i}, probability=0.5, threshold=0.5, decision=1,
                    decision_id=f"{i:032x}")


@pytest.fixture
def db(tmp_path) -> DecisionLog:
    log = DecisionLog(f"sqlite:///{tmp_path / 'decisions.db'}")
    log.ensure_schema()  # made up front: these tests time the writer, not the first migration
    return log


def test_entries_from_many_threads_all_arrive_in_few_transactions(db, tmp_path, monkeypatch):
    commits = []
    real = db.record
    monkeypatch.setattr(db, "record", lambda entries: commits.append(len(entries)) or real(entries))
    writer = LogWriter(db, tmp_path / "unsent")

    def client(start: int) -> None:
        for i in range(start, start + 200):
            writer.submit([_entry(i)])

    threads = [threading.Thread(target=client, args=(k * 1000,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert writer.flush(30) and writer.unlogged == 0
    assert db.count() == 1600 and sum(commits) == 1600
    assert len(commits) < 1600 / 5  # batched, not a transaction per decision
    assert writer.close() is None and not (tmp_path / "unsent").exists()
    found = db.find(f"{1005:032x}")
    assert found is not None and found["inputs"] == {"income": 1005000.0} and found["source"] == "api:test"


def test_a_failing_database_holds_the_entries_and_retries(db, tmp_path, monkeypatch):
    monkeypatch.setattr(lw, "RETRY_SECONDS", (0.01,))
    real = db.record
    down = threading.Event()
    down.set()
    monkeypatch.setattr(db, "record", lambda entries: LogResult(0, "disk full") if down.is_set() else real(entries))
    writer = LogWriter(db, tmp_path / "unsent")
    writer.submit([_entry(i) for i in range(5)])
    assert not writer.flush(0.3)
    assert not writer.healthy and writer.problem == "disk full" and writer.unlogged == 5
    down.clear()
    assert writer.flush(10)
    assert writer.healthy and db.count() == 5
    assert writer.close() is None


def test_entries_still_unwritten_at_close_are_saved_and_replayed_once(db, tmp_path, monkeypatch):
    monkeypatch.setattr(lw, "RETRY_SECONDS", (0.01,))
    real = db.record
    monkeypatch.setattr(db, "record", lambda entries: LogResult(0, "database is locked"))
    writer = LogWriter(db, tmp_path / "unsent")
    writer.submit([_entry(i) for i in range(7)])
    writer.flush(0.2)
    path = writer.close()
    assert path is not None and path.parent == tmp_path / "unsent"
    assert len(path.read_text().splitlines()) == 7
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit([_entry(99)])
    monkeypatch.setattr(db, "record", real)
    assert replay(path, db) == 7 and db.count() == 7
    assert replay(path, db) == 0 and db.count() == 7  # replaying twice writes nothing twice
    assert db.find(f"{3:032x}")["inputs"] == {"income": 3000.0}


def test_replay_names_the_line_that_is_not_an_entry(db, tmp_path):
    bad = tmp_path / "unsent.jsonl"
    bad.write_text('{"model_name": "m"}\n')
    with pytest.raises(ValueError, match="line 1"):
        replay(bad, db)
    assert db.count() == 0


def test_a_version_1_log_is_migrated_with_its_rows_kept(tmp_path):
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, decided_at DATETIME NOT NULL,
            model_name VARCHAR(200) NOT NULL, model_version VARCHAR(100) NOT NULL,
            model_sha256 VARCHAR(64) NOT NULL, source VARCHAR(40) NOT NULL, officer VARCHAR(200),
            simulated BOOLEAN NOT NULL, inputs JSON NOT NULL, probability FLOAT NOT NULL,
            threshold FLOAT NOT NULL, decision INTEGER NOT NULL, reasons TEXT NOT NULL, out_of_range TEXT NOT NULL);
        CREATE TABLE loandesk_meta (key VARCHAR(50) PRIMARY KEY, value VARCHAR(200) NOT NULL);
        INSERT INTO loandesk_meta VALUES ('schema_version', '1');
        INSERT INTO decisions (decided_at, model_name, model_version, model_sha256, source, simulated, inputs,
            probability, threshold, decision, reasons, out_of_range)
        VALUES ('2026-01-02 03:04:05.000000', 'm', 'v0', 'x', 'form', 0, '{"income": 1}', 0.7, 0.5, 1, '', '');
    """)
    con.commit()
    con.close()
    db = DecisionLog(f"sqlite:///{path}")
    assert db.schema_version() == SCHEMA_VERSION >= 2
    assert db.record(_entry(1)).ok
    frame = db.read()
    assert len(frame) == 2 and set(frame["model_version"]) == {"v0", "v1"}
    assert db.find(f"{1:032x}")["model_version"] == "v1"
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn, pytest.raises(Exception, match="UNIQUE"):  # ids stay unique after migrating
        conn.execute(text(f"UPDATE decisions SET decision_id = '{1:032x}' WHERE model_version = 'v0'"))


def test_a_writer_far_behind_has_callers_wait_for_room_instead_of_growing_without_bound(db, tmp_path, monkeypatch):
    monkeypatch.setattr(lw, "MAX_PENDING", 50)
    monkeypatch.setattr(lw, "BATCH_ROWS", 20)
    real = db.record
    deepest = []

    def slow(entries):
        deepest.append(writer.unlogged)
        threading.Event().wait(0.005)
        return real(entries)

    monkeypatch.setattr(db, "record", slow)
    writer = LogWriter(db, tmp_path / "unsent")
    for start in range(0, 600, 10):
        writer.submit([_entry(i) for i in range(start, start + 10)])
        if writer.behind:
            writer.wait_for_room()
        assert writer.unlogged <= 50 + 10 + 20  # the queue's limit, one more submit, the batch being written
    assert writer.close() is None
    assert db.count() == 600 and max(deepest) <= 80


def test_close_waits_for_a_slow_but_working_database_to_take_the_whole_backlog(db, tmp_path, monkeypatch):
    monkeypatch.setattr(lw, "BATCH_ROWS", 10)
    real = db.record
    monkeypatch.setattr(db, "record", lambda entries: threading.Event().wait(0.03) or real(entries))
    writer = LogWriter(db, tmp_path / "unsent")
    writer.submit([_entry(i) for i in range(300)])  # 30 batches: about a second
    assert writer.close(timeout=0.2) is None  # no progress for 0.2 s would have been a stall
    assert db.count() == 300 and not (tmp_path / "unsent").exists()


def test_a_backlog_behind_a_failing_database_goes_to_a_file_not_into_memory(db, tmp_path, monkeypatch):
    monkeypatch.setattr(lw, "MAX_PENDING", 20)
    monkeypatch.setattr(lw, "RETRY_SECONDS", (0.01,))
    monkeypatch.setattr(db, "record", lambda entries: LogResult(0, "disk full"))
    writer = LogWriter(db, tmp_path / "unsent")
    writer.submit([_entry(0)])
    assert not writer.flush(0.2) and not writer.healthy
    writer.submit([_entry(i) for i in range(1, 40)])  # past MAX_PENDING while failing: returns at once
    writer.wait_for_room()  # returns at once for a failing writer
    assert _eventually(lambda: list((tmp_path / "unsent").glob("*.jsonl")))  # saved by the writer's thread
    assert writer.unlogged <= 1 and not writer.behind
    [spilled] = list((tmp_path / "unsent").glob("*.jsonl"))
    assert len(spilled.read_text().splitlines()) == 39
    last = writer.close()
    saved = sum(len(f.read_text().splitlines()) for f in (tmp_path / "unsent").glob("*.jsonl"))
    assert last is not None and saved == 40


def test_rows_the_database_refuses_are_set_aside_and_the_rest_written(db, tmp_path):
    """A repeated decision id (or a value too long for its column) fails the whole batch; the writer
    halves it until the refused row stands alone, saves that one, and writes everything else."""
    assert db.record(_entry(5)).ok  # entry 5 is on record already: writing it again is refused
    writer = LogWriter(db, tmp_path / "unsent")
    writer.submit([_entry(i) for i in range(10)])
    assert writer.close() is None
    assert db.count() == 10 and writer.healthy
    [aside] = list((tmp_path / "unsent").glob("*.jsonl"))
    assert len(aside.read_text().splitlines()) == 1 and f"{5:032x}" in aside.read_text()


def test_a_writer_that_breaks_reports_it_and_keeps_the_entries(db, tmp_path, monkeypatch):
    monkeypatch.setattr(lw, "RETRY_SECONDS", (0.01,))
    real = db.record
    broken = threading.Event()
    broken.set()

    def record(entries):
        if broken.is_set():
            raise KeyError("a bug")
        return real(entries)

    monkeypatch.setattr(db, "record", record)
    writer = LogWriter(db, tmp_path / "unsent")
    writer.submit([_entry(i) for i in range(3)])
    assert not writer.flush(0.2)
    assert not writer.healthy and "a bug" in writer.problem
    broken.clear()
    assert writer.flush(10) and db.count() == 3 and writer.healthy
    assert writer.close() is None


def test_when_not_even_a_file_can_be_written_the_entries_go_to_the_error_log(db, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(db, "record", lambda entries: LogResult(0, "disk full"))
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    writer = LogWriter(db, blocked / "unsent")
    writer.submit([_entry(i) for i in range(2)])
    writer.flush(0.1)
    with caplog.at_level("ERROR", logger="loandesk.log_writer"):
        assert writer.close() is None
    assert caplog.text.count("unlogged decision:") == 2 and f"{1:032x}" in caplog.text


def _eventually(check, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return result
