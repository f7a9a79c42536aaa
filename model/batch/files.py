"""Batch scoring: a CSV of applicants in, one decision per row out, streamed chunk by chunk.

`score_file` is the one implementation behind `score.py` and the Batch page. It never holds the
whole file: pyarrow reads a block of rows (`reading.RowReader`, which stops the run at a malformed
line, naming it), the block is validated, scored, explained, written and spooled for the decision
log, and the next block reuses the memory. A bad value is reported in its row's `error` cell and
the rest is scored. The output appears, under its name, only once it is complete, and only then
does the run go on record, as one batch (`model.records.batches`): a run that fails records nothing.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections import deque
from collections.abc import Callable
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

from model.core.csvsafe import neutralize, neutralize_text
from model.core.errors import BatchError
from model.core.files import temporary_beside
from model.records.batches import BatchNotRecorded, BatchRun, rescoring_warning
from model.records.log import DecisionLog, decision_id_array, entries_for
from model.scoring.decisions import Decided
from model.scoring.predictor import LoanModel
from model.scoring.table import NUMBER_COLUMNS, OUTPUT_COLUMNS, score_table

from .reading import RowReader, SourceFile, inspect_file, preview_rows

BLOCK_SIZE = 1 << 20  # bytes of CSV per chunk: about 45,000 rows of the built-in applicants
WORKERS = min(2, os.cpu_count() or 1)  # chunks scored at once
LOG_ROWS = 10_000  # decisions made log entries at a time: in bounded memory
MAX_PROBLEMS = 1000  # problems kept in the summary; every one is in the output's error column





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
    problems: list[str] = field(default_factory=list)
    file_sha256: str = ""
    batch_id: str | None = None  # the batch on record, once it is
    logged: int = 0  # decisions on record
    log_warning: str | None = None  # why the run is not on record, for the person
    unsent: Path | None = None  # where its decisions wait for `serve.py --replay`, when the log could not take them
    rescoring: str | None = None  # the warning when this file was on record already

    @property
    def problem_count(self) -> int:
        return self.errors

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
    first row under the header. With a `log`, the run goes on record as one batch (with `source`
    and `officer`) once the output is complete; if the log cannot take it, the summary's `unsent`
    names the file its decisions wait in. Raises BatchError, with a one-line message, when the
    file cannot be scored whole; then no output appears and nothing is recorded.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    source_file = inspect_file(input_path, model.schema.names, OUTPUT_COLUMNS, keep_copy=True)
    try:
        return _score_source(model, source_file, output_path, log=log, source=source, officer=officer,
                             block_size=block_size, progress=progress)
    finally:
        source_file.discard()


def _score_source(model: LoanModel, source_file: SourceFile, output_path: Path, *, log: DecisionLog | None,
                  source: str, officer: str | None, block_size: int,
                  progress: Callable[[Progress], None] | None) -> BatchSummary:
    """`score_file` for a file already inspected, its hashed bytes kept in a private copy."""
    input_path = source_file.path
    if output_path.resolve() == input_path.resolve():
        raise BatchError(output_path, "the output would overwrite the input; choose another name")
    if not output_path.parent.is_dir():
        raise BatchError(output_path, f"the folder {output_path.parent} does not exist")
    summary = BatchSummary(input_path, output_path, file_sha256=source_file.sha256)
    parquet = output_path.suffix.lower() == ".parquet"
    run = None
    if log is not None:
        summary.rescoring = rescoring_warning(log, source_file.sha256)
        try:
            run = BatchRun(log, model, file_name=input_path.name, file_sha256=source_file.sha256,
                           source=source, officer=officer)
        except OSError as exc:  # where the run's decisions wait for the log cannot be written
            raise BatchError(input_path, f"the run's decisions cannot be kept for the decision log "
                                         f"({exc.strerror or exc}: {getattr(exc, 'filename', '')}); nothing was "
                                         "scored. Check LOANDESK_UNSENT_DIR") from exc
    try:
        rows = RowReader(source_file, block_size)
        # A temporary from mkstemp beside the output (a random name, created exclusively, so a link
        # planted there is never followed), renamed onto the output once it is complete.
        with temporary_beside(output_path) as partial:
            # Chunks are scored on WORKERS threads (numpy and pyarrow release the GIL) and finished in
            # file order on this one: written, spooled, counted.
            # One BLAS thread per worker: the chunks are the parallelism, and BLAS threads spinning beside
            # them cost more CPU than they save (about 1.9 s → 1.1 s of CPU for a million rows).
            with (open(partial, "r+b") as sink, _Writer(sink, source_file.columns, parquet=parquet) as writer,
                  ThreadPoolExecutor(WORKERS) as pool, warnings.catch_warnings(), threadpool_limits(limits=1)):
                # Set here, before the workers start: a filter set inside a worker is not thread-safe.
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                pending: deque[Future[_Chunk]] = deque()

                def finish() -> None:
                    chunk = pending.popleft().result()
                    writer.write(chunk.table)
                    summary.add(chunk)
                    if run is not None and chunk.scored:
                        _spool(run, model, chunk, source, officer)
                    if progress is not None:
                        progress(Progress(summary.rows, rows.fraction))

                first = 1
                for batch in rows:
                    pending.append(pool.submit(_score_chunk, model, batch, first, not parquet))
                    first += batch.num_rows
                    if len(pending) > WORKERS:
                        finish()
                while pending:
                    finish()
                writer.close()
                sink.flush()
                os.fsync(sink.fileno())
            if summary.rows == 0:
                raise BatchError(input_path, "the file has a header but no rows to score")
            os.replace(partial, output_path)
    except BaseException:
        if run is not None:
            run.discard()
        raise
    if run is not None:
        try:
            record = run.commit(summary.rows)
        except BatchNotRecorded as exc:
            summary.unsent = exc.unsent
            summary.log_warning = (f"The decision log could not take this run's {exc.decisions:,} decision(s) "
                                   f"({exc.why}), so none of them is on record yet. They are saved in "
                                   f"{exc.unsent}: put them on record with `python serve.py --replay "
                                   f"{exc.unsent}` once the log is back.")
        else:
            summary.batch_id, summary.logged = record.batch_id, record.decisions
    return summary


def preview_file(input_path: str | Path, schema_names: list[str], rows: int = 20) -> pd.DataFrame:
    """The first rows of a CSV as text, read the way `score_file` reads it (refused the same way)."""
    source = inspect_file(Path(input_path), schema_names, OUTPUT_COLUMNS)
    return preview_rows(source, rows).to_pandas()


def file_sha256(input_path: str | Path, schema_names: list[str]) -> str:
    """The SHA-256 a batch of this file would be recorded with (the file checked as `score_file` does)."""
    return inspect_file(Path(input_path), schema_names, OUTPUT_COLUMNS).sha256


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


# --- scoring one chunk -----------------------------------------------------------------------
@dataclass
class _Chunk:
    """One scored chunk, ready to be written, spooled and counted in file order."""

    table: pa.Table  # the input's columns, then OUTPUT_COLUMNS, ready for the writer
    rows: int
    scored: int
    approved: int
    problems: list[str]
    decided: Decided  # the scored rows, for the decision log
    decision_ids: pa.Array  # their ids, in order (the output's decision_id column)


def _score_chunk(model: LoanModel, batch: pa.RecordBatch, first: int, for_csv: bool) -> _Chunk:
    """Score one chunk with the core's `score_table`; `first` is the number of its first row."""
    scored = score_table(model, batch, first_row=first, new_ids=decision_id_array)
    table = scored.table
    if for_csv:
        table = pa.Table.from_arrays([neutralize(column) for column in table.columns], names=table.column_names)
    return _Chunk(table=table, rows=scored.rows, scored=scored.scored, approved=scored.approved,
                  problems=scored.problems(MAX_PROBLEMS), decided=scored.decided, decision_ids=scored.decision_ids)


def _spool(run: BatchRun, model: LoanModel, chunk: _Chunk, source: str, officer: str | None) -> None:
    """The chunk's decisions into the run's spool, LOG_ROWS at a time, with the ids the output shows."""
    for start in range(0, chunk.scored, LOG_ROWS):
        run.add(entries_for(model, chunk.decided, source=source, officer=officer,
                            decision_ids=chunk.decision_ids[start:start + LOG_ROWS].to_pylist(),
                            rows=slice(start, start + LOG_ROWS)))


# --- writing ---------------------------------------------------------------------------------
class _Writer:
    """CSV (formula-safe) or Parquet, chunk by chunk, into an open file."""

    def __init__(self, sink: Any, columns: list[str], *, parquet: bool):
        self.parquet = parquet
        fields = [pa.field(name, pa.string()) for name in columns]
        fields += [pa.field(name, NUMBER_COLUMNS.get(name, pa.string())) for name in OUTPUT_COLUMNS]
        self.schema = pa.schema(fields)
        if parquet:
            self._writer: Any = pq.ParquetWriter(sink, self.schema)
        else:
            self._safe = pa.schema([f.with_name(neutralize_text(f.name)) for f in fields])
            self._writer = pacsv.CSVWriter(sink, self._safe)
        self._closed = False

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table.cast(self.schema) if self.parquet else table.rename_columns(self._safe.names))

    def close(self) -> None:
        if not self._closed:
            self._writer.close()
            self._closed = True

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
