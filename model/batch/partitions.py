"""Input for an engine: a CSV or Parquet file, a glob or a folder, cut into partitions in input order.

A partition is a byte range of one CSV file or a run of row groups of one Parquet file. Partitions
are numbered in input order (files sorted by path, then by position in the file), so the output
dataset's parts, read in name order, give the rows in input order.

A CSV file is cut at record boundaries found without reading it on one machine: every block's
quote count (`quote_count`, run on the workers) says whether a newline at the block's start is
inside a quoted cell, so a boundary is the first newline outside quotes (RFC 4180: a quote inside a
quoted cell is doubled, which keeps the count even). Only a few bytes around each block's start
are read here.

A folder or a glob never reads LoanDesk's own outputs: a dataset folder this engine wrote (it holds
`_loandesk.json`), a run's unfinished folder (hidden, like every path under a folder starting
with `.` or `_`), or a file `score.py` scored (its columns end with the output's). They are left
out and named (`Plan.skipped`), so that scoring a folder twice, or a folder that holds the output
of a file in it, scores the applicants only. A file named on its own is still refused.
`default_output` names a run's output so that it is never inside the input folder anyway.
"""

from __future__ import annotations

import glob
import itertools
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from model.core.errors import BatchError
from model.scoring.table import OUTPUT_COLUMNS

from .reading import read_header, unclosed_quote

PARTITION_BYTES = 16 << 20  # bytes of input per partition (CSV) or the most row groups it gathers (Parquet)
READ_BLOCK = 1 << 20  # bytes of CSV parsed at a time inside a partition, as score_file does
PARQUET_SUFFIXES = (".parquet", ".pq")
GLOB_CHARACTERS = "*?["
MANIFEST = "_loandesk.json"  # in every dataset folder the engine writes
_WINDOW = 1 << 16


@dataclass(frozen=True)
class Partition:
    """Rows of one input file: bytes [start, end) of a CSV, or row groups of a Parquet file."""

    number: int
    path: str
    kind: str  # "csv" or "parquet"
    columns: tuple[str, ...]
    start: int = 0
    end: int = 0
    delimiter: str = ","
    row_groups: tuple[int, ...] = ()


@dataclass(frozen=True)
class Block:
    """A fixed byte range of a CSV file whose quotes are counted on a worker, before it is cut."""

    path: str
    start: int
    end: int


@dataclass
class Plan:
    """The files and their partitions, in input order; `rows_known` is exact for Parquet only."""

    files: list[Path]
    kind: str
    columns: tuple[str, ...]
    partitions: list[Partition] = field(default_factory=list)
    input_bytes: int = 0
    skipped: list[Path] = field(default_factory=list)  # LoanDesk's own outputs in the folder or glob


def is_glob(spec: str | Path) -> bool:
    return any(ch in str(spec) for ch in GLOB_CHARACTERS)


def default_output(spec: str | Path) -> Path:
    """Where a run over `spec` writes by default: never inside the input folder, never a pattern.

    A file: `<stem>-decisions` beside it (book.csv -> book-decisions). A folder:
    `<folder>-decisions` beside it (book/ -> book-decisions). A glob: beside the folder it starts
    in, named after that folder and the pattern (book/*.csv -> book-csv-decisions; *.csv in the
    current folder /data/march -> /data/march-csv-decisions).
    """
    text = str(spec)
    if is_glob(text):
        parts = Path(text).parts
        fixed = next(k for k, part in enumerate(parts) if is_glob(part))
        base = _named(Path(*parts[:fixed]) if fixed else Path("."))
        pattern = re.sub(r"[^A-Za-z0-9]+", "-", "-".join(parts[fixed:])).strip("-") or "all"
        return base.with_name(f"{_safe(base.name)}-{pattern}-decisions")
    path = Path(text)
    if path.is_dir():
        base = _named(path)
        return base.with_name(f"{_safe(base.name)}-decisions")
    return path.with_name(f"{_safe(path.stem) or 'applicants'}-decisions")


def _named(folder: Path) -> Path:
    """The folder as a path whose last part is its name ('.', '..' and 'a/..' resolved)."""
    plain = Path(os.path.normpath(folder))
    if plain.name in ("", ".", ".."):
        plain = Path(os.path.abspath(folder))
    return plain if plain.name else plain / "input"


def _safe(name: str) -> str:
    return re.sub(r"[*?\[\]]", "-", name)


def input_files(spec: str | Path) -> list[Path]:
    """The files a path, folder or glob names, sorted by path; folders give their CSV and Parquet files."""
    return find_inputs(spec)[0]


def find_inputs(spec: str | Path) -> tuple[list[Path], list[Path]]:
    """The files a path, folder or glob names, sorted by path, and LoanDesk's outputs left out of
    a folder or glob (see the module's docstring)."""
    text = str(spec)
    if is_glob(text):
        matched = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not matched:
            raise BatchError(Path(text), "no file matches this pattern")
        found, skipped = _without_outputs(matched, None)
        if not found:
            raise BatchError(Path(text), f"the pattern matches only LoanDesk's own outputs ({skipped[0]}, ...)")
        return found, skipped
    path = Path(text)
    if path.is_dir():
        candidates = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (
            ".csv", ".txt", *PARQUET_SUFFIXES))
        found, skipped = _without_outputs(candidates, path)
        if not found:
            raise BatchError(path, "the folder has no .csv or .parquet file" + (
                f" but LoanDesk's own outputs ({skipped[0]}, ...)" if skipped else ""))
        return found, skipped
    if not path.exists():
        raise BatchError(path, "no such file")
    return [path], []


def _without_outputs(paths: list[Path], folder: Path | None) -> tuple[list[Path], list[Path]]:
    """Split `paths` into input files and LoanDesk's outputs (reported when they are data files)."""
    found: list[Path] = []
    skipped: list[Path] = []
    for path in paths:
        inside = path.relative_to(folder).parts if folder is not None else (path.name,)
        if any(part.startswith((".", "_")) for part in inside):
            continue  # hidden, like a run's unfinished folder, or a manifest: never data
        if _in_dataset(path, folder) or _scored(path):
            skipped.append(path)
        else:
            found.append(path)
    return found, skipped


def _in_dataset(path: Path, folder: Path | None) -> bool:
    """Whether a folder between `path` and `folder` (or its own folder, for a glob) is a dataset."""
    top = Path(os.path.abspath(folder)) if folder is not None else None
    at = Path(os.path.abspath(path)).parent
    while True:
        if (at / MANIFEST).is_file():
            return True
        if top is None or at == top or at.parent == at:
            return False
        at = at.parent


def _scored(path: Path) -> bool:
    """Whether the file's columns end with the columns score.py adds (a file LoanDesk scored)."""
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            names = list(pq.read_schema(path).names)
        else:
            names = read_header(path, [], ())[0]
    except (BatchError, pa.ArrowInvalid, OSError):
        return False  # refused, naming the problem, when it is read as input
    return names[-len(OUTPUT_COLUMNS):] == list(OUTPUT_COLUMNS)


def plan(spec: str | Path, required: list[str], *, partition_bytes: int = PARTITION_BYTES,
         count_quotes: Callable[[list[Block]], list[int]] | None = None) -> Plan:
    """Check every file's columns and cut the input into partitions.

    `count_quotes` counts the quotes of many CSV blocks (on a cluster, one task a block); by
    default here. Raises BatchError naming the file when one cannot be scored.
    """
    files, skipped = find_inputs(spec)
    files = [Path(os.path.abspath(p)) for p in files]  # a remote worker's current folder is not ours
    kinds = {"parquet" if p.suffix.lower() in PARQUET_SUFFIXES else "csv" for p in files}
    if len(kinds) > 1:
        raise BatchError(Path(str(spec)), "mixes CSV and Parquet files: score them separately")
    kind = kinds.pop()
    columns: tuple[str, ...] | None = None
    for path in files:
        found = _parquet_columns(path, required) if kind == "parquet" else tuple(read_header(
            path, required, OUTPUT_COLUMNS)[0])
        if columns is None:
            columns = found
        elif found != columns:
            raise BatchError(path, f"its columns ({', '.join(found)}) differ from those of {files[0]} "
                                   f"({', '.join(columns)}): every file of one run needs the same columns")
    result = Plan(files, kind, columns or (), input_bytes=sum(p.stat().st_size for p in files), skipped=skipped)
    if kind == "parquet":
        for path in files:
            for groups in _row_group_runs(pq.ParquetFile(path).metadata, partition_bytes):
                result.partitions.append(Partition(len(result.partitions), str(path), kind, result.columns,
                                                   row_groups=groups))
        return result
    blocks = [Block(str(p), start, min(start + partition_bytes, p.stat().st_size))
              for p in files for start in range(0, p.stat().st_size, partition_bytes)]
    counts = (count_quotes or (lambda bs: [quote_count(b) for b in bs]))(blocks)
    at = 0
    for path in files:
        delimiter = read_header(path, required, OUTPUT_COLUMNS)[1]
        mine = [(b, c) for b, c in zip(blocks, counts, strict=True) if b.path == str(path)]
        if sum(c for _b, c in mine) % 2:  # a quote never closed would read the rest of the file as one cell
            raise BatchError(path, unclosed_quote(path, delimiter, result.columns))
        newline = _newline(path)
        cuts, parity = [], 0
        with open(path, "rb") as fh:
            for k, (block, count) in enumerate(mine):
                cuts.append(_boundary(fh, block.start, parity, newline) if k else _header_end(fh, newline))
                parity = (parity + count) % 2
        size = path.stat().st_size
        cuts = [int(min(c, size)) for c in np.maximum.accumulate(cuts)] + [size]
        for start, end in itertools.pairwise(cuts):
            if end > start:
                result.partitions.append(Partition(at, str(path), kind, result.columns, start=start, end=end,
                                                   delimiter=delimiter))
                at += 1
    return result


def quote_count(block: Block) -> int:
    """How many `"` bytes the block holds (a worker's share of finding the CSV's record boundaries)."""
    count = 0
    with open(block.path, "rb") as fh:
        fh.seek(block.start)
        left = block.end - block.start
        while left > 0:
            piece = fh.read(min(left, 8 << 20))
            if not piece:
                break
            count += piece.count(b'"')
            left -= len(piece)
    return count


@dataclass
class Unreadable:
    """A line that is not a row of the table (wrong number of fields), numbered within its partition."""

    line: int | None
    fields: int
    expected: int
    text: str


def read_partition(part: Partition, unreadable: list[Unreadable]) -> Iterator[pa.RecordBatch]:
    """The partition's rows, a block at a time: CSV cells as text (as score_file reads them), Parquet as stored."""
    if part.kind == "parquet":
        yield from pq.ParquetFile(part.path).iter_batches(row_groups=list(part.row_groups), batch_size=65_536)
        return
    with open(part.path, "rb") as fh:
        fh.seek(part.start)
        data = fh.read(part.end - part.start)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start)
        raise BatchError(Path(part.path), f"the text {line + 1} line(s) after byte {part.start:,} is not UTF-8: "
                                          "save the file as \"CSV UTF-8\" and try again") from None

    def skip(row) -> str:
        unreadable.append(Unreadable(row.number, row.actual_columns, row.expected_columns, row.text[:80]))
        return "skip"

    read = pacsv.ReadOptions(block_size=READ_BLOCK, use_threads=False, column_names=list(part.columns))
    parse = pacsv.ParseOptions(delimiter=part.delimiter, newlines_in_values=True, invalid_row_handler=skip)
    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in part.columns},
                                   strings_can_be_null=True, null_values=[""])
    try:
        reader = pacsv.open_csv(pa.BufferReader(data), read_options=read, parse_options=parse,
                                convert_options=convert)
        for batch in reader:
            if batch.num_rows:
                yield batch
    except pa.ArrowInvalid as exc:
        raise BatchError(Path(part.path), f"could not be read after byte {part.start:,} "
                                          f"({str(exc).splitlines()[0][:200]})") from exc


def _parquet_columns(path: Path, required: Sequence[str]) -> tuple[str, ...]:
    try:
        names = tuple(pq.read_schema(path).names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BatchError(path, f"is not a Parquet file ({str(exc).splitlines()[0][:160]})") from None
    missing = [name for name in required if name not in names]
    if missing:
        raise BatchError(path, f"required column(s) missing: {', '.join(missing)}")
    taken = [name for name in OUTPUT_COLUMNS if name in names]
    if taken:
        raise BatchError(path, f"the file already has column(s) {', '.join(taken)}, which the output adds "
                               "(is it a scored file?): remove or rename them and try again")
    return names


def _row_group_runs(meta: pq.FileMetaData, limit: int) -> Iterator[tuple[int, ...]]:
    run: list[int] = []
    size = 0
    for k in range(meta.num_row_groups):
        group = meta.row_group(k).total_byte_size
        if run and size + group > limit:
            yield tuple(run)
            run, size = [], 0
        run.append(k)
        size += group
    if run:
        yield tuple(run)


def _newline(path: Path) -> int:
    """The byte that ends a record: \\n, or \\r for a file with old-Mac line endings only."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    return ord("\r") if b"\n" not in head and b"\r" in head else ord("\n")


def _header_end(fh, newline: int) -> int:
    return _boundary(fh, 0, 0, newline)


def _boundary(fh, start: int, parity: int, newline: int) -> int:
    """The offset just after the first newline at or after `start` that is outside quotes."""
    at = start
    while True:
        fh.seek(at)
        window = np.frombuffer(fh.read(_WINDOW), dtype=np.uint8)
        if not len(window):
            return at
        inside = (np.cumsum(window == ord('"')) + parity) % 2
        found = np.flatnonzero((window == newline) & (inside == 0))
        if len(found):
            return at + int(found[0]) + 1
        parity = int(inside[-1])
        at += len(window)
