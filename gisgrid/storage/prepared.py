"""Server-side prepared statements for the hottest paths (case intake).

A statement written with ``:name`` binds is PREPAREd once per pooled connection and EXECUTEd by name: PostgreSQL
plans it once instead of on every call (about as long as running the intake's statements), and the call skips
SQLAlchemy's compile and result machinery. The same statement runs on a psycopg2 connection (``rows``: the CLI,
scripts, tests) or on an asyncpg connection (``rows_async``: the API, which asyncpg prepares and keeps per
connection by itself). Everything else in the project goes through SQLAlchemy ``text()``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection

from gisgrid.storage.database import psycopg2_connection

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

    def args(self, params: dict[str, Any]) -> list[Any]:
        """``params`` (every bind by name) in ``$n`` order."""
        return [params[k] for k in self._order]

    async def rows_async(self, conn: AsyncFetcher, params: dict[str, Any]) -> list[dict[str, Any]]:
        """:meth:`rows` on an asyncpg connection (one whose session went through :func:`init_async_connection`)."""
        return [dict(r) for r in await conn.fetch(self._positional, *self.args(params))]

    def rows(self, conn: Connection, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Run it with ``params`` (every bind by name) and return the rows as dicts. On a connection outside
        AUTOCOMMIT it joins the connection's transaction like any other statement."""
        fairy = conn.connection  # the pooled DBAPI connection; its ``info`` lives as long as that connection
        raw = psycopg2_connection(fairy)
        if not raw.autocommit and not conn.in_transaction():
            conn.begin()  # the driver opens a transaction for this statement: let the Connection know, to end it
        done: set[str] = fairy.info.setdefault("gisgrid_prepared", set())
        with raw.cursor() as cur:
            if self.name not in done:
                cur.execute(f"PREPARE {self.name} AS {self._positional}")
                done.add(self.name)
            cur.execute(f"EXECUTE {self.name} ({', '.join(['%s'] * len(self._order))})", self.args(params))
            if cur.description is None:
                return []
            names = [d.name for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


class AsyncFetcher(Protocol):
    """What :meth:`Prepared.rows_async` needs of an asyncpg connection or pool."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


async def init_async_connection(conn: Any) -> None:
    """An asyncpg session reads json/jsonb as Python values, as psycopg2 does, and takes them as JSON text or as
    values; without this it hands back the JSON text."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=_json_text, decoder=json.loads, schema="pg_catalog")
