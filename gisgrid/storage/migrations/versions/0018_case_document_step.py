"""Each 交办单/督办单 names the log step that issued it (``case_documents.transition_id``).

The printed order took what the step said — the disposal type it was issued with, a 返工's reason and checker,
a 重点督办 flag — from the n-th issuing step of the case's log for the n-th order of its kind. Stored, the link
does not depend on the two counts staying in step. Existing orders are linked by that same pairing, once, here;
an imported history's orders are linked by ``link_case_documents`` as they are written (it issues them in log
order, so the pairing is exact there).

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

FUNCTIONS = """
-- The orders of cases first..last without a step, each paired with the issuing step of its kind and rank in the
-- case's log (log order: at, id; orders: id). The number of orders linked.
CREATE FUNCTION link_case_documents(first bigint, last bigint) RETURNS bigint LANGUAGE sql AS $$
    WITH d AS (
        SELECT id, case_id, kind, row_number() OVER (PARTITION BY case_id, kind ORDER BY id) AS n
        FROM case_documents WHERE case_id BETWEEN first AND last AND transition_id IS NULL
    ), t AS (
        SELECT id, case_id, kind, row_number() OVER (PARTITION BY case_id, kind ORDER BY at, id) AS n
        FROM (
            SELECT id, case_id, at, CASE WHEN effects ? 'issue_dispatch_order' THEN 'dispatch' ELSE 'supervision' END
                AS kind
            FROM case_transitions
            WHERE case_id BETWEEN first AND last
              AND (effects ? 'issue_dispatch_order' OR effects ? 'issue_supervision_order')
        ) s
    ), linked AS (
        UPDATE case_documents c SET transition_id = t.id FROM d JOIN t USING (case_id, kind, n)
        WHERE c.id = d.id RETURNING 1
    )
    SELECT count(*) FROM linked
$$;
"""


def upgrade() -> None:
    op.add_column(
        "case_documents",
        sa.Column("transition_id", sa.BigInteger, sa.ForeignKey("case_transitions.id", ondelete="CASCADE")),
    )
    op.execute(FUNCTIONS)
    op.execute("SELECT link_case_documents(0, 9223372036854775807)")


def downgrade() -> None:
    op.execute("DROP FUNCTION link_case_documents(bigint, bigint)")
    op.drop_column("case_documents", "transition_id")
