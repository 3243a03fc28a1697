"""``gisgrid db``: the embedded cluster and migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from gisgrid.cli.common import EXIT_FAILED, echo, settings_of
from gisgrid.errors import ConfigError, GisgridError
from gisgrid.settings import Settings, check_catalogue_dir
from gisgrid.storage import migrate
from gisgrid.storage.cluster import Cluster, ensure_postgis_installed
from gisgrid.storage.database import (
    check_app_database_url,
    database_url,
    describe_connect_error,
    grant_runtime,
    make_engine,
    migration_lock,
    prepare_database,
)

if TYPE_CHECKING:
    from gisgrid.cases import CaseServices

app = typer.Typer(help="Database: embedded PostGIS cluster (默认内置数据库) and migrations.", no_args_is_help=True)


def warn_if_trusting(settings: Settings) -> None:
    """One line on stderr when the embedded cluster was made before passwords (trust), or when its pg_hba.conf
    cannot be read to tell."""
    if not settings.embedded:
        return
    warning = Cluster(settings).auth_warning()
    if warning:
        typer.echo(f"warning: {warning}", err=True)


def report_stored_data_checks(settings: Settings, *, refuse: bool, services: CaseServices | None = None) -> None:
    """Run :func:`gisgrid.start_checks.check_stored_data` (the catalogues and rules against the stored data, the
    working hours against those the stored deadlines are counted under) and report what it finds on stderr. Open
    cases whose event class or disposal type the catalogue lost stop ``serve`` (``refuse``): every action on them
    would be refused; ``db up`` warns about them. ``services``: the city's files already loaded (``serve`` has
    them); else they are loaded here."""
    from gisgrid.cases import load_services
    from gisgrid.start_checks import check_stored_data

    if services is None:
        try:
            services = load_services(settings)
        except GisgridError as exc:
            if refuse:
                raise
            typer.echo(f"warning: catalogues not checked against the stored cases: {exc.message}", err=True)
            return
    engine = make_engine(database_url(settings))
    try:
        found = check_stored_data(engine, services, settings)
    finally:
        engine.dispose()
    for line in found.warnings:
        typer.echo(f"warning: {line}", err=True)
    if found.placeholders:
        typer.echo(f"warning: {found.placeholders}", err=True)
    if found.hours:
        typer.echo(f"warning: {found.hours}", err=True)
    if found.refusals and refuse:
        raise ConfigError(
            "open cases use event classes or disposal types the catalogue no longer has; not starting (see "
            "data/catalogue/README.md, 'Dropping a class'):\n" + "\n".join(f"  {line}" for line in found.refusals)
        )
    for line in found.refusals:
        typer.echo(f"warning: {line} (gisgrid serve refuses to start until then)", err=True)


def _no_cluster_with_url(ctx: typer.Context, what: str) -> None:
    if settings_of(ctx).database_url:
        raise ConfigError(f"GISGRID_DATABASE_URL is set, so there is no embedded cluster to {what}")


@app.command()
def setup(ctx: typer.Context) -> None:
    """Install PostgreSQL + PostGIS where missing (apt-get when root; otherwise print the command)."""
    settings = settings_of(ctx)
    if settings.database_url:
        echo("GISGRID_DATABASE_URL is set: using that server, nothing to install")
        return
    install = ensure_postgis_installed(settings, echo)
    echo(f"PostgreSQL {install.major} with PostGIS: {install.bindir}")


@app.command()
def up(ctx: typer.Context) -> None:
    """Start the private cluster and create the database in it, or with GISGRID_DATABASE_URL use that server's
    database (it must exist: createdb); enable PostGIS and migrate. Several hosts may run it at once: they migrate
    in turn."""
    settings = settings_of(ctx)
    # A missing catalogue folder, or a runtime role's URL without the owner's, is refused before anything is done
    # (exit 1): a service manager's ExecStartPre=gisgrid db up must not pass and serve fail later (review55 F5,
    # review58 M7). A bad file in the folder stays a warning.
    check_app_database_url(settings)
    check_catalogue_dir(settings)
    url = prepare_database(settings, echo, migrate=True, writable=True, create=True)
    echo(f"database ready: {url.render_as_string(hide_password=True)} (migration {migrate.head()})")
    warn_if_trusting(settings)
    report_stored_data_checks(settings, refuse=False)


@app.command()
def down(ctx: typer.Context) -> None:
    """Stop the private cluster (data is kept)."""
    _no_cluster_with_url(ctx, "stop")
    stopped = Cluster(settings_of(ctx)).stop()
    echo("stopped" if stopped else "not running")


@app.command()
def status(ctx: typer.Context) -> None:
    """Show whether the cluster runs, where, and on which port, and the database's migration against this
    code's: up to date, behind (db up migrates it, after a backup) or ahead (migrated by a newer gisgrid) — the
    check on a restored backup. Exit 1 when the database cannot be reached; a stopped cluster is left stopped."""
    settings = settings_of(ctx)
    if settings.database_url:
        url = database_url(settings)
        echo(f"external server: {url.render_as_string(hide_password=True)}")
    else:
        cluster = Cluster(settings)
        state = cluster.status()
        echo(state.to_text())
        warn_if_trusting(settings)
        if not state.running:
            return
        url = make_url(cluster.url())
    line, reachable = schema_status(url)
    echo(line)
    if not reachable:
        raise typer.Exit(EXIT_FAILED)


def schema_status(url: URL) -> tuple[str, bool]:
    """One line on the database's migration (zh-CN first), and whether the database answered."""
    try:
        revision = migrate.current(url)
    except SQLAlchemyError as exc:
        return f"数据库无法连接 / database not reachable: {describe_connect_error(url, exc)}", False
    head = migrate.head()
    match migrate.schema_state(revision):
        case "current":
            return f"结构版本 {revision},为最新 / migration {revision}: up to date", True
        case "ahead":
            return (
                f"结构版本 {revision},比本程序新(本程序只认识到 {head}) / migration {revision}: newer than this "
                f"code (it knows up to {head}) — run the gisgrid version that migrated it",
                True,
            )
        case _:
            at = revision or "none"
            return (
                f"结构版本 {at},落后于本程序的 {head}(待迁移) / migration {at}: behind this code's {head} (pending) "
                "— gisgrid db up migrates it, after a backup",
                True,
            )


@app.command()
def secure(ctx: typer.Context) -> None:
    """Give an embedded cluster made before passwords (trust: any local user was superuser) a password: set it,
    keep it in GISGRID_DATA_DIR/pg.password (0600), make pg_hba.conf ask for it (scram-sha-256), reload.
    Everything using the project's settings picks it up; a hand-written URL needs the password (gisgrid db url)."""
    _no_cluster_with_url(ctx, "secure")
    cluster = Cluster(settings_of(ctx))
    if cluster.secure(echo):
        echo(f"secured: {cluster.status().url}")
    else:
        echo("already password-protected: nothing to do")


@app.command()
def url(ctx: typer.Context) -> None:
    """Print the SQLAlchemy URL of the database (for psql: drop the '+psycopg2')."""
    echo(database_url(settings_of(ctx)).render_as_string(hide_password=False))


@contextmanager
def _migration_lock(target: URL) -> Iterator[None]:
    """No other gisgrid migrates the database meanwhile (``db up``, ``serve`` starting on another host)."""
    engine = make_engine(target)
    try:
        with migration_lock(engine, echo):
            yield
    finally:
        engine.dispose()


@app.command()
def upgrade(ctx: typer.Context, revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    settings = settings_of(ctx)
    check_app_database_url(settings)
    target = database_url(settings)
    with _migration_lock(target):
        migrate.upgrade(target, revision, lock_timeout_s=settings.migration_lock_timeout_s)
        grant_runtime(settings, target, echo)  # the runtime role's privileges on what the migrations made
    echo(f"at revision {migrate.current(target)}")


@app.command()
def downgrade(
    ctx: typer.Context,
    revision: str = typer.Argument(..., help="Target revision, e.g. -1 or base."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before dropping tables or columns (scripts)."),
) -> None:
    """Revert migrations down to REVISION. Reverting drops the tables and columns those migrations made, with their
    data: it asks first (back up before, see docs/operations.md)."""
    settings = settings_of(ctx)
    target = database_url(settings)
    losing = migrate.destructive_steps(target, revision)
    others = migrate.other_sessions(target)
    if others and losing:
        # A running server keeps its connections and answers 503 schema_behind until the schema is upgraded again.
        echo(
            f"warning: {others} other session(s) connected to database {target.database} (a running gisgrid serve? "
            "it answers 503 schema_behind until gisgrid db upgrade)"
        )
    if losing:
        for line in migrate.downgrade_losses(target, revision):
            echo(line)
    if losing and not yes:
        typer.confirm(
            f"downgrading to {revision} drops tables or columns and the data in them (reverting migrations "
            f"{', '.join(losing)}). Continue?",
            abort=True,
        )
    with _migration_lock(target):
        migrate.downgrade(target, revision, lock_timeout_s=settings.migration_lock_timeout_s)
    echo(f"at revision {migrate.current(target) or 'base'}")
