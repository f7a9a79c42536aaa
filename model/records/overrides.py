"""Overrides: an officer's final decision where it differs from the model's, with who, why and when.

The decision row is never changed: the model's decision stays what it was, and each override is a
row of its own naming the decision it belongs to, so the log shows both what the model said and
what the bank did. The reasons come from one fixed list (below, and in README), so that overrides
can be counted by reason; the note says the rest in the officer's words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Integer, case, exists, func, insert, select

from model.core.errors import OverrideError
from model.records.access import Action, Actor, require
from model.records.log import DecisionLog, window
from model.records.tables import decisions, overrides

# The fixed list of reasons an officer may give, by stable code. Changing a text is fine; a code,
# once used, stays (the log refers to it).
OVERRIDE_REASONS: dict[str, str] = {
    "VERIFIED_INCOME": "Income or debts verified at other amounts than the application gives",
    "COMPENSATING_FACTORS": "Compensating factors the model does not see (savings, assets, collateral, a co-signer)",
    "CUSTOMER_RELATIONSHIP": "A long and good relationship with the bank",
    "CREDIT_REPORT_CORRECTED": "The credit report used was wrong and has been corrected",
    "ADVERSE_INFORMATION": "Adverse information the model does not see (fraud indicators, a recent default, a lawsuit)",
    "UNVERIFIABLE": "Information on the application could not be verified",
    "POLICY_EXCEPTION": "An exception under the credit policy, approved by the person named in the note",
    "UNDERWRITER_REVIEW": "The underwriter's decision on a case the model referred",
}
MAX_NOTE = 2000  # characters
APPROVED, REJECTED, REFERRED = "approved", "rejected", "referred"



@dataclass(frozen=True)
class Override:
    decision_id: str
    overridden_at: datetime
    officer: str
    model_decision: str
    final_decision: int
    reason: str
    note: str

    @property
    def reason_text(self) -> str:
        return OVERRIDE_REASONS.get(self.reason, self.reason)


def model_outcome(row: dict[str, Any]) -> str:
    """What the model said for a decision row: approved, rejected, or referred to an underwriter."""
    if row.get("referred"):
        return REFERRED
    return APPROVED if int(row["decision"]) == 1 else REJECTED


def record_override(log: DecisionLog, decision_id: str, *, final_decision: int, reason: str, note: str,
                    officer: str | None, at: datetime | None = None, actor: Actor | None = None) -> Override:
    """Record an officer's final decision for a decision on record; OverrideError says what is wrong.

    The final decision must differ from the model's (a referred case may go either way), the
    reason must be one of OVERRIDE_REASONS, and the officer and note must be given.
    """
    if actor is not None:  # the person acting must be an officer, whatever the page showed them
        require(actor, Action.DECIDE)
    who = (officer or "").strip()
    words = (note or "").strip()
    if not who:
        raise OverrideError("an override needs the officer's name: sign in or give your name first")
    if reason not in OVERRIDE_REASONS:
        raise OverrideError(f"reason {reason!r} is not one of the override reasons: {', '.join(OVERRIDE_REASONS)}")
    if not words:
        raise OverrideError("an override needs a note saying why, in your words")
    if len(words) > MAX_NOTE:
        raise OverrideError(f"the note has {len(words):,} characters; at most {MAX_NOTE:,}")
    if final_decision not in (0, 1):
        raise OverrideError(f"the final decision is 1 (approve) or 0 (reject), not {final_decision!r}")
    row = log.find(decision_id)
    if row is None:
        raise OverrideError(f"there is no decision {decision_id!r} on record to override")
    said = model_outcome(row)
    current = final_decision_of(log, decision_id, row)
    if said != REFERRED and current == final_decision:
        shown = "approved" if final_decision else "rejected"
        raise OverrideError(f"decision {decision_id} is already {shown}: an override must change it")
    done = Override(decision_id, at or datetime.now(UTC), who, said, int(final_decision), reason, words)
    with log.writing() as conn:
        conn.execute(insert(overrides).values(**done.__dict__))
    return done


def overrides_for(log: DecisionLog, decision_id: str) -> list[Override]:
    """Every override of one decision, oldest first (the last one stands)."""
    q = select(overrides).where(overrides.c.decision_id == decision_id).order_by(overrides.c.id)
    with log.reading() as conn:
        rows = conn.execute(q).mappings().all()
    return [Override(**{k: v for k, v in r.items() if k != "id"} | {"overridden_at": aware(r["overridden_at"])})
            for r in rows]


def final_decision_of(log: DecisionLog, decision_id: str, row: dict[str, Any] | None = None) -> int | None:
    """The decision that stands: the last override's, else the model's (None while a referred case
    awaits the underwriter, or for an unknown id)."""
    done = overrides_for(log, decision_id)
    if done:
        return done[-1].final_decision
    row = row if row is not None else log.find(decision_id)
    if row is None or model_outcome(row) == REFERRED:
        return None
    return int(row["decision"])


def override_rates(log: DecisionLog, *, start: datetime | date | None = None, end: datetime | date | None = None,
                   versions: Sequence[str] | None = None, where: Sequence[ColumnElement[bool]] = ()) -> pd.DataFrame:
    """Overrides per officer and reason among the decisions in the window, computed in the database.

    `where` narrows the decisions further (the Monitoring page passes its scope: one model, its
    versions, its days, real or simulated). Columns: officer, reason, reason_text, overrides,
    decisions (the decisions that officer made in the window), rate (overrides / decisions).
    """
    picked = _window(select(decisions.c.decision_id, decisions.c.officer), start, end, versions, where).subquery()
    counted = (select(picked.c.officer, func.count().label("decisions")).group_by(picked.c.officer)).subquery()
    q = (select(overrides.c.officer, overrides.c.reason, func.count().label("overrides"))
         .join(picked, picked.c.decision_id == overrides.c.decision_id)
         .group_by(overrides.c.officer, overrides.c.reason))
    with log.reading() as conn:
        rows = conn.execute(q).mappings().all()
        made = {r["officer"]: r["decisions"] for r in conn.execute(select(counted)).mappings()}
    frame = pd.DataFrame(rows, columns=["officer", "reason", "overrides"])
    frame["reason_text"] = frame["reason"].map(lambda code: OVERRIDE_REASONS.get(code, code))
    frame["decisions"] = frame["officer"].map(lambda who: made.get(who, 0)).astype(int)
    frame["rate"] = frame["overrides"] / frame["decisions"].where(frame["decisions"] > 0)
    return frame[["officer", "reason", "reason_text", "overrides", "decisions", "rate"]].sort_values(
        ["officer", "overrides"], ascending=[True, False], ignore_index=True)


@dataclass(frozen=True)
class Tally:
    """How many decisions in a window, how many of them were overridden and how many referred."""

    decisions: int
    overridden: int  # decisions with at least one override (overridden twice counts once)
    referred: int

    @property
    def override_rate(self) -> float:
        return self.overridden / self.decisions if self.decisions else float("nan")

    @property
    def refer_rate(self) -> float:
        return self.referred / self.decisions if self.decisions else float("nan")


def tally(log: DecisionLog, *, start: datetime | date | None = None, end: datetime | date | None = None,
          versions: Sequence[str] | None = None, where: Sequence[ColumnElement[bool]] = ()) -> Tally:
    """Decisions, overridden decisions and referred decisions in the window, counted in the database."""
    was_overridden = exists().where(overrides.c.decision_id == decisions.c.decision_id)
    q = _window(select(func.count(), func.coalesce(func.sum(case((was_overridden, 1), else_=0)), 0),
                       func.coalesce(func.sum(decisions.c.referred.cast(Integer)), 0)), start, end, versions, where)
    with log.reading() as conn:
        total, overridden, referred = conn.execute(q).one()
    return Tally(int(total), int(overridden), int(referred))


def refer_rate(log: DecisionLog, *, start: datetime | date | None = None, end: datetime | date | None = None,
               versions: Sequence[str] | None = None) -> tuple[int, int]:
    """(referred, decisions) in the window, counted in the database."""
    counted = tally(log, start=start, end=end, versions=versions)
    return counted.referred, counted.decisions


def _window(q, start, end, versions, where=()):
    return q.where(*window(start, end, versions), *where)


def aware(moment: datetime) -> datetime:
    """A time read back from the database, in UTC (SQLite gives it back without its zone)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
