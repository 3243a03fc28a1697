"""Administrative units: ``area_m2`` on the ellipsoid, as the unit grids carry it.

It was the area in the district's Gauss–Krüger plane (Beijing 东城区: +64 ppm; near a zone edge ~0.06 %), so a
unit's area was not the sum of its cells'. Imports now store the ellipsoidal area (``geodesy.geodesic_areas``);
this recomputes the stored units' with PostGIS's geodesic area on their CGCS2000 ellipsoid (edges as geodesics
rather than straight in an equal-area plane: within 0.2 ppm of the import's measure on the demo district;
re-importing the boundaries gives the import's own). Downgrade leaves the values: the plane area is not worth
restoring.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE admin_units SET area_m2 = round(ST_Area(geom::geography, true)::numeric, 2)::float8")


def downgrade() -> None:
    pass
