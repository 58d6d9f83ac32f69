"""Alembic environment: migrations run on a connection handed over by ``Database.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from db.models import Base

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `alembic` run by hand without Dyad
    raise SystemExit("run migrations with `dyad migrate`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
