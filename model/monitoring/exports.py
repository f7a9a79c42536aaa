"""The Monitoring page's CSV of decisions, as an export on record.

`queries.everything` reads one model's decisions in a `Scope`; handing them over is an export of
every applicant's income, credit score and loan, so it goes through the same check and record as
`model.records.exports.export_decisions`: auditors only, who, when, which scope and how many rows.
"""

from __future__ import annotations

import pandas as pd

from model.records.access import Action, Actor, require
from model.records.exports import DECISION_LOG, record_export
from model.records.log import DecisionLog

from . import queries


def export_scope(log: DecisionLog, actor: Actor, scope: queries.Scope) -> pd.DataFrame:
    """Every decision in `scope`, newest first, once the export is on record.

    Raises AccessDenied for anyone without the auditor role (nothing is read), and
    DecisionLogError when the log cannot be read; nothing is handed over unless it is recorded.
    """
    require(actor, Action.EXPORT_DECISIONS)
    frame = queries.everything(log, scope)
    record_export(log, actor, what=DECISION_LOG, chosen=scope_filter(scope), rows=len(frame),
                  action=Action.EXPORT_DECISIONS)
    return frame


def scope_filter(scope: queries.Scope) -> dict:
    """The scope as the export's filter is recorded: model, versions, UTC days (both included), simulated."""
    return {"model": scope.model_name, "versions": sorted(scope.versions) if scope.versions else "all",
            "start": scope.start.isoformat() if scope.start else None,
            "end": scope.end.isoformat() if scope.end else None,
            "simulated": {None: "included", False: "left out", True: "only"}[scope.simulated]}
