"""Cases: drop the functional geography GiST index.

The duplicate search (the only user) now takes a degree box from the plain geometry GiST index and measures exact
ellipsoidal metres on the few rows inside, as components do since 0005. Every report paid for the second spatial
index on insert.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS idx_cases_geog")


def downgrade() -> None:
    op.execute("CREATE INDEX idx_cases_geog ON cases USING gist ((geom::geography))")
