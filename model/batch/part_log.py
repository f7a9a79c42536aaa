"""A cluster run's decisions kept beside its parts, so that a log that refuses the run loses none.

On a single machine a run's decisions are spooled to a sealed file and, when the log cannot take
them, that file is the unsent file `python serve.py --replay FILE` puts on record later
(`model.records.batches`). A cluster run's workers stage their parts straight into the database
instead, so a database that goes away mid-run, or at the commit, would take the run's decisions
with it. So each worker also writes its part's entries to `.log/part-NNNNN.arrow` inside the run's
private output folder (the decisions table's columns, zstd-compressed Arrow). When the run cannot
go on record through the staging table, the driver turns those files, in part order, into one
sealed batch file in the unsent folder: JSON lines in the journal's encoding, the same batch id,
replayed exactly once. The workers never hold the replay key; only the driver seals.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa

from model.core import config
from model.core.files import private_dir
from model.records.log import LogEntry, column_values
from model.records.sealed import SealedWriter

SPOOL = ".log"  # inside the run's output folder: hidden, so never read as part of the dataset
CODEC = "zstd"
ENTRY_KEYS = frozenset(LogEntry.__dataclass_fields__)
TEXT = ("decided_at", "model_name", "model_version", "model_sha256", "source", "officer", "inputs", "reasons",
        "out_of_range", "decision_id", "reason_codes", "batch_id", "batch_sha256")


def spool_path(folder: str | Path, part: int) -> Path:
    return Path(folder) / SPOOL / f"part-{part:05d}.arrow"


def write_part(folder: str | Path, part: int, entries: list[LogEntry]) -> None:
    """The part's entries as one compressed Arrow file, owner-only, replacing an earlier attempt's.

    Column by column (the inputs as their JSON text): a few microseconds a decision, where a line
    of JSON each would cost several times that on every logged run."""
    target = spool_path(folder, part)
    # Not with its parents: a worker that outlived its run (its scheduler lost) must not make the
    # run's folder again after the driver removed it; it fails here instead.
    target.parent.mkdir(mode=0o700, exist_ok=True)
    values = column_values(entries)
    values["decided_at"] = [moment.isoformat() for moment in values["decided_at"]]
    values["inputs"] = [orjson.dumps(inputs).decode() for inputs in values["inputs"]]
    table = pa.table({name: pa.array(column, pa.string() if name in TEXT else None)
                      for name, column in values.items()})
    temporary = target.with_name(f".{target.name}.{os.getpid()}-{os.urandom(4).hex()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as raw, pa.ipc.new_file(pa.PythonFile(raw, mode="w"), table.schema,
                                                          options=pa.ipc.IpcWriteOptions(compression=CODEC)) as out:
            out.write_table(table, max_chunksize=50_000)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def read_part(folder: str | Path, part: int) -> Iterator[dict]:
    """The part's entries as rows of the decisions table (a journal line each, parsed); none for
    a part that scored no row."""
    path = spool_path(folder, part)
    if not path.exists():
        return
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_file(source)
        for k in range(reader.num_record_batches):
            for row in reader.get_batch(k).to_pylist():
                row["inputs"] = orjson.loads(row["inputs"])
                yield row


def unsent_file(folder: str | Path, parts: list[int], header: dict, *, rows: int, batch_sha256: str | None) -> Path:
    """One sealed batch file in the unsent folder from the parts' spools, in part order; the
    decisions get the run's input SHA-256 here (known only once the workers hashed the input)."""
    out = private_dir(config.unsent_dir())
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    final = out / f"batch-{stamp}-{header['batch_id'][-12:]}.jsonl"
    writer = SealedWriter(out / f".{final.name}.spool")
    decisions = 0
    try:
        writer.write({"batch": header})
        for part in parts:
            for row in read_part(folder, part):
                if not isinstance(row, dict) or set(row) != ENTRY_KEYS or row["batch_id"] != header["batch_id"]:
                    raise ValueError(f"part {part}: a line of its decisions is not one of this run's")
                row["batch_sha256"] = batch_sha256
                writer.write_raw(orjson.dumps(row))
                decisions += 1
        writer.write({"batch_end": {"rows": rows, "decisions": decisions}})
        path = writer.close()
    except BaseException:
        writer.abandon()
        raise
    os.replace(path, final)
    return final
