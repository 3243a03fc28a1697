"""Administrative units: whether gisgrid numbered the unit's code (``--assign-codes``), i.e. it is provisional.

A street or community without a code in the source file is numbered 001, 002 … per parent on import; those codes
were stored like GB/T 2260 / civil-affairs codes, so nobody could tell later which ones to replace with the
official ones, and the unit and tier grids whose codes embed them looked official. Units stored before this were
not recorded as numbered: they keep false (re-importing the same file with --assign-codes marks them).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("admin_units", sa.Column("code_assigned", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("admin_units", "code_assigned")
