"""Server-side prepared statements (gisgrid.storage.prepared): binds, one PREPARE per connection, results."""

from __future__ import annotations

from sqlalchemy import Engine

from gisgrid.storage.prepared import Prepared, positional


def test_named_binds_become_numbered_in_order_of_first_use() -> None:
    sql, order = positional("SELECT :b::text, CAST(:a AS int), :b || 'x', '12:30'::time, :a_2")
    assert sql == "SELECT $1::text, CAST($2 AS int), $1 || 'x', '12:30'::time, $3"
    assert order == ["b", "a", "a_2"]


def test_a_statement_is_prepared_once_per_connection_and_returns_rows_as_dicts(engine: Engine) -> None:
    stmt = Prepared("gisgrid_test_series", "SELECT n, n * :k AS kn FROM generate_series(1, :upto) n")
    with engine.connect() as conn:
        assert stmt.rows(conn, {"k": 10, "upto": 3}) == [{"n": 1, "kn": 10}, {"n": 2, "kn": 20}, {"n": 3, "kn": 30}]
        assert stmt.rows(conn, {"upto": 1, "k": 2}) == [{"n": 1, "kn": 2}]
        prepared = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_prepared_statements WHERE name = 'gisgrid_test_series'"
        ).scalar_one()
        assert prepared == 1
        conn.rollback()
    engine.dispose()  # a new connection prepares it again
    with engine.connect() as conn:
        assert stmt.rows(conn, {"k": 1, "upto": 0}) == []


def test_outside_autocommit_it_joins_the_connections_transaction(engine: Engine) -> None:
    stmt = Prepared("gisgrid_test_insert", "INSERT INTO _prepared_probe VALUES (:v) RETURNING v")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS _prepared_probe (v int)")
    try:
        with engine.connect() as conn:
            assert stmt.rows(conn, {"v": 1}) == [{"v": 1}]
            assert conn.in_transaction()
            conn.rollback()  # undone with the transaction it joined
            assert stmt.rows(conn, {"v": 2}) == [{"v": 2}]
            conn.commit()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT array_agg(v) FROM _prepared_probe").scalar_one() == [2]
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE _prepared_probe")
