"""Cases: an index on (updated_at, id) for the change feed (``GET /cases?changed_since=…&sort=updated``).

A system that follows gisgrid's cases (a 12345 hotline reporting back 办结, a vendor tracking its alarms) asks for
the cases changed since its last poll; without the index that is a scan of every case.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cases_updated_at_id", "cases", ["updated_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_cases_updated_at_id", table_name="cases")
