"""Every page for every role, signed out, with no role, in demo mode: what each sees and what is refused.

Signed-in runs seed `AppTest.user` with the identity token's claims (is_logged_in, email, name, sub,
iat) and `AppTest.secrets` with a complete `[auth]` section (the gate reads `st.secrets`; st.login
itself is never called here: the browser test signs in for real).
"""

from __future__ import annotations

import os
import time

import pytest

from model.records import access
from model.records.access import Role
from model.records.log import DecisionLog
from model.records.people import People
from model.registry.store import active_version, load_model
from model.training.changes import model_changes

AUTH = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "a-long-random-cookie-secret",
        "client_id": "loandesk", "client_secret": "not-used-here",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
TITLES = {  # page file -> its title
    "app_pages/decide.py": "Decide on an application",
    "app_pages/batch.py": "Score a batch of applicants",
    "app_pages/model.py": "Model",
    "app_pages/monitoring.py": "Monitoring",
    "app_pages/learn.py": "Learn: from a trained model to a trustworthy decision",
    "app_pages/people.py": "People and roles",
}
ALLOWED = {
    Role.OFFICER: {"app_pages/decide.py", "app_pages/batch.py", "app_pages/learn.py"},
    Role.RISK: {"app_pages/model.py"},
    Role.AUDITOR: {"app_pages/model.py", "app_pages/monitoring.py"},
    Role.ADMIN: {"app_pages/people.py"},
}
SHELL = access.shell("test")


def _log() -> DecisionLog:
    return DecisionLog(os.environ["LOANDESK_DB_URL"])


def sign_in(app, who: str, *roles: Role, issued: float | None = None, **claims):
    """The app as `who` (an email) sees it, signed in `issued` seconds since the epoch (now by default);
    `claims` replace the identity token's (email=None leaves the email out)."""
    if roles:
        People(_log()).set_roles(who, set(roles), by=SHELL)
    app.secrets["auth"] = dict(AUTH)
    app.user = {"is_logged_in": True, "email": who, "name": who.split("@")[0].title(), "sub": f"sub-{who}",
                "iat": int(time.time() if issued is None else issued)}
    app.user.update(claims)
    app.user = {k: v for k, v in app.user.items() if v is not None}
    return app


def _titles(at) -> list[str]:
    return [t.value for t in at.title]


def _reached(at, page: str) -> list[str]:
    """The titles shown after asking for `page` (a deep link): the gate's screen, whatever the page."""
    try:
        at.switch_page(page)
    except ValueError:  # not registered at all
        return _titles(at)
    return _titles(at.run())


def _text(at) -> str:
    """Everything written on the page, markdown escapes removed."""
    return " ".join(e.value for kind in ("markdown", "info", "error", "warning", "caption")
                    for e in getattr(at, kind)).replace("\\", "").replace("`", "")


@pytest.mark.parametrize("page", list(TITLES))
@pytest.mark.parametrize("role", list(Role))
def test_each_role_opens_exactly_its_pages(app, role, page):
    at = sign_in(app, f"{role.value}@bank.example", role).run()
    assert not at.exception
    if page in ALLOWED[role]:
        at.switch_page(page).run()
        assert not at.exception, at.exception
        assert TITLES[page] in _titles(at)
        assert not any("may not" in e.value for e in at.error)
    else:  # never registered with st.navigation: neither the menu nor a deep link reaches it
        assert TITLES[page] not in _titles(at)
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)


@pytest.mark.parametrize("role", list(Role))
def test_the_sidebar_says_who_is_signed_in_with_a_sign_out_and_no_officer_field(app, role):
    at = sign_in(app, f"{role.value}@bank.example", role).run()
    sidebar = " ".join(m.value for m in at.sidebar.markdown).replace("\\", "").replace("`", "")  # as text
    assert f"{role.value}@bank.example" in sidebar and f"Roles: {role.value}" in sidebar
    assert at.button(key="identity.sign_out").label == "Sign out"
    assert not [t for t in at.text_input if t.label == "Officer name"]
    assert not any("Demo mode" in w.value for w in at.warning)


def test_a_sign_in_is_recorded_once_per_session_with_email_subject_and_issuer(app):
    at = sign_in(app, "officer@bank.example", Role.OFFICER, iss="https://idp.bank.example").run()
    at.run()
    at.switch_page("app_pages/batch.py").run()
    signed = People(_log()).sign_ins()
    assert len(signed) == 1
    row = signed.iloc[0]
    assert (row["email"], row["subject"], row["issuer"], row["roles"]) == (
        "officer@bank.example", "sub-officer@bank.example", "https://idp.bank.example", "officer")


def test_several_roles_add_up_to_the_union_of_their_pages(app):
    at = sign_in(app, "both@bank.example", Role.OFFICER, Role.AUDITOR).run()
    for page in ALLOWED[Role.OFFICER] | ALLOWED[Role.AUDITOR]:
        at.switch_page(page).run()
        assert TITLES[page] in _titles(at)


def test_signed_out_shows_only_the_sign_in_screen(app):
    app.secrets["auth"] = dict(AUTH)
    app.user = {"is_logged_in": False}
    at = app.run()
    assert not at.exception
    assert _titles(at) == ["LoanDesk"]
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.sidebar.markdown and not at.get("plotly_chart") and not at.text_input
    for page in TITLES:
        assert _reached(at, page) == ["LoanDesk"]


def test_a_person_with_no_role_sees_who_they_are_and_nothing_else(app):
    at = sign_in(app, "newcomer@bank.example").run()
    assert not at.exception
    assert "newcomer@bank.example" in _text(at)
    assert any("ask an administrator for access" in i.value for i in at.info)
    assert _titles(at) == ["LoanDesk"]
    assert [b.label for b in at.button] == ["Sign out"]
    for page in TITLES:
        assert _reached(at, page) == ["LoanDesk"]


def test_a_session_older_than_its_lifetime_must_sign_in_again(app, monkeypatch):
    at = sign_in(app, "officer@bank.example", Role.OFFICER, issued=time.time() - 8.5 * 3600).run()
    assert _titles(at) == ["LoanDesk"]
    assert any("more than 8 hours ago" in i.value for i in at.info)
    assert {b.label for b in at.button} == {"Sign in", "Sign out"}
    monkeypatch.setenv("LOANDESK_SESSION_HOURS", "12")
    at = sign_in(app, "officer@bank.example", issued=time.time() - 8.5 * 3600).run()
    assert TITLES["app_pages/decide.py"] in _titles(at)


@pytest.mark.parametrize(("claims", "words"), [
    ({"iat": None}, "no `iat` claim"),
    ({"email": None}, "did not send an email address"),
    ({"email_verified": False}, "not verified"),
    ({"email": "x" * 300 + "@bank.example"}, "cannot be recorded"),
])
def test_an_identity_that_cannot_be_trusted_or_recorded_is_refused(app, claims, words):
    People(_log()).set_roles("officer@bank.example", {Role.OFFICER}, by=SHELL)
    at = sign_in(app, "officer@bank.example", **claims).run()
    assert not at.exception
    assert _titles(at) == ["LoanDesk"] and any(words in e.value for e in at.error)


def test_an_incomplete_auth_section_refuses_everyone_instead_of_falling_back_to_demo(app):
    sign_in(app, "officer@bank.example", Role.OFFICER)
    app.secrets["auth"] = {"redirect_uri": AUTH["redirect_uri"], "cookie_secret": AUTH["cookie_secret"]}
    at = app.run()
    assert _titles(at) == ["LoanDesk"]
    assert any("client_id" in e.value and "lacks" in e.value for e in at.error)
    assert not at.button


def test_sign_out_signs_out(app):
    at = sign_in(app, "officer@bank.example", Role.OFFICER).run()
    at.button(key="identity.sign_out").click().run()
    assert at.user["is_logged_in"] is False


def test_an_officers_decision_is_recorded_with_the_signed_in_email_never_a_typed_name(app):
    at = sign_in(app, "officer@bank.example", Role.OFFICER).run()
    at.button(key=next(b.key for b in at.button if b.label == "Decide")).click().run()
    assert not at.exception
    logged = _log().read()
    assert list(logged["officer"]) == ["officer@bank.example"]


def test_the_auditor_reads_the_model_page_without_any_control(app, app_env):
    desk = model_changes(_log(), app_env)
    risk = access.person("rita@bank.example", "r", None, {Role.RISK})
    desk.propose_threshold(risk, active_version(app_env), 0.6, "Quarterly risk review")
    at = sign_in(app, "auditor@bank.example", Role.AUDITOR).run()
    at.switch_page("app_pages/model.py").run()
    assert not at.exception
    keys = {b.key for b in at.button}
    assert not {k for k in keys if k and k.startswith("model.")}
    assert not at.text_area
    assert any("Quarterly risk review" in t.value for t in at.text)
    assert any("Read-only" in c.value for c in at.caption)
    assert "Proposed changes" in [h.value for h in at.header]


def test_the_monitoring_page_offers_the_auditor_the_export_and_no_simulation(app, app_env):
    from model.records.log import LogEntry

    model = load_model(app_env)  # a decision of the model in use, so that the page measures it
    assert _log().record(LogEntry(model_name=model.name, model_version=model.version, model_sha256="0" * 64,
                                  source="form", inputs={"age": 40, "income": 50_000, "credit_score": 700,
                                                         "loan_amount": 10_000, "employment_years": 5},
                                  probability=0.7, threshold=0.5, decision=1)).ok
    at = sign_in(app, "auditor@bank.example", Role.AUDITOR).run()
    at.switch_page("app_pages/monitoring.py").run()
    assert not at.exception
    assert "Realized performance" in [h.value for h in at.header]
    assert not [b for b in at.button if b.label in ("Score a simulated sample", "Simulate outcomes")]
    assert [d for d in at.get("download_button") if "Download these decisions" in d.proto.label]


def test_four_eyes_through_the_page_one_risk_user_proposes_another_approves(app, app_env):
    before = active_version(app_env)
    at = sign_in(app, "rita@bank.example", Role.RISK).run()
    at.switch_page("app_pages/model.py").run()
    assert at.button(key="model.use_threshold").label == "Propose this threshold"
    next(s for s in at.slider if s.key.startswith("model.threshold.")).set_value(60.0).run()
    at.button(key="model.use_threshold").click().run()  # no justification yet
    assert any("justification" in e.value for e in at.error) and active_version(app_env) == before
    next(t for t in at.text_area if t.key.startswith("model.why.threshold.")).input("Losses above plan in Q3")
    at.button(key="model.use_threshold").click().run()
    assert not at.exception
    assert any("proposed" in s.value and "another person" in s.value for s in at.success)
    assert active_version(app_env) == before
    [pending] = model_changes(_log(), app_env).pending()
    assert not [b for b in at.button if b.key == f"model.approve.{pending.id}"]  # not to one's own
    assert at.button(key=f"model.withdraw.{pending.id}")

    other = sign_in(type(app).from_file(app._script_path, default_timeout=120), "sam@bank.example", Role.RISK).run()
    other.switch_page("app_pages/model.py").run()
    assert any("Losses above plan in Q3" in t.value for t in other.text)
    other.button(key=f"model.approve.{pending.id}").click().run()
    assert not other.exception
    assert active_version(app_env) != before and load_model(app_env).threshold == pytest.approx(0.6)
    history = model_changes(_log(), app_env).history()
    assert list(history["actor"]) == ["sam@bank.example", "rita@bank.example"]
    assert other.dataframe[-1].value["By"].tolist() == ["sam@bank.example", "rita@bank.example"]


def test_a_risk_user_rejects_with_a_reason(app, app_env):
    desk = model_changes(_log(), app_env)
    proposal = desk.propose_threshold(access.person("rita@bank.example", "r", None, {Role.RISK}),
                                      active_version(app_env), 0.3, "Grow the book this quarter")
    at = sign_in(app, "sam@bank.example", Role.RISK).run()
    at.switch_page("app_pages/model.py").run()
    at.button(key=f"model.reject.{proposal.id}").click().run()
    assert any("reason" in e.value for e in at.error)
    at.text_input(key=f"model.note.{proposal.id}").input("Too lenient for the current cycle")
    at.button(key=f"model.reject.{proposal.id}").click().run()
    assert desk.get(proposal.id).status == "rejected"
    assert desk.get(proposal.id).note == "Too lenient for the current cycle"


def test_the_admin_gives_and_takes_roles_on_the_page(app):
    at = sign_in(app, "boss@bank.example", Role.ADMIN).run()
    at.switch_page("app_pages/people.py").run()
    form = at.get("form")[0]
    assert form
    at.text_input[0].input("New.Officer@Bank.example")
    at.multiselect[0].select("officer")
    next(b for b in at.button if b.label == "Add").click().run()
    assert not at.exception
    people = People(_log())
    assert people.roles_of("new.officer@bank.example") == {Role.OFFICER}
    at.button(key="people.remove.new.officer@bank.example").click().run()
    assert people.roles_of("new.officer@bank.example") == frozenset()
    at.button(key="people.remove.boss@bank.example").click().run()
    assert any("last administrator" in e.value for e in at.error)
    assert people.roles_of("boss@bank.example") == {Role.ADMIN}


def test_the_people_page_shows_emails_as_text_never_as_a_link_or_markup(app):
    sneaky = "[me](http://evil.example/x)@bank.example"  # a valid address that is also markdown
    People(_log()).add(sneaky, {Role.OFFICER}, by=SHELL)
    at = sign_in(app, "boss@bank.example", Role.ADMIN).run()
    at.switch_page("app_pages/people.py").run()
    [shown] = [m.value for m in at.markdown if "evil" in m.value]
    assert shown == f"**`{sneaky}`**"  # inline code: no link, no markup, and a copy is the address itself


# --- demo mode ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", list(TITLES))
def test_demo_mode_opens_every_page_under_a_banner(app, page):
    at = app.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert TITLES[page] in _titles(at)
    assert any("Demo mode" in w.value and "configure sign-in" in w.value.lower() for w in at.warning)


def test_demo_mode_keeps_the_typed_officer_name(app):
    at = app.run()
    at.text_input(key="officer").input("  Dana Officer ").run()
    at.button(key=next(b.key for b in at.button if b.label == "Decide")).click().run()
    assert list(_log().read()["officer"]) == ["Dana Officer"]


@pytest.mark.parametrize("typed", ["Chief\x00Officer", "Chief\u202eOfficer"])
def test_demo_mode_refuses_a_strange_officer_name_with_a_message_and_records_nothing(app, typed):
    at = app.run()
    at.text_input(key="officer").input(typed).run()
    assert not at.exception
    assert any("cannot be recorded" in e.value for e in at.error)
    assert not [b for b in at.button if b.label == "Decide"]
    assert _log().count() == 0


def test_the_officer_field_is_length_limited(app):
    at = app.run()
    assert at.text_input(key="officer").max_chars == access.MAX_NAME
    at.text_input(key="officer").set_value("x" * 300).run()  # Streamlit keeps the first max_chars
    at.button(key=next(b.key for b in at.button if b.label == "Decide")).click().run()
    assert list(_log().read()["officer"]) == ["x" * access.MAX_NAME]  # recorded, never a lost row


def test_demo_mode_refuses_to_serve_other_machines(app, monkeypatch):
    import streamlit

    at = app.run()
    assert streamlit.get_option("server.address") == "127.0.0.1"  # .streamlit/config.toml
    monkeypatch.setattr(streamlit, "get_option", lambda key, _get=streamlit.get_option:
                        "0.0.0.0" if key == "server.address" else _get(key))
    at = app.run()
    assert any("127.0.0.1 only" in e.value for e in at.error)
    assert not [b for b in at.button if b.label == "Decide"]


def test_the_sign_in_screen_offers_each_configured_provider(app):
    from ui.identity import config_problems, providers

    both = {"redirect_uri": AUTH["redirect_uri"], "cookie_secret": AUTH["cookie_secret"],
            "entra": {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")},
            "okta": {"client_id": "x", "client_secret": "y"}}
    assert providers(both) == ["entra", "okta"]
    assert config_problems(both) == ["`server_metadata_url` in [auth.okta]"]
    assert providers({**AUTH, "client_kwargs": {"prompt": "login"}}) == [None]
    both["okta"]["server_metadata_url"] = "http://127.0.0.1:9/okta"
    app.secrets["auth"] = both
    app.user = {"is_logged_in": False}
    at = app.run()
    assert [b.label for b in at.button] == ["Sign in with Entra", "Sign in with Okta"]
