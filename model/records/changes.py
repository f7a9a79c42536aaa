"""Four eyes on the live model: proposals, approvals, rejections, withdrawals, and their history.

A threshold change, an activation or a rollback is first a *proposal* with a justification; it takes
effect only when a different person with the risk role approves it. The approval and the change on
disk happen in one database transaction: if writing the new version fails, the proposal stays
pending, and if two people approve at once only one approval counts. A proposal made against an
active version that has since changed cannot be approved (it would silently undo the other change).

Every step, and every activation from a shell (`train.py --activate`), is an event in
`model_change_events`: who, when, what from and to, and why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, insert, select, update

from model.core.errors import ChangeError, LoanDeskError
from model.records.log import DecisionLog
from model.registry.store import active_version, read_card, resolve_version_dir

from . import tables
from .access import AccessDenied, Action, Actor, require

KINDS = ("threshold", "activate", "rollback")
MIN_JUSTIFICATION = 10
MAX_JUSTIFICATION = 2000
ApplyChange = Callable[["Proposal"], str]  # puts an approved proposal into effect; returns the active version


@dataclass(frozen=True)
class Proposal:
    id: int
    kind: str
    from_version: str | None
    to_version: str | None
    from_threshold: float | None
    to_threshold: float | None
    justification: str
    proposed_by: str
    proposed_subject: str | None
    proposed_at: datetime
    status: str
    closed_by: str | None = None
    closed_at: datetime | None = None
    note: str | None = None
    result_version: str | None = None
    refer_band: float | None = None  # a threshold change's refer band (None: the version's own)

    @property
    def summary(self) -> str:
        """What the proposal changes, for a person: "threshold 50.0% → 45.0% on version …"."""
        if self.kind == "threshold":
            band = f", refer band {_pct(self.refer_band)} wide" if self.refer_band else ""
            return (f"threshold {_pct(self.from_threshold)} → {_pct(self.to_threshold)}{band} "
                    f"(a new version from {self.to_version})")
        verb = "roll back" if self.kind == "rollback" else "activate"
        return f"{verb}: {self.from_version} → {self.to_version}"


class ModelChanges:
    """The change history and pending proposals of one model folder, kept in the decision log's database.

    `apply` puts an approved proposal into effect on disk (the training layer gives one built on
    `copy_with_threshold` and `activate_version`). With `four_eyes=False` (demo mode, one person)
    a proposal is approved by its proposer at once, and the history says so.
    """

    def __init__(self, log: DecisionLog, registry: str | Path, *, apply: ApplyChange, four_eyes: bool = True):
        self.log = log
        self.registry = Path(registry)
        self.model_dir = str(self.registry.resolve())
        self.apply = apply
        self.four_eyes = four_eyes

    # --- proposing -------------------------------------------------------------------------------------
    def propose_threshold(self, actor: Actor, version: str, threshold: float, justification: str,
                          refer_band: float | None = None) -> Proposal:
        """Propose a new version with `threshold` (and `refer_band`, when given) made from `version`, to
        become active once approved."""
        require(actor, Action.CHANGE_MODEL)
        threshold = float(threshold)
        if not 0.0 < threshold < 1.0:
            raise ChangeError(f"A threshold must be between 0% and 100%, not {_pct(threshold)}.")
        current = self._threshold(version)
        band = None if refer_band is None else float(refer_band)
        same_band = band is None or abs(band - self._refer_band(version)) < 1e-9
        if abs(current - threshold) < 1e-9 and same_band:
            raise ChangeError(f"Version {version} already has a threshold of {_pct(threshold)}.")
        return self._propose(actor, "threshold", version, current, threshold, justification, refer_band=band)

    def propose_activation(self, actor: Actor, version: str, justification: str) -> Proposal:
        """Propose making `version` active: a rollback when it is older than the active version."""
        require(actor, Action.CHANGE_MODEL)
        active = active_version(self.registry)
        if version == active:
            raise ChangeError(f"Version {version} is already active.")
        to_threshold = self._threshold(version)
        kind = "activate"
        if active is not None:
            try:
                older = _created(self.registry, version) < _created(self.registry, active)
            except (OSError, ValueError, LoanDeskError, RuntimeError):
                older = False  # the active version is unreadable: activating another one is a repair
            kind = "rollback" if older else "activate"
        return self._propose(actor, kind, version, None, to_threshold, justification)

    def _propose(self, actor: Actor, kind: str, version: str, from_threshold: float | None,
                 to_threshold: float, justification: str, refer_band: float | None = None) -> Proposal:
        justification = _justification(justification)
        active = active_version(self.registry)
        if from_threshold is None and active is not None:
            try:
                from_threshold = self._threshold(active)
            except ChangeError:
                from_threshold = None
        self.log.ensure_schema()
        now = datetime.now(UTC)
        values = {"model_dir": self.model_dir, "kind": kind, "from_version": active, "to_version": version,
                  "from_threshold": from_threshold, "to_threshold": to_threshold}
        with self._writing() as conn:
            change_id = conn.execute(insert(tables.model_changes).values(
                **values, refer_band=refer_band, justification=justification, proposed_by=actor.label,
                proposed_subject=actor.subject, proposed_at=now, status="pending")).inserted_primary_key[0]
            self._event(conn, change_id, "proposed", actor, justification, now=now, **_event_values(values))
        proposal = self.get(change_id)
        if not self.four_eyes:
            return self.approve(actor, proposal.id, note="four eyes off (demo mode): approved by its proposer")
        return proposal

    # --- deciding --------------------------------------------------------------------------------------
    def approve(self, actor: Actor, change_id: int, note: str = "") -> Proposal:
        """Approve another person's proposal and put it into effect, in one transaction."""
        require(actor, Action.CHANGE_MODEL)
        note = _note(note)
        with self._writing() as conn:
            proposal = self._pending(conn, change_id, "approve")
            if self.four_eyes and _same_person(actor, proposal):
                raise AccessDenied(f"{actor.label} proposed change {change_id}, so someone else with the risk "
                                   "role must approve it (four eyes).")
            active = active_version(self.registry)
            if active != proposal.from_version:
                raise ChangeError(f"The active version has changed since change {change_id} was proposed "
                                  f"(it was {proposal.from_version}, it is now {active}): reject it and "
                                  "propose again from the version now active.")
            now = datetime.now(UTC)
            self._close(conn, change_id, "approved", actor, note, now)
            result = self.apply(proposal)  # a failure here rolls the approval back: still pending
            conn.execute(update(tables.model_changes).where(tables.model_changes.c.id == change_id)
                         .values(result_version=result))
            self._event(conn, change_id, "approved", actor, note, now=now, kind=proposal.kind,
                        from_version=proposal.from_version, to_version=result,
                        from_threshold=proposal.from_threshold, to_threshold=proposal.to_threshold)
        return self.get(change_id)

    def reject(self, actor: Actor, change_id: int, note: str) -> Proposal:
        """Turn down another person's proposal; the reason is required and kept."""
        require(actor, Action.CHANGE_MODEL)
        note = _justification(note, what="reason for rejecting")
        with self._writing() as conn:
            proposal = self._pending(conn, change_id, "reject")
            if _same_person(actor, proposal):
                raise AccessDenied(f"{actor.label} proposed change {change_id}: withdraw it instead of rejecting it.")
            self._close_with_event(conn, proposal, "rejected", actor, note)
        return self.get(change_id)

    def withdraw(self, actor: Actor, change_id: int, note: str = "") -> Proposal:
        """Take back one's own proposal."""
        require(actor, Action.CHANGE_MODEL)
        note = _note(note)
        with self._writing() as conn:
            proposal = self._pending(conn, change_id, "withdraw")
            if not _same_person(actor, proposal):
                raise AccessDenied(f"Only {proposal.proposed_by}, who proposed change {change_id}, may withdraw it; "
                                   "reject it instead.")
            self._close_with_event(conn, proposal, "withdrawn", actor, note)
        return self.get(change_id)

    def record_activation(self, actor: Actor, from_version: str | None, to_version: str, note: str = "",
                          *, effect: Callable[[], None] | None = None) -> None:
        """Record an activation made outside the proposals (a shell user running train.py --activate).

        `effect`, when given, makes the change inside the same transaction: if it fails nothing is
        recorded, and if the record cannot be written the change is not made."""
        self.log.ensure_schema()
        thresholds = []
        for v in (from_version, to_version):
            try:
                thresholds.append(self._threshold(v) if v else None)
            except ChangeError:
                thresholds.append(None)
        with self._writing() as conn:
            self._event(conn, None, "activated", actor, note or "activated from the command line",
                        kind="activate", from_version=from_version, to_version=to_version,
                        from_threshold=thresholds[0], to_threshold=thresholds[1])
            if effect is not None:
                effect()

    # --- reading ---------------------------------------------------------------------------------------
    def get(self, change_id: int) -> Proposal:
        self.log.ensure_schema()
        with self.log.engine.connect() as conn:
            return self._read(conn, change_id)

    def pending(self) -> list[Proposal]:
        """Proposals waiting for a decision, oldest first."""
        return self.proposals(status="pending")

    def proposals(self, status: str | None = None) -> list[Proposal]:
        self.log.ensure_schema()
        mc = tables.model_changes
        q = select(mc).where(mc.c.model_dir == self.model_dir).order_by(mc.c.id)
        if status is not None:
            q = q.where(mc.c.status == status)
        with self.log.engine.connect() as conn:
            return [_proposal(row) for row in conn.execute(q).mappings()]

    def history(self, limit: int | None = None) -> pd.DataFrame:
        """Every event for this model folder, newest first: when, what happened, who, from → to, why."""
        self.log.ensure_schema()
        ev = tables.model_change_events
        q = select(ev).where(ev.c.model_dir == self.model_dir).order_by(ev.c.id.desc())
        if limit:
            q = q.limit(limit)
        columns = ["at", "action", "kind", "change_id", "actor", "actor_subject", "from_version", "to_version",
                   "from_threshold", "to_threshold", "note"]
        with self.log.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(q).mappings().all(), columns=[c.name for c in ev.c])
        frame["at"] = pd.to_datetime(frame["at"], utc=True)
        frame["change_id"] = frame["change_id"].astype("Int64")
        return frame[columns]

    # --- inside --------------------------------------------------------------------------------------
    def _writing(self):
        self.log.ensure_schema()
        return self.log.engine.execution_options(loandesk_write=True).begin()

    def _threshold(self, version: str) -> float:
        try:
            return float(read_card(resolve_version_dir(self.registry, version))["threshold"])
        except (OSError, KeyError, ValueError, TypeError, LoanDeskError, RuntimeError) as exc:
            raise ChangeError(f"Version {version} cannot be read: {exc}") from exc

    def _refer_band(self, version: str) -> float:
        try:
            return float(read_card(resolve_version_dir(self.registry, version)).get("refer_band") or 0.0)
        except (OSError, KeyError, ValueError, TypeError, LoanDeskError, RuntimeError):
            return 0.0

    def _read(self, conn: Connection, change_id: int) -> Proposal:
        mc = tables.model_changes
        row = conn.execute(select(mc).where(mc.c.id == int(change_id), mc.c.model_dir == self.model_dir)
                           ).mappings().first()
        if row is None:
            raise ChangeError(f"There is no change {change_id} for the model in {self.registry}.")
        return _proposal(row)

    def _pending(self, conn: Connection, change_id: int, verb: str) -> Proposal:
        proposal = self._read(conn, change_id)
        if proposal.status != "pending":
            raise ChangeError(f"Change {change_id} was {proposal.status} by {proposal.closed_by}; "
                              f"there is nothing left to {verb}.")
        return proposal

    def _close(self, conn: Connection, change_id: int, status: str, actor: Actor, note: str | None,
               now: datetime) -> None:
        mc = tables.model_changes
        done = conn.execute(update(mc).where(mc.c.id == change_id, mc.c.status == "pending").values(
            status=status, closed_by=actor.label, closed_subject=actor.subject, closed_at=now, note=note or None))
        if done.rowcount != 1:  # someone else decided it between our read and this write
            raise ChangeError(f"Change {change_id} has just been decided by someone else.")

    def _close_with_event(self, conn: Connection, proposal: Proposal, status: str, actor: Actor, note: str) -> None:
        now = datetime.now(UTC)
        self._close(conn, proposal.id, status, actor, note, now)
        self._event(conn, proposal.id, status, actor, note, now=now, kind=proposal.kind,
                    from_version=proposal.from_version, to_version=proposal.to_version,
                    from_threshold=proposal.from_threshold, to_threshold=proposal.to_threshold)

    def _event(self, conn: Connection, change_id: int | None, action: str, actor: Actor, note: str | None,
               *, now: datetime | None = None, **values) -> None:
        conn.execute(insert(tables.model_change_events).values(
            at=now or datetime.now(UTC), change_id=change_id, model_dir=self.model_dir, action=action,
            actor=actor.label, actor_subject=actor.subject, note=note or None, **values))


def _proposal(row) -> Proposal:
    fields = Proposal.__dataclass_fields__
    values = {k: row[k] for k in fields}
    for key in ("proposed_at", "closed_at"):
        if values[key] is not None and values[key].tzinfo is None:
            values[key] = values[key].replace(tzinfo=UTC)
    return Proposal(**values)


def _event_values(values: dict) -> dict:
    return {k: values[k] for k in ("kind", "from_version", "to_version", "from_threshold", "to_threshold")}


def _same_person(actor: Actor, proposal: Proposal) -> bool:
    return actor.label == proposal.proposed_by or bool(actor.subject and actor.subject == proposal.proposed_subject)


def _justification(text: str | None, what: str = "justification") -> str:
    text = (text or "").strip()
    if len(text) < MIN_JUSTIFICATION:
        raise ChangeError(f"Write a {what} of at least {MIN_JUSTIFICATION} characters: it is kept in the model "
                          "change history for whoever reviews it.")
    return _note(text, what)


def _note(text: str | None, what: str = "note") -> str:
    text = (text or "").strip()
    if len(text) > MAX_JUSTIFICATION:
        raise ChangeError(f"The {what} is {len(text):,} characters long; at most {MAX_JUSTIFICATION:,} are kept.")
    if any(ord(c) < 32 and c not in "\n\t" for c in text) or "\x7f" in text:
        raise ChangeError(f"The {what} holds a control character; write it again as plain text.")
    return text


def _created(registry: Path, version: str) -> str:
    return str(read_card(resolve_version_dir(registry, version)).get("created_at") or version)


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{100 * value:.1f}%"
