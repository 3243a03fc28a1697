"""The working hours each stored deadline is counted under: ``cases.hours_counted``.

A deadline (``cases.due_at``) is counted on the working calendar when its node opens and stored. When
GISGRID_WORKING_HOURS changes (e.g. to the seasonal form) the open cases kept deadlines counted under the old hours,
and nothing said so (``gisgrid.deadline_hours``). Each case now holds the normalised setting
(``gisgrid.calendar.hours_setting``) its running deadline was counted under, written in the same statement as
``due_at``. Rows from before this revision hold null: the next ``gisgrid db up`` or ``gisgrid serve`` takes the open
ones as counted under the hours in force then. The downgrade drops the column and its index.

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


#: The open clocks' rows (gisgrid.deadline_hours.OPEN_CLOCKS), so /health and the start check read an index of the
#: open cases, not the whole table (~0.6 s for a million cases).
OPEN_CLOCKS = "state NOT IN ('closed', 'rejected', 'voided') AND due_at IS NOT NULL"


def upgrade() -> None:
    op.add_column("cases", sa.Column("hours_counted", sa.Text, nullable=True))
    op.create_index("ix_cases_open_clock_hours", "cases", ["hours_counted"], postgresql_where=sa.text(OPEN_CLOCKS))


def downgrade() -> None:
    op.drop_index("ix_cases_open_clock_hours", table_name="cases")
    op.drop_column("cases", "hours_counted")
