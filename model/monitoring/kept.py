"""Keeping monitoring's counts up to date with the decision log, adding only what is new.

Each kind of count (`Job`) has a watermark: how many decisions the log held and the highest row
id when the counts were made. The log only ever grows, so if it now holds exactly as many more
decisions as there are rows above that id, the new decisions are those rows, and only they are
counted and added. Otherwise (a transaction that committed lower ids after a look, as PostgreSQL's
sequences allow) the counts are rebuilt from the whole log. SQLite has one writer at a time and
gives each new row a higher id than any on record, so there the rows above the watermark are the
new ones and the log is never counted whole. The watermark and the counts are read
in one snapshot and written in one transaction, and a look that finds the watermark moved by
another look meanwhile leaves that look's counts in place, so nothing is counted twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Connection, Table, and_, delete, func, insert, or_, select

from model.records.log import DecisionLog
from model.records.tables import decisions, monitoring_state

log = logging.getLogger("loandesk.monitoring")


@dataclass(frozen=True)
class Job:
    """One kind of kept counts: its key, table, grouping and sums, and how to compute them from decisions."""

    key: str
    table: Table
    groups: tuple[str, ...]  # the table's key columns (besides `fixed`)
    sums: tuple[str, ...]  # the counts, added when new decisions come in
    compute: Callable[[Connection, list], pd.DataFrame]  # grouped counts of the decisions matching clauses
    base: tuple = ()  # clauses on decisions that every count of this job has (e.g. one model)
    fixed: tuple[tuple[str, str], ...] = ()  # (column, value) for every row of this job (e.g. the binning)

    def mine(self) -> list:
        return [self.table.c[c] == v for c, v in self.fixed]


def catch_up(log_: DecisionLog, jobs: list[Job]) -> bool:
    """Bring every job's counts up to the log's current decisions; False when they could not be kept
    (a read-only database, a race with another look): the caller then computes what it shows directly."""
    s, d = monitoring_state.c, decisions.c
    try:
        log_.ensure_schema()
        with log_.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():  # one snapshot: the watermark and the counts agree
                last = int(conn.execute(select(func.coalesce(func.max(d.id), 0))).scalar() or 0)
                states = {k: (n, i) for k, n, i in conn.execute(
                    select(s.key, s.seen, s.last_id).where(s.key.in_([j.key for j in jobs]))).all()}
                total: list[int] = []  # count(*), read once and only when needed (a scan of an index)

                def count_all() -> int:
                    if not total:
                        total.append(int(conn.execute(select(func.count()).select_from(decisions)).scalar() or 0))
                    return total[0]

                work = []
                for job in jobs:
                    state = states.get(job.key)
                    new = 0 if state is None else int(conn.execute(
                        select(func.count()).where(d.id > state[1])).scalar() or 0)
                    if conn.dialect.name == "sqlite" and state is not None:
                        # One writer at a time, and each new row gets a higher rowid than any on
                        # record: the rows above the watermark are exactly the new ones.
                        if state[1] == last:
                            continue
                        seen, above = state[0] + new, True
                    else:
                        seen = count_all()
                        if state == (seen, last):
                            continue
                        above = state is not None and new == seen - state[0]
                    clauses = [*job.base, d.id <= last, *([d.id > state[1]] if above and state else [])]
                    work.append((job, state, above, seen, job.compute(conn, clauses)))
        if not work:
            return True
        with log_.writing() as conn:
            for job, state, above, seen, counts in work:
                now = conn.execute(select(s.seen, s.last_id).where(s.key == job.key).with_for_update()).first()
                if (tuple(now) if now is not None else None) != state:
                    continue  # another look caught up meanwhile: its counts stand
                if above:
                    _add(conn, job, counts)
                else:
                    conn.execute(delete(job.table).where(*job.mine()))
                    _insert(conn, job, counts)
                if now is None:
                    conn.execute(insert(monitoring_state).values(key=job.key, seen=seen, last_id=last))
                else:
                    conn.execute(monitoring_state.update().where(s.key == job.key).values(seen=seen, last_id=last))
    except Exception as exc:
        log.warning("monitoring counts could not be kept (%s)", str(exc).splitlines()[0][:160])
        return False
    return True


def _insert(conn: Connection, job: Job, counts: pd.DataFrame) -> None:
    if len(counts):
        rows = counts.assign(**dict(job.fixed)).to_dict("records")
        conn.execute(insert(job.table), rows)


def _add(conn: Connection, job: Job, counts: pd.DataFrame) -> None:
    """Add new counts to the kept ones, group by group (new groups are inserted)."""
    if counts.empty:
        return
    t = job.table.c
    where = and_(*job.mine(), or_(*[and_(t.day == day, t.model_version == version)
                                   for day, version in counts[["day", "model_version"]].drop_duplicates()
                                   .itertuples(index=False)]))
    old = pd.DataFrame(conn.execute(select(*[t[c] for c in (*job.groups, *job.sums)]).where(where)).all(),
                       columns=[*job.groups, *job.sums])
    if len(old):
        old["simulated"] = old["simulated"].astype(bool)
    merged = pd.concat([old, counts[[*job.groups, *job.sums]]], ignore_index=True)
    merged = merged.groupby(list(job.groups), as_index=False)[list(job.sums)].sum()
    conn.execute(delete(job.table).where(where))
    _insert(conn, job, merged)
