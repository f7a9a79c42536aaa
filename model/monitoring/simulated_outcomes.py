"""Outcomes for the demo's simulated decisions, drawn from the rule that made the built-in data.

A student sees the whole loop (decide, wait, learn what happened, measure) without waiting months:
each simulated approval without an outcome gets good with probability sigmoid(approval_log_odds),
the same rule the built-in applicants' labels were drawn from, and goes on record marked simulated.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import and_, select

from model.records.log import DecisionLog
from model.records.outcomes import OutcomeReport, record_outcomes
from model.records.tables import decisions, outcomes
from model.training.data import BUILTIN_FEATURES, approval_log_odds

from .report import SIMULATION_SOURCE


def can_simulate(model) -> bool:
    """Only the built-in fields can be put through the built-in rule."""
    return set(BUILTIN_FEATURES) <= set(model.schema.names)


def waiting(log: DecisionLog, model_name: str) -> pd.DataFrame:
    """Simulated approvals of this model that have no outcome yet: decision id and inputs."""
    d, o = decisions.c, outcomes.c
    joined = decisions.outerjoin(outcomes, and_(o.decision_id == d.decision_id, o.is_current.is_(True)))
    q = (select(d.decision_id, d.inputs).select_from(joined)
         .where(d.model_name == model_name, d.simulated.is_(True), d.decision == 1, d.decision_id.is_not(None),
                o.id.is_(None)))
    log.ensure_schema()
    with log.engine.connect() as conn:
        return pd.DataFrame(conn.execute(q).all(), columns=["decision_id", "inputs"])


def log_simulated_outcomes(log: DecisionLog, model, *, seed: int = 0, recorded_by: str | None = None,
                           now: datetime | None = None) -> OutcomeReport:
    """Draw and record an outcome for every simulated approval of `model` still without one."""
    pending = waiting(log, model.name)
    if pending.empty:
        return OutcomeReport()
    inputs = pd.DataFrame(list(pending["inputs"]))[BUILTIN_FEATURES].astype(float)
    good = np.random.default_rng(seed).random(len(inputs)) < 1 / (1 + np.exp(-approval_log_odds(inputs)))
    rows = [{"decision_id": i, "outcome": int(g)} for i, g in zip(pending["decision_id"], good, strict=True)]
    return record_outcomes(log, rows, source=SIMULATION_SOURCE, recorded_by=recorded_by, simulated=True,
                           now=now or datetime.now(UTC))
