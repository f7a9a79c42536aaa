"""Model: how good the active version is, where its threshold should be, and which version is live."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from model import evaluation
from model.core.errors import ModelFolderError, ModelIntegrityError
from model.core.formatting import percent, utc_time
from model.core.protected import allowed_in_card
from model.records.access import Action
from model.records.changes import ModelChanges, Proposal
from model.registry import signing
from model.registry.store import active_version
from model.scoring.predictor import LoanModel
from model.training.changes import model_changes
from ui import fairness as fairness_ui
from ui import imported
from ui import model_charts as charts
from ui.identity import code, four_eyes, refuse_unless
from ui.resources import current_model, decision_log, load_current, registry
from ui.text import md, md_code, md_table

actor = refuse_unless(Action.VIEW_MODEL)
may_change = actor.may(Action.CHANGE_MODEL)
desk = model_changes(decision_log(), registry(), four_eyes=four_eyes())


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
    """Propose, approve, reject or withdraw (`change` returns the confirmation), then rerun so that the
    sidebar and every page pick up the active version from the loader, which is keyed by checksum."""
    try:
        st.session_state["model.notice"] = change()
    except (ModelIntegrityError, OSError, ValueError, SQLAlchemyError) as exc:
        st.error(f"Nothing was changed: {md(exc)}")
        return
    st.rerun()


def outcome(proposal: Proposal) -> str:
    """What a proposal did, for the notice after the rerun."""
    if proposal.status == "approved":
        kept = proposal.from_version or "the previous one"
        if proposal.kind == "threshold":
            return (f"Threshold {percent(proposal.to_threshold)} saved as version {proposal.result_version}, now "
                    f"active. Version {kept} is kept unchanged: make it active again below at any time.")
        return f"Version {proposal.result_version} is now active; the previous one, {kept}, is kept."
    return (f"Change #{proposal.id} proposed: {proposal.summary}. It takes effect when another person with the "
            "risk role approves it below.")


def justification(key: str) -> str:
    return st.text_area("Justification (required, kept in the model change history)", key=key, height=80,
                        max_chars=2000, placeholder="Why this change, and what evidence supports it")


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
    st.caption("Move the threshold to see what it would do on the hold-out. "
               + ("Nothing changes until a change is proposed and another risk user approves it."
                  if desk.four_eyes else "Nothing changes until you press **Use this threshold**.")
               if may_change else "Move the threshold to see what it would do on the hold-out. Read-only: "
               "changes are proposed and approved by the risk role.")
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
    if not may_change:
        return
    unchanged = abs(chosen - model.threshold) < 0.0025 and abs(band - model.refer_band) < 0.0025
    if not signing.status().can_sign:
        # A replica or the app holds only the public key: a version saved here could not be signed,
        # and would be refused everywhere. New versions are made where the private key is.
        st.info("This host checks model cards with the training host's public key and cannot sign one, so "
                "a new threshold is saved on the training host: "
                f"{md_code(f'python train.py --set-threshold {chosen:.3f} --version {model.version}')}",
                icon=":material/key:")
        return
    why = justification(f"model.why.threshold.{model.version}")
    label = "Propose this threshold" if desk.four_eyes else "Use this threshold"
    effect = ("once another person with the risk role approves it" if desk.four_eyes
              else "at once (demo mode: four eyes is off)")
    if st.button(label, type="primary", disabled=unchanged, key="model.use_threshold",
                 help=f"Saves a new version with a threshold of {percent(chosen)} (and the refer band) and makes "
                      f"it active {effect}; version {model.version} stays as it is."):
        act(lambda: outcome(desk.propose_threshold(actor, model.version, chosen, why, refer_band=band)))


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
    if not may_change:
        return ids
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    chosen = left.selectbox("Version", ids, index=ids.index(active) if active in ids else 0,
                            key=f"model.pick.{active}",
                            format_func=lambda v: f"{v} (active)" if v == active else v)
    label = "Propose making it active" if desk.four_eyes else "Make this version active"
    pressed = right.button(label, disabled=chosen == active, key="model.activate", width="stretch",
                           help="Rolls back (or forward): the app, score.py and the API use the active version.")
    why = justification(f"model.why.activate.{active}")
    if pressed:
        act(lambda: outcome(desk.propose_activation(actor, chosen, why)))
    return ids


def proposals(desk: ModelChanges) -> None:
    """Changes waiting for a second person: approve or reject another's, withdraw one's own."""
    if not desk.four_eyes:
        return
    st.header("Proposed changes")
    waiting = desk.pending()
    if not waiting:
        st.caption("No change is waiting for approval.")
        return
    for p in waiting:
        with st.container(border=True):
            st.markdown(f"**Change #{p.id}**: {p.summary}")
            st.caption(f"Proposed by {code(p.proposed_by)} on {utc_time(p.proposed_at.isoformat())}. Justification:")
            st.text(p.justification)  # typed by a person: shown as text, never as markdown
            if not may_change:
                continue
            if p.proposed_by == actor.label:
                st.caption("Another person with the risk role must approve it.")
                if st.button("Withdraw", key=f"model.withdraw.{p.id}"):
                    act(lambda p=p: f"Change #{desk.withdraw(actor, p.id).id} withdrawn.")
                continue
            note = st.text_input("Note or reason (a reason is required to reject)", key=f"model.note.{p.id}",
                                 max_chars=2000)
            left, right = st.columns(2)
            if left.button("Approve and apply", type="primary", key=f"model.approve.{p.id}", width="stretch"):
                act(lambda p=p, note=note: outcome(desk.approve(actor, p.id, note)))
            if right.button("Reject", key=f"model.reject.{p.id}", width="stretch"):
                act(lambda p=p, note=note: f"Change #{desk.reject(actor, p.id, note).id} rejected.")


def history(desk: ModelChanges) -> None:
    st.header("Model change history")
    frame = desk.history(limit=200)
    if frame.empty:
        st.caption("No change on record yet: proposals, approvals, rejections, withdrawals and activations from "
                   "`python train.py --activate` appear here (and in `python train.py --history`).")
        return
    st.dataframe(pd.DataFrame({
        "When (UTC)": frame["at"].dt.strftime("%d %b %Y, %H:%M"),
        "What": [f"#{c} {a}" if pd.notna(c) else a for c, a in zip(frame["change_id"], frame["action"], strict=True)],
        "Change": [_change_text(r) for r in frame.itertuples()],
        "By": frame["actor"],
        "Why": frame["note"].fillna(""),
    }), hide_index=True, key="model.history")


def _change_text(row) -> str:
    if row.kind == "threshold":
        return f"threshold {_pct(row.from_threshold)} → {_pct(row.to_threshold)}"
    verb = "roll back" if row.kind == "rollback" else "activate"
    return f"{verb} {row.from_version or '–'} → {row.to_version or '–'}"


def _pct(value) -> str:
    return "–" if value is None or pd.isna(value) else percent(value)


def compare(model: LoanModel, ids: list[str]) -> None:
    st.header("Compare two versions")
    if len(ids) < 2:
        st.info("There is only one version so far. Train another (for example `python train.py --model gbm`) "
                "or give one a new threshold above to compare them.")
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
    proposals(desk)
    history(desk)
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
proposals(desk)
compare(model, ids)
history(desk)
