"""People and their roles, kept in the decision log's database.

Sign-in says who someone is; this table says what they may do. A person is their email address
(lower-cased, as the identity provider's `email` claim gives it) with one or more roles; a person
with no row here is signed in but may do nothing. Every change is kept in `role_changes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import delete, insert, select

from model.records.log import DecisionLog

from . import tables
from .access import AccessDenied, Action, Actor, Role, clean_email, require


@dataclass(frozen=True)
class Person:
    email: str
    roles: frozenset[Role]
    granted_by: str
    granted_at: datetime


class People:
    """The roles table of one decision log. Reads are open; every change needs the admin role
    (or a shell user, who can reach the database anyway) and is recorded."""

    def __init__(self, log: DecisionLog):
        self.log = log

    def roles_of(self, email: str | None) -> frozenset[Role]:
        if not email:
            return frozenset()
        self.log.ensure_schema()
        q = select(tables.user_roles.c.role).where(tables.user_roles.c.email == email.strip().lower())
        with self.log.engine.connect() as conn:
            return frozenset(Role(r) for r in conn.execute(q).scalars() if r in Role._value2member_map_)

    def list(self) -> list[Person]:
        """Everyone with a role, by email."""
        self.log.ensure_schema()
        q = select(tables.user_roles).order_by(tables.user_roles.c.email, tables.user_roles.c.role)
        with self.log.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        grouped: dict[str, list] = {}
        for row in rows:
            grouped.setdefault(row["email"], []).append(row)
        people = []
        for email, held in grouped.items():
            latest = max(held, key=lambda r: _utc(r["granted_at"]))
            roles = frozenset(Role(r["role"]) for r in held if r["role"] in Role._value2member_map_)
            people.append(Person(email, roles, latest["granted_by"], _utc(latest["granted_at"])))
        return people

    def frame(self) -> pd.DataFrame:
        """Everyone with a role, as a table: email, roles, last changed by and when."""
        people = self.list()
        return pd.DataFrame({
            "email": [p.email for p in people],
            "roles": [", ".join(sorted(p.roles)) for p in people],
            "granted_by": [p.granted_by for p in people],
            "granted_at": [p.granted_at for p in people],
        })

    def add(self, email: str, roles: frozenset[Role] | set[Role], *, by: Actor) -> frozenset[Role]:
        """Give `email` these roles on top of any it has; returns the roles it now holds."""
        email = clean_email(email)
        return self._change(email, lambda before: before | frozenset(roles), by)

    def set_roles(self, email: str, roles: frozenset[Role] | set[Role], *, by: Actor) -> frozenset[Role]:
        """Give `email` exactly these roles."""
        email = clean_email(email)
        if not roles:
            raise ValueError("Give at least one role; to take every role away, remove the person.")
        return self._change(email, lambda _before: frozenset(roles), by)

    def remove(self, email: str, *, by: Actor) -> frozenset[Role]:
        """Take every role from `email`; returns the roles they had (none when they had none)."""
        email = clean_email(email)
        before: dict[str, frozenset[Role]] = {}

        def none(had: frozenset[Role]) -> frozenset[Role]:
            before["roles"] = had
            return frozenset()

        self._change(email, none, by)
        return before["roles"]

    def _change(self, email: str, change, by: Actor) -> frozenset[Role]:
        require(by, Action.MANAGE_PEOPLE)
        self.log.ensure_schema()
        roles_table = tables.user_roles
        now = datetime.now(UTC)
        with self.log.engine.execution_options(loandesk_write=True).begin() as conn:
            rows = conn.execute(select(roles_table.c.role).where(roles_table.c.email == email)).scalars().all()
            before = frozenset(Role(r) for r in rows if r in Role._value2member_map_)
            after = frozenset(change(before))
            if by.kind == "person" and Role.ADMIN in before and Role.ADMIN not in after:
                admins = conn.execute(select(roles_table.c.email).where(roles_table.c.role == Role.ADMIN.value)
                                      ).scalars().all()
                if set(admins) <= {email}:
                    raise AccessDenied(f"{email} is the last administrator: give someone else the admin "
                                       "role first (or use `python users.py` from a shell).")
            if after == before:
                return after
            conn.execute(delete(roles_table).where(roles_table.c.email == email))
            if after:
                conn.execute(insert(roles_table), [
                    {"email": email, "role": r.value, "granted_by": by.label, "granted_at": now}
                    for r in sorted(after)])
            conn.execute(insert(tables.role_changes).values(
                at=now, actor=by.label, actor_subject=by.subject, email=email,
                roles_before=", ".join(sorted(before)), roles_after=", ".join(sorted(after))))
        return after

    def record_sign_in(self, actor: Actor, *, issuer: str | None = None, issued_at: datetime | None = None) -> None:
        """Keep one sign-in: the email every record names, with the provider's subject and issuer, so that
        a decision recorded under an email can be tied to the provider's account behind it."""
        self.log.ensure_schema()
        with self.log.engine.execution_options(loandesk_write=True).begin() as conn:
            conn.execute(insert(tables.sign_ins).values(
                at=datetime.now(UTC), email=actor.label, subject=actor.subject,
                issuer=issuer[:200] if issuer else None, issued_at=issued_at, roles=", ".join(sorted(actor.roles))))

    def sign_ins(self, limit: int | None = None) -> pd.DataFrame:
        """Sign-ins, newest first: when, email, subject, issuer, the token's issue time, the roles held."""
        self.log.ensure_schema()
        si = tables.sign_ins
        q = select(si.c.at, si.c.email, si.c.subject, si.c.issuer, si.c.issued_at, si.c.roles).order_by(si.c.id.desc())
        if limit:
            q = q.limit(limit)
        with self.log.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(q).mappings().all(),
                                 columns=["at", "email", "subject", "issuer", "issued_at", "roles"])
        for col in ("at", "issued_at"):
            frame[col] = pd.to_datetime(frame[col], utc=True)
        return frame

    def changes(self) -> pd.DataFrame:
        """Every role change, newest first: when, who, whose roles, before and after."""
        self.log.ensure_schema()
        rc = tables.role_changes
        q = select(rc.c.at, rc.c.actor, rc.c.email, rc.c.roles_before, rc.c.roles_after).order_by(rc.c.id.desc())
        with self.log.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(q).mappings().all(),
                                 columns=["at", "actor", "email", "roles_before", "roles_after"])
        frame["at"] = pd.to_datetime(frame["at"], utc=True)
        return frame


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
