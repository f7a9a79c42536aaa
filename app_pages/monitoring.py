"""Monitoring: what one model decided, whether its loans turned out as it predicted, and whether the
applicants still look like its training data. Every figure is counted in the database."""

import time

import streamlit as st

from model import monitoring as mon
from model.core.csvsafe import to_csv_bytes
from model.core.errors import DecisionLogError
from model.core.formatting import percent
from model.monitoring import performance as perf
from model.monitoring import queries
from model.monitoring.exports import export_scope
from model.monitoring.overview import overview
from model.monitoring.simulated_outcomes import can_simulate, log_simulated_outcomes
from model.records.access import Action
from model.records.overrides import override_rates, tally
from model.registry.store import list_versions, load_holdout
from ui import monitoring_charts as charts
from ui.identity import refuse_unless
from ui.resources import current_model, decision_log, registry
from ui.tables import export_frame, readable_log
from ui.text import md, md_code

actor = refuse_unless(Action.VIEW_MONITORING)
model = current_model()
log = decision_log()

st.title("Monitoring")
st.caption("One model at a time: what it decided, how its loans turned out, and whether it is still seeing "
           "the kind of applicants it was trained on. Days and months are UTC.")


def simulate() -> None:
    """Demo mode only: made-up applicants and outcomes put on record, so that the alerts can be seen."""
    with st.container(border=True):
        st.markdown(
            f"**Demo: simulate drift and outcomes.** Score {mon.SIMULATED_SAMPLE_SIZE} made-up applicants with "
            "lower incomes and credit scores than in training and put them on record marked **simulated**, to see "
            "the drift alerts light up; then draw what became of each simulated loan from the rule that made the "
            "built-in data, to see realized performance. The *Include simulated* toggle leaves them out again."
        )
        b1, b2 = st.columns(2)
        if b1.button("Score a simulated sample", icon=":material/science:"):
            result = mon.log_simulated_sample(model, log, seed=time.time_ns() % 2**32, officer=actor.label)
            if result.ok:
                st.success(f"{result.written:,} simulated decisions scored and put on record, marked simulated.")
            else:
                st.warning(md(result.warning))
        if can_simulate(model) and b2.button("Simulate outcomes", icon=":material/event_available:",
                                             help="Good or bad for every simulated approval without an outcome."):
            try:
                made = log_simulated_outcomes(log, model, seed=time.time_ns() % 2**32, recorded_by=actor.label)
            except DecisionLogError as exc:
                st.error(md(exc))
            else:
                if made.written:
                    st.success(f"{made.written:,} simulated outcomes drawn and put on record, marked simulated.")
                else:
                    st.info("Every simulated approval has an outcome already: score a simulated sample first.")


if actor.may(Action.SIMULATE):
    simulate()

try:
    on_record = queries.on_record(log)
except DecisionLogError as exc:
    st.error(f"{md(exc)} Check the database that LOANDESK_DB_URL points to.")
    st.stop()

if on_record.empty:
    st.info("No decisions on record yet. Decisions made on the Decide and Batch pages, by `score.py` and by the "
            "API appear here."
            + (" To see what monitoring shows, score a simulated sample with the button above."
               if actor.may(Action.SIMULATE) else ""))
    st.stop()

# --- which model, which versions, which days ------------------------------------------------------------
kept = {v.version: v for v in list_versions(registry())}
names = list(dict.fromkeys([model.name] * (model.name in set(on_record["model_name"])) + list(on_record["model_name"])))
c_model, c_versions = st.columns([2, 3], vertical_alignment="bottom")
name = c_model.selectbox("Model", names, help="Decisions of one model at a time; the one in use comes first.",
                         format_func=lambda n: f"{n} (in use)" if n == model.name else n)
mine = on_record[on_record["model_name"] == name]
counts = dict(zip(mine["model_version"], mine["decisions"], strict=True))
versions = c_versions.multiselect(
    "Model versions", list(counts), placeholder=f"All versions of {name}",
    format_func=lambda v: (f"{v} · {name} ({counts[v]:,} decisions{', in use' if v == model.version else ''}"
                           f"{'' if v in kept else ', not in the model folder'})"),
)
first, last = mine["first"].min(), mine["last"].max()
c_dates, c_sim = st.columns([3, 2], vertical_alignment="bottom")
dates = c_dates.date_input("Decided between", value=(first, last), min_value=first, max_value=last,
                           format="DD/MM/YYYY")
start, end = (dates[0], dates[-1]) if dates else (first, last)
include_simulated = c_sim.toggle("Include simulated", value=True,
                                 help="Decisions and outcomes from the demo buttons above, marked simulated.")
scope = queries.Scope(name, tuple(versions) or None, start, end, None if include_simulated else False)

# Figures are measured against one version's training data: the one chosen, else the one in use, else
# the newest version of this model still in the model folder.
candidates = [v for v in (versions if len(versions) == 1 else []) if v in kept]
candidates += [model.version] if name == model.name else [v for v in mine["model_version"] if v in kept]
if not candidates:
    st.warning(f"No version of {md(name)} is in the model folder, so its decisions cannot be measured against "
               "its training data. Choose another model.")
    st.stop()
reference = model if candidates[0] == model.version else current_model(candidates[0])
holdout = load_holdout(reference)
try:
    view = overview(log, reference, scope, holdout)
except DecisionLogError as exc:
    st.error(f"{md(exc)} Check the database that LOANDESK_DB_URL points to.")
    st.stop()
if not view.decisions:
    st.info("No decisions match these filters.")
    st.stop()

if view.simulated:
    st.warning(f"{view.simulated:,} of these {view.decisions:,} decisions are **simulated** (demo data, no real "
               "applicant). Turn off *Include simulated* to see only real decisions.", icon=":material/science:")

holdout_rate = float((holdout["probability"] >= reference.threshold).mean())
k1, k2, k3, k4 = st.columns(4)
k1.metric("Decisions", f"{view.decisions:,}")
k2.metric("Approval rate", percent(view.approval_rate),
          delta=f"{100 * (view.approval_rate - holdout_rate):+.1f} points vs hold-out", delta_color="off")
k3.metric("Simulated", f"{view.simulated:,}")
k4.metric("With an input out of range", percent(view.with_out_of_range / view.decisions))

# --- activity ------------------------------------------------------------------------------------------
st.header("Decisions over time")
a, b = st.columns(2)
a.plotly_chart(charts.daily_counts_figure(view.daily), key="mon.daily")
b.plotly_chart(charts.approval_rate_figure(view.daily, holdout_rate), key="mon.rate")

# --- realized performance --------------------------------------------------------------------------------
st.header("Realized performance")
ref = view.reference
st.markdown(
    "How the loans turned out, from the outcomes recorded for them (`python outcomes.py import FILE.csv` or "
    "`POST /v1/outcomes`). Only approved decisions become loans, so the figures are over approved decisions "
    f"with an outcome, held against the hold-out's {ref.approved:,} applicants the model would approve: AUC "
    f"**{ref.auc:.3f}**, bad rate **{percent(ref.bad_rate)}**. Intervals are 95%."
)
if view.overall.empty:
    st.info("No outcomes recorded for these decisions yet. Until they arrive, the calibrated probabilities say "
            "what to expect: the bad rate below is the average of 1 − approval probability over the approvals.")
else:
    whole = view.overall.iloc[0]
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Loans with an outcome", f"{whole['outcomes']:,}", help=f"{whole['bad']:,} of them bad.")
    auc_text = f"{whole['auc']:.3f}" if whole["auc"] == whole["auc"] else "–"
    m2.metric("Realized AUC", auc_text, delta=f"{whole['auc'] - ref.auc:+.3f} vs hold-out" if auc_text != "–" else None,
              delta_color="normal", help=f"95% interval {whole['auc_low']:.3f} to {whole['auc_high']:.3f}.")
    m3.metric("Bad rate among approved", percent(whole["bad_rate"]),
              delta=f"{100 * (whole['bad_rate'] - ref.bad_rate):+.1f} points vs hold-out", delta_color="inverse",
              help=f"95% interval {percent(whole['bad_rate_low'])} to {percent(whole['bad_rate_high'])}.")
    m4.metric("Predicted bad rate", percent(whole["predicted_bad_rate"]),
              help="Calibration: what the approval probabilities predicted for these same loans.")
    if view.alerts:
        lines = "\n".join(f"- {month}, version {md_code(version)}: {md(what)}" for month, version, what in view.alerts)
        st.error(f"Realized performance outside the range the hold-out leads one to expect:\n{lines}",
                 icon=":material/notification_important:")
    else:
        st.success("Realized performance is within the range the hold-out leads one to expect, in every month "
                   f"with at least {perf.MIN_OUTCOMES} outcomes.")
    if view.outcomes_of_rejections:
        st.caption(f"{view.outcomes_of_rejections:,} outcome(s) recorded for decisions the model rejected are not "
                   "counted: those applicants got no loan from the model's decision.")
    c1, c2 = st.columns(2)
    c1.plotly_chart(charts.realized_auc_figure(view.by_month, ref), key="mon.auc")
    c2.plotly_chart(charts.bad_rate_figure(view.by_month, ref), key="mon.badrate")
    st.dataframe(charts.performance_table(view.by_month), hide_index=True)
st.subheader("Expected bad rate of approvals")
st.plotly_chart(charts.expected_bad_rate_figure(view.expected, ref), key="mon.expected")

# --- overrides and the refer band ---------------------------------------------------------------------
st.header("Overrides and referrals")
counted = tally(log, where=scope.clauses())
o1, o2, o3 = st.columns(3)
o1.metric("Override rate", percent(counted.override_rate),
          help=f"{counted.overridden:,} of {counted.decisions:,} decisions have an officer's override on record.")
o2.metric("Refer rate", percent(counted.refer_rate),
          help=f"{counted.referred:,} decisions fell in the refer band and went to an underwriter.")
o3.metric("Refer band", f"{percent(reference.refer_band)} wide" if reference.refer_band else "Off",
          help="Set on the Model page: probabilities this close to the threshold are referred.")
by_officer = override_rates(log, where=scope.clauses())
if by_officer.empty:
    st.caption("No overrides on record for these decisions. Officers override on the Decide page, with a reason "
               "from the fixed list in README.")
else:
    st.plotly_chart(charts.override_figure(by_officer), key="mon.overrides")
    st.dataframe(charts.override_table(by_officer), hide_index=True)

# --- probabilities ---------------------------------------------------------------------------------------
st.header("Approval probabilities")
st.markdown(f"Recent decisions against the hold-out the model was tested on when it was trained. "
            f"PSI of the probabilities: **{view.probability_psi:.3f}** ({mon.psi_band(view.probability_psi)}).")
st.plotly_chart(charts.probability_figure(view.probability_bins, holdout["probability"].to_numpy(),
                                          reference.threshold), key="mon.proba")

# --- drift ---------------------------------------------------------------------------------------------
st.header("Data drift")
st.markdown(f"Population Stability Index of each input against the training data of version "
            f"`{reference.version}`: under {mon.PSI_WATCH} **stable**, {mon.PSI_WATCH} to {mon.PSI_ACT} "
            f"**watch**, over {mon.PSI_ACT} **act** (the model may no longer fit these applicants).")
if not view.drift:
    st.info("This model's card has no training bins, so drift cannot be measured.")
else:
    table = mon.drift_table(reference, view.drift)
    if view.decisions < mon.MIN_DRIFT_SAMPLE:
        st.caption(f"Only {view.decisions:,} decisions: with fewer than {mon.MIN_DRIFT_SAMPLE}, PSI mostly "
                   "measures chance. Widen the date range for a firmer reading.")
    acting = table.loc[table["band"] == "act", "label"].tolist()
    watching = table.loc[table["band"] == "watch", "label"].tolist()
    if acting:
        st.error(f"Act: {md(', '.join(acting))} no longer {'looks' if len(acting) == 1 else 'look'} like the "
                 "training data.", icon=":material/warning:")
    if watching:
        st.warning(f"Watch: {md(', '.join(watching))} {'is' if len(watching) == 1 else 'are'} moving away from the "
                   "training data.")
    if not acting and not watching:
        st.success("Every input is stable against the training data.")
    st.plotly_chart(charts.psi_figure(table), key="mon.psi")
    cols = st.columns(2)
    for i, d in enumerate(view.drift):
        f = reference.schema[d.field]
        title = f"{f.label}: PSI {d.psi:.3f} ({d.band})" if d.n else f"{f.label}: no values"
        cols[i % 2].plotly_chart(charts.distribution_figure(d, title, f.title), key=f"mon.dist.{d.field}")

# --- out of range --------------------------------------------------------------------------------------
st.header("Out-of-range inputs")
st.markdown("Values outside the range seen in training: the model extrapolates there, so those decisions "
            "deserve a second look.")
oor = view.out_of_range
st.dataframe(
    oor.assign(share=[percent(s) for s in oor["share"]])[["label", "range", "count", "share"]],
    hide_index=True, column_config={"label": "Field", "range": "Training range", "count": "Decisions",
                                    "share": "Share of decisions"},
)

# --- fairness ------------------------------------------------------------------------------------------
st.header("Fairness by age band")
if view.age_bands is None:
    st.info("Not applicable: this model has no age field, so its decisions cannot be split by age band.")
else:
    bands = view.age_bands
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
st.caption(f"The {min(view.decisions, mon.LOG_ROWS_SHOWN):,} most recent of {view.decisions:,} decisions; "
           "the CSV holds them all.")
st.dataframe(readable_log(reference, queries.recent(log, scope, mon.LOG_ROWS_SHOWN)), hide_index=True)
if actor.may(Action.EXPORT_DECISIONS):

    def exported_csv() -> bytes:
        """Run when the button is pressed: the export goes on record (who, when, filter, rows) first."""
        return to_csv_bytes(export_frame(export_scope(log, actor, scope)))

    st.download_button(
        "Download these decisions (CSV)", data=exported_csv,
        file_name=f"decision-log-{start:%Y%m%d}-{end:%Y%m%d}.csv", mime="text/csv", on_click="ignore",
        icon=":material/download:", key="mon.export",
        help="Every export is recorded with your name, the time, these filters and the number of rows.",
    )
