"""The transaction of a recode (``boundaries recode``, ``departments recode``): codes rewritten everywhere they
are stored, all or nothing, waiting a bounded time for the locks it needs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
