"""Schema version 7: every replay of a sealed file (a journal segment, an unsent file, a batch's
unsent file) is recorded: which file (name, SHA-256), when, on which host, what it wrote and skipped.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replays",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("written", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
    )
    op.create_index("ix_replays_file_sha256", "replays", ["file_sha256"])


def downgrade() -> None:
    op.drop_index("ix_replays_file_sha256", "replays")
    op.drop_table("replays")
