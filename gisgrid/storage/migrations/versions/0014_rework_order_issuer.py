"""A 返工's 交办单 is signed by the 指挥中心: the actor of the case's last 派遣, not the supervisor who failed 核查.

Orders issued before were stored with the supervisor as ``issued_by``. A rework order is the 交办单 issued at the
same moment as the case's 返工 step (both carry the action's time); its issuer becomes the actor of the latest
派遣 at or before it. That is the rule of ``cases.REWORK_ISSUER_SQL`` as it stood at 0014, copied here and kept
frozen (a migration must not change when the code does). Downgrade puts the supervisor back (the 返工 step's actor).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_REWORK_ORDERS = (
    "d.kind = 'dispatch' AND EXISTS (SELECT 1 FROM case_transitions r WHERE r.case_id = d.case_id "
    "AND r.action = 'rework' AND r.at = d.issued_at)"
)


def upgrade() -> None:
    op.execute(
        "UPDATE case_documents d SET issued_by = (SELECT t.actor FROM case_transitions t WHERE t.case_id = d.case_id "
        "AND t.action = 'dispatch' AND t.at <= d.issued_at ORDER BY t.at DESC, t.id DESC LIMIT 1) "
        f"WHERE {_REWORK_ORDERS} AND EXISTS (SELECT 1 FROM case_transitions t WHERE t.case_id = d.case_id "
        "AND t.action = 'dispatch' AND t.at <= d.issued_at)"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE case_documents d SET issued_by = (SELECT r.actor FROM case_transitions r WHERE r.case_id = d.case_id "
        f"AND r.action = 'rework' AND r.at = d.issued_at ORDER BY r.id LIMIT 1) WHERE {_REWORK_ORDERS}"
    )
