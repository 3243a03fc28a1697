"""Deploying on an external server (review41): the intake and tile connections (asyncpg) honour the URL's TLS
parameters, a dropped database or refused login is a 503 on POST too, hosts starting together migrate in turn, a
read-only server and a password with an unencoded '@' are one-line refusals, CORS origins are checked."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import ssl
import sys
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import asyncpg
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.engine import URL, make_url

from api.main import create_app
from gisgrid.errors import ConfigError, DatabaseError
from gisgrid.settings import Settings
from gisgrid.storage import migrate
from gisgrid.storage.database import (
    asyncpg_connect_args,
    create_database_if_missing,
    drop_database,
    make_engine,
    prepare_database,
)
from tests.fixtures import load_small_district
from tests.test_ops_settings import run_main

READ_ONLY = "options=" + quote("-c default_transaction_read_only=on")


def _throwaway(server_url: URL) -> URL:
    name = f"rev41ops_{uuid.uuid4().hex[:10]}"
    create_database_if_missing(server_url, name)
    return server_url.set(database=name)


def _with_query(url: URL, query: str) -> str:
    return f"{url.render_as_string(hide_password=False)}?{query}"


# -- D1: the asyncpg pools honour sslmode, sslrootcert, options … -------------------------------------------------


def test_asyncpg_arguments_carry_the_urls_tls_parameters() -> None:
    url = make_url("postgresql://u:p@db.internal:6432/g?sslmode=verify-full&sslrootcert=/x/ca.pem&connect_timeout=9")
    args = asyncpg_connect_args(url)
    assert {k: v for k, v in args.items() if k != "dsn"} == {
        "host": "db.internal",
        "port": 6432,
        "user": "u",
        "password": "p",
        "database": "g",
    }
    dsn = urlparse(str(args["dsn"]))
    # connect_timeout and application_name are gisgrid's own on both drivers: not passed on
    assert (dsn.netloc, parse_qs(dsn.query)) == ("", {"sslmode": ["verify-full"], "sslrootcert": ["/x/ca.pem"]})
    assert asyncpg_connect_args(make_url("postgresql://u:p@db/g"))["dsn"] is None


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "sslmode=require&channel_binding=require",
            "GISGRID_DATABASE_URL parameter 'channel_binding' is not supported by the case-intake and tile connections "
            "(asyncpg): remove it, or use what both drivers honour: gsslib, krbsrvname, options, passfile, "
            "ssl_max_protocol_version, ssl_min_protocol_version, sslcert, sslcrl, sslkey, sslmode, sslnegotiation, "
            "sslpassword, sslrootcert, target_session_attrs",
        ),
        ("sslmode=require&sslmode=disable", "GISGRID_DATABASE_URL gives parameter 'sslmode' more than once: keep one"),
    ],
)
def test_a_url_parameter_asyncpg_cannot_honour_is_refused(query: str, message: str, tmp_path: Path) -> None:
    url = make_url(f"postgresql://u:p@db/g?{query}")
    with pytest.raises(ConfigError) as err:
        asyncpg_connect_args(url)
    assert err.value.message == message
    # and the app is not made with it (serve checks before it migrates anything, too)
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        create_app(Settings(database_url=str(url.render_as_string(hide_password=False)), data_dir=tmp_path))


def _asyncpg_read_only(url: str) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(**asyncpg_connect_args(make_url(url)), timeout=5)
        try:
            return await conn.fetchval("SELECT current_setting('transaction_read_only')")
        finally:
            await conn.close()

    # A thread of its own: a browser test's Playwright (sync API) may hold this worker's thread's event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def test_asyncpg_connects_with_the_urls_sslmode_and_options(db_url: URL) -> None:
    assert _asyncpg_read_only(_with_query(db_url, "sslmode=disable")) == "off"
    assert _asyncpg_read_only(_with_query(db_url, f"sslmode=disable&{READ_ONLY}")) == "on"
    # The test cluster has no TLS: sslmode=require must fail (it was dropped, and the login went in plain text).
    with pytest.raises((ConnectionError, ssl.SSLError, asyncpg.PostgresError)) as err:
        _asyncpg_read_only(_with_query(db_url, "sslmode=require"))
    assert "SSL" in str(err.value)


# -- D2: a dropped database is a 503 on POST /cases as on GET ------------------------------------------------------


def test_a_report_to_a_dropped_database_is_the_same_503_as_a_read(server_url: URL, tmp_path: Path) -> None:
    target = _throwaway(server_url)
    try:
        settings = Settings(database_url=target.render_as_string(hide_password=False), data_dir=tmp_path / "data")
        prepare_database(settings, echo=lambda _m: None, migrate=True)
        engine = make_engine(target)
        load_small_district(engine, tmp_path)
        engine.dispose()
        report = {"class_code": "06010", "lon": 113.6, "lat": 34.7}  # 暴露垃圾
        with TestClient(create_app(settings), raise_server_exceptions=False) as c:
            assert c.get("/cases").status_code == 200
            drop_database(server_url, target.database or "")
            read = c.get("/cases")
            posted = c.post("/cases", json=report)
        assert (read.status_code, posted.status_code) == (503, 503), posted.text
        for r in (read, posted):
            body = r.json()
            assert sorted(body) == ["detail", "error", "reason", "ref"]
            assert (body["error"], body["reason"]) == ("database_error", "database_unavailable")
            assert body["detail"] == f"database unavailable; try again later (reference {body['ref']})"
    finally:
        drop_database(server_url, target.database or "")


def test_a_refused_login_is_unavailable_not_a_fault() -> None:
    from api.deps import DATABASE_UNAVAILABLE
    from api.errors import DATABASE_DOWN

    refused = [
        asyncpg.InvalidCatalogNameError(),
        asyncpg.InvalidPasswordError(),
        asyncpg.InvalidAuthorizationSpecificationError(),
        asyncpg.CannotConnectNowError(),
        asyncpg.ConnectionFailureError(),
    ]
    assert all(isinstance(e, DATABASE_UNAVAILABLE) and isinstance(e, DATABASE_DOWN) for e in refused)
    assert not isinstance(asyncpg.UniqueViolationError(), DATABASE_UNAVAILABLE)


# -- D3: hosts starting together migrate in turn ------------------------------------------------------------------


def test_three_hosts_migrating_one_fresh_database_at_once_all_succeed(server_url: URL, tmp_path: Path) -> None:
    target = _throwaway(server_url)
    settings = Settings(database_url=target.render_as_string(hide_password=False), data_dir=tmp_path / "data")
    start = threading.Barrier(3, timeout=30)
    outcomes: list[object] = []

    def host() -> None:
        start.wait()
        try:
            outcomes.append(prepare_database(settings, echo=lambda _m: None, migrate=True).database)
        except Exception as exc:  # the outcome is what is checked
            outcomes.append(exc)

    threads = [threading.Thread(target=host) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert outcomes == [target.database] * 3
        assert migrate.current(target) == migrate.head()
    finally:
        drop_database(server_url, target.database or "")


def test_three_embedded_starts_creating_one_missing_database_at_once_create_it_once(server_url: URL) -> None:
    """The embedded cluster's ``db up`` creates the project's database when missing: three commands started together
    (``serve`` beside ``demo load``) all succeed, one of them having created it."""
    for _ in range(3):  # the race is a matter of timing: several rounds
        name = f"create_race_{uuid.uuid4().hex[:10]}"
        start = threading.Barrier(3, timeout=30)
        outcomes: list[object] = []

        def host(name: str = name, start: threading.Barrier = start, outcomes: list[object] = outcomes) -> None:
            start.wait()
            try:
                outcomes.append(create_database_if_missing(server_url, name))
            except Exception as exc:  # the outcome is what is checked
                outcomes.append(exc)

        threads = [threading.Thread(target=host) for _ in range(3)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert sorted(outcomes, key=str) == [False, False, True], outcomes
        finally:
            drop_database(server_url, name)


# -- D4: a read-only server is one line at start --------------------------------------------------------------------


def test_serve_on_a_read_only_database_is_one_line_and_exit_1(
    db_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _with_query(db_url, READ_ONLY)
    env = {"GISGRID_DATABASE_URL": url, "GISGRID_DATA_DIR": str(tmp_path / "data")}
    expected = (
        f"error: the database {db_url.database!r} at {db_url.host}:{db_url.port} is read-only "
        "(default_transaction_read_only is on): gisgrid writes to it; point GISGRID_DATABASE_URL at the primary "
        "server\n"
    )
    assert run_main(monkeypatch, capsys, "serve", "--port", "1", **env) == (1, expected)
    assert run_main(monkeypatch, capsys, "db", "up", **env) == (1, expected)


def test_a_read_only_database_needing_migrations_is_refused_by_every_command(server_url: URL, tmp_path: Path) -> None:
    target = _throwaway(server_url)
    try:
        url = _with_query(target, READ_ONLY)
        settings = Settings(database_url=url, data_dir=tmp_path)
        with pytest.raises(DatabaseError, match=r"is read-only \(default_transaction_read_only is on\)"):
            prepare_database(settings, echo=lambda _m: None, migrate=True)  # db up, serve, demo load
        with pytest.raises(DatabaseError, match=r"\[schema_behind\]: run gisgrid db up after a backup"):
            prepare_database(settings, echo=lambda _m: None)  # any other command: behind, whatever the server
    finally:
        drop_database(server_url, target.database or "")


# -- D5: an unencoded '@' in the password ---------------------------------------------------------------------------


def test_an_unencoded_at_in_the_password_is_refused_without_echoing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "GISGRID_DATABASE_URL": "postgresql://gisgrid:Gg@2024City!@db.internal:5432/g",
        "GISGRID_DATA_DIR": str(tmp_path / "data"),
    }
    expected = (
        "error: GISGRID_DATABASE_URL: the part before the host holds an unencoded '@' (in the password?): "
        "percent-encode special characters in the user and password (@ as %40, : as %3A, / as %2F, % as %25), "
        "e.g. postgresql://gisgrid:p%40ss@db.internal:5432/gisgrid\n"
    )
    for command in (["db", "status"], ["db", "up"]):
        code, err = run_main(monkeypatch, capsys, *command, **env)
        assert (code, err) == (1, expected)
        assert "2024City" not in err and "Gg" not in err


# -- U4: the hint for a missing database -----------------------------------------------------------------------------


def test_the_missing_database_hint_names_the_user(server_url: URL, tmp_path: Path) -> None:
    url = server_url.set(database="rev41ops_no_such_db")
    settings = Settings(database_url=url.render_as_string(hide_password=False), data_dir=tmp_path)
    with pytest.raises(DatabaseError) as err:
        prepare_database(settings, echo=lambda _m: None)
    assert err.value.message == (
        f"database 'rev41ops_no_such_db' does not exist on {url.host}:{url.port}: create it "
        f"(createdb -h {url.host} -p {url.port} -U {url.username} rev41ops_no_such_db) or fix GISGRID_DATABASE_URL"
    )


def test_db_up_help_says_it_creates_the_database_only_in_the_embedded_cluster() -> None:
    from typer.testing import CliRunner

    from gisgrid.cli import app

    out = " ".join(CliRunner().invoke(app, ["db", "up", "--help"]).output.split())
    assert "Start the private cluster and create the database in it, or with GISGRID_DATABASE_URL use that" in out
    assert "database (it must exist: createdb)" in out


# -- U3: CORS origins are checked like the allowed hosts --------------------------------------------------------------


@pytest.mark.parametrize("origin", ["app2.example.cn", "https://app.example.cn/portal", "https://*.example.cn"])
def test_a_cors_origin_without_scheme_or_with_a_path_stops_the_start(
    origin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"GISGRID_CORS_ORIGINS": f"https://ok.example.cn,{origin}", "GISGRID_DATA_DIR": str(tmp_path / "data")}
    expected = (
        f"error: GISGRID_CORS_ORIGINS: CORS origin {origin!r} must be an origin like https://app.example.cn or "
        "http://10.1.2.3:8080 (scheme://host[:port]: no path, query or wildcard) or * for any\n"
    )
    assert run_main(monkeypatch, capsys, "db", "status", **env) == (1, expected)
    # the same words from the setting itself (the part after the variable's name)
    said = expected.removeprefix("error: GISGRID_CORS_ORIGINS: ").rstrip("\n")
    with pytest.raises(ValidationError, match=re.escape(f"cors_origins\n  Value error, {said} [type=value_error")):
        Settings(cors_origins=[origin])


def test_cors_origins_are_kept_as_browsers_send_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GISGRID_CORS_ORIGINS", "HTTPS://App.Example.cn/, https://b.example.cn:443, http://[::1]:8080")
    assert Settings().cors_origins == ["https://app.example.cn", "https://b.example.cn", "http://[::1]:8080"]
    monkeypatch.setenv("GISGRID_CORS_ORIGINS", "*")
    assert Settings().cors_origins == ["*"]


# -- review44 U3: only the commands that set a database up create a missing one ---------------------------------------


def _exists(server_url: URL, name: str) -> bool:
    from sqlalchemy import text

    admin = make_engine(server_url.set(database="postgres"))
    try:
        with admin.connect() as conn:
            return bool(conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar())
    finally:
        admin.dispose()


def test_a_mistyped_db_name_is_refused_by_a_read_command_and_made_by_db_up(
    base_settings: Settings, server_url: URL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped GISGRID_DB_NAME made and migrated an empty database and `cases list` answered '0 case(s)'."""
    if base_settings.database_url:
        pytest.skip("the embedded cluster's behaviour: the suite runs on an external server")
    name = f"rev44_{uuid.uuid4().hex[:10]}"
    env = {"GISGRID_DATA_DIR": str(base_settings.data_path), "GISGRID_DB_NAME": name}
    try:
        for command in (["cases", "list", "--limit", "1"], ["grids", "export", "--out", "/tmp/never.gpkg"]):
            assert run_main(monkeypatch, capsys, *command, **env) == (
                1,
                f"error: 数据库 {name} 不存在 / database {name!r} does not exist in the embedded cluster "
                f"(GISGRID_DB_NAME={name}): create it with gisgrid db up, or fix GISGRID_DB_NAME; nothing created\n",
            )
        assert not _exists(server_url, name)
        said: list[str] = []
        settings = Settings(data_dir=base_settings.data_path, db_name=name)
        url = prepare_database(
            settings, echo=said.append, migrate=True, create=True
        )  # what db up, demo load and serve do
        assert (url.database, said[-1:], _exists(server_url, name)) == (name, [f"created database {name}"], True)
        assert prepare_database(settings, echo=lambda _m: None).database == name  # now there: used as it is
    finally:
        drop_database(server_url, name)


# -- review50 F6: db status names the migration — the check on a restored backup ------------------------------------


def test_db_status_says_whether_the_databases_migration_is_up_to_date_behind_or_ahead(
    server_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/operations.md's backup test runs `db status` on the restored copy for its revision; it printed only the
    URL, the same for a copy one migration behind."""
    from sqlalchemy import text

    url = _throwaway(server_url)
    shown = url.render_as_string(hide_password=True)
    env = {"GISGRID_DATABASE_URL": url.render_as_string(hide_password=False), "GISGRID_DATA_DIR": str(tmp_path)}

    def status() -> tuple[object, str]:
        from gisgrid.cli import main

        with monkeypatch.context() as m:
            for key in [k for k in os.environ if k.startswith("GISGRID_")]:
                m.delenv(key)
            for key, value in env.items():
                m.setenv(key, value)
            m.setattr(sys, "argv", ["gisgrid", "db", "status"])
            capsys.readouterr()
            code: object = 0
            try:
                main()
            except SystemExit as exit_:
                code = exit_.code
        said = capsys.readouterr()
        assert said.err == ""
        return code, said.out

    try:
        head = migrate.head()
        assert status() == (
            0,
            f"external server: {shown}\n结构版本 none,落后于本程序的 {head}(待迁移) / migration "
            f"none: behind this code's {head} (pending) — gisgrid db up migrates it, after a backup\n",
        )
        migrate.upgrade(url, "0020")
        assert status()[1].endswith(
            f"结构版本 0020,落后于本程序的 {head}(待迁移) / migration 0020: behind this "
            f"code's {head} (pending) — gisgrid db up migrates it, after a backup\n"
        )
        migrate.upgrade(url)
        assert status() == (0, f"external server: {shown}\n结构版本 {head},为最新 / migration {head}: up to date\n")
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
        finally:
            engine.dispose()
        assert status()[1].endswith(
            f"结构版本 0999,比本程序新(本程序只认识到 {head}) / migration 0999: newer than "
            "this code (it knows up to " + head + ") — run the gisgrid version that migrated it\n"
        )
    finally:
        drop_database(server_url, url.database or "")
    code, out = status()  # gone: not reachable, exit 1
    assert code == 1 and out.startswith(f"external server: {shown}\n数据库无法连接 / database not reachable: database ")
