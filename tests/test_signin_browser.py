"""Sign-in for real: Chromium, `streamlit run`, a real OpenID Connect provider and `serve.py`, all on 127.0.0.1.

The provider is `oidc-provider-mock` (PyPI), started by the test as a subprocess on a free port:
its login form takes any subject, and the email claim is the subject. Two risk users sign in in
turn, one proposes a threshold, the other approves it, the REST API then serves it, and an
officer's decision carries the signed-in email in the decision log. The demo-mode test checks
that no request leaves 127.0.0.1 (the page icon included).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from model.records import access
from model.records.access import Role
from model.records.log import DecisionLog
from model.records.people import People
from model.registry.store import active_version, load_model
from model.training.changes import model_changes

from .conftest import EXAMPLE, ROOT
from .e2e import StreamlitServer, chromium, free_port, require_chromium, wait_for_app
from .test_api_server import Server

pytestmark = pytest.mark.browser

require_chromium()

RISK = ("rita@bank.example", "sam@bank.example")
OFFICER = "olga@bank.example"
LOCAL = {"127.0.0.1", "localhost"}


@contextlib.contextmanager
def oidc_provider():
    """`python -m oidc_provider_mock` on a free port of 127.0.0.1, until the block ends; yields its URL."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"oidc-provider-mock exited:\n{process.stdout.read()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(
                    f"{url}/.well-known/openid-configuration", timeout=2) as answer:
                if json.load(answer)["issuer"]:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("oidc-provider-mock did not answer within 60 s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _external_requests(page, provider: str | None = None) -> list[str]:
    """Refuse, and list, every request to a host other than 127.0.0.1 made while on a page that is not
    the identity provider's own login form (which asks a CDN for its stylesheet)."""
    seen: list[str] = []

    def route(r):
        host = urlparse(r.request.url).hostname
        if host in LOCAL or r.request.url.startswith(("data:", "blob:")):
            return r.continue_()
        frame = r.request.frame.url if r.request.frame else ""
        if not (provider and frame.startswith(provider)):
            seen.append(f"{r.request.url} (from {frame})")
        return r.abort()

    page.route("**/*", route)
    return seen


def _sign_in(browser, app_url: str, provider: str, email: str, shots: Path | None = None):
    """A fresh browser (no cookies) signs `email` in through the provider's login form."""
    context = browser.new_context(viewport={"width": 1400, "height": 2400})
    page = context.new_page()
    outside = _external_requests(page, provider)
    page.goto(app_url)
    wait_for_app(page)
    if shots:
        page.screenshot(path=str(shots / "signin-1-signed-out.png"))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{provider}/**", timeout=60_000)
    page.locator("input[name='sub']").fill(email)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{app_url}/**", timeout=60_000)
    wait_for_app(page)
    page.locator("[data-testid='stSidebar']").get_by_text(email).first.wait_for(timeout=60_000)
    return context, page, outside


def _open(page, title: str, heading: str) -> None:
    """Open a page from the menu (a role's first page is the app's home, so it has no path of its own;
    with one page there is no menu at all)."""
    link = page.locator("[data-testid='stSidebarNav']").get_by_role("link", name=title)
    if link.count():
        link.click()
    wait_for_app(page)
    page.get_by_role("heading", name=heading, exact=True).first.wait_for(timeout=60_000)


@pytest.fixture
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def signed_in_app(registry, tmp_path):
    """The app with sign-in configured against a real provider, the REST API on the same model and log."""
    db_url = f"sqlite:///{tmp_path / 'decisions.db'}"
    people = People(DecisionLog(db_url))
    shell = access.shell("setup")
    for email in RISK:
        people.add(email, {Role.RISK}, by=shell)
    people.add(OFFICER, {Role.OFFICER}, by=shell)
    with oidc_provider() as provider:
        app_port = free_port()
        secrets = tmp_path / "secrets.toml"
        secrets.write_text(
            "[auth]\n"
            f'redirect_uri = "http://127.0.0.1:{app_port}/oauth2callback"\n'
            'cookie_secret = "a-long-random-secret-for-this-test-only"\n'
            'client_id = "loandesk"\n'
            'client_secret = "any-secret-the-mock-takes"\n'
            f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n', encoding="utf-8")
        env = {"LOANDESK_MODEL_DIR": str(registry), "LOANDESK_DB_URL": db_url}
        api = Server(registry, tmp_path, db_url)
        key = api.new_key("origination")
        api.start()
        try:
            with StreamlitServer(ROOT / "streamlit_app.py", env, port=app_port,
                                 args=["--secrets.files", str(secrets)]) as app:
                app.provider, app.api, app.key, app.db_url = provider, api, key, db_url
                yield app
        finally:
            api.kill()


def _api_threshold(api: Server, key: str) -> float:
    body = json.dumps(EXAMPLE).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{api.port}/v1/decisions", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)["threshold"]


def test_two_risk_users_change_the_threshold_with_four_eyes_and_the_api_serves_it(
        signed_in_app, browser, registry, output_dir):
    app = signed_in_app
    before = active_version(registry)
    assert _api_threshold(app.api, app.key) == 0.5

    # Rita signs in and proposes 60%.
    context, page, outside = _sign_in(browser, app.url, app.provider, RISK[0], shots=output_dir)
    _open(page, "Model", "Model")
    thumb = page.get_by_role("slider").first
    thumb.wait_for(timeout=60_000)
    thumb.focus()
    for _ in range(20):  # half a point a step: 50% -> 60%
        page.keyboard.press("ArrowRight")
    wait_for_app(page)
    expect(thumb).to_have_attribute("aria-valuetext", "60.0%", timeout=30_000)
    page.get_by_label("Justification (required, kept in the model change history)").first.fill(
        "Losses above plan for two quarters")
    page.keyboard.press("Control+Enter")
    page.get_by_role("button", name="Propose this threshold").click()
    page.get_by_text("It takes effect when another person with the risk role approves it").wait_for(timeout=60_000)
    page.screenshot(path=str(output_dir / "signin-2-proposed.png"), full_page=True)
    assert active_version(registry) == before
    [pending] = model_changes(DecisionLog(app.db_url), registry).pending()
    assert pending.proposed_by == RISK[0] and pending.to_threshold == pytest.approx(0.6)
    assert page.get_by_role("button", name="Approve and apply").count() == 0  # never one's own
    page.get_by_role("button", name="Sign out").click()
    context.close()
    assert not outside, outside

    # Sam signs in, in turn, and approves it.
    context, page, outside = _sign_in(browser, app.url, app.provider, RISK[1])
    _open(page, "Model", "Model")
    page.get_by_text("Losses above plan for two quarters").first.wait_for(timeout=60_000)  # proposal and history
    page.get_by_role("heading", name="Proposed changes").scroll_into_view_if_needed()
    page.screenshot(path=str(output_dir / "signin-3-pending.png"))
    page.get_by_role("button", name="Approve and apply").click()
    page.get_by_text("now active").first.wait_for(timeout=60_000)
    page.screenshot(path=str(output_dir / "signin-3-approved.png"), full_page=True)
    context.close()
    assert not outside, outside
    assert active_version(registry) != before and load_model(registry).threshold == pytest.approx(0.6)
    history = model_changes(DecisionLog(app.db_url), registry).history()
    assert list(history["action"]) == ["approved", "proposed"]
    assert list(history["actor"]) == [RISK[1], RISK[0]]
    assert history["actor_subject"].tolist() == [RISK[1], RISK[0]]  # the mock's subject is the typed name

    deadline = time.monotonic() + 30  # replicas pick up a new active version within a second
    while _api_threshold(app.api, app.key) != pytest.approx(0.6):
        assert time.monotonic() < deadline, "the API still serves the old threshold"
        time.sleep(0.2)

    # An officer's decision carries the signed-in email.
    context, page, outside = _sign_in(browser, app.url, app.provider, OFFICER)
    assert page.get_by_role("link", name="Model").count() == 0  # not an officer's page
    page.get_by_role("button", name="Decide").click()
    page.locator(".loandesk-decision").wait_for(timeout=60_000)
    page.screenshot(path=str(output_dir / "signin-4-officer.png"), full_page=True)
    context.close()
    assert not outside, outside
    logged = DecisionLog(app.db_url).read()
    form = logged[logged["source"] == "form"]
    assert list(form["officer"]) == [OFFICER]
    assert form["threshold"].iloc[0] == pytest.approx(0.6)


def test_demo_mode_makes_no_request_beyond_127_0_0_1_and_its_icon_is_local(registry, tmp_path, browser, output_dir):
    env = {"LOANDESK_MODEL_DIR": str(registry), "LOANDESK_DB_URL": f"sqlite:///{tmp_path / 'decisions.db'}",
           "HOME": str(tmp_path)}  # no ~/.streamlit/secrets.toml: demo mode
    with StreamlitServer(ROOT / "streamlit_app.py", env) as app:
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        outside = _external_requests(page)
        for path, heading in (("", "Decide on an application"), ("batch", "Score a batch of applicants"),
                              ("model", "Model"), ("monitoring", "Monitoring"),
                              ("learn", "Learn: from a trained model to a trustworthy decision"),
                              ("people", "People and roles")):
            page.goto(f"{app.url}/{path}")
            wait_for_app(page)
            page.get_by_role("heading", name=heading, exact=True).first.wait_for(timeout=60_000)
            page.get_by_text("Demo mode").first.wait_for(timeout=30_000)
        page.screenshot(path=str(output_dir / "demo-banner.png"), full_page=True)
        icon = page.evaluate("() => [...document.querySelectorAll(\"link[rel*='icon']\")].map(l => l.href)")
        page.close()
    assert icon and all(urlparse(u).hostname in LOCAL or u.startswith("data:") for u in icon), icon
    assert not outside, outside
