"""Model: how good the active version is, where its threshold should be, and which version is live."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from model import evaluation
from model.core.errors import ModelFolderError, ModelIntegrityError
from model.core.formatting import percent, utc_time
from model.core.protected import allowed_in_card
from model.registry import signing
from model.registry.store import activate_version, active_version
from model.scoring.predictor import LoanModel
from model.training.workflows import copy_with_threshold
from ui import fairness as fairness_ui
from ui import imported
from ui import model_charts as charts
from ui.resources import current_model, load_current, registry
from ui.text import md, md_code, md_table


@st.cache_data(show_spinner="Scoring the hold-out…", max_entries=32)
def version_report(_model: LoanModel, folder: str, sha256: str) -> evaluation.Report:
    """One version's hold-out evaluation; versions never change, so their folder and checksum are the key."""
    return evaluation.report(_model)


@st.cache_data(show_spinner="Measuring how each input moves the score…", max_entries=32)
def version_effects(_model: LoanModel, lineage: str) -> evaluation.FeatureEffects:
    return evaluation.feature_effects(_model)


def effects_of(model: LoanModel) -> evaluation.FeatureEffects:
    """A threshold copy has its parent's pipeline and hold-out, so it shares the parent's (cached) effects."""
    return version_effects(model, str(model.path.parent / (model.card.parent or model.version)))


def report_of(model: LoanModel) -> evaluation.Report | None:
    """The version's report, or None after saying why its hold-out cannot be used."""
    try:
        return version_report(model, str(model.path), model.sha256)
    except (ModelIntegrityError, OSError, KeyError, ValueError) as exc:
        st.error(f"The hold-out stored with version {model.version} cannot be read ({md(exc)}), so its performance "
                 "cannot be shown. Make another version active under Versions, or retrain.")
        return None


def points(change: float) -> str | None:
    """A change in a rate, in percentage points, for st.metric's delta (None when there is none)."""
    return None if abs(change) < 5e-4 else f"{100 * change:+.1f} points"


def act(change: Callable[[], str]) -> None:
    """Change the versions (`change` returns the confirmation), then rerun so that the sidebar and every
    page pick up the active version from the loader, which is keyed by checksum."""
    try:
        st.session_state["model.notice"] = change()
    except (ModelIntegrityError, OSError, ValueError) as exc:
        st.error(f"Nothing was changed: {md(exc)}")
        return
    st.rerun()


def use_threshold(model: LoanModel, threshold: float, refer_band: float) -> str:
    version = copy_with_threshold(registry(), model.version, threshold, activate=True, refer_band=refer_band)
    band = f" and a refer band {percent(refer_band)} wide" if refer_band else ""
    return (f"Threshold {percent(threshold)}{band} saved as version {version}, now active. "
            f"Version {model.version} is kept unchanged: make it active again below at any time.")


def make_active(previous: str | None, version: str) -> str:
    activate_version(registry(), version)
    return f"Version {version} is now active; the previous one, {previous}, is kept."


def model_card(model: LoanModel) -> None:
    card = model.card
    data, metrics = card.data, card.metrics
    st.caption(f"Version `{model.version}` is active · trained {utc_time(card.created_at)} · "
               f"pipeline SHA-256 `{model.sha256[:12]}`")
    left, middle, right = st.columns(3)
    with left.container(border=True):
        st.markdown("**Data**")
        fingerprint = data.get("fingerprint", "")
        lines = [
            f"- Source: {md(data.get('source') or 'unknown')}",
            f"- Rows: {data['rows']:,}" if "rows" in data else "- Rows: unknown",
            f"- Fingerprint: `{fingerprint[:12]}`" if fingerprint else "- Fingerprint: unknown",
        ]
        if "approval_rate" in data:
            lines.append(f"- Approval rate in the data: {percent(data['approval_rate'])}")
        if "n_test" in metrics and card.imported:
            lines.append(f"- Measured on: {metrics['n_test']:,} labelled rows given at import (may overlap training)")
        elif "n_test" in metrics:
            lines.append(f"- Hold-out: {metrics['n_test']:,} rows kept out of training")
        st.markdown("\n".join(lines))
        # The target and its values come from the user's file: shown as text, never as markdown.
        st.text(card.get("label_meaning") or f"approved means {card.target} = {card.positive_label}")
    with middle.container(border=True):
        st.markdown(f"**Pipeline** · {evaluation.kind_label(card.model_kind)}")
        st.markdown("\n".join(f"- {md(step)}" for step in card.pipeline_steps))
        cv_auc = card.selection.get("cv_auc") or {}
        if cv_auc:
            st.markdown("Chosen by 5-fold cross-validated AUC: " + ", ".join(
                f"{evaluation.kind_label(k).lower()} {v:.3f}" for k, v in cv_auc.items()))
        line = f"Threshold: **{percent(model.threshold)}**"
        if card.parent:
            line += f" (set on the Model page; same pipeline as version `{card.parent}`)"
        st.markdown(line)
    with right.container(border=True):
        st.markdown("**Libraries**")
        st.markdown("\n".join(f"- {md(name)} {md(version)}" for name, version in card.libraries.items()))
    status = signing.status()
    signature = (f"This version is signed (key id {md_code(card.get('signed_by', '?'))})."
                 if card.get("signature") else "This version is not signed.")
    if status.mode == "off":
        st.warning(f"{signature} {md(status.text)}", icon=":material/key_off:")
    else:
        st.caption(f"{signature} {md(status.text)}")


@st.cache_data(show_spinner="Measuring fairness on the hold-out…", max_entries=32)
def version_fairness(_model: LoanModel, folder: str, sha256: str) -> list[evaluation.Fairness]:
    return evaluation.fairness(_model)


def prohibited_bases(model: LoanModel) -> None:
    """Which protected columns were found, which the model uses (an allowed one in red) and how
    well its inputs stand in for the ones it leaves out."""
    st.header("Prohibited bases")
    for used in allowed_in_card(model.card):
        st.error(f"This model uses {md(used['column'])} ({used['basis']}), a prohibited basis under "
                 f"ECOA, by --allow. Justification given: {md(used['justification'])}",
                 icon=":material/gpp_bad:")
    table = fairness_ui.protected_frame(model.card)
    if table.empty:
        st.caption("No column of the training data was found to describe a prohibited basis (race, color, "
                   "religion, national origin, sex, marital status, age, public assistance, ...).")
    else:
        st.dataframe(table, hide_index=True)
    found = evaluation.proxies(model)
    if found:
        st.subheader("Proxies")
        st.caption("How well the model's own inputs predict each protected column it leaves out (a simple "
                   "logistic regression, 5-fold cross-validated). Leaving a column out does not keep it out of "
                   "the decisions when the inputs predict it well.")
        for proxy in found:
            if proxy.warn:
                st.warning(md(proxy.sentence({f.name: f.label for f in model.schema.fields})))
        st.dataframe(fairness_ui.proxies_frame(found, {f.name: f.label for f in model.schema.fields}),
                     hide_index=True)


def fairness_section(model: LoanModel) -> None:
    st.header("Fairness on the hold-out")
    try:
        reports = version_fairness(model, str(model.path), model.sha256)
    except (ModelIntegrityError, OSError, KeyError, ValueError) as exc:
        st.error(f"The hold-out stored with version {model.version} cannot be read ({md(exc)}).")
        return
    if not reports:
        st.info("No protected column (nor age) is kept with this version's hold-out, so fairness cannot be "
                "measured here.")
        return
    st.caption(f"Per group, at the threshold of {percent(model.threshold)}: approval rate; adverse impact ratio "
               "(approval rate over the most-approved group's, flagged under four fifths); share of good loans "
               "approved (equal opportunity); bad-loan rate among the approved. In brackets, 95% bootstrap "
               "intervals. Age is shown in bands.")
    for report in reports:
        st.subheader(md(report.title))
        if sentence := fairness_ui.flag_sentence(report):
            st.warning(md(sentence), icon=":material/balance:")
        st.dataframe(fairness_ui.fairness_frame(report), hide_index=True)


def performance(model: LoanModel, report: evaluation.Report) -> None:
    if model.card.imported:
        st.header("Performance on the labelled data")
        st.caption(f"Recomputed from the {report.rows:,} labelled applicants given at import; a good loan is one "
                   f"approved in the data. {model.card.imported.get('holdout_note', '')}")
    else:
        st.header("Hold-out performance")
        st.caption(f"Recomputed from the {report.rows:,} hold-out applicants stored with this version; "
                   "a good loan is one approved in the data.")
    m = report.metrics
    cols = st.columns(4)
    cols[0].metric("AUC", f"{m['auc']:.3f}", help="Chance that a random good loan scores above a random bad one.")
    cols[1].metric("Brier score", f"{m['brier']:.3f}", help="Mean squared error of the approval probability "
                   "(0 is perfect; lower is better).")
    cols[2].metric(f"Accuracy at {percent(model.threshold)}", percent(m["accuracy"]))
    cols[3].metric("Log loss", f"{m['log_loss']:.3f}", help="Lower is better.")
    _, conf = report.at(model.threshold)
    at_threshold = {model.version: (conf.false_positive_rate, conf.true_positive_rate)}
    left, right = st.columns(2)
    left.plotly_chart(charts.roc_figure({model.version: report.roc}, at_threshold), key="model.roc")
    right.plotly_chart(charts.precision_recall_figure(report.precision_recall, (conf.true_positive_rate,
                                                                              conf.precision)), key="model.pr")
    left, right = st.columns(2)
    left.plotly_chart(charts.reliability_figure(report.reliability), key="model.reliability")
    effects = effects_of(model)
    with right:
        st.plotly_chart(charts.effects_figure(effects), key="model.effects")
        st.caption(effects.description)


def threshold_explorer(model: LoanModel, report: evaluation.Report) -> None:
    st.header("Threshold explorer")
    st.caption("Move the threshold to see what it would do on the hold-out. Nothing changes until you press "
               "**Use this threshold**.")
    in_use = round(model.threshold * 200) / 2  # the slider's half-point steps
    chosen = st.slider("Threshold", min_value=1.0, max_value=99.0, value=min(max(in_use, 1.0), 99.0), step=0.5,
                       format="%.1f%%", key=f"model.threshold.{model.version}",
                       help="The model approves when the approval probability is at least the threshold.") / 100
    band = st.slider("Refer band", min_value=0.0, max_value=30.0, value=round(model.refer_band * 200) / 2,
                     step=0.5, format="%.1f%%", key=f"model.refer_band.{model.version}",
                     help="Applicants whose approval probability is within half this width of the threshold are "
                          "marked 'Refer to underwriter' instead of approved or rejected. 0: no band.") / 100
    rates, conf = report.at(chosen)
    cols = st.columns(3)
    for col, key, colour in zip(cols, charts.RATE_LABELS, ("off", "inverse", "inverse"), strict=True):
        col.metric(charts.RATE_LABELS[key], percent(rates[key]), points(rates[key] - report.metrics[key]),
                   delta_color=colour, border=True)
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.threshold_figure(report.thresholds, chosen, model.threshold), key="model.thresholds")
    right.plotly_chart(charts.confusion_figure(conf), key="model.confusion")
    if band:
        st.caption(f"A refer band {percent(band)} wide ({percent(chosen - band / 2)} to {percent(chosen + band / 2)}) "
                   f"would send {percent(report.referred_share(chosen, band))} of the hold-out applicants to an "
                   "underwriter.")
    unchanged = abs(chosen - model.threshold) < 0.0025 and abs(band - model.refer_band) < 0.0025
    if not signing.status().can_sign:
        # A replica or the app holds only the public key: a version saved here could not be signed,
        # and would be refused everywhere. New versions are made where the private key is.
        st.info("This host checks model cards with the training host's public key and cannot sign one, so "
                "a new threshold is saved on the training host: "
                f"{md_code(f'python train.py --set-threshold {chosen:.3f} --version {model.version}')}",
                icon=":material/key:")
        return
    if st.button("Use this threshold", type="primary", disabled=unchanged, key="model.use_threshold",
                 help=f"Saves a new version with a threshold of {percent(chosen)} (and the refer band) and makes "
                      f"it active; version {model.version} stays as it is."):
        act(lambda: use_threshold(model, chosen, band))


def versions(active: str | None) -> list[str]:
    st.header("Versions")
    frame = evaluation.versions_frame(registry())
    st.dataframe(frame, hide_index=True, column_config={
        "version": st.column_config.TextColumn("Version"),
        "trained": st.column_config.DatetimeColumn("Trained (UTC)", format="D MMM YYYY, HH:mm", timezone="UTC"),
        "kind": st.column_config.TextColumn("Kind"),
        "auc": st.column_config.NumberColumn("Hold-out AUC", format="%.3f"),
        "threshold": st.column_config.NumberColumn("Threshold", format="percent"),
        "active": st.column_config.CheckboxColumn("Active"),
        "parent": st.column_config.TextColumn("Threshold set from", help="Made on the Model page from this "
                                              "version's pipeline, with another threshold"),
    })
    ids = frame["version"].tolist()
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    chosen = left.selectbox("Version", ids, index=ids.index(active) if active in ids else 0,
                            key=f"model.pick.{active}",
                            format_func=lambda v: f"{v} (active)" if v == active else v)
    if right.button("Make this version active", disabled=chosen == active, key="model.activate",
                    help="Rolls back (or forward): the app and score.py use the active version.",
                    width="stretch"):
        act(lambda: make_active(active, chosen))
    return ids


def compare(model: LoanModel, ids: list[str]) -> None:
    st.header("Compare two versions")
    if len(ids) < 2:
        st.info("There is only one version so far. Train another (for example `python train.py --model gbm`) "
                "or save a threshold above to compare them.")
        return
    others = [v for v in ids if v != model.version]
    left, right = st.columns(2)
    first = left.selectbox("Version", ids, index=ids.index(model.version) if model.version in ids else 0,
                           key=f"model.compare.first.{model.version}")
    second = right.selectbox("Against", ids, index=ids.index(others[0]), key=f"model.compare.second.{model.version}")
    if first == second:
        st.info("Choose two different versions.")
        return
    reports = [report_of(current_model(version=v)) for v in (first, second)]
    if None in reports:
        return
    if not evaluation.same_holdout(reports):
        st.info("These versions were scored on different hold-out applicants (other data or another seed), so "
                "small differences between them may be chance.")
    left, right = st.columns([2, 3])
    left.table(md_table(evaluation.comparison_table(reports)))
    right.plotly_chart(charts.roc_figure({r.version: r.roc for r in reports}), key="model.compare.roc")


st.title("Model")
if notice := st.session_state.pop("model.notice", None):
    st.success(notice, icon=":material/check_circle:")
try:
    model = load_current()
except ModelFolderError as exc:
    st.error(f"The model cannot be used: {exc}")
    st.stop()
except ModelIntegrityError as exc:
    # A broken active version must not lock out the one place that can roll it back.
    st.error(f"The active version cannot be used: {md(exc)}")
    try:
        active = active_version(registry())
    except ModelIntegrityError:
        active = None  # ACTIVE itself is what is broken: any version may be made active
    versions(active)
    st.stop()
model_card(model)
imported.imported_facts(model)
imported.directions_section(model)
prohibited_bases(model)
report = report_of(model)
if report is not None:
    performance(model, report)
    fairness_section(model)
    threshold_explorer(model, report)
ids = versions(model.version)
compare(model, ids)
