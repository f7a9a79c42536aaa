"""Schema version 8: people and their roles, sign-ins, model changes (four eyes) and exports; who replayed a file.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ACTOR = 200  # as wide as decisions.officer
VERSION = 100


def upgrade() -> None:
    # A log used by a LoanDesk of this branch before migrations may have the tables already.
    present = set(sa.inspect(op.get_bind()).get_table_names())
    if "user_roles" not in present:
        op.create_table(
            "user_roles",
            sa.Column("email", sa.String(ACTOR), primary_key=True),
            sa.Column("role", sa.String(20), primary_key=True),
            sa.Column("granted_by", sa.String(ACTOR), nullable=False),
            sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        )
    if "role_changes" not in present:
        op.create_table(
            "role_changes",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
            sa.Column("actor", sa.String(ACTOR), nullable=False),
            sa.Column("actor_subject", sa.String(ACTOR)),
            sa.Column("email", sa.String(ACTOR), nullable=False),
            sa.Column("roles_before", sa.String(100), nullable=False),
            sa.Column("roles_after", sa.String(100), nullable=False),
        )
    if "sign_ins" not in present:
        op.create_table(
            "sign_ins",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
            sa.Column("email", sa.String(ACTOR), nullable=False, index=True),
            sa.Column("subject", sa.String(ACTOR)),
            sa.Column("issuer", sa.String(ACTOR)),
            sa.Column("issued_at", sa.DateTime(timezone=True)),
            sa.Column("roles", sa.String(100), nullable=False),
        )
    if "model_changes" not in present:
        op.create_table(
            "model_changes",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("model_dir", sa.Text, nullable=False),
            sa.Column("kind", sa.String(20), nullable=False),
            sa.Column("from_version", sa.String(VERSION)),
            sa.Column("to_version", sa.String(VERSION)),
            sa.Column("from_threshold", sa.Float),
            sa.Column("to_threshold", sa.Float),
            sa.Column("refer_band", sa.Float),
            sa.Column("justification", sa.Text, nullable=False),
            sa.Column("proposed_by", sa.String(ACTOR), nullable=False),
            sa.Column("proposed_subject", sa.String(ACTOR)),
            sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("status", sa.String(20), nullable=False, index=True),
            sa.Column("closed_by", sa.String(ACTOR)),
            sa.Column("closed_subject", sa.String(ACTOR)),
            sa.Column("closed_at", sa.DateTime(timezone=True)),
            sa.Column("note", sa.Text),
            sa.Column("result_version", sa.String(VERSION)),
        )
    if "model_change_events" not in present:
        op.create_table(
            "model_change_events",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
            sa.Column("change_id", sa.Integer, sa.ForeignKey("model_changes.id")),
            sa.Column("model_dir", sa.Text, nullable=False),
            sa.Column("action", sa.String(20), nullable=False),
            sa.Column("kind", sa.String(20), nullable=False),
            sa.Column("actor", sa.String(ACTOR), nullable=False),
            sa.Column("actor_subject", sa.String(ACTOR)),
            sa.Column("from_version", sa.String(VERSION)),
            sa.Column("to_version", sa.String(VERSION)),
            sa.Column("from_threshold", sa.Float),
            sa.Column("to_threshold", sa.Float),
            sa.Column("note", sa.Text),
        )
    if "exports" not in present:
        op.create_table(
            "exports",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
            sa.Column("actor", sa.String(ACTOR), nullable=False),
            sa.Column("actor_subject", sa.String(ACTOR)),
            sa.Column("what", sa.String(40), nullable=False),
            sa.Column("filter", sa.Text, nullable=False),
            sa.Column("rows", sa.Integer, nullable=False),
        )
    # Who replayed a sealed file (0007's replays name the host only): the process's OS user.
    if "replayed_by" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("replays")}:
        op.add_column("replays", sa.Column("replayed_by", sa.String(ACTOR)))


def downgrade() -> None:
    with op.batch_alter_table("replays") as batch:
        batch.drop_column("replayed_by")
    for table in ("exports", "model_change_events", "model_changes", "sign_ins", "role_changes", "user_roles"):
        op.drop_table(table)
