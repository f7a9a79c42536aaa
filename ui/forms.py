"""Form widgets generated from the model's schema, so another model gets its own fields."""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from model.core.formatting import field_decimals, format_value
from model.core.schema import Field, Schema
from ui.text import md

NOT_GIVEN = "(not given)"


def field_help(f: Field) -> str:
    parts = [f.help] if f.help else []
    if f.is_number and f.train_min is not None:
        parts.append(f"Seen in training: {format_value(f, f.train_min)} to {format_value(f, f.train_max)}.")
    if f.required:
        parts.append("Required.")
    else:
        parts.append("May be left empty (training had gaps here): the model then fills in a typical value.")
    return " ".join(parts)


def field_widget(f: Field, value: Any, key: str) -> Any:
    """One input for one field: numbers → number input, categories → select box."""
    if not f.is_number:
        options = list(f.categories) + ([] if f.required else [NOT_GIVEN])
        index = options.index(value) if value in options else 0
        choice = st.selectbox(md(f.title), options, index=index, key=key, help=md(field_help(f)))
        return None if choice == NOT_GIVEN else choice
    integer = f.integer and float(f.step).is_integer()
    cast = int if integer else float
    kwargs: dict[str, Any] = {"step": cast(f.step)}
    step_decimals = max(0, -math.floor(math.log10(f.step) + 1e-9)) if f.step > 0 else 2
    kwargs["format"] = "%d" if integer else f"%.{max(field_decimals(f), step_decimals)}f"  # 0.545 reads 0.545
    # No min_value/max_value: the browser would silently refuse a value beyond them, and the
    # officer would press Decide and see nothing happen. The schema's validation says what is wrong.
    # value=None keeps the input clearable (Streamlit reverts a cleared input that had a number as
    # its default), so the starting value goes in through session state instead.
    if key not in st.session_state:
        st.session_state[key] = None if value is None else cast(value)
    placeholder = "required" if f.required else "may be left empty"
    return st.number_input(md(f.title), value=None, key=key, help=md(field_help(f)), placeholder=placeholder,
                           **kwargs)


def applicant_form(schema: Schema, key: str, values: dict[str, Any] | None = None,
                   submit_label: str = "Decide") -> dict[str, Any] | None:
    """The applicant's fields in an st.form; returns the entered values when submitted."""
    values = values or schema.defaults()
    with st.form(key):
        entered = {f.name: field_widget(f, values.get(f.name), f"{key}.{f.name}") for f in schema.fields}
        submitted = st.form_submit_button(submit_label, type="primary", use_container_width=True)
    return entered if submitted else None
