"""Shared set-up for benchmarks: a throwaway database on the configured server with the demo district."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import URL

from gisgrid.settings import Settings
from gisgrid.storage import migrate
from gisgrid.storage.database import (
    create_database_if_missing,
    drop_database,
    ensure_postgis,
    make_engine,
    prepare_database,
)


@contextmanager
def bench_database(name: str, *, with_demo: bool = True, folder: Path | None = None) -> Iterator[tuple[Engine, URL]]:
    """A fresh database ``name`` (dropped afterwards), migrated, with Z区 loaded when asked."""
    from gisgrid.demo_loader import load_demo

    settings = Settings()
    server = prepare_database(settings, echo=lambda _m: None, migrate=False)
    url = server.set(database=name)
    drop_database(server, name)
    create_database_if_missing(server, name)
    engine = make_engine(url, pool_size=20, max_overflow=20)
    try:
        ensure_postgis(engine)
        migrate.upgrade(url)
        if with_demo:
            load_demo(
                engine, folder or settings.data_path / "bench", echo=lambda _m: None, components=0, history_days=0
            )
        yield engine, url
    finally:
        engine.dispose()
        drop_database(server, name)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def describe(values_ms: list[float]) -> str:
    return (
        f"p50 {percentile(values_ms, 50):.2f} ms, p95 {percentile(values_ms, 95):.2f} ms, "
        f"mean {statistics.fmean(values_ms):.2f} ms (n={len(values_ms)})"
    )
