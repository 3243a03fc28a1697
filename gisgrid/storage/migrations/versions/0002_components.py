"""Components: scheme, district, photos, versions, change history, never-reused serials, query indexes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STATUSES = ("完好", "破损", "丢失", "废弃", "移除")


def upgrade() -> None:
    op.add_column("components", sa.Column("scheme", sa.String(8), server_default="gbt47678", nullable=False))
    op.add_column("components", sa.Column("district_code", sa.String(6)))
    op.add_column("components", sa.Column("photos", postgresql.JSONB, server_default="[]", nullable=False))
    op.add_column("components", sa.Column("version", sa.Integer, server_default="1", nullable=False))
    op.add_column(
        "components",
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.add_column(
        "components",
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_check_constraint(
        "ck_component_status", "components", "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")"
    )
    op.create_check_constraint(
        "ck_component_id_format",
        "components",
        "(scheme = 'gbt47678' AND id ~ '^[0-9]{17}$') OR (scheme = 'cjt214' AND id ~ '^[0-9]{16}$')",
    )
    op.create_index("ix_components_class_code", "components", ["class_code"])
    op.create_index("ix_components_status", "components", ["status"])
    op.create_index("ix_components_main_dept_code", "components", ["main_dept_code"])
    op.create_index("ix_components_maint_dept_code", "components", ["maint_dept_code"])
    # Radius and nearest-k queries in metres use geography; without this index they scan the table.
    op.execute("CREATE INDEX idx_components_geog ON components USING gist ((geom::geography))")

    op.create_table(
        "component_history",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("component_id", sa.String(17), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("changes", postgresql.JSONB),
        sa.Column("source", sa.Text),
    )
    op.create_index("ix_component_history_component", "component_history", ["component_id", "at"])

    op.create_table(
        "component_serials",
        sa.Column("district_code", sa.String(6), primary_key=True),
        sa.Column("scheme", sa.String(8), primary_key=True),
        sa.Column("class_code", sa.String(5), primary_key=True),
        sa.Column("last_serial", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("component_serials")
    op.drop_table("component_history")
    op.execute("DROP INDEX IF EXISTS idx_components_geog")
    for name in ("maint_dept_code", "main_dept_code", "status", "class_code"):
        op.drop_index(f"ix_components_{name}", "components")
    op.drop_constraint("ck_component_id_format", "components")
    op.drop_constraint("ck_component_status", "components")
    for col in ("updated_at", "created_at", "version", "photos", "district_code", "scheme"):
        op.drop_column("components", col)
