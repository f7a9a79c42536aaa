"""Who may do what, decided in the core: roles, the actor's label, names and emails that can be recorded."""

from __future__ import annotations

import pytest

from model.records import access
from model.records.access import PERMISSIONS, AccessDenied, Action, IdentityError, Role


def _person(*roles: Role) -> access.Actor:
    return access.person("Ann@Bank.example", "sub-ann", "Ann Example", set(roles))


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("role", list(Role))
def test_each_role_may_do_exactly_what_the_permission_table_gives_it(role, action):
    actor = _person(role)
    assert actor.may(action) is (role in PERMISSIONS[action])
    if role in PERMISSIONS[action]:
        access.require(actor, action)
    else:
        with pytest.raises(AccessDenied, match=r"ann@bank\.example"):
            access.require(actor, action)


def test_the_roles_of_the_issue():
    assert {a for a in Action if _person(Role.OFFICER).may(a)} == {Action.DECIDE, Action.SCORE_BATCH, Action.LEARN}
    assert {a for a in Action if _person(Role.RISK).may(a)} == {Action.VIEW_MODEL, Action.CHANGE_MODEL,
                                                                Action.VIEW_CHANGES}
    assert {a for a in Action if _person(Role.AUDITOR).may(a)} == {Action.VIEW_MODEL, Action.VIEW_MONITORING,
                                                                   Action.EXPORT_DECISIONS, Action.VIEW_CHANGES}
    assert {a for a in Action if _person(Role.ADMIN).may(a)} == {Action.MANAGE_PEOPLE}


def test_a_person_with_no_role_may_do_nothing_and_is_told_who_may():
    nobody = _person()
    assert not any(nobody.may(a) for a in Action)
    with pytest.raises(AccessDenied, match=r"no role.*auditor role") as caught:
        access.require(nobody, Action.EXPORT_DECISIONS)
    assert isinstance(caught.value, PermissionError)


def test_several_roles_add_up():
    both = _person(Role.OFFICER, Role.AUDITOR)
    assert both.may(Action.DECIDE) and both.may(Action.EXPORT_DECISIONS) and not both.may(Action.CHANGE_MODEL)


def test_demo_may_do_everything_and_a_shell_user_only_manages_people_and_reads_history():
    assert all(access.demo().may(a) for a in Action)
    shell = access.shell("alice")
    assert shell.label == "os:alice"
    assert {a for a in Action if shell.may(a)} == {Action.MANAGE_PEOPLE, Action.VIEW_CHANGES}


def test_a_person_is_recorded_by_their_email_lower_cased_with_their_subject():
    actor = _person(Role.OFFICER)
    assert (actor.label, actor.subject, actor.name) == ("ann@bank.example", "sub-ann", "Ann Example")


@pytest.mark.parametrize("typed", ["Chief\x00Officer", "a\u202eb", "x" * 81, "tab\there", "   "])
def test_a_typed_name_that_cannot_be_recorded_is_refused_with_a_message(typed):
    with pytest.raises(IdentityError) as caught:
        access.demo(typed) if typed.strip() else access.clean_name(typed)
    assert str(caught.value)


def test_a_typed_name_is_trimmed_and_kept():
    assert access.demo("  Dana Officer ").label == "Dana Officer"
    assert access.demo("").label == "demo"


@pytest.mark.parametrize("bad", ["ann", "ann@", "@bank.example", "ann smith@bank.example", "a@b",
                                 "x" * 190 + "@bank.example"])
def test_malformed_emails_are_refused(bad):
    with pytest.raises(IdentityError):
        access.clean_email(bad)


def test_roles_are_parsed_in_any_case_and_an_unknown_one_names_the_four():
    assert access.parse_roles(["Officer", "RISK"]) == {Role.OFFICER, Role.RISK}
    with pytest.raises(IdentityError, match="officer, risk, auditor, admin"):
        access.parse_roles(["boss"])
