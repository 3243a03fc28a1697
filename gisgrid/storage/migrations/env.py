"""Alembic environment. The URL comes from ``config.attributes["url"]`` (set by gisgrid.storage.migrate),
never from an ini file, so one Settings object decides which database is migrated."""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, pool

from gisgrid.storage.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.attributes["url"]
    engine = create_engine(url, poolclass=pool.NullPool, plugins=["geoalchemy2"])
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # GeoAlchemy2's helpers keep autogenerate from emitting spatial indexes twice.
            include_object=alembic_helpers.include_object,
            process_revision_directives=alembic_helpers.writer,
            render_item=alembic_helpers.render_item,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
