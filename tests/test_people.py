"""The roles table: add, set, remove, list; only an admin (or a shell user) may change it; every change kept."""

from __future__ import annotations

import pytest

from model.records import access
from model.records.access import AccessDenied, Role
from model.records.log import DecisionLog
from model.records.people import People

SHELL = access.shell("root")


@pytest.fixture
def people(log_url) -> People:
    return People(DecisionLog(log_url))


def _admin(email="boss@bank.example"):
    return access.person(email, "sub-" + email, None, {Role.ADMIN})


def test_roles_are_added_set_and_removed_and_listed(people):
    assert people.add("Ann@Bank.example", {Role.OFFICER}, by=SHELL) == {Role.OFFICER}
    assert people.add("ann@bank.example", {Role.AUDITOR}, by=SHELL) == {Role.OFFICER, Role.AUDITOR}
    assert people.roles_of("ANN@bank.example") == {Role.OFFICER, Role.AUDITOR}
    assert people.set_roles("ann@bank.example", {Role.RISK}, by=SHELL) == {Role.RISK}
    people.add("bob@bank.example", {Role.ADMIN}, by=SHELL)
    listed = {p.email: p.roles for p in people.list()}
    assert listed == {"ann@bank.example": {Role.RISK}, "bob@bank.example": {Role.ADMIN}}
    assert people.remove("ann@bank.example", by=SHELL) == {Role.RISK}
    assert people.roles_of("ann@bank.example") == frozenset()
    changes = people.changes()
    assert changes["actor"].eq("os:root").all()
    assert list(changes["roles_after"])[:2] == ["", "admin"]
    assert len(changes) == 5


@pytest.mark.parametrize("role", [Role.OFFICER, Role.RISK, Role.AUDITOR])
def test_only_an_admin_may_change_roles(people, role):
    someone = access.person("eve@bank.example", "sub-eve", None, {role})
    with pytest.raises(AccessDenied, match="manage people"):
        people.add("eve@bank.example", {Role.ADMIN}, by=someone)
    assert people.roles_of("eve@bank.example") == frozenset()


def test_an_admin_changes_roles_and_is_named_in_the_record(people):
    people.add("boss@bank.example", {Role.ADMIN}, by=SHELL)
    people.add("ann@bank.example", {Role.OFFICER}, by=_admin())
    assert people.list()[0].granted_by == "boss@bank.example"
    assert people.changes()["actor"].iloc[0] == "boss@bank.example"


def test_the_last_admin_cannot_remove_their_own_role_from_the_page(people):
    people.add("boss@bank.example", {Role.ADMIN}, by=SHELL)
    with pytest.raises(AccessDenied, match="last administrator"):
        people.remove("boss@bank.example", by=_admin())
    people.add("second@bank.example", {Role.ADMIN}, by=SHELL)
    people.set_roles("boss@bank.example", {Role.OFFICER}, by=_admin())
    assert people.roles_of("boss@bank.example") == {Role.OFFICER}


def test_setting_no_role_is_refused_and_a_bad_email_is_named(people):
    with pytest.raises(ValueError, match="at least one role"):
        people.set_roles("ann@bank.example", set(), by=SHELL)
    with pytest.raises(ValueError, match="not an email"):
        people.add("ann", {Role.OFFICER}, by=SHELL)
