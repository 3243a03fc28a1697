"""The working hours the stored deadlines are counted under: one row, ``deadline_hours``.

A deadline (``cases.due_at``) is counted on the working calendar when its node opens and stored. When
GISGRID_WORKING_HOURS changes (e.g. to the seasonal form) the open cases kept deadlines counted under the old hours,
and nothing said so (``gisgrid.deadline_hours``). The row holds the normalised setting
(``gisgrid.calendar.hours_setting``), when and by what it was recorded. Nothing was recorded before this revision:
the table starts empty, and the next ``gisgrid db up`` or ``gisgrid serve`` records the hours in force. The
downgrade drops it (the next upgrade records the hours in force again).

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deadline_hours",
        # One row: the key can only be true.
        sa.Column("id", sa.Boolean, primary_key=True, server_default=sa.true()),
        sa.Column("hours", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("recorded_by", sa.Text, nullable=False),
        sa.CheckConstraint("id", name="ck_deadline_hours_one_row"),
    )


def downgrade() -> None:
    op.drop_table("deadline_hours")
