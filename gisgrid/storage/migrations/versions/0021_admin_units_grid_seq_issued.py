"""Administrative units: the highest unit-grid sequence number ever issued in the unit (``grid_seq_issued``).

Regenerating a unit renumbered all its cells in reading order, so after a boundary change every code from the
first changed cell on named another place (review47 F1). Now a cell that comes back the same keeps its code and
every other cell is numbered above the highest number the unit has ever issued, so a removed cell's code is
never given to another place (``grids.numbering``); this column remembers that number. Units stored before this
start from the highest sequence number of their stored unit grids (0 without any). The downgrade drops it:
regenerating then numbers in reading order again.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("admin_units", sa.Column("grid_seq_issued", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE admin_units u SET grid_seq_issued = g.seq "
        "FROM (SELECT unit_code, max(seq) AS seq FROM unit_grids GROUP BY unit_code) g WHERE g.unit_code = u.code"
    )


def downgrade() -> None:
    op.drop_column("admin_units", "grid_seq_issued")
