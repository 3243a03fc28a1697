"""``/health``: is the database reachable, which PostGIS, which migration."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from api.deps import EngineDep
from api.errors import NO_STORE, log_database_down
from gisgrid.calendar import CHINESECALENDAR_VERSION, KNOWN_YEARS, unknown_year_text
from gisgrid.grids import store as grid_store
from gisgrid.storage import migrate
from gisgrid.storage.database import describe_connect_error

router = APIRouter(tags=["health"])


def calendar_status(request: Request, today: dt.date | None = None) -> dict[str, object]:
    """Which years the holiday calendar knows; years it does not know are a warning, never a silent guess."""
    today = today or dt.date.today()
    calendar = request.app.state.cases.calendar
    seen = set(calendar.unknown_years)
    missing = sorted({y for y in (today.year, today.year + 1) if not calendar.knows_year(y)} | seen)
    warnings = [unknown_year_text(y) for y in missing]
    return {
        "package": f"chinesecalendar {CHINESECALENDAR_VERSION}",
        "known_years": [KNOWN_YEARS.start, KNOWN_YEARS.stop - 1],
        "unknown_years": missing,
        "warnings": warnings,
    }


#: /health's warning on a database without boundaries (zh-CN first): reports are refused, no_boundaries.
NO_BOUNDARIES_WARNING = (
    "尚未导入辖区边界,上报将被拒绝(no_boundaries)/ no district is loaded: reports are refused until "
    "gisgrid boundaries import FILE"
)


def coverage_status(engine: Engine) -> dict[str, object]:
    """Whether boundaries and unit grids are loaded: a migrated but empty database is reachable (status ok) and
    yet refuses every report, which an integrator testing early should be able to see here."""
    with engine.connect() as conn:
        districts = conn.execute(text("SELECT count(*) FROM admin_units WHERE level = 'district'")).scalar_one()
        grids = grid_store.grids_loaded(conn)
    return {
        "districts": districts,
        "unit_grids_loaded": grids,
        "warnings": [] if grids else [NO_BOUNDARIES_WARNING],
    }


@router.get("/health", summary="服务状态 Service health")
def health(request: Request, engine: EngineDep) -> JSONResponse:
    head = migrate.head()
    try:
        with engine.connect() as conn:
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
            server = conn.execute(text("SHOW server_version")).scalar_one()
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
    except (OperationalError, DBAPIError) as exc:
        # Where the database is stays in the server log (under the reference), as for every other route.
        ref, detail = log_database_down("GET /health", describe_connect_error(engine.url, exc))
        body = {
            "status": "unavailable",
            "database": {"reachable": False, "detail": detail},
            "migration": {"head": head},
        }
        return JSONResponse(
            {"error": "database_unavailable", "detail": body, "ref": ref}, status_code=503, headers=NO_STORE
        )
    ok = current == head
    answer: dict[str, object] = {
        "status": "ok" if ok else "migration_pending",
        "database": {"reachable": True, "server_version": server, "postgis_version": postgis},
        "migration": {"current": current, "head": head, "up_to_date": ok},
        "coverage": coverage_status(engine) if ok else None,  # the tables are the migration's
        "calendar": calendar_status(request),
    }
    return JSONResponse(answer, status_code=200 if ok else 503, headers=NO_STORE)  # a probe reads it fresh
