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
    # hide_parameters: a failed statement's logged error names no bound value (review54 F6), as the service's
    engine = create_engine(url, poolclass=pool.NullPool, plugins=["geoalchemy2"], hide_parameters=True)
    with engine.connect() as connection:
        # A DDL statement waiting for a table lock would hold up every later statement on that table, and the
        # command for ever: it gives up after lock_timeout (gisgrid.storage.migrate names the wait). No
        # statement_timeout: a migration rewriting a large table takes as long as it takes.
        lock_ms = int(config.attributes.get("lock_timeout_ms", 10_000))
        connection.exec_driver_sql(f"SET lock_timeout = {lock_ms}")
        connection.exec_driver_sql("SET statement_timeout = 0")
        connection.commit()
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
