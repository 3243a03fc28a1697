"""One case per (source, external_ref): the sending system's own number (12345 工单号, a video alarm id) names one case.

A retry that lost its idempotency key (a hotline system restarted, a video platform firing the same alarm again)
filed a second case. Intake now refuses it (409 ``external_ref_exists`` naming the case), and this unique index
makes that hold for two concurrent reports too: the loser's insert does nothing (``ON CONFLICT DO NOTHING``) and
its re-read finds the winner.

A database may hold such pairs already (filed before this revision): the index leaves out every row of a pair but
the newest (its predicate names their ids), so the upgrade never fails on them; a new report with one of those
numbers is still refused by intake's read, only without the index's guard against a concurrent twin. The
downgrade drops the index (no data).

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

INDEX = "ux_cases_source_external_ref"


def upgrade() -> None:
    older = op.get_bind().execute(
        sa.text(
            "SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY source, external_ref ORDER BY id DESC) AS n "
            "FROM cases WHERE external_ref IS NOT NULL) r WHERE n > 1 ORDER BY id"
        )
    )
    ids = [int(i) for i in older.scalars()]
    where = "external_ref IS NOT NULL"
    if ids:  # ids are integers read back from the table: no quoting to get wrong
        where += f" AND id NOT IN ({', '.join(map(str, ids))})"
    op.create_index(INDEX, "cases", ["source", "external_ref"], unique=True, postgresql_where=sa.text(where))


def downgrade() -> None:
    op.drop_index(INDEX, table_name="cases")
