"""The Monitoring page's figures, computed in the decision log's database with SQLAlchemy Core.

Reading a million decisions into pandas took most of a minute; grouped in the database they come
back as a few thousand rows. Decisions are grouped by UTC day, model version and the simulated flag
(`activity`). The inputs are binned as the reference version's model card binned its training
data, with the age bands, the probability bins and the out-of-range flags beside them
(`Binning`): those counts are kept per day in `monitoring_bins` and recomputed only for days whose
decision count or last row id changed, so a page over a large log rescans only what is new.

Everything is one model at a time (`Scope.model_name`): versions of other models never mix in.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import (
    Connection,
    Float,
    Table,
    Text,
    case,
    column,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import String

from model.core.formatting import format_value
from model.records.log import DecisionLog
from model.records.tables import decisions, monitoring_bins, monitoring_days

from .kept import Job, catch_up
from .report import AGE_BANDS, FieldDrift, band_table, field_drift_from_counts

log = logging.getLogger("loandesk.monitoring")

PROBABILITY_BINS = 20  # the histogram's 5-point bins
MAX_DAY_CLAUSES = 40  # more stale days than this are recomputed as one date range
ROLLUP_FORMAT = 1  # bump when the way bins are computed changes: old counts are then ignored


# --- UTC day and month, as text, in each dialect --------------------------------------------------
class utc_day(FunctionElement):
    """YYYY-MM-DD of a timestamp in UTC."""

    type = String()
    inherit_cache = True


class utc_month(FunctionElement):
    """YYYY-MM of a timestamp in UTC."""

    type = String()
    inherit_cache = True


@compiles(utc_day)
def _day_text(element, compiler, **kw):  # SQLite keeps UTC timestamps as ISO text
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


@compiles(utc_month)
def _month_text(element, compiler, **kw):
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 7)"


@compiles(utc_day, "postgresql")
def _day_pg(element, compiler, **kw):
    return f"to_char({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


@compiles(utc_month, "postgresql")
def _month_pg(element, compiler, **kw):
    return f"to_char({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC', 'YYYY-MM')"


# --- what is shown ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """One model's decisions: some or all of its versions, between two UTC days (both included)."""

    model_name: str
    versions: tuple[str, ...] | None = None  # None: every version of the model
    start: date | None = None
    end: date | None = None
    simulated: bool | None = None  # None: both; False: real decisions only; True: simulated only

    def clauses(self, table: Table = decisions, simulated: str = "simulated") -> list:
        """The scope as WHERE clauses on the decisions table (or a table that copies its columns)."""
        t = table.c
        out = [t.model_name == self.model_name]
        if self.versions is not None:
            out.append(t.model_version.in_(list(self.versions)))
        if self.start is not None:
            out.append(t.decided_at >= _midnight(self.start))
        if self.end is not None:
            out.append(t.decided_at < _midnight(self.end) + timedelta(days=1))
        if self.simulated is not None:
            out.append(t[simulated].is_(bool(self.simulated)))
        return out


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# --- decisions per day --------------------------------------------------------------------------------
ACTIVITY_GROUPS = ("model_name", "day", "model_version", "simulated")
ACTIVITY_SUMS = ("decisions", "approved", "out_of_range", "expected_bad")


def compute_activity(conn: Connection, clauses: list) -> pd.DataFrame:
    """Per model, UTC day, version and simulated flag: decisions, approved, with an input out of range,
    and the expected number of bad loans among the approved (the sum of 1 − probability)."""
    d = decisions.c
    q = (select(d.model_name, utc_day(d.decided_at), d.model_version, d.simulated, func.count(),
                func.sum(d.decision), func.sum(case((d.out_of_range != "", 1), else_=0)),
                func.sum(case((d.decision == 1, 1.0 - d.probability), else_=0.0)))
         .where(*clauses).group_by(d.model_name, utc_day(d.decided_at), d.model_version, d.simulated))
    frame = pd.DataFrame(conn.execute(q).all(), columns=[*ACTIVITY_GROUPS, *ACTIVITY_SUMS])
    return frame.astype({"simulated": bool, "decisions": int, "approved": int, "out_of_range": int,
                         "expected_bad": float})


def activity_job() -> Job:
    return Job("activity", monitoring_days, ACTIVITY_GROUPS, ACTIVITY_SUMS, compute_activity)


def daily(frame: pd.DataFrame) -> pd.DataFrame:
    """Per day: decisions, approved, rejected and the approval rate (as `report.daily_activity`)."""
    out = frame.groupby("day", as_index=False)[["decisions", "approved"]].sum().sort_values("day")
    out["day"] = pd.to_datetime(out["day"], utc=True)
    out["rejected"] = out["decisions"] - out["approved"]
    out["approval_rate"] = out["approved"] / out["decisions"]
    return out[["day", "decisions", "approved", "rejected", "approval_rate"]].reset_index(drop=True)


# --- the bins -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldBins:
    name: str
    edges: tuple[float, ...] = ()  # numbers: the card's inner decile edges
    categories: tuple[str, ...] = ()  # text: the categories seen in training
    shares: tuple[float, ...] = ()  # training shares, per bin

    @property
    def is_number(self) -> bool:
        return not self.categories


@dataclass(frozen=True)
class Binning:
    """How the reference version bins decisions: its card's drift bins, age bands, probability bins."""

    fields: tuple[FieldBins, ...]
    age: str | None  # the age field, when age bands apply
    probability_edges: tuple[float, ...]  # the hold-out's inner decile edges, for the probability PSI
    numbers: tuple[str, ...]  # numeric fields, for out-of-range counts
    key: str = field(default="", compare=False)

    @classmethod
    def of(cls, model, holdout_probabilities: np.ndarray, age_field: str | None) -> Binning:
        bins = model.card.get("drift_bins", {})
        fields = tuple(
            FieldBins(f.name, tuple(float(e) for e in bins[f.name].get("edges", ())),
                      tuple(str(c) for c in bins[f.name].get("categories", ())),
                      tuple(float(s) for s in bins[f.name]["shares"]))
            for f in model.schema.fields if f.name in bins)
        quantiles = np.quantile(np.asarray(holdout_probabilities, dtype=float), np.linspace(0, 1, 11))
        edges = tuple(float(e) for e in np.unique(quantiles)[1:-1])
        numbers = tuple(f.name for f in model.schema.fields if f.is_number)
        text = json.dumps([ROLLUP_FORMAT, model.name, [(f.name, f.edges, f.categories) for f in fields], age_field,
                           edges, numbers, AGE_BANDS[:-1], PROBABILITY_BINS], default=str)
        return cls(fields, age_field, edges, numbers, hashlib.sha256(text.encode()).hexdigest()[:16])

    def metrics(self) -> list[str]:
        return ([f"field:{f.name}" for f in self.fields] + (["age"] if self.age else [])
                + ["probability", "probability_decile"] + [f"out_of_range:{n}" for n in self.numbers])


def _bin_of(value, edges: Sequence[float]):
    """np.searchsorted(edges, value, side="right"): how many edges are at or below the value; NULL stays NULL."""
    if not edges:
        return case((value.is_(None), None), else_=0)
    counted = sum((case((value >= float(e), 1), else_=0) for e in edges), start=literal(0))
    return case((value.is_(None), None), else_=counted)


def _category_of(value, categories: Sequence[str]):
    whens = [(value.is_(None), None), *[(value == c, k) for k, c in enumerate(categories)]]
    return case(*whens, else_=len(categories))


def _age_band_of(value):
    whens = [(value.is_(None), None), (value < AGE_BANDS[0][1], None)]
    whens += [(value < hi, k) for k, (_, _lo, hi) in enumerate(AGE_BANDS[:-1])]
    return case(*whens, else_=len(AGE_BANDS) - 1)


def _inputs(conn: Connection, names: dict[str, bool]):
    """(from clause, {name: column}) with each input extracted once per row (True = a number)."""
    d = decisions
    if conn.dialect.name == "postgresql" and names:
        record = func.json_to_record(d.c.inputs).table_valued(
            *[column(n, Float if is_number else Text) for n, is_number in names.items()]
        ).render_derived(name="x", with_types=True)
        return d.join(record, true()), {n: record.c[n] for n in names}
    cols = {n: d.c.inputs[n].as_float() if is_number else d.c.inputs[n].as_string() for n, is_number in names.items()}
    return d, cols


def _fence(q, conn: Connection):
    """Keep the database from inlining a subquery (which would extract the JSON again per use)."""
    return q.offset(0) if conn.dialect.name == "postgresql" else q.limit(-1)


def compute_bins(conn: Connection, binning: Binning, clauses: list) -> pd.DataFrame:
    """Per day, version, simulated flag, figure and bin: n decisions and, for age bands, how many approved.

    One scan: each input is read from the JSON once, binned once, and every bin summed in the same pass.
    """
    d = decisions.c
    names = {f.name: f.is_number for f in binning.fields}
    if binning.age:
        names.setdefault(binning.age, True)
    source, value = _inputs(conn, names)
    inner = _fence(select(utc_day(d.decided_at).label("day"), d.model_version, d.simulated, d.decision,
                          d.probability, d.out_of_range, d.id,
                          *[c.label(f"v{k}") for k, c in enumerate(value.values())])
                   .select_from(source).where(*clauses), conn).subquery("a")
    by_name = {n: inner.c[f"v{k}"] for k, n in enumerate(value)}
    padded = literal(", ") + inner.c.out_of_range + literal(", ")
    binned = {f"field:{f.name}": (_bin_of(by_name[f.name], f.edges) if f.is_number
                                  else _category_of(by_name[f.name], f.categories)) for f in binning.fields}
    if binning.age:
        binned["age"] = _age_band_of(by_name[binning.age])
    binned["probability"] = _bin_of(inner.c.probability, [k / PROBABILITY_BINS for k in range(1, PROBABILITY_BINS)])
    binned["probability_decile"] = _bin_of(inner.c.probability, binning.probability_edges)
    for n in binning.numbers:
        binned[f"out_of_range:{n}"] = case((padded.contains(f", {n}, ", autoescape=True), 0), else_=None)
    labels = {m: f"b{k}" for k, m in enumerate(binned)}
    middle = _fence(select(inner.c.day, inner.c.model_version, inner.c.simulated, inner.c.decision, inner.c.id,
                           *[expr.label(labels[m]) for m, expr in binned.items()]), conn).subquery("b")
    sizes = {f"field:{f.name}": (len(f.edges) + 1 if f.is_number else len(f.categories) + 1)
             for f in binning.fields}
    sizes |= {"age": len(AGE_BANDS), "probability": PROBABILITY_BINS,
              "probability_decile": len(binning.probability_edges) + 1}
    sums, slots = [], []
    for m in binned:
        col = middle.c[labels[m]]
        for k in range(sizes.get(m, 1)):
            sums.append(func.sum(case((col == k, 1), else_=0)))
            slots.append((m, k, "n"))
            if m == "age":
                sums.append(func.sum(case((col == k, middle.c.decision), else_=0)))
                slots.append((m, k, "approved"))
    q = (select(middle.c.day, middle.c.model_version, middle.c.simulated, *sums)
         .group_by(middle.c.day, middle.c.model_version, middle.c.simulated))
    rows: dict[tuple, dict[str, int]] = {}
    for r in conn.execute(q):
        key = (r[0], r[1], bool(r[2]))
        for (m, k, what), v in zip(slots, r[3:], strict=True):
            if v:
                rows.setdefault((*key, m, k), {"n": 0, "approved": 0})[what] = int(v)
    return pd.DataFrame([(*k, v["n"], v["approved"]) for k, v in rows.items()],
                        columns=[*BIN_GROUPS[1:], *BIN_SUMS])


BIN_GROUPS = ("binning", "day", "model_version", "simulated", "metric", "bin")
BIN_SUMS = ("n", "approved")


def bins_job(binning: Binning, model_name: str) -> Job:
    return Job(f"bins:{binning.key}", monitoring_bins, BIN_GROUPS[1:], BIN_SUMS,
               lambda conn, clauses: compute_bins(conn, binning, clauses),
               base=(decisions.c.model_name == model_name,), fixed=(("binning", binning.key),))


# --- reading the kept counts ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Counts:
    """What the page's figures are made of: decisions per day and the binned counts, within a scope."""

    activity: pd.DataFrame  # per day, version and simulated flag (ACTIVITY_GROUPS[1:] and ACTIVITY_SUMS)
    bins: pd.DataFrame  # metric, bin, n, approved


def counts(log_: DecisionLog, binning: Binning, scope: Scope) -> Counts:
    """The scope's counts: from the kept tables, caught up with the log first; computed directly from the
    decisions when they cannot be kept."""
    if catch_up(log_, [activity_job(), bins_job(binning, scope.model_name)]):
        with log_.reading() as conn:
            return Counts(_kept_activity(conn, scope), _kept_bins(conn, binning, scope))
    with log_.reading() as conn:
        days = compute_activity(conn, scope.clauses())
        bins = compute_bins(conn, binning, scope.clauses())
    bins = bins.groupby(["metric", "bin"], as_index=False)[list(BIN_SUMS)].sum() if len(bins) else \
        pd.DataFrame(columns=["metric", "bin", *BIN_SUMS])
    return Counts(days.drop(columns="model_name"), bins)


def _scoped(t, scope: Scope) -> list:
    out = []
    if scope.versions is not None:
        out.append(t.model_version.in_(list(scope.versions)))
    if scope.start is not None:
        out.append(t.day >= scope.start.isoformat())
    if scope.end is not None:
        out.append(t.day <= scope.end.isoformat())
    if scope.simulated is not None:
        out.append(t.simulated.is_(bool(scope.simulated)))
    return out


def _kept_activity(conn: Connection, scope: Scope) -> pd.DataFrame:
    t = monitoring_days.c
    q = select(*[t[c] for c in (*ACTIVITY_GROUPS[1:], *ACTIVITY_SUMS)]).where(
        t.model_name == scope.model_name, *_scoped(t, scope)).order_by(t.day)
    frame = pd.DataFrame(conn.execute(q).all(), columns=[*ACTIVITY_GROUPS[1:], *ACTIVITY_SUMS])
    return frame.astype({"simulated": bool, "decisions": int, "approved": int, "out_of_range": int,
                         "expected_bad": float})


def _kept_bins(conn: Connection, binning: Binning, scope: Scope) -> pd.DataFrame:
    t = monitoring_bins.c
    q = (select(t.metric, t.bin, func.sum(t.n), func.sum(t.approved))
         .where(t.binning == binning.key, *_scoped(t, scope)).group_by(t.metric, t.bin))
    frame = pd.DataFrame(conn.execute(q).all(), columns=["metric", "bin", *BIN_SUMS])
    return frame.astype({"bin": int, "n": int, "approved": int})


def on_record(log_: DecisionLog) -> pd.DataFrame:
    """Per model and version on record: decisions, first and last UTC day (from the kept daily counts)."""
    kept = catch_up(log_, [activity_job()])
    with log_.reading() as conn:
        if kept:
            t = monitoring_days.c
            q = (select(t.model_name, t.model_version, func.sum(t.decisions), func.min(t.day), func.max(t.day))
                 .group_by(t.model_name, t.model_version).order_by(func.max(t.day).desc(), t.model_version.desc()))
            frame = pd.DataFrame(conn.execute(q).all(), columns=["model_name", "model_version", "decisions",
                                                                "first", "last"])
        else:
            days = compute_activity(conn, [])
            frame = (days.groupby(["model_name", "model_version"], as_index=False)
                     .agg(decisions=("decisions", "sum"), first=("day", "min"), last=("day", "max"))
                     .sort_values(["last", "model_version"], ascending=False))
    frame["first"] = pd.to_datetime(frame["first"]).dt.date
    frame["last"] = pd.to_datetime(frame["last"]).dt.date
    return frame.astype({"decisions": int}).reset_index(drop=True)


def _counts(bins: pd.DataFrame, metric: str, size: int, what: str = "n") -> np.ndarray:
    rows = bins[bins["metric"] == metric]
    out = np.zeros(size, dtype=int)
    for k, v in zip(rows["bin"], rows[what], strict=True):
        if 0 <= k < size:
            out[k] = v
    return out


# --- figures from the counts ------------------------------------------------------------------------
def drift_from_bins(model, binning: Binning, bins: pd.DataFrame) -> list[FieldDrift]:
    """Each binned input's recent shares against its training shares (as `report.drift`)."""
    out = []
    for f in binning.fields:
        size = len(f.edges) + 1 if f.is_number else len(f.categories) + 1
        out.append(field_drift_from_counts(model.schema[f.name], model.card["drift_bins"][f.name],
                                           _counts(bins, f"field:{f.name}", size)))
    return out


def age_bands_from_bins(bins: pd.DataFrame) -> pd.DataFrame:
    """Approval rate per age band, its ratio to the best band's, flagged under four fifths (as `report.age_bands`)."""
    size = len(AGE_BANDS)
    return band_table(_counts(bins, "age", size), _counts(bins, "age", size, "approved"))


def out_of_range_from_bins(model, bins: pd.DataFrame, total: int) -> pd.DataFrame:
    """Per numeric field: decisions with it outside the training range, and their share (as `report`)."""
    fields = [f for f in model.schema.fields if f.is_number]
    counts = [int(_counts(bins, f"out_of_range:{f.name}", 1)[0]) for f in fields]
    return pd.DataFrame({
        "field": [f.name for f in fields],
        "label": [f.label for f in fields],
        "range": [f"{format_value(f, f.train_min)} to {format_value(f, f.train_max)}" for f in fields],
        "count": counts,
        "share": [c / total if total else 0.0 for c in counts],
    })


def probability_counts(bins: pd.DataFrame, binning: Binning) -> tuple[np.ndarray, np.ndarray]:
    """(20 five-point bins, hold-out decile bins): how many decisions fell in each."""
    return (_counts(bins, "probability", PROBABILITY_BINS),
            _counts(bins, "probability_decile", len(binning.probability_edges) + 1))


# --- the newest decisions, and all of them for a download -----------------------------------------
def recent(log_: DecisionLog, scope: Scope, limit: int) -> pd.DataFrame:
    """The newest `limit` decisions in the scope, as `DecisionLog.read` returns them."""
    return log_.read(where=scope.clauses(), limit=limit)


def everything(log_: DecisionLog, scope: Scope) -> pd.DataFrame:
    """Every decision in the scope, newest first: for the CSV download, read only when it is asked for."""
    return log_.read(where=scope.clauses())

