"""COPY helpers: pipelined batches of COPYs write everything, or nothing when anything fails."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from psycopg2.errors import InvalidTextRepresentation
from sqlalchemy import Engine, text

from gisgrid.storage.bulk import CopyPart, copy_batches, copy_frame, csv_bytes


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


def test_point_ewkb_hex_is_what_shapely_writes() -> None:
    import numpy as np
    import shapely

    from gisgrid.storage.bulk import point_ewkb_hex

    rng = np.random.default_rng(1)
    x, y = rng.uniform(-180, 180, 1000), rng.uniform(-90, 90, 1000)
    x[:3], y[:3] = [113.6502917, -0.0, 0.0], [34.7466, 1e-300, -45.5]
    want = shapely.to_wkb(shapely.set_srid(shapely.points(x, y), 4490), hex=True, include_srid=True)
    assert point_ewkb_hex(x, y, 4490).tolist() == want.tolist()


def test_csv_bytes_is_what_to_csv_writes() -> None:
    import datetime as dt

    import numpy as np

    text_frame = pd.DataFrame(
        {
            "id": ["1", "2", "3", "4"],
            "label": ['a,"b"', "line\nbreak", None, "行"],
            "empty": [None, None, None, None],
            "day": [dt.date(2024, 1, 5), None, dt.date(1999, 12, 31), None],
            "mixed": [1.5, np.nan, 7, "x y"],
            "constant": pd.Series(["k"] * 4, dtype="str"),
        }
    )
    numeric = text_frame.assign(n=[1, 2, 3, 4], f=[0.1, np.nan, 1e-300, -2.0])
    one_column = pd.DataFrame({"label": ["", None, "a"]})
    for frame in (text_frame, numeric, one_column, text_frame.iloc[:0], text_frame[["empty", "empty"]]):
        assert csv_bytes(frame) == frame.to_csv(index=False, header=False, lineterminator="\n").encode("utf-8")
    # to_csv leaves a carriage return unquoted (its line ends are "\n"); COPY would take it for the end of a row
    assert csv_bytes(pd.DataFrame({"a": ["x\ry", "z"], "b": ["1", "2"]})) == b'"x\ry",1\nz,2\n'


def test_batches_go_in_table_by_table_in_order(engine: Engine, table: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS _bulk_u; CREATE TABLE _bulk_u (n integer, who text NOT NULL)"))
    seen: list[tuple[str, int]] = []

    def batches() -> Iterator[list[CopyPart]]:
        for chunk in frames(3, 4):
            chunk.loc[chunk.index[0], "label"] = "cr\rin a value"
            who = pd.DataFrame({"n": chunk["n"], "who": ""})  # empty, not NULL
            yield [CopyPart(table, chunk), CopyPart("_bulk_u", who, not_null=("who",))]

    try:
        with engine.begin() as conn:
            written = copy_batches(conn, batches(), on_part=lambda t, n: seen.append((t, n)))
            who = conn.execute(text("SELECT count(*) FROM _bulk_u WHERE who = ''")).scalar_one()
        assert written == {table: 12, "_bulk_u": 12} and who == 12
        assert seen == [(table, 4), ("_bulk_u", 4)] * 3
        got = rows(engine)
        assert [r[0] for r in got] == list(range(12)) and got[4] == (4, "cr\rin a value")
        assert got[7] == (7, '行7, "q"\n') and got[1] == (1, None)  # quoting, newlines and NULLs survive
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE _bulk_u"))


def test_a_failing_batch_aborts_and_writes_nothing(engine: Engine, table: str) -> None:
    def batches() -> Iterator[list[CopyPart]]:
        for chunk in frames(30, 1000, bad_at=20):  # the preparation fails after many COPYs went through
            yield [CopyPart(table, chunk)]

    with pytest.raises(ValueError, match="frame 20 could not be made"), engine.begin() as conn:
        copy_batches(conn, batches())
    assert rows(engine) == []

    def refused() -> Iterator[list[CopyPart]]:
        yield [CopyPart(table, pd.DataFrame({"n": ["three"], "label": ["c"]}))]
        for chunk in frames(20, 1000):  # more than the queue holds: the preparing thread must not hang
            yield [CopyPart(table, chunk)]

    with pytest.raises(InvalidTextRepresentation, match="three"), engine.begin() as conn:
        copy_batches(conn, refused())
    assert rows(engine) == []


def test_copy_frame_keeps_carriage_returns_quotes_and_nulls(engine: Engine, table: str) -> None:
    frame = pd.DataFrame({"n": [1, 2, 3], "label": ["路灯\r损坏", 'say "hi", twice', None]})
    with engine.begin() as conn:
        assert copy_frame(conn, table, frame) == 3
    assert rows(engine) == [(1, "路灯\r损坏"), (2, 'say "hi", twice'), (3, None)]


def test_csv_bytes_writes_categories_and_durations_as_to_csv_and_quotes_their_carriage_returns() -> None:
    frame = pd.DataFrame(
        {
            "kind": pd.Categorical(["井盖", "路灯", None]),
            "took": pd.to_timedelta(["1 days 02:00:00", None, "00:30:00"]),
            "n": [1, 2, 3],
        }
    )
    assert csv_bytes(frame) == frame.to_csv(index=False, header=False, lineterminator="\n").encode("utf-8")
    assert csv_bytes(pd.DataFrame({"k": pd.Categorical(["a\rb", "c"]), "n": [1, 2]})) == b'"a\rb",1\nc,2\n'


def test_csv_bytes_quotes_a_carriage_return_beside_datetimes_too() -> None:
    at = pd.to_datetime(["2025-09-01T09:30:00+08:00", None, "2025-09-01T09:30:00.123456+08:00"], format="ISO8601")
    frame = pd.DataFrame({"note": ["a\rb", "c", None], "at": at})
    expected = frame.to_csv(index=False, header=False, lineterminator="\n").replace("a\rb", '"a\rb"')
    assert csv_bytes(frame) == expected.encode("utf-8")
