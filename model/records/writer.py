"""Writing the decision log in batches, off the path that answers a client.

A service that answers in a millisecond cannot wait for a database commit per decision; it hands
its entries to this writer, which commits them in batches from a thread of its own. Nothing is
dropped: a failed batch is kept and retried, the failure is reported (`healthy`, `problem`) and
logged, and entries still unwritten when the writer is closed go to a JSON-lines file whose path
is logged, from which `replay` writes them once the database is back.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from model.core import config
from model.records.log import DecisionLog, LogEntry, LogResult

log = logging.getLogger("loandesk.log_writer")

MAX_PENDING = 200_000  # queued entries past which callers wait for the writer (about 200 MB)
BATCH_ROWS = 5000  # the most rows one transaction carries
PAUSE_SECONDS = 0.02  # how long the writer lets entries gather before a commit
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)  # waits between attempts while the database is down


class LogWriter:
    """Queues entries and commits them in batches from one background thread."""

    def __init__(self, decision_log: DecisionLog, unsent_dir: Path | None = None):
        self.decision_log = decision_log
        self.unsent_dir = unsent_dir or default_unsent_dir()
        self._queue: deque[LogEntry] = deque()
        self._wake = threading.Condition()
        self._closing = False
        self._stop = threading.Event()  # set by close(): retries give up
        self._holding: list[LogEntry] = []  # the batch being committed
        self.written = 0
        self.problem: str | None = None  # why the last attempt failed; None once a write succeeds
        self._thread = threading.Thread(target=self._run, name="decision-log-writer", daemon=True)
        self._thread.start()

    @property
    def healthy(self) -> bool:
        return self.problem is None

    @property
    def unlogged(self) -> int:
        """Entries accepted and not yet on record."""
        return len(self._queue) + len(self._holding)

    def submit(self, entries: Iterable[LogEntry]) -> None:
        """Queue entries for the log; returns at once."""
        with self._wake:
            if self._closing:
                raise RuntimeError("the decision log writer is closed")
            self._queue.extend(entries)
            self._wake.notify()

    @property
    def behind(self) -> bool:
        """More than MAX_PENDING entries wait: callers should `wait_for_room` before sending more."""
        return len(self._queue) > MAX_PENDING

    def wait_for_room(self, timeout: float = 60.0) -> None:
        """Block until a healthy writer has caught up to half of MAX_PENDING (backpressure: clients
        slow down rather than memory grows without bound); returns at once for a failing one."""
        with self._wake:
            self._wake.wait_for(lambda: len(self._queue) <= MAX_PENDING // 2 or not self.healthy, timeout)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is on record; False if that took too long."""
        deadline = time.monotonic() + timeout
        while self.unlogged and time.monotonic() < deadline:
            with self._wake:
                self._wake.notify()
            time.sleep(0.005)
        return not self.unlogged

    def close(self, timeout: float = 10.0) -> Path | None:
        """Write what is queued and stop. Entries that could not be written are saved to a file
        (returned, and logged) rather than lost."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        written = -1
        while self._thread.is_alive() and self.healthy and self.written != written:
            written = self.written  # keep waiting while the backlog drains; stop when it stalls
            self._thread.join(timeout)
        self._stop.set()  # a failing database: give up retrying and save what is left
        self._thread.join(timeout)
        with self._wake:  # a writer still stuck in a commit: its batch is saved too (replay skips repeats)
            left = self._holding + list(self._queue)
            self._queue.clear()
        if not left:
            return None
        path = self._save(left)
        if path is not None:
            log.error("%d decision(s) could not be written to %r; they are saved in %s. Replay them with "
                      "`python serve.py --replay %s` once the database is back.", len(left),
                      self.decision_log, path, path)
        return path

    def _save(self, entries: list[LogEntry]) -> Path | None:
        """Entries to an unsent file; if even that fails, to the error log, one JSON line each."""
        try:
            return save_unsent(entries, self.unsent_dir)
        except OSError as exc:
            log.error("cannot save %d unlogged decision(s) in %s (%s); here they are:", len(entries),
                      self.unsent_dir, exc)
            for e in entries:
                log.error("unlogged decision: %s", entry_json(e))
            return None

    # --- the thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closing:
                    self._wake.wait()
                if not self._queue:
                    return
                gather = not self._closing and len(self._queue) < BATCH_ROWS
            if gather:
                time.sleep(PAUSE_SECONDS)  # let a trickle gather into one transaction; a backlog goes at once
            with self._wake:
                batch = [self._queue.popleft() for _ in range(min(BATCH_ROWS, len(self._queue)))]
                self._holding = batch
            written = self._write(batch)
            with self._wake:
                self._holding = []
                self._wake.notify_all()  # room in the queue for a caller in wait_for_room()
                if not written:  # closing with the database down: close() saves these to a file
                    self._queue.extendleft(reversed(batch))
                    return

    def _write(self, batch: list[LogEntry]) -> bool:
        """Commit one batch, retrying while the database is down; False once closing gives up."""
        attempt = 0
        while True:
            try:
                result = self.decision_log.record(batch)
            except Exception as exc:  # a bug, not the database: still never drop the batch silently
                log.exception("the decision log writer failed")
                result = LogResult(0, f"the decision log writer failed: {exc}")
            if result.ok:
                self.written += len(batch)
                if self.problem is not None:
                    log.warning("the decision log is writable again")
                self.problem = None
                return True
            if result.refused:  # these rows, not the database: find them, keep writing the rest
                return self._write_apart(batch, result.warning)
            if self.problem is None:
                log.error("the decision log cannot be written; %d decision(s) are held and retried: %s",
                          self.unlogged, result.warning)
            self.problem = result.warning
            with self._wake:
                self._wake.notify_all()  # nobody should wait for room behind a dead database
            self._spill_backlog()
            if self._stop.wait(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]):
                return False
            attempt += 1

    def _write_apart(self, batch: list[LogEntry], why: str | None) -> bool:
        """A batch the database refuses for its content: halves until the refused rows stand alone;
        those are saved to an unsent file, so that one bad row never holds the log up."""
        if len(batch) == 1:
            path = self._save(batch)
            log.error("the decision log refuses decision %s (%s); saved in %s", batch[0].decision_id, why, path)
            return True
        middle = len(batch) // 2
        return self._write(batch[:middle]) and self._write(batch[middle:])

    def _spill_backlog(self) -> None:
        """While the database is down, a backlog past MAX_PENDING goes to a file, not into memory."""
        with self._wake:
            if len(self._queue) <= MAX_PENDING:
                return
            backlog = list(self._queue)
            self._queue.clear()
        path = self._save(backlog)
        if path is not None:
            log.error("%d decision(s) saved to %s while the log cannot be written; replay them "
                      "with `python serve.py --replay %s`", len(backlog), path, path)


def default_unsent_dir() -> Path:
    """LOANDESK_UNSENT_DIR, else data/unsent beside the app."""
    return config.unsent_dir()


def save_unsent(entries: list[LogEntry], folder: Path) -> Path:
    """Entries as JSON lines in a new file in `folder`, synced to disk."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"decisions-{stamp}-{os.getpid()}.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for e in entries:
            out.write(entry_json(e) + "\n")
        out.flush()
        os.fsync(out.fileno())
    return path


def entry_json(entry: LogEntry) -> str:
    """One entry as a line of JSON, as unsent files hold them."""
    row = entry.row()
    row["decided_at"] = row["decided_at"].isoformat()
    return json.dumps(row, default=str)


def replay(path: Path, decision_log: DecisionLog) -> int:
    """Write a file of unsent entries to the log in one transaction; returns how many.

    Entries already on record (same decision_id) are skipped, so replaying twice is harmless.
    """
    entries = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            row["decided_at"] = datetime.fromisoformat(row["decided_at"])
            entries.append(LogEntry(**row))
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{path}, line {number}: not a decision log entry ({exc})") from exc
    known = decision_log.known_ids([e.decision_id for e in entries if e.decision_id])
    fresh = [e for e in entries if e.decision_id is None or e.decision_id not in known]
    result = decision_log.record(fresh)
    if not result.ok:
        raise OSError(result.warning)
    return len(fresh)
