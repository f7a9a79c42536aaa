"""Batch scoring: a CSV of applicants in, one decision per row out, streamed chunk by chunk.

`score_file` is the one implementation behind `score.py` and the Batch page. It never holds the
whole file: pyarrow reads a block of rows, the block is validated, scored, explained, written and
recorded in the decision log, and the next block reuses the memory. A bad row is reported in its
own `error` cell and the rest is scored; only a file that cannot be scored at all raises.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

from model.core.errors import BatchError
from model.records.log import DecisionLog, decision_id_array, entries_for
from model.scoring.decisions import Decided
from model.scoring.predictor import LoanModel
from model.scoring.table import NUMBER_COLUMNS, OUTPUT_COLUMNS, PLAIN_NUMBER, score_table
from model.training.data import sniff_delimiter

BLOCK_SIZE = 1 << 20  # bytes of CSV per chunk: about 45,000 rows of the built-in applicants
WORKERS = min(2, os.cpu_count() or 1)  # chunks scored at once
LOG_ROWS = 10_000  # decisions per write to the decision log: bulk, in bounded memory
MAX_PROBLEMS = 1000  # problems kept in the summary; every one is in the output's error column
# OWASP CSV injection: a cell starting with one of these is run as a formula by spreadsheets ...
FORMULA_START = r"^[=+\-@\t\r]"




@dataclass
class Progress:
    rows: int  # data rows read so far
    fraction: float  # of the input file's bytes, 0 to 1


@dataclass
class BatchSummary:
    """What a run did; `problems` holds the first rows with errors (all are in the output)."""

    input: Path
    output: Path
    rows: int = 0
    scored: int = 0
    approved: int = 0
    rejected: int = 0
    errors: int = 0  # rows in the output with an error instead of a decision
    unreadable: int = 0  # lines that were not a row of the table (wrong number of fields): not in the output
    problems: list[str] = field(default_factory=list)
    logged: int = 0
    log_warning: str | None = None

    @property
    def problem_count(self) -> int:
        return self.errors + self.unreadable

    def add(self, chunk: _Chunk) -> None:
        self.rows += chunk.rows
        self.scored += chunk.scored
        self.approved += chunk.approved
        self.rejected += chunk.scored - chunk.approved
        self.errors += chunk.rows - chunk.scored
        self.problems.extend(chunk.problems[:max(0, MAX_PROBLEMS - len(self.problems))])


def score_file(
    model: LoanModel,
    input_path: str | Path,
    output_path: str | Path,
    *,
    log: DecisionLog | None = None,
    source: str = "command",
    officer: str | None = None,
    progress: Callable[[Progress], None] | None = None,
    block_size: int = BLOCK_SIZE,
) -> BatchSummary:
    """Score every row of a CSV file into `output_path` (.parquet writes Parquet, anything else CSV).

    The output holds the input's columns untouched (as text, in input order) followed by
    probability, decision (1/0), reasons, out_of_range and error. Rows are numbered from 1, the
    first row under the header. Each scored row is recorded in `log` (None: not recorded) with
    `source` and `officer`. Raises BatchError, with a one-line message, only when nothing can be
    scored; the output file appears only when the run is complete.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    source_file = _open_source(input_path, model.schema.names)
    if output_path.resolve() == input_path.resolve():
        raise BatchError(output_path, "the output would overwrite the input; choose another name")
    if not output_path.parent.is_dir():
        raise BatchError(output_path, f"the folder {output_path.parent} does not exist")
    summary = BatchSummary(input_path, output_path)
    partial = output_path.with_name(f".{output_path.name}.partial-{os.getpid()}")
    size = max(input_path.stat().st_size, 1)
    parquet = output_path.suffix.lower() == ".parquet"
    try:
        # Chunks are scored on WORKERS threads (numpy and pyarrow release the GIL) and finished in
        # file order on this one: written, recorded, counted.
        # One BLAS thread per worker: the chunks are the parallelism, and BLAS threads spinning beside
        # them cost more CPU than they save (about 1.9 s → 1.1 s of CPU for a million rows).
        with (pa.OSFile(str(input_path)) as raw, _Writer(partial, source_file.columns, parquet=parquet) as writer,
              ThreadPoolExecutor(WORKERS) as pool, warnings.catch_warnings(), threadpool_limits(limits=1)):
            # Set here, before the workers start: a filter set inside a worker is not thread-safe.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            pending: deque[Future[_Chunk]] = deque()

            def finish() -> None:
                chunk = pending.popleft().result()
                writer.write(chunk.table)
                summary.add(chunk)
                if log is not None and chunk.scored and summary.log_warning is None:
                    _record(log, model, chunk, summary, source, officer)
                if progress is not None:
                    progress(Progress(summary.rows, min(raw.tell() / size, 1.0)))

            first = 1
            for batch in _batches(raw, source_file, block_size, summary):
                pending.append(pool.submit(_score_chunk, model, batch, first, not parquet))
                first += batch.num_rows
                if len(pending) > WORKERS:
                    finish()
            while pending:
                finish()
        if summary.rows == 0:
            if summary.unreadable:
                raise BatchError(input_path, f"no line under the header has the header's "
                                 f"{len(source_file.columns)} fields; first: {summary.problems[0]}")
            raise BatchError(input_path, "the file has a header but no rows to score")
        os.replace(partial, output_path)
    finally:
        partial.unlink(missing_ok=True)
    return summary


def preview_file(input_path: str | Path, schema_names: list[str], rows: int = 20) -> pd.DataFrame:
    """The first rows of a CSV as text, read the way `score_file` reads it (refused the same way)."""
    path = Path(input_path)
    source = _open_source(path, schema_names)
    with pa.OSFile(str(path)) as raw:
        for batch in _batches(raw, source, 1 << 16, BatchSummary(path, path)):
            return batch.slice(0, rows).to_pandas()
    return pd.DataFrame(columns=source.columns)


def read_results(output_path: str | Path) -> pa.Table:
    """A scored CSV back as a table: the input's columns as text, repeated texts dictionary-encoded."""
    path = Path(output_path)
    with open(path, "rb") as fh:
        header = next(csv.reader(io.StringIO(fh.readline().decode("utf-8"))))
    types = {name: pa.string() for name in header}
    types.update(NUMBER_COLUMNS)
    return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(newlines_in_values=True),
                          convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True,
                                                               null_values=[""], auto_dict_encode=True))


SHOW = ("All rows", "Approved", "Rejected", "Rows with errors")


def select_rows(results: pa.Table, show: str = SHOW[0], limit: int = 1000) -> tuple[pd.DataFrame, int]:
    """Up to `limit` rows of `results` (one of SHOW), indexed by row number, and how many match."""
    if show not in SHOW:
        raise ValueError(f"show one of {', '.join(SHOW)}, not {show!r}")
    numbers = pa.array(np.arange(1, results.num_rows + 1))
    table = results.append_column("row", numbers)
    decision, error = table.column("decision"), table.column("error")
    if show == "Approved":
        table = table.filter(pc.equal(decision, 1))
    elif show == "Rejected":
        table = table.filter(pc.equal(decision, 0))
    elif show == "Rows with errors":
        table = table.filter(pc.is_valid(error))
    frame = table.slice(0, limit).to_pandas()
    return frame.set_index("row"), table.num_rows


# --- reading ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Source:
    path: Path
    columns: list[str]  # header names, stripped, in file order
    delimiter: str


def _open_source(path: Path, required: list[str], *, check_text: bool = True) -> _Source:
    """Refuse, with the reason, a file that cannot be a CSV of applicants; else read its header.

    `check_text=False` leaves the whole-file UTF-8 check to the reader (an engine's workers check
    their own parts)."""
    if not path.exists():
        raise BatchError(path, "no such file")
    if not path.is_file():
        raise BatchError(path, "is a folder, not a CSV file")
    if path.stat().st_size == 0:
        raise BatchError(path, "the file is empty")
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if b"\x00" in head:
        raise BatchError(path, "this is not a CSV file (it looks binary)")
    if check_text:
        _check_utf8(path)
    text = codecs.getincrementaldecoder("utf-8-sig")().decode(head)
    if not text.strip():
        raise BatchError(path, "the file is empty")
    delimiter = sniff_delimiter(text)
    header = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    columns = [name.strip() for name in header]
    missing = [name for name in required if name not in columns]
    if missing:
        shown = ", ".join(repr(c) for c in columns[:8]) + (", …" if len(columns) > 8 else "")
        found = f"the first line has {len(columns)} column(s): {shown}"
        if len(missing) == len(required):
            raise BatchError(path, f"this is not a CSV of applicants: none of the required columns "
                                   f"{', '.join(required)} is in it ({found})")
        raise BatchError(path, f"required column(s) missing: {', '.join(missing)} ({found})")
    taken = [name for name in OUTPUT_COLUMNS if name in columns]
    if taken:
        raise BatchError(path, f"the file already has column(s) {', '.join(taken)}, which the output adds "
                               "(is it a scored file?): remove or rename them and try again")
    twice = sorted({name for name in required if columns.count(name) > 1})
    if twice:
        raise BatchError(path, f"column(s) {', '.join(twice)} appear more than once in the header")
    return _Source(path, columns, delimiter)


def _check_utf8(path: Path) -> None:
    """The whole file must be UTF-8 (a BOM is fine); find the first bad byte before scoring starts."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open(path, "rb") as fh:
        while piece := fh.read(1 << 18):
            try:
                decoder.decode(piece)
            except UnicodeDecodeError as exc:
                line += piece.count(b"\n", 0, exc.start)
                raise BatchError(path, f"line {line} is not UTF-8 text: save the file as "
                                 "\"CSV UTF-8\" and try again") from None
            line += piece.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise BatchError(path, "the file ends in the middle of a character: it is not UTF-8 text") from None


def _batches(raw: pa.NativeFile, source: _Source, block_size: int, summary: BatchSummary) -> Iterator[pa.RecordBatch]:
    """The file's rows as text, a block at a time; lines with the wrong number of fields are counted."""

    def unreadable(row) -> str:
        summary.unreadable += 1
        if len(summary.problems) < MAX_PROBLEMS:
            where = f"line {row.number}" if row.number is not None else "a line"
            summary.problems.append(f"{where}: {row.actual_columns} field(s) where the header has "
                                    f"{row.expected_columns}, so it is not in the output ({row.text[:80]!r})")
        return "skip"

    read = pacsv.ReadOptions(block_size=block_size, use_threads=False, column_names=source.columns, skip_rows=1)
    parse = pacsv.ParseOptions(delimiter=source.delimiter, newlines_in_values=True, invalid_row_handler=unreadable)
    # Every cell as text: the output carries it untouched, and a bad value fails its row, not the read.
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in source.columns},
                                   strings_can_be_null=True, null_values=[""])
    try:
        reader = pacsv.open_csv(raw, read_options=read, parse_options=parse, convert_options=convert)
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            if batch.num_rows:
                yield batch
    except pa.ArrowInvalid as exc:
        raise BatchError(source.path, f"could not be read after data row {summary.rows:,} "
                         f"({_first_line(exc)})") from exc


# --- scoring one chunk -----------------------------------------------------------------------
@dataclass
class _Chunk:
    """One scored chunk, ready to be written, recorded and counted in file order."""

    table: pa.Table  # the input's columns, then OUTPUT_COLUMNS, ready for the writer
    rows: int
    scored: int
    approved: int
    problems: list[str]
    decided: Decided  # the scored rows, for the decision log
    decision_ids: pa.Array  # their ids, in order


def _score_chunk(model: LoanModel, batch: pa.RecordBatch, first: int, for_csv: bool) -> _Chunk:
    """Score one chunk with the core's `score_table`; `first` is the number of its first row."""
    scored = score_table(model, batch, first_row=first, new_ids=decision_id_array)
    table = scored.table
    if for_csv:
        table = pa.Table.from_arrays([_safe_text(column) for column in table.columns], names=table.column_names)
    return _Chunk(table=table, rows=scored.rows, scored=scored.scored, approved=scored.approved,
                  problems=scored.problems(MAX_PROBLEMS), decided=scored.decided, decision_ids=scored.decision_ids)


def _record(log: DecisionLog, model: LoanModel, chunk: _Chunk, summary: BatchSummary, source: str,
            officer: str | None) -> None:
    """Bulk writes of LOG_ROWS entries each; after a failure the rest is not tried (the warning says so)."""
    for start in range(0, chunk.scored, LOG_ROWS):
        entries = entries_for(model, chunk.decided, source=source, officer=officer,
                              decision_ids=chunk.decision_ids[start:start + LOG_ROWS].to_pylist(),
                              rows=slice(start, start + LOG_ROWS))
        result = log.record(entries)
        summary.logged += result.written
        if result.warning:
            summary.log_warning = (f"The decision log could not be written after {summary.logged:,} "
                                   f"decision(s), so the rest are not on record: {result.warning}")
            return


# --- writing ---------------------------------------------------------------------------------
class _Writer:
    """CSV (formula-safe) or Parquet, chunk by chunk, into a temporary file renamed when complete."""

    def __init__(self, path: Path, columns: list[str], *, parquet: bool):
        self.path, self.parquet = path, parquet
        fields = [pa.field(name, pa.string()) for name in columns]
        fields += [pa.field(name, NUMBER_COLUMNS.get(name, pa.string())) for name in OUTPUT_COLUMNS]
        self.schema = pa.schema(fields)
        if parquet:
            self._writer: Any = pq.ParquetWriter(path, self.schema)
        else:
            self._safe = pa.schema([f.with_name(neutralize_text(f.name)) for f in fields])
            self._writer = pacsv.CSVWriter(str(path), self._safe)

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table.cast(self.schema) if self.parquet else table.rename_columns(self._safe.names))

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc) -> None:
        self._writer.close()


def neutralize(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Prefix with ' every text cell a spreadsheet would run as a formula; numbers stay numbers."""
    if not pa.types.is_string(column.type):
        return column
    risky = pc.match_substring_regex(column, FORMULA_START)
    if not pc.any(risky).as_py():
        return column
    risky = pc.and_(risky, pc.invert(pc.match_substring_regex(column, PLAIN_NUMBER)))
    return pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)


def _safe_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """`neutralize`, and text again: a dictionary column is neutralized once per distinct value."""
    if not pa.types.is_dictionary(column.type):
        return neutralize(column)
    return pa.chunked_array([
        pa.DictionaryArray.from_arrays(chunk.indices, neutralize(chunk.dictionary)).cast(pa.string())
        for chunk in column.chunks
    ], pa.string())


def neutralize_text(text: str) -> str:
    return neutralize(pa.array([text], pa.string()))[0].as_py()


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
