"""Alembic environment: the engine is handed in by store.migrate, never read from a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine

from store.models import Base

config = context.config
engine: Engine | None = config.attributes.get("engine")
if engine is None:
    # `alembic revision --autogenerate` during development: use a scratch SQLite file.
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///migrations.db")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
