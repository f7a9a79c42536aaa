"""Four eyes on the live model, in the core: proposals, approvals by another risk user, history."""

from __future__ import annotations

import threading

import pytest

from model.records import access
from model.records.access import AccessDenied, Role
from model.records.changes import ChangeError
from model.records.log import DecisionLog
from model.registry.store import active_version, list_versions, load_model
from model.training.changes import activate_from_shell, model_changes

WHY = "Bad-loan rate too high in Q3 review"


def _risk(name: str) -> access.Actor:
    return access.person(f"{name}@bank.example", f"sub-{name}", name.title(), {Role.RISK})


@pytest.fixture
def desk(registry, log_url):
    return model_changes(DecisionLog(log_url), registry)


def test_a_threshold_takes_effect_only_when_another_risk_user_approves(desk, registry):
    before = active_version(registry)
    proposal = desk.propose_threshold(_risk("rita"), before, 0.62, WHY)
    assert proposal.status == "pending" and active_version(registry) == before
    assert [p.id for p in desk.pending()] == [proposal.id]
    approved = desk.approve(_risk("sam"), proposal.id, note="Agreed in the risk committee")
    assert approved.status == "approved" and approved.closed_by == "sam@bank.example"
    now = active_version(registry)
    assert now == approved.result_version != before
    assert load_model(registry).threshold == pytest.approx(0.62)
    history = desk.history()
    assert list(history["action"]) == ["approved", "proposed"]
    assert list(history["actor"]) == ["sam@bank.example", "rita@bank.example"]
    assert history["note"].iloc[1] == WHY
    assert history["to_threshold"].iloc[0] == pytest.approx(0.62)
    assert history["from_threshold"].iloc[0] == pytest.approx(0.5)
    assert desk.pending() == []


def test_the_proposer_cannot_approve_their_own_proposal(desk, registry):
    before = active_version(registry)
    proposal = desk.propose_threshold(_risk("rita"), before, 0.62, WHY)
    with pytest.raises(AccessDenied, match="four eyes"):
        desk.approve(_risk("rita"), proposal.id)
    same_subject = access.person("rita.other@bank.example", "sub-rita", None, {Role.RISK})
    with pytest.raises(AccessDenied):
        desk.approve(same_subject, proposal.id)
    assert active_version(registry) == before and desk.get(proposal.id).status == "pending"


@pytest.mark.parametrize("role", [Role.OFFICER, Role.AUDITOR, Role.ADMIN])
def test_only_risk_users_may_propose_or_approve(desk, registry, role):
    other = access.person("olga@bank.example", "sub-olga", None, {role})
    with pytest.raises(AccessDenied, match="risk role"):
        desk.propose_threshold(other, active_version(registry), 0.6, WHY)
    proposal = desk.propose_threshold(_risk("rita"), active_version(registry), 0.6, WHY)
    with pytest.raises(AccessDenied, match="risk role"):
        desk.approve(other, proposal.id)
    with pytest.raises(AccessDenied):
        desk.approve(access.shell("root"), proposal.id)
    assert desk.get(proposal.id).status == "pending"


def test_a_justification_is_required(desk, registry):
    for bad in ("", "   ", "ok", "a\x00bcdefghijkl"):
        with pytest.raises(ChangeError):
            desk.propose_threshold(_risk("rita"), active_version(registry), 0.6, bad)
    assert desk.history().empty


def test_rejection_and_withdrawal_close_a_proposal_and_change_nothing(desk, registry):
    before = active_version(registry)
    first = desk.propose_threshold(_risk("rita"), before, 0.6, WHY)
    with pytest.raises(AccessDenied, match="withdraw it instead"):
        desk.reject(_risk("rita"), first.id, "Not convinced by the data")
    with pytest.raises(ChangeError, match="reason"):
        desk.reject(_risk("sam"), first.id, "")
    assert desk.reject(_risk("sam"), first.id, "Not convinced by the data").status == "rejected"
    second = desk.propose_threshold(_risk("rita"), before, 0.55, WHY)
    with pytest.raises(AccessDenied, match=r"Only rita@bank\.example"):
        desk.withdraw(_risk("sam"), second.id)
    assert desk.withdraw(_risk("rita"), second.id).status == "withdrawn"
    with pytest.raises(ChangeError, match="withdrawn by rita"):
        desk.approve(_risk("sam"), second.id)
    assert active_version(registry) == before
    assert list(desk.history()["action"]) == ["withdrawn", "proposed", "rejected", "proposed"]


def test_a_rollback_is_proposed_and_approved_like_any_change(desk, registry):
    first = active_version(registry)
    newer = desk.approve(_risk("sam"), desk.propose_threshold(_risk("rita"), first, 0.6, WHY).id).result_version
    rollback = desk.propose_activation(_risk("rita"), first, "Back to the version the committee signed off")
    assert rollback.kind == "rollback" and rollback.from_version == newer and rollback.to_version == first
    desk.approve(_risk("sam"), rollback.id)
    assert active_version(registry) == first
    assert "roll back" in rollback.summary


def test_a_stale_proposal_cannot_be_approved(desk, registry):
    first = active_version(registry)
    a = desk.propose_threshold(_risk("rita"), first, 0.6, WHY)
    b = desk.propose_threshold(_risk("rita"), first, 0.4, WHY)
    desk.approve(_risk("sam"), a.id)
    with pytest.raises(ChangeError, match="active version has changed"):
        desk.approve(_risk("sam"), b.id)
    assert load_model(registry).threshold == pytest.approx(0.6)


def test_two_simultaneous_approvals_make_one_change(desk, registry):
    proposal = desk.propose_threshold(_risk("rita"), active_version(registry), 0.6, WHY)
    outcomes = []

    def approve(name):
        try:
            outcomes.append(desk.approve(_risk(name), proposal.id).status)
        except ChangeError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=approve, args=(n,)) for n in ("sam", "tom")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("approved") == 1
    assert len(list_versions(registry)) == 2
    assert list(desk.history()["action"]).count("approved") == 1


def test_a_failed_change_on_disk_leaves_the_proposal_pending(desk, registry, monkeypatch):
    proposal = desk.propose_threshold(_risk("rita"), active_version(registry), 0.6, WHY)
    desk.apply = lambda p: (_ for _ in ()).throw(OSError("disk full"))
    with pytest.raises(OSError):
        desk.approve(_risk("sam"), proposal.id)
    assert desk.get(proposal.id).status == "pending"
    assert list(desk.history()["action"]) == ["proposed"]


def test_demo_mode_applies_a_proposal_at_once_and_says_so(registry, log_url):
    desk = model_changes(DecisionLog(log_url), registry, four_eyes=False)
    proposal = desk.propose_threshold(access.demo(), active_version(registry), 0.6, WHY)
    assert proposal.status == "approved" and proposal.closed_by == "demo"
    assert load_model(registry).threshold == pytest.approx(0.6)
    assert "four eyes off" in desk.history()["note"].iloc[0]


def test_a_shell_activation_is_recorded_with_the_os_user(registry, log_url):
    log = DecisionLog(log_url)
    desk = model_changes(log, registry)
    first = active_version(registry)
    second = desk.approve(_risk("sam"), desk.propose_threshold(_risk("rita"), first, 0.6, WHY).id).result_version
    assert activate_from_shell(log, registry, first, access.shell("alice")) == second
    assert active_version(registry) == first
    row = desk.history().iloc[0]
    assert (row["action"], row["actor"], row["from_version"], row["to_version"]) == ("activated", "os:alice",
                                                                                      second, first)
    with pytest.raises(Exception, match="not a version name"):
        activate_from_shell(log, registry, "nope", access.shell("alice"))
    assert len(desk.history()) == 3
