"""Schema version 4: each decision's reason codes and refer flag; overrides and notices kept with the log.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("reason_codes", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("referred", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "overrides",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("decision_id", sa.String(32), nullable=False),
        sa.Column("overridden_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("officer", sa.String(200), nullable=False),
        sa.Column("model_decision", sa.String(10), nullable=False),
        sa.Column("final_decision", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_overrides_decision_id", "overrides", ["decision_id"])
    op.create_index("ix_overrides_overridden_at", "overrides", ["overridden_at"])
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("decision_id", sa.String(32), nullable=False),
        sa.Column("produced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("produced_by", sa.String(200), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("reason_codes", sa.Text, nullable=False),
        sa.Column("pdf_sha256", sa.String(64), nullable=False),
    )
    op.create_index("ix_notices_decision_id", "notices", ["decision_id"])
    op.create_index("ix_notices_produced_at", "notices", ["produced_at"])


def downgrade() -> None:
    op.drop_table("notices")
    op.drop_table("overrides")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("referred")
        batch.drop_column("reason_codes")
