"""Fast bulk writes with PostgreSQL COPY (geometry as hex EWKB), inside the caller's transaction."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None / NaN → NULL
        return "\\N"
    return str(value).translate(_ESCAPES)


def copy_rows(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """COPY rows into ``table`` through the connection's current transaction; returns the row count."""
    buf = io.StringIO()
    n = 0
    for row in rows:
        buf.write("\t".join(_cell(v) for v in row))
        buf.write("\n")
        n += 1
    buf.seek(0)
    raw = conn.connection.dbapi_connection
    assert raw is not None
    with raw.cursor() as cur:
        cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT text)", buf)
    return n


def copy_frame(conn: Connection, table: str, frame: pd.DataFrame) -> int:
    """COPY a DataFrame (columns named as the table's) through CSV: pandas writes it in C, quoting as needed.

    None/NaN become empty unquoted fields, which COPY reads as NULL; empty strings must be None already."""
    buf = io.StringIO()
    frame.to_csv(buf, index=False, header=False, lineterminator="\n")
    buf.seek(0)
    raw = conn.connection.dbapi_connection
    assert raw is not None
    with raw.cursor() as cur:
        cur.copy_expert(f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN WITH (FORMAT csv)", buf)
    return len(frame)
