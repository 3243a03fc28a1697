"""``/health``: is the database reachable, which PostGIS, which migration."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from api.deps import EngineDep
from gisgrid.storage import migrate
from gisgrid.storage.database import describe_connect_error

router = APIRouter(tags=["health"])


@router.get("/health", summary="服务状态 Service health")
def health(engine: EngineDep) -> JSONResponse:
    head = migrate.head()
    try:
        with engine.connect() as conn:
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
            server = conn.execute(text("SHOW server_version")).scalar_one()
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
    except (OperationalError, DBAPIError) as exc:
        body = {
            "status": "unavailable",
            "database": {"reachable": False, "detail": describe_connect_error(engine.url, exc)},
            "migration": {"head": head},
        }
        return JSONResponse({"error": "database_unavailable", "detail": body}, status_code=503)
    ok = current == head
    body = {
        "status": "ok" if ok else "migration_pending",
        "database": {"reachable": True, "server_version": server, "postgis_version": postgis},
        "migration": {"current": current, "head": head, "up_to_date": ok},
    }
    return JSONResponse(body, status_code=200 if ok else 503)
