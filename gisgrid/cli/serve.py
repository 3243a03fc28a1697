"""``gisgrid serve``: run the API and pages with uvicorn (one process, or several sharing one socket)."""

from __future__ import annotations

import errno
import socket
from typing import Any, TypedDict

import typer

from gisgrid.cli.common import echo, settings_of
from gisgrid.cli.db import report_stored_data_checks, warn_if_trusting
from gisgrid.errors import ConfigError
from gisgrid.settings import ensure_data_dir, normalise_root_path
from gisgrid.storage.database import app_database_url, asyncpg_connect_args, parse_url, prepare_database
from gisgrid.texts import bilingual


class _LoggingOptions(TypedDict):
    """The uvicorn.Config options both ways of serving share (logging, root path, no ``server`` header), typed, as
    uvicorn checks each one's type."""

    log_config: dict[str, Any]
    log_level: str
    access_log: bool
    root_path: str
    server_header: bool


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, made with proto IPPROTO_TCP: asyncio turns TCP_NODELAY on for accepted sockets only
    then. (uvicorn's own multi-worker socket has proto 0, and every small answer then waits ~40 ms for the
    client's delayed ACK.)"""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {_bind_hint(exc)}") from None
    sock.set_inheritable(True)
    return sock


def _bind_hint(exc: OSError) -> str:
    """Why the address cannot be bound, with what to change: only a port in use is another server's (review46 F7:
    a mistyped GISGRID_HOST was told to use --port)."""
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"{exc.strerror} — 无法绑定该地址 / the host cannot be bound: not an address of this machine "
            "(check GISGRID_HOST or --host: 127.0.0.1, 0.0.0.0, or one of this machine's addresses)"
        )
    if exc.errno == errno.EADDRINUSE:
        return f"{exc.strerror} (another server there? use --port)"
    if exc.errno == errno.EACCES:
        return f"{exc.strerror} (a port below 1024 needs privileges: use --port 8000 behind a proxy)"
    return str(exc.strerror or exc)


def assets_warning() -> str | None:
    """One line when the pages' JS/CSS (maps/node_modules) are missing or stale, else None."""
    from maps.assets import stale_reason

    stale = stale_reason()
    if stale is None:
        return None
    return (
        f"warning: the console, field page and /docs need their JS/CSS ({stale}): run make setup "
        "or python -m maps.assets install"
    )


def uvicorn_options(level: str, root: str) -> _LoggingOptions:
    """The uvicorn.Config options of ``serve`` (one worker or several)."""
    from api.access_log import log_config

    return {
        "log_config": log_config(level),
        "log_level": level,
        "access_log": False,  # AccessLog logs the requests
        # root_path is the ASGI way: the app builds every URL it gives out from scope["root_path"].
        "root_path": root,
        "server_header": False,  # no "server: uvicorn" telling which server (and flaws) answers (review54 F9)
    }


def allowed_hosts_warning(allowed_hosts: list[str]) -> str | None:
    """What ``serve`` says when GISGRID_ALLOWED_HOSTS is not set (review54 F8), zh-CN first: every Host is then
    answered, so a page of another site whose name is made to resolve here (DNS rebinding) passes the cross-site
    check with its own name as Origin and Host. None when it is set."""
    if allowed_hosts:
        return None
    return "warning: " + bilingual(
        "未设置 GISGRID_ALLOWED_HOSTS:服务器应答任何 Host(DNS 重绑定:其他网站的网页可借本机地址提交请求);"
        "请设为用户访问所用的主机名,如 GISGRID_ALLOWED_HOSTS=127.0.0.1,localhost 或网关域名",
        "GISGRID_ALLOWED_HOSTS is not set: every Host is answered (DNS rebinding: another site's page may send "
        "requests here under its own name); set it to the names clients use, e.g. "
        "GISGRID_ALLOWED_HOSTS=127.0.0.1,localhost or the gateway's name (docs/operations.md)",
    )


def serve(
    ctx: typer.Context,
    host: str = typer.Option(None, help="Bind address (default GISGRID_HOST, 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default GISGRID_PORT, 8000)."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Worker processes (about one per core)."),
    root_path: str = typer.Option(
        None,
        "--root-path",
        help="Path prefix a reverse proxy serves gisgrid under, e.g. /gisgrid (default GISGRID_ROOT_PATH, none).",
    ),
    log_level: str = typer.Option(
        None, "--log-level", help="critical, error, warning, info (with the access log) or debug (GISGRID_LOG_LEVEL)."
    ),
) -> None:
    """Serve the API (/docs), the console and the field page."""
    from api.access_log import LOG_LEVELS, AccessLog

    settings = settings_of(ctx)
    # Options are checked before anything starts (0 would silently mean the default; 70000 a traceback at bind).
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535, not {port}")
    level = (log_level or settings.log_level).lower()
    if level not in LOG_LEVELS:
        raise ConfigError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, not {log_level!r}")
    try:
        root = settings.root_path if root_path is None else normalise_root_path(root_path)
    except ValueError as exc:
        raise ConfigError(f"--root-path: {exc}") from None
    from api.main import create_app, load_start_data

    # The city's files and settings are read and checked here, before anything listens: a fault is one error and
    # exit 1. Found first in a worker, it would be a traceback, and uvicorn would restart the worker for ever
    # while the parent held the port (a systemd unit would look up and answer nothing).
    start = load_start_data(settings)
    ensure_data_dir(settings)  # photos are kept there, also with an external database
    from api.routers.health import photo_store_status

    photos = photo_store_status(settings.data_path / "photos")
    if not photos["writable"]:  # said at start, as /health says it (not ready): it may be a mount not yet there
        typer.echo(f"warning: {photos['warnings'][0]}", err=True)  # type: ignore[index]
    import uvicorn  # after the checks: a wrong option is answered at once
    from uvicorn.supervisors import Multiprocess

    if settings.database_url:  # a URL parameter the intake and tile connections (asyncpg) cannot honour stops here
        asyncpg_connect_args(parse_url(settings.database_url))
    if settings.app_database_url:  # and its own runtime role's URL (also refused without GISGRID_DATABASE_URL)
        asyncpg_connect_args(app_database_url(settings))
    prepare_database(settings, echo, migrate=True, writable=True, create=True)
    warn_if_trusting(settings)
    hosts_warning = allowed_hosts_warning(settings.allowed_hosts)
    if hosts_warning:  # a desk's serve on 127.0.0.1 is what DNS rebinding aims at
        typer.echo(hosts_warning, err=True)
    # In this process, before the socket (workers would only loop), with the files read above (not read again).
    report_stored_data_checks(settings, refuse=True, services=start.cases)
    missing_assets = assets_warning()
    if missing_assets:  # the pages would open blank: said at start, not found in a browser
        typer.echo(missing_assets, err=True)
    host = host or settings.host
    port = port or settings.port
    sock = listen(host, port)
    base = f"http://{host}:{port}"
    pages = root or base  # behind the proxy the pages are at its prefix (it strips it before passing a request on)
    under = f", served by the proxy under {root}/" if root else ""
    echo(
        f"gisgrid on {base}{under} ({workers} worker{'s' if workers > 1 else ''})\n  console:   {pages}/console\n"
        f"  field:     {pages}/field\n  API docs:  {pages}/docs\n  health:    {pages}/health"
    )
    logging = uvicorn_options(level, root)
    if workers == 1:  # AccessLog logs the requests (uvicorn's own access log is off)
        config = uvicorn.Config(AccessLog(create_app(settings, start)), **logging)
        uvicorn.Server(config).run(sockets=[sock])
    else:
        # Each worker builds its app from the same GISGRID_* environment (checked above: the same files load).
        config = uvicorn.Config("api.access_log:create_logged_app", factory=True, workers=workers, **logging)
        Multiprocess(config, sockets=[sock]).run()
