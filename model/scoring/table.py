"""One table of applicants in, the same table with its decisions out: the path every engine shares.

`score_table` is what `score.py`, the Batch page, the Dask engine and a Spark `mapInArrow` call.
It reads nothing, writes nothing and records nothing (no file, no log, no global setting), so the
same rows give the same answer in a thread, on a Dask worker or inside a Spark executor; writing
the output and recording the decisions are the caller's job, from what the result carries.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from model.core.errors import TableError
from model.scoring.decisions import Decided, decide

if TYPE_CHECKING:
    from model.scoring.predictor import LoanModel

# The columns added after the input's, in this order, with these types.
OUTPUT_COLUMNS = ("decision_id", "probability", "decision", "referred", "reasons", "reason_codes", "out_of_range",
                  "error")
NUMBER_COLUMNS = {"probability": pa.float64(), "decision": pa.int8(), "referred": pa.int8()}  # the rest is text
OUTPUT_TYPES = {name: NUMBER_COLUMNS.get(name, pa.string()) for name in OUTPUT_COLUMNS}
# A cell a person reads as a plain number (-5, +1.5e3, 62,000): quoted without repr's quotes in errors.
PLAIN_NUMBER = r"^[+-]?(\d{1,3}(,\d{3})+(\.\d+)?|\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"


@dataclass(frozen=True)
class ScoredTable:
    """The decisions for one table; `table` is what score.py writes, `decided` is for the log.

    Rows are numbered `first_row`, `first_row + 1`, ... (a file's rows from 1, the first row under
    the header), so that a chunk of a file names its rows as the file does.
    """

    table: pa.Table  # the input's columns untouched, then OUTPUT_COLUMNS
    first_row: int
    decided: Decided  # the one decision path's result: the scored rows' validated values, probabilities, reasons
    decision_ids: pa.Array  # the scored rows' ids, in order (nulls when none were asked for)
    errors: dict[int, str]  # row number → why that row was not scored, in row order

    @property
    def rows(self) -> int:
        return self.table.num_rows

    @property
    def scored(self) -> int:
        return len(self.decided)

    @property
    def approved(self) -> int:
        return int(self.decided.decision.sum())

    def problems(self, limit: int) -> list[str]:
        """The first `limit` bad rows as "row N: why" lines."""
        return [f"row {row}: {why}" for row, why in list(self.errors.items())[:limit]]

    def to_pandas(self) -> pd.DataFrame:
        """The output as a DataFrame indexed by row number."""
        frame = plain_output(self.table).to_pandas()  # codes can repeat across reason texts: plain text
        frame.index = pd.RangeIndex(self.first_row, self.first_row + self.rows, name="row")
        return frame


def score_table(model: LoanModel, data: pa.Table | pa.RecordBatch | pd.DataFrame, *, first_row: int = 1,
                new_ids: Callable[[int], pa.Array] | None = None) -> ScoredTable:
    """Validate, score and explain every row of `data`; a bad row gets an `error` instead of a decision.

    Columns are matched by name (any order, extra columns carried through untouched); cells may
    be text, as read from a CSV ("$62,000" is a number), or typed, as in Parquet. The output adds
    probability (float), decision (1/0 at the model's threshold), reasons (`; `-separated),
    out_of_range (comma-separated fields outside the training range) and error (every problem
    of the row, quoting its cells), with `decision_id`, `referred` and `reason_codes`.
    Decided by `scoring.decisions.decide`, the one decision path. `new_ids(n)` gives the scored
    rows their decision ids (`records.log.decision_id_array` for a run that records them); without
    it `decision_id` is empty. Raises TableError only when nothing can be scored.
    """
    table = _as_table(data)
    schema = model.schema
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise TableError(f"required column(s) missing: {', '.join(missing)}")
    taken = [name for name in OUTPUT_COLUMNS if name in table.column_names]
    if taken:
        raise TableError(f"the table already has column(s) {', '.join(taken)}, which the output adds "
                         "(is it a scored file?): remove or rename them")
    n = table.num_rows
    frame = pd.DataFrame({f.name: _feature(table.column(f.name), f.is_number) for f in schema.fields},
                         index=pd.RangeIndex(first_row, first_row + n), copy=False)
    decided = decide(model, frame)
    validation = decided.validation
    bad = validation.bad_rows
    ok = ~bad
    probability = np.full(n, np.nan)
    decision = np.zeros(n, dtype=np.int8)
    referred = np.zeros(n, dtype=np.int8)
    combos = np.zeros(n, dtype=np.int32)  # each row's index into the distinct reason texts and codes
    texts, codes = decided.reason_texts(), decided.code_texts()
    ids = new_ids(len(decided)) if new_ids is not None else pa.nulls(len(decided), pa.string())
    if len(decided):
        probability[ok] = decided.probability
        decision[ok] = decided.decision
        referred[ok] = decided.referred
        combos[ok] = decided.reason_index
    flag_codes, flag_texts = _flag_texts(validation.out_of_range, schema.names)
    errors = _row_errors(validation.errors, table, first_row)
    error = np.full(n, None, dtype=object)
    for row, message in errors.items():
        error[row - first_row] = message
    columns = {
        "decision_id": ids if not bad.any() else _spread(ids, ok),
        "probability": pa.array(probability, mask=bad),
        "decision": pa.array(decision, mask=bad),
        "referred": pa.array(referred, mask=bad),
        "reasons": pa.DictionaryArray.from_arrays(pa.array(combos, mask=bad), pa.array(texts, pa.string())),
        "reason_codes": pa.DictionaryArray.from_arrays(pa.array(combos, mask=bad), pa.array(codes, pa.string())),
        "out_of_range": pa.DictionaryArray.from_arrays(pa.array(flag_codes.astype(np.int32), mask=bad),
                                                       pa.array(flag_texts, pa.string())),
        "error": pa.array(error, pa.string()),
    }
    for name in OUTPUT_COLUMNS:
        table = table.append_column(name, columns[name])
    return ScoredTable(table=table, first_row=first_row, decided=decided, decision_ids=ids, errors=errors)


def _spread(values: pa.Array, ok: np.ndarray) -> pa.Array:
    """`values` (one per True of `ok`) at their rows, null at the others."""
    at = np.full(len(ok), -1, dtype=np.int64)
    at[ok] = np.arange(int(ok.sum()))
    return values.take(pa.array(at, mask=~ok))


def _as_table(data: pa.Table | pa.RecordBatch | pd.DataFrame) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pd.DataFrame):
        arrays = {}
        for name in data.columns:
            column = data[name]
            try:
                arrays[str(name)] = pa.array(column, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers and text mixed: carried as text
                arrays[str(name)] = pa.array([None if pd.isna(v) else str(v) for v in column], pa.string())
        return pa.table(arrays)
    raise TypeError(f"score_table takes a pyarrow Table or RecordBatch or a pandas DataFrame, "
                    f"not {type(data).__name__}")


def _feature(column: pa.ChunkedArray, number: bool) -> np.ndarray:
    """A field's cells for validation: numbers parsed by pyarrow when the whole column parses."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if number and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        try:
            return pc.cast(column, pa.float64()).to_numpy()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # "$62,000", " 35", "abc": validation reads these cells one by one and names the bad ones
    if number and (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        return pc.cast(column, pa.float64()).to_numpy()
    return column.to_numpy()


def _row_errors(errors: list, table: pa.Table, first: int) -> dict[int, str]:
    """Each bad row's problems in one line, quoting the cell as it stands in the input."""
    out: dict[int, list[str]] = {}
    for e in errors:
        cell = table.column(e.field)[int(e.row) - first].as_py()
        text = cell if isinstance(cell, str) or cell is None else str(cell)
        if text is None or not text.strip():
            problem = f"{e.field} is required" if e.why == "is required" else f"{e.field} is empty: {e.why}"
        else:
            shown = text if re.fullmatch(PLAIN_NUMBER, text) else repr(cell)
            problem = f"{e.field} = {shown}: {e.why}"
        out.setdefault(int(e.row), []).append(problem)
    return {row: "; ".join(problems) for row, problems in out.items()}


def _flag_texts(masks: dict[str, np.ndarray], names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the comma-separated names of flagged fields, as codes into a table of texts."""
    bits = np.zeros(len(next(iter(masks.values()))) if masks else 0, dtype=np.int64)
    flagged = [name for name in names if name in masks]
    for k, name in enumerate(flagged):
        bits |= masks[name].astype(np.int64) << k
    codes, unique = pd.factorize(bits)
    texts = np.array([", ".join(name for k, name in enumerate(flagged) if int(combo) >> k & 1)
                      for combo in unique] or [""], dtype=object)
    return codes, texts


def output_schema(input_schema: pa.Schema) -> pa.Schema:
    """The schema `score_table`'s output is written with, for input of `input_schema`."""
    return pa.schema([*input_schema, *(pa.field(name, OUTPUT_TYPES[name]) for name in OUTPUT_COLUMNS)])


def plain_output(table: pa.Table) -> pa.Table:
    """`score_table`'s output with its dictionary-encoded columns as plain text (`output_schema`)."""
    inputs = pa.schema(list(table.schema)[:-len(OUTPUT_COLUMNS)])
    return table.cast(output_schema(inputs))
