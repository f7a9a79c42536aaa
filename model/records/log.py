"""Every decision on record, through SQLAlchemy: a SQLite file by default, any URL by config.

A lender must be able to show what was decided, when, by which model version and why. Writes are
one transaction per call (a batch is one bulk insert), so concurrent app sessions and batch runs
never interleave half-written rows; a write that fails is reported to the caller, never raised
into the decision path.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from model.core import config
from model.core.errors import DecisionLogError
from model.core.files import create_private, private_dir
from model.core.metrics import approves
from model.records import migrate
from model.records.tables import decisions, meta
from model.scoring.reason_codes import join_codes

if TYPE_CHECKING:
    from model.scoring.decisions import Decided
    from model.scoring.explain import Decision
    from model.scoring.predictor import LoanModel
    from model.scoring.rows import RowDecision

log = logging.getLogger("loandesk.decision_log")

SCHEMA_VERSION = migrate.SCHEMA_VERSION  # the head migration's number
DEFAULT_DB_PATH = config.DEFAULT_DB_PATH
SOURCES = ("form", "batch page", "command", "api", "learn", "simulation")
# How long a write waits for another writer before it gives up and warns: long enough for any bulk
# insert to finish, short enough that an officer is never kept waiting for long.
BUSY_SECONDS = 10
CONNECT_SECONDS = 5
SCHEMA_ATTEMPTS = 4



@dataclass
class LogEntry:
    """One decision as it goes on record.

    `reasons` is `; `-separated text and `reason_codes` their stable codes (`;`-separated, same
    order); `out_of_range` the comma-separated names of the fields outside the training range;
    `simulated` marks demo rows that no applicant stands behind; `referred` a case inside the
    model's refer band. Every entry has a decision id, so that a notice, an override or an outcome
    can name it.
    """

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
    decision_id: str | None = field(default_factory=lambda: new_decision_ids(1)[0])
    reason_codes: str = ""
    referred: bool = False
    batch_id: str | None = None  # the batch run it belongs to, if any
    batch_sha256: str | None = None  # that batch's input file's SHA-256

    def row(self) -> dict[str, Any]:
        """Plain Python values only: numpy scalars are refused by some database drivers."""
        out = self.__dict__.copy()
        out["inputs"] = _json_safe(self.inputs)
        out["officer"] = (self.officer or "").strip() or None
        out["probability"] = float(self.probability)
        out["threshold"] = float(self.threshold)
        out["decision"] = int(self.decision)
        out["simulated"] = bool(self.simulated)
        out["reasons"] = self.reasons or ""
        out["reason_codes"] = self.reason_codes or ""
        out["referred"] = bool(self.referred)
        out["out_of_range"] = self.out_of_range or ""
        out["decided_at"] = _utc(self.decided_at)
        return out


@dataclass(frozen=True)
class LogResult:
    written: int
    warning: str | None = None  # for the officer, beside the decision, when nothing was written
    refused: bool = False  # the database refused these rows (too long, a repeated id), not the write

    @property
    def ok(self) -> bool:
        return self.warning is None


def entry_for(model: LoanModel, decision: Decision, *, source: str, officer: str | None = None,
              simulated: bool = False, decision_id: str | None = None) -> LogEntry:
    """The log entry for one explained `Decision` (the Decide page's), with a new decision id unless
    one is given."""
    [entry] = make_entries(
        model, inputs=[decision.applicant], probability=[decision.probability],
        reasons=["; ".join(r.text for r in decision.reasons)], out_of_range=[", ".join(decision.out_of_range)],
        reason_codes=[join_codes(decision.reason_codes)], source=source, officer=officer, simulated=simulated,
        decision_ids=[decision_id] if decision_id else None)
    return entry


def entries_for_rows(model: LoanModel, clean: pd.DataFrame, probabilities: np.ndarray, *, source: str,
                     reasons: Sequence[str] | None = None, out_of_range: dict[str, np.ndarray] | None = None,
                     officer: str | None = None, simulated: bool = False,
                     reason_codes: Sequence[str] | None = None) -> list[LogEntry]:
    """Log entries for validated rows already scored elsewhere (a test's or a tool's own frame)."""
    n = len(clean)
    records = clean.astype(object).where(clean.notna(), None).to_dict("records")
    return make_entries(model, inputs=records, probability=probabilities,
                        reasons=list(reasons) if reasons is not None else [""] * n,
                        reason_codes=list(reason_codes) if reason_codes is not None else None,
                        out_of_range=_flagged_names(out_of_range or {}, n), source=source, officer=officer,
                        simulated=simulated)


def entries_for(model: LoanModel, decided: Decided, *, source: str, officer: str | None = None,
                simulated: bool = False, decision_ids: Sequence[str] | None = None,
                rows: slice = slice(None)) -> list[LogEntry]:
    """Log entries for the good rows of a columnar decision (`rows` picks a part of them)."""
    names = list(decided.clean)
    columns = [_plain(decided.clean[name][rows].tolist()) for name in names]
    inputs = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
    texts = decided.reason_texts()[decided.reason_index[rows]]
    codes = decided.code_texts()[decided.reason_index[rows]]
    flagged = _flagged_names({k: v[rows] for k, v in decided.out_of_range.items()}, len(inputs))
    return make_entries(model, inputs=inputs, probability=decided.probability[rows], reasons=texts,
                        reason_codes=codes, out_of_range=flagged, source=source, officer=officer,
                        simulated=simulated, decision_ids=decision_ids)


def entries_for_decisions(model: LoanModel, results: Sequence[RowDecision], *, source: str,
                          decision_ids: Sequence[str]) -> list[LogEntry]:
    """Log entries for `decide_rows` results, each with its decision id."""
    return make_entries(
        model, inputs=[r.inputs for r in results], probability=[r.probability for r in results],
        reasons=["; ".join(r.reasons) for r in results], out_of_range=[", ".join(r.out_of_range) for r in results],
        reason_codes=[join_codes(r.reason_codes) for r in results], source=source, decision_ids=decision_ids)


def make_entries(model: LoanModel, *, inputs: Sequence[dict[str, Any]], probability: Sequence[float] | np.ndarray,
                 reasons: Sequence[str] | np.ndarray, out_of_range: Sequence[str], source: str,
                 officer: str | None = None, simulated: bool = False,
                 decision_ids: Sequence[str] | None = None,
                 reason_codes: Sequence[str] | np.ndarray | None = None) -> list[LogEntry]:
    """The one place a decision becomes a log entry: all stamped with one time, decided by `approves`,
    referred by the model's refer band, each with a decision id (new ones unless given)."""
    now = datetime.now(UTC)
    threshold = model.threshold
    name, version, sha = model.name, model.version, model.sha256
    probability = np.asarray(probability, dtype=float)
    decision = approves(probability, threshold).tolist()
    referred = model.referred(probability).tolist()
    ids = list(decision_ids) if decision_ids is not None else new_decision_ids(len(inputs))
    codes = list(reason_codes) if reason_codes is not None else [""] * len(inputs)
    return [
        LogEntry(model_name=name, model_version=version, model_sha256=sha, source=source, officer=officer,
                 simulated=simulated, inputs=row, probability=p, threshold=threshold, decision=int(d),
                 reasons=str(r or ""), out_of_range=o, decided_at=now, decision_id=i, reason_codes=str(c or ""),
                 referred=bool(f))
        for row, p, d, r, o, i, c, f in zip(inputs, probability.tolist(), decision, reasons, out_of_range, ids,
                                            codes, referred, strict=True)
    ]


def _plain(values: list) -> list:
    """NaN (a gap) as None, for the log's JSON."""
    return [None if v != v else v for v in values]


def new_decision_ids(n: int) -> list[str]:
    """n new decision ids, 32 hex digits, unique across processes and machines.

    Time first, like a UUIDv7, so that the log's unique index grows at its end instead of at random
    places (random ids made a large log's inserts several times slower); then 32 random bits and
    the position in the batch.
    """
    prefix = _id_prefix()
    return [f"{prefix}{k:08x}" for k in range(n)]


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def decision_id_array(n: int) -> pa.StringArray:
    """`new_decision_ids(n)` as an Arrow array, built from bytes: a batch's million ids in
    milliseconds rather than the second that a million Python strings take."""
    chars = np.empty((n, 32), dtype=np.uint8)
    chars[:, :24] = np.frombuffer(_id_prefix().encode(), dtype=np.uint8)
    position = np.arange(n, dtype=np.uint32)
    for j in range(8):
        chars[:, 24 + j] = _HEX[(position >> (28 - 4 * j)) & 0xF]
    offsets = np.arange(0, 32 * (n + 1), 32, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars))


def _id_prefix() -> str:
    """The time in nanoseconds, then 32 random bits: 24 hex digits shared by one batch's ids."""
    return f"{time.time_ns():016x}{int.from_bytes(os.urandom(4)):08x}"


def _flagged_names(masks: dict[str, np.ndarray], n: int) -> list[str]:
    out = [""] * n
    for name, mask in masks.items():
        for i in np.flatnonzero(np.asarray(mask, dtype=bool)):
            out[i] = f"{out[i]}, {name}" if out[i] else name
    return out


def default_url() -> str:
    """LOANDESK_DB_URL, else a SQLite file in the data folder beside the app."""
    return config.db_url()


class DecisionLog:
    """The decision log; create one per process and share it (the engine pools connections)."""

    def __init__(self, url: str | None = None, busy_seconds: float = BUSY_SECONDS):
        self.url = url or default_url()
        self.busy_seconds = busy_seconds  # how long a write waits for another's lock (SQLite, PostgreSQL)
        self._engine: Engine | None = None
        self._ready = False

    def __repr__(self) -> str:
        return f"DecisionLog({make_url(self.url).render_as_string(hide_password=True)!r})"

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = _make_engine(self.url, self.busy_seconds)
        return self._engine

    def _writer(self) -> Engine:
        """The engine with the option that makes SQLite take its write lock when a transaction begins."""
        return self.engine.execution_options(loandesk_write=True)

    def ensure_schema(self) -> None:
        """Bring the schema to this LoanDesk's migrations on first use (see `model.records.migrate`).

        SQLite logs, and any new empty database, are migrated here; a PostgreSQL log that is behind is
        refused with the command that upgrades it. Two processes starting on a new database may both
        try; the loser's error is retried, and by then the tables are there.
        """
        if self._ready:
            return
        url = make_url(self.url)
        _create_sqlite_file(self.url)
        for attempt in range(SCHEMA_ATTEMPTS):
            try:
                with migrate.one_at_a_time(), self._writer().begin() as conn:
                    found = migrate.meta_version(conn)
                    if found is not None and found > SCHEMA_VERSION:
                        break
                    # Emptiness first, then the revision: on PostgreSQL each statement sees what others
                    # committed before it, and another process may finish making the schema between them.
                    empty = migrate.is_empty(conn)
                    if migrate.pending(conn):
                        if url.get_backend_name() != "sqlite" and not empty:
                            raise DecisionLogError(
                                f"the decision log at {self!r} has an older schema: run "
                                "`python -m model.records migrate` to upgrade it (every row is kept)")
                        migrate.upgrade(conn)
                break
            except SQLAlchemyError:
                if attempt == SCHEMA_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        if found is not None and found > SCHEMA_VERSION:
            raise RuntimeError(f"the decision log has schema version {found}; this LoanDesk "
                               f"knows version {SCHEMA_VERSION}: upgrade LoanDesk")
        self._ready = True

    def migrate(self) -> tuple[str | None, str]:
        """Upgrade the schema to this LoanDesk's head revision, every row kept: (before, after)."""
        url = make_url(self.url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        with self._writer().begin() as conn:
            before = migrate.current(conn)
            after = migrate.upgrade(conn)
        self._ready = True
        return before, after

    def revision(self) -> tuple[str | None, str]:
        """(the database's revision, this LoanDesk's head revision)."""
        with self.engine.connect() as conn:
            return migrate.current(conn), migrate.head()

    def schema_version(self) -> int:
        self.ensure_schema()
        with self.engine.connect() as conn:
            return int(conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar() or 0)

    def record(self, entries: LogEntry | Iterable[LogEntry]) -> LogResult:
        """Write entries in one transaction; never raises: a failure comes back as a warning."""
        rows = [entries] if isinstance(entries, LogEntry) else list(entries)
        if not rows:
            return LogResult(0)
        try:
            self.ensure_schema()
            with self._writer().begin() as conn:
                _insert(conn, rows)
        except (SQLAlchemyError, OSError, RuntimeError) as exc:
            log.error("decision log write failed (%d decision(s) not recorded) at %r: %s",
                      len(rows), self, _short(exc))
            what = "This decision" if len(rows) == 1 else f"These {len(rows):,} decisions"
            return LogResult(0, f"{what} could not be written to the decision log ({_short(exc)}). "
                                f"{'It stands' if len(rows) == 1 else 'They stand'}, but "
                                f"{'is' if len(rows) == 1 else 'are'} not on record: tell your administrator.",
                             refused=isinstance(exc, IntegrityError | DataError))
        return LogResult(len(rows))

    def read(self, *, start: datetime | date | None = None, end: datetime | date | None = None,
             versions: Sequence[str] | None = None, limit: int | None = None,
             simulated: bool | None = None, where: Sequence[ColumnElement[bool]] = ()) -> pd.DataFrame:
        """Decisions from `start` (inclusive) to `end` (exclusive), newest first.

        Naive datetimes and dates are taken as UTC. `simulated=False` leaves out the demo rows,
        `True` keeps only them. Raises DecisionLogError when the log cannot be read (so do
        `summary` and `count`).
        """
        q = (select(decisions).where(*window(start, end, versions, simulated), *where)
             .order_by(decisions.c.decided_at.desc(), decisions.c.id.desc()))
        if limit:
            q = q.limit(limit)
        with self._reading() as conn:
            rows = conn.execute(q).mappings().all()
        frame = pd.DataFrame(rows, columns=[c.name for c in decisions.c])
        frame["decided_at"] = pd.to_datetime(frame["decided_at"], utc=True)
        frame["simulated"] = frame["simulated"].astype(bool)
        return frame

    def summary(self) -> pd.DataFrame:
        """Per model version on record: its name, decision count, first and last decision (UTC)."""
        q = (select(decisions.c.model_version, decisions.c.model_name,
                    func.count().label("decisions"),
                    func.min(decisions.c.decided_at).label("first"),
                    func.max(decisions.c.decided_at).label("last"))
             .group_by(decisions.c.model_version, decisions.c.model_name)
             .order_by(func.max(decisions.c.decided_at).desc()))
        with self._reading() as conn:
            rows = conn.execute(q).mappings().all()
        frame = pd.DataFrame(rows, columns=["model_version", "model_name", "decisions", "first", "last"])
        for col in ("first", "last"):
            frame[col] = pd.to_datetime(frame[col], utc=True)
        return frame

    def find(self, decision_id: str) -> dict[str, Any] | None:
        """The decision an API client was given `decision_id` for, or None."""
        with self._reading() as conn:
            row = conn.execute(select(decisions).where(decisions.c.decision_id == decision_id)).mappings().first()
        return dict(row) if row is not None else None

    def ping(self) -> str | None:
        """None when a write transaction can be started on the log, else why not (for a health check)."""
        try:
            self.ensure_schema()
            with self._writer().begin() as conn:
                conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError, RuntimeError) as exc:
            return _short(exc)
        return None

    def known_ids(self, ids: Sequence[str], *, conn: Connection | None = None) -> set[str]:
        """Which of these decision ids are on record already (read in `conn`'s transaction if given)."""
        found: set[str] = set()
        ids = list(ids)
        with self._reading() if conn is None else nullcontext(conn) as c:
            for i in range(0, len(ids), 500):
                q = select(decisions.c.decision_id).where(decisions.c.decision_id.in_(ids[i:i + 500]))
                found.update(c.execute(q).scalars())
        return found

    def count(self) -> int:
        with self._reading() as conn:
            return int(conn.execute(select(func.count()).select_from(decisions)).scalar() or 0)

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """One write transaction (for the tables kept with the log: overrides, notices); raises
        DecisionLogError when it cannot be written."""
        try:
            self.ensure_schema()
            with self._writer().begin() as conn:
                yield conn
        except (SQLAlchemyError, OSError) as exc:
            log.error("decision log write failed at %r: %s", self, _short(exc))
            raise DecisionLogError(f"The decision log cannot be written ({_short(exc)}).") from exc

    def reading(self) -> AbstractContextManager[Connection]:
        """A connection for reading the log and the tables kept with it; DecisionLogError on failure."""
        return self._reading()

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection for reading; any failure becomes one DecisionLogError, logged once."""
        try:
            self.ensure_schema()
            with self.engine.connect() as conn:
                yield conn
        except (SQLAlchemyError, OSError, RuntimeError) as exc:
            log.error("decision log read failed at %r: %s", self, _short(exc))
            raise DecisionLogError(f"The decision log cannot be read ({_short(exc)}).") from exc

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def inputs_frame(log_frame: pd.DataFrame) -> pd.DataFrame:
    """The logged inputs as columns (one per field), aligned with the log's rows."""
    if log_frame.empty:
        return pd.DataFrame(index=log_frame.index)
    return pd.DataFrame(list(log_frame["inputs"]), index=log_frame.index)




def insert_entries(conn: Connection, entries: list[LogEntry]) -> None:
    """Insert entries in the caller's transaction (`DecisionLog.writing`)."""
    if entries:
        _insert(conn, entries)


def _insert(conn: Connection, entries: list[LogEntry], *, table: Table = decisions,
            extra: dict[str, Any] | None = None) -> None:
    """One executemany of the entries, straight to the driver.

    `conn.execute(insert(...), rows)` spends about 16 µs a row in per-row parameter handling; here
    the statement is compiled once, each column's bind processor (the dialect's own conversion of
    dates, booleans and JSON) runs once per distinct value, and the driver gets plain tuples:
    about a quarter of the cost, which is what lets the API log 100,000 decisions a second.
    """
    dialect = conn.dialect
    compiled = _compiled_inserts.get((dialect.name, table.name))
    if compiled is None:
        columns = [c for c in table.c if c.name not in ("id", "seq")]  # both numbered by the database
        statement = insert(table).compile(dialect=dialect, column_keys=[c.name for c in columns])
        order = list(statement.positiontup or []) if statement.positional else [c.name for c in columns]
        processors = {c.name: c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns}
        compiled = (str(statement), order, processors, statement.positional)
        _compiled_inserts[(dialect.name, table.name)] = compiled
    sql, order, processors, positional = compiled
    values = column_values(entries)
    values.update({name: [value] * len(entries) for name, value in (extra or {}).items()})
    for name, process in processors.items():
        if process is not None:
            column = values[name]
            if name == "inputs":
                values[name] = [process(v) for v in column]
            else:  # the same time, model and flags repeat across a batch: convert each once
                seen: dict = {}
                values[name] = [seen[v] if v in seen else seen.setdefault(v, process(v)) for v in column]
    if positional:
        params: list = list(zip(*(values[name] for name in order), strict=True))
    else:
        params = [dict(zip(order, row, strict=True)) for row in zip(*(values[n] for n in order), strict=True)]
    conn.exec_driver_sql(sql, params)


def column_values(entries: list[LogEntry]) -> dict[str, list[Any]]:
    """The entries as plain Python values, one list per column of the decisions table."""
    return {
        "decided_at": [_utc(e.decided_at) for e in entries],
        "model_name": [e.model_name for e in entries],
        "model_version": [e.model_version for e in entries],
        "model_sha256": [e.model_sha256 for e in entries],
        "source": [e.source for e in entries],
        "officer": [(e.officer or "").strip() or None for e in entries],
        "simulated": [bool(e.simulated) for e in entries],
        "inputs": [_json_safe(e.inputs) for e in entries],
        "probability": [float(e.probability) for e in entries],
        "threshold": [float(e.threshold) for e in entries],
        "decision": [int(e.decision) for e in entries],
        "reasons": [e.reasons or "" for e in entries],
        "out_of_range": [e.out_of_range or "" for e in entries],
        "decision_id": [e.decision_id for e in entries],
        "reason_codes": [e.reason_codes or "" for e in entries],
        "referred": [bool(e.referred) for e in entries],
        "batch_id": [e.batch_id for e in entries],
        "batch_sha256": [e.batch_sha256 for e in entries],
    }


_compiled_inserts: dict[tuple[str, str], tuple[str, list[str], dict, bool]] = {}




def window(start: datetime | date | None = None, end: datetime | date | None = None,
           versions: Sequence[str] | None = None, simulated: bool | None = None) -> list[ColumnElement[bool]]:
    """WHERE clauses on the decisions table: decided from `start` (inclusive) to `end` (exclusive),
    by these versions, real or simulated; None leaves that out."""
    c = decisions.c
    out = []
    if start is not None:
        out.append(c.decided_at >= _utc(start))
    if end is not None:
        out.append(c.decided_at < _utc(end))
    if versions is not None:
        out.append(c.model_version.in_(list(versions)))
    if simulated is not None:
        out.append(c.simulated.is_(bool(simulated)))
    return out


def _make_engine(url: str, busy_seconds: float = BUSY_SECONDS) -> Engine:
    if make_url(url).get_backend_name() == "sqlite":
        sync = config.sqlite_sync()
        engine = create_engine(url, connect_args={"timeout": busy_seconds}, json_serializer=_json_text)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" event below starts transactions
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a commit survives the process's crash (the WAL is synced at checkpoints); FULL
            # syncs every commit, so it survives a power cut too, at one fsync per commit.
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # A writer takes the write lock up front and waits its turn; a deferred transaction
            # that has to upgrade a read lock would fail at once with "database is locked".
            immediate = conn.get_execution_options().get("loandesk_write")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if make_url(url).get_backend_name() != "postgresql":
        return create_engine(url, pool_pre_ping=True, json_serializer=_json_text)
    engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_SECONDS},
                           json_serializer=_json_text)
    wait_ms = max(1, round(busy_seconds * 1000))

    @event.listens_for(engine, "connect")
    def _pg_connect(dbapi_conn, _record):
        # A table locked by someone else fails a statement after busy_seconds, as SQLite's busy
        # timeout does, instead of holding it (and the API's answers) for as long as the lock lasts.
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET lock_timeout = {wait_ms}")
        dbapi_conn.commit()

    return engine


def _json_text(value: Any) -> str:
    """orjson for the inputs column: several times faster than json.dumps, and the same JSON."""
    return orjson.dumps(value).decode()


def _utc(moment: datetime | date) -> datetime:
    """A UTC datetime; naive ones (and plain dates, at midnight) are taken to be UTC already."""
    when = moment if isinstance(moment, datetime) else datetime(moment.year, moment.month, moment.day)
    if isinstance(when, pd.Timestamp):
        when = when.to_pydatetime()
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _json_safe(value: Any) -> Any:
    kind = type(value)
    if kind is float:  # the common cases first: a batch logs millions of these
        return value if math.isfinite(value) else None
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        return {k if type(k) is str else str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _json_safe(value.item())
    return value


def _create_sqlite_file(url: str) -> None:
    """A new SQLite log is created readable by its owner only (its -wal and -shm files follow the
    file's mode), in a folder of its own that we make owner-only too."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database)
    if not path.parent.is_dir():
        private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        create_private(path).close()


def short_error(exc: BaseException) -> str:
    """An error's first line, short enough for a message to a person."""
    return _short(exc)


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return text[:160]
