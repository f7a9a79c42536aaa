"""Monitoring: what the deployed model decided, and whether the applicants still look like its training data."""

import time
from datetime import timedelta

import streamlit as st

from model import monitoring as mon
from model.core.formatting import percent
from model.records.log import DecisionLogError
from model.registry.store import list_versions, load_holdout
from ui import monitoring_charts as charts
from ui.resources import current_model, decision_log, officer, registry
from ui.tables import export_frame, readable_log

model = current_model()
log = decision_log()

st.title("Monitoring")
st.caption("Every decision on record, and whether the model is still seeing the kind of applicants it "
           "was trained on. Days are UTC days.")

with st.container(border=True):
    st.markdown(
        f"**Demo: simulate drift.** Score {mon.SIMULATED_SAMPLE_SIZE} made-up applicants with lower incomes "
        "and credit scores than in training and put them on record marked **simulated**, to see the drift "
        "alerts light up. The *Include simulated* toggle leaves them out again."
    )
    if st.button("Score a simulated sample", icon=":material/science:"):
        result = mon.log_simulated_sample(model, log, seed=time.time_ns() % 2**32, officer=officer())
        if result.ok:
            st.success(f"{result.written:,} simulated decisions scored and put on record, marked simulated.")
        else:
            st.warning(result.warning)

try:
    on_record = log.summary()
except DecisionLogError as exc:
    st.error(f"{exc} Check the database that LOANDESK_DB_URL points to.")
    st.stop()

if on_record.empty:
    st.info("No decisions on record yet. Decisions made on the Decide and Batch pages, and by `score.py`, "
            "appear here. To see what monitoring shows, score a simulated sample with the button above.")
    st.stop()

# --- filters -------------------------------------------------------------------------------------------
first, last = on_record["first"].min().date(), on_record["last"].max().date()
kept = list_versions(registry())
in_use = {v.version for v in kept if v.active}
counts = dict(zip(on_record["model_version"], on_record["decisions"], strict=True))
c_dates, c_versions, c_sim = st.columns([2, 3, 1.4], vertical_alignment="bottom")
dates = c_dates.date_input("Decided between", value=(first, last), min_value=first, max_value=last,
                           format="DD/MM/YYYY")
start, end = (dates[0], dates[-1]) if dates else (first, last)
versions = c_versions.multiselect(
    "Model versions", list(counts), placeholder="All versions",
    format_func=lambda v: f"{v} ({counts[v]:,} decisions{', in use' if v in in_use else ''})",
)
include_simulated = c_sim.toggle("Include simulated", value=True,
                                 help="Decisions from the demo button above, marked simulated in the log.")
frame = log.read(start=start, end=end + timedelta(days=1), versions=versions or None,
                 simulated=None if include_simulated else False)
if frame.empty:
    st.info("No decisions match these filters.")
    st.stop()

simulated = int(frame["simulated"].sum())
if simulated:
    st.warning(f"{simulated:,} of these {len(frame):,} decisions are **simulated** (demo data, no real applicant). "
               "Turn off *Include simulated* to see only real decisions.", icon=":material/science:")

# Drift is measured against the training data of the one version chosen, else of the version in use.
known = {v.version for v in kept}
reference = current_model(versions[0]) if len(versions) == 1 and versions[0] in known else model
holdout = load_holdout(reference)
holdout_rate = float((holdout["probability"] >= reference.threshold).mean())

approved = frame["decision"].astype(int)
k1, k2, k3, k4 = st.columns(4)
k1.metric("Decisions", f"{len(frame):,}")
k2.metric("Approval rate", percent(approved.mean()),
          delta=f"{100 * (approved.mean() - holdout_rate):+.1f} points vs hold-out",
          delta_color="off")
k3.metric("Simulated", f"{simulated:,}")
k4.metric("With an input out of range", percent(mon.out_of_range_share(frame)))

# --- activity ------------------------------------------------------------------------------------------
st.header("Decisions over time")
daily = mon.daily_activity(frame)
a, b = st.columns(2)
a.plotly_chart(charts.daily_counts_figure(daily), key="mon.daily")
b.plotly_chart(charts.approval_rate_figure(daily, holdout_rate), key="mon.rate")

st.header("Approval probabilities")
score_psi = mon.probability_psi(holdout["probability"].to_numpy(), frame["probability"].to_numpy())
st.markdown(f"Recent decisions against the hold-out the model was tested on when it was trained. "
            f"PSI of the probabilities: **{score_psi:.3f}** ({mon.psi_band(score_psi)}).")
st.plotly_chart(charts.probability_figure(frame["probability"].to_numpy(), holdout["probability"].to_numpy(),
                                          reference.threshold), key="mon.proba")

# --- drift ---------------------------------------------------------------------------------------------
st.header("Data drift")
st.markdown(f"Population Stability Index of each input against the training data of version "
            f"`{reference.version}`: under {mon.PSI_WATCH} **stable**, {mon.PSI_WATCH} to {mon.PSI_ACT} "
            f"**watch**, over {mon.PSI_ACT} **act** (the model may no longer fit these applicants).")
drifts = mon.drift(reference, frame)
if not drifts:
    st.info("This model's card has no training bins, so drift cannot be measured.")
else:
    table = mon.drift_table(reference, drifts)
    if len(frame) < mon.MIN_DRIFT_SAMPLE:
        st.caption(f"Only {len(frame):,} decisions: with fewer than {mon.MIN_DRIFT_SAMPLE}, PSI mostly "
                   "measures chance. Widen the date range for a firmer reading.")
    acting = table.loc[table["band"] == "act", "label"].tolist()
    watching = table.loc[table["band"] == "watch", "label"].tolist()
    if acting:
        st.error(f"Act: {', '.join(acting)} no longer {'looks' if len(acting) == 1 else 'look'} like the "
                 "training data.", icon=":material/warning:")
    if watching:
        st.warning(f"Watch: {', '.join(watching)} {'is' if len(watching) == 1 else 'are'} moving away from the "
                   "training data.")
    if not acting and not watching:
        st.success("Every input is stable against the training data.")
    st.plotly_chart(charts.psi_figure(table), key="mon.psi")
    cols = st.columns(2)
    for i, d in enumerate(drifts):
        f = reference.schema[d.field]
        title = f"{f.label}: PSI {d.psi:.3f} ({d.band})" if d.n else f"{f.label}: no values"
        cols[i % 2].plotly_chart(charts.distribution_figure(d, title, f.title), key=f"mon.dist.{d.field}")

# --- out of range --------------------------------------------------------------------------------------
st.header("Out-of-range inputs")
st.markdown("Values outside the range seen in training: the model extrapolates there, so those decisions "
            "deserve a second look.")
oor = mon.out_of_range_counts(reference, frame)
st.dataframe(
    oor.assign(share=[percent(s) for s in oor["share"]])[["label", "range", "count", "share"]],
    hide_index=True, column_config={"label": "Field", "range": "Training range", "count": "Decisions",
                                    "share": "Share of decisions"},
)

# --- fairness ------------------------------------------------------------------------------------------
st.header("Fairness by age band")
if not mon.fairness_applicable(reference):
    st.info("Not applicable: this model has no `age` field, so its decisions cannot be split by age band.")
else:
    bands = mon.age_bands(frame)
    st.markdown("Approval rate per age band and its ratio to the highest band's. Under "
                f"{mon.FOUR_FIFTHS} (the four-fifths rule) a band is flagged for review.")
    st.plotly_chart(charts.age_band_figure(bands), key="mon.fairness")
    flagged = bands.loc[bands["flagged"], "band"].tolist()
    if flagged:
        st.error(f"Flagged by the four-fifths rule: ages {', '.join(flagged)}. A flag calls for review, not a "
                 "verdict: a gap can come from factors the law allows (such as a shorter credit history), so "
                 "check that otherwise similar applicants of different ages get the same decision.",
                 icon=":material/balance:")
    else:
        st.success("No age band falls under four fifths of the highest band's approval rate.")
    st.dataframe(bands.assign(
        approval_rate=[percent(r) if r == r else "–" for r in bands["approval_rate"]],
        ratio_to_highest=[f"{q:.2f}" if q == q else "–" for q in bands["ratio_to_highest"]],
        flagged=["under four fifths" if f else "" for f in bands["flagged"]],
    ), hide_index=True, column_config={
        "band": "Age band", "decisions": "Decisions", "approved": "Approved", "approval_rate": "Approval rate",
        "ratio_to_highest": "Ratio to highest", "flagged": "Flag"})
    few = bands.loc[(bands["decisions"] > 0) & (bands["decisions"] < mon.MIN_BAND_SIZE), "band"].tolist()
    if few:
        st.caption(f"Fewer than {mon.MIN_BAND_SIZE} decisions in: {', '.join(few)}; read their rates with care.")

# --- the log -------------------------------------------------------------------------------------------
st.header("The decision log")
st.caption(f"The {min(len(frame), mon.LOG_ROWS_SHOWN):,} most recent of {len(frame):,} decisions; "
           "the CSV holds them all.")
st.dataframe(readable_log(reference, frame.head(mon.LOG_ROWS_SHOWN)), hide_index=True)
st.download_button(
    "Download these decisions (CSV)", data=lambda: export_frame(frame).to_csv(index=False).encode("utf-8"),
    file_name=f"decision-log-{start:%Y%m%d}-{end:%Y%m%d}.csv", mime="text/csv", on_click="ignore",
    icon=":material/download:",
)
