"""The real app in a real browser: `streamlit run` on localhost, driven by headless Chromium."""

from __future__ import annotations

import pytest

from model.registry.store import load_model

from .conftest import EXAMPLE, ROOT
from .e2e import StreamlitServer, chromium, require_chromium, wait_for_app

pytestmark = pytest.mark.browser

require_chromium()


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    import shutil

    folder = tmp_path_factory.mktemp("browser")
    registry = folder / "loan_approval_model"
    shutil.copytree(trained, registry)
    env = {"LOANDESK_MODEL_DIR": str(registry), "LOANDESK_DB_URL": f"sqlite:///{folder / 'decisions.db'}"}
    with StreamlitServer(ROOT / "streamlit_app.py", env) as running:
        running.registry = registry
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def test_a_deep_link_on_a_fresh_server_opens_the_page_inside_the_app(server, browser):
    """The first request of this module's server: a bookmark straight to a page keeps the app's
    navigation and sidebar (a folder named pages/ once broke this)."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{server.url}/monitoring")
    wait_for_app(page)
    page.get_by_role("heading", name="Monitoring").wait_for(timeout=60_000)
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_text("Model in use").wait_for(timeout=60_000)
    assert "Decide" in sidebar.inner_text() and "streamlit app" not in sidebar.inner_text()
    page.close()


def _decision(page) -> str:
    return page.locator(".loandesk-decision").inner_text(timeout=60_000).strip()


def test_an_officer_fills_the_form_and_sees_the_decision_and_chart(server, browser, output_dir):
    model = load_model(server.registry)
    applicant = {**EXAMPLE, "income": 31_000, "credit_score": 610}
    expected = "Approved" if model.predict(applicant)[0] else "Rejected"

    page = browser.new_page(viewport={"width": 1400, "height": 2300})
    page.goto(server.url)
    wait_for_app(page)
    page.get_by_text("Decide on an application").wait_for()
    page.get_by_role("spinbutton", name="Annual income ($)").fill(str(applicant["income"]))
    page.get_by_role("spinbutton", name="Credit score (points)").fill(str(applicant["credit_score"]))
    page.get_by_role("button", name="Decide").click()

    assert _decision(page) == expected
    page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").nth(2).wait_for(timeout=60_000)
    assert page.locator("[data-testid='stPlotlyChart']").count() == 3
    curve_x = page.evaluate("() => document.querySelectorAll('.js-plotly-plot')[1].layout.xaxis.title.text")
    assert curve_x == "Annual income ($)"
    marked = page.evaluate("() => document.querySelectorAll('.js-plotly-plot')[1].data[1].x[0]")
    assert marked == applicant["income"]
    body = page.locator("[data-testid='stApp']").inner_text()
    assert "Traceback" not in body
    assert "Principal reasons" in body or "What supports approval" in body
    page.screenshot(path=str(output_dir / "browser-decide.png"), full_page=True)
    page.close()


def test_invalid_input_is_explained_not_crashed(server, browser, output_dir):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(server.url)
    wait_for_app(page)
    page.get_by_role("spinbutton", name="Age (years)").fill("30")
    page.get_by_role("spinbutton", name="Employment length (years)").fill("25")
    page.get_by_role("button", name="Decide").click()
    page.get_by_text("Please correct the highlighted field").wait_for(timeout=60_000)
    page.get_by_text("must be at most age − 14", exact=False).wait_for(timeout=60_000)  # streamed after the header
    body = page.locator("[data-testid='stApp']").inner_text()
    assert "Employment length" in body and "age − 14" in body
    assert "Traceback" not in body
    assert page.locator(".loandesk-decision").count() == 0
    page.screenshot(path=str(output_dir / "browser-invalid.png"), full_page=True)
    page.close()


def test_monitoring_measures_simulated_outcomes_in_the_browser(server, browser, output_dir):
    page = browser.new_page(viewport={"width": 1400, "height": 3200})
    page.goto(f"{server.url}/monitoring")
    wait_for_app(page, timeout_ms=180_000)
    page.get_by_role("button", name="Score a simulated sample").click()
    page.get_by_text("simulated decisions scored").wait_for(timeout=180_000)
    wait_for_app(page, timeout_ms=180_000)
    page.get_by_role("button", name="Simulate outcomes").click()
    page.get_by_text("simulated outcomes drawn").wait_for(timeout=180_000)
    wait_for_app(page, timeout_ms=180_000)
    page.get_by_text("Realized AUC", exact=True).first.wait_for(timeout=180_000)
    body = page.locator("[data-testid='stApp']").inner_text()
    assert "Traceback" not in body and "Loans with an outcome" in body
    page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").nth(9).wait_for(timeout=180_000)  # drawn late
    assert page.locator("[data-testid='stPlotlyChart']").count() >= 10
    page.screenshot(path=str(output_dir / "browser-monitoring.png"), full_page=True)
    page.close()
