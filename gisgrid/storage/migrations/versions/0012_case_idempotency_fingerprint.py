"""Cases: the fingerprint of the request an idempotency key filed (``gisgrid.cases.request_fingerprint``).

A key sent again with another report was answered with the first report's case and the new report was lost; the
fingerprint beside the key tells a retry of the same report (answered with its case) from a reused key (refused).
Cases filed before this, and imported ones, have none: their keys replay as before.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("idempotency_fingerprint", sa.String(64)))


def downgrade() -> None:
    op.drop_column("cases", "idempotency_fingerprint")
