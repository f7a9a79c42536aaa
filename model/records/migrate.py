"""The decision log's schema, by Alembic migrations (`migrations/versions/`), one linear chain.

A new SQLite log, and a new empty PostgreSQL database, get the whole chain on first use. A log that
is behind is upgraded in place with every row kept: automatically for SQLite (a file beside the app),
and deliberately for PostgreSQL with `python -m model.records migrate` (shared by replicas, and worth
a backup first). Logs made before migrations existed carry their version in `loandesk_meta`; they are
stamped at that revision and upgraded from there.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, select

from model.core.errors import DecisionLogError
from model.records.tables import meta

SCRIPTS = Path(__file__).resolve().parent / "migrations"
# Alembic runs a migration through a module-level context: one thread at a time per process. (Other
# processes are kept apart by the database's own locks; the loser retries.)
_ONE_AT_A_TIME = threading.RLock()


def _config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.attributes["connection"] = conn
    return cfg


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def one_at_a_time() -> threading.RLock:
    """Hold this while a transaction that may migrate is open (the first use of a log)."""
    return _ONE_AT_A_TIME


def head() -> str:
    """The newest revision this LoanDesk knows."""
    heads = _scripts().get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the decision log's migrations have {len(heads)} heads ({heads}): make them one chain")
    return heads[0]


def known(revision: str) -> bool:
    return any(s.revision == revision for s in _scripts().walk_revisions())


def current(conn: Connection) -> str | None:
    """The revision the database is at (None: made before migrations, or empty)."""
    return MigrationContext.configure(conn).get_current_revision()


def meta_version(conn: Connection) -> int | None:
    """The schema version kept in loandesk_meta (logs made before migrations have only this)."""
    if "loandesk_meta" not in inspect(conn).get_table_names():
        return None
    found = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    return int(found) if found is not None else None


def pending(conn: Connection) -> bool:
    """Whether the database is behind this LoanDesk's head revision (or has no schema at all)."""
    return current(conn) != head()


def is_empty(conn: Connection) -> bool:
    return "decisions" not in inspect(conn).get_table_names()


def upgrade(conn: Connection) -> str:
    """Bring the database to the head revision inside the caller's transaction; return the revision."""
    with _ONE_AT_A_TIME:
        return _upgrade(conn)


def _upgrade(conn: Connection) -> str:
    at = current(conn)
    if at is not None and not known(at):
        raise DecisionLogError(f"the decision log is at schema revision {at}, which this LoanDesk does not "
                               "know (a newer LoanDesk wrote it): upgrade LoanDesk")
    cfg = _config(conn)
    if at is None and not is_empty(conn):
        # Made before migrations: 1 had no decision_id; 2 added it (and the API may have made api_keys).
        found = meta_version(conn) or 1
        columns = {c["name"] for c in inspect(conn).get_columns("decisions")}
        command.stamp(cfg, "0002" if found >= 2 and "decision_id" in columns else "0001")
    command.upgrade(cfg, "head")
    revision = head()
    _write_meta_version(conn, int(revision))
    return revision


def _write_meta_version(conn: Connection, version: int) -> None:
    found = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    if found is None:
        conn.execute(meta.insert().values(key="schema_version", value=str(version)))
    elif int(found) != version:
        conn.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(version)))


SCHEMA_VERSION = int(head())  # the revisions are numbered 0001, 0002, ...: the head's number
