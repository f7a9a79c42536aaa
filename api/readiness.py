"""/readyz from a cached check: one background task refreshes it, so a flood of calls costs nothing.

A balancer (or anyone: it needs no key) may ask many times a second; each answer is the last
check's, never a database ping of its own. What it says is for routing traffic, in fixed words:
no server paths and no driver messages (those go to the server log).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from model.records.log import DecisionLog
from model.records.writer import LogWriter
from model.registry.store import ModelIntegrityError

from .keys import KeyStore
from .registry import ActiveModel

log = logging.getLogger("loandesk.api")

CHECK_SECONDS = 1.0  # how often the check runs


class Readiness:
    """The last readiness check, and the one task that refreshes it."""

    def __init__(self, active: ActiveModel, decision_log: DecisionLog, writer: LogWriter, keys: KeyStore):
        self.active, self.decision_log, self.writer, self.keys = active, decision_log, writer, keys
        self._answer: tuple[int, dict[str, Any]] = (503, {"status": "not ready", "problems": ["starting"]})
        self.checked_at = -1e9

    def answer(self) -> tuple[int, dict[str, Any]]:
        return self._answer

    async def refresh(self) -> None:
        """Check now, in a thread (the ping may wait on the database)."""
        try:
            self._answer = await asyncio.to_thread(self.check)
        except Exception:  # a bug in the check must not stop the checking
            log.exception("the readiness check failed")

    async def keep_checking(self) -> None:
        """Refresh the answer every CHECK_SECONDS, one check at a time."""
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            await self.refresh()

    def check(self) -> tuple[int, dict[str, Any]]:
        """(status, body): 503 when the model cannot be used or no decision can be put on record."""
        problems: list[str] = []
        warnings: list[str] = []
        about: dict[str, Any] = {}
        try:
            model = self.active.get()
            about = {"model_name": model.name, "model_version": model.version}
        except ModelIntegrityError as exc:
            problems.append("model: cannot be used (see the server log)")
            log.error("readiness: the model cannot be used: %s", exc)
        if (why := self.keys.unusable()) is not None:
            problems.append("api keys: cannot be checked (see the server log)")
            log.error("readiness: %s", why)
        writer = self.writer
        log_ok = writer.healthy
        if log_ok and (why := self.decision_log.ping()) is not None:
            log_ok = False
            log.error("readiness: the decision log cannot be reached at %r: %s", self.decision_log, why)
        journal_why = writer.journal_problem or writer.journal.unwritable()
        if journal_why is not None:
            log.error("readiness: the journal in %s cannot be written: %s", writer.journal.folder, journal_why)
        if not log_ok and journal_why is not None:
            problems.append("decisions cannot be put on record: neither the decision log nor the journal "
                            "can be written (see the server log)")
        elif not log_ok:
            warnings.append("decision log: cannot be written; decisions are kept in the local journal and "
                            "written to the log when it is back")
        elif journal_why is not None:
            warnings.append("journal: cannot be written; if the decision log fails, requests will get 503")
        waiting = writer.journal.waiting()
        if waiting:
            warnings.append(f"journal: {waiting} segment(s) wait to be written to the decision log")
        self.checked_at = time.monotonic()
        body = {"status": "not ready" if problems else "ready", **about,
                "decision_log": "writable" if log_ok else "cannot be written",
                "journal": "writable" if journal_why is None else "cannot be written",
                "journal_segments": waiting, "unlogged_decisions": writer.unlogged,
                "problems": problems, "warnings": warnings}
        return (503 if problems else 200), body
