"""Overrides and notices kept with the decision log, and the override and refer rates Monitoring shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from model.core.errors import OverrideError
from model.records.log import DecisionLog, LogEntry
from model.records.notices import new_record, notices_for, record_notices
from model.records.overrides import (
    OVERRIDE_REASONS,
    final_decision_of,
    override_rates,
    overrides_for,
    record_override,
    refer_rate,
    tally,
)

DAY = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def log(log_url):
    made = DecisionLog(log_url)
    yield made
    made.dispose()


def entry(decision: int = 1, *, officer: str = "Ada", referred: bool = False, at: datetime = DAY,
          version: str = "v1", model_name: str = "m", simulated: bool = False) -> LogEntry:
    return LogEntry(model_name=model_name, simulated=simulated, model_version=version, model_sha256="a" * 64,
                    source="form",
                    inputs={"income": 50_000}, probability=0.6 if decision else 0.3, threshold=0.5,
                    decision=decision, officer=officer, referred=referred, decided_at=at,
                    reason_codes="INCOME_HIGH" if decision else "INCOME_LOW")


def put(log: DecisionLog, *entries: LogEntry) -> list[str]:
    assert log.record(list(entries)).ok
    return [e.decision_id for e in entries]


def test_an_override_keeps_the_models_decision_and_records_the_final_one_who_and_why(log):
    [decision_id] = put(log, entry(1))
    done = record_override(log, decision_id, final_decision=0, reason="ADVERSE_INFORMATION",
                           note="Recent default at another lender", officer="  Ada  ")
    assert (done.model_decision, done.final_decision, done.officer) == ("approved", 0, "Ada")
    assert overrides_for(log, decision_id) == [done]
    assert final_decision_of(log, decision_id) == 0
    assert int(log.find(decision_id)["decision"]) == 1


@pytest.mark.parametrize(("changes", "message"), [
    ({"reason": "BECAUSE"}, "reason 'BECAUSE' is not one of the override reasons"),
    ({"note": "  "}, "needs a note"),
    ({"note": "x" * 2001}, "the note has 2,001 characters; at most 2,000"),
    ({"officer": None}, "needs the officer's name"),
    ({"final_decision": 1}, "is already approved: an override must change it"),
    ({"final_decision": 2}, "the final decision is 1 (approve) or 0 (reject), not 2"),
    ({"decision_id": "nope"}, "there is no decision 'nope' on record"),
])
def test_an_override_that_makes_no_sense_is_refused_and_nothing_is_recorded(log, changes, message):
    [decision_id] = put(log, entry(1))
    args = dict(decision_id=decision_id, final_decision=0, reason="UNVERIFIABLE", note="checked", officer="Ada")
    args.update(changes)
    with pytest.raises(OverrideError, match=message.replace("(", r"\(").replace(")", r"\)")):
        record_override(log, args.pop("decision_id"), **args)
    assert overrides_for(log, decision_id) == []


def test_a_referred_case_has_no_final_decision_until_an_underwriter_gives_one(log):
    [decision_id] = put(log, entry(1, referred=True))
    assert final_decision_of(log, decision_id) is None
    record_override(log, decision_id, final_decision=1, reason="UNDERWRITER_REVIEW", note="fine", officer="Uma")
    assert final_decision_of(log, decision_id) == 1
    # a later override of the underwriter's decision is the one that stands
    record_override(log, decision_id, final_decision=0, reason="UNVERIFIABLE", note="docs forged", officer="Ada")
    assert [o.model_decision for o in overrides_for(log, decision_id)] == ["referred", "referred"]
    assert final_decision_of(log, decision_id) == 0


def test_notices_are_recorded_with_when_and_by_whom(log):
    [decision_id] = put(log, entry(0))
    at = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    record = new_record(decision_id, produced_by="Ada", source="form", reason_codes="INCOME_LOW",
                        pdf_sha256="b" * 64, at=at)
    record_notices(log, [record])
    [found] = notices_for(log, decision_id)
    assert (found.produced_by, found.source, found.reason_codes) == ("Ada", "form", "INCOME_LOW")
    assert found.produced_at == at


def test_override_and_refer_rates_are_counted_in_the_database_as_pandas_counts_them(log):
    entries = ([entry(1, officer="Ada") for _ in range(6)] + [entry(0, officer="Ada") for _ in range(4)]
               + [entry(1, officer="Ben", referred=True) for _ in range(5)]
               + [entry(0, officer="Ben", at=DAY - timedelta(days=30)) for _ in range(3)])  # outside the window
    ids = put(log, *entries)
    plan = [(0, "Ada", 0, "UNVERIFIABLE"), (1, "Ada", 0, "UNVERIFIABLE"), (6, "Ada", 1, "COMPENSATING_FACTORS"),
            (10, "Ben", 0, "UNDERWRITER_REVIEW"), (11, "Ben", 1, "UNDERWRITER_REVIEW"),
            (15, "Ben", 1, "CREDIT_REPORT_CORRECTED")]
    for k, who, final, reason in plan:
        record_override(log, ids[k], final_decision=final, reason=reason, note="n", officer=who)
    start = DAY - timedelta(days=1)
    rates = override_rates(log, start=start)

    made = log.read(start=start)
    overrides = pd.DataFrame([(ids[k], who, reason) for k, who, _, reason in plan],
                             columns=["decision_id", "officer", "reason"])
    overrides = overrides[overrides["decision_id"].isin(made["decision_id"])]
    expected = overrides.groupby(["officer", "reason"]).size().rename("overrides").reset_index()
    expected["decisions"] = expected["officer"].map(made.groupby("officer").size())
    expected["rate"] = expected["overrides"] / expected["decisions"]
    got = rates.set_index(["officer", "reason"]).sort_index()
    want = expected.set_index(["officer", "reason"]).sort_index()
    pd.testing.assert_series_equal(got["overrides"], want["overrides"], check_dtype=False)
    pd.testing.assert_series_equal(got["decisions"], want["decisions"], check_dtype=False)
    pd.testing.assert_series_equal(got["rate"], want["rate"])
    assert ("Ben", "CREDIT_REPORT_CORRECTED") not in got.index  # that decision is outside the window
    assert got.loc[("Ada", "UNVERIFIABLE"), "reason_text"] == OVERRIDE_REASONS["UNVERIFIABLE"]
    assert refer_rate(log, start=start) == (5, 15)
    assert refer_rate(log, start=start, versions=["v2"]) == (0, 0)


def test_a_log_at_the_revision_before_overrides_is_upgraded_with_its_rows_kept(tmp_path):
    from alembic import command
    from sqlalchemy import create_engine, text

    from model.records import migrate

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:  # the log as the LoanDesk before this one left it: revision 0003
        command.upgrade(migrate._config(conn), "0003")
        conn.execute(text("""INSERT INTO decisions (decided_at, model_name, model_version, model_sha256, source,
            simulated, inputs, probability, threshold, decision, reasons, out_of_range, decision_id)
            VALUES ('2026-01-02 03:04:05', 'm', 'v0', 'x', 'form', 0, '{"income": 1}', 0.3, 0.5, 0, 'r', '',
            'old1')"""))
    engine.dispose()
    upgraded = DecisionLog(url)
    [kept] = upgraded.read().to_dict("records")  # SQLite is upgraded on first use
    assert kept["decision_id"] == "old1" and kept["reason_codes"] == "" and not kept["referred"]
    record_override(upgraded, "old1", final_decision=1, reason="VERIFIED_INCOME", note="n", officer="Ada")
    assert final_decision_of(upgraded, "old1") == 1
    record_notices(upgraded, [new_record("old1", produced_by="Ada", source="form", reason_codes="",
                                         pdf_sha256="c" * 64)])
    assert len(notices_for(upgraded, "old1")) == 1
    upgraded.dispose()


def test_the_tally_for_a_monitoring_scope_counts_as_pandas_counts_the_same_rows(log):
    from model.monitoring.queries import Scope

    entries = ([entry(1, referred=k % 3 == 0) for k in range(9)]
               + [entry(0, simulated=True, referred=True) for _ in range(4)]
               + [entry(1, model_name="other", referred=True) for _ in range(5)]
               + [entry(0, version="v2") for _ in range(3)]
               + [entry(0, at=DAY + timedelta(days=3)) for _ in range(2)])
    ids = put(log, *entries)
    for k in (0, 1, 9, 13, 18, 22):  # two of "m" v1, one simulated, one of "other", one v2, one later
        record_override(log, ids[k], final_decision=1 - entries[k].decision, reason="UNVERIFIABLE", note="n",
                        officer="Ada")
    record_override(log, ids[1], final_decision=entries[1].decision, reason="UNVERIFIABLE", note="back",
                    officer="Ada")  # overridden twice: one overridden decision
    made = log.read()
    overridden = {ids[k] for k in (0, 1, 9, 13, 18, 22)}
    for scope in (Scope("m"), Scope("m", simulated=False), Scope("m", versions=("v1",)),
                  Scope("m", start=DAY.date(), end=DAY.date()), Scope("other")):
        mine = made[made["model_name"] == scope.model_name]
        if scope.versions is not None:
            mine = mine[mine["model_version"].isin(scope.versions)]
        if scope.simulated is not None:
            mine = mine[mine["simulated"].astype(bool) == scope.simulated]
        if scope.end is not None:
            mine = mine[pd.to_datetime(mine["decided_at"], utc=True).dt.date <= scope.end]
        got = tally(log, where=scope.clauses())
        assert (got.decisions, got.overridden, got.referred) == (
            len(mine), int(mine["decision_id"].isin(overridden).sum()), int(mine["referred"].astype(bool).sum()))
        assert got.decisions > 0
        rates = override_rates(log, where=scope.clauses())
        assert int(rates["overrides"].sum()) == int(mine["decision_id"].isin(overridden).sum()) + (
            1 if ids[1] in set(mine["decision_id"]) else 0)


def test_an_override_by_anyone_but_an_officer_is_refused_in_the_core_and_nothing_is_recorded(log):
    from model.core.errors import AccessDenied
    from model.records.access import Role, demo, person

    [decision_id] = put(log, entry(1))
    for who in (person("risk@bank.example", "s1", None, {Role.RISK}),
                person("auditor@bank.example", "s2", None, {Role.AUDITOR, Role.ADMIN}),
                person("nobody@bank.example", "s3", None, set())):
        with pytest.raises(AccessDenied, match="may not decide: that needs the officer role"):
            record_override(log, decision_id, final_decision=0, reason="UNVERIFIABLE", note="n",
                            officer=who.label, actor=who)
    assert overrides_for(log, decision_id) == []
    officer = person("ada@bank.example", "s4", None, {Role.OFFICER})
    done = record_override(log, decision_id, final_decision=0, reason="UNVERIFIABLE", note="n", officer=officer.label,
                           actor=officer)
    assert done.officer == "ada@bank.example" and overrides_for(log, decision_id) == [done]
    assert demo("Ada").may  # demo mode holds every role: an override in demo mode goes through
    record_override(log, decision_id, final_decision=1, reason="UNVERIFIABLE", note="back", officer="Ada",
                    actor=demo("Ada"))
    assert len(overrides_for(log, decision_id)) == 2
