"""CSV that a spreadsheet opens as data, never as formulas (OWASP "CSV injection").

A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is run as a formula by Excel,
LibreOffice and Google Sheets: an officer's name `=HYPERLINK("http://…")` or a category value
from a user's file would become a live link or worse in the exported log. Every CSV LoanDesk writes
goes through here: such cells (and column names) get a leading `'`, while plain numbers such as
-5, +1.5e3 or -62,000, which a spreadsheet reads as numbers anyway, stay as they are.
"""

from __future__ import annotations

import re

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

FORMULA_START = r"^[=+\-@\t\r]"
PLAIN_NUMBER = r"^[+-]?(\d{1,3}(,\d{3})+(\.\d+)?|\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_FORMULA = re.compile(FORMULA_START)
_NUMBER = re.compile(PLAIN_NUMBER)


def neutralize_text(text: str) -> str:
    """One cell made safe: a leading ' when a spreadsheet would run it."""
    if _FORMULA.match(text) and not _NUMBER.match(text):
        return "'" + text
    return text


def neutralize(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """`neutralize_text` over a pyarrow text column, vectorized; other types are returned as they are."""
    if pa.types.is_dictionary(column.type):
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        return pa.chunked_array([
            pa.DictionaryArray.from_arrays(chunk.indices, neutralize(chunk.dictionary)).cast(pa.string())
            for chunk in chunks
        ], pa.string())
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column
    risky = pc.match_substring_regex(column, FORMULA_START)
    if not pc.any(risky).as_py():
        return column
    risky = pc.and_(risky, pc.invert(pc.match_substring_regex(column, PLAIN_NUMBER)))
    return pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells and column names are all neutralized."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if (column.dtype == object or pd.api.types.is_string_dtype(column)
                or isinstance(column.dtype, pd.CategoricalDtype)):
            out[name] = [neutralize_text(v) if isinstance(v, str) else v for v in column.astype(object)]
    out.columns = [neutralize_text(str(c)) for c in out.columns]
    if out.index.name is not None:
        out.index.name = neutralize_text(str(out.index.name))
    return out


def to_csv_bytes(frame: pd.DataFrame, *, index: bool = False) -> bytes:
    """The frame as formula-safe CSV (UTF-8): what every download button hands out.

    Lines end in CRLF, as RFC 4180 has them, so that a cell holding a lone \r is quoted too.
    """
    return safe_frame(frame).to_csv(index=index, lineterminator="\r\n").encode("utf-8")
