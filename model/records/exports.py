"""Decisions taken out of the log: only by an auditor, and every time on record.

The decision log holds every applicant's income, credit score and loan; an export is the one way
all of it leaves the database at once, so it is refused to anyone without the auditor role and
recorded (who, when, which filter, how many rows) before the rows are handed over.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pandas as pd
from sqlalchemy import insert, select

from model.records.log import DecisionLog

from . import tables
from .access import Action, Actor, require

DECISION_LOG = "decision log"
BATCH_RESULTS = "batch results"


def export_decisions(log: DecisionLog, actor: Actor, *, start: datetime | date | None = None,
                     end: datetime | date | None = None, versions: list[str] | None = None,
                     simulated: bool | None = None) -> pd.DataFrame:
    """The decisions matching the filter (as `DecisionLog.read` gives them), once the export is on record.

    Raises AccessDenied for anyone without the auditor role, and DecisionLogError when the log
    cannot be read; nothing is handed over unless the export could be recorded.
    """
    require(actor, Action.EXPORT_DECISIONS)
    frame = log.read(start=start, end=end, versions=versions, simulated=simulated)
    chosen = {"start": _iso(start), "end": _iso(end), "versions": sorted(versions) if versions else "all",
              "simulated": {None: "included", False: "left out", True: "only"}[simulated]}
    record_export(log, actor, what=DECISION_LOG, chosen=chosen, rows=len(frame), action=Action.EXPORT_DECISIONS)
    return frame


def record_export(log: DecisionLog, actor: Actor, *, what: str, chosen: dict, rows: int, action: Action) -> None:
    """Put one export on record (who, when, what, which filter, how many rows), if `actor` may make it.

    Used for the decision-log export above and for an officer's download of their own batch results."""
    require(actor, action)
    log.ensure_schema()
    with log.engine.execution_options(loandesk_write=True).begin() as conn:
        conn.execute(insert(tables.exports).values(
            at=datetime.now(UTC), actor=actor.label, actor_subject=actor.subject, what=what[:40],
            filter=json.dumps(chosen, sort_keys=True, default=str), rows=int(rows)))


def exports_frame(log: DecisionLog, limit: int | None = None) -> pd.DataFrame:
    """Every export on record, newest first: when, who, what, the filter and the number of rows."""
    log.ensure_schema()
    ex = tables.exports
    q = select(ex.c.at, ex.c.actor, ex.c.actor_subject, ex.c.what, ex.c.filter, ex.c.rows).order_by(ex.c.id.desc())
    if limit:
        q = q.limit(limit)
    with log.engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(q).mappings().all(),
                             columns=["at", "actor", "actor_subject", "what", "filter", "rows"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def _iso(moment: datetime | date | None) -> str | None:
    return None if moment is None else moment.isoformat()
