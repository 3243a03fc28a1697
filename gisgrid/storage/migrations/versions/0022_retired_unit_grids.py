"""Retired unit grids: the code, unit, lattice cell and boundary of every unit grid a regeneration removed.

A cell removed by a boundary edit had its code retired (0021), but matching looked only at the stored cells, so
when a later edit brought the same cell back it got a new code, and the cases and components recorded under the old
code no longer named its place. Now the removed cell is remembered here, and a new cell equal to it (same unit,
lattice row and column, boundary within 1e-7°) takes its code back (``grids.numbering``), the row leaving this
table. Nothing was remembered before this revision: the table starts empty. Rows go with their unit
(ON DELETE CASCADE, as ``admin_units.grid_seq_issued`` does). The downgrade drops it: a cell coming back then gets
a new code again.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

from gisgrid.settings import STORAGE_SRID

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retired_unit_grids",
        sa.Column("code", sa.String(15), primary_key=True),
        sa.Column("unit_code", sa.String(12), sa.ForeignKey("admin_units.code", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("col", sa.Integer, nullable=False),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=STORAGE_SRID, spatial_index=False), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("idx_retired_unit_grids_geom", "retired_unit_grids", ["geom"], postgresql_using="gist")
    op.create_index("ix_retired_unit_grids_unit", "retired_unit_grids", ["unit_code"])


def downgrade() -> None:
    op.drop_table("retired_unit_grids")
