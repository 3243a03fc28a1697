"""Cases: intake fields, workflow snapshot, deadlines, routing explanation, idempotency, photos, documents,
per-year case numbers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _case_columns() -> tuple[sa.Column, ...]:
    return (
        sa.Column("scheme", sa.String(8), server_default="gbt47678", nullable=False),
        sa.Column("matter_code", sa.String(11)),
        sa.Column("disposal_type", sa.Text),
        sa.Column("urgent", sa.Boolean, server_default=sa.false(), nullable=False),
        sa.Column("district_code", sa.String(6)),
        sa.Column("street_code", sa.String(9)),
        sa.Column("community_code", sa.String(12)),
        sa.Column("tier3_code", sa.String(14)),
        sa.Column("component_id", sa.String(17)),
        sa.Column("component_distance_m", sa.Float),
        sa.Column("duplicate_of", sa.BigInteger, sa.ForeignKey("cases.id")),
        sa.Column("reporter", sa.Text),
        sa.Column("reporter_role", sa.String(20)),
        sa.Column("input_lon", sa.Float),
        sa.Column("input_lat", sa.Float),
        sa.Column("input_datum", sa.String(10)),
        sa.Column("address", sa.Text),
        sa.Column("idempotency_key", sa.String(100)),
        sa.Column("routing", postgresql.JSONB),
        sa.Column("previous_state", sa.String(20)),
        sa.Column("rework_count", sa.Integer, server_default="0", nullable=False),
        sa.Column("escalation_level", sa.SmallInteger, server_default="3", nullable=False),
        sa.Column("pending_extension", sa.Boolean, server_default=sa.false(), nullable=False),
        sa.Column("node", sa.String(20)),
        sa.Column("node_started_at", sa.DateTime(timezone=True)),
        sa.Column("disposal_started_at", sa.DateTime(timezone=True)),
        sa.Column("disposal_due_at", sa.DateTime(timezone=True)),
        sa.Column("suspended_at", sa.DateTime(timezone=True)),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def upgrade() -> None:
    for column in _case_columns():
        op.add_column("cases", column)
    op.create_index("ix_cases_state", "cases", ["state"])
    op.create_index("ix_cases_class_code", "cases", ["class_code"])
    op.create_index("ix_cases_department_code", "cases", ["department_code"])
    op.create_index("ix_cases_created_at", "cases", ["created_at"])
    op.create_index("ix_cases_tier3_code", "cases", ["tier3_code"])
    op.create_index("ux_cases_idempotency_key", "cases", ["idempotency_key"], unique=True)
    # Duplicate search and "nearest open case" use metres.
    op.execute("CREATE INDEX idx_cases_geog ON cases USING gist ((geom::geography))")

    op.add_column("case_transitions", sa.Column("version", sa.Integer))
    op.add_column("case_transitions", sa.Column("department_code", sa.String(18)))
    op.add_column("case_transitions", sa.Column("effects", postgresql.JSONB, server_default="[]", nullable=False))
    op.add_column("case_transitions", sa.Column("details", postgresql.JSONB, server_default="{}", nullable=False))

    op.create_table(
        "case_numbers",
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("last", sa.Integer, nullable=False),
    )
    op.create_table(
        "case_photos",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.BigInteger, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("relpath", sa.Text, nullable=False),
        sa.Column("content_type", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(10), server_default="before", nullable=False),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("taken_at", sa.DateTime(timezone=True)),
        sa.Column("gps_lon", sa.Float),
        sa.Column("gps_lat", sa.Float),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_case_photos_case_id", "case_photos", ["case_id"])
    op.create_table(
        "case_documents",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.BigInteger, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("number", sa.String(30), nullable=False, unique=True),
        sa.Column("department_code", sa.String(18)),
        sa.Column("due_at", sa.DateTime(timezone=True)),
        sa.Column("issued_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("issued_by", sa.Text),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_case_documents_case_id", "case_documents", ["case_id"])


def downgrade() -> None:
    op.drop_table("case_documents")
    op.drop_table("case_photos")
    op.drop_table("case_numbers")
    for col in ("details", "effects", "department_code", "version"):
        op.drop_column("case_transitions", col)
    op.execute("DROP INDEX IF EXISTS idx_cases_geog")
    for name in ("idempotency_key", "tier3_code", "created_at", "department_code", "class_code", "state"):
        op.drop_index(f"ix_cases_{name}" if name != "idempotency_key" else "ux_cases_idempotency_key", "cases")
    for column in reversed(_case_columns()):
        op.drop_column("cases", column.name)
