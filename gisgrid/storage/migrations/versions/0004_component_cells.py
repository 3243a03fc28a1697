"""Component density per unit grid (部件密度), kept by triggers: what the console draws below zoom 16.

A district holds a million components; a low-zoom map tile cannot carry them one by one (a z13 tile of the
urban core holds ~100,000). ``component_cells`` keeps one row per unit grid — how many components it holds and
the sum of their centroids' coordinates, so the mean position is ``sx / n, sy / n`` — and statement-level
triggers apply each statement's change as a delta (one GROUP BY over its transition table), so a COPY of a
million rows costs one aggregate pass and a single edit touches one row. Removed (移除) components do not count.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

from gisgrid.settings import STORAGE_SRID

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _apply(rows: str, sign: int) -> str:
    """Add (sign 1) or take away (-1) the counted rows of ``rows`` (a transition table or a query over them)."""
    return f"""
    INSERT INTO component_cells AS c (unit_grid_code, n, sx, sy, geom)
    SELECT d.code, d.n, d.sx, d.sy, ST_SetSRID(ST_MakePoint(d.sx / d.n, d.sy / d.n), {STORAGE_SRID})
    FROM (
        SELECT r.unit_grid_code AS code, {sign} * count(*) AS n,
               {sign} * sum(ST_X(ST_Centroid(r.geom))) AS sx, {sign} * sum(ST_Y(ST_Centroid(r.geom))) AS sy
        FROM {rows} r
        WHERE r.unit_grid_code IS NOT NULL AND r.status <> '移除' AND r.geom IS NOT NULL AND NOT ST_IsEmpty(r.geom)
        GROUP BY r.unit_grid_code
    ) d
    ON CONFLICT (unit_grid_code) DO UPDATE SET
        n = c.n + excluded.n, sx = c.sx + excluded.sx, sy = c.sy + excluded.sy,
        geom = CASE WHEN c.n + excluded.n > 0 THEN ST_SetSRID(ST_MakePoint(
            (c.sx + excluded.sx) / (c.n + excluded.n), (c.sy + excluded.sy) / (c.n + excluded.n)), {STORAGE_SRID})
            ELSE c.geom END;
    """


# Rows of an UPDATE whose grid, status or place changed: only they move a count.
_MOVED = """(SELECT {side}.* FROM old_rows o JOIN new_rows n USING (id)
    WHERE (o.unit_grid_code, o.status) IS DISTINCT FROM (n.unit_grid_code, n.status)
       OR NOT ST_OrderingEquals(o.geom, n.geom))"""


def _function(event: str, body: str) -> str:
    return f"""
    CREATE FUNCTION component_cells_on_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {body}
        DELETE FROM component_cells WHERE n <= 0;
        RETURN NULL;
    END $$;
    """


# One function per event: a transition table exists only for the events that define it.
FUNCTIONS = (
    _function("insert", _apply("new_rows", 1)),
    _function("delete", _apply("old_rows", -1)),
    _function("update", _apply(_MOVED.format(side="o"), -1) + _apply(_MOVED.format(side="n"), 1)),
)
TRIGGERS = """
CREATE TRIGGER component_cells_insert AFTER INSERT ON components
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION component_cells_on_insert();
CREATE TRIGGER component_cells_delete AFTER DELETE ON components
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION component_cells_on_delete();
CREATE TRIGGER component_cells_update AFTER UPDATE ON components
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION component_cells_on_update();
"""


def upgrade() -> None:
    op.create_table(
        "component_cells",
        sa.Column("unit_grid_code", sa.String(15), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("sx", sa.Float, nullable=False),
        sa.Column("sy", sa.Float, nullable=False),
        sa.Column("geom", Geometry("POINT", srid=STORAGE_SRID, spatial_index=False), nullable=False),
    )
    op.create_index("idx_component_cells_geom", "component_cells", ["geom"], postgresql_using="gist")
    for function in FUNCTIONS:
        op.execute(function)
    op.execute(TRIGGERS)
    op.execute(
        f"""
        INSERT INTO component_cells (unit_grid_code, n, sx, sy, geom)
        SELECT unit_grid_code, count(*), sum(ST_X(ST_Centroid(geom))), sum(ST_Y(ST_Centroid(geom))),
               ST_SetSRID(ST_MakePoint(avg(ST_X(ST_Centroid(geom))), avg(ST_Y(ST_Centroid(geom)))), {STORAGE_SRID})
        FROM components
        WHERE unit_grid_code IS NOT NULL AND status <> '移除' AND geom IS NOT NULL AND NOT ST_IsEmpty(geom)
        GROUP BY unit_grid_code
        """
    )


def downgrade() -> None:
    for event in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS component_cells_{event} ON components")
        op.execute(f"DROP FUNCTION IF EXISTS component_cells_on_{event}()")
    op.drop_table("component_cells")
