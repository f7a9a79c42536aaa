"""The record that an adverse action notice was produced: for which decision, when, by whom, how.

A lender must be able to show that each rejected applicant was given a notice, and which one; the
PDF's SHA-256 and the reason codes it states are kept, so a copy produced later can be matched
against the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select

from model.records.log import DecisionLog
from model.records.overrides import aware
from model.records.tables import notices


@dataclass(frozen=True)
class NoticeRecord:
    decision_id: str
    produced_at: datetime
    produced_by: str
    source: str
    reason_codes: str
    pdf_sha256: str


def record_notices(log: DecisionLog, records: list[NoticeRecord]) -> None:
    """Write notice records in one transaction (a batch's notices at once); raises DecisionLogError."""
    if records:
        with log.writing() as conn:
            conn.execute(insert(notices), [r.__dict__ for r in records])


def notices_for(log: DecisionLog, decision_id: str) -> list[NoticeRecord]:
    """The notices produced for one decision, oldest first."""
    q = select(notices).where(notices.c.decision_id == decision_id).order_by(notices.c.id)
    with log.reading() as conn:
        rows = conn.execute(q).mappings().all()
    return [NoticeRecord(**{k: v for k, v in r.items() if k != "id"} | {"produced_at": aware(r["produced_at"])})
            for r in rows]


def new_record(decision_id: str, *, produced_by: str, source: str, reason_codes: str, pdf_sha256: str,
               at: datetime | None = None) -> NoticeRecord:
    return NoticeRecord(decision_id, at or datetime.now(UTC), produced_by, source, reason_codes, pdf_sha256)
