"""What the Model page shows about a version imported from a saved pipeline: where it came from, the
caveat on its measurements, and the directions measured on a grid (age checked by law)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from model.scoring.predictor import LoanModel
from model.training.directions import Direction
from ui.text import md, md_code

DIRECTION_WORDS = {"rises": "Approval rises with it", "falls": "Approval falls as it rises",
                   "flat": "No effect", "mixed": "Both ways (not monotone)"}


def imported_facts(model: LoanModel) -> None:
    """The import's provenance and the overlap caveat; nothing for a version trained here."""
    facts = model.card.imported
    if not facts:
        return
    st.warning(f"**Imported pipeline.** {md(facts.get('holdout_note', ''))}", icon=":material/info:")
    lines = [
        f"- File: {md_code(facts.get('file', '?'))} ({md(facts.get('format', 'pickle'))}), "
        f"SHA-256 {md_code(facts.get('sha256', '')[:12])}",
        f"- Made with scikit-learn {md(facts.get('made_with_sklearn', '?'))}"
        + (" (another version than the one installed: imported with --allow-version-mismatch)"
           if facts.get("version_mismatch_allowed") else ""),
        f"- Approved means class {md_code(facts.get('positive_class', '?'))} of the pipeline",
    ]
    if facts.get("trusted_modules"):
        lines.append("- Code trusted at import (must be importable wherever it is served): "
                     + ", ".join(md_code(m) for m in facts["trusted_modules"]))
    st.markdown("\n".join(lines))


def directions_section(model: LoanModel) -> None:
    """The directions measured at import, per numeric field; an allowed fall with age in red."""
    measured = model.card.directions
    if not measured or not measured.get("fields"):
        return
    st.subheader("Directions, measured")
    fields = {name: Direction.from_dict(d) for name, d in measured["fields"].items()}
    rows = next(iter(fields.values())).rows
    st.caption(f"Each field swept over a {measured.get('grid_points', '?')}-point grid of its range for {rows:,} "
               "labelled applicants, everything else held fixed. Age (any column named so) may never count "
               "against an older applicant.")
    labels = {f.name: f.label for f in model.schema.fields}
    ages = set(measured.get("age_fields") or ())
    table = pd.DataFrame([{
        "Field": labels.get(name, name),
        "Direction": DIRECTION_WORDS.get(d.direction, d.direction),
        "Applicants rising": f"{d.rows_rising:,} of {d.rows:,}",
        "Applicants falling": f"{d.rows_falling:,} of {d.rows:,}",
        "Largest drop as it rises": f"{d.largest_fall:.1%}" if d.largest_fall else "none",
        "Rule": ("age: may never fall (ECOA), checked" if name in ages and not d.largest_fall
                 else "age: FALLS, allowed at import" if name in ages else ""),
    } for name, d in fields.items()])
    st.dataframe(table, hide_index=True)
    allowed = measured.get("age_decline_allowed")
    if allowed:
        st.error("**Approval falls with age, allowed at import** for "
                 + md(", ".join(labels.get(n, n) for n in allowed.get("fields", [])))
                 + ". Justification recorded: " + md(allowed.get("justification", "")), icon=":material/gavel:")
