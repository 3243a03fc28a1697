"""The transaction of a recode (``boundaries recode``, ``departments recode``): codes rewritten everywhere they
are stored, all or nothing, waiting a bounded time for the locks it needs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from psycopg2.errors import LockNotAvailable, TransactionRollbackError
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from gisgrid.errors import Conflict

#: How long a recode waits for a lock before it gives up (nothing written).
RECODE_LOCK_WAIT_S = 5


@contextmanager
def recode_transaction(engine: Engine, *, dry_run: bool, busy: Callable[[], Conflict]) -> Iterator[Connection]:
    """One transaction: committed when the block ends, rolled back on an error or for ``dry_run`` (so a dry run's
    counts are the real ones). The service waits for the recode, not the other way round: a lock not had within
    ``RECODE_LOCK_WAIT_S``, or a deadlock, rolls back and raises ``busy()`` instead of leaving reports, actions
    and tiles queued behind it."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            conn.execute(text(f"SET LOCAL lock_timeout = '{RECODE_LOCK_WAIT_S}s'"))
            yield conn
        except OperationalError as exc:
            trans.rollback()
            if not isinstance(exc.orig, LockNotAvailable | TransactionRollbackError):
                raise
            raise busy() from None
        except BaseException:
            trans.rollback()
            raise
        if dry_run:
            trans.rollback()
        else:
            trans.commit()


def recode_components(
    conn: Connection, new_values: Mapping[str, str], where: str, params: Mapping[str, Any], *, actor: str, source: str
) -> int:
    """Rewrite codes of the components where ``where`` holds — ``new_values``: column → its new value, SQL over the
    row as it was (``o``) — in one statement, each with a ``recode`` history entry of what changed (column: [old,
    new]), written by ``actor`` from ``source`` (the command). The number of components moved."""
    sets = ", ".join(f"{c} = {value}" for c, value in new_values.items())
    changes = " || ".join(
        f"CASE WHEN o.{c} IS DISTINCT FROM c.{c} THEN jsonb_build_object('{c}', jsonb_build_array(o.{c}, c.{c})) "
        "ELSE '{}'::jsonb END"
        for c in new_values
    )
    moved = conn.execute(
        text(
            f"""
            WITH moved AS (
                UPDATE components c SET {sets}
                FROM components o
                WHERE o.id = c.id AND ({where})
                RETURNING c.id, {changes} AS changes
            )
            INSERT INTO component_history (component_id, actor, action, changes, source)
            SELECT id, :actor, 'recode', changes, :source FROM moved
            """
        ),
        {**params, "actor": actor, "source": source},
    ).rowcount
    return int(moved or 0)
