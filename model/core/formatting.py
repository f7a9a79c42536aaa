"""Values written for people: "$62,000", "71.4%", "6 years", never 62000.0."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from model.core.schema import Field


def format_value(field: Field, value: Any, decimals: int | None = None) -> str:
    """A field's value for people. Decimals follow the field's training range (a ratio from 0 to 1
    reads 0.35, an income has none) unless `decimals` says how many a caller needs."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "(not given)"
    if not field.is_number:
        return str(value)
    value = float(value)
    if field.unit == "$":
        return f"-${-value:,.0f}" if value < 0 else f"${value:,.0f}"
    if decimals is None:
        decimals = 0 if field.integer or value.is_integer() else field_decimals(field)
        text = f"{value:,.{decimals}f}"
    else:  # as precise as asked, without trailing zeros: 0.545, 0.54, 36
        text = f"{value:,.{decimals}f}"
        text = text.rstrip("0").rstrip(".") if "." in text else text
    if field.unit == "years":
        return f"{text} year" if text == "1" else f"{text} years"
    if field.unit and field.unit != "points":
        return f"{text} {field.unit}"
    return text


def field_decimals(field: Field) -> int:
    """Decimals that tell a field's values apart: a hundredth of its training range, one at least."""
    span = (field.train_max or 0) - (field.train_min or 0)
    if span <= 0:
        return 1
    return int(min(6, max(1, -math.floor(math.log10(span / 100)))))


def step_text(field: Field, step: float) -> str:
    """A step of a field ('each extra 0.01 of …'), with the decimals the step itself needs."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 1
    return format_value(field, step, None if field.unit == "$" else decimals)


def percent(p: float, digits: int = 1) -> str:
    return f"{100 * p:.{digits}f}%"


def money(x: float) -> str:
    return f"${x:,.0f}"


REFER_LABEL = "Refer to underwriter"


def decision_label(approved: bool, referred: bool = False) -> str:
    """"Approved", "Rejected", or "Refer to underwriter" for a case inside the model's refer band."""
    if referred:
        return REFER_LABEL
    return "Approved" if approved else "Rejected"


def with_article(phrase: str) -> str:
    """'an annual income', 'a credit score'."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def utc_time(created_at: str | None) -> str:
    """A model card's ISO time for people: '25 Nov 2026, 10:42 UTC'."""
    try:
        return datetime.fromisoformat((created_at or "").replace("Z", "+00:00")).strftime("%d %b %Y, %H:%M UTC")
    except ValueError:
        return created_at or "unknown"
