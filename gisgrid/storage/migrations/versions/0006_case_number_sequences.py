"""Case numbers (案件编号 = year + 6 digits) from one sequence per year instead of the ``case_numbers`` row.

A row counter is locked from the increment until its transaction commits, so concurrent reports queued on it
through every commit's disk flush; a sequence hands out numbers without a lock, in the report's one statement.
``next_case_no(year)`` makes the year's sequence on first use (once, under an advisory lock); numbers stay
unique and increasing, and a report that fails after taking one leaves a gap, as before. Each year's counter
is carried over.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

FUNCTIONS = """
-- The year's counter, made by whoever comes first. The advisory lock queues makers until the first commits;
-- IF NOT EXISTS then sees its sequence (a cached "no such relation" would not). NOTICEs of that are muted.
CREATE FUNCTION make_case_no_sequence(y integer) RETURNS regclass LANGUAGE plpgsql
SET client_min_messages = warning AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('gisgrid.case_no_sequence'));
    EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %I AS bigint', 'case_no_' || y);
    RETURN to_regclass('case_no_' || y);
END $$;

CREATE FUNCTION case_no_sequence(y integer) RETURNS regclass LANGUAGE sql AS $$
    SELECT coalesce(to_regclass('case_no_' || y), make_case_no_sequence(y))
$$;

CREATE FUNCTION format_case_no(y integer, n bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT y::text || CASE WHEN n < 1000000 THEN lpad(n::text, 6, '0') ELSE n::text END
$$;

CREATE FUNCTION next_case_no(y integer) RETURNS text LANGUAGE sql AS $$
    SELECT format_case_no(y, nextval(case_no_sequence(y)))
$$;

-- Kept numbers of an imported history: later numbers of the year start above ``n``.
CREATE FUNCTION case_no_at_least(y integer, n bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    seq regclass := case_no_sequence(y);
    cur bigint := nextval(seq);
BEGIN
    IF n > cur THEN
        PERFORM setval(seq, n);
    END IF;
END $$;
"""


def upgrade() -> None:
    op.execute(FUNCTIONS)
    op.execute(
        """
        DO $$
        DECLARE r record;
        BEGIN
            FOR r IN SELECT year, last FROM case_numbers LOOP
                EXECUTE format('CREATE SEQUENCE %I AS bigint START WITH %s', 'case_no_' || r.year, r.last + 1);
            END LOOP;
        END $$
        """
    )
    op.drop_table("case_numbers")


def downgrade() -> None:
    op.create_table(
        "case_numbers",
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("last", sa.Integer, nullable=False),
    )
    op.execute(
        """
        DO $$
        DECLARE r record; v bigint;
        BEGIN
            FOR r IN SELECT c.relname, substr(c.relname, 9)::int AS year FROM pg_class c
                     WHERE c.relkind = 'S' AND c.relname ~ '^case_no_[0-9]+$' LOOP
                EXECUTE format('SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM %I',
                               r.relname) INTO v;
                INSERT INTO case_numbers (year, last) VALUES (r.year, v);
                EXECUTE format('DROP SEQUENCE %I', r.relname);
            END LOOP;
        END $$
        """
    )
    for fn in ("case_no_at_least(integer, bigint)", "next_case_no(integer)", "format_case_no(integer, bigint)",
               "case_no_sequence(integer)", "make_case_no_sequence(integer)"):  # fmt: skip
        op.execute(f"DROP FUNCTION {fn}")
