"""Server-side prepared statements for the hottest paths (case intake).

A statement written with ``:name`` binds is PREPAREd once per pooled connection and EXECUTEd by name: PostgreSQL
plans it once instead of on every call (about as long as running the intake's statements), and the call skips
SQLAlchemy's compile and result machinery. Everything else in the project goes through SQLAlchemy ``text()``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

_NAMED = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)\b")


def positional(sql: str) -> tuple[str, list[str]]:
    """``:name`` binds as ``$1, $2 …`` (each name once, in order of first use) and the names in that order;
    ``::type`` casts are left alone."""
    order: list[str] = []

    def number(m: re.Match[str]) -> str:
        if m.group(1) not in order:
            order.append(m.group(1))
        return f"${order.index(m.group(1)) + 1}"

    return _NAMED.sub(number, sql), order


@dataclass(frozen=True)
class Prepared:
    """One statement, prepared on each connection the first time that connection runs it."""

    name: str
    sql: str
    _positional: str = field(init=False, repr=False)
    _order: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        sql, order = positional(self.sql)
        object.__setattr__(self, "_positional", sql)
        object.__setattr__(self, "_order", tuple(order))

    def rows(self, conn: Connection, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Run it with ``params`` (every bind by name) and return the rows as dicts. On a connection outside
        AUTOCOMMIT it joins the connection's transaction like any other statement."""
        fairy = conn.connection  # the pooled DBAPI connection; its ``info`` lives as long as that connection
        if not fairy.dbapi_connection.autocommit and not conn.in_transaction():
            conn.begin()  # the driver opens a transaction for this statement: let the Connection know, to end it
        done: set[str] = fairy.info.setdefault("gisgrid_prepared", set())
        with fairy.dbapi_connection.cursor() as cur:
            if self.name not in done:
                cur.execute(f"PREPARE {self.name} AS {self._positional}")
                done.add(self.name)
            cur.execute(
                f"EXECUTE {self.name} ({', '.join(['%s'] * len(self._order))})", [params[k] for k in self._order]
            )
            if cur.description is None:
                return []
            names = [d.name for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
