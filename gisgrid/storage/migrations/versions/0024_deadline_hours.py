"""The working hours each stored deadline is counted under: ``cases.hours_counted``.

A deadline (``cases.due_at``) is counted on the working calendar when its node opens and stored. When
GISGRID_WORKING_HOURS changes (e.g. to the seasonal form) the open cases kept deadlines counted under the old hours,
and nothing said so (``gisgrid.deadline_hours``). Each case now holds the normalised setting
(``gisgrid.calendar.hours_setting``) its running deadline was counted under, written in the same statement as
``due_at``. Rows from before this revision hold null: the next ``gisgrid db up`` or ``gisgrid serve`` takes the open
ones as counted under the hours in force then (and says so). The downgrade drops the column.

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
    op.add_column("cases", sa.Column("hours_counted", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("cases", "hours_counted")
