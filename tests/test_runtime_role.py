"""The web service's runtime role (review54 F1, 等保 2.0 最小权限): the service logs in as a role that reads and writes
rows and nothing else, apart from the owner role that migrates and imports.

On the embedded cluster that is its real ``gisgrid_app`` (made by ``db up``, password in ``pg_app.password``) and the
app is built from the embedded settings, as ``gisgrid serve`` builds it; on an external server (the suite run with
GISGRID_DATABASE_URL) a login role of the session's own, made and granted the same way, named by
GISGRID_APP_DATABASE_URL."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from api.main import create_app
from gisgrid.errors import ConfigError
from gisgrid.settings import Settings
from gisgrid.storage.cluster import APP_ROLE, Cluster
from gisgrid.storage.database import app_database_url, grant_runtime, make_engine, parse_url
from gisgrid.storage.roles import ensure_login_role
from tests.fixtures import load_small_district
from tests.test_tiles import district_tile, get_layer

GARBAGE = "06042"  # 暴露垃圾
DEPARTMENT = "990000000000000003"
CHINA = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(scope="session")
def app_settings(base_settings: Settings, server_url: URL, db_url: URL) -> Iterator[Settings]:
    """The settings ``gisgrid serve`` would run with on the session's database, its runtime role granted there by
    the code ``db up`` runs (:func:`grant_runtime`)."""
    owner = db_url.render_as_string(hide_password=False)
    made: str | None = None
    if base_settings.embedded:
        settings = Settings(data_dir=base_settings.data_path, db_name=db_url.database)
    else:
        made = f"gisgrid_app_{uuid.uuid4().hex[:10]}"
        password = secrets.token_urlsafe(18)
        admin = make_engine(server_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                ensure_login_role(conn, made, password)
        finally:
            admin.dispose()
        runtime = db_url.set(username=made, password=password).render_as_string(hide_password=False)
        settings = Settings(database_url=owner, app_database_url=runtime, data_dir=base_settings.data_path)
    grant_runtime(settings, db_url)
    yield settings
    if made is not None:
        engine = make_engine(db_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'DROP OWNED BY "{made}"')  # its grants in this database
                conn.exec_driver_sql(f'DROP ROLE "{made}"')
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def runtime_url(app_settings: Settings) -> URL:
    return app_database_url(app_settings)


def _connect(url: URL) -> psycopg2.extensions.connection:
    return psycopg2.connect(host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database)


def test_the_service_connects_as_the_runtime_role_and_the_command_line_as_the_owner(
    base_settings: Settings, app_settings: Settings, runtime_url: URL, db_url: URL, tmp_path: Path
) -> None:
    app = create_app(app_settings)
    try:
        assert app.state.engine.url == runtime_url  # the sync engine; the asyncpg pools are made from its URL
        assert app.state.tile_pool.url == app.state.intake_pool.url == runtime_url
    finally:
        app.state.engine.dispose()
    assert runtime_url.username != db_url.username and runtime_url.database == db_url.database
    if base_settings.embedded:
        cluster = Cluster(base_settings)
        assert runtime_url.username == APP_ROLE and runtime_url.password == cluster.app_password()
        assert cluster.app_password_file.stat().st_mode & 0o777 == 0o600
    # GISGRID_DATABASE_URL alone: the service uses its role, as before this setting.
    alone = Settings(database_url=db_url.render_as_string(hide_password=False), data_dir=tmp_path)
    assert app_database_url(alone) == db_url
    with pytest.raises(ConfigError) as refused:
        app_database_url(Settings(app_database_url="postgresql://app:x@db.internal/gisgrid", data_dir=tmp_path))
    assert refused.value.message == (
        "GISGRID_APP_DATABASE_URL is set without GISGRID_DATABASE_URL: it names the web service's role on an "
        "external server, next to GISGRID_DATABASE_URL (the owner role, which migrates); the embedded cluster has "
        "its own (gisgrid_app) — set both, or unset it"
    )
    with pytest.raises(ConfigError) as bad:
        parse_url("mysql://app@db/gisgrid", "GISGRID_APP_DATABASE_URL")
    assert bad.value.message.startswith("GISGRID_APP_DATABASE_URL must point at PostgreSQL/PostGIS, not 'mysql'")


#: What the runtime role tries, and PostgreSQL's refusal of each (the message's first line).
FORBIDDEN = [
    ("CREATE EXTENSION IF NOT EXISTS file_fdw", 'permission denied to create extension "file_fdw"'),
    ("COPY (SELECT 1) TO PROGRAM 'id'", "must be superuser or have privileges of the pg_execute_server_program role"),
    ("CREATE DATABASE gisgrid_never", "permission denied to create database"),
    ("CREATE ROLE gisgrid_never", "permission denied to create role"),
    ("DROP TABLE cases", "must be owner of table cases"),
    ("ALTER TABLE cases ADD COLUMN never int", "must be owner of table cases"),
    ("TRUNCATE cases", "permission denied for table cases"),
    ("CREATE TABLE never (a int)", "permission denied for schema public"),
    ("CREATE SEQUENCE never", "permission denied for schema public"),
    ("UPDATE alembic_version SET version_num = version_num", "permission denied for table alembic_version"),
    ("ALTER ROLE CURRENT_USER CREATEDB", "permission denied"),
    ("SET session_replication_role = replica", 'permission denied to set parameter "session_replication_role"'),
]


def test_the_runtime_role_may_read_and_write_rows_and_nothing_more(runtime_url: URL) -> None:
    conn = _connect(runtime_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin FROM pg_roles "
                "WHERE rolname = current_user"
            )
            assert cur.fetchone() == (False, False, False, False, False, True)
            cur.execute("SELECT count(*) FROM pg_auth_members WHERE member = current_user::regrole")
            assert cur.fetchone() == (0,)  # a member of no role (pg_read_server_files, pg_execute_server_program …)
            refusals = []
            for statement, _ in FORBIDDEN:
                try:
                    cur.execute(statement)
                    refusals.append("allowed")
                except psycopg2.Error as exc:
                    refusals.append(str(exc).splitlines()[0])
            cur.execute("SELECT count(*) FROM cases")  # rows it may read
            assert cur.fetchone() is not None
    finally:
        conn.close()
    for (statement, expected), got in zip(FORBIDDEN, refusals, strict=True):
        assert got.startswith(expected), (statement, got)


def test_what_the_owner_makes_later_is_the_runtime_roles_to_use_not_to_change(engine: Engine, runtime_url: URL) -> None:
    """A later migration's table and sequence (default privileges), and a year's case-number sequence made on its
    first report by the runtime role itself (a SECURITY DEFINER function): the owner's, usable by the service."""
    table, year = f"later_{uuid.uuid4().hex[:8]}", 2097
    with engine.begin() as conn:  # as a migration of a later version would
        conn.execute(text(f"CREATE TABLE {table} (id serial PRIMARY KEY, note text)"))
    conn = _connect(runtime_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {table} (note) VALUES ('a') RETURNING id")
            assert cur.fetchone() == (1,)
            cur.execute(f"UPDATE {table} SET note = 'b'; DELETE FROM {table}")
            cur.execute("SELECT next_case_no(%s), next_case_no(%s)", (year, year))
            assert cur.fetchone() == (f"{year}000001", f"{year}000002")
            cur.execute(
                "SELECT count(*) FROM pg_class WHERE relowner = current_user::regrole UNION ALL "
                "SELECT count(*) FROM pg_proc WHERE proowner = current_user::regrole UNION ALL "
                "SELECT count(*) FROM pg_namespace WHERE nspowner = current_user::regrole"
            )
            assert [r[0] for r in cur.fetchall()] == [0, 0, 0]  # it owns nothing
            with pytest.raises(psycopg2.Error, match=f"must be owner of table {table}"):
                cur.execute(f"DROP TABLE {table}")
    finally:
        conn.close()
    with engine.begin() as owner:
        made_by = owner.execute(
            text(f"SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'case_no_{year}'")
        )
        assert made_by.scalar_one() == engine.url.username
        owner.execute(text(f"DROP TABLE {table}"))
        owner.execute(text(f"DROP SEQUENCE case_no_{year}"))


def test_intake_action_list_component_tile_and_evaluation_as_the_runtime_role(
    clean_db: Engine, app_settings: Settings, runtime_url: URL, spot: tuple[float, float], tmp_path: Path
) -> None:
    """The service's round trip with every connection it makes logged in as the runtime role: a report (the year's
    first: its case-number sequence is made then), verify → file → dispatch, the list, a component, tiles, an
    evaluation and /health. The district was loaded by the owner, as `gisgrid boundaries import` does."""
    load_small_district(clean_db, tmp_path)
    x, y = spot
    who = {"X-Actor": quote("监督员甲"), "X-Role": "supervisor"}
    with clean_db.connect() as conn:  # sessions an earlier test's app left open in this database are not this app's
        started = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    with TestClient(create_app(app_settings)) as client:
        case = client.post("/cases", json={"class_code": GARBAGE, "lon": x, "lat": y, "datum": "cgcs2000"}, headers=who)
        assert case.status_code == 201, case.text
        cid, number = case.json()["id"], case.json()["case_no"]
        # The case number's year and the evaluation's month are those of the filing moment in China time, read from
        # the answer: a clock read beside it could fall on the other side of a midnight (review57 F3).
        filed_at = dt.datetime.fromisoformat(case.json()["created_at"]).astimezone(CHINA)
        assert number == f"{filed_at.year}000001"  # the year's first: its sequence made by the SECURITY DEFINER
        steps = [
            ("verify", {"version": 1}, who),
            ("file", {"version": 2}, {"X-Role": "shift_lead"}),
            ("dispatch", {"version": 3, "payload": {"department": DEPARTMENT}}, {"X-Role": "dispatcher"}),
        ]
        for action, body, headers in steps:
            r = client.post(f"/cases/{cid}/actions/{action}", json=body, headers=headers)
            assert r.status_code == 200, (action, r.text)
        listed = client.get("/cases", params={"state": "dispatched"})
        assert listed.status_code == 200, listed.text
        assert [(c["id"], c["state"]) for c in listed.json()["data"]] == [(cid, "dispatched")]
        component = client.post(
            "/components",
            json={"class_code": "01037", "lon": x, "lat": y, "datum": "cgcs2000"},
            headers={"X-Actor": "li", "X-Role": "data_admin"},
        )
        assert component.status_code == 201, component.text
        z, tx, ty = district_tile(clean_db)
        assert len(get_layer(client, "unit_grids", z, tx, ty)) > 0
        assert [f["properties"]["id"] for f in get_layer(client, "cases", z, tx, ty)] == [cid]
        month = filed_at.strftime("%Y-%m")
        # The evaluation judges as of now to the second (evaluation.default_as_of): let the dispatch's second pass.
        acted = dt.datetime.now(CHINA)
        while dt.datetime.now(CHINA).replace(microsecond=0) <= acted:
            time.sleep(0.02)
        evaluation = client.get("/evaluation", params={"period": month, "level": "district"})
        assert evaluation.status_code == 200, evaluation.text
        (row,) = evaluation.json()["data"]
        assert (row["subject"], row["reports"], row["filed"], row["dispatched"]) == ("419902", 1, 1, 1)
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ok", health.text
        with clean_db.connect() as conn:  # every session of the app, the asyncpg pools' included, is the role's
            sessions = conn.execute(
                text(
                    "SELECT application_name, usename FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name LIKE 'gisgrid%' "
                    "AND pid <> pg_backend_pid() AND backend_start >= :started"
                ),
                {"started": started},
            ).all()
    role = runtime_url.username
    # (The owner's sessions here are the test's own engine's: application_name "gisgrid" too.)
    assert {name for name, user in sessions if user == role} == {"gisgrid", "gisgrid-tiles", "gisgrid-intake"}
    assert {user for name, user in sessions if name != "gisgrid"} == {role}, sessions


@pytest.mark.parametrize("command", [["db", "up"], ["db", "upgrade"], ["serve"]])
def test_db_up_refuses_a_runtime_url_without_the_owners_as_serve_does(tmp_path: Path, command: list[str]) -> None:
    """review58 M7: `db up` (and `db upgrade`), which grant the runtime role, took it and `serve` then would not
    start; now each refuses it with serve's one line, exit 1, before anything is started or made."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GISGRID_")}
    env |= {
        "GISGRID_APP_DATABASE_URL": "postgresql://app:x@db.internal/gisgrid",
        "GISGRID_DATA_DIR": str(tmp_path / "d"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "gisgrid", *command], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert (result.returncode, result.stdout) == (1, ""), result.stderr
    assert result.stderr.splitlines() == [
        "error: GISGRID_APP_DATABASE_URL is set without GISGRID_DATABASE_URL: it names the web service's role on an "
        "external server, next to GISGRID_DATABASE_URL (the owner role, which migrates); the embedded cluster has "
        "its own (gisgrid_app) — set both, or unset it"
    ]
    made = sorted(p.name for p in (tmp_path / "d").iterdir()) if (tmp_path / "d").exists() else []
    assert made == (["photos"] if command == ["serve"] else [])  # no cluster made (serve makes its photo store first)
