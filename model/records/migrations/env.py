"""Alembic's environment: migrations run on the connection LoanDesk hands over (see migrate.py)."""

from alembic import context

from model.records.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
