"""What became of each loan: outcomes recorded against the decisions they belong to.

A lender learns whether the model still works only when loans repay or go bad, months after the
decision. Each outcome names its decision by `decision_id`; an id the log does not know is
reported, the same outcome sent twice is refused as a duplicate, and a different outcome for a
decision that has one already is recorded as a correction (the earlier row is kept, marked no
longer current). Every row is checked before anything is written, and the rows that pass go on
record in one transaction.

Outcomes are coded 1 for good (repaid as agreed) and 0 for bad (defaulted or charged off), the
same direction as the model's approval probability.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    insert,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from model.core.errors import DecisionLogError, FieldError, LoanDeskError
from model.records.log import DecisionLog
from model.records.tables import decisions, outcomes

GOOD, BAD = 1, 0
OUTCOME_WORDS = {"good": GOOD, "bad": BAD, "1": GOOD, "0": BAD}
COLUMNS = ("decision_id", "outcome", "observed_at")
REQUIRED = ("decision_id", "outcome")
ID_LENGTH = 32  # decisions.decision_id
MAX_CELL_CHARS = 1_000  # characters in one cell of an outcomes file: ids, outcomes and dates are short
SOURCE_LENGTH = 60
CLOCK_SKEW = timedelta(minutes=5)  # an observation a few minutes "in the future" is a clock, not an error
LOOKUP_CHUNK = 500

DECISION_COLUMNS = ("decided_at", "model_name", "model_version", "probability", "decision")


class OutcomeFileError(LoanDeskError, ValueError):
    """An outcomes file that cannot be read at all (missing, not a CSV, columns missing)."""


@dataclass(frozen=True)
class OutcomeRow:
    """One valid outcome to record; `row` is its number in the request or file (1 = first data row)."""

    row: int
    decision_id: str
    outcome: int
    observed_at: datetime | None = None
    date_only: bool = False  # observed_at was a plain date: compare it with the decision's day


@dataclass
class OutcomeReport:
    """What happened to each row: recorded, recorded as a correction, or refused with why."""

    rows: int = 0
    recorded: list[int] = field(default_factory=list)  # row numbers of new outcomes
    corrections: list[int] = field(default_factory=list)  # row numbers recorded as corrections
    problems: list[FieldError] = field(default_factory=list)
    status: dict[int, str] = field(default_factory=dict)  # row -> "recorded" | "correction" | "refused"

    @property
    def written(self) -> int:
        return len(self.recorded) + len(self.corrections)

    @property
    def unknown(self) -> list[FieldError]:
        return [p for p in self.problems if p.why.startswith("no decision")]

    @property
    def duplicates(self) -> list[FieldError]:
        return [p for p in self.problems if "duplicate" in p.why]

    def summary(self) -> str:
        """One line for a person: how many rows went on record, how many were corrections or refused."""
        parts = [f"Recorded {self.written:,} of {self.rows:,} outcome(s)"]
        if self.corrections:
            parts.append(f"{len(self.corrections):,} of them correction(s) of an earlier outcome")
        refused = len({p.row for p in self.problems})
        if refused:
            parts.append(f"refused {refused:,} row(s)")
        return "; ".join(parts) + "."


# --- validation -----------------------------------------------------------------------------------
def parse_outcome(value: Any) -> int | None:
    """1 for good, 0 for bad, None when the value is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value) if value in (0, 1) else None
    text = str(value).strip().lower() if value is not None else ""
    if text in ("1.0", "0.0"):
        text = text[0]
    return OUTCOME_WORDS.get(text)


def parse_observed_at(value: Any, now: datetime) -> tuple[datetime | None, bool, str | None]:
    """(moment in UTC, given as a plain date?, why it is refused or None). Empty means not given."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, False, None
    if isinstance(value, float) and math.isnan(value):
        return None, False, None
    text = str(value).strip()
    date_only = len(text) == 10
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")) if not date_only else \
            datetime.combine(date.fromisoformat(text), datetime.min.time())
    except ValueError:
        return None, False, "not a date: write it as YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment > now + CLOCK_SKEW:
        return None, False, "in the future: an outcome is recorded once it has been observed"
    return moment, date_only, None


def validate_rows(records: Iterable[Mapping[str, Any]], *, now: datetime | None = None,
                  first_row: int = 1) -> tuple[list[OutcomeRow], list[FieldError]]:
    """Check every row's fields (not yet against the log): the valid rows, and every problem found."""
    now = now or datetime.now(UTC)
    valid: list[OutcomeRow] = []
    problems: list[FieldError] = []
    for k, record in enumerate(records):
        row = first_row + k
        found: list[FieldError] = []
        raw_id = record.get("decision_id")
        decision_id = str(raw_id).strip() if raw_id is not None else ""
        if not decision_id:
            found.append(FieldError(row, "decision_id", raw_id, "missing: every outcome names its decision"))
        elif len(decision_id) > ID_LENGTH:
            found.append(FieldError(row, "decision_id", raw_id,
                                    f"longer than any decision id ({ID_LENGTH} characters)"))
        raw_outcome = record.get("outcome")
        outcome = parse_outcome(raw_outcome)
        if outcome is None:
            what = "missing" if raw_outcome is None or str(raw_outcome).strip() == "" else "not an outcome"
            found.append(FieldError(row, "outcome", raw_outcome,
                                    f"{what}: write good or bad (or 1 for good, 0 for bad)"))
        observed_at, date_only, refused = parse_observed_at(record.get("observed_at"), now)
        if refused:
            found.append(FieldError(row, "observed_at", record.get("observed_at"), refused))
        if found:
            problems.extend(found)
        else:
            valid.append(OutcomeRow(row, decision_id, int(outcome), observed_at, date_only))  # type: ignore[arg-type]
    return valid, problems


# --- reading a file -------------------------------------------------------------------------------
def read_outcomes_file(path: str | Path) -> list[dict[str, str]]:
    """The rows of an outcomes CSV (comma or semicolon, UTF-8 with or without BOM), as text.

    Column names are matched without regard to case or surrounding spaces; extra columns are ignored.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise OutcomeFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise OutcomeFileError(f"{path}: a folder, not a CSV file") from None
    except OSError as exc:
        raise OutcomeFileError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise OutcomeFileError(f"{path}: not UTF-8 text; save the CSV as UTF-8") from None
    if "\x00" in content:
        raise OutcomeFileError(f"{path}: not a CSV file (it holds binary data)")
    lines = content.splitlines()
    if not lines or not lines[0].strip():
        raise OutcomeFileError(f"{path}: empty; the first line must name the columns "
                               f"({', '.join(COLUMNS)})")
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter, strict=True)
    body: list[list[str]] = []
    rows = last_line = 0  # rows numbered as below (blank lines are no rows); the line the last record ended on
    try:
        header = [h.strip().lower() for h in next(reader)]
        last_line = reader.line_num
        for cells in reader:
            start, last_line = last_line + 1, reader.line_num
            body.append(cells)
            if any(c.strip() for c in cells):
                rows += 1
                _check_row(path, cells, len(header), rows, start)
    except csv.Error as exc:  # a quote never closed (named where it opened), or stray text after one
        raise OutcomeFileError(f"{path}: row {rows + 1:,} (line {last_line + 1:,}) is not a readable CSV "
                               f"row ({exc}): nothing was recorded") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise OutcomeFileError(f"{path}: the column(s) {', '.join(missing)} are missing; the file needs "
                               f"{', '.join(REQUIRED)} (and optionally observed_at)")
    index = {c: header.index(c) for c in COLUMNS if c in header}
    return [{c: cells[i] if i < len(cells) else "" for c, i in index.items()}
            for cells in body if any(c.strip() for c in cells)]  # blank lines, as spreadsheets leave them, skipped


def _check_row(path: Path, cells: list[str], expected: int, row: int, line: int) -> None:
    """A row with more fields than the header (a delimiter or a quote out of place), or a cell longer
    than any outcome's, refuses the whole file, naming the row: never read as something else."""
    where = f"{path}: row {row:,} (line {line:,})"
    if len(cells) > expected and any(c.strip() for c in cells[expected:]):
        raise OutcomeFileError(f"{where} has {len(cells)} fields where the header has {expected}: nothing was "
                               "recorded")
    for cell in cells:
        if len(cell) > MAX_CELL_CHARS:
            raise OutcomeFileError(f"{where}: a cell holds {len(cell):,} characters; a cell may hold at most "
                                   f"{MAX_CELL_CHARS:,}: nothing was recorded")


# --- recording ------------------------------------------------------------------------------------
def record_outcomes(log: DecisionLog, records: Sequence[Mapping[str, Any]], *, source: str,
                    recorded_by: str | None = None, simulated: bool = False,
                    now: datetime | None = None, first_row: int = 1) -> OutcomeReport:
    """Validate every row, match it to its decision, and record the valid ones in one transaction.

    Refused (each with row, field, value and why): invalid fields, an id the log does not know, an
    observation dated before its decision, an id repeated in the same request, and a duplicate (the
    outcome already on record for that decision). A different outcome for a decision that has one
    becomes a correction. Raises DecisionLogError when the log cannot be read or written.
    """
    now = now or datetime.now(UTC)
    report = OutcomeReport(rows=len(records))
    valid, problems = validate_rows(records, now=now, first_row=first_row)
    report.problems.extend(problems)
    first_seen: dict[str, int] = {}
    unique: list[OutcomeRow] = []
    for r in valid:
        if r.decision_id in first_seen:
            report.problems.append(FieldError(r.row, "decision_id", r.decision_id,
                                              f"repeated: row {first_seen[r.decision_id]} already gives "
                                              "this decision's outcome (refused as a duplicate)"))
        else:
            first_seen[r.decision_id] = r.row
            unique.append(r)
    try:
        log.ensure_schema()
        with log.writing() as conn:
            decided = _decided_at(conn, [r.decision_id for r in unique])
            current = _current(conn, [r.decision_id for r in unique])
            new_rows, corrections = [], []
            for r in unique:
                why = _refusal(r, decided, current)
                if why:
                    report.problems.append(FieldError(r.row, *why))
                    continue
                made = decided[r.decision_id]
                row = {"decision_id": r.decision_id, "outcome": r.outcome, "observed_at": r.observed_at,
                       **{c: made[c] for c in DECISION_COLUMNS}, "decision_simulated": bool(made["simulated"]),
                       "recorded_at": now, "recorded_by": (recorded_by or "").strip()[:200] or None,
                       "source": source[:SOURCE_LENGTH], "simulated": simulated, "is_current": True}
                if r.decision_id in current:
                    corrections.append((r, row, current[r.decision_id][0]))
                else:
                    new_rows.append((r, row))
            if corrections:
                conn.execute(update(outcomes).where(outcomes.c.id.in_([c[2] for c in corrections]))
                             .values(is_current=False))
                conn.execute(insert(outcomes), [{**row, "corrects": old} for _, row, old in corrections])
            if new_rows:
                conn.execute(insert(outcomes), [row for _, row in new_rows])
    except (SQLAlchemyError, OSError, RuntimeError) as exc:
        raise DecisionLogError(f"The outcomes could not be recorded ({_short(exc)}); nothing was written.") from exc
    report.recorded = [r.row for r, _ in new_rows]
    report.corrections = [r.row for r, _, _ in corrections]
    refused = {p.row for p in report.problems}
    report.status = {first_row + k: "refused" if first_row + k in refused else "recorded"
                     for k in range(len(records))}
    report.status.update({row: "correction" for row in report.corrections})
    report.problems.sort(key=lambda p: p.row)
    return report


def _refusal(r: OutcomeRow, decided: dict[str, dict[str, Any]], current: dict[str, tuple[int, int]]
             ) -> tuple[str, Any, str] | None:
    """(field, value, why) when this row cannot go on record against the log, else None."""
    if r.decision_id not in decided:
        return "decision_id", r.decision_id, "no decision with this id is on record"
    made = _as_utc(decided[r.decision_id]["decided_at"])
    if r.observed_at is not None:
        early = r.observed_at.date() < made.date() if r.date_only else r.observed_at < made
        if early:
            return ("observed_at", r.observed_at.date().isoformat() if r.date_only else r.observed_at.isoformat(),
                    f"before the decision was made ({made:%Y-%m-%d %H:%M} UTC)")
    if r.decision_id in current and current[r.decision_id][1] == r.outcome:
        word = "good" if r.outcome == GOOD else "bad"
        return "outcome", word, f"already on record as {word} for this decision (refused as a duplicate)"
    return None


def _decided_at(conn: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
    """decision id -> the decision's time, model, version, probability, decision and simulated flag."""
    d = decisions.c
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), LOOKUP_CHUNK):
        q = select(d.decision_id, *[d[c] for c in DECISION_COLUMNS], d.simulated).where(
            d.decision_id.in_(ids[i:i + LOOKUP_CHUNK]))
        found.update({r["decision_id"]: dict(r) for r in conn.execute(q).mappings()})
    return found


def _current(conn: Connection, ids: list[str]) -> dict[str, tuple[int, int]]:
    """decision id -> (outcome row id, outcome) of the outcome that counts now."""
    found: dict[str, tuple[int, int]] = {}
    for i in range(0, len(ids), LOOKUP_CHUNK):
        q = select(outcomes.c.decision_id, outcomes.c.id, outcomes.c.outcome).where(
            outcomes.c.decision_id.in_(ids[i:i + LOOKUP_CHUNK]), outcomes.c.is_current.is_(True))
        found.update({d: (k, o) for d, k, o in conn.execute(q)})
    return found


def history(log: DecisionLog, decision_id: str) -> list[dict[str, Any]]:
    """Every outcome recorded for one decision, oldest first (corrections included)."""
    try:
        log.ensure_schema()
        with log.engine.connect() as conn:
            q = select(outcomes).where(outcomes.c.decision_id == decision_id).order_by(outcomes.c.id)
            return [dict(r) for r in conn.execute(q).mappings()]
    except (SQLAlchemyError, OSError, RuntimeError) as exc:
        raise DecisionLogError(f"The outcomes cannot be read ({_short(exc)}).") from exc


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _short(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).splitlines()[0][:160]
