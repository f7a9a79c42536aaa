"""Text from a user's CSV is shown as text, in a real browser: a column name and a category value that
are a markdown image make no request, and show literally, on every page."""

from __future__ import annotations

import http.server
import threading

import numpy as np
import pytest

from model.records.log import DecisionLog, entries_for_rows
from model.records.outcomes import record_outcomes
from model.records.overrides import OVERRIDE_REASONS, record_override
from model.registry.store import load_model, save_version
from model.training.data import generate_applicants
from model.training.train import train
from ui.text import WORD_JOINER

from .conftest import ROOT
from .e2e import StreamlitServer, chromium, free_port, require_chromium, wait_for_app

pytestmark = pytest.mark.browser

require_chromium()

PAGES = {"Decide": "", "Batch": "batch", "Model": "model", "Monitoring": "monitoring", "Learn": "learn"}


REQUESTS: list[str] = []  # every path the pixel server was asked for


class _Pixel(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        REQUESTS.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.end_headers()
        self.wfile.write(b"GIF89a\x01\x00\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x00;")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def pixel():
    """A server that counts every request: an image or link the browser follows shows up here."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Pixel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def app_url(pixel, tmp_path_factory):
    port = pixel.server_address[1]
    image = f"![px](http://127.0.0.1:{port}/pixel)"
    number = f"![n](http://127.0.0.1:{port}/pixel-n)"
    group = f"**bold** ![g](http://127.0.0.1:{port}/pixel-g)"  # a protected column: in the fairness report
    frame = generate_applicants(1500, seed=8)
    rng = np.random.default_rng(8)
    frame[image] = rng.choice(["own", image, "**bold**"], len(frame))
    frame[number] = rng.normal(10, 2, len(frame)).round(1)
    frame[group] = rng.choice([f"=HYPERLINK(\"http://127.0.0.1:{port}/pixel-h\")", "**bold**"], len(frame))
    y = frame.pop("approved").to_numpy()
    trained = train(frame, y, target="approved", positive_label="1", model="logistic", seed=8, test_size=0.25,
                    monotone={}, source=f"<b>{image}</b>.csv", declared={group: "sex"})
    folder = tmp_path_factory.mktemp("injection")
    registry = folder / "loan_approval_model"
    save_version(registry, trained.pipeline, trained.card, trained.holdout)
    model = load_model(registry)
    log = DecisionLog(f"sqlite:///{folder / 'decisions.db'}")
    sample = frame.head(300)
    validation = model.validate(sample)
    entries = entries_for_rows(model, validation.clean, model.approval_probability(validation.clean),
                               source="command", officer=image, out_of_range=validation.out_of_range)
    assert log.record(entries).ok
    # Outcomes for the approved (Monitoring's realized performance) and an override (Monitoring, Decide).
    approved = [e for e in entries if e.decision][:120]
    report = record_outcomes(log, [{"decision_id": e.decision_id, "outcome": "bad" if k % 5 == 0 else "good"}
                                   for k, e in enumerate(approved)], source=f"file:{image}", recorded_by=image)
    assert len(report.recorded) == len(approved), report.problems[:3]
    record_override(log, approved[0].decision_id, final_decision=0, reason=next(iter(OVERRIDE_REASONS)),
                    note=f"{image} **bold**", officer=image)
    log.dispose()
    upload = folder / "**bold** applicants.csv"
    frame.head(200).to_csv(upload, index=False)
    env = {"LOANDESK_MODEL_DIR": str(registry), "LOANDESK_DB_URL": f"sqlite:///{folder / 'decisions.db'}"}
    with StreamlitServer(ROOT / "streamlit_app.py", env) as running:
        running.image, running.number, running.group, running.upload = image, number, group, upload
        yield running


def test_a_markdown_image_in_a_column_name_and_a_category_is_never_fetched_and_shows_as_written(
        app_url, pixel, output_dir):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 3200})
        seen = {}
        for title, path in PAGES.items():
            page.goto(f"{app_url.url}/{path}")
            wait_for_app(page)
            page.get_by_role("heading", name=title if title != "Decide" else "Decide on an application",
                             exact=False).first.wait_for(timeout=90_000)
            if title == "Decide":
                # The form's select box for the column, labelled with its name; pick the category.
                page.locator("[data-testid='stSelectbox']").filter(has_text="![px](").first.click()
                page.get_by_role("option", name=app_url.image, exact=True).click()
                page.get_by_role("button", name="Decide").click()
                page.locator(".loandesk-decision").wait_for(timeout=90_000)
            if title == "Batch":  # a file of these applicants, scored: its values in the preview and results
                page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(app_url.upload))
                page.get_by_role("button", name="Score every row").click()
                page.get_by_text("Download the scored CSV").wait_for(timeout=120_000)
            wait_for_app(page)
            page.wait_for_timeout(1500)  # let charts and images (if any) load
            # What a reader sees: the invisible word joiners that keep "http://" from becoming a link aside.
            seen[title] = page.locator("[data-testid='stApp']").inner_text().replace(WORD_JOINER, "")
            links = page.locator("[data-testid='stMain'] a[href*='127.0.0.1']").count()
            assert links == 0, f"{title} turned the address into a link"
            page.screenshot(path=str(output_dir / f"browser-injection-{path or 'decide'}.png"), full_page=True)
            # Streamlit scrolls inside its main block: the rest of a long page, a screen further down each time.
            for k in (1, 2):
                moved = page.evaluate("""(k) => { const m = document.querySelector("[data-testid='stMain']");
                    const before = m.scrollTop; m.scrollTop = k * 3000; return m.scrollTop > before; }""", k)
                if not moved:
                    break
                page.wait_for_timeout(1000)  # charts scrolled into view draw themselves
                page.screenshot(path=str(output_dir / f"browser-injection-{path or 'decide'}-{k + 1}.png"))
            assert "Traceback" not in seen[title]
        page.close()
    assert pixel_requests() == [], "the browser fetched the address in a column name or category value"
    for title in ("Decide", "Model", "Learn"):
        assert app_url.image in seen[title], f"{title} does not show the column name as written"
    assert app_url.number in seen["Decide"]
    assert app_url.group in seen["Model"]  # the protected column's name, in the prohibited bases and fairness
    assert "**bold** applicants.csv" in seen["Batch"] and "Rows with errors" in seen["Batch"]
    for text in seen.values():
        assert "\\!" not in text and "\\[" not in text  # escapes never show: the text reads as written


def pixel_requests() -> list[str]:
    return list(REQUESTS)
