"""Cases: whether the running node's clock is calendar time (an urgent limit runs round the clock).

The traffic light measured every node in working time, so an urgent case (2 calendar hours) showed yellow from
its first minute at night or on a holiday. Existing cases: a running 处置 node of an urgent case — or one paused
by 挂账 while dispatched — is in calendar hours (every urgent disposal limit of the shipped catalogue is); the
other nodes were given working-time deadlines before urgent node limits existed, and keep them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("node_calendar_time", sa.Boolean(), nullable=False, server_default=sa.false()))
    # A 处置 clock paused by 挂账 (node NULL while suspended) resumes as the same clock: calendar time too.
    op.execute(
        "UPDATE cases SET node_calendar_time = true WHERE urgent "
        "AND (node = 'disposal' OR (state = 'suspended' AND previous_state = 'dispatched'))"
    )


def downgrade() -> None:
    op.drop_column("cases", "node_calendar_time")
