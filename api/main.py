"""The app factory: ``create_app(settings)`` builds a FastAPI app bound to one database."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.errors import add_exception_handlers
from api.routers import components, grids, health, home
from gisgrid import __version__
from gisgrid.components_store import catalogue_for
from gisgrid.settings import Settings
from gisgrid.storage.database import database_url, make_engine, session_factory


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    engine = make_engine(database_url(settings), pool_size=10, max_overflow=20)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        engine.dispose()

    app = FastAPI(
        title="gisgrid 数字化城市管理 API",
        version=__version__,
        description="Unit grids (万米单元网格), components (部件) and cases (案件) on PostGIS.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.catalogue = catalogue_for(settings)
    add_exception_handlers(app)
    app.include_router(home.router)
    app.include_router(health.router)
    app.include_router(grids.router)
    app.include_router(components.router)
    return app
