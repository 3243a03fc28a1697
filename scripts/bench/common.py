"""Shared set-up for benchmarks: a throwaway database on the configured server with the demo district."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

from gisgrid.settings import Settings
from gisgrid.storage import migrate
from gisgrid.storage.database import (
    create_database_if_missing,
    drop_database,
    ensure_postgis,
    make_engine,
    prepare_database,
)

#: Set to keep a benchmark's database and use it again on the next run (iterating on the code, not the data).
REUSE_ENV = "GISGRID_BENCH_REUSE"


@contextmanager
def bench_database(name: str, *, with_demo: bool = True, folder: Path | None = None) -> Iterator[tuple[Engine, URL]]:
    """A fresh database ``name`` (dropped afterwards), migrated, with Z区 loaded when asked.

    With ``GISGRID_BENCH_REUSE=1`` the database is kept afterwards, and a kept one that was loaded to the end is
    handed over as it is: callers skip their loading when :func:`reused` says so."""
    from gisgrid.demo_loader import load_demo

    settings = Settings()
    keep = os.environ.get(REUSE_ENV) == "1"
    server = prepare_database(settings, echo=lambda _m: None, check=False, create=True)
    url = server.set(database=name)
    if not (keep and _loaded(url)):
        drop_database(server, name)
        create_database_if_missing(server, name)
    engine = make_engine(url, pool_size=20, max_overflow=20)
    try:
        ensure_postgis(engine)
        migrate.upgrade(url)  # a kept database too: it runs the code's schema
        if with_demo and not reused(engine):
            load_demo(
                engine, folder or settings.data_path / "bench", echo=lambda _m: None, components=0, history_days=0
            )
        yield engine, url
    finally:
        engine.dispose()
        if not keep:
            drop_database(server, name)


def _loaded(url: URL) -> bool:
    engine = make_engine(url)
    try:
        return reused(engine)
    except OperationalError as exc:
        if "does not exist" in str(exc.orig):  # no such database yet; anything else is a real failure
            return False
        raise
    finally:
        engine.dispose()


def reused(engine: Engine) -> bool:
    """True when this database was loaded completely by an earlier run (see :func:`mark_loaded`)."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT to_regclass('public._bench_loaded') IS NOT NULL")).scalar_one()


def mark_loaded(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS _bench_loaded ()"))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def describe(values_ms: list[float]) -> str:
    return (
        f"p50 {percentile(values_ms, 50):.2f} ms, p95 {percentile(values_ms, 95):.2f} ms, "
        f"mean {statistics.fmean(values_ms):.2f} ms (n={len(values_ms)})"
    )


#: Runs an ASGI app the way ``gisgrid serve --workers N`` does (its socket: TCP_NODELAY on every connection).
LAUNCH = """
import sys, uvicorn
from uvicorn.supervisors import Multiprocess
from gisgrid.cli.serve import listen
app, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sock = listen("127.0.0.1", port)
config = uvicorn.Config(app, factory=app.startswith("api.main"), workers=workers, log_level="warning")
if workers > 1:
    Multiprocess(config, sockets=[sock]).run()
else:
    uvicorn.Server(config).run(sockets=[sock])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(app: str, port: int, workers: int, **env: str) -> subprocess.Popen[bytes]:
    """Start ``app`` (an import string) on 127.0.0.1:port with ``workers`` processes; wait until it answers."""
    path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, app, str(port), str(workers)], env=dict(os.environ, PYTHONPATH=path, **env)
    )
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{app} did not start")
