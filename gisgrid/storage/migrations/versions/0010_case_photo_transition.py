"""Case photos: the log entry each came with.

A case's photos were a flat list: after 返工 nobody could tell which after-photo belonged to which 处置, and the
log's attachments held only file names (three "image.jpg" from three actions). Photos stored before this keep
NULL: which action took them was not recorded.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "case_photos",
        sa.Column(
            "transition_id", sa.BigInteger(), sa.ForeignKey("case_transitions.id", ondelete="CASCADE"), nullable=True
        ),
    )


def downgrade() -> None:
    op.drop_column("case_photos", "transition_id")
