"""Batch: a CSV of applicants in, a decision per row out, by the same core function as score.py."""

from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from model.batch.files import OUTPUT_COLUMNS, SHOW, BatchError, read_results, score_file, select_rows
from model.batch.reading import MAX_CELL_CHARS, inspect_file, preview_rows
from model.core.files import create_private
from model.core.formatting import percent
from model.records.access import Action
from model.records.batches import rescoring_warning
from model.records.exports import BATCH_RESULTS, record_export
from ui.batch_charts import probability_histogram
from ui.identity import refuse_unless
from ui.resources import current_model, decision_log
from ui.tables import readable_results
from ui.text import md, md_code
from ui.uploads import empty, session_folder

PREVIEW_ROWS = 10
TABLE_ROWS = 1000  # rows drawn in the results table; the download has them all

actor = refuse_unless(Action.SCORE_BATCH)
model = current_model()
schema = model.schema
state = st.session_state


def size_text(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n / 1e3:,.1f} kB"


@contextmanager
def upload_on_disk(upload, folder: Path):
    """The upload as a private file for as long as it is being read; deleted right after."""
    path = folder / "applicants.csv"
    path.unlink(missing_ok=True)
    try:
        with create_private(path) as fh:
            fh.write(upload.getbuffer())
        yield path
    finally:
        path.unlink(missing_ok=True)


st.title("Score a batch of applicants")
limit_mb = st.get_option("server.maxUploadSize")
st.markdown(
    "One applicant per row with the columns "
    + ", ".join(md_code(name) for name in schema.names)
    + " in any order; comma or semicolon separated, UTF-8, any line endings; a cell holds at most "
    f"{MAX_CELL_CHARS:,} characters. Other columns are carried through to the results. "
    "The decisions go on record as one batch once every row is scored; a file that cannot be read "
    "whole is refused, naming the row. The same scoring runs from the command line: "
    "`python score.py applicants.csv -o decisions.csv`."
)
upload = st.file_uploader(f"CSV of applicants (up to {limit_mb:,} MB)", type=["csv"], key="batch.upload")
folder = session_folder("batch.folder")
output = folder / "decisions.csv"
if upload is None:
    empty(folder)  # nothing uploaded any more: nothing of an earlier file stays on the server
    state.pop("batch.results", None)
    state.pop("batch.checked", None)
    st.info("Upload a CSV file to see a preview and score it.")
    st.stop()

name = md(upload.name)
checked = state.get("batch.checked")
if checked is None or checked["file_id"] != upload.file_id:
    empty(folder)
    state.pop("batch.results", None)
    with upload_on_disk(upload, folder) as path:
        try:
            inspected = inspect_file(path, schema.names, OUTPUT_COLUMNS)
            checked = {"file_id": upload.file_id, "preview": preview_rows(inspected, PREVIEW_ROWS).to_pandas(),
                       "warning": rescoring_warning(decision_log(), inspected.sha256), "error": None}
        except BatchError as exc:
            checked = {"file_id": upload.file_id, "error": exc.reason}
    state["batch.checked"] = checked
if checked["error"]:
    st.error(f"{name} cannot be scored: {md(checked['error'])}.")
    st.stop()
preview = checked["preview"]
st.subheader("Preview")
st.caption(f"The first {len(preview):,} rows of {name} ({size_text(upload.size)}), as read.")
st.dataframe(preview, hide_index=True, key="batch.preview")
if checked["warning"]:
    st.warning(md(checked["warning"]), icon=":material/content_copy:")

key = (upload.file_id, model.sha256)
if st.button("Score every row", type="primary", key="batch.score"):
    bar = st.progress(0.0, text="Scoring…")
    try:
        with upload_on_disk(upload, folder) as path:
            summary = score_file(
                model, path, output, log=decision_log(), source="batch page", officer=actor.label,
                progress=lambda done: bar.progress(done.fraction, text=f"Scoring… {done.rows:,} rows"),
            )
    except BatchError as exc:
        bar.empty()
        st.error(f"{name} cannot be scored: {md(exc.reason)}. Nothing was recorded.")
        st.stop()
    bar.empty()
    state["batch.results"] = {"key": key, "summary": summary, "table": read_results(output)}
    state["batch.checked"] = {**checked, "warning": None}

results = state.get("batch.results")
if results is None or results["key"] != key:
    st.stop()
summary, table = results["summary"], results["table"]

st.subheader("Results")
st.caption(f"Scored with {md(model.name)} version {model.version}; threshold {percent(model.threshold)}. "
           "Rows are numbered from 1, the first row under the header.")
counts = st.columns(4)
counts[0].metric("Rows", f"{summary.rows:,}")
counts[1].metric("Approved", f"{summary.approved:,}")
counts[2].metric("Rejected", f"{summary.rejected:,}")
counts[3].metric("Rows with errors", f"{summary.errors:,}")
if summary.log_warning:
    st.warning(md(summary.log_warning), icon=":material/database:")
else:
    st.caption(f"{summary.logged:,} decision(s) recorded in the decision log as batch {md_code(summary.batch_id)} "
               f"(file SHA-256 {md_code(summary.file_sha256[:12])}…).")

probabilities = table.column("probability").to_numpy()
if summary.scored:
    st.plotly_chart(probability_histogram(probabilities, model.threshold), key="batch.histogram")

show = st.segmented_control("Show", SHOW, default=SHOW[0], key="batch.show") or SHOW[0]
rows, matching = select_rows(table, show, limit=TABLE_ROWS)
shown = f"the first {len(rows):,}" if matching > len(rows) else "all"
st.caption(f"{matching:,} row(s) match; showing {shown}.")
st.dataframe(readable_results(rows, schema), key="batch.table", column_config={
    "Error": st.column_config.TextColumn(width="medium"), "Reasons": st.column_config.TextColumn(width="large")})

def scored_csv() -> bytes:
    """Run when the button is pressed: the download goes on record (who, when, which file, rows) first."""
    record_export(decision_log(), actor, what=BATCH_RESULTS, rows=summary.rows, action=Action.SCORE_BATCH,
                  chosen={"file": upload.name, "model_version": model.version})
    return output.read_bytes()


st.download_button(
    "Download the scored CSV", data=scored_csv, file_name=f"{Path(upload.name).stem}-decisions.csv",
    mime="text/csv", type="primary", icon=":material/download:", key="batch.download", on_click="ignore",
)
