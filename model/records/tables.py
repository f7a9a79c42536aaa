"""The decision log's tables, as SQLAlchemy Core objects: what the code reads and writes.

The database's schema is made by the Alembic migrations in `migrations/versions/`, never by
`create_all`: a new table or column is added here AND as a new migration, so that a deployed log is
upgraded with every row kept.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

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
    Column("batch_id", String(32), index=True),  # the batch run that made it (score.py, the Batch page)
    Column("batch_sha256", String(64)),  # the SHA-256 of that batch's input file
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
# A batch on record: its decisions went in with this row, in one transaction (model.records.batches).
batches = Table(
    "batches", metadata,
    Column("batch_id", String(32), primary_key=True),
    Column("file_sha256", String(64), nullable=False, index=True),
    Column("file_name", String(255), nullable=False),
    Column("source", String(40), nullable=False),
    Column("officer", String(200)),
    Column("model_name", String(200), nullable=False),
    Column("model_version", String(100), nullable=False),
    Column("rows", Integer, nullable=False),  # data rows in the file
    Column("decisions", Integer, nullable=False),  # of them decided (the others had errors)
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)
# A cluster run's decisions while its workers write them (model.records.staging): a staged row is
# a decision-to-be, never counted; the batch's commit moves them into `decisions` in one transaction.
staged_decisions = Table(
    "staged_decisions", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # insertion order: input order within a part
    *(Column(c.name, c.type, nullable=c.nullable) for c in decisions.c if c.name != "id"),
    Column("part", Integer, nullable=False),
    Index("ix_staged_decisions_batch", "batch_id", "part"),
)
# The parts of a cluster run already staged: a part and its row here go in one transaction.
batch_parts = Table(
    "batch_parts", metadata,
    Column("batch_id", String(32), primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("rows", Integer, nullable=False),  # decisions staged for the part
    Column("staged_at", DateTime(timezone=True), nullable=False),
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

# What became of each loan (model/records/outcomes.py): 1 good, 0 bad, against its decision's id.
outcomes = Table(
    "outcomes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("decision_id", String(32), nullable=False, index=True),
    Column("outcome", Integer, nullable=False),  # 1 good (repaid as agreed), 0 bad (defaulted)
    Column("observed_at", DateTime(timezone=True)),  # when the lender learned it; None if not given
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", String(200)),
    Column("source", String(60), nullable=False),  # "file:<name>", "api:<key name>", "simulation"
    Column("simulated", Boolean, nullable=False, default=False),
    Column("corrects", Integer, ForeignKey("outcomes.id")),  # the outcome this one replaces, if any
    Column("is_current", Boolean, nullable=False, default=True),  # the one that counts for its decision
    # The decision it belongs to, as logged (a decision never changes): realized performance is then
    # measured from this table alone, without looking each decision up in the log.
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("model_name", String(200), nullable=False),
    Column("model_version", String(100), nullable=False),
    Column("probability", Float, nullable=False),
    Column("decision", Integer, nullable=False),
    Column("decision_simulated", Boolean, nullable=False),
    # At most one current outcome per decision, enforced by the database itself.
    Index("ux_outcomes_current", "decision_id", unique=True,
          sqlite_where=text("is_current"), postgresql_where=text("is_current")),
)

# The Monitoring page's counts per UTC day, kept so that a look never rescans old decisions
# (model/monitoring/kept.py). Each kind has a watermark in monitoring_state: how many decisions the
# counts cover and the highest decisions.id among them. All of it can be dropped: it is rebuilt.
monitoring_state = Table(
    "monitoring_state", metadata,
    Column("key", String(40), primary_key=True),  # "activity", or "bins:<fingerprint of the bins>"
    Column("seen", Integer, nullable=False),
    Column("last_id", Integer, nullable=False),
)
monitoring_days = Table(
    "monitoring_days", metadata,
    Column("model_name", String(200), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("model_version", String(100), primary_key=True),
    Column("simulated", Boolean, primary_key=True),
    Column("decisions", Integer, nullable=False),
    Column("approved", Integer, nullable=False),
    Column("out_of_range", Integer, nullable=False),  # decisions with an input outside the training range
    Column("expected_bad", Float, nullable=False),  # sum of 1 − probability over the approved
)
monitoring_bins = Table(
    "monitoring_bins", metadata,
    Column("binning", String(40), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("model_version", String(100), primary_key=True),
    Column("simulated", Boolean, primary_key=True),
    Column("metric", String(250), primary_key=True),  # "field:income", "age", "probability", ...
    Column("bin", Integer, primary_key=True),
    Column("n", Integer, nullable=False),
    Column("approved", Integer, nullable=False),  # for age bands: how many of the n were approved
)
monitoring_results = Table(  # results kept until their source changes (realized performance)
    "monitoring_results", metadata,
    Column("key", String(64), primary_key=True),  # what was computed, for which scope (a SHA-256)
    Column("watermark", String(64), nullable=False),  # the state of the outcomes when it was computed
    Column("body", Text, nullable=False),  # the result, as JSON
)
# Every replay of a sealed file (serve.py --replay): which file, when, where, and what it wrote.
replays = Table(
    "replays", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_name", String(255), nullable=False),
    Column("file_sha256", String(64), nullable=False, index=True),
    Column("replayed_at", DateTime(timezone=True), nullable=False),
    Column("host", String(200), nullable=False),
    Column("written", Integer, nullable=False),
    Column("skipped", Integer, nullable=False),  # already on record (same decision id, or the batch)
    Column("replayed_by", String(200)),  # os:USER of the process that replayed it (migration 0008)
)
# --- kept beside the decisions: people and roles, model changes, exports (migration 0008) ------------
ACTOR = 200  # the decision log's `officer` column is as wide
VERSION = 100

user_roles = Table(
    "user_roles", metadata,
    Column("email", String(ACTOR), primary_key=True),
    Column("role", String(20), primary_key=True),
    Column("granted_by", String(ACTOR), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
)
role_changes = Table(
    "role_changes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(ACTOR), nullable=False),
    Column("actor_subject", String(ACTOR)),
    Column("email", String(ACTOR), nullable=False),
    Column("roles_before", String(100), nullable=False),
    Column("roles_after", String(100), nullable=False),
)
model_changes = Table(
    "model_changes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_dir", Text, nullable=False),
    Column("kind", String(20), nullable=False),  # threshold, activate, rollback
    Column("from_version", String(VERSION)),  # the active version when proposed
    Column("to_version", String(VERSION)),  # the version to activate (a threshold change: its base)
    Column("from_threshold", Float),
    Column("to_threshold", Float),
    Column("refer_band", Float),  # a threshold change's refer band (None: the version's own)
    Column("justification", Text, nullable=False),
    Column("proposed_by", String(ACTOR), nullable=False),
    Column("proposed_subject", String(ACTOR)),
    Column("proposed_at", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False, index=True),  # pending, approved, rejected, withdrawn
    Column("closed_by", String(ACTOR)),
    Column("closed_subject", String(ACTOR)),
    Column("closed_at", DateTime(timezone=True)),
    Column("note", Text),
    Column("result_version", String(VERSION)),  # the version made active by the approval
)
model_change_events = Table(
    "model_change_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("change_id", Integer, ForeignKey("model_changes.id")),  # none for a shell activation
    Column("model_dir", Text, nullable=False),
    Column("action", String(20), nullable=False),  # proposed, approved, rejected, withdrawn, activated
    Column("kind", String(20), nullable=False),
    Column("actor", String(ACTOR), nullable=False),
    Column("actor_subject", String(ACTOR)),
    Column("from_version", String(VERSION)),
    Column("to_version", String(VERSION)),
    Column("from_threshold", Float),
    Column("to_threshold", Float),
    Column("note", Text),
)
exports = Table(
    "exports", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(ACTOR), nullable=False),
    Column("actor_subject", String(ACTOR)),
    Column("what", String(40), nullable=False),
    Column("filter", Text, nullable=False),
    Column("rows", Integer, nullable=False),
)

sign_ins = Table(
    "sign_ins", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("email", String(ACTOR), nullable=False, index=True),
    Column("subject", String(ACTOR)),  # the identity provider's `sub`: stable when an email is reassigned
    Column("issuer", String(ACTOR)),
    Column("issued_at", DateTime(timezone=True)),  # the identity token's `iat`
    Column("roles", String(100), nullable=False),
)

