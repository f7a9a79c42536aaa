"""Who may do what: the four roles, the person acting, and the one check every core action makes.

A page hides what a role may not do, but the refusal that counts is here: the core functions that
change the model, export decisions or manage people call `require` themselves, so a page that
forgets to hide a button (or a script that skips the page) is refused all the same.
"""

from __future__ import annotations

import getpass
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum

from model.core.errors import AccessDenied, IdentityError

__all__ = ["PERMISSIONS", "ROLES", "AccessDenied", "Action", "Actor", "IdentityError", "Role", "clean_email",
           "clean_name", "demo", "parse_roles", "person", "require", "shell"]


class Role(StrEnum):
    OFFICER = "officer"  # decides on applications: Decide, Batch, Learn
    RISK = "risk"  # proposes and approves changes to the live model
    AUDITOR = "auditor"  # reads: Monitoring, the decision-log export, the change history, the Model page
    ADMIN = "admin"  # manages people and their roles, nothing about decisions


ROLES: tuple[Role, ...] = tuple(Role)


class Action(StrEnum):
    DECIDE = "decide"
    SCORE_BATCH = "score a batch"
    LEARN = "use the Learn page"
    VIEW_MODEL = "view the Model page"
    CHANGE_MODEL = "propose or approve a model change"
    VIEW_MONITORING = "view Monitoring"
    EXPORT_DECISIONS = "export decisions"
    VIEW_CHANGES = "read the model change history"
    MANAGE_PEOPLE = "manage people and roles"
    SIMULATE = "score a simulated sample"


PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.DECIDE: frozenset({Role.OFFICER}),
    Action.SCORE_BATCH: frozenset({Role.OFFICER}),
    Action.LEARN: frozenset({Role.OFFICER}),
    Action.VIEW_MODEL: frozenset({Role.RISK, Role.AUDITOR}),
    Action.CHANGE_MODEL: frozenset({Role.RISK}),
    Action.VIEW_MONITORING: frozenset({Role.AUDITOR}),
    Action.EXPORT_DECISIONS: frozenset({Role.AUDITOR}),
    Action.VIEW_CHANGES: frozenset({Role.RISK, Role.AUDITOR}),
    Action.MANAGE_PEOPLE: frozenset({Role.ADMIN}),
    Action.SIMULATE: frozenset(),  # demo data goes into the log only in demo mode
}

# A name typed in demo mode and an email from the identity provider both go into the log's
# `officer` column (200 characters); longer ones are refused up front rather than lost at write time.
MAX_NAME = 80
MAX_EMAIL = 200


@dataclass(frozen=True)
class Actor:
    """The person (or shell user) behind an action, as it goes on record.

    `kind` is "person" (signed in through the identity provider: email and subject), "demo" (no
    sign-in configured: every role, four eyes off, an optional typed name) or "shell" (someone with
    shell access to the model folder and database, named by the operating system).
    """

    name: str
    kind: str = "person"
    email: str | None = None
    subject: str | None = None
    roles: frozenset[Role] = field(default_factory=frozenset)

    @property
    def label(self) -> str:
        """How the actor is written in every record: the email, "demo" (or the typed name), os:USER."""
        if self.kind == "person":
            return self.email or self.name
        if self.kind == "shell":
            return f"os:{self.name}"
        return self.name

    @property
    def is_demo(self) -> bool:
        return self.kind == "demo"

    def may(self, action: Action) -> bool:
        if self.kind == "demo":
            return True
        if self.kind == "shell":
            return action in (Action.MANAGE_PEOPLE, Action.VIEW_CHANGES)
        return bool(self.roles & PERMISSIONS[action])


def require(actor: Actor, action: Action) -> None:
    """Raise AccessDenied unless `actor` may do `action`."""
    if actor.may(action):
        return
    allowed = sorted(PERMISSIONS[action])
    who = f"the {' or '.join(allowed)} role" if allowed else "demo mode"
    held = ", ".join(sorted(actor.roles)) or "no role"
    raise AccessDenied(f"{actor.label} ({held}) may not {action.value}: that needs {who}.")


def person(email: str, subject: str | None, name: str | None, roles: frozenset[Role] | set[Role]) -> Actor:
    """A signed-in person; the email is checked and normalised the way the roles table keeps it."""
    email = clean_email(email)
    try:
        shown = clean_name(name) if name else email
    except IdentityError:  # the display name is only shown; the email is what goes on record
        shown = email
    return Actor(name=shown, kind="person", email=email,
                 subject=(subject or None) and _checked(subject, "subject", MAX_EMAIL), roles=frozenset(roles))


def demo(name: str | None = None) -> Actor:
    """The demo actor: every role, four eyes off; `name` is the optional typed officer name."""
    typed = clean_name(name) if name and name.strip() else ""
    return Actor(name=typed or "demo", kind="demo", roles=frozenset(ROLES))


def shell(user: str | None = None) -> Actor:
    """Whoever runs a command with shell access, named by the operating system."""
    return Actor(name=clean_name(user or _os_user()), kind="shell")


def clean_name(value: str | None) -> str:
    """A typed name, trimmed; refused when empty, longer than MAX_NAME or holding control characters."""
    return _checked((value or "").strip(), "name", MAX_NAME)


def clean_email(value: str) -> str:
    """An email address as the roles table keeps it: trimmed and lower-cased."""
    email = _checked((value or "").strip(), "email", MAX_EMAIL).lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in email):
        raise IdentityError(f"{value!r} is not an email address (name@example.com).")
    return email


def parse_roles(values: list[str] | tuple[str, ...]) -> frozenset[Role]:
    """Role names as typed (any case); an unknown one is refused naming the four there are."""
    roles = set()
    for value in values:
        try:
            roles.add(Role(value.strip().lower()))
        except ValueError:
            raise IdentityError(f"{value!r} is not a role; the roles are {', '.join(ROLES)}.") from None
    return frozenset(roles)


def _checked(value: str, what: str, limit: int) -> str:
    if not value:
        raise IdentityError(f"The {what} is empty.")
    if len(value) > limit:
        raise IdentityError(f"The {what} is {len(value):,} characters long; at most {limit} are kept.")
    bad = [c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn")]
    if bad:
        raise IdentityError(f"The {what} holds a control or invisible character ({bad[0]!a}); "
                            "type it again with letters, digits and punctuation only.")
    return value


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container) and no LOGNAME/USER
        return "unknown"
