"""Components: drop the functional geography GiST index.

Radius and nearest queries now take a degree box from the plain geometry GiST index and measure exact
ellipsoidal metres on the few rows inside (gisgrid.components_store._within_sql), so the second spatial index —
the slowest part of a bulk import's index rebuild (10–12 s of 19 s at 1,000,000 rows) — is not needed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS idx_components_geog")


def downgrade() -> None:
    op.execute("CREATE INDEX idx_components_geog ON components USING gist ((geom::geography))")
