"""Test fixtures: every database test runs against a real PostGIS.

Without GISGRID_DATABASE_URL the embedded cluster (GISGRID_DATA_DIR, default ``.gisgrid``) is started;
with it, that server is used. Either way the session (each pytest-xdist worker its own) creates a throwaway
database, enables PostGIS, migrates it to head, and drops it at the end.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from gisgrid.settings import PROJECT_ROOT, Settings
from gisgrid.storage import migrate
from gisgrid.storage.cluster import Cluster
from gisgrid.storage.database import (
    create_database_if_missing,
    drop_database,
    ensure_postgis,
    make_engine,
    parse_url,
)

if TYPE_CHECKING:
    from gisgrid.cases import CaseServices

DATA_TABLES = (
    "case_documents",
    "case_photos",
    "case_transitions",
    "cases",
    "component_history",
    "component_cells",
    "component_serials",
    "components",
    "departments",
    "retired_unit_grids",
    "unit_grids",
    "management_grids",
    "admin_units",
)


#: Each year's case-number sequence (migration 0006) is made on first use: a clean database has none.
DROP_CASE_NUMBER_SEQUENCES = """
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT relname FROM pg_class WHERE relkind = 'S' AND relname ~ '^case_no_[0-9]+$' LOOP
        EXECUTE format('DROP SEQUENCE %I', r.relname);
    END LOOP;
END $$
"""


def _base_settings() -> Settings:
    env_dir = os.environ.get("GISGRID_DATA_DIR")
    return Settings(data_dir=Path(env_dir) if env_dir else PROJECT_ROOT / ".gisgrid")


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return _base_settings()


@pytest.fixture(scope="session")
def server_url(base_settings: Settings) -> URL:
    """A PostGIS server the tests may create databases on."""
    if base_settings.database_url:
        return parse_url(base_settings.database_url)
    cluster = Cluster(base_settings)
    cluster.up(echo=lambda _m: None)
    return parse_url(cluster.url())


def new_database(server: URL, prefix: str = "gisgrid_test") -> URL:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    create_database_if_missing(server, name)
    return server.set(database=name)


@contextlib.contextmanager
def migrated_database(server: URL, prefix: str = "gisgrid_test") -> Iterator[URL]:
    """A throwaway database with PostGIS, migrated to head; dropped afterwards."""
    url = new_database(server, prefix)
    try:
        engine = make_engine(url)
        try:
            ensure_postgis(engine)
        finally:
            engine.dispose()
        migrate.upgrade(url)
        yield url
    finally:
        drop_database(server, url.database or "")


@pytest.fixture(scope="session")
def db_url(server_url: URL) -> Iterator[URL]:
    """The session's throwaway database, migrated to head."""
    with migrated_database(server_url) as url:
        yield url


@pytest.fixture
def own_db(server_url: URL) -> Iterator[URL]:
    """A database of the test's own, migrated to head: for a test that moves its revision or locks its tables."""
    with migrated_database(server_url, "gisgrid_own") as url:
        yield url


@pytest.fixture(scope="session")
def engine(db_url: URL) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def settings(db_url: URL, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings pointing at the throwaway database (as GISGRID_DATABASE_URL would)."""
    return Settings(
        database_url=db_url.render_as_string(hide_password=False),
        data_dir=tmp_path_factory.mktemp("gisgrid-data"),
    )


@pytest.fixture
def clean_db(engine: Engine) -> Iterator[Engine]:
    """A test that writes data gets empty tables before and after."""

    def wipe() -> None:
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE"))
            conn.execute(text(DROP_CASE_NUMBER_SEQUENCES))

    wipe()
    yield engine
    wipe()


@pytest.fixture(scope="session")
def installed_assets() -> None:
    """The vendored front-end assets (npm), installed once: pages link them."""
    from maps import assets

    assets.install_assets()


@pytest.fixture
def page_client(installed_assets: None, clean_db: Engine, settings: Settings, tmp_path: Path) -> Iterator[Any]:
    """The app over the small district with its assets: for the console and field pages."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from tests.fixtures import load_small_district

    load_small_district(clean_db, tmp_path)
    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "data"}))) as c:
        yield c


@pytest.fixture
def district_api(clean_db: Engine, settings: Settings, tmp_path: Path) -> Iterator[Any]:
    """The API over the small district without its tier grids (the component and contract tests)."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from tests.fixtures import load_small_district

    load_small_district(clean_db, tmp_path, tiers=False)
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def loaded(clean_db: Engine, tmp_path: Path) -> Engine:
    """The small district (boundaries, unit grids, tiers) in a clean database."""
    from tests.fixtures import load_small_district

    load_small_district(clean_db, tmp_path)
    return clean_db


@pytest.fixture
def services(loaded: Engine, settings: Settings, tmp_path: Path) -> CaseServices:
    """Case services (catalogues, rules, calendar, photo store) with their departments in the database."""
    from gisgrid import cases as svc

    s = svc.load_services(settings.model_copy(update={"data_dir": tmp_path / "data"}))
    svc.sync_reference_data(loaded, s)
    return s


@pytest.fixture
def spot() -> tuple[float, float]:
    """A point inside the small district (a module may define its own, elsewhere)."""
    from tests.test_components_store import inside_points

    xs, ys = inside_points(1, seed=21)
    return float(xs[0]), float(ys[0])


@pytest.fixture
def unreachable_settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings naming a PostgreSQL server that is not there: a port held bound but not listening for the test's
    lifetime, so a connection is refused and no other process can take the port meanwhile (review57 F1)."""
    from tests.fixtures import reserved_port

    with reserved_port() as held:
        port = held.getsockname()[1]
        yield Settings(database_url=f"postgresql://gisgrid@127.0.0.1:{port}/gisgrid", data_dir=tmp_path)


class _NoPango(importlib.abc.MetaPathFinder):
    """Importing WeasyPrint fails as it does on a machine without Pango (cffi cannot open the library)."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "weasyprint":
            raise OSError("cannot load library 'libgobject-2.0-0': libgobject-2.0-0: cannot open shared object file")


@pytest.fixture
def without_weasyprint(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """WeasyPrint missing (not installed: ImportError), or with ``indirect`` param ``"pango"`` Pango missing
    (OSError at import)."""
    from gisgrid import documents

    for name in [m for m in sys.modules if m == "weasyprint" or m.startswith("weasyprint.")]:
        monkeypatch.delitem(sys.modules, name)
    if getattr(request, "param", "package") == "package":
        monkeypatch.setitem(sys.modules, "weasyprint", None)
    else:
        monkeypatch.setattr(sys, "meta_path", [_NoPango(), *sys.meta_path])
    documents._weasyprint.cache_clear()
    documents._fetcher_class.cache_clear()
    yield
    documents._weasyprint.cache_clear()
    documents._fetcher_class.cache_clear()
