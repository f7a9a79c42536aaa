"""Schema version 5: outcomes of loans, and the Monitoring page's kept daily counts.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outcomes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("decision_id", sa.String(32), nullable=False),
        sa.Column("outcome", sa.Integer, nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True)),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(200)),
        sa.Column("source", sa.String(60), nullable=False),
        sa.Column("simulated", sa.Boolean, nullable=False),
        sa.Column("corrects", sa.Integer, sa.ForeignKey("outcomes.id")),
        sa.Column("is_current", sa.Boolean, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("decision", sa.Integer, nullable=False),
        sa.Column("decision_simulated", sa.Boolean, nullable=False),
    )
    op.create_index("ix_outcomes_decision_id", "outcomes", ["decision_id"])
    op.create_index("ux_outcomes_current", "outcomes", ["decision_id"], unique=True,
                    sqlite_where=sa.text("is_current"), postgresql_where=sa.text("is_current"))
    op.create_table(
        "monitoring_state",
        sa.Column("key", sa.String(40), primary_key=True),
        sa.Column("seen", sa.Integer, nullable=False),
        sa.Column("last_id", sa.Integer, nullable=False),
    )
    op.create_table(
        "monitoring_days",
        sa.Column("model_name", sa.String(200), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("model_version", sa.String(100), primary_key=True),
        sa.Column("simulated", sa.Boolean, primary_key=True),
        sa.Column("decisions", sa.Integer, nullable=False),
        sa.Column("approved", sa.Integer, nullable=False),
        sa.Column("out_of_range", sa.Integer, nullable=False),
        sa.Column("expected_bad", sa.Float, nullable=False),
    )
    op.create_table(
        "monitoring_results",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("watermark", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "monitoring_bins",
        sa.Column("binning", sa.String(40), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("model_version", sa.String(100), primary_key=True),
        sa.Column("simulated", sa.Boolean, primary_key=True),
        sa.Column("metric", sa.String(250), primary_key=True),
        sa.Column("bin", sa.Integer, primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("approved", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("monitoring_bins", "monitoring_results", "monitoring_days", "monitoring_state", "outcomes"):
        op.drop_table(table)
