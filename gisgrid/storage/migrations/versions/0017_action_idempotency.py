"""Case log: the idempotency key of the request that took a step, and that request's fingerprint.

A client whose answer to an action was lost (a timeout, a dropped mobile connection) sends the action again with
the same ``Idempotency-Key``: the step it already took is answered, not refused as a stale version (409). The key
is unique per case; its fingerprint tells a retry from another request reusing the key.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("case_transitions", sa.Column("idempotency_key", sa.Text))
    op.add_column("case_transitions", sa.Column("idempotency_fingerprint", sa.String(64)))
    op.create_index(
        "uq_case_transitions_idempotency_key",
        "case_transitions",
        ["case_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_case_transitions_idempotency_key", table_name="case_transitions")
    op.drop_column("case_transitions", "idempotency_fingerprint")
    op.drop_column("case_transitions", "idempotency_key")
