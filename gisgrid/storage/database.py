"""Engine, sessions and database preparation for both deployment modes.

- embedded (no ``GISGRID_DATABASE_URL``): start the private cluster, create the database;
- external (``GISGRID_DATABASE_URL`` set): connect to that server, never start anything.

Either way PostGIS is enabled and migrations are applied. Connection problems become one-line
``DatabaseError``/``ConfigError`` messages that name the cause and the fix.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import psycopg2.extensions
from sqlalchemy import Connection, Engine, PoolProxiedConnection, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, ProgrammingError

from gisgrid.errors import ConfigError, DatabaseError
from gisgrid.settings import Settings
from gisgrid.storage.cluster import Cluster

Echo = Callable[[str], None]

#: What a user is told when the database aborted a transaction for a concurrent one: it is not an outage.
CONCURRENT_CONFLICT_TEXT = (
    "与其他操作冲突,本次未写入 / conflicted with a concurrent change: nothing was written; try again"
)
#: The command line's: a command may commit in steps, and only the step that met the conflict was rolled back.
CLI_CONFLICT_TEXT = (
    "与其他操作冲突 / conflicted with a concurrent change: the step it was in was rolled back (steps committed "
    "before it stay); run the command again"
)


def concurrent_conflict_cause(exc: BaseException) -> str | None:
    """Why the database aborted a transaction for a concurrent one — a deadlock (40P01), a serialization failure
    (40001): SQLSTATE class 40, psycopg2's ``TransactionRollbackError`` (an ``OperationalError``) and asyncpg's,
    bare or wrapped by SQLAlchemy — as a line for the log (the driver's first line and the code, no statement or
    parameters); None for any other error. Nothing of the aborted transaction was written."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        code = getattr(cur, "pgcode", None) or getattr(cur, "sqlstate", None)
        if isinstance(cur, _ROLLBACK_ERRORS) or (isinstance(code, str) and code.startswith("40")):
            first = (str(cur).strip().splitlines() or [""])[0]
            return f"{type(cur).__name__}{f' {code}' if code else ''}: {first or 'transaction rolled back'}"
        cur = getattr(cur, "orig", None) or cur.__cause__
    return None


_ROLLBACK_ERRORS = (psycopg2.extensions.TransactionRollbackError, asyncpg.exceptions.TransactionRollbackError)


def mask_password(raw: str) -> str:
    """``raw`` with the password of its ``user:password@`` part replaced by ``***``: for messages about a URL that
    could not be parsed (so SQLAlchemy cannot mask it)."""
    if "@" not in raw:
        return raw
    head, tail = raw.rsplit("@", 1)  # a password may hold "@"; the host may not
    scheme, sep, userinfo = head.partition("//")
    if not sep:
        return "***@" + tail  # no "//": where the user ends is unclear, so show none of it
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}//{user}:***@{tail}" if colon else raw


def parse_url(raw: str) -> URL:
    """Validate a PostgreSQL URL and force the project's driver (psycopg2)."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(
            f"GISGRID_DATABASE_URL is not a database URL: {mask_password(raw)!r}; "
            "expected e.g. postgresql://user:password@host:5432/dbname"
        ) from None
    except ValueError as exc:  # e.g. a port that is not a number (SQLAlchemy's int() fails)
        what = "has a port that is not a number" if "int()" in str(exc) else "is not a database URL"
        raise ConfigError(
            f"GISGRID_DATABASE_URL {what}: {mask_password(raw)!r}; "
            "expected e.g. postgresql://user:password@host:5432/dbname"
        ) from None
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise ConfigError(
            f"GISGRID_DATABASE_URL must point at PostgreSQL/PostGIS, not {url.get_backend_name()!r}: "
            "use postgresql://user:password@host:5432/dbname"
        )
    if not url.database:
        raise ConfigError("GISGRID_DATABASE_URL names no database: add /dbname at the end")
    return url.set(drivername="postgresql+psycopg2")


def make_engine(url: str | URL, **kw) -> Engine:
    if isinstance(url, str):
        url = parse_url(url)
    kw.setdefault("pool_pre_ping", True)
    kw["connect_args"] = {"connect_timeout": 5, "application_name": "gisgrid", **kw.get("connect_args", {})}
    return create_engine(url, plugins=["geoalchemy2"], **kw)


def psycopg2_connection(conn: Connection | PoolProxiedConnection) -> psycopg2.extensions.connection:
    """The psycopg2 connection under a SQLAlchemy one (the sync engines' driver), for what SQLAlchemy does not
    offer: COPY, server-side PREPARE."""
    raw = (conn.connection if isinstance(conn, Connection) else conn).dbapi_connection
    if not isinstance(raw, psycopg2.extensions.connection):
        raise TypeError(f"expected a psycopg2 connection, not {type(raw).__name__}")
    return raw


def asyncpg_connect_args(url: URL) -> dict[str, str | int | None]:
    """``asyncpg.connect``/``create_pool`` arguments naming the server and database of a SQLAlchemy URL (a socket
    directory given as ``?host=`` included)."""
    host = url.query.get("host")
    return {
        "host": (host if isinstance(host, str) else None) or url.host or "localhost",
        "port": url.port or 5432,
        "user": url.username,
        "password": url.password,
        "database": url.database,
    }


def describe_connect_error(url: URL, exc: BaseException) -> str:
    msg = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    low = msg.lower()
    if "password authentication failed" in low or "no password supplied" in low:
        return f"cannot log in to {where} as {url.username!r}: check user and password in GISGRID_DATABASE_URL"
    if "does not exist" in low and "database" in low:
        return (
            f"database {url.database!r} does not exist on {where}: create it "
            f"(createdb -h {url.host} -p {url.port or 5432} {url.database}) or fix GISGRID_DATABASE_URL"
        )
    if "role" in low and "does not exist" in low:
        return f"role {url.username!r} does not exist on {where}: fix the user in GISGRID_DATABASE_URL"
    if any(s in low for s in ("connection refused", "could not connect", "timeout", "could not translate")):
        return (
            f"cannot reach PostgreSQL at {where} ({msg}): start the server or fix the host/port in "
            "GISGRID_DATABASE_URL (unset it to use the embedded cluster)"
        )
    return f"cannot connect to PostgreSQL at {where}: {msg}"


def check_connection(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError) as exc:
        raise DatabaseError(describe_connect_error(engine.url, exc)) from None


def ensure_postgis(engine: Engine) -> str:
    """Enable PostGIS if the role may; return its version, or say exactly what to run."""
    with engine.connect() as conn:
        version = conn.execute(
            text("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
        ).scalar_one_or_none()
        if version:
            return str(version)
        available = conn.execute(
            text("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")
        ).scalar_one_or_none()
        if not available:
            server = conn.execute(text("SHOW server_version")).scalar_one()
            major = str(server).split(".")[0]
            raise DatabaseError(
                f"the server at {engine.url.host}:{engine.url.port or 5432} has no PostGIS installed "
                f"(PostgreSQL {server}): install postgresql-{major}-postgis-3 on the server, "
                f"then run CREATE EXTENSION postgis; in database {engine.url.database}"
            )
        try:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            conn.commit()
        except (ProgrammingError, DBAPIError):
            conn.rollback()
            raise DatabaseError(
                f"PostGIS is not enabled in database {engine.url.database!r} and role "
                f"{engine.url.username!r} may not enable it: ask an administrator to run "
                f"CREATE EXTENSION postgis; in that database"
            ) from None
        return str(conn.execute(text("SELECT extversion FROM pg_extension WHERE extname='postgis'")).scalar_one())


def create_database_if_missing(server_url: URL, dbname: str) -> bool:
    admin = make_engine(server_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": dbname}).scalar()
            if exists:
                return False
            conn.execute(text(f'CREATE DATABASE "{dbname}"'))
            return True
    except (OperationalError, DBAPIError) as exc:
        raise DatabaseError(describe_connect_error(admin.url, exc)) from None
    finally:
        admin.dispose()


def drop_database(server_url: URL, dbname: str) -> None:
    admin = make_engine(server_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
    finally:
        admin.dispose()


def database_url(settings: Settings) -> URL:
    """The URL of the project's database, without starting anything."""
    if settings.database_url:
        return parse_url(settings.database_url)
    return parse_url(Cluster(settings).url())


def prepare_database(settings: Settings, echo: Echo = print, *, migrate: bool = True) -> URL:
    """Bring the database to a usable state: (start the cluster,) create the db, PostGIS, migrations."""
    from gisgrid.storage import migrate as migrations

    if settings.database_url:
        url = parse_url(settings.database_url)
    else:
        cluster = Cluster(settings)
        cluster.up(echo)
        url = parse_url(cluster.url())
        if create_database_if_missing(url, settings.db_name):
            echo(f"created database {settings.db_name}")
    engine = make_engine(url)
    try:
        check_connection(engine)
        ensure_postgis(engine)
    finally:
        engine.dispose()
    if migrate:
        migrations.upgrade(url)
    return url
