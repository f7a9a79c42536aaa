"""Recording outcomes: matched by decision id, unknown ids reported, duplicates refused, corrections kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from model.core.errors import DecisionLogError
from model.records.log import DecisionLog, LogEntry, new_decision_ids
from model.records.outcomes import (
    OutcomeFileError,
    history,
    outcomes,
    read_outcomes_file,
    record_outcomes,
    validate_rows,
)

DECIDED = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)


def _decisions(log: DecisionLog, n: int = 4) -> list[str]:
    ids = new_decision_ids(n)
    entries = [LogEntry(model_name="m", model_version="v1", model_sha256="0" * 64, source="api",
                        inputs={"income": 50_000 + k}, probability=0.7, threshold=0.5, decision=1,
                        decided_at=DECIDED, decision_id=i) for k, i in enumerate(ids)]
    assert log.record(entries).ok
    return ids


@pytest.fixture
def log(log_url):
    log = DecisionLog(log_url)
    yield log
    log.dispose()


def _current(log: DecisionLog) -> dict[str, int]:
    with log.engine.connect() as conn:
        rows = conn.execute(select(outcomes.c.decision_id, outcomes.c.outcome).where(outcomes.c.is_current))
        return dict(rows.all())


def test_outcomes_are_recorded_against_their_decisions_in_every_spelling(log):
    ids = _decisions(log)
    report = record_outcomes(log, [
        {"decision_id": ids[0], "outcome": "good"}, {"decision_id": ids[1], "outcome": "BAD "},
        {"decision_id": ids[2], "outcome": "1", "observed_at": "2026-09-30"},
        {"decision_id": ids[3], "outcome": 0, "observed_at": "2026-10-01T08:00:00Z"},
    ], source="file:outcomes.csv", recorded_by="ada@bank.example")
    assert report.problems == []
    assert report.recorded == [1, 2, 3, 4] and report.corrections == []
    assert _current(log) == {ids[0]: 1, ids[1]: 0, ids[2]: 1, ids[3]: 0}
    row = history(log, ids[3])[0]
    assert row["source"] == "file:outcomes.csv" and row["recorded_by"] == "ada@bank.example"
    assert row["observed_at"].replace(tzinfo=UTC) == datetime(2026, 10, 1, 8, tzinfo=UTC)
    assert report.summary() == "Recorded 4 of 4 outcome(s)."


def test_unknown_ids_are_reported_and_the_rest_recorded(log):
    ids = _decisions(log, 2)
    report = record_outcomes(log, [{"decision_id": ids[0], "outcome": "good"},
                                   {"decision_id": "f" * 32, "outcome": "bad"}], source="api:test")
    assert [(p.row, p.field, p.value) for p in report.unknown] == [(2, "decision_id", "f" * 32)]
    assert "no decision with this id" in report.unknown[0].why
    assert report.recorded == [1]
    assert _current(log) == {ids[0]: 1}
    assert report.status == {1: "recorded", 2: "refused"}


def test_the_same_outcome_twice_is_refused_as_a_duplicate(log):
    ids = _decisions(log, 2)
    record_outcomes(log, [{"decision_id": ids[0], "outcome": "good"}], source="api:test")
    again = record_outcomes(log, [{"decision_id": ids[0], "outcome": "1"},
                                  {"decision_id": ids[1], "outcome": "bad"},
                                  {"decision_id": ids[1], "outcome": "good"}], source="api:test")
    assert [(p.row, p.field) for p in again.duplicates] == [(1, "outcome"), (3, "decision_id")]
    assert "already on record as good" in again.duplicates[0].why
    assert "row 2 already gives" in again.duplicates[1].why
    assert again.recorded == [2]
    with log.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outcomes)).scalar() == 2


def test_a_different_later_outcome_is_recorded_as_a_correction_and_the_first_is_kept(log):
    ids = _decisions(log, 1)
    first = record_outcomes(log, [{"decision_id": ids[0], "outcome": "good"}], source="file:a.csv")
    later = record_outcomes(log, [{"decision_id": ids[0], "outcome": "bad", "observed_at": "2026-11-01"}],
                            source="file:b.csv")
    assert first.recorded == [1] and later.corrections == [1] and later.recorded == []
    assert later.summary() == "Recorded 1 of 1 outcome(s); 1 of them correction(s) of an earlier outcome."
    assert _current(log) == {ids[0]: 0}
    rows = history(log, ids[0])
    assert [(r["outcome"], r["is_current"], r["source"]) for r in rows] == [(1, False, "file:a.csv"),
                                                                           (0, True, "file:b.csv")]
    assert rows[1]["corrects"] == rows[0]["id"]


def test_every_bad_field_is_reported_with_row_field_value_and_why(log):
    ids = _decisions(log, 1)
    now = datetime(2026, 11, 15, tzinfo=UTC)
    report = record_outcomes(log, [
        {"decision_id": "", "outcome": "good"},
        {"decision_id": ids[0], "outcome": "maybe", "observed_at": "yesterday"},
        {"decision_id": ids[0], "outcome": "", "observed_at": "2027-01-01"},
        {"decision_id": ids[0], "outcome": "good", "observed_at": "2026-03-01"},
        {"decision_id": "x" * 40, "outcome": "1"},
    ], source="api:test", now=now)
    found = [(p.row, p.field, p.value) for p in report.problems]
    assert found == [(1, "decision_id", ""), (2, "outcome", "maybe"), (2, "observed_at", "yesterday"),
                     (3, "outcome", ""), (3, "observed_at", "2027-01-01"), (4, "observed_at", "2026-03-01"),
                     (5, "decision_id", "x" * 40)]
    whys = {(p.row, p.field): p.why for p in report.problems}
    assert "good or bad" in whys[2, "outcome"] and "missing" in whys[3, "outcome"]
    assert "YYYY-MM-DD" in whys[2, "observed_at"] and "future" in whys[3, "observed_at"]
    assert whys[4, "observed_at"] == "before the decision was made (2026-03-02 15:30 UTC)"
    assert report.written == 0 and _current(log) == {}


def test_an_observation_on_the_decisions_own_day_is_accepted():
    valid, problems = validate_rows([{"decision_id": "a", "outcome": "good", "observed_at": "2026-03-02"}])
    assert problems == [] and valid[0].date_only


def test_a_log_that_cannot_be_written_raises_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    log = DecisionLog(f"sqlite:///{blocker / 'decisions.db'}")
    with pytest.raises(DecisionLogError, match="could not be recorded"):
        record_outcomes(log, [{"decision_id": "a", "outcome": "good"}], source="api:test")


# --- files ------------------------------------------------------------------------------------------
def test_a_semicolon_file_with_bom_extra_columns_and_blank_lines_is_read(tmp_path):
    path = tmp_path / "outcomes.csv"
    path.write_bytes("\ufeffLoan;Decision_ID ;Outcome\nL1;abc;good\n\nL2;def;0\n".encode())
    assert read_outcomes_file(path) == [{"decision_id": "abc", "outcome": "good"},
                                        {"decision_id": "def", "outcome": "0"}]


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"), (b"", "empty"), (b"id,result\n1,good\n", "decision_id, outcome are missing"),
    (b"\x89PNG\x00\x00", "not UTF-8"),
    (b'decision_id,outcome\nabc,good\n"def,good\nxyz,bad\n', r"row 2 \(line 3\) is not a readable CSV"),
    (b"decision_id,outcome\nabc,good\n\ndef,bad,x\n", r"row 2 \(line 4\) has 3 fields where the header has 2"),
    (b"decision_id,outcome\nabc,good\ndef," + b"x" * 2000 + b"\n", r"row 2 \(line 3\): a cell holds 2,000"),
])
def test_a_file_that_cannot_be_read_says_why(tmp_path, content, message):
    path = tmp_path / "outcomes.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(OutcomeFileError, match=message):
        read_outcomes_file(path)


def test_decisions_made_later_than_now_are_not_a_problem_for_old_outcomes(log):
    ids = _decisions(log, 1)
    report = record_outcomes(log, [{"decision_id": ids[0], "outcome": "good",
                                    "observed_at": (DECIDED + timedelta(days=90)).isoformat()}], source="api:t")
    assert report.recorded == [1]
