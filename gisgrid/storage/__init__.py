"""Storage: the embedded cluster, engine/session, ORM models and Alembic migrations."""
