"""The one number parser: how text from a form, a CSV cell or JSON becomes a number, everywhere.

"$62,000" and "62,000" read as 62000; a comma counts only as a thousands separator, so "62.000,50"
stays unreadable rather than becoming 62.0005; booleans, complex numbers and bytes are not numbers.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd


def blanks(raw: np.ndarray) -> np.ndarray:
    """Which cells are empty: NaN, None, or text that is only spaces."""
    if raw.dtype.kind in "iub":
        return np.zeros(len(raw), dtype=bool)
    if raw.dtype.kind == "f":
        return np.isnan(raw)
    mask = pd.isna(raw)
    strings = np.array([isinstance(v, str) for v in raw], dtype=bool)
    if strings.any():
        mask[strings] = [not v.strip() for v in raw[strings]]
    return mask


THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")


def number_text(text: str) -> str:
    """'$62,000' → '62000'. A comma counts only as a thousands separator: '62.000,50' stays
    unreadable rather than becoming 62.0005."""
    text = text.strip().removeprefix("$").strip()
    return text.replace(",", "") if THOUSANDS.fullmatch(text) else text


# Never read as 1/0, a real part, or digits (validation refuses them by name).
NOT_NUMBERS = (bool, np.bool_, complex, np.complexfloating, bytes, bytearray, memoryview, np.bytes_)


def to_numbers(raw: np.ndarray) -> np.ndarray:
    """Values as floats, NaN where a value is not a number ("$62,000" → 62000.0; True is not 1)."""
    if raw.dtype.kind in "bcS":
        return np.full(len(raw), np.nan)
    if raw.dtype.kind in "iuf":
        return raw.astype(float)
    cleaned = [number_text(v) if isinstance(v, str) else v for v in raw]
    if any(isinstance(v, NOT_NUMBERS) for v in cleaned):
        cleaned = [np.nan if isinstance(v, NOT_NUMBERS) else v for v in cleaned]
    try:
        return pd.to_numeric(pd.Series(cleaned, dtype=object), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError, OverflowError):  # a list, a dict or a huge integer among the values
        return np.array([one_number(v) for v in cleaned], dtype=float)


def one_number(value: Any) -> float:
    """One value as a float, NaN when it is not a number; a number too large for a float is inf."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_):
        try:
            return float(value)
        except OverflowError:
            return np.inf if value > 0 else -np.inf
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return np.nan
    return np.nan
