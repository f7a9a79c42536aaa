"""The decision log's tables, as SQLAlchemy Core objects: what the code reads and writes.

The database's schema is made by the Alembic migrations in `migrations/versions/`, never by
`create_all`: a new table or column is added here AND as a new migration, so that a deployed log is
upgraded with every row kept.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text, text

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
    Column("decision_id", String(32), unique=True),
    Column("reason_codes", Text, nullable=False, default=""),  # the reasons' stable codes, `;`-separated
    Column("referred", Boolean, nullable=False, default=False),  # inside the refer band: an underwriter decides
)
# An officer's final decision where it differs from the model's (model/records/overrides.py).
overrides = Table(
    "overrides", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("decision_id", String(32), nullable=False, index=True),
    Column("overridden_at", DateTime(timezone=True), nullable=False, index=True),
    Column("officer", String(200), nullable=False),
    Column("model_decision", String(10), nullable=False),  # approved, rejected or referred
    Column("final_decision", Integer, nullable=False),  # 1 approved, 0 rejected
    Column("reason", String(40), nullable=False),
    Column("note", Text, nullable=False),
)
# That an adverse action notice was produced: for which decision, when, by whom (model/records/notices.py).
notices = Table(
    "notices", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("decision_id", String(32), nullable=False, index=True),
    Column("produced_at", DateTime(timezone=True), nullable=False, index=True),
    Column("produced_by", String(200), nullable=False),  # the officer, `api:<key name>`, or `command`
    Column("source", String(40), nullable=False),  # form, command, api
    Column("reason_codes", Text, nullable=False, default=""),
    Column("pdf_sha256", String(64), nullable=False),
)
meta = Table(
    "loandesk_meta", metadata,
    Column("key", String(50), primary_key=True),
    Column("value", String(200), nullable=False),
)
api_keys = Table(
    "api_keys", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(40), nullable=False, index=True),
    Column("salt", String(32), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    # At most one live key per name, even when two `--new-key` commands race.
    Index("ux_api_keys_live_name", "name", unique=True,
          sqlite_where=text("revoked_at IS NULL"), postgresql_where=text("revoked_at IS NULL")),
)
