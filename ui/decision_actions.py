"""What an officer does after the model has decided: override it, and give a rejected applicant their notice.

Both act on the decision on record (by its id), through the core: `model.records.overrides` checks
and records an override, `model.notices.produce` makes and records a notice. The page only draws.
"""

from __future__ import annotations

import streamlit as st

from model.core.errors import AccessDenied, DecisionLogError, LoanDeskError, OverrideError, TemplateError
from model.notices.content import uses_credit_score
from model.notices.produce import notice_for_decision, schemas_from
from model.notices.template import load_template
from model.records.access import Actor
from model.records.log import DecisionLog
from model.records.overrides import OVERRIDE_REASONS, REFERRED, Override, overrides_for, record_override
from model.scoring.predictor import LoanModel
from ui.resources import registry
from ui.text import md

CHOICES = {1: "Approve", 0: "Reject"}
FORM_KEYS = ("decide.override.final", "decide.override.reason", "decide.override.note")


def final_decision(log: DecisionLog, decision_id: str) -> Override | None:
    """The override that stands for this decision, if an officer made one (None when the log cannot say)."""
    try:
        done = overrides_for(log, decision_id)
    except DecisionLogError:
        return None
    return done[-1] if done else None


def override_form(log: DecisionLog, decision_id: str, said: str, officer: str | None, actor: Actor) -> None:
    """An officer's override: the final decision, a reason from the fixed list, a note; recorded in the log."""
    with st.expander("Override the model's decision" if said != REFERRED else "Decide this referred case",
                     expanded=said == REFERRED):
        choices = [1, 0] if said == REFERRED else [0 if said == "approved" else 1]
        with st.form(f"override-{decision_id}"):  # kept on a refusal, so the note is not typed twice
            final = st.radio("Final decision", choices, format_func=CHOICES.get, horizontal=True,
                             key="decide.override.final")
            reason = st.selectbox("Reason", list(OVERRIDE_REASONS), format_func=OVERRIDE_REASONS.get,
                                  key="decide.override.reason",
                                  index=list(OVERRIDE_REASONS).index("UNDERWRITER_REVIEW") if said == REFERRED else 0)
            note = st.text_area("Note", key="decide.override.note", max_chars=2000,
                                placeholder="Why, in your words: what you checked and what you found")
            if st.form_submit_button("Record the final decision", type="primary"):
                try:
                    record_override(log, decision_id, final_decision=final, reason=reason, note=note, officer=officer,
                                    actor=actor)
                except (OverrideError, DecisionLogError, AccessDenied) as exc:
                    st.error(f"Not recorded: {md(exc)}")
                else:
                    for key in FORM_KEYS:
                        st.session_state.pop(key, None)
                    st.rerun()


def notice_button(log: DecisionLog, model: LoanModel, decision_id: str, officer: str | None) -> None:
    """The download of the adverse action notice; the PDF is made, and recorded as produced, on click."""
    try:
        template = load_template()
    except TemplateError as exc:
        st.error(f"The adverse action notice cannot be made: {md(exc)}")
        return
    factors = ""
    if uses_credit_score(template, model.schema):
        factors = st.text_input("Key factors that lowered the credit score (from the credit report, optional)",
                                key=f"decide.key_factors.{decision_id}",
                                placeholder="e.g. Serious delinquency; Too many recent inquiries",
                                help="Printed in the notice's credit score disclosure (FCRA 615(a)); separate "
                                     "factors with ';'.")
    schemas = schemas_from(registry(), model)
    produced_by = officer or "unnamed officer"

    def make() -> bytes:  # runs on click, on a thread of its own: no Streamlit calls here
        try:
            return notice_for_decision(log, decision_id, template=template, schemas=schemas, produced_by=produced_by,
                                       source="form", key_factors=factors or None).pdf
        except LoanDeskError as exc:
            return f"No notice could be made: {exc}".encode()

    st.download_button("Download the adverse action notice (PDF)", data=make, mime="application/pdf",
                       file_name=f"adverse-action-notice-{decision_id}.pdf", on_click="ignore",
                       key="decide.notice", icon=":material/description:")
