"""In a real browser: a rejection's notice downloaded from the Decide page, and recorded as produced."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest
from pypdf import PdfReader

from model.records.log import DecisionLog
from model.records.notices import notices_for

from .conftest import ROOT
from .e2e import StreamlitServer, chromium, require_chromium, wait_for_app

pytestmark = pytest.mark.browser

require_chromium()


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser-notice")
    shutil.copytree(trained, folder / "loan_approval_model")
    env = {"LOANDESK_MODEL_DIR": str(folder / "loan_approval_model"),
           "LOANDESK_DB_URL": f"sqlite:///{folder / 'decisions.db'}"}
    with StreamlitServer(ROOT / "streamlit_app.py", env) as running:
        running.db_url = env["LOANDESK_DB_URL"]
        yield running


def test_the_notice_downloaded_beside_a_rejection_holds_its_reasons_and_is_recorded(server, output_dir):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 2600}, accept_downloads=True)
        page.goto(server.url)
        wait_for_app(page)
        page.get_by_text("Decide on an application").wait_for()
        page.get_by_role("textbox", name="Officer name").fill("Dana Whitfield")
        page.get_by_role("textbox", name="Officer name").press("Enter")
        for label, value in (("Annual income ($)", 24_000), ("Credit score (points)", 540),
                             ("Loan amount ($)", 30_000), ("Employment length (years)", 1)):
            page.get_by_role("spinbutton", name=label).fill(str(value))
        page.get_by_role("button", name="Decide").click()
        assert page.locator(".loandesk-decision").inner_text(timeout=60_000).strip() == "Rejected"
        factors = page.get_by_role("textbox", name=re.compile("Key factors that lowered"))
        factors.fill("Serious delinquency; Short history")
        factors.press("Enter")
        button = page.get_by_role("button", name="Download the adverse action notice (PDF)")
        button.wait_for(timeout=60_000)
        page.get_by_text("Override the model's decision").click()
        page.get_by_role("button", name="Record the final decision").wait_for(timeout=30_000)
        page.wait_for_timeout(500)  # the expander's opening animation
        page.screenshot(path=str(output_dir / "browser-decide-rejection.png"), full_page=True)
        with page.expect_download(timeout=60_000) as caught:
            button.click()
        download = caught.value
        pdf = Path(download.path()).read_bytes()
        assert download.suggested_filename.startswith("adverse-action-notice-")
        page.close()
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages))
    [row] = DecisionLog(server.db_url).read().to_dict("records")
    for code in row["reason_codes"].split(";"):
        assert f"reason code {code}" in text
    assert "Your credit score: 540" in text and "1. Serious delinquency 2. Short history" in text
    assert "The Federal Equal Credit Opportunity Act prohibits" in text
    [record] = notices_for(DecisionLog(server.db_url), row["decision_id"])
    assert record.produced_by == "Dana Whitfield" and record.source == "form"
