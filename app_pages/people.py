"""People: who may use LoanDesk and with which roles (the admin role; `python users.py` does the same)."""

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from model.records.access import ROLES, AccessDenied, Action, IdentityError
from model.records.people import People
from ui.identity import auth_section, code, plain, refuse_unless
from ui.resources import decision_log

ROLE_HELP = {"officer": "Decide, Batch, Learn", "risk": "the Model page's controls: propose and approve changes",
             "auditor": "Monitoring, the decision-log export, the change history; the Model page read-only",
             "admin": "this page: people and roles"}

actor = refuse_unless(Action.MANAGE_PEOPLE)
people = People(decision_log())


def change(what) -> None:
    """Make a change (`what` returns the confirmation) and rerun, or say why nothing changed."""
    try:
        st.session_state["people.notice"] = what()
    except (IdentityError, AccessDenied, ValueError, SQLAlchemyError) as exc:
        st.error(f"Nothing was changed: {plain(str(exc))}")
        return
    st.rerun()


def add(email: str, roles: list[str]) -> str:
    if not roles:
        raise ValueError("Choose at least one role.")
    held = people.add(email, set(roles), by=actor)
    return f"{email.strip().lower()} now has: {', '.join(sorted(held))}."


def save(email: str, roles: list[str]) -> str:
    if not roles:
        return remove(email)
    return f"{email} now has: {', '.join(sorted(people.set_roles(email, set(roles), by=actor)))}."


def remove(email: str) -> str:
    had = people.remove(email, by=actor)
    return f"{email} removed (had {', '.join(sorted(had)) or 'no role'})."


st.title("People and roles")
st.caption("A person is the email address their identity provider signs them in with. "
           + "; ".join(f"**{r}**: {ROLE_HELP[r]}" for r in ROLES) + ". Someone with no role sees nothing.")
if auth_section() is None:
    st.info("Demo mode: roles take effect once sign-in is configured.", icon=":material/info:")
if notice := st.session_state.pop("people.notice", None):
    st.success(plain(notice), icon=":material/check_circle:")

with st.form("people.add", clear_on_submit=True, border=True):
    st.markdown("**Give someone roles**")
    left, right = st.columns([3, 2])
    email = left.text_input("Email", max_chars=200, placeholder="name@bank.example")
    roles = right.multiselect("Roles", list(ROLES), placeholder="Choose one or more")
    if st.form_submit_button("Add", type="primary"):
        change(lambda: add(email, roles))

listed = people.list()
st.header(f"{len(listed):,} {'person' if len(listed) == 1 else 'people'} with a role")
for person in listed:
    with st.container(border=True):
        left, middle, right = st.columns([3, 3, 1], vertical_alignment="bottom")
        left.markdown(f"**{code(person.email)}**")
        left.caption(f"Last changed by {code(person.granted_by)}, {person.granted_at:%d %b %Y, %H:%M} UTC")
        chosen = middle.multiselect("Roles", list(ROLES), default=sorted(person.roles),
                                    key=f"people.roles.{person.email}")
        if set(chosen) != set(person.roles) and middle.button("Save roles", key=f"people.save.{person.email}"):
            change(lambda p=person, c=chosen: save(p.email, c))
        if right.button("Remove", key=f"people.remove.{person.email}", width="stretch"):
            change(lambda p=person: remove(p.email))

st.header("Role changes")
history = people.changes()
if history.empty:
    st.caption("No change yet.")
else:
    st.dataframe(history.assign(at=history["at"].dt.strftime("%d %b %Y, %H:%M")).rename(columns={
        "at": "When (UTC)", "actor": "By", "email": "Person", "roles_before": "Roles before",
        "roles_after": "Roles after"}), hide_index=True)
