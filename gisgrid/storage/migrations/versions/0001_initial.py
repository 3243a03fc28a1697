"""Initial schema: administrative units, unit grids, management grids, departments, components, cases.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SRID = 4490  # CGCS2000 lon/lat


def _geom(kind: str) -> geoalchemy2.Geometry:
    # spatial_index=False: each GiST index is created below, exactly once.
    return geoalchemy2.Geometry(kind, srid=SRID, spatial_index=False, from_text="ST_GeomFromEWKT", name="geometry")


def _gist(table: str) -> None:
    op.create_index(f"idx_{table}_geom", table, ["geom"], postgresql_using="gist")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    op.create_table(
        "admin_units",
        sa.Column("code", sa.String(12), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("parent_code", sa.String(12), sa.ForeignKey("admin_units.code", ondelete="RESTRICT")),
        sa.Column("area_m2", sa.Float),
        sa.Column("metric_srid", sa.Integer),
        sa.Column("geom", _geom("MULTIPOLYGON"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("level IN ('district','street','community')", name="ck_admin_level"),
        sa.CheckConstraint(
            "(level = 'district' AND code ~ '^[0-9]{6}$') OR (level = 'street' AND code ~ '^[0-9]{9}$')"
            " OR (level = 'community' AND code ~ '^[0-9]{12}$')",
            name="ck_admin_code_format",
        ),
    )
    _gist("admin_units")
    op.create_index("ix_admin_units_parent", "admin_units", ["parent_code"])

    op.create_table(
        "management_grids",
        sa.Column("code", sa.String(14), primary_key=True),
        sa.Column("tier", sa.SmallInteger, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("parent_code", sa.String(14), sa.ForeignKey("management_grids.code", ondelete="CASCADE")),
        sa.Column("admin_code", sa.String(12)),
        sa.Column("leader_name", sa.Text),
        sa.Column("leader_phone", sa.Text),
        sa.Column("staff", postgresql.JSONB, server_default="[]", nullable=False),
        sa.Column("geom", _geom("MULTIPOLYGON"), nullable=False),
        sa.CheckConstraint("tier BETWEEN 1 AND 3", name="ck_mgmt_tier"),
    )
    _gist("management_grids")
    op.create_index("ix_management_grids_tier", "management_grids", ["tier"])

    op.create_table(
        "unit_grids",
        sa.Column("code", sa.String(15), primary_key=True),
        sa.Column("unit_code", sa.String(12), sa.ForeignKey("admin_units.code", ondelete="RESTRICT"), nullable=False),
        sa.Column("district_code", sa.String(6), nullable=False),
        sa.Column("street_code", sa.String(9)),
        sa.Column("community_code", sa.String(12)),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("col", sa.Integer, nullable=False),
        sa.Column("area_m2", sa.Float, nullable=False),
        sa.Column("tier3_code", sa.String(14), sa.ForeignKey("management_grids.code", ondelete="SET NULL")),
        sa.Column("geom", _geom("MULTIPOLYGON"), nullable=False),
        sa.CheckConstraint("code ~ '^[0-9]{15}$'", name="ck_unit_grid_code_format"),
    )
    _gist("unit_grids")
    op.create_index("ix_unit_grids_unit", "unit_grids", ["unit_code"])
    op.create_index("ix_unit_grids_tier3", "unit_grids", ["tier3_code"])

    op.create_table(
        "departments",
        sa.Column("code", sa.String(18), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text),
        sa.Column("phone", sa.Text),
    )

    op.create_table(
        "components",
        sa.Column("id", sa.String(17), primary_key=True),
        sa.Column("class_code", sa.String(5), nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("unit_grid_code", sa.String(15)),
        sa.Column("street_code", sa.String(9)),
        sa.Column("community_code", sa.String(12)),
        sa.Column("main_dept_code", sa.String(18), sa.ForeignKey("departments.code")),
        sa.Column("owner_dept_code", sa.String(18), sa.ForeignKey("departments.code")),
        sa.Column("maint_dept_code", sa.String(18), sa.ForeignKey("departments.code")),
        sa.Column("status", sa.String(4), server_default="完好", nullable=False),
        sa.Column("initial_date", sa.Date),
        sa.Column("change_date", sa.Date),
        sa.Column("data_source", sa.Text),
        sa.Column("note", sa.Text),
        sa.Column("attrs", postgresql.JSONB, server_default="{}", nullable=False),
        sa.Column("geom", _geom("GEOMETRY"), nullable=False),
    )
    _gist("components")
    op.create_index("ix_components_unit_grid_code", "components", ["unit_grid_code"])

    op.create_table(
        "cases",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("case_no", sa.String(20), nullable=False, unique=True),
        sa.Column("class_code", sa.String(5), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20)),
        sa.Column("description", sa.Text),
        sa.Column("unit_grid_code", sa.String(15)),
        sa.Column("department_code", sa.String(18), sa.ForeignKey("departments.code")),
        sa.Column("due_at", sa.DateTime(timezone=True)),
        sa.Column("version", sa.Integer, server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("geom", _geom("POINT"), nullable=False),
    )
    _gist("cases")
    op.create_index("ix_cases_unit_grid_code", "cases", ["unit_grid_code"])

    op.create_table(
        "case_transitions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.BigInteger, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("from_state", sa.String(20)),
        sa.Column("to_state", sa.String(20), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("attachments", postgresql.JSONB, server_default="[]", nullable=False),
    )
    op.create_index("ix_case_transitions_case_id", "case_transitions", ["case_id"])


def downgrade() -> None:
    for table in ("case_transitions", "cases", "components", "departments", "unit_grids", "management_grids"):
        op.drop_table(table)
    op.drop_table("admin_units")
    # The postgis extension stays: other schemas in the database may use it.
