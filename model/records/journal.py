"""The local journal: where a decision goes on record while the decision log cannot take it.

A decision is answered only once it is durable. When the database cannot be written, the writer
appends the decisions here and fsyncs before anyone is answered; the journal is replayed into the
log when the database is back (idempotently: ids already on record are skipped), then deleted.

The format is kept in this one module: one JSON object per line, a `LogEntry`'s fields (the same
lines `python serve.py --replay FILE` reads), and after every append a seal (`model.records.sealed`:
an HMAC under the host's replay key over every byte before it), written with the lines before the
fsync. Only sealed lines are ever replayed: lines after the last seal are a write torn by a crash
(nobody was answered for them) and are left out; a segment whose seal does not match, or that has
none, is set aside as `unsealed-*` and never replayed, so a file dropped into the folder cannot put
forged decisions on record. Every replay is recorded (`replays`).

The journal is a folder of segments, each written by one process that holds an exclusive `flock`
on it for as long as it may append; a replay takes the same lock without waiting, so it never reads
a segment still being written, and two processes never replay the same one. Folder and files are
the owner's only.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from model.records.log import DecisionLog, LogEntry, LogResult
from model.records.replays import record_replay
from model.records.sealed import SealedReader, Sealer, UnsealedFileError

log = logging.getLogger("loandesk.journal")

SEGMENT_GLOB = "journal-*.jsonl"
REPLAY_ROWS = 5000  # entries per transaction when a segment is replayed


class JournalError(OSError):
    """The journal cannot be written (or read); the message says why, without the folder's path."""


def encode(entry: LogEntry) -> str:
    """One entry as a line of JSON (no newline)."""
    return encode_bytes(entry).decode()


def encode_bytes(entry: LogEntry) -> bytes:
    """One entry as a line of JSON (no newline), as bytes: the one encoding of every sealed file."""
    row = entry.row()
    row["decided_at"] = row["decided_at"].isoformat()
    return orjson.dumps(row, default=str, option=orjson.OPT_SERIALIZE_NUMPY)


def decode(line: str | bytes) -> LogEntry:
    """The entry on one line; ValueError (with why) for anything else."""
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not a decision log entry (not JSON: {exc})") from None
    return decode_row(row)


def decode_row(row: object) -> LogEntry:
    """The entry a parsed line holds; ValueError (with why) for anything else."""
    try:
        if not isinstance(row, dict):
            raise TypeError("not a JSON object")
        row = dict(row)
        row["decided_at"] = datetime.fromisoformat(row["decided_at"])
        return LogEntry(**row)
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a decision log entry ({exc})") from exc


def read_entries(path: Path) -> list[LogEntry]:
    """Every sealed line of a journal segment or unsent file, read once; lines after the last seal
    (a torn write, never answered) are left out. UnsealedFileError when a seal does not match or
    there is none; ValueError naming the line for one that is not an entry."""
    return _read(path)[0]


def _read(path: Path) -> tuple[list[LogEntry], str]:
    """`read_entries`, and the SHA-256 of the bytes they were read from."""
    reader = SealedReader(Path(path))
    entries = []
    for number, line in reader:
        try:
            entries.append(decode(line))
        except ValueError as exc:
            raise ValueError(f"{Path(path).name}, line {number}: {exc}") from None
    if reader.left_out:
        log.warning("%s: %d line(s) after its last seal left out (a crash mid-write, never answered)",
                    Path(path).name, reader.left_out)
    return entries, reader.sha256


@dataclass(frozen=True)
class Replayed:
    segments: int  # segments written to the log and deleted
    written: int  # entries written (those already on record skipped)
    busy: int  # segments left for now: another process is still writing them


class Journal:
    """Append-only segments in one private folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._fd: int | None = None  # the segment this process appends to, locked while open
        self._path: Path | None = None
        self._sealer: Sealer | None = None  # the open segment's running seal

    def append(self, entries: Iterable[LogEntry]) -> None:
        """Write the entries and fsync them; when this returns, they survive a crash of the process."""
        try:
            fd = self._fd if self._fd is not None else self._open()
            assert self._sealer is not None
            data = self._sealer.sealed(encode_bytes(e) for e in entries)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as exc:
            self.seal()  # a half-written segment is never appended to again: a torn line stays its last
            raise JournalError(f"the journal cannot be written ({exc.strerror or exc})") from exc

    def seal(self) -> None:
        """Stop appending to the current segment, so that a replay may take it."""
        if self._fd is not None:
            fd, self._fd, self._path, self._sealer = self._fd, None, None, None
            with contextlib.suppress(OSError):
                os.close(fd)  # releases the lock

    def segments(self) -> list[Path]:
        """The segments on disk, oldest first (this process's open one included)."""
        try:
            return sorted(self.folder.glob(SEGMENT_GLOB))
        except OSError:
            return []

    def unwritable(self) -> str | None:
        """Why a segment could not be made in the folder now, or None (a cheap check: no file is made)."""
        if self._fd is not None:
            return None
        folder = self.folder
        while not folder.exists():
            if folder == folder.parent:
                return "no folder to make it in"
            folder = folder.parent
        if not folder.is_dir():
            return "a file stands where its folder should be"
        if not os.access(folder, os.W_OK | os.X_OK):
            return "its folder is not writable"
        return None

    def find(self, decision_id: str) -> LogEntry | None:
        """The entry with this decision id if it waits here to be replayed (sealed lines only), else None.

        A decision answered while the log was down is on record here until the replay: a caller who
        asks for it by id (its notice, say) is told to come back, never that it does not exist.
        """
        for path in reversed(self.segments()):
            try:
                entries = read_entries(path)
            except (OSError, ValueError):  # unsealed, torn or gone meanwhile: not a place it can be
                continue
            for entry in entries:
                if entry.decision_id == decision_id:
                    return entry
        return None

    def waiting(self) -> int:
        """How many segments wait to be replayed."""
        return len(self.segments())

    def replay(self, decision_log: DecisionLog) -> Replayed:
        """Write every sealed segment to the log and delete it; raises OSError if the log fails.

        Entries already on record (by decision id) are skipped, so a replay cut short (a crash
        between the commit and the delete) is simply done again.
        """
        done = written = busy = 0
        for path in self.segments():
            if path == self._path:
                continue
            with self._locked(path) as got:
                if not got:
                    busy += 1
                    continue
                try:
                    written += _write_segment(path, decision_log)
                except UnsealedFileError as exc:
                    aside = path.with_name(path.name.replace("journal-", "unsealed-", 1))
                    os.replace(path, aside)
                    log.error("journal segment %s is not sealed by this host's replay key, so nothing of it is "
                              "replayed; set aside as %s: %s", path.name, aside.name, exc)
                    continue
                path.unlink()
                _sync_folder(self.folder)
                done += 1
        return Replayed(done, written, busy)

    def _open(self) -> int:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.folder / f"journal-{stamp}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _sync_folder(self.folder)  # the new name itself survives a crash
        except OSError:
            os.close(fd)
            raise
        self._fd, self._path, self._sealer = fd, path, Sealer()
        return fd

    @staticmethod
    def _locked(path: Path):
        return _TryLock(path)


class _TryLock:
    """`with _TryLock(path) as got:` holds an exclusive flock on `path` when `got`."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> bool:
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # replayed by another process meanwhile
            return False
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            return False
        return self.path.exists()  # False: replayed and deleted between our open and our lock

    def __exit__(self, *_exc) -> None:
        if self.fd is not None:
            os.close(self.fd)


def _write_segment(path: Path, decision_log: DecisionLog) -> int:
    entries, digest = _read(path)
    written = 0
    for chunk in _chunks(entries, REPLAY_ROWS):
        known = decision_log.known_ids([e.decision_id for e in chunk if e.decision_id])
        fresh = [e for e in chunk if e.decision_id is None or e.decision_id not in known]
        result = decision_log.record(fresh)
        if result.refused:  # these rows, not the database: write the rest, set the refused apart
            result = _write_apart(path, fresh, decision_log)
        if not result.ok:
            raise OSError(result.warning)
        written += result.written
    with decision_log.writing() as conn:
        record_replay(conn, path, digest, written=written, skipped=len(entries) - written)
    return written


def _write_apart(path: Path, entries: list[LogEntry], decision_log: DecisionLog) -> LogResult:
    """Entry by entry; those the database refuses for their content go to a `refused-*` file
    beside the segment (kept, and logged), so that one bad row never holds the journal up."""
    written, refused = 0, []
    for entry in entries:
        result = decision_log.record(entry)
        if result.refused:
            refused.append(entry)
        elif not result.ok:
            return result
        else:
            written += 1
    if refused:
        # Sealed like the segment, so that `serve.py --replay` takes it once the cause is fixed.
        aside = path.with_name(path.name.replace("journal-", "refused-", 1).replace(
            ".jsonl", f"-{secrets.token_hex(3)}.jsonl"))
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(Sealer().sealed(encode_bytes(e) for e in refused))
            out.flush()
            os.fsync(out.fileno())
        log.error("the decision log refuses %d journaled decision(s) for their content (%s); they are kept in %s",
                  len(refused), ", ".join(str(e.decision_id) for e in refused[:5]), aside)
    return LogResult(written)


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
