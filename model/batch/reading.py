"""Reading a CSV of applicants for a batch: every line becomes a row, or the run stops naming it.

A batch must never lose rows quietly. One unterminated quote used to swallow the rest of the file
into one cell ("Scored 1 of 1 row(s)"), a 3 MiB cell stopped the run naming the wrong row, and a
line with a wrong number of fields was left out of the output. Here:

- A quote that is never closed (which would read the rest of the file as one cell) stops the run.
  A quoted cell may hold line breaks, as CSV allows.
- A cell may hold at most `MAX_CELL_CHARS` characters, and a line at most `MAX_LINE_BYTES` bytes.
- A line whose number of fields differs from the header's stops the run.
- The lines under the header that are not blank are counted as they are read, and must match the
  rows read (and the line breaks inside their cells).
Each of these stops the run with the row (and line) it happened at, found by `locate_problem`,
which reads the file again with Python's csv module (only on that failure path).

Line endings may be `\\n`, `\\r\\n` or old-Mac `\\r`. The file's SHA-256 and its line count are taken
on the first pass, which checks it is UTF-8. A run (`inspect_file(..., keep_copy=True)`) copies the
bytes it hashes into a private file on that same pass and parses the copy, so the rows scored are
the bytes whose hash goes on record, whatever happens to the user's file meanwhile. Without a copy
(a preview), a file that changes after the first pass (size, modification time or inode) stops it.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import itertools
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from model.core.errors import BatchError
from model.training.data import sniff_delimiter

MAX_CELL_CHARS = 10_000  # characters in one cell: far more than any applicant field needs
MAX_LINE_BYTES = 256 << 10  # bytes in one line (row): under the parser's block, so it never straddles two
HEAD_BYTES = 1 << 16
_NEWLINES = (10, 13)


@dataclass(frozen=True)
class SourceFile:
    """A CSV that passed the first checks: its header, delimiter and SHA-256."""

    path: Path
    columns: list[str]  # header names, stripped, in file order
    delimiter: str
    sha256: str
    size: int
    lines: int  # lines holding something, the header included
    too_long: bool  # a line is longer than MAX_LINE_BYTES
    stamp: tuple[int, int, int]  # size, modification time and inode when checked: a change stops the run
    copy: Path | None = None  # the private copy of the hashed bytes that a run parses (None: read `path`)

    @property
    def readable(self) -> Path:
        """The file the rows are read from: the private copy when there is one."""
        return self.copy or self.path

    def discard(self) -> None:
        """Delete the private copy (and its folder), once the run is done with it."""
        if self.copy is not None:
            self.copy.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.copy.parent.rmdir()


def inspect_file(path: Path, required: list[str], taken: tuple[str, ...] = (), *,
                 keep_copy: bool = False) -> SourceFile:
    """Refuse, with the reason, a file that cannot be a CSV of applicants; else read its header,
    and hash and count it (the whole file read once, in small pieces).

    `taken` are column names the output adds, which the input may not have. With `keep_copy`, the
    bytes hashed are also written to a private file (owner-only, in a folder of its own) that the
    run then parses: call `discard` when done.
    """
    path = Path(path)
    columns, delimiter = read_header(path, required, taken)
    stamp = _stamp(path)
    copy = Path(tempfile.mkdtemp(prefix="loandesk-batch-")) / "input.csv" if keep_copy else None
    try:
        counter = _check_utf8(path, copy)
    except BaseException:
        SourceFile(path, columns, delimiter, "", 0, 0, False, stamp, copy).discard()
        raise
    return SourceFile(path, columns, delimiter, counter.sha256.hexdigest(), stamp[0], counter.lines,
                      counter.too_long, stamp, copy)


def read_header(path: Path, required: list[str], taken: tuple[str, ...] = ()) -> tuple[list[str], str]:
    """The header's column names and the delimiter, from the file's first 64 KiB only; BatchError
    for a file that is missing, empty, binary, or lacks (or repeats) a required column."""
    path = Path(path)
    if not path.exists():
        raise BatchError(path, "no such file")
    if not path.is_file():
        raise BatchError(path, "is a folder, not a CSV file")
    if path.stat().st_size == 0:
        raise BatchError(path, "the file is empty")
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    if b"\x00" in head:
        raise BatchError(path, "this is not a CSV file (it looks binary)")
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head)
    except UnicodeDecodeError as exc:
        raise BatchError(path, f"line {_count_lines(head[:exc.start]) + 1:,} is not UTF-8 text: save the file as "
                               "\"CSV UTF-8\" and try again") from None
    if not text.strip():
        raise BatchError(path, "the file is empty")
    first_line = text.splitlines()[0] if text.splitlines() else ""  # \n, \r\n or an old Mac's \r
    delimiter = sniff_delimiter(first_line)
    header = next(csv.reader([first_line], delimiter=delimiter), [])
    columns = [name.strip() for name in header]
    missing = [name for name in required if name not in columns]
    if missing:
        shown = ", ".join(repr(c) for c in columns[:8]) + (", …" if len(columns) > 8 else "")
        found = f"the first line has {len(columns)} column(s): {shown}"
        if len(missing) == len(required):
            raise BatchError(path, f"this is not a CSV of applicants: none of the required columns "
                                   f"{', '.join(required)} is in it ({found})")
        raise BatchError(path, f"required column(s) missing: {', '.join(missing)} ({found})")
    clash = [name for name in taken if name in columns]
    if clash:
        raise BatchError(path, f"the file already has column(s) {', '.join(clash)}, which the output adds "
                               "(is it a scored file?): remove or rename them and try again")
    twice = sorted({name for name in columns if columns.count(name) > 1})
    if twice:
        raise BatchError(path, f"column(s) {', '.join(twice)} appear more than once in the header")
    return columns, delimiter


def _stamp(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns, info.st_ino


def _check_utf8(path: Path, copy: Path | None = None) -> LineCounter:
    """The whole file must be UTF-8 (a BOM is fine); find the first bad byte. Returns the file's
    SHA-256 and line counts, computed on the same pass (which also writes `copy`, if given)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    counter = LineCounter(MAX_LINE_BYTES)
    line = 1
    sink = (os.fdopen(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), "wb")
            if copy is not None else contextlib.nullcontext())
    with open(path, "rb") as fh, sink as out:
        while piece := fh.read(1 << 18):  # small pieces: the check must not cost memory
            if out is not None:
                out.write(piece)
            counter.scan(piece)
            try:
                decoder.decode(piece)
            except UnicodeDecodeError as exc:
                line += _count_lines(piece[:exc.start])
                raise BatchError(path, f"line {line:,} is not UTF-8 text: save the file as "
                                 "\"CSV UTF-8\" and try again") from None
            line += _count_lines(piece)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise BatchError(path, "the file ends in the middle of a character: it is not UTF-8 text") from None
    counter.end()
    return counter


def _count_lines(data: bytes) -> int:
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


class LineCounter:
    """A file's bytes, piece by piece: their SHA-256, the lines that hold something, and whether a
    line is longer than the limit (pyarrow would fail on it without saying where)."""

    def __init__(self, line_limit: int):
        self.sha256 = hashlib.sha256()
        self.line_limit = line_limit
        self.lines = 0
        self.too_long = False
        self._after_break = True  # the last byte seen ended a line (or nothing was seen yet)
        self._run = 0  # bytes since the last line break

    def scan(self, data: bytes) -> None:
        self.sha256.update(data)
        arr = np.frombuffer(data, dtype=np.uint8)
        breaks = (arr == 10) | (arr == 13)
        before = np.empty_like(breaks)
        before[0] = self._after_break
        before[1:] = breaks[:-1]
        self.lines += int(np.count_nonzero(breaks & ~before))  # a break right after another ends no line
        where = np.flatnonzero(breaks)
        if len(where):
            runs = np.diff(where, prepend=-1) - 1
            runs[0] += self._run
            tail = len(arr) - int(where[-1]) - 1
            self.too_long |= bool(runs.max() > self.line_limit) or tail > self.line_limit
            self._run = tail
        else:
            self._run += len(arr)
            self.too_long |= self._run > self.line_limit
        self._after_break = bool(breaks[-1])

    def end(self) -> None:
        if not self._after_break:
            self.lines += 1  # a last line with no line break after it
            self._after_break = True


class RowReader:
    """The file's rows as text, a block at a time, every cell checked. Iterating raises BatchError,
    naming the row, where the file cannot be read as a table; `fraction` is how far it has got."""

    def __init__(self, source: SourceFile, block_size: int):
        self.source = source
        self.block_size = block_size
        self.rows = 0
        self._raw = None

    @property
    def fraction(self) -> float:
        if self._raw is None or self._raw.closed:
            return 1.0 if self.rows else 0.0
        return min(self._raw.tell() / max(self.source.size, 1), 1.0)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        source, path = self.source, self.source.path
        read = pacsv.ReadOptions(block_size=self.block_size, use_threads=False, column_names=source.columns,
                                 skip_rows=1)
        # A line with the wrong number of fields stops the read; locate_problem says where.
        parse = pacsv.ParseOptions(delimiter=source.delimiter, newlines_in_values=True,
                                   invalid_row_handler=lambda _row: "error")
        convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in source.columns},
                                       strings_can_be_null=True, null_values=[""])
        inner_lines = 0
        last: pa.RecordBatch | None = None
        # pyarrow reads the file itself (through a Python file object it would hold every block it
        # read): the private copy of the bytes the first pass hashed, or (a preview) the file.
        with pa.OSFile(str(source.readable)) as raw:
            self._raw = raw
            try:
                reader = pacsv.open_csv(raw, read_options=read, parse_options=parse, convert_options=convert)
                while True:
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        break
                    if source.too_long or (batch.num_rows and _too_long(batch)):
                        raise _Unreadable()
                    if batch.num_rows:
                        self.rows += batch.num_rows
                        inner_lines += _lines_in_cells(batch)
                        last = batch.slice(batch.num_rows - 1)
                        yield batch
            except (pa.ArrowInvalid, _Unreadable) as exc:
                raise BatchError(path, locate_problem(source) or _first_line(exc)) from None
        if source.copy is None and _stamp(path) != source.stamp:
            raise BatchError(path, "the file changed while it was being scored: score it again")
        if last is not None and _lines_in_cells(last) and (problem := locate_problem(source)):
            raise BatchError(path, problem)  # a quote left open runs to the end: only the last row can show it
        if source.lines - 1 != self.rows + inner_lines:
            raise BatchError(path, locate_problem(source) or
                             f"{source.lines - 1:,} line(s) under the header hold something, but {self.rows:,} "
                             f"row(s) holding {self.rows + inner_lines:,} line(s) were read: the file is not a "
                             "well-formed CSV")


class _Unreadable(Exception):
    """A chunk breaks a rule of `RowReader`; `locate_problem` finds where."""


def first_long_cell(batch: pa.RecordBatch) -> tuple[int, str, int] | None:
    """The first cell over MAX_CELL_CHARS, as (row index in the batch, column, characters), or None."""
    found: tuple[int, str, int] | None = None
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if column.null_count == len(column):
            continue
        lengths = pc.utf8_length(column)
        if (pc.max(lengths).as_py() or 0) <= MAX_CELL_CHARS:
            continue
        row = int(np.flatnonzero(np.asarray(pc.fill_null(pc.greater(lengths, MAX_CELL_CHARS), False)))[0])
        if found is None or row < found[0]:
            found = (row, name, int(lengths[row].as_py()))
    return found


def _too_long(batch: pa.RecordBatch) -> bool:
    """A cell longer than MAX_CELL_CHARS."""
    return any(column.null_count < len(column) and (pc.max(pc.utf8_length(column)).as_py() or 0) > MAX_CELL_CHARS
               for column in batch.columns)


def _lines_in_cells(batch: pa.RecordBatch) -> int:
    """How many of the file's non-blank lines the batch's cells hold inside them (quoted line breaks),
    counted as the reader counts lines: a line break not right after another."""
    extra = 0
    for column in batch.columns:
        if column.null_count == len(column):
            continue
        if pc.any(pc.match_substring(column, "\n")).as_py() or pc.any(pc.match_substring(column, "\r")).as_py():
            extra += pc.sum(pc.count_substring_regex(column, r"[^\r\n][\r\n]")).as_py() or 0
            extra += pc.sum(pc.match_substring_regex(column, r"^[\r\n]").cast(pa.int64())).as_py() or 0
    return extra


def unclosed_quote(path: Path, delimiter: str, columns: tuple[str, ...] | list[str]) -> str:
    """Why a file whose quotes do not pair up cannot be read, naming the row (read again with
    Python's csv module: only on this failure path)."""
    source = SourceFile(Path(path), list(columns), delimiter, "", 0, 0, False, (0, 0, 0))
    return locate_problem(source) or ("a quote (\") is never closed, so the rest of the file would be read as "
                                      "one cell. Close the quote and try again")


def locate_problem(source: SourceFile) -> str | None:
    """The first row that breaks a rule of `RowReader`, as a message naming its row and line.

    Rows are numbered from 1, the first row under the header; lines from 1, the header's line
    (blank lines are skipped, so they count as lines but not as rows).
    """
    row = 0
    last = (0, 0, 0)  # the last record: its row, first and last line
    with open(source.readable, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=source.delimiter)
        line = 0
        try:
            for record in reader:
                start, line = line + 1, reader.line_num
                if start == 1:
                    continue  # the header
                if not record:
                    continue  # a blank line
                row += 1
                where = f"row {row:,} (line {start:,})"
                last = (row, start, line)
                problem = _record_problem(source, record)
                if problem and line > start and _open_quote_from(source, start):
                    break  # a quote left open swallowed the rest of the file: said below
                if problem:
                    return f"{where}: {problem}"
        except csv.Error as exc:
            where = f"row {row + 1:,} (line {line + 1:,})"
            if "field larger" not in str(exc):
                return f"{where}: {exc}"
            if len(_line(source.readable, line + 1)) <= MAX_CELL_CHARS:  # the line is short: the cell runs on
                return (f"{where}: a quote (\") opened there is never closed, so the rest of the file would "
                        "be read as one cell. Close the quote and try again")
            return f"{where}: a cell holds more than {MAX_CELL_CHARS:,} characters, the most a cell may hold"
    row, start, end = last
    if end > start and _open_quote_from(source, start):
        return (f"row {row:,} (line {start:,}): a quote (\") opened there is never closed, so the rest of the "
                "file would be read as one cell. Close the quote and try again")
    return None


def _record_problem(source: SourceFile, record: list[str]) -> str | None:
    expected = len(source.columns)
    if len(record) != expected:
        return f"{len(record)} field(s) where the header has {expected}: {_shown(source.delimiter.join(record))}"
    for name, cell in zip(source.columns, record, strict=True):
        if len(cell) > MAX_CELL_CHARS:
            return f"the {name!r} cell holds {len(cell):,} characters; a cell may hold at most {MAX_CELL_CHARS:,}"
    if sum(len(c) for c in record) + expected > MAX_LINE_BYTES:
        return f"the line is longer than {MAX_LINE_BYTES // 1024:,} KiB, the most a row may hold"
    return None


def _open_quote_from(source: SourceFile, line: int) -> bool:
    """Whether the file, read from `line` to its end, ends inside a quoted cell."""
    with open(source.readable, encoding="utf-8-sig", newline="") as fh:
        tail = itertools.islice(fh, line - 1, None)
        try:
            for _ in csv.reader(tail, delimiter=source.delimiter, strict=True):
                pass
        except csv.Error as exc:
            return "unexpected end of data" in str(exc)
    return False


def _line(path: Path, number: int) -> str:
    """Line `number` (from 1) of a text file, whatever its line endings."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return next(itertools.islice(fh, number - 1, None), "")


def _shown(text: str) -> str:
    return repr(text[:80] + ("…" if len(text) > 80 else ""))


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def preview_rows(source: SourceFile, rows: int) -> pa.Table:
    """The first rows of the file as text (the preview a page shows), read as `RowReader` reads."""
    batches = []
    taken = 0
    for batch in RowReader(source, 1 << 20):
        batches.append(batch.slice(0, rows - taken))
        taken += min(rows - taken, batch.num_rows)
        if taken >= rows:
            break
    if not batches:
        return pa.table({c: pa.array([], pa.string()) for c in source.columns})
    return pa.Table.from_batches(batches)
