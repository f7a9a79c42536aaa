"""The Batch page (AppTest): upload, preview, score, counts, histogram, filters, download, decision log."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st

from model.batch.files import score_file
from model.records.log import DecisionLog
from model.registry.store import load_model
from model.training.data import generate_applicants

FEATURES = ["age", "income", "credit_score", "loan_amount", "employment_years"]
BAD_ROWS = (3, 12)  # 0-based positions: rows 4 and 13 of the file


def applicants_bytes(n: int = 60) -> bytes:
    frame = generate_applicants(n, seed=33)[FEATURES].astype(object)
    frame.insert(0, "application_id", [f"A-{i:03d}" for i in range(n)])
    for i in BAD_ROWS:
        frame.loc[i, "credit_score"] = "excellent"
    return frame.to_csv(index=False).encode()


def batch_page(app, officer: str | None = None):
    at = app.run()
    if officer:  # the sidebar's "Officer name" field (AppTest's switch_page runs the page without the sidebar)
        at.session_state["officer"] = officer
    return at.switch_page("app_pages/batch.py").run()


def upload(at, content: bytes, name: str = "applicants.csv"):
    at.file_uploader(key="batch.upload").set_value((name, content, "text/csv")).run()
    assert not at.exception, at.exception
    return at


def test_the_upload_shows_its_size_limit_and_nothing_is_scored_before_a_file(app):
    at = batch_page(app)
    assert not at.exception
    limit = st.get_option("server.maxUploadSize")
    assert f"up to {limit:,} MB" in at.file_uploader(key="batch.upload").label
    assert not at.button and not at.metric


def test_upload_preview_score_counts_histogram_and_log(app, app_env):
    content = applicants_bytes()
    at = upload(batch_page(app, officer="Ada Lovelace"), content)
    frame = pd.read_csv(io.BytesIO(content), dtype=str)
    preview = at.dataframe[0].value
    assert preview["application_id"].tolist() == frame["application_id"].head(len(preview)).tolist()
    assert not at.metric  # nothing scored until asked

    at.button(key="batch.score").click().run()
    assert not at.exception, at.exception
    good = frame.drop(index=list(BAD_ROWS)).astype({f: float for f in FEATURES})
    model = load_model(app_env)
    approved = int(model.predict(good[FEATURES]).sum())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Rows": "60", "Approved": f"{approved:,}", "Rejected": f"{len(good) - approved:,}",
                       "Rows with errors": "2"}
    assert len(at.get("plotly_chart")) == 1
    table = at.dataframe[1].value
    assert len(table) == 60 and table.index.tolist() == list(range(1, 61))
    assert set(table["Decision"]) == {"Approved", "Rejected", ""}
    assert table["Approval probability"].str.fullmatch(r"(\d{1,3}\.\d%)?").all()  # "71.4%", never 0.714

    log = DecisionLog(os.environ["LOANDESK_DB_URL"]).read()
    assert len(log) == 58 and set(log["source"]) == {"batch page"} and set(log["officer"]) == {"Ada Lovelace"}


def test_filters_show_the_matching_rows_without_scoring_again(app):
    at = upload(batch_page(app), applicants_bytes())
    at.button(key="batch.score").click().run()
    before = DecisionLog(os.environ["LOANDESK_DB_URL"]).count()
    shown = at.session_state["batch.results"]

    at.segmented_control(key="batch.show").set_value("Rows with errors").run()
    errors = at.dataframe[1].value
    assert errors.index.tolist() == [i + 1 for i in BAD_ROWS]  # row 1 = the first row under the header
    assert errors["Error"].str.contains("credit_score = 'excellent': is not a number").all()

    at.segmented_control(key="batch.show").set_value("Approved").run()
    approved = at.dataframe[1].value
    assert len(approved) == int(at.metric[1].value) and set(approved["Decision"]) == {"Approved"}

    at.segmented_control(key="batch.show").set_value("Rejected").run()
    assert set(at.dataframe[1].value["Decision"]) == {"Rejected"}
    assert DecisionLog(os.environ["LOANDESK_DB_URL"]).count() == before  # filtering never rescored
    assert at.session_state["batch.results"] is shown


def test_the_download_is_the_commands_csv(app, app_env, tmp_path):
    content = applicants_bytes()
    at = upload(batch_page(app), content)
    at.button(key="batch.score").click().run()
    button = at.download_button(key="batch.download")
    assert button.label == "Download the scored CSV"
    page_output = Path(at.session_state["batch.folder"].name) / "decisions.csv"
    source = tmp_path / "applicants.csv"
    source.write_bytes(content)
    score_file(load_model(app_env), source, tmp_path / "command.csv")
    page, command = pd.read_csv(page_output, dtype=str), pd.read_csv(tmp_path / "command.csv", dtype=str)
    scored = page["error"].isna()
    assert page.loc[scored, "decision_id"].notna().all() and page.loc[~scored, "decision_id"].isna().all()
    assert not set(page["decision_id"].dropna()) & set(command["decision_id"].dropna())  # ids of their own
    pd.testing.assert_frame_equal(page.drop(columns="decision_id"), command.drop(columns="decision_id"))


@pytest.mark.parametrize("content, words", [
    (b"age,income\n35,62000\n", ["credit_score", "loan_amount", "employment_years"]),
    (b"\x00\x01\x02binary", ["not a CSV"]),
    (b"", ["empty"]),
])
def test_a_file_that_cannot_be_scored_is_explained_and_not_offered_for_scoring(app, content, words):
    at = upload(batch_page(app), content, name="bad.csv")
    assert len(at.error) == 1
    message = re.sub(r"\\(.)", r"\1", at.error[0].value)  # the text as shown: markdown escapes undone
    assert message.startswith("bad.csv cannot be scored") and all(w in message for w in words)
    assert "/" not in message.split(":", 1)[0]  # the file's name, not a temporary path
    assert not [b for b in at.button if b.key == "batch.score"]


def test_a_new_upload_replaces_the_results(app):
    at = upload(batch_page(app), applicants_bytes())
    at.button(key="batch.score").click().run()
    assert at.metric
    frame = generate_applicants(7, seed=2)[FEATURES]
    upload(at, frame.to_csv(index=False).encode(), name="other.csv")
    assert not at.metric  # the first file's results are gone; nothing scored yet
    at.button(key="batch.score").click().run()
    assert at.metric[0].value == "7"
    probabilities = at.session_state["batch.results"]["table"].column("probability").to_numpy()
    np.testing.assert_allclose(np.sort(probabilities), np.sort(load_model(os.environ["LOANDESK_MODEL_DIR"])
                                                               .predict_proba(frame)[:, 1]), atol=1e-12)


def test_old_mac_line_endings_are_scored_on_the_page(app):
    frame = generate_applicants(12, seed=2)[FEATURES]
    at = upload(batch_page(app), frame.to_csv(index=False, lineterminator="\r").encode(), name="mac.csv")
    at.button(key="batch.score").click().run()
    assert not at.exception and at.metric[0].value == "12"
    assert DecisionLog(os.environ["LOANDESK_DB_URL"]).count() == 12


def test_an_unterminated_quote_is_refused_naming_its_row_and_nothing_is_recorded(app):
    rows = generate_applicants(300, seed=2)[FEATURES].to_csv(index=False).splitlines()
    rows[150] = rows[150].replace(",", ',"', 1)
    at = upload(batch_page(app), ("\n".join(rows) + "\n").encode(), name="quote.csv")
    message = re.sub(r"\\(.)", r"\1", at.error[0].value)
    assert message.startswith("quote.csv cannot be scored: row 150 (line 151)") and "never closed" in message
    assert not [b for b in at.button if b.key == "batch.score"]
    assert DecisionLog(os.environ["LOANDESK_DB_URL"]).count() == 0


def test_a_file_already_on_record_is_flagged_before_it_is_scored_again(app):
    content = applicants_bytes()
    at = upload(batch_page(app), content)
    assert not [w for w in at.warning if "already on record" in w.value]  # (the demo banner is a warning too)
    at.button(key="batch.score").click().run()
    again = upload(batch_page(app), content, name="same-again.csv")
    warned = [w.value for w in again.warning if "already on record" in w.value]
    assert warned and "58 decision" in warned[0]


def test_uploads_are_deleted_once_the_page_is_done_with_them(app):
    at = upload(batch_page(app), applicants_bytes())
    folder = Path(at.session_state["batch.folder"].name)
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert list(folder.iterdir()) == []  # checked and previewed, then deleted
    at.button(key="batch.score").click().run()
    assert [p.name for p in folder.iterdir()] == ["decisions.csv"]  # only the results, for the download
    at.file_uploader(key="batch.upload").set_value(None).run()
    assert list(folder.iterdir()) == []  # the file is gone from the page: its results too
    at.session_state["batch.folder"].cleanup()  # what dropping the session's state does
    assert not folder.exists()
