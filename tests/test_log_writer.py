"""Group commit: answered only once durable (the log, or the journal while it is down), few transactions."""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import stat
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, select, text

from model.records import access
from model.records import writer as lw
from model.records.journal import Journal, read_entries
from model.records.log import SCHEMA_VERSION, DecisionLog, LogEntry, LogResult
from model.records.sealed import SealedWriter, UnsealedFileError
from model.records.tables import replays
from model.records.writer import LogWriter, NotDurable, entry_json, replay


def _entry(i: int) -> LogEntry:
    return LogEntry(model_name="m", model_version="v1", model_sha256="0" * 64, source="api:test",
                    inputs={"income": 1000.0 * i}, probability=0.5, threshold=0.5, decision=1,
                    decision_id=f"{i:032x}")


@pytest.fixture
def db(tmp_path) -> DecisionLog:
    log = DecisionLog(f"sqlite:///{tmp_path / 'decisions.db'}")
    log.ensure_schema()  # made up front: these tests time the writer, not the first migration
    return log


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setattr(lw, "RETRY_SECONDS", 0.02)


def test_concurrent_callers_share_transactions_and_each_is_told_only_after_its_commit(db, tmp_path, monkeypatch):
    commits = []
    real = db.record
    monkeypatch.setattr(db, "record", lambda entries: commits.append(len(entries)) or real(entries))
    writer = LogWriter(db, tmp_path / "unsent")

    def client(start: int) -> None:
        for i in range(start, start + 100):
            assert writer.write([_entry(i)]) == "log"
            assert db.find(f"{i:032x}") is not None  # on record by the time it was answered

    threads = [threading.Thread(target=client, args=(k * 1000,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db.count() == 800 and sum(commits) == 800 and writer.written == 800
    assert len(commits) < 800  # eight callers at a time: grouped, not a transaction each
    writer.close()
    assert not (tmp_path / "unsent").exists()  # the journal was never needed


def test_a_failing_log_sends_decisions_to_the_journal_and_they_are_written_when_it_is_back(db, tmp_path, fast,
                                                                                         monkeypatch):
    real_record, real_ping = db.record, db.ping
    monkeypatch.setattr(db, "record", lambda entries: LogResult(0, "disk full"))
    monkeypatch.setattr(db, "ping", lambda: "disk full")
    writer = LogWriter(db, tmp_path / "unsent")
    assert writer.write([_entry(i) for i in range(5)]) == "journal"
    assert writer.write([_entry(5)]) == "journal"
    assert not writer.healthy and writer.durable and writer.problem == "disk full" and writer.journaled == 6
    [segment] = Journal(tmp_path / "unsent").segments()
    assert [e.decision_id for e in read_entries(segment)] == [f"{i:032x}" for i in range(6)]
    monkeypatch.setattr(db, "record", real_record)
    monkeypatch.setattr(db, "ping", real_ping)
    assert _eventually(lambda: not Journal(tmp_path / "unsent").segments())
    assert db.count() == 6 and writer.healthy
    assert writer.write([_entry(6)]) == "log"
    writer.close()
    assert db.count() == 7


def test_when_neither_can_be_written_the_callers_are_told_not_durable(db, tmp_path, fast, monkeypatch):
    monkeypatch.setattr(db, "record", lambda entries: LogResult(0, "disk full"))
    monkeypatch.setattr(db, "ping", lambda: "disk full")
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    writer = LogWriter(db, blocked / "unsent")
    with pytest.raises(NotDurable) as refused:
        writer.write([_entry(1)])
    assert refused.value.retry and not writer.durable and writer.journal_problem
    writer.close()


def test_a_caller_whose_rows_the_log_refuses_is_told_and_the_others_are_committed(db, tmp_path):
    """A repeated decision id (or a value too long for its column) fails the whole transaction; the
    writer halves it until the refusing caller stands alone, fails that one, commits the rest."""
    assert db.record(_entry(5)).ok  # entry 5 is on record already: writing it again is refused
    writer = LogWriter(db, tmp_path / "unsent")
    gate = threading.Event()
    real = db.record
    db.record = lambda entries: gate.wait(10) and real(entries)  # let all ten gather into one batch
    futures = [writer.submit([_entry(i)]) for i in range(10)]
    gate.set()
    with pytest.raises(NotDurable) as refused:
        futures[5].result(10)
    assert not refused.value.retry
    assert [f.result(10) for i, f in enumerate(futures) if i != 5] == ["log"] * 9
    writer.close()
    assert db.count() == 10 and writer.healthy


def test_a_writer_that_breaks_still_hands_out_nothing_that_is_not_on_record(db, tmp_path, fast, monkeypatch):
    def broken(entries):
        raise KeyError("a bug")

    monkeypatch.setattr(db, "record", broken)
    monkeypatch.setattr(db, "ping", lambda: "a bug")
    writer = LogWriter(db, tmp_path / "unsent")
    assert writer.write([_entry(i) for i in range(3)]) == "journal"
    assert not writer.healthy and "a bug" in writer.problem
    writer.close()
    assert sum(len(read_entries(p)) for p in Journal(tmp_path / "unsent").segments()) == 3


def test_a_closed_writer_takes_nothing(db, tmp_path):
    writer = LogWriter(db, tmp_path / "unsent")
    writer.close()
    with pytest.raises(NotDurable, match="closed"):
        writer.submit([_entry(99)])


def test_an_unsent_file_is_replayed_once(db, tmp_path):
    path = lw.save_unsent([_entry(i) for i in range(7)], tmp_path / "unsent")
    assert path.stat().st_mode & 0o777 == 0o600
    assert replay(path, db) == 7 and db.count() == 7
    assert replay(path, db) == 0 and db.count() == 7  # replaying twice writes nothing twice
    assert db.find(f"{3:032x}")["inputs"] == {"income": 3000.0}


def test_replay_names_the_line_that_is_not_an_entry(db, tmp_path):
    with SealedWriter(tmp_path / "unsent.jsonl") as out:
        out.write_raw(entry_json(_entry(1)))
        out.write({"model_name": "m"})
    with pytest.raises(ValueError, match="line 2"):
        replay(tmp_path / "unsent.jsonl", db)
    assert db.count() == 0


# --- the journal ---------------------------------------------------------------------------------
def test_the_journal_is_the_owners_only_and_a_torn_last_line_is_left_out(tmp_path):
    journal = Journal(tmp_path / "journal")
    journal.append([_entry(1), _entry(2)])
    [segment] = journal.segments()
    assert (tmp_path / "journal").stat().st_mode & 0o777 == 0o700 and segment.stat().st_mode & 0o777 == 0o600
    journal.seal()
    with segment.open("a") as out:
        out.write('{"model_name": "m", "decision_id": "0000')  # a crash mid-write: never answered
    assert [e.decision_id for e in read_entries(segment)] == [f"{1:032x}", f"{2:032x}"]


def test_a_replay_skips_a_segment_another_process_is_writing_and_what_is_on_record(db, tmp_path):
    folder = tmp_path / "journal"
    other = Journal(folder)
    other.append([_entry(1)])  # still open and locked, as by a live server
    mine = Journal(folder)
    mine.append([_entry(2), _entry(3)])
    mine.seal()
    assert db.record(_entry(2)).ok  # committed before the writer was told it failed: on record already
    done = Journal(folder).replay(db)
    assert (done.segments, done.written, done.busy) == (1, 1, 1)
    assert db.count() == 2 and len(Journal(folder).segments()) == 1
    other.seal()
    assert Journal(folder).replay(db).written == 1 and db.count() == 3 and not Journal(folder).segments()


def test_a_segment_locked_by_a_replay_elsewhere_is_left_alone(db, tmp_path):
    folder = tmp_path / "journal"
    journal = Journal(folder)
    journal.append([_entry(1)])
    journal.seal()
    [segment] = journal.segments()
    fd = os.open(segment, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert journal.replay(db).busy == 1 and db.count() == 0
    finally:
        os.close(fd)
    assert journal.replay(db).segments == 1 and db.count() == 1
def test_a_file_not_sealed_by_this_host_is_refused_whole_and_a_backdated_forgery_never_goes_in(db, tmp_path):
    forged = _entry(1)
    forged.decided_at = datetime(2020, 1, 1, tzinfo=UTC)
    path = tmp_path / "forged.jsonl"
    path.write_bytes(entry_json(forged) + b"\n")
    with pytest.raises(UnsealedFileError, match="not sealed"):
        replay(path, db)
    with SealedWriter(tmp_path / "sealed.jsonl") as out:
        out.write_raw(entry_json(_entry(2)))
    sealed = (tmp_path / "sealed.jsonl").read_bytes()
    (tmp_path / "altered.jsonl").write_bytes(sealed.replace(b"2000.0", b"9000.0"))
    with pytest.raises(UnsealedFileError, match="line 2: its seal does not match"):
        replay(tmp_path / "altered.jsonl", db)
    assert db.count() == 0
    (tmp_path / "appended.jsonl").write_bytes(sealed + entry_json(forged) + b"\n")  # after the seal: never replayed
    assert replay(tmp_path / "appended.jsonl", db) == 1
    assert db.count() == 1 and db.find(f"{1:032x}") is None
    with SealedWriter(tmp_path / "other-key.jsonl", key=b"another host") as out:
        out.write_raw(entry_json(_entry(3)))
    with pytest.raises(UnsealedFileError):
        replay(tmp_path / "other-key.jsonl", db)
    assert db.count() == 1


def test_every_replay_is_recorded_with_the_file_it_read(db, tmp_path):
    with SealedWriter(tmp_path / "unsent.jsonl") as out:
        for i in range(3):
            out.write_raw(entry_json(_entry(i)))
    assert replay(tmp_path / "unsent.jsonl", db) == 3
    assert replay(tmp_path / "unsent.jsonl", db) == 0
    with db.reading() as conn:
        rows = conn.execute(select(replays).order_by(replays.c.id)).mappings().all()
    digest = hashlib.sha256((tmp_path / "unsent.jsonl").read_bytes()).hexdigest()
    assert [(r["file_name"], r["file_sha256"], r["written"], r["skipped"]) for r in rows] == [
        ("unsent.jsonl", digest, 3, 0), ("unsent.jsonl", digest, 0, 3)]
    assert {r["replayed_by"] for r in rows} == {access.shell().label}  # the OS user of the replaying process


def test_unsent_files_journals_and_the_replay_key_are_readable_by_their_owner_only(db, tmp_path, fast,
                                                                                   monkeypatch):
    path = lw.save_unsent([_entry(1)], tmp_path / "unsent")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "replay.key").stat().st_mode) == 0o600
    monkeypatch.setattr(db, "record", lambda entries: LogResult(0, "database is locked"))
    monkeypatch.setattr(db, "ping", lambda: "database is locked")
    writer = LogWriter(db, tmp_path / "journal")
    assert writer.write([_entry(2)]) == "journal"
    writer.close()
    [segment] = Journal(tmp_path / "journal").segments()
    assert stat.S_IMODE(segment.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "journal").stat().st_mode) == 0o700


def test_a_journal_segment_is_sealed_after_every_append_and_a_forged_one_is_set_aside(db, tmp_path):
    folder = tmp_path / "journal"
    journal = Journal(folder)
    journal.append([_entry(1)])
    journal.append([_entry(2), _entry(3)])
    journal.seal()
    [segment] = journal.segments()
    assert segment.read_bytes().count(b"loandesk_seal") == 2  # one seal per append, before its fsync
    forged = _entry(4)
    forged.decided_at = datetime(2020, 1, 1, tzinfo=UTC)
    (folder / "journal-20200101T000000000000Z-1-forged.jsonl").write_bytes(entry_json(forged) + b"\n")
    done = Journal(folder).replay(db)
    assert done.written == 3 and db.count() == 3 and db.find(f"{4:032x}") is None
    assert [p.name for p in folder.glob("unsealed-*")] == ["unsealed-20200101T000000000000Z-1-forged.jsonl"]
    with db.reading() as conn:  # the replay itself is on record
        rows = conn.execute(select(replays)).mappings().all()
    assert [(r["file_name"], r["written"]) for r in rows] == [(segment.name, 3)]


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
    assert db.schema_version() == SCHEMA_VERSION >= 7  # batches (0006) and replays (0007) included
    assert db.record(_entry(1)).ok
    frame = db.read()
    assert len(frame) == 2 and set(frame["model_version"]) == {"v0", "v1"}
    assert db.find(f"{1:032x}")["model_version"] == "v1"
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn, pytest.raises(Exception, match="UNIQUE"):  # ids stay unique after migrating
        conn.execute(text(f"UPDATE decisions SET decision_id = '{1:032x}' WHERE model_version = 'v0'"))


def _eventually(check, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return result


@pytest.mark.parametrize(("setting", "level"), [(None, 2), ("normal", 1), ("FULL", 2)])
def test_the_sqlite_sync_setting_reaches_the_database(tmp_path, monkeypatch, setting, level):
    """FULL (2, the default) syncs every commit; NORMAL (1) survives a crash of the process only."""
    if setting is None:
        monkeypatch.delenv("LOANDESK_SQLITE_SYNC", raising=False)
    else:
        monkeypatch.setenv("LOANDESK_SQLITE_SYNC", setting)
    db = DecisionLog(f"sqlite:///{tmp_path / 'sync.db'}")
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == level
    finally:
        db.dispose()


def test_an_unknown_sqlite_sync_setting_is_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("LOANDESK_SQLITE_SYNC", "OFF")
    with pytest.raises(ValueError, match="LOANDESK_SQLITE_SYNC must be FULL or NORMAL"):
        DecisionLog(f"sqlite:///{tmp_path / 'sync.db'}").engine  # noqa: B018


def test_a_table_locked_by_someone_else_fails_the_write_after_the_wait_instead_of_hanging(log_url):
    """On PostgreSQL as on SQLite: a lock held elsewhere costs a write busy_seconds, then a warning
    (the API journals the decisions then), and the write goes through once the lock is gone."""
    import threading

    from sqlalchemy import create_engine

    from model.records.log import DecisionLog

    log = DecisionLog(log_url, busy_seconds=0.3)
    assert log.record(_entry(1)).ok  # the schema exists before the lock is taken
    holder = create_engine(log_url, connect_args={"timeout": 0} if log_url.startswith("sqlite") else {})
    conn = holder.connect()
    try:
        if log_url.startswith("sqlite"):
            conn.exec_driver_sql("BEGIN EXCLUSIVE")
        else:
            conn.exec_driver_sql("BEGIN")
            conn.exec_driver_sql("LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE")
        result: list = []
        writer = threading.Thread(target=lambda: result.append(log.record([_entry(2), _entry(3)])))
        writer.start()
        writer.join(60)  # a guard against a hang; nothing here depends on how fast it is
        assert not writer.is_alive(), "the write waited for the lock instead of giving up"
        [refused] = result
        assert not refused.ok and "could not be written" in refused.warning
    finally:
        conn.exec_driver_sql("ROLLBACK")
        conn.close()
        holder.dispose()
    assert log.record([_entry(2), _entry(3)]).ok
    assert log.count() == 3
    log.dispose()
