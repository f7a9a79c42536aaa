"""Decide: one applicant in; the decision, its reasons and what would change it out."""

import streamlit as st

from model.core.formatting import format_value, percent
from model.core.schema import ValidationError
from model.records.access import Action
from model.records.log import entry_for
from model.records.overrides import APPROVED, REFERRED, REJECTED
from model.scoring.explain import grid_2d
from ui import charts, forms
from ui import decision_actions as actions
from ui.identity import refuse_unless
from ui.resources import current_model, decision_log
from ui.text import md, md_code

actor = refuse_unless(Action.DECIDE)
# In demo mode with no name typed there is no officer to name (an override then asks for one).
officer = None if actor.is_demo and actor.name == "demo" else actor.label
model = current_model()
schema = model.schema
numbers = [f.name for f in schema.fields if f.is_number and f.train_max > f.train_min]
state = st.session_state
form_key = f"decide-{model.sha256[:8]}"

st.title("Decide on an application")
left, right = st.columns([1, 2], gap="large")
with left:
    entered = forms.applicant_form(schema, form_key, state.get("decide.applicant"))
if entered is not None:
    state["decide.applicant"] = entered
    state["decide.unlogged"] = True
applicant = state.get("decide.applicant")
result_box = right.container()
chart_box = st.container()

if applicant is None:
    result_box.info("Enter the applicant's details and press **Decide**.")
    st.stop()

with chart_box:
    st.subheader("How the decision changes")
    usual = [n for n in numbers if not schema[n].protected]  # age is no lever to show first
    default = "income" if "income" in numbers else (usual or numbers or [None])[0]
    vary = st.selectbox("Vary one field", numbers, index=numbers.index(default) if default else 0,
                        format_func=lambda n: schema[n].label, key="decide.vary") if numbers else None

try:
    decision = model.decide(applicant, curve_field=vary)
except ValidationError as exc:
    with result_box:
        st.error("Please correct the highlighted field(s); nothing was decided.")
        for e in exc.errors:
            label = schema[e.field].label if e.field in schema else e.field
            shown = "" if e.value is None else f" ({e.value})"
            st.markdown(f"- **{md(label)}**{md(shown)}: {md(e.why)}")
    state.pop("decide.unlogged", None)
    st.stop()

log = decision_log()
log_warning = state.get("decide.log_warning")
if state.pop("decide.unlogged", False):
    entry = entry_for(model, decision, source="form", officer=officer)
    result = log.record(entry)
    log_warning = state["decide.log_warning"] = result.warning
    state["decide.decision_id"] = entry.decision_id if result.ok else None
decision_id = state.get("decide.decision_id")

with result_box:
    color = charts.REFER if decision.referred else charts.APPROVE if decision.approved else charts.REJECT
    st.markdown(f"<div class='loandesk-decision' style='font-size:2.8rem;font-weight:700;color:{color};"
                f"line-height:1.1'>{decision.label}</div>", unsafe_allow_html=True)
    if decision_id:
        st.caption(f"Decision id `{decision_id}`")
    band = (f", inside the refer band of {percent(model.refer_band / 2)} either side: an underwriter decides"
            if decision.referred else "")
    st.markdown(f"Approval probability **{percent(decision.probability)}** "
                f"against a threshold of **{percent(decision.threshold)}**{band}")
    st.plotly_chart(charts.probability_bar(decision.probability, decision.threshold),
                    config={"displayModeBar": False}, key="decide.bar")
    if log_warning:
        st.warning(md(log_warning), icon=":material/database:")
    st.markdown("**Principal reasons**" if not decision.approved else "**What supports approval**")
    if decision.reasons:
        st.markdown("\n".join(f"- {md(r.text)} · {md_code(r.code)}" for r in decision.reasons))
    else:
        st.markdown("- No single field stands out from the typical approved applicant.")
    flips = [fp.text for fp in decision.flips.values()]
    if flips:
        st.markdown("**What would change the decision**")
        st.markdown("\n".join(f"- {md(t)}" for t in flips))
    for name in decision.out_of_range:
        f = schema[name]
        st.warning(md(f"{f.label} {format_value(f, decision.applicant[name])} is outside the range seen in "
                      f"training ({format_value(f, f.train_min)} to {format_value(f, f.train_max)}): "
                      "the model is extrapolating, so treat this decision with care."))
    if decision.imputed:
        names = ", ".join(schema[n].label for n in decision.imputed)
        st.info(f"Not given, so filled in with a typical value by the model: {md(names)}.")
    if decision_id:
        said = REFERRED if decision.referred else APPROVED if decision.approved else REJECTED
        override = actions.final_decision(log, decision_id)
        if override is not None:
            shown = st.success if override.final_decision else st.error
            shown(f"Final decision: **{actions.CHOICES[override.final_decision]}** (the model said {said})",
                  icon=":material/gavel:")
            st.text(f"By {override.officer}: {override.reason_text}. Note: {override.note}")
        final = override.final_decision if override is not None else None if decision.referred else decision.decision
        if final == 0:
            actions.notice_button(log, model, decision_id, officer)
        actions.override_form(log, decision_id, said, officer, actor)
    elif not log_warning:
        st.caption("This decision is not on record, so it cannot be overridden or given a notice.")

with chart_box:
    if decision.curve is not None:
        st.plotly_chart(charts.sensitivity_figure(decision.curve, schema[vary]), key="decide.curve")
    if len(numbers) >= 2:
        st.subheader("Two fields at once")
        cx, cy = st.columns(2)
        levers = [n for n in numbers if not schema[n].protected] + [n for n in numbers if schema[n].protected]
        x_default = numbers.index("income") if "income" in numbers else numbers.index(levers[0])
        y_default = (numbers.index("loan_amount") if "loan_amount" in numbers
                     else numbers.index(next(n for n in levers if n != numbers[x_default])))
        x_field = cx.selectbox("Across", numbers, index=x_default, format_func=lambda n: schema[n].label,
                               key="decide.x")
        y_choices = [n for n in numbers if n != x_field]
        y_field = cy.selectbox("Up", y_choices, format_func=lambda n: schema[n].label, key="decide.y",
                               index=y_choices.index(numbers[y_default]) if numbers[y_default] in y_choices else 0)
        grid = grid_2d(model, applicant, x_field, y_field)
        st.plotly_chart(charts.heatmap_figure(grid, schema[x_field], schema[y_field]), key="decide.heatmap")
