"""Every decision on record, through SQLAlchemy: a SQLite file by default, any URL by config.

A lender must be able to show what was decided, when, by which model version and why. Writes are
one transaction per call (a batch is one bulk insert), so concurrent app sessions and batch runs
never interleave half-written rows; a write that fails is reported to the caller, never raised
into the decision path.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("loandesk.decision_log")

SCHEMA_VERSION = 1
DEFAULT_DB_PATH = Path(__file__).resolve().parent.parent / "data" / "decisions.db"
SOURCES = ("form", "batch page", "command", "api", "learn")

metadata = MetaData()
decisions = Table(
    "decisions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("decided_at", DateTime(timezone=True), nullable=False, index=True),
    Column("model_name", String(200), nullable=False),
    Column("model_version", String(100), nullable=False, index=True),
    Column("model_sha256", String(64), nullable=False),
    Column("source", String(40), nullable=False),
    Column("officer", String(200)),
    Column("simulated", Boolean, nullable=False, default=False),
    Column("inputs", JSON, nullable=False),
    Column("probability", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("decision", Integer, nullable=False),
    Column("reasons", Text, nullable=False, default=""),
    Column("out_of_range", Text, nullable=False, default=""),
)
meta = Table(
    "loandesk_meta", metadata,
    Column("key", String(50), primary_key=True),
    Column("value", String(200), nullable=False),
)


@dataclass
class LogEntry:
    """One decision as it goes on record."""

    model_name: str
    model_version: str
    model_sha256: str
    source: str
    inputs: dict[str, Any]
    probability: float
    threshold: float
    decision: int
    reasons: str = ""
    out_of_range: str = ""
    officer: str | None = None
    simulated: bool = False
    decided_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def row(self) -> dict[str, Any]:
        out = self.__dict__.copy()
        out["inputs"] = _json_safe(self.inputs)
        out["officer"] = (self.officer or "").strip() or None
        return out


@dataclass(frozen=True)
class LogResult:
    written: int
    warning: str | None = None  # for the officer, beside the decision, when nothing was written

    @property
    def ok(self) -> bool:
        return self.warning is None


def entry_for(model, decision, *, source: str, officer: str | None = None, simulated: bool = False) -> LogEntry:
    """The log entry for a `Decision` made by `model`."""
    return LogEntry(
        model_name=model.name, model_version=model.version, model_sha256=model.sha256,
        source=source, officer=officer, simulated=simulated, inputs=decision.applicant,
        probability=decision.probability, threshold=decision.threshold, decision=decision.decision,
        reasons="; ".join(r.text for r in decision.reasons),
        out_of_range=", ".join(decision.out_of_range),
    )


def default_url() -> str:
    """LOANDESK_DB_URL, else a SQLite file in the data folder beside the app."""
    url = os.environ.get("LOANDESK_DB_URL")
    if url:
        return url
    return f"sqlite:///{DEFAULT_DB_PATH}"


class DecisionLog:
    """The decision log; create one per process and share it (the engine pools connections)."""

    def __init__(self, url: str | None = None):
        self.url = url or default_url()
        self._engine: Engine | None = None
        self._ready = False

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = _make_engine(self.url)
        return self._engine

    def ensure_schema(self) -> None:
        """Create the tables on first use and record the schema version (for later migrations)."""
        if self._ready:
            return
        if self.url.startswith("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            found = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
            if found is None:
                conn.execute(insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
            elif int(found) > SCHEMA_VERSION:
                raise RuntimeError(f"the decision log has schema version {found}; this LoanDesk "
                                   f"knows version {SCHEMA_VERSION}: upgrade LoanDesk")
        self._ready = True

    def schema_version(self) -> int:
        self.ensure_schema()
        with self.engine.connect() as conn:
            return int(conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar())

    def record(self, entries: LogEntry | Iterable[LogEntry]) -> LogResult:
        """Write entries in one transaction; never raises: a failure comes back as a warning."""
        rows = [e.row() for e in ([entries] if isinstance(entries, LogEntry) else entries)]
        if not rows:
            return LogResult(0)
        try:
            self.ensure_schema()
            with self.engine.begin() as conn:
                conn.execute(insert(decisions), rows)
        except (SQLAlchemyError, OSError, RuntimeError) as exc:
            log.error("decision log write failed (%d decision(s) not recorded): %s", len(rows), exc)
            return LogResult(0, f"This decision could not be written to the decision log "
                                f"({_short(exc)}). It stands, but is not on record: tell your "
                                f"administrator.")
        return LogResult(len(rows))

    def read(self, *, start: datetime | None = None, end: datetime | None = None,
             versions: Sequence[str] | None = None, limit: int | None = None) -> pd.DataFrame:
        """Decisions, newest first, with one column per input field."""
        self.ensure_schema()
        q = select(decisions).order_by(decisions.c.decided_at.desc(), decisions.c.id.desc())
        if start is not None:
            q = q.where(decisions.c.decided_at >= start)
        if end is not None:
            q = q.where(decisions.c.decided_at < end)
        if versions:
            q = q.where(decisions.c.model_version.in_(list(versions)))
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(q).mappings().all(), columns=[c.name for c in decisions.c])
        frame["decided_at"] = pd.to_datetime(frame["decided_at"], utc=True)
        return frame

    def count(self) -> int:
        self.ensure_schema()
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(decisions)).scalar())

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def inputs_frame(log_frame: pd.DataFrame) -> pd.DataFrame:
    """The logged inputs as columns (one per field), aligned with the log's rows."""
    if log_frame.empty:
        return pd.DataFrame(index=log_frame.index)
    return pd.DataFrame(list(log_frame["inputs"]), index=log_frame.index)


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _json_safe(value.item())
    return value


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return text[:160]
