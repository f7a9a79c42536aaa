"""Group commit: a decision is answered only once it is durable, and many share one commit.

A caller hands its entries to `LogWriter.submit` and waits on the future it gets back (an API
request awaits it off the event loop). One thread commits whatever has gathered since its last
commit in one transaction, so sixteen concurrent requests pay for one commit, not sixteen, and a
lone request waits for exactly one. The future resolves only when its entries are committed to
the decision log, or, while the log cannot be written, appended to the local journal and fsynced
(`model.records.journal`); a second thread pings the log meanwhile and, once it answers, replays
the journal into it (by decision id, so twice is harmless). When neither can take them the future
fails with `NotDurable` and the caller must not hand the decision out. Nothing is held only in
memory: what is queued has not been answered.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from model.core import config
from model.records.batches import replay_file
from model.records.journal import Journal, JournalError, encode_bytes
from model.records.log import DecisionLog, LogEntry, LogResult
from model.records.sealed import SealedWriter

log = logging.getLogger("loandesk.log_writer")

BATCH_ROWS = 5000  # the most rows one transaction carries
RETRY_SECONDS = 1.0  # how often a log that failed is pinged, and leftover journal segments looked for
Where = Literal["log", "journal"]


class NotDurable(RuntimeError):
    """Neither the decision log nor the journal took these decisions: they must not be handed out.

    `retry` is False when the log refuses the rows themselves (a bug, not an outage).
    """

    def __init__(self, message: str, retry: bool = True):
        super().__init__(message)
        self.retry = retry


@dataclass
class _Unit:
    """One caller's entries: committed together, answered together."""

    entries: list[LogEntry]
    future: Future


class LogWriter:
    """Commits submitted entries in groups from one thread; journals them while the log is down."""

    def __init__(self, decision_log: DecisionLog, journal_dir: Path | None = None,
                 retry_seconds: float | None = None):
        self.decision_log = decision_log
        self.journal = Journal(journal_dir or default_unsent_dir())
        self.retry_seconds = RETRY_SECONDS if retry_seconds is None else retry_seconds
        self._queue: deque[_Unit] = deque()
        self._queued_rows = 0
        self._wake = threading.Condition()
        self._closing = False
        self._stop = threading.Event()
        self._log_back = False  # set by the recovery thread: the log answers again
        self._to_journal = False  # the log failed: entries go to the journal until it answers
        self.written = 0  # entries this writer committed to the log
        self.journaled = 0  # entries this writer appended to the journal
        self.problem: str | None = None  # why the log cannot be written; None while it can
        self.journal_problem: str | None = None  # why the journal cannot be written
        self._thread = threading.Thread(target=self._run, name="decision-log-writer", daemon=True)
        self._recovery = threading.Thread(target=self._recover, name="decision-log-recovery", daemon=True)
        self._thread.start()
        self._recovery.start()

    # --- what callers use ----------------------------------------------------------------------
    def submit(self, entries: Iterable[LogEntry]) -> Future:
        """Queue entries; the future resolves to "log" or "journal" once they are durable, or
        fails with NotDurable. Until it resolves, the decisions must not be handed out."""
        future: Future = Future()
        future.set_running_or_notify_cancel()  # a caller that gives up cannot cancel it: it is committed anyway
        unit = _Unit(list(entries), future)
        if not unit.entries:
            future.set_result("log")
            return future
        with self._wake:
            if self._closing:
                raise NotDurable("the decision log writer is closed")
            self._queue.append(unit)
            self._queued_rows += len(unit.entries)
            self._wake.notify()
        return future

    def write(self, entries: Iterable[LogEntry], timeout: float | None = 60.0) -> Where:
        """`submit` and wait: where the entries went. Raises NotDurable (or TimeoutError)."""
        return self.submit(entries).result(timeout)

    @property
    def healthy(self) -> bool:
        """The log itself takes decisions (not only the journal)."""
        return self.problem is None

    @property
    def durable(self) -> bool:
        """Decisions can be made durable somewhere: the log, or the journal."""
        return self.problem is None or self.journal_problem is None

    @property
    def unlogged(self) -> int:
        """Entries accepted and not yet durable (queued or being committed): none of them answered."""
        return self._queued_rows

    def close(self, timeout: float = 30.0) -> None:
        """Make everything queued durable, stop, and replay the journal if the log is back."""
        with self._wake:
            self._closing = True
            self._wake.notify_all()
        self._thread.join(timeout)
        self._stop.set()
        self._recovery.join(timeout)
        self.journal.seal()
        if not self._to_journal:
            self._replay()

    # --- the committing thread -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closing and not self._log_back:
                    self._wake.wait()
                if self._log_back:
                    self._log_back = False
                    if self._to_journal:  # the next batch tries the log; the sealed segment is replayed
                        self.journal.seal()
                        self._to_journal = False
                        self.problem = None
                        log.warning("the decision log answers again; the journal is written to it")
                if not self._queue:
                    if self._closing:
                        return
                    continue
                units, rows = [self._queue.popleft()], 0
                rows = len(units[0].entries)
                while self._queue and rows + len(self._queue[0].entries) <= BATCH_ROWS:
                    units.append(self._queue.popleft())
                    rows += len(units[-1].entries)
            try:
                self._commit(units)
            finally:
                with self._wake:
                    self._queued_rows -= rows

    def _commit(self, units: list[_Unit]) -> None:
        rows = [e for u in units for e in u.entries]
        if not self._to_journal:
            result = self._record(rows)
            if result.ok:
                self.written += len(rows)
                if self.problem is not None:
                    log.warning("the decision log is writable again")
                    self.problem = None
                _resolve(units, "log")
                return
            if result.refused:
                self._commit_apart(units, result.warning)
                return
            log.error("the decision log cannot be written; decisions go to the journal until it can: %s",
                      result.warning)
            self.problem = result.warning
            self._to_journal = True
        try:
            self.journal.append(rows)
        except JournalError as exc:
            if self.journal_problem is None:
                log.error("neither the decision log nor the journal in %s can be written; requests are "
                          "refused (503) until one can: %s", self.journal.folder, exc)
            self.journal_problem = str(exc)
            for u in units:
                u.future.set_exception(NotDurable("the decision could not be put on record; try again shortly"))
            return
        if self.journal_problem is not None:
            log.warning("the journal is writable again")
            self.journal_problem = None
        self.journaled += len(rows)
        _resolve(units, "journal")

    def _commit_apart(self, units: list[_Unit], why: str | None) -> None:
        """The log refuses something in these rows: halve until the refusing caller stands alone,
        fail it (its decisions are not handed out), commit the others."""
        if len(units) == 1:
            log.error("the decision log refuses %d decision(s) (%s); they are not handed out: %s",
                      len(units[0].entries), units[0].entries[0].decision_id, why)
            units[0].future.set_exception(NotDurable("the decision log refused this decision", retry=False))
            return
        middle = len(units) // 2
        self._commit(units[:middle])
        self._commit(units[middle:])

    def _record(self, rows: list[LogEntry]) -> LogResult:
        try:
            return self.decision_log.record(rows)
        except Exception as exc:  # a bug, not the database: still never hand out what is not on record
            log.exception("the decision log writer failed")
            return LogResult(0, f"the decision log writer failed: {exc}")

    # --- the recovery thread -------------------------------------------------------------------
    def _recover(self) -> None:
        """While the log fails: ping it, and tell the writer when it answers. While it works:
        replay what the journal holds (this process's sealed segments, or any left by a crash)."""
        wait = 0.0
        while not self._stop.wait(wait):
            wait = self.retry_seconds
            if self._to_journal:
                if self.decision_log.ping() is None:
                    with self._wake:
                        self._log_back = True
                        self._wake.notify_all()
                    wait = min(wait, 0.05)  # replay soon after the writer switched back
            elif self.journal.waiting():
                self._replay()

    def _replay(self) -> None:
        try:
            done = self.journal.replay(self.decision_log)
        except (OSError, RuntimeError, ValueError) as exc:
            log.error("the journal could not be replayed yet (tried again in %.0f s): %s", self.retry_seconds, exc)
            return
        if done.segments:
            log.warning("replayed %d journal segment(s) into the decision log: %d decision(s) written",
                        done.segments, done.written)


def _resolve(units: list[_Unit], where: Where) -> None:
    for u in units:
        u.future.set_result(where)


def default_unsent_dir() -> Path:
    """LOANDESK_UNSENT_DIR, else data/unsent beside the app: the journal, and files to replay."""
    return config.unsent_dir()


def save_unsent(entries: list[LogEntry], folder: Path) -> Path:
    """Entries as JSON lines in a new sealed, owner-only file in `folder`, synced to disk: only a
    file sealed by this host's replay key is ever replayed (model.records.sealed)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = Path(folder) / f"decisions-{stamp}-{os.getpid()}-{os.urandom(3).hex()}.jsonl"
    with SealedWriter(path) as out:
        for e in entries:
            out.write_raw(encode_bytes(e))
    return path


def entry_json(entry: LogEntry) -> bytes:
    """One entry as a line of JSON, as unsent files and the journal hold them."""
    return encode_bytes(entry)


def replay(path: Path, decision_log: DecisionLog) -> int:
    """Write a sealed file of decisions (unsent, a batch's, a journal segment) to the log in one
    transaction; returns how many.

    Entries already on record (same decision_id) are skipped, so replaying twice is harmless; a
    file that is not sealed by this host's replay key is refused whole (UnsealedFileError, a
    ValueError). The replay itself is recorded in the `replays` table.
    """
    return replay_file(Path(path), decision_log).written
