"""Schema version 6: batch runs. decisions.batch_id and batch_sha256, the batches on record, and the
staging tables a cluster run's workers write to before the batch goes on record in one transaction.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _decision_columns() -> list[sa.Column]:
    """The decisions table's columns but its id, as a staged row carries them."""
    return [
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("officer", sa.String(200)),
        sa.Column("simulated", sa.Boolean, nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("decision", sa.Integer, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("out_of_range", sa.Text, nullable=False),
        sa.Column("decision_id", sa.String(32)),
        sa.Column("reason_codes", sa.Text, nullable=False),
        sa.Column("referred", sa.Boolean, nullable=False),
        sa.Column("batch_id", sa.String(32)),
        sa.Column("batch_sha256", sa.String(64)),
    ]


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("batch_id", sa.String(32)))
        batch.add_column(sa.Column("batch_sha256", sa.String(64)))
    op.create_index("ix_decisions_batch_id", "decisions", ["batch_id"])
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.String(32), primary_key=True),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("officer", sa.String(200)),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("decisions", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_batches_file_sha256", "batches", ["file_sha256"])
    op.create_table(
        "staged_decisions",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        *_decision_columns(),
        sa.Column("part", sa.Integer, nullable=False),
    )
    op.create_index("ix_staged_decisions_batch", "staged_decisions", ["batch_id", "part"])
    op.create_table(
        "batch_parts",
        sa.Column("batch_id", sa.String(32), primary_key=True),
        sa.Column("part", sa.Integer, primary_key=True),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("staged_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("batch_parts")
    op.drop_table("staged_decisions")
    op.drop_table("batches")
    op.drop_index("ix_decisions_batch_id", "decisions")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("batch_sha256")
        batch.drop_column("batch_id")
