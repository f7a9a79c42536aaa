"""A batch run's decisions go on record together, or not at all.

`score.py` and the Batch page score a file in chunks. Recording chunk by chunk left half a batch on
record when a run failed at row 150,001, and a rerun recorded it twice. Instead a run hands its
entries to a `BatchRun`, which spools them to a sealed, owner-only file beside the unsent files;
only once the whole output is written does `commit` put them on record, in one transaction with
the batch's own row (`batches`: its id, the input file's SHA-256, counts, who and when). Every
decision carries `batch_id` and `batch_sha256`.

- A run that fails (or is interrupted) calls `discard`: the spool is deleted, nothing is on record.
- A run that is killed leaves only an unsealed spool, which is never replayed and is swept later.
- When the log cannot take the rows, the spool becomes an unsent file (sealed, named in the error)
  that `python serve.py --replay FILE` puts on record later, as one batch, exactly once.

`replay_file` replays any sealed file (a batch's, or unsent decisions): it streams the file once,
inserting inside one transaction as each seal verifies, and rolls everything back if one does not
hold. Each replay is itself recorded (`replays`), as the journal's automatic replays are.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError

from model.core import config
from model.core.errors import LoanDeskError
from model.core.files import private_dir

from .journal import decode_row, encode_bytes
from .log import DecisionLog, LogEntry, insert_entries, new_decision_ids, short_error
from .replays import record_replay as record_replay_row
from .sealed import SealedReader, SealedWriter, UnsealedFileError
from .tables import batches

log = logging.getLogger("loandesk.batches")

CHUNK_ROWS = 10_000  # entries per insert while a batch goes on record: bulk, in bounded memory
STALE_SPOOL_SECONDS = 24 * 3600  # an unsealed spool this old belongs to a run that was killed

class BatchNotRecorded(LoanDeskError, RuntimeError):
    """The decision log could not take a batch; its decisions wait in `unsent` for a replay."""

    def __init__(self, unsent: Path, why: str, decisions: int):
        self.unsent, self.why, self.decisions = unsent, why, decisions
        super().__init__(f"the decision log could not take the {decisions:,} decision(s) of this run ({why}); "
                         f"they are saved in {unsent}: put them on record with "
                         f"`python serve.py --replay {unsent}` once the log is back")


@dataclass(frozen=True)
class BatchRecord:
    """A batch on record."""

    batch_id: str
    file_sha256: str
    file_name: str
    source: str
    officer: str | None
    model_version: str
    rows: int
    decisions: int
    recorded_at: datetime


@dataclass(frozen=True)
class ReplayResult:
    written: int
    skipped: int
    batch_id: str | None = None
    left_out: int = 0  # lines after the file's last seal: never answered, not replayed


def new_batch_id() -> str:
    """32 hex digits, time first (like a decision id)."""
    return new_decision_ids(1)[0]


def earlier_batches(decision_log: DecisionLog, file_sha256: str) -> list[BatchRecord]:
    """The batches already on record for a file with this SHA-256, newest first."""
    with decision_log.reading() as conn:
        rows = conn.execute(select(batches).where(batches.c.file_sha256 == file_sha256)
                            .order_by(batches.c.recorded_at.desc())).mappings().all()
    return [BatchRecord(**{k: r[k] for k in BatchRecord.__dataclass_fields__}) for r in rows]


def rescoring_warning(decision_log: DecisionLog, file_sha256: str) -> str | None:
    """A sentence for the person about to score a file that is already on record, else None."""
    try:
        earlier = earlier_batches(decision_log, file_sha256)
    except LoanDeskError:
        return None  # the log cannot be read: the run says so when it records
    if not earlier:
        return None
    last = earlier[0]
    when = _utc(last.recorded_at).strftime("%d %b %Y %H:%M UTC")
    times = "once" if len(earlier) == 1 else f"{len(earlier)} times"
    return (f"This file (SHA-256 {file_sha256[:12]}…) is already on record {times}: last as batch "
            f"{last.batch_id} on {when}, {last.decisions:,} decision(s) by {last.source}"
            f"{f' ({last.officer})' if last.officer else ''}. Scoring it again records its decisions again.")


class BatchRun:
    """One run's decisions: spooled while the run goes on, on record only after `commit`."""

    def __init__(self, decision_log: DecisionLog, model, *, file_name: str, file_sha256: str,
                 source: str, officer: str | None = None, unsent_dir: Path | None = None):
        self.decision_log = decision_log
        self.batch_id = new_batch_id()
        self.folder = private_dir(unsent_dir or config.unsent_dir())
        _sweep_stale_spools(self.folder)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self._final = self.folder / f"batch-{stamp}-{self.batch_id[-12:]}.jsonl"
        self._spool = SealedWriter(self.folder / f".{self._final.name}.spool")
        self.header = {
            "batch_id": self.batch_id, "file_sha256": file_sha256, "file_name": Path(file_name).name[:255],
            "source": source, "officer": (officer or "").strip() or None, "model_name": model.name,
            "model_version": model.version, "started_at": datetime.now(UTC).isoformat(),
        }
        self._spool.write({"batch": self.header})
        self.decisions = 0
        self._open = True

    def add(self, entries: list[LogEntry]) -> None:
        """Spool entries of this batch (given decision ids here when they have none)."""
        ids = new_decision_ids(len(entries))
        for entry, decision_id in zip(entries, ids, strict=True):
            entry.batch_id = self.batch_id
            entry.batch_sha256 = self.header["file_sha256"]
            if entry.decision_id is None:
                entry.decision_id = decision_id
            self._spool.write_raw(entry_json(entry))
        self.decisions += len(entries)

    def commit(self, rows: int) -> BatchRecord:
        """Put the whole batch on record in one transaction; BatchNotRecorded (with the unsent
        file) when the log cannot take it."""
        self._spool.write({"batch_end": {"rows": rows, "decisions": self.decisions}})
        path = self._spool.close()
        self._open = False
        try:
            replay_file(path, self.decision_log, record_replay=False)
        except (SQLAlchemyError, OSError, LoanDeskError) as exc:
            why = short_error(exc)
            os.replace(path, self._final)
            log.error("batch %s: %d decision(s) not recorded (%s); saved in %s", self.batch_id,
                      self.decisions, why, self._final)
            raise BatchNotRecorded(self._final, why, self.decisions) from exc
        path.unlink(missing_ok=True)
        return BatchRecord(
            batch_id=self.batch_id, file_sha256=self.header["file_sha256"], file_name=self.header["file_name"],
            source=self.header["source"], officer=self.header["officer"],
            model_version=self.header["model_version"], rows=rows, decisions=self.decisions,
            recorded_at=datetime.now(UTC),
        )

    def discard(self) -> None:
        """The run failed: nothing of it goes on record."""
        if self._open:
            self._spool.abandon()
            self._open = False


def entry_json(entry: LogEntry) -> bytes:
    """One entry as a line of JSON, as sealed files hold them (the journal's encoding)."""
    return encode_bytes(entry)


def entry_from_json(row: dict[str, Any]) -> LogEntry:
    return decode_row(row)


def replay_file(path: Path, decision_log: DecisionLog, *, record_replay: bool = True) -> ReplayResult:
    """Write a sealed file's decisions to the log in one transaction; returns what was written.

    The file is read once (`SealedReader`): lines are inserted as their seal verifies, and a seal
    that does not hold rolls the whole transaction back (UnsealedFileError). Lines after the last
    seal were never made durable, so never answered: they are left out and counted. Decisions
    already on record (by decision id, or a batch whose id is on record) are skipped, so a second
    replay writes nothing. With `record_replay` the replay itself is recorded (`replays`).
    """
    path = Path(path)
    reader = SealedReader(path)
    written = skipped = 0
    header: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    batch_known = False
    pending: list[LogEntry] = []

    def flush(conn) -> None:
        nonlocal written, skipped
        if not pending:
            return
        fresh = pending
        if batch_known:
            fresh = []
        elif record_replay:  # a batch's own commit carries new ids only: nothing to look up
            known = decision_log.known_ids([e.decision_id for e in pending if e.decision_id], conn=conn)
            fresh = [e for e in pending if e.decision_id is None or e.decision_id not in known]
        insert_entries(conn, fresh)
        written += len(fresh)
        skipped += len(pending) - len(fresh)
        pending.clear()

    with decision_log.writing() as conn:
        for number, line in reader:
            record = _parse(path, line, number)
            if "batch" in record:
                header = record["batch"]
                batch_known = conn.execute(select(batches.c.batch_id).where(
                    batches.c.batch_id == header["batch_id"])).first() is not None
            elif "batch_end" in record:
                end = record["batch_end"]
            else:
                try:
                    pending.append(entry_from_json(record))
                except (TypeError, KeyError, ValueError) as exc:
                    raise ValueError(f"{path}, line {number}: not a decision log entry ({exc}); "
                                     "nothing of the file was replayed") from None
                if len(pending) >= CHUNK_ROWS:
                    flush(conn)
        flush(conn)
        if header is not None and not batch_known:
            if end is None:
                raise UnsealedFileError(f"{path}: the batch has no end line; nothing of it was replayed")
            conn.execute(insert(batches).values(
                batch_id=header["batch_id"], file_sha256=header["file_sha256"], file_name=header["file_name"],
                source=header["source"], officer=header["officer"], model_name=header["model_name"],
                model_version=header["model_version"], rows=int(end["rows"]), decisions=written,
                started_at=datetime.fromisoformat(header["started_at"]), recorded_at=datetime.now(UTC)))
        if record_replay:
            record_replay_row(conn, path, reader.sha256, written=written, skipped=skipped)
    if reader.left_out:
        log.warning("%s: %d line(s) after its last seal left out (a write torn by a crash, never answered)",
                    path.name, reader.left_out)
    return ReplayResult(written, skipped, header["batch_id"] if header else None, reader.left_out)


def _parse(path: Path, line: bytes, number: int) -> dict[str, Any]:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path}, line {number}: not JSON ({exc}); nothing of the file was replayed") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path}, line {number}: not a JSON object; nothing of the file was replayed")
    return record


def _sweep_stale_spools(folder: Path) -> None:
    """Remove spools of runs killed long ago: unsealed, they can never go on record."""
    stale = time.time() - STALE_SPOOL_SECONDS
    for leftover in folder.glob(".batch-*.spool"):
        try:
            if leftover.stat().st_mtime < stale:
                leftover.unlink()
        except OSError:
            pass


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
