"""Schema version 3: the REST API's keys, kept as salted hashes beside the log they write to.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A log made by LoanDesk before migrations may have the table already (the API created it).
    if "api_keys" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("salt", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_api_keys_name", "api_keys", ["name"])
    op.create_index("ux_api_keys_live_name", "api_keys", ["name"], unique=True,
                    sqlite_where=sa.text("revoked_at IS NULL"), postgresql_where=sa.text("revoked_at IS NULL"))


def downgrade() -> None:
    op.drop_table("api_keys")
