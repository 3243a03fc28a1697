"""Engine, sessions and database preparation for both deployment modes.

- embedded (no ``GISGRID_DATABASE_URL``): start the private cluster, create the database;
- external (``GISGRID_DATABASE_URL`` set): connect to that server, never start anything.

Either way PostGIS is enabled and migrations are applied by the commands that set a database up (`db up`, `serve`,
`demo load`); every other command refuses a schema behind or ahead of this code. Connection problems become one-line
``DatabaseError``/``ConfigError`` messages that name the cause and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import asyncpg
import psycopg2.extensions
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, PoolProxiedConnection, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, ProgrammingError

from gisgrid.errors import ConfigError, DatabaseError
from gisgrid.settings import Settings
from gisgrid.storage.cluster import APP_ROLE, Cluster

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


#: What asyncpg raises when the database cannot be reached, takes no work (down, restarting, out of connections)
#: or refuses the login (the database dropped or renamed, a rotated password, the role gone or not allowed): the
#: service answers 503, as psycopg2's ``OperationalError`` for the same causes. Any other database error is a fault
#: of the statement.
ASYNCPG_UNAVAILABLE: tuple[type[Exception], ...] = (
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # CannotConnectNowError (starting up), AdminShutdownError …
    asyncpg.exceptions.InsufficientResourcesError,  # TooManyConnectionsError …
    asyncpg.exceptions.InvalidCatalogNameError,  # the database is gone
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,  # InvalidPasswordError, a role refused by pg_hba
)

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


def parse_url(raw: str, setting: str = "GISGRID_DATABASE_URL") -> URL:
    """Validate a PostgreSQL URL and force the project's driver (psycopg2); ``setting`` names where it came from
    in the messages."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(
            f"{setting} is not a database URL: {mask_password(raw)!r}; "
            "expected e.g. postgresql://user:password@host:5432/dbname"
        ) from None
    except ValueError as exc:  # e.g. a port that is not a number (SQLAlchemy's int() fails)
        what = "has a port that is not a number" if "int()" in str(exc) else "is not a database URL"
        raise ConfigError(
            f"{setting} {what}: {mask_password(raw)!r}; expected e.g. postgresql://user:password@host:5432/dbname"
        ) from None
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise ConfigError(
            f"{setting} must point at PostgreSQL/PostGIS, not {url.get_backend_name()!r}: "
            "use postgresql://user:password@host:5432/dbname"
        )
    if url.host and "@" in url.host:
        # The password (or user) holds an unencoded "@": the URL splits at the wrong one and part of the password
        # would be shown as the host in every message. Nothing of the URL is echoed.
        raise ConfigError(
            f"{setting}: the part before the host holds an unencoded '@' (in the password?): "
            "percent-encode special characters in the user and password (@ as %40, : as %3A, / as %2F, % as %25), "
            "e.g. postgresql://gisgrid:p%40ss@db.internal:5432/gisgrid"
        )
    if not url.database:
        raise ConfigError(f"{setting} names no database: add /dbname at the end")
    return url.set(drivername="postgresql+psycopg2")


#: TCP keepalives on every connection, as libpq's URL parameters name them (a URL's own values win): a server
#: gone silent (a firewall dropping packets, a host lost) is noticed after about idle + interval × count = 60 s,
#: not the kernel's ~15 min of retransmissions while a request holds its worker.
KEEPALIVE_DEFAULTS: dict[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def keepalive_options(url: URL) -> dict[str, int]:
    """:data:`KEEPALIVE_DEFAULTS` with the URL's own ``keepalives*`` values: whole numbers, else ConfigError."""
    options = dict(KEEPALIVE_DEFAULTS)
    for key in KEEPALIVE_DEFAULTS:
        value = url.query.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip().isdigit():
            raise ConfigError(f"GISGRID_DATABASE_URL parameter {key!r} must be a whole number of seconds (or 0/1)")
        options[key] = int(value)
    return options


def make_engine(url: str | URL, *, statement_timeout_s: float = 0, **kw) -> Engine:
    """A psycopg2 engine on ``url``: connect timeout, TCP keepalives (:data:`KEEPALIVE_DEFAULTS`, the URL's own
    win) and, when ``statement_timeout_s`` is above 0, a server-side ``statement_timeout`` on every session (the
    web service's: a statement — or its wait for a lock — running past it is cancelled, and the request refused,
    instead of holding a worker; the command line's bulk imports and migrations take none). Bound values are left
    out of error texts (``hide_parameters``)."""
    if isinstance(url, str):
        url = parse_url(url)
    kw.setdefault("pool_pre_ping", True)
    # A failed statement's error text keeps its SQL but not its bound values: for a case those are the reporter's
    # name, the description and the address (personal data), and the error is logged (review54 F6).
    kw.setdefault("hide_parameters", True)
    keepalives = {k: v for k, v in KEEPALIVE_DEFAULTS.items() if k not in url.query}
    connect_args: dict[str, object] = {"connect_timeout": 5, "application_name": "gisgrid", **keepalives}
    if statement_timeout_s > 0:
        # Added to the URL's own options (connect_args would replace them).
        given = url.query.get("options")
        own = f"-c statement_timeout={round(statement_timeout_s * 1000)}"
        connect_args["options"] = f"{given} {own}" if isinstance(given, str) and given else own
    kw["connect_args"] = {**connect_args, **kw.get("connect_args", {})}
    return create_engine(url, plugins=["geoalchemy2"], **kw)


def timeout_cause(exc: BaseException) -> str | None:
    """Why, when ``exc`` (or the error it wraps) is a statement the database cancelled — ``statement_timeout``
    (SQLSTATE 57014, psycopg2's or asyncpg's) — or one asyncpg gave up waiting for (``command_timeout``: the
    server answers nothing); None for any other error. A line for the log, without the statement."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, psycopg2.extensions.QueryCanceledError | asyncpg.exceptions.QueryCanceledError):
            first = (str(cur).strip().splitlines() or [""])[0]
            return f"{type(cur).__name__} 57014: {first or 'statement cancelled'}"
        if isinstance(cur, TimeoutError) and not isinstance(cur, asyncpg.PostgresError):
            return "no answer from the database within the command timeout (asyncpg command_timeout)"
        cur = getattr(cur, "orig", None) or cur.__cause__
    return None


def psycopg2_connection(conn: Connection | PoolProxiedConnection) -> psycopg2.extensions.connection:
    """The psycopg2 connection under a SQLAlchemy one (the sync engines' driver), for what SQLAlchemy does not
    offer: COPY, server-side PREPARE."""
    raw = (conn.connection if isinstance(conn, Connection) else conn).dbapi_connection
    if not isinstance(raw, psycopg2.extensions.connection):
        raise TypeError(f"expected a psycopg2 connection, not {type(raw).__name__}")
    return raw


#: libpq URL parameters asyncpg honours as libpq does (read from its DSN): TLS, Kerberos, the session's
#: target and ``options`` (sent to the server as the same startup parameter libpq sends).
ASYNCPG_URL_PARAMETERS = frozenset(
    {
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslcrl",
        "sslpassword",
        "sslnegotiation",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "passfile",
        "target_session_attrs",
        "krbsrvname",
        "gsslib",
        "options",
    }
)
#: Parameters gisgrid sets itself on both drivers (psycopg2's connect_args, asyncpg's arguments win over the URL).
_OVERRIDDEN_URL_PARAMETERS = frozenset({"application_name", "connect_timeout"})
#: libpq's TCP keepalive parameters: psycopg2 takes them from the URL, and the asyncpg pools set them on their
#: sockets themselves (api.deps.AsyncPool), as asyncpg has no such option.


def asyncpg_connect_args(url: URL) -> dict[str, str | int | None]:
    """``asyncpg.connect``/``create_pool`` arguments naming the server and database of a SQLAlchemy URL (a socket
    directory given as ``?host=`` included), and a ``dsn`` carrying the URL's other libpq parameters (sslmode,
    sslrootcert, options …), which asyncpg reads as libpq does. ConfigError for a parameter asyncpg cannot honour:
    the intake and tile pools would otherwise connect without it (a security setting silently dropped). The
    ``keepalives*`` parameters are checked here and applied by the pools to their sockets."""
    keepalive_options(url)
    host = url.query.get("host")
    passed: dict[str, str] = {}
    for key, value in url.query.items():
        if key in ("host", *_OVERRIDDEN_URL_PARAMETERS, *KEEPALIVE_DEFAULTS):
            continue
        if key not in ASYNCPG_URL_PARAMETERS:
            raise ConfigError(
                f"GISGRID_DATABASE_URL parameter {key!r} is not supported by the case-intake and tile connections "
                f"(asyncpg): remove it, or use what both drivers honour: {', '.join(sorted(ASYNCPG_URL_PARAMETERS))}"
            )
        if not isinstance(value, str):  # given twice: which one libpq and asyncpg take differs
            raise ConfigError(f"GISGRID_DATABASE_URL gives parameter {key!r} more than once: keep one")
        passed[key] = value
    return {
        # Host, user, password and database are arguments (they win over the dsn's); the dsn has the rest only.
        "dsn": f"postgresql://?{urlencode(passed)}" if passed else None,
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
        as_user = f" -U {url.username}" if url.username else ""  # else createdb logs in as the OS user
        return (
            f"database {url.database!r} does not exist on {where}: create it "
            f"(createdb -h {url.host or 'localhost'} -p {url.port or 5432}{as_user} {url.database}) "
            "or fix GISGRID_DATABASE_URL"
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


#: The advisory lock (in the server's ``postgres`` database) held around "create the database if missing": two
#: gisgrid starting at once would both see it missing, and the second CREATE DATABASE would fail.
CREATE_DATABASE_LOCK_KEY = 0x6769_7367_7269_6463  # "gisgridc"


def create_database_if_missing(server_url: URL, dbname: str) -> bool:
    admin = make_engine(server_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": CREATE_DATABASE_LOCK_KEY})
            try:
                exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": dbname}).scalar()
                if exists:
                    return False
                conn.execute(text(f'CREATE DATABASE "{dbname}"'))
                return True
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": CREATE_DATABASE_LOCK_KEY})
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
    """The URL of the project's database as its owner role (migrations, the command line), without starting
    anything."""
    if settings.database_url:
        return parse_url(settings.database_url)
    return parse_url(Cluster(settings).url())


def check_app_database_url(settings: Settings) -> None:
    """``GISGRID_APP_DATABASE_URL`` without ``GISGRID_DATABASE_URL`` refused (ConfigError): by ``serve``
    (:func:`app_database_url`) and by ``db up`` / ``db upgrade``, which grant the runtime role — so the command run
    first says it, not the next ``serve`` (review58 M7)."""
    if settings.app_database_url and not settings.database_url:
        raise ConfigError(
            "GISGRID_APP_DATABASE_URL is set without GISGRID_DATABASE_URL: it names the web service's role on an "
            "external server, next to GISGRID_DATABASE_URL (the owner role, which migrates); the embedded cluster "
            "has its own (gisgrid_app) — set both, or unset it"
        )


def app_database_url(settings: Settings) -> URL:
    """The URL the web service connects with (review54 F1): the embedded cluster's runtime role
    (:data:`~gisgrid.storage.cluster.APP_ROLE`); with ``GISGRID_DATABASE_URL``, ``GISGRID_APP_DATABASE_URL`` when
    given, else the owner's as before."""
    check_app_database_url(settings)
    if settings.database_url:
        if settings.app_database_url:
            return parse_url(settings.app_database_url, "GISGRID_APP_DATABASE_URL")
        return parse_url(settings.database_url)
    return parse_url(Cluster(settings).app_url())


def runtime_role(settings: Settings) -> str | None:
    """The role :func:`app_database_url` logs in as when it is not the owner's (whose grants the owner keeps
    with :func:`gisgrid.storage.roles.grant_runtime_role`), else None."""
    if not settings.database_url:
        return APP_ROLE
    if not settings.app_database_url:
        return None
    app = app_database_url(settings).username
    return app if app and app != parse_url(settings.database_url).username else None


def _role_powers(conn: Connection, role: str) -> bool | None:
    """Whether ``role`` may more than log in (superuser, CREATEDB, CREATEROLE, BYPASSRLS); None: no such role."""
    found = conn.execute(
        text("SELECT rolsuper OR rolcreatedb OR rolcreaterole OR rolbypassrls FROM pg_roles WHERE rolname = :r"),
        {"r": role},
    ).scalar_one_or_none()
    return None if found is None else bool(found)


def grant_runtime(settings: Settings, url: URL, echo: Echo = print) -> None:
    """Give the runtime role (:func:`runtime_role`) its privileges in the database of ``url`` (the owner's), after
    the migrations; nothing when the service uses the owner role. A role named by GISGRID_APP_DATABASE_URL that
    the server does not have is refused naming what to run; one with more than a login is warned about."""
    from gisgrid.storage.roles import grant_runtime_role

    role = runtime_role(settings)
    if role is None:
        return
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            found = _role_powers(conn, role)
            if found is None and settings.embedded:  # db upgrade on an earlier version's cluster
                Cluster(settings).ensure_app_role(echo)
                found = _role_powers(conn, role)
            if found is None:
                raise DatabaseError(
                    f"role {role!r} of GISGRID_APP_DATABASE_URL does not exist on "
                    f"{url.host or 'localhost'}:{url.port or 5432}: create it as a plain login "
                    f"(CREATE ROLE {role} LOGIN PASSWORD '…'; docs/operations.md), then run gisgrid db up again"
                )
            if found:
                echo(
                    f"warning: the web service's role {role!r} (GISGRID_APP_DATABASE_URL) is a superuser or may create "
                    "databases, roles or bypass row security: it needs none of that (docs/operations.md)"
                )
            grant_runtime_role(conn, role)
    finally:
        engine.dispose()


#: The advisory lock (per database) held while PostGIS is enabled and migrations run: hosts starting together
#: on one database migrate in turn, the later ones finding it done.
MIGRATION_LOCK_KEY = 0x6769_7367_7269_64  # "gisgrid"


@contextmanager
def migration_lock(engine: Engine, echo: Echo = print) -> Iterator[None]:
    """Hold :data:`MIGRATION_LOCK_KEY` on a connection of its own for the block (waiting, with a line, while another
    gisgrid holds it). A session lock: released when the block ends or the connection is lost."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY}).scalar()
        if not got:
            echo(f"waiting for another gisgrid to finish migrating database {engine.url.database}")
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})


def read_only_cause(engine: Engine) -> str | None:
    """Why the server takes no writes on this URL's sessions — a hot standby, or default_transaction_read_only
    (set on the server, the database, the role or in the URL's options) — else None."""
    with engine.connect() as conn:
        standby, read_only = conn.execute(
            text("SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'")
        ).one()
    if standby:
        return "a hot standby (replica)"
    if read_only:
        return "default_transaction_read_only is on"
    return None


def read_only_error(url: URL, cause: str) -> DatabaseError:
    return DatabaseError(
        f"the database {url.database!r} at {url.host or 'localhost'}:{url.port or 5432} is read-only ({cause}): "
        "gisgrid writes to it; point GISGRID_DATABASE_URL at the primary server"
    )


def database_exists(server_url: URL, dbname: str) -> bool:
    admin = make_engine(server_url.set(database="postgres"))
    try:
        with admin.connect() as conn:
            return bool(conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": dbname}).scalar())
    except (OperationalError, DBAPIError) as exc:
        raise DatabaseError(describe_connect_error(admin.url, exc)) from None
    finally:
        admin.dispose()


def missing_database_error(dbname: str) -> DatabaseError:
    return DatabaseError(
        f"数据库 {dbname} 不存在 / database {dbname!r} does not exist in the embedded cluster "
        f"(GISGRID_DB_NAME={dbname}): create it with gisgrid db up, or fix GISGRID_DB_NAME; nothing created"
    )


def refuse_cluster_not_up(cluster: Cluster) -> None:
    """Refuse a command that only uses the embedded cluster when there is none or it is stopped, naming
    ``gisgrid db up`` — only the commands that set a database up start one."""
    if not cluster.initialised:
        raise DatabaseError(
            f"没有嵌入式数据库集群 / there is no embedded cluster in {cluster.settings.data_path} "
            "(GISGRID_DATA_DIR; GISGRID_DATABASE_URL is not set): make one with gisgrid db up; nothing started"
        )
    if not cluster.running():
        raise DatabaseError(
            f"嵌入式数据库集群已停止 / the embedded cluster in {cluster.datadir} is stopped: start it with "
            "gisgrid db up (only db up, serve and demo load start it — it may have been stopped for a backup or "
            "a restore); nothing started"
        )


def prepare_database(
    settings: Settings,
    echo: Echo = print,
    *,
    migrate: bool = False,
    check: bool = True,
    writable: bool = False,
    create: bool = False,
) -> URL:
    """Bring the database to a usable state: (start the cluster,) create the db, PostGIS, migrations. Only
    ``create`` starts (or makes) the embedded cluster; any other command refuses one that is missing or stopped.
    ``migrate``: apply pending migrations — only the commands that set a database up or upgrade it (``db up``,
    ``serve``, ``demo load``), after which the operations guide's backup comes first; every other command
    (``check``) refuses a schema that is behind or ahead of this code in one line (review46 F5: a clerk's
    ``cases list`` after a ``git pull`` migrated production with no backup and none of ``db up``'s warnings).
    ``check=False`` and no ``migrate``: PostGIS only, the schema left as it is (benchmarks that migrate themselves).
    ``writable``: refuse a read-only server (``serve``, ``db up``); it is refused anyway when it would have to be
    written (PostGIS missing, migrations pending). ``create``: make a missing database of the embedded cluster
    (the commands that set one up: ``db up``, ``demo load``, ``serve``); else a missing one is refused, naming
    ``gisgrid db up`` — a mistyped GISGRID_DB_NAME made and migrated an empty database and a read command
    answered "0 case(s)" (review44 U3)."""
    from gisgrid.storage import migrate as migrations

    if settings.database_url:
        url = parse_url(settings.database_url)
    else:
        cluster = Cluster(settings)
        if create:
            cluster.up(echo)
        else:  # a stopped cluster stays stopped: it may be down for a backup or a restore (review46 F5 left)
            refuse_cluster_not_up(cluster)
        url = parse_url(cluster.url())
        if not create:
            if not database_exists(url, settings.db_name):
                raise missing_database_error(settings.db_name)
        elif create_database_if_missing(url, settings.db_name):
            echo(f"created database {settings.db_name}")
    engine = make_engine(url)
    try:
        check_connection(engine)
        if check and not migrate:  # a command that uses the schema as it is: nothing written here
            if writable:
                read_only = read_only_cause(engine)
                if read_only is not None:
                    raise read_only_error(url, read_only)
            with engine.connect() as conn:
                migrations.check_schema(conn)
            return url
        if migrate:  # a schema this code does not know is refused before anything is written or waited for
            with engine.connect() as conn:
                revision = MigrationContext.configure(conn).get_current_revision()
            if revision is not None and not migrations.is_known(revision):
                raise migrations.schema_ahead_error(revision)
        read_only = read_only_cause(engine)
        if read_only is not None:
            if writable or not _ready(engine, migrate):
                raise read_only_error(url, read_only)
            return url  # read-only, and nothing to write: PostGIS there, migrations at head
        with migration_lock(engine, echo):
            ensure_postgis(engine)
            if migrate:
                migrations.upgrade(url, lock_timeout_s=settings.migration_lock_timeout_s)
                # Under the lock: two hosts granting at once could meet on the same catalogue row.
                grant_runtime(settings, url, echo)
    finally:
        engine.dispose()
    return url


def _ready(engine: Engine, migrate: bool) -> bool:
    """PostGIS enabled and (when ``migrate``) the migrations at head: nothing to write."""
    from gisgrid.storage import migrate as migrations

    with engine.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")).scalar() is None:
            return False
        return not migrate or MigrationContext.configure(conn).get_current_revision() == migrations.head()
