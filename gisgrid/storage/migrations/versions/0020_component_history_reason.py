"""Component history: the reason of a retirement (or of a status out of 移除) in a column of its own.

It was stored as the entry's ``source`` (``"source": "路面改造拆除"`` where the others say ``api``), or appended to
it (``api (…)``); the entries written so far are moved: source ``api``, the text as ``reason`` (review44 U5).

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("component_history", sa.Column("reason", sa.Text()))
    op.execute("UPDATE component_history SET reason = source, source = 'api' WHERE action = 'retire'")
    op.execute(
        "UPDATE component_history SET reason = substring(source FROM '^api \\((.*)\\)(#[0-9]+)?$'), "
        "source = 'api' || coalesce(substring(source FROM '\\)(#[0-9]+)$'), '') "
        "WHERE action = 'update' AND source ~ '^api \\(.*\\)(#[0-9]+)?$'"
    )


def downgrade() -> None:
    # Back where earlier versions kept it, so the reasons outlive the column.
    op.execute("UPDATE component_history SET source = reason WHERE action = 'retire' AND reason IS NOT NULL")
    op.execute(
        "UPDATE component_history "
        "SET source = 'api (' || reason || ')' || coalesce(substring(source FROM '(#[0-9]+)$'), '') "
        "WHERE action = 'update' AND reason IS NOT NULL"
    )
    op.drop_column("component_history", "reason")
