"""The local journal: where a decision goes on record while the decision log cannot take it.

A decision is answered only once it is durable. When the database cannot be written, the writer
appends the decisions here and fsyncs before anyone is answered; the journal is replayed into the
log when the database is back (idempotently: ids already on record are skipped), then deleted.

The format is kept in this one module: one JSON object per line, a `LogEntry`'s fields (the same
lines `python serve.py --replay FILE` reads). The journal is a folder of segments, each written by
one process that holds an exclusive `flock` on it for as long as it may append; a replay takes the
same lock without waiting, so it never reads a segment still being written, and two processes
never replay the same one. A line without its newline is a torn write from a crash before the
fsync: nobody was answered for it, so it is left out. Folder and files are the owner's only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from model.records.log import DecisionLog, LogEntry, LogResult

log = logging.getLogger("loandesk.journal")

SEGMENT_GLOB = "journal-*.jsonl"
REPLAY_ROWS = 5000  # entries per transaction when a segment is replayed


class JournalError(OSError):
    """The journal cannot be written (or read); the message says why, without the folder's path."""


def encode(entry: LogEntry) -> str:
    """One entry as a line of JSON (no newline)."""
    row = entry.row()
    row["decided_at"] = row["decided_at"].isoformat()
    return json.dumps(row, default=str, separators=(",", ":"))


def decode(line: str) -> LogEntry:
    """The entry on one line; ValueError (with why) for anything else."""
    try:
        row = json.loads(line)
        row["decided_at"] = datetime.fromisoformat(row["decided_at"])
        return LogEntry(**row)
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a decision log entry ({exc})") from exc


def read_entries(path: Path) -> list[LogEntry]:
    """Every complete line of a journal segment or unsent file; a torn last line is left out."""
    data = Path(path).read_bytes()
    lines = data.split(b"\n")
    if lines[-1]:
        log.warning("%s ends in a torn line (a crash mid-write, never answered): left out", path.name)
    entries = []
    for number, line in enumerate(lines[:-1], start=1):
        if line.strip():
            try:
                entries.append(decode(line.decode("utf-8")))
            except (ValueError, UnicodeDecodeError) as exc:
                raise ValueError(f"{path.name}, line {number}: {exc}") from None
    return entries


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

    def append(self, entries: Iterable[LogEntry]) -> None:
        """Write the entries and fsync them; when this returns, they survive a crash of the process."""
        data = "".join(encode(e) + "\n" for e in entries).encode("utf-8")
        try:
            fd = self._fd if self._fd is not None else self._open()
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
            fd, self._fd, self._path = self._fd, None, None
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
                written += _write_segment(path, decision_log)
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
        self._fd, self._path = fd, path
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
    entries = read_entries(path)
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
        aside = path.with_name(path.name.replace("journal-", "refused-", 1))
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.writelines(encode(e) + "\n" for e in refused)
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
