"""Exports of the decision log: auditors only, each recorded with who, when, the filter and the row count."""

from __future__ import annotations

from datetime import date

import pytest

from model.records import access
from model.records.access import AccessDenied, Role
from model.records.exports import export_decisions, exports_frame
from model.records.log import DecisionLog, LogEntry


def _entry(version: str, simulated: bool = False) -> LogEntry:
    return LogEntry(model_name="m", model_version=version, model_sha256="0" * 64, source="form",
                    inputs={"income": 1}, probability=0.7, threshold=0.5, decision=1, simulated=simulated)


@pytest.fixture
def log(log_url) -> DecisionLog:
    log = DecisionLog(log_url)
    log.record([_entry("v1"), _entry("v1"), _entry("v2", simulated=True)])
    return log


def test_an_auditor_exports_and_the_export_is_recorded(log):
    auditor = access.person("audrey@bank.example", "sub-a", None, {Role.AUDITOR})
    frame = export_decisions(log, auditor, start=date(2020, 1, 1), versions=["v1"], simulated=False)
    assert len(frame) == 2
    record = exports_frame(log).iloc[0]
    assert (record["actor"], record["actor_subject"], record["rows"]) == ("audrey@bank.example", "sub-a", 2)
    assert '"versions": ["v1"]' in record["filter"] and '"start": "2020-01-01"' in record["filter"]
    assert '"simulated": "left out"' in record["filter"]


@pytest.mark.parametrize("role", [Role.OFFICER, Role.RISK, Role.ADMIN, None])
def test_anyone_but_an_auditor_is_refused_and_nothing_is_recorded(log, role):
    actor = access.person("eve@bank.example", "sub-e", None, {role} if role else set())
    with pytest.raises(AccessDenied, match="auditor role"):
        export_decisions(log, actor)
    assert exports_frame(log).empty


def test_a_download_of_batch_results_is_recorded_for_an_officer_only(log):
    from model.records.access import Action
    from model.records.exports import BATCH_RESULTS, record_export

    officer = access.person("olga@bank.example", "sub-o", None, {Role.OFFICER})
    record_export(log, officer, what=BATCH_RESULTS, chosen={"file": "april.csv"}, rows=120, action=Action.SCORE_BATCH)
    row = exports_frame(log).iloc[0]
    assert (row["actor"], row["what"], row["rows"]) == ("olga@bank.example", "batch results", 120)
    assert "april.csv" in row["filter"]
    auditor = access.person("audrey@bank.example", "sub-a", None, {Role.AUDITOR})
    with pytest.raises(AccessDenied):
        record_export(log, auditor, what=BATCH_RESULTS, chosen={}, rows=1, action=Action.SCORE_BATCH)
    assert len(exports_frame(log)) == 1


def test_the_monitoring_pages_export_of_a_scope_is_recorded_for_an_auditor_only(log):
    from model.monitoring.exports import export_scope
    from model.monitoring.queries import Scope

    scope = Scope("m", ("v1",), date(2020, 1, 1), date(2099, 12, 31), False)
    for role in (Role.OFFICER, Role.RISK, Role.ADMIN):
        with pytest.raises(AccessDenied, match="auditor role"):
            export_scope(log, access.person("eve@bank.example", None, None, {role}), scope)
    assert exports_frame(log).empty
    auditor = access.person("audrey@bank.example", "sub-a", None, {Role.AUDITOR})
    frame = export_scope(log, auditor, scope)
    assert len(frame) == 2 and set(frame["model_version"]) == {"v1"}
    record = exports_frame(log).iloc[0]
    assert (record["actor"], record["what"], record["rows"]) == ("audrey@bank.example", "decision log", 2)
    assert '"model": "m"' in record["filter"] and '"end": "2099-12-31"' in record["filter"]
    assert '"simulated": "left out"' in record["filter"]
