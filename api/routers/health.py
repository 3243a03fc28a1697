"""``/health``: readiness — is the database reachable, which PostGIS, which migration, are unit grids loaded, can
the photo store be written — and ``/health/live``: the process answers."""

from __future__ import annotations

import datetime as dt
import errno
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import cast

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from api.deps import EngineDep
from api.errors import NO_STORE, log_database_down
from gisgrid import deadline_hours
from gisgrid.calendar import CHINESECALENDAR_VERSION, KNOWN_YEARS, unknown_year_text
from gisgrid.errors import Reason
from gisgrid.grids import store as grid_store
from gisgrid.photos import PHOTO_STORE_SETTING
from gisgrid.storage import migrate
from gisgrid.storage.database import describe_connect_error

router = APIRouter(tags=["health"])


def calendar_status(request: Request, today: dt.date | None = None) -> dict[str, object]:
    """Which years the holiday calendar knows and where each comes from; years it does not know are a warning,
    never a silent guess. ``known_years`` is the package's range (first, last); ``file_years`` the years outside
    it that the city's calendar file (GISGRID_CALENDAR_FILE) fully describes, known from the file (review55 F8);
    ``partial_years`` the years outside it of which the file lists some days only (still unknown, warned)."""
    today = today or dt.date.today()
    calendar = request.app.state.cases.calendar
    seen = set(calendar.unknown_years)
    missing = sorted({y for y in (today.year, today.year + 1) if not calendar.knows_year(y)} | seen)
    warnings = [unknown_year_text(y, calendar.partial_years.get(y)) for y in missing]
    return {
        "package": f"chinesecalendar {CHINESECALENDAR_VERSION}",
        "known_years": [KNOWN_YEARS.start, KNOWN_YEARS.stop - 1],
        "file_years": sorted(calendar.covered_years),
        "partial_years": sorted(calendar.partial_years),
        "unknown_years": missing,
        "warnings": warnings,
    }


def working_hours_status(conn: Connection | None, current: str) -> tuple[dict[str, object], str | None]:
    """The working hours in force (GISGRID_WORKING_HOURS, normalised: ``current``) and the open cases whose stored
    deadline was counted under other hours (``cases.hours_counted``), grouped by those hours, read on ``conn`` (None:
    the migration that adds the column is pending: nothing read). ``recount_needed``: there are some — a field and a
    calendar warning, not a failure (the deadlines stand as stored until ``gisgrid cases recompute-deadlines``
    counts them again). With it, the warning (the start warning's words), else None."""
    found = None if conn is None else deadline_hours.recount_needed(conn, current)
    status: dict[str, object] = {
        "in_force": current,
        "recount_needed": found is not None,
        "counted_under_other_hours": [] if found is None else [{"hours": h, "open_cases": n} for h, n in found.counted],
    }
    return status, None if found is None else deadline_hours.warning_text(found)


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


#: How long a photo-store probe's result is reused: a load balancer probing every second writes no file each time.
PHOTO_PROBE_SECONDS = 5.0
_probes: dict[Path, tuple[float, dict[str, object]]] = {}
_probe_lock = threading.Lock()


def photo_store_status(root: Path, *, now: float | None = None) -> dict[str, object]:
    """Whether a file can be written in the photo store (``root``, made when missing, as the store itself would):
    a temporary file created and removed. Cached :data:`PHOTO_PROBE_SECONDS` per folder. What the client is told
    names the setting and the errno, not the path (as the refusals of the store do)."""
    now = time.monotonic() if now is None else now
    with _probe_lock:
        hit = _probes.get(root)
        if hit is not None and now - hit[0] < PHOTO_PROBE_SECONDS:
            return hit[1]
        try:
            if root.exists() and not root.is_dir():  # mkdir would say "File exists"
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
            root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=root, prefix=".health-", suffix=".tmp"):
                pass
            status: dict[str, object] = {"writable": True}
        except OSError as exc:
            name = errno.errorcode.get(exc.errno or 0, "no errno")
            why = os.strerror(exc.errno) if exc.errno else type(exc).__name__
            status = {
                "writable": False,
                "warnings": [
                    f"照片存储不可写,带照片的上报和办理将被拒绝(photo_store_unavailable)/ the photo store "
                    f"({PHOTO_STORE_SETTING}) cannot be written: {why} ({name})"
                ],
            }
        _probes[root] = (now, status)
        return status


@router.get("/health/live", summary="进程存活 Liveness: the process answers (no database, no disk)")
async def live() -> JSONResponse:
    return JSONResponse({"status": "alive"}, headers=NO_STORE)


@router.get("/health", summary="服务状态 Service health (readiness)")
def health(request: Request, engine: EngineDep) -> JSONResponse:
    head = migrate.head()
    try:
        with engine.connect() as conn:
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
            server = conn.execute(text("SHOW server_version_num")).scalar_one()
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
            state = migrate.schema_state(current)
            # on this connection; the hours in force were normalised once, with the services
            hours, hours_warning = working_hours_status(
                conn if state != "behind" else None, request.app.state.cases.hours_in_force
            )
    except (OperationalError, DBAPIError) as exc:
        # Where the database is stays in the server log (under the reference), as for every other route.
        ref, detail = log_database_down("GET /health", describe_connect_error(engine.url, exc))
        body = {
            "status": "unavailable",
            "database": {"reachable": False, "detail": detail},
            "migration": {"head": head},
        }
        return JSONResponse(
            {"error": "database_unavailable", "reason": str(Reason.DATABASE_UNAVAILABLE), "detail": body, "ref": ref},
            status_code=503,
            headers=NO_STORE,
        )
    ok = state == "current"
    # A schema ahead of this code: a newer gisgrid on another host migrated it (a rolling upgrade) or this code was
    # rolled back. This process keeps serving and stays ready: the migrations add tables and columns that older
    # code does not read, and failing readiness here would take every old host out of the load balancer at once,
    # mid-upgrade. It says so in a warning; a restart of this code is refused (gisgrid serve: schema_ahead).
    coverage = coverage_status(engine) if state != "behind" else None  # the tables are the migration's
    photos = photo_store_status(request.app.state.cases.photos.root)
    # Ready only when the service can do its job (review46 F2): a service without unit grids files no report, one
    # whose photo store cannot be written no report or action with a photo.
    failing: list[dict[str, object]] = []
    if coverage is not None and not coverage["unit_grids_loaded"]:
        failing.append({"check": "unit_grids", "message": NO_BOUNDARIES_WARNING})
    if not photos["writable"]:
        failing.append({"check": "photo_store", "message": photos["warnings"][0]})  # type: ignore[index]
    status = {"current": "ok", "ahead": "schema_ahead", "behind": "migration_pending"}[state]
    calendar = calendar_status(request)
    calendar["working_hours"] = hours
    if hours_warning is not None:
        calendar["warnings"] = [*cast(list[str], calendar["warnings"]), hours_warning]
    answer: dict[str, object] = {
        "status": "not_ready" if failing and state != "behind" else status,
        "database": {"reachable": True, **major_versions(server, postgis)},
        "migration": {"current": current, "head": head, "up_to_date": ok},
        "coverage": coverage,
        "photo_store": photos,
        "calendar": calendar,
    }
    if failing:
        answer["failing"] = failing
    if state == "ahead":
        answer["warnings"] = [schema_ahead_warning(str(current), head)]
    ready = state != "behind" and not failing
    return JSONResponse(answer, status_code=200 if ready else 503, headers=NO_STORE)  # read fresh


def major_versions(server_version_num: str, postgis: str) -> dict[str, str]:
    """PostgreSQL's major version (``150018`` → ``15``) and PostGIS's major.minor (``3.3.2`` → ``3.3``): what a
    monitor or an upgrade check needs. /health answers anyone, so not the exact builds (``15.18 (Debian
    15.18-0+deb12u1)``), which tell an attacker which published flaws are unpatched (review54 F9); the
    administrator reads them with ``SELECT version(), postgis_full_version()``."""
    return {
        "server_version": str(int(server_version_num) // 10000),
        "postgis_version": ".".join(str(postgis).split(".")[:2]),
    }


def schema_ahead_warning(current: str, head: str) -> str:
    """/health's warning (zh-CN first) for a schema migrated by a newer gisgrid than this process."""
    return (
        f"数据库结构比本程序新(版本 {current},本程序只认识到 {head}):请升级本主机的 gisgrid,或恢复升级前的备份;"
        f"本进程继续服务,但重启将被拒绝 / the database schema is newer than this code (revision {current}, this "
        f"gisgrid knows up to {head}): install the gisgrid version that migrated it on this host, or restore the "
        "backup; this process keeps serving, a restart of this version is refused"
    )
