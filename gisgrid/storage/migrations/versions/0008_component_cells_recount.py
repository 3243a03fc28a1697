"""Component cells: what counts is written once, for the triggers and for a full recount.

A bulk component import turns the insert trigger off while it holds the table; it used to work out the per-grid
sums in Python beside the triggers' SQL (the same rule twice). It now calls ``component_cells_recount()`` at the
end. The rule — which components count (in a unit grid, not 移除, with a non-empty geometry) and where (the
centroid) — is defined here once and both the three statement triggers of 0004 and the recount are made from it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

from gisgrid.settings import STORAGE_SRID

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _sums(rows: str, sign: int = 1) -> str:
    """Per unit grid: the counted rows of ``rows`` (a table, transition table or query) and the sums of their
    centroids' coordinates, times ``sign``."""
    return f"""
        SELECT r.unit_grid_code AS code, {sign} * count(*) AS n,
               {sign} * sum(ST_X(ST_Centroid(r.geom))) AS sx, {sign} * sum(ST_Y(ST_Centroid(r.geom))) AS sy
        FROM {rows} r
        WHERE r.unit_grid_code IS NOT NULL AND r.status <> '移除' AND r.geom IS NOT NULL AND NOT ST_IsEmpty(r.geom)
        GROUP BY r.unit_grid_code"""


def _mean(n: str, sx: str, sy: str) -> str:
    return f"ST_SetSRID(ST_MakePoint(({sx}) / ({n}), ({sy}) / ({n})), {STORAGE_SRID})"


def _apply(rows: str, sign: int) -> str:
    """Add (sign 1) or take away (-1) the counted rows of ``rows``."""
    total = ("c.n + excluded.n", "c.sx + excluded.sx", "c.sy + excluded.sy")
    return f"""
    INSERT INTO component_cells AS c (unit_grid_code, n, sx, sy, geom)
    SELECT d.code, d.n, d.sx, d.sy, {_mean("d.n", "d.sx", "d.sy")} FROM ({_sums(rows, sign)}) d
    ON CONFLICT (unit_grid_code) DO UPDATE SET
        n = {total[0]}, sx = {total[1]}, sy = {total[2]},
        geom = CASE WHEN {total[0]} > 0 THEN {_mean(*total)} ELSE c.geom END;
    """


# Rows of an UPDATE whose grid, status or place changed: only they move a count.
_MOVED = """(SELECT {side}.* FROM old_rows o JOIN new_rows n USING (id)
    WHERE (o.unit_grid_code, o.status) IS DISTINCT FROM (n.unit_grid_code, n.status)
       OR NOT ST_OrderingEquals(o.geom, n.geom))"""


def _trigger_function(event: str, body: str) -> str:
    return f"""
    CREATE OR REPLACE FUNCTION component_cells_on_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {body}
        DELETE FROM component_cells WHERE n <= 0;
        RETURN NULL;
    END $$;
    """


FUNCTIONS = (
    _trigger_function("insert", _apply("new_rows", 1)),
    _trigger_function("delete", _apply("old_rows", -1)),
    _trigger_function("update", _apply(_MOVED.format(side="o"), -1) + _apply(_MOVED.format(side="n"), 1)),
    f"""
    CREATE OR REPLACE FUNCTION component_cells_recount() RETURNS void LANGUAGE sql AS $$
        DELETE FROM component_cells;
        INSERT INTO component_cells (unit_grid_code, n, sx, sy, geom)
        SELECT d.code, d.n, d.sx, d.sy, {_mean("d.n", "d.sx", "d.sy")} FROM ({_sums("components")}) d;
    $$;
    """,
)


def upgrade() -> None:
    for function in FUNCTIONS:
        op.execute(function)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS component_cells_recount()")  # the trigger functions are 0004's as they were
