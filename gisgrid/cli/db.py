"""``gisgrid db``: the embedded cluster and migrations."""

from __future__ import annotations

import typer

from gisgrid.cli.common import echo, settings_of
from gisgrid.errors import ConfigError
from gisgrid.storage import migrate
from gisgrid.storage.cluster import Cluster, ensure_postgis_installed
from gisgrid.storage.database import database_url, prepare_database

app = typer.Typer(help="Database: embedded PostGIS cluster (默认内置数据库) and migrations.", no_args_is_help=True)


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
    """Start the private cluster (or use GISGRID_DATABASE_URL), create the database and PostGIS, migrate."""
    url = prepare_database(settings_of(ctx), echo)
    echo(f"database ready: {url.render_as_string(hide_password=True)} (migration {migrate.head()})")


@app.command()
def down(ctx: typer.Context) -> None:
    """Stop the private cluster (data is kept)."""
    _no_cluster_with_url(ctx, "stop")
    stopped = Cluster(settings_of(ctx)).stop()
    echo("stopped" if stopped else "not running")


@app.command()
def status(ctx: typer.Context) -> None:
    """Show whether the cluster runs, where, and on which port."""
    settings = settings_of(ctx)
    if settings.database_url:
        echo(f"external server: {database_url(settings).render_as_string(hide_password=True)}")
        return
    echo(Cluster(settings).status().to_text())


@app.command()
def url(ctx: typer.Context) -> None:
    """Print the SQLAlchemy URL of the database (for psql: drop the '+psycopg2')."""
    echo(database_url(settings_of(ctx)).render_as_string(hide_password=False))


@app.command()
def upgrade(ctx: typer.Context, revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    target = database_url(settings_of(ctx))
    migrate.upgrade(target, revision)
    echo(f"at revision {migrate.current(target)}")


@app.command()
def downgrade(
    ctx: typer.Context, revision: str = typer.Argument(..., help="Target revision, e.g. -1 or base.")
) -> None:
    """Revert migrations down to REVISION."""
    target = database_url(settings_of(ctx))
    migrate.downgrade(target, revision)
    echo(f"at revision {migrate.current(target) or 'base'}")
