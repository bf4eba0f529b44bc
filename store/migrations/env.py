"""Alembic's environment: runs the migrations on the connection that `store.schema` passes in."""

from alembic import context

import store.tables  # noqa: F401  (registers the tables on Base.metadata)
from store.db import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite alters tables by copying them (batch mode)
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
