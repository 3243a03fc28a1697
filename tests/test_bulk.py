"""COPY helpers: a pipelined multi-frame COPY writes everything once, or nothing when anything fails."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from psycopg2.errors import InvalidTextRepresentation
from sqlalchemy import Engine, text

from gisgrid.storage.bulk import copy_frames


@pytest.fixture
def table(engine: Engine) -> Iterator[str]:
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS _bulk_t; CREATE TABLE _bulk_t (n integer, label text)"))
    yield "_bulk_t"
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE _bulk_t"))


def rows(engine: Engine) -> list[tuple[int, str | None]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT n, label FROM _bulk_t ORDER BY n"))]


def frames(k: int, size: int, bad_at: int | None = None) -> Iterator[pd.DataFrame]:
    for i in range(k):
        n = list(range(i * size, (i + 1) * size))
        yield pd.DataFrame({"n": n, "label": [f'行{v}, "q"\n' if v % 7 == 0 else None for v in n]})
        if bad_at is not None and i == bad_at:
            raise ValueError(f"frame {i} could not be made")


def test_many_frames_go_in_as_one_copy_with_progress(engine: Engine, table: str) -> None:
    seen: list[int] = []
    with engine.begin() as conn:
        total = copy_frames(conn, table, ["n", "label"], frames(5, 1000), on_chunk=seen.append)
    assert total == 5000 and seen == [1000] * 5
    got = rows(engine)
    assert [r[0] for r in got] == list(range(5000))
    assert got[7] == (7, '行7, "q"\n') and got[8] == (8, None)  # quoting, newlines and NULLs survive


def test_a_failing_encoder_aborts_the_copy_and_writes_nothing(engine: Engine, table: str) -> None:
    with pytest.raises(ValueError, match="frame 2 could not be made"), engine.begin() as conn:
        copy_frames(conn, table, ["n", "label"], frames(5, 1000, bad_at=2))
    assert rows(engine) == []


def test_a_row_postgres_refuses_aborts_the_copy_and_writes_nothing(engine: Engine, table: str) -> None:
    def with_bad_row() -> Iterator[pd.DataFrame]:
        yield pd.DataFrame({"n": [1, 2], "label": ["a", "b"]})
        yield pd.DataFrame({"n": ["three"], "label": ["c"]})
        yield from frames(20, 1000)  # more than the queue holds: the encoder must not hang

    with pytest.raises(InvalidTextRepresentation, match="three"), engine.begin() as conn:
        copy_frames(conn, table, ["n", "label"], with_bad_row())
    assert rows(engine) == []


def test_point_ewkb_hex_is_what_shapely_writes() -> None:
    import numpy as np
    import shapely

    from gisgrid.storage.bulk import point_ewkb_hex

    rng = np.random.default_rng(1)
    x, y = rng.uniform(-180, 180, 1000), rng.uniform(-90, 90, 1000)
    x[:3], y[:3] = [113.6502917, -0.0, 0.0], [34.7466, 1e-300, -45.5]
    want = shapely.to_wkb(shapely.set_srid(shapely.points(x, y), 4490), hex=True, include_srid=True)
    assert point_ewkb_hex(x, y, 4490).tolist() == want.tolist()
