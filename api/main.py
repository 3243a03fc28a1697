"""The app factory: ``create_app(settings)`` builds a FastAPI app bound to one database."""

from __future__ import annotations

import contextlib
import gc
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import Depends, FastAPI
from sqlalchemy.exc import OperationalError
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp

from api.dependencies import known_query_only_on_writes, refuse_repeated_query, refuse_unencoded_plus
from api.deps import AsyncPool
from api.errors import LoggedOnce, ZhMessages, add_exception_handlers, add_fallback_handlers
from api.http import AllowedHosts, CrossSiteGuard, HardeningHeaders, HeadAsGet, TooLargeAsJson, add_cors
from api.inputs import refuse_nul_input
from api.routers import cases, components, console, docs, evaluation, field, grids, health, home, tiles
from api.schemas import error_responses, json_error_bodies
from gisgrid import __version__
from gisgrid.case_intake import INTAKE_SESSION_SETTINGS
from gisgrid.cases import CaseServices, load_services, sync_reference_data
from gisgrid.catalogue import Catalogue
from gisgrid.components_store import catalogue_for
from gisgrid.errors import DatabaseError
from gisgrid.settings import Settings, product_data_dir
from gisgrid.storage.database import app_database_url, make_engine
from gisgrid.storage.prepared import init_async_connection
from maps.basemap import Basemap, basemap_for
from maps.field import SEARCH_TERMS_FILE, load_search_terms
from maps.pagejs import REASON_TEXTS_FILE, load_reason_texts
from maps.tiles_sql import TILE_SESSION_SETTINGS


class App(FastAPI):
    """The FastAPI app with :class:`api.http.HardeningHeaders` and :class:`api.errors.ZhMessages` around its whole
    stack: ``add_middleware`` puts a layer inside Starlette's error middleware, whose 500 answers would go out
    without them."""

    def build_middleware_stack(self) -> ASGIApp:
        settings: Settings | None = getattr(self.state, "settings", None)  # set by create_app before any request
        sources = settings.frame_ancestors if settings is not None else ["'self'"]
        texts = getattr(self.state, "reason_texts", {})
        stack = HardeningHeaders(ZhMessages(super().build_middleware_stack(), texts), frame_ancestors=sources)
        return LoggedOnce(stack)


@dataclass(frozen=True)
class StartData:
    """Everything the app reads from the city's files and settings at start (catalogues, routing and evaluation
    rules, calendar and working hours, basemap, search terms, reason texts): :func:`load_start_data` reads and
    checks it all, so ``gisgrid serve`` refuses a bad file before it listens or starts a worker."""

    catalogue: Catalogue
    basemap: Basemap | None
    cases: CaseServices
    search_terms: dict[str, tuple[str, ...]]
    reason_texts: dict[str, str]


def load_start_data(settings: Settings) -> StartData:
    """Read and check the start data of ``settings``: a fault is a :class:`~gisgrid.errors.GisgridError` naming the
    file or setting, raised here and not in a request."""
    return StartData(
        catalogue=catalogue_for(settings),
        basemap=basemap_for(  # a bad basemap setting stops the start, not every /console request
            settings.basemap_url,
            attribution=settings.basemap_attribution,
            subdomains=settings.basemap_subdomains,
            datum=settings.basemap_datum,
            tianditu_token=settings.tianditu_token,
        ),
        cases=load_services(settings),  # events, limits, routing, calendar, evaluation rules
        # The field page's class search words (the city's copy's, else the package's) and the pages' zh-CN of
        # refusals' reasons (the package's): product files a GISGRID_CATALOGUE_DIR copy need not hold (review55 F6).
        search_terms=load_search_terms(product_data_dir(settings, SEARCH_TERMS_FILE)),
        reason_texts=load_reason_texts(product_data_dir(settings, REASON_TEXTS_FILE)),
    )


def create_app(settings: Settings | None = None, start: StartData | None = None) -> FastAPI:
    """The app of ``settings`` (default: from GISGRID_*), with ``start`` when already loaded (``gisgrid serve``
    loads it before it listens) or loaded here."""
    settings = settings or Settings()
    start = start or load_start_data(settings)
    url = app_database_url(settings)  # the runtime role, not the owner that migrates (review54 F1)
    size = settings.db_pool_size
    timeout = settings.statement_timeout_s  # the web service's sessions only: the command line's run unlimited
    engine = make_engine(url, pool_size=size, max_overflow=size, statement_timeout_s=timeout)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Reference data (departments) must be in the database before cases and components point at it.
        with contextlib.suppress(DatabaseError, OperationalError):  # /health reports an unreachable database
            sync_reference_data(engine, app.state.cases)
        # What start-up made (modules, catalogues, calendars) lives as long as the process: out of the collector's
        # sight, so the full collections that requests trigger stay short instead of walking it every time.
        gc.collect()
        gc.freeze()
        yield
        gc.unfreeze()  # an app made and shut down in-process (tests) gives its objects back to the collector
        await app.state.tile_pool.close()
        await app.state.intake_pool.close()
        engine.dispose()

    app = App(
        title="gisgrid 数字化城市管理 API",
        version=__version__,
        description="Unit grids (万米单元网格), components (部件) and cases (案件) on PostGIS.",
        lifespan=lifespan,
        # FastAPI's /docs and /redoc load from a CDN: api.routers.docs serves Swagger UI from its vendored copy.
        docs_url=None,
        redoc_url=None,
        # No path, query or form text with a NUL reaches PostgreSQL (JSON bodies: api.inputs.RequestModel), and no
        # form field the route does not read, nor a repeated query parameter's first value, is dropped without a word.
        # A time's offset whose '+' came unencoded (a space) is refused saying to send %2B. A write route refuses any
        # query parameter it does not take (GET routes choose for themselves).
        dependencies=[
            Depends(refuse_nul_input),
            Depends(refuse_repeated_query),
            Depends(refuse_unencoded_plus),
            Depends(known_query_only_on_writes),
        ],
        responses=error_responses(422, 500, 503),  # any route: its input, a fault of ours, the database down
    )
    app.state.settings = settings
    app.state.engine = engine
    # The two hot paths run async on asyncpg pools, each session set up for its statements.
    app.state.tile_pool = AsyncPool(
        engine.url,
        size,
        application_name="gisgrid-tiles",
        server_settings=TILE_SESSION_SETTINGS,
        statement_timeout_s=timeout,
    )
    app.state.intake_pool = AsyncPool(
        engine.url,
        size,
        application_name="gisgrid-intake",
        server_settings=INTAKE_SESSION_SETTINGS,
        init=init_async_connection,
        statement_timeout_s=timeout,
    )
    app.state.catalogue = start.catalogue
    app.state.basemap = start.basemap
    app.state.cases = start.cases
    app.state.search_terms = start.search_terms
    app.state.reason_texts = start.reason_texts
    add_exception_handlers(app)
    add_fallback_handlers(app)
    app.include_router(tiles.router)  # first: the most requested path is matched before the others are tried
    # Bodies are refused past the limit, by Content-Length before reading and while reading (chunked); the photo
    # forms set their own, larger one on their route.
    limit = settings.max_json_bytes
    for router in (home, health, grids, components, cases, evaluation, console, field):
        app.include_router(router.router, max_body_size=limit)
    app.include_router(docs.router)
    # Case GeoJSON polled by the console compresses 5-20× (tiles are gzipped by their endpoint).
    # From 4 KB: a small answer (a filed case, ~2 KB) saves a few hundred bytes for the CPU of both ends. Level 6:
    # level 9 costs 3-4x the CPU for ~1 % less.
    app.add_middleware(GZipMiddleware, minimum_size=4096, compresslevel=6)
    app.add_middleware(HeadAsGet)
    app.add_middleware(TooLargeAsJson)
    # Before any route reads a body: a page of another site may not post a form with this browser's identity.
    app.add_middleware(CrossSiteGuard, allowed_origins=settings.cors_origins)
    app.add_middleware(tiles.TileFastPath)  # outside the others, tiles skip them
    json_error_bodies(app)
    add_cors(app, settings.cors_origins)  # preflights and tiles answer cross-origin too
    if settings.allowed_hosts:  # outermost: no other layer answers a request to a name that is not this server's
        app.add_middleware(AllowedHosts, allowed_hosts=settings.allowed_hosts)
    return app
