"""Who is using the app: sign-in through the bank's identity provider, or demo mode when none is set up.

With an `[auth]` section in `.streamlit/secrets.toml`, Streamlit's `st.login` signs people in by
OpenID Connect and `st.user` carries the identity token's claims; the roles come from the roles
table. Streamlit keeps its identity cookie for 30 days and never looks at the token's age, so the
session lifetime is checked here, from the token's `iat` (issued-at) claim, on every run.

Without `[auth]` the app runs in demo mode: one person, every role, four eyes off, a banner on
every page, and only on 127.0.0.1.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from model.core.config import session_hours
from model.records import access
from model.records.access import Action, Actor, IdentityError
from model.records.people import People
from ui.resources import decision_log
from ui.text import md, md_code

ACTOR_KEY = "loandesk.actor"
SIGNED_IN_KEY = "loandesk.signed_in"
OFFICER_KEY = "officer"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
README = Path(__file__).resolve().parent.parent / "README.md"
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")


def auth_section() -> dict | None:
    """The `[auth]` section of the secrets, or None when sign-in is not configured (demo mode)."""
    if not st.secrets.load_if_toml_exists():
        return None
    section = st.secrets.get("auth")
    return section.to_dict() if hasattr(section, "to_dict") else (dict(section) if section else None)


def providers(section: dict) -> list[str | None]:
    """The providers `st.login` can be called with: None for the top-level one, else each named section."""
    named = [name for name, value in section.items() if isinstance(value, dict) and name != "client_kwargs"]
    return ([None] if "client_id" in section else []) + named


def config_problems(section: dict) -> list[str]:
    """What an `[auth]` section lacks for st.login to work, for a person to fix."""
    problems = [f"`{key}`" for key in ("redirect_uri", "cookie_secret") if not section.get(key)]
    found = providers(section)
    if not found:
        problems.append("a provider: `client_id`, `client_secret` and `server_metadata_url`")
    for name in found:
        where = section if name is None else section[name]
        problems += [f"`{k}`" + (f" in [auth.{name}]" if name else "") for k in PROVIDER_KEYS if not where.get(k)]
    return problems


@dataclass(frozen=True)
class Sign:
    """The outcome of reading who is here: an actor to proceed with, or a screen to show instead."""

    actor: Actor | None
    screen: str  # demo, signed in, signed out, expired, refused, no role, misconfigured
    message: str = ""


def read_identity(section: dict | None, user: dict, now: float | None = None) -> Sign:
    """Who is here, from the `[auth]` section and `st.user`'s claims; never raises."""
    if section is None:
        return Sign(access.demo(), "demo")
    problems = config_problems(section)
    if problems:
        return Sign(None, "misconfigured", "Sign-in is set up in .streamlit/secrets.toml but lacks "
                    + ", ".join(problems) + ".")
    if not user.get("is_logged_in"):
        return Sign(None, "signed out")
    issued = user.get("iat")
    if not isinstance(issued, int | float) or isinstance(issued, bool):
        return Sign(None, "refused", "Your identity provider did not say when you signed in (no `iat` claim), "
                                     "so the age of this session cannot be checked.")
    age_hours = ((now or time.time()) - float(issued)) / 3600
    if age_hours > session_hours():
        return Sign(None, "expired", f"You signed in more than {session_hours():g} hours ago. "
                                     "Sign in again to go on.")
    email = user.get("email")
    if not email:
        return Sign(None, "refused", "Your identity provider did not send an email address, which LoanDesk "
                                     "needs to know your roles: ask your administrator to add the `email` scope.")
    if user.get("email_verified") is False:
        return Sign(None, "refused", f"Your identity provider says {email} is not verified.")
    try:
        roles = People(decision_log()).roles_of(access.clean_email(str(email)))
        actor = access.person(str(email), _text(user.get("sub")), _text(user.get("name")), roles)
    except IdentityError as exc:
        return Sign(None, "refused", f"Your identity cannot be recorded as it is: {exc}")
    except (SQLAlchemyError, OSError, RuntimeError) as exc:
        return Sign(None, "refused", f"The roles table cannot be read ({str(exc).splitlines()[0][:160]}); "
                                     "tell your administrator.")
    return Sign(actor, "signed in" if roles else "no role")


def gate() -> Actor:
    """Run at the top of every page: the actor to go on with, or the sign-in screen and nothing else."""
    section = auth_section()
    sign = read_identity(section, st.user.to_dict())
    if sign.screen == "demo":
        return _demo()
    if sign.actor is None:
        _screen(sign, section or {})
        st.stop()
    st.session_state[ACTOR_KEY] = sign.actor
    _remember_sign_in(sign.actor, st.user.to_dict())
    _sidebar(sign.actor)
    if sign.screen == "no role":
        st.title("LoanDesk")
        st.markdown(f"You are signed in as {' · '.join(_names(sign.actor))}.")
        st.info("You have no role in LoanDesk yet: ask an administrator for access.",
                icon=":material/lock:")
        st.stop()
    return sign.actor


def current() -> Actor:
    """The actor the gate let in for this run (pages call this; the gate has always run first)."""
    actor = st.session_state.get(ACTOR_KEY)
    if not isinstance(actor, Actor):
        st.error("Nobody is signed in.")
        st.stop()
    return actor


def four_eyes() -> bool:
    """Four eyes is on whenever sign-in is configured; demo mode is one person."""
    return auth_section() is not None


def refuse_unless(action: Action) -> Actor:
    """The current actor, or a refusal on the page and nothing more of it."""
    actor = current()
    if not actor.may(action):
        st.error(f"You may not {action.value}.")
        st.stop()
    return actor


def _demo() -> Actor:
    address = st.get_option("server.address")
    st.warning("**Demo mode**: no sign-in is configured, so anyone who can open this page can decide, export "
               "the decision log and change the live model, and four eyes is off. Configure sign-in for real "
               "use (README, *Sign-in*).", icon=":material/warning:")
    with st.expander("How to configure sign-in"):
        st.markdown(readme_section("Sign-in"))
    if address not in LOOPBACK:
        st.error(f"Demo mode answers on 127.0.0.1 only, but this server listens on {address or 'every interface'}. "
                 "Configure sign-in (README, *Sign-in*) before serving LoanDesk to other machines.")
        st.stop()
    typed = st.session_state.get(OFFICER_KEY) or ""
    try:
        actor = access.demo(typed)
    except IdentityError as exc:
        actor = access.demo()
        problem = f"The officer name cannot be recorded: {exc}"
    else:
        problem = None
    st.session_state[ACTOR_KEY] = actor
    with st.sidebar:
        st.subheader("Who is deciding")
        st.text_input("Officer name", key=OFFICER_KEY, max_chars=access.MAX_NAME,
                      placeholder="Your name, for the decision log",
                      help="Demo mode only: recorded with every decision you make in this session. "
                           "With sign-in configured, your signed-in email is recorded instead.")
        if problem:
            st.error(problem)
    if problem:
        st.error(f"{problem} Correct it in the sidebar; nothing is decided or recorded until then.")
        st.stop()
    return actor


def _remember_sign_in(actor: Actor, user: dict) -> None:
    """Record a sign-in once per session and token: the email every record names, with its subject."""
    token = (actor.label, user.get("iat"))
    if st.session_state.get(SIGNED_IN_KEY) == token:
        return
    issued = user.get("iat")
    try:
        People(decision_log()).record_sign_in(
            actor, issuer=_text(user.get("iss")),
            issued_at=datetime.fromtimestamp(float(issued), UTC) if isinstance(issued, int | float) else None)
    except (SQLAlchemyError, OSError) as exc:
        st.sidebar.warning(f"This sign-in could not be recorded ({str(exc).splitlines()[0][:120]}).")
        return
    st.session_state[SIGNED_IN_KEY] = token


def _sidebar(actor: Actor) -> None:
    with st.sidebar:
        st.subheader("Signed in")
        roles = ", ".join(sorted(actor.roles)) or "no role"
        st.markdown("  \n".join([*_names(actor), f"Roles: {roles}"]))
        if st.button("Sign out", icon=":material/logout:", key="identity.sign_out", width="stretch"):
            st.session_state.pop(ACTOR_KEY, None)
            st.logout()


def _names(actor: Actor) -> list[str]:
    """The display name (bold) and the email (inline code), as markdown; a name that is an address
    (some providers send the email as the name) is shown once, as code, so that no mailto link is made."""
    email = code(actor.email or "")
    if not actor.name or actor.name == actor.email or "@" in actor.name:
        return [f"**{email}**"] if actor.name == actor.email else [f"**{code(actor.name)}**", email]
    return [f"**{plain(actor.name)}**", email]


def _screen(sign: Sign, section: dict) -> None:
    """The only thing shown before someone is let in."""
    st.title("LoanDesk")
    if sign.screen == "misconfigured":
        st.error(sign.message + " Nobody can sign in until it is complete (README, *Sign-in*).")
        return
    if sign.screen == "signed out":
        st.markdown("Sign in with your bank account to continue.")
    elif sign.screen == "expired":
        st.info(sign.message, icon=":material/schedule:")
    else:
        st.error(sign.message)
    for provider in providers(section):
        label = "Sign in" if provider is None else f"Sign in with {provider.replace('-', ' ').title()}"
        if st.button(label, type="primary", key=f"identity.sign_in.{provider or 'default'}",
                     icon=":material/login:"):
            st.login(provider) if provider else st.login()
    signed_in = sign.screen in ("expired", "refused") and st.user.get("is_logged_in")
    if signed_in and st.button("Sign out", key="identity.sign_out_screen"):
        st.logout()


def readme_section(title: str) -> str:
    """One `## title` section of README.md, for the demo banner's instructions."""
    try:
        text = README.read_text(encoding="utf-8")
    except OSError:
        return "See README.md beside the app."
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    return found.group(1).strip() if found else "See README.md beside the app."


def plain(text: str) -> str:
    """Text from the identity provider, shown as itself (ui.text.md: markdown escaped, no link)."""
    return md(text)


def code(text: str) -> str:
    """An email or other identifier as inline code (ui.text.md_code): nothing inside is markdown and
    no mailto link is made of it, while a copy of it is exactly the address (no invisible joiner)."""
    return md_code(text)


def _text(value) -> str | None:
    return str(value) if value not in (None, "") else None
