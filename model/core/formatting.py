"""Values written for people: "$62,000", "71.4%", "6 years", never 62000.0."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from model.core.schema import Field


def format_value(field: Field, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "(not given)"
    if not field.is_number:
        return str(value)
    value = float(value)
    if field.unit == "$":
        return f"-${-value:,.0f}" if value < 0 else f"${value:,.0f}"
    text = f"{value:,.0f}" if field.integer or value.is_integer() else f"{value:,.1f}"
    if field.unit == "years":
        return f"{text} year" if text == "1" else f"{text} years"
    if field.unit and field.unit != "points":
        return f"{text} {field.unit}"
    return text


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
