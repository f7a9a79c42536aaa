"""Migration 0008 adds the tables kept beside the log (people and roles, sign-ins, model changes,
exports) to a log that is at 0007 and has rows, keeping every row."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, inspect

from model.records import access, migrate
from model.records.access import Role
from model.records.exports import exports_frame
from model.records.log import DecisionLog, LogEntry, _insert
from model.records.people import People

NEW = {"user_roles", "role_changes", "sign_ins", "model_changes", "model_change_events", "exports"}


def _entry(i: int) -> LogEntry:
    return LogEntry(model_name="m", model_version="v1", model_sha256="0" * 64, source="form",
                    inputs={"income": 1000 + i}, probability=0.6, threshold=0.5, decision=1, officer=f"o{i}",
                    decision_id=f"{i:032x}")


def test_a_log_at_0007_with_rows_gets_the_new_tables_and_keeps_every_row(log_url):
    engine = create_engine(log_url)
    with engine.begin() as conn:  # the log as the LoanDesk before this one left it
        command.upgrade(migrate._config(conn), "0007")
    assert not NEW & set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        _insert(conn, [_entry(i) for i in range(25)])  # rows written as the log writes them
    with engine.begin() as conn:
        migrate.upgrade(conn)  # what first use (SQLite) or `python -m model.records migrate` does
    engine.dispose()

    log = DecisionLog(log_url)
    assert set(inspect(log.engine).get_table_names()) >= NEW
    frame = log.read()
    assert len(frame) == 25 and sorted(frame["officer"]) == sorted(f"o{i}" for i in range(25))
    assert log.find(f"{7:032x}")["inputs"] == {"income": 1007}
    People(log).add("ann@bank.example", {Role.OFFICER}, by=access.shell("ops"))
    assert People(log).roles_of("ann@bank.example") == {Role.OFFICER}
    assert exports_frame(log).empty
    assert "replayed_by" in {c["name"] for c in inspect(log.engine).get_columns("replays")}
