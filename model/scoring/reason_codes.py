"""Stable reason codes: one per field and the way it differs from the typical approved applicant.

A code is made from the field's name and the kind of difference (`CREDIT_SCORE_LOW`,
`LOAN_AMOUNT_HIGH`, `INCOME_MISSING`, `HOME_OWNERSHIP_DIFFERS`), never from a position in a list,
so it means the same thing in every model version, in the API, the batch output, the log and the
notice, and a bank can attach its own wording to it once (see `model/notices/template.toml`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from model.core.schema import Field

LOW, HIGH, MISSING, DIFFERS = "LOW", "HIGH", "MISSING", "DIFFERS"
KINDS = (LOW, HIGH, MISSING, DIFFERS)
SEPARATOR = ";"  # between the codes of one decision, in the batch output and the log


def reason_code(field_name: str, kind: str) -> str:
    """`credit_score`, LOW → `CREDIT_SCORE_LOW`; any name becomes capitals, digits and `_`."""
    if kind not in KINDS:
        raise ValueError(f"a reason kind is one of {', '.join(KINDS)}, not {kind!r}")
    stem = re.sub(r"[^A-Z0-9]+", "_", field_name.upper()).strip("_") or "FIELD"
    return f"{stem}_{kind}"


def reason_kind(f: Field, value: Any, reference: Any) -> str:
    """How `value` differs from the typical approved applicant's: the same rule as the reason's text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if not f.is_number:
        return DIFFERS
    return HIGH if float(value) - float(reference) > 0 else LOW


def code_for(f: Field, value: Any, reference: Any) -> str:
    return reason_code(f.name, reason_kind(f, value, reference))


def split_code(code: str) -> tuple[str, str]:
    """`CREDIT_SCORE_LOW` → (`CREDIT_SCORE`, `LOW`); ValueError for a text that is no reason code."""
    stem, _, kind = code.rpartition("_")
    if not stem or kind not in KINDS:
        raise ValueError(f"{code!r} is not a reason code (FIELD_LOW, FIELD_HIGH, FIELD_MISSING or FIELD_DIFFERS)")
    return stem, kind


def field_for_code(code: str, fields: Sequence[Field]) -> Field | None:
    """The field a code names, among `fields` (None when the model has no such field)."""
    stem, _ = split_code(code)
    for f in fields:
        if reason_code(f.name, LOW).rpartition("_")[0] == stem:
            return f
    return None


def join_codes(codes: Sequence[str]) -> str:
    return SEPARATOR.join(codes)


def parse_codes(text: str | None) -> list[str]:
    return [c.strip() for c in (text or "").split(SEPARATOR) if c.strip()]
