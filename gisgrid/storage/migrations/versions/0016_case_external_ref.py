"""Cases: the sending system's own reference (``external_ref``: a 12345 工单号, a video vendor's alarm id).

A system that files reports into gisgrid looks its cases up by its own number (``GET /cases?external_ref=…``);
before this it could only keep gisgrid's case number beside its own.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("external_ref", sa.String(64)))
    op.create_index(
        "ix_cases_external_ref", "cases", ["external_ref"], postgresql_where=sa.text("external_ref IS NOT NULL")
    )


def downgrade() -> None:
    op.drop_index("ix_cases_external_ref", table_name="cases")
    op.drop_column("cases", "external_ref")
