"""A batch written by many workers at once: staged in the database, put on record in one transaction.

A cluster run's workers cannot hand a million decisions to one process, so each writes its parts
straight to the log's database, into `staged_decisions`, tagged with the run's batch id. Nothing
staged counts: the decisions table holds only what is on record. When every part is done and the
output is written, `commit` moves the batch's rows into `decisions` and adds its row to `batches`,
in one transaction, so the whole batch goes on record at once, as a single-machine run's does
(`model.records.batches`). A run that fails is `discard`ed; a run whose driver was killed leaves
staged rows that never count and are swept a day later.

A run is opened (`open_batch`) before its workers start, and a part is staged only while it is
open: a part still running when its run was discarded stages nothing, or is removed with the rest.
A part and its row in `batch_parts` are written in one transaction, and a part already there is
skipped, so a part run again (its worker died after the commit and the engine retried it) is
recorded once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import (
    Connection,
    String,
    delete,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from model.core.errors import DecisionLogError

from .log import DecisionLog, LogEntry, LogResult, _insert, _short, column_values, new_decision_ids
from .log import log as logger
from .tables import batch_parts, batches, decisions, staged_decisions

STALE = timedelta(days=1)  # staged rows this old belong to a run whose driver was killed
COLUMNS = [c.name for c in decisions.c if c.name != "id"]  # a staged row's columns but its seq and part
OPEN = -1  # the part number of a run's "open" row in batch_parts: workers stage parts only while it is there


@dataclass(frozen=True)
class StagedBatch:
    """One cluster run on the log; small and picklable, so every worker gets it as is."""

    log_url: str
    batch_id: str
    batch_sha256: str | None = None


def stage_part(log: DecisionLog, batch: StagedBatch, part: int, entries: list[LogEntry]) -> LogResult:
    """Stage one part's decisions and mark the part done, in one transaction. A part staged before
    is left as it is (written = 0). Never raises: a failure comes back as the result's warning."""
    ids = new_decision_ids(len(entries))
    for entry, decision_id in zip(entries, ids, strict=True):
        entry.batch_id = batch.batch_id
        entry.decision_id = entry.decision_id or decision_id
    try:
        log.ensure_schema()
        with log._writer().begin() as conn:
            # The run's "open" row, locked until this part commits: a run discarded meanwhile (it
            # removes that row first) waits for this part, then removes it; one discarded before
            # finds no row here and nothing is staged.
            if conn.execute(_part(batch, OPEN).with_for_update()).first() is None:
                return LogResult(0, f"part {part}: the run was stopped, so its decisions were not staged")
            if conn.execute(_part(batch, part)).first() is not None:
                return LogResult(0)
            conn.execute(insert(batch_parts).values(batch_id=batch.batch_id, part=part, rows=len(entries),
                                                    staged_at=datetime.now(UTC)))
            if entries:
                if conn.dialect.name == "postgresql":
                    _copy(conn, entries, part)
                else:
                    _insert(conn, entries, table=staged_decisions, extra={"part": part})
    except IntegrityError:  # another attempt at this part was staged first
        return LogResult(0)
    except (SQLAlchemyError, OSError, RuntimeError) as exc:
        why = f"part {part}: {len(entries):,} decision(s) not staged: {_short(exc)}"
        logger.error("decision log write failed at %r: %s", log, why)
        return LogResult(0, why)
    return LogResult(len(entries))


def commit(log: DecisionLog, batch: StagedBatch, *, file_sha256: str, file_name: str, source: str,
           officer: str | None, model, rows: int, started_at: datetime) -> int:
    """Put every staged decision of the batch on record with its `batches` row, in one transaction;
    returns how many. Raises DecisionLogError when the log cannot take it (nothing is then on record)."""
    try:
        with log._writer().begin() as conn:
            # Every row gets the batch's SHA-256 here: it is known only once the workers hashed the input.
            chosen = [literal(file_sha256, String(64)).label(name) if name == "batch_sha256"
                      else staged_decisions.c[name] for name in COLUMNS]
            staged = select(*chosen).where(
                staged_decisions.c.batch_id == batch.batch_id).order_by(staged_decisions.c.part,
                                                                          staged_decisions.c.seq)
            moved = int(conn.execute(select(func.coalesce(func.sum(batch_parts.c.rows), 0)).where(
                batch_parts.c.batch_id == batch.batch_id)).scalar_one())
            conn.execute(insert(decisions).from_select(COLUMNS, staged))
            conn.execute(insert(batches).values(
                batch_id=batch.batch_id, file_sha256=file_sha256, file_name=file_name[:255], source=source,
                officer=(officer or "").strip() or None, model_name=model.name, model_version=model.version,
                rows=rows, decisions=moved, started_at=started_at, recorded_at=datetime.now(UTC)))
            _remove(conn, batch.batch_id)
    except (SQLAlchemyError, OSError) as exc:
        raise DecisionLogError(f"the decision log could not take the batch's decisions ({_short(exc)}); "
                               "none of them is on record") from exc
    return moved


def open_batch(log: DecisionLog, batch: StagedBatch) -> None:
    """Open the run for its workers (before any part is staged)."""
    log.ensure_schema()
    with log._writer().begin() as conn:
        conn.execute(insert(batch_parts).values(batch_id=batch.batch_id, part=OPEN, rows=0,
                                                staged_at=datetime.now(UTC)))


def discard(log: DecisionLog, batch: StagedBatch) -> str | None:
    """Close the run and remove what it staged; a part still being written is waited for and
    removed, and a later one stages nothing. None, or why that failed (staged rows never count)."""
    try:
        with log._writer().begin() as conn:
            _remove(conn, batch.batch_id)
    except (SQLAlchemyError, OSError) as exc:
        return _short(exc)
    return None


def sweep(log: DecisionLog) -> None:
    """Remove the staged rows of runs whose driver died more than a day ago (they can never count)."""
    cutoff = datetime.now(UTC) - STALE
    with log._writer().begin() as conn:
        old = select(batch_parts.c.batch_id).group_by(batch_parts.c.batch_id).having(
            func.max(batch_parts.c.staged_at) < cutoff)
        for (batch_id,) in conn.execute(old).all():
            _remove(conn, batch_id)


def staged_count(log: DecisionLog, batch: StagedBatch) -> int:
    """How many decisions of the batch are staged (not yet, or never, on record)."""
    with log.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(staged_decisions).where(
            staged_decisions.c.batch_id == batch.batch_id)).scalar_one())


def _remove(conn: Connection, batch_id: str) -> None:
    # The open row first: on PostgreSQL this waits for any part that holds it, and the statements
    # after it then see that part's rows.
    conn.execute(delete(batch_parts).where(batch_parts.c.batch_id == batch_id, batch_parts.c.part == OPEN))
    conn.execute(delete(staged_decisions).where(staged_decisions.c.batch_id == batch_id))
    conn.execute(delete(batch_parts).where(batch_parts.c.batch_id == batch_id))


def _part(batch: StagedBatch, part: int):
    return select(batch_parts.c.rows).where(batch_parts.c.batch_id == batch.batch_id, batch_parts.c.part == part)


def _copy(conn: Connection, entries: list[LogEntry], part: int) -> None:
    """PostgreSQL's COPY: the rows streamed as one block of text, several times faster than INSERTs.

    Column by column, each distinct value formatted once (times, models, flags and reasons repeat)."""
    names = [*COLUMNS, "part"]
    values = column_values(entries)
    values["part"] = [part] * len(entries)
    texts = []
    for name in names:
        column = values[name]
        if name == "inputs":
            texts.append([_escape(orjson.dumps(v).decode()) for v in column])
        elif name in ("probability", "threshold"):
            texts.append([repr(v) for v in column])
        else:
            seen: dict = {}
            texts.append([seen[v] if v in seen else seen.setdefault(v, _copy_text(v)) for v in column])
    driver = conn.connection.driver_connection  # psycopg's own connection, inside this transaction
    assert driver is not None
    cursor = driver.cursor()
    with cursor.copy(f"COPY staged_decisions ({', '.join(names)}) FROM STDIN") as copy:
        for start in range(0, len(entries), 10_000):
            rows = zip(*(t[start:start + 10_000] for t in texts), strict=True)
            copy.write("".join("\t".join(row) + "\n" for row in rows))


def _escape(text: str) -> str:
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _copy_text(value) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return _escape(value if isinstance(value, str) else str(value))
