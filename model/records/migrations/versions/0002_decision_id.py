"""Schema version 2: decisions.decision_id, the id an API client (and every other source) is given.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("decision_id", sa.String(32)))
    op.create_index("ix_decisions_decision_id", "decisions", ["decision_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_decisions_decision_id", "decisions")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("decision_id")
