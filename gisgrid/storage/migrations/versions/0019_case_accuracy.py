"""Cases: the reported location's accuracy (``accuracy_m``: the phone's GPS fix, radius in metres, as sent).

A coarse first fix (indoors, by the network: 100–1000 m) can put a report in another grid or department's area;
the field page warns and asks before sending one, and the case keeps the figure so the center sees how far to trust
its place. Null: not given (a map tap, a photo's GPS, a 12345 call).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("accuracy_m", sa.Float()))


def downgrade() -> None:
    op.drop_column("cases", "accuracy_m")
