"""Batch: a CSV of applicants in, a decision per row out, by the same core function as score.py."""

import tempfile
from pathlib import Path

import streamlit as st

from model.batch.files import SHOW, BatchError, preview_file, read_results, score_file, select_rows
from model.core.formatting import percent
from ui.batch_charts import probability_histogram
from ui.resources import current_model, decision_log, officer
from ui.tables import readable_results

PREVIEW_ROWS = 10
TABLE_ROWS = 1000  # rows drawn in the results table; the download has them all

model = current_model()
schema = model.schema
state = st.session_state


def size_text(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n / 1e3:,.1f} kB"


st.title("Score a batch of applicants")
limit_mb = st.get_option("server.maxUploadSize")
st.markdown(
    "One applicant per row with the columns "
    + ", ".join(f"`{name}`" for name in schema.names)
    + " in any order; comma or semicolon separated, UTF-8. Other columns are carried through to the results. "
    "Every decision is recorded in the decision log. The same scoring runs from the command line: "
    "`python score.py applicants.csv -o decisions.csv`."
)
upload = st.file_uploader(f"CSV of applicants (up to {limit_mb:,} MB)", type=["csv"], key="batch.upload")
if upload is None:
    st.info("Upload a CSV file to see a preview and score it.")
    st.stop()

folder = Path(state.setdefault("batch.folder", tempfile.mkdtemp(prefix="loandesk-batch-")))
source, output = folder / "applicants.csv", folder / "decisions.csv"
if state.get("batch.file_id") != upload.file_id:
    source.write_bytes(upload.getbuffer())
    state["batch.file_id"] = upload.file_id
    state.pop("batch.results", None)

try:
    preview = preview_file(source, schema.names, rows=PREVIEW_ROWS)
except BatchError as exc:
    st.error(f"{upload.name} cannot be scored: {exc.reason}.")
    st.stop()
st.subheader("Preview")
st.caption(f"The first {len(preview):,} rows of {upload.name} ({size_text(upload.size)}), as read.")
st.dataframe(preview, hide_index=True, key="batch.preview")

key = (upload.file_id, model.sha256)
if st.button("Score every row", type="primary", key="batch.score"):
    bar = st.progress(0.0, text="Scoring…")
    try:
        summary = score_file(
            model, source, output, log=decision_log(), source="batch page", officer=officer(),
            progress=lambda done: bar.progress(done.fraction, text=f"Scoring… {done.rows:,} rows"),
        )
    except BatchError as exc:
        bar.empty()
        st.error(f"{upload.name} cannot be scored: {exc.reason}.")
        st.stop()
    bar.empty()
    state["batch.results"] = {"key": key, "summary": summary, "table": read_results(output)}

results = state.get("batch.results")
if results is None or results["key"] != key:
    st.stop()
summary, table = results["summary"], results["table"]

st.subheader("Results")
st.caption(f"Scored with {model.name} version {model.version}; threshold {percent(model.threshold)}. "
           "Rows are numbered from 1, the first row under the header.")
counts = st.columns(4)
counts[0].metric("Rows", f"{summary.rows:,}")
counts[1].metric("Approved", f"{summary.approved:,}")
counts[2].metric("Rejected", f"{summary.rejected:,}")
counts[3].metric("Rows with errors", f"{summary.errors:,}")
if summary.log_warning:
    st.warning(summary.log_warning, icon=":material/database:")
else:
    st.caption(f"{summary.logged:,} decision(s) recorded in the decision log.")
if summary.unreadable:
    first = next((p for p in summary.problems if not p.startswith("row ")), "")
    st.warning(f"{summary.unreadable:,} line(s) could not be read as rows and are not in the results. {first}")

probabilities = table.column("probability").to_numpy()
if summary.scored:
    st.plotly_chart(probability_histogram(probabilities, model.threshold), key="batch.histogram")

show = st.segmented_control("Show", SHOW, default=SHOW[0], key="batch.show") or SHOW[0]
rows, matching = select_rows(table, show, limit=TABLE_ROWS)
shown = f"the first {len(rows):,}" if matching > len(rows) else "all"
st.caption(f"{matching:,} row(s) match; showing {shown}.")
st.dataframe(readable_results(rows, schema), key="batch.table", column_config={
    "Error": st.column_config.TextColumn(width="medium"), "Reasons": st.column_config.TextColumn(width="large")})

st.download_button(
    "Download the scored CSV", data=output.read_bytes, file_name=f"{Path(upload.name).stem}-decisions.csv",
    mime="text/csv", type="primary", icon=":material/download:", key="batch.download", on_click="ignore",
)
