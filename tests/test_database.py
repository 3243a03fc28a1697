"""Connecting to a server: the GISGRID_DATABASE_URL path and every way it can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from gisgrid.errors import ConfigError, DatabaseError
from gisgrid.settings import Settings
from gisgrid.storage import migrate
from gisgrid.storage.database import drop_database, make_engine, parse_url, prepare_database
from tests.conftest import new_database


def test_database_url_is_used_and_no_cluster_is_started(server_url: URL, tmp_path: Path) -> None:
    target = new_database(server_url, "gisgrid_urltest")
    try:
        settings = Settings(database_url=target.render_as_string(hide_password=False), data_dir=tmp_path / "d")
        url = prepare_database(settings, echo=lambda _m: None, migrate=True)
        assert url.database == target.database
        assert not (tmp_path / "d" / "pg").exists()  # no embedded cluster was made
        engine = make_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT extname FROM pg_extension WHERE extname='postgis'")).scalar() == (
                "postgis"
            )
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == migrate.head()
        engine.dispose()
    finally:
        drop_database(server_url, target.database or "")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("not a url", "is not a database URL"),
        ("mysql://u:p@localhost/x", "must point at PostgreSQL/PostGIS"),
        ("postgresql://u:p@localhost", "names no database"),
    ],
)
def test_malformed_database_url_is_refused(raw: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        parse_url(raw)


def test_unreachable_server_gives_one_line_cause_and_fix(unreachable_settings: Settings) -> None:
    port = parse_url(unreachable_settings.database_url or "").port
    with pytest.raises(DatabaseError) as err:
        prepare_database(unreachable_settings, echo=lambda _m: None)
    msg = err.value.message
    assert f"cannot reach PostgreSQL at 127.0.0.1:{port}" in msg
    assert "GISGRID_DATABASE_URL" in msg
    assert "\n" not in msg


def test_missing_database_is_named(server_url: URL, tmp_path: Path) -> None:
    url = server_url.set(database="gisgrid_no_such_db")
    settings = Settings(database_url=url.render_as_string(hide_password=False), data_dir=tmp_path)
    with pytest.raises(DatabaseError, match="database 'gisgrid_no_such_db' does not exist"):
        prepare_database(settings, echo=lambda _m: None)


def test_role_that_may_not_create_postgis_gets_the_command_to_run(server_url: URL, tmp_path: Path) -> None:
    admin = make_engine(server_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    target = new_database(server_url, "gisgrid_nopostgis")
    with admin.connect() as conn:
        conn.execute(text("DROP ROLE IF EXISTS gisgrid_plain"))
        # With a password: a cluster made by `gisgrid db up` asks every login for one (scram-sha-256).
        conn.execute(text("CREATE ROLE gisgrid_plain LOGIN NOSUPERUSER PASSWORD 'plain-pw'"))
        conn.execute(text(f'GRANT ALL ON DATABASE "{target.database}" TO gisgrid_plain'))
    try:
        url = target.set(username="gisgrid_plain", password="plain-pw")
        settings = Settings(database_url=url.render_as_string(hide_password=False), data_dir=tmp_path)
        with pytest.raises(DatabaseError) as err:
            prepare_database(settings, echo=lambda _m: None, migrate=True)
        assert "PostGIS is not enabled" in err.value.message
        assert "CREATE EXTENSION postgis;" in err.value.message
        # nothing was half-created: no extension, no migration table
        check = make_engine(target)
        with check.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM pg_extension WHERE extname='postgis'")).scalar() == 0
            assert conn.execute(text("SELECT to_regclass('alembic_version')")).scalar() is None
        check.dispose()
    finally:
        drop_database(server_url, target.database or "")
        with admin.connect() as conn:
            conn.execute(text("DROP ROLE IF EXISTS gisgrid_plain"))
        admin.dispose()


def test_a_failed_statement_names_its_sql_but_not_its_bound_values(engine: Engine) -> None:
    """review54 F6: SQLAlchemy's error text keeps the SQL, not the bound values (``hide_parameters``; a case's
    reporter, description and address are personal data). PostgreSQL's own message may still quote them (psycopg2
    binds on the client): the API's 500 log leaves it out (tests/test_hardening_headers.py)."""
    from sqlalchemy.exc import DataError

    secret = "2026-01-01T00:00:00+23:59 张三"
    with engine.connect() as conn, pytest.raises(DataError) as caught:
        conn.execute(text("SELECT CAST(:when AS timestamptz)"), {"when": secret})
    said = str(caught.value)
    assert "SELECT CAST(%(when)s AS timestamptz)" in said
    assert "[SQL parameters hidden due to hide_parameters=True]" in said
    assert "[parameters:" not in said
