"""``/console``: the operator map console (zh-CN), and ``/static/vendor/...``: its self-hosted JS/CSS/fonts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, HTMLResponse

from api.deps import EngineDep, SettingsDep
from api.http import nonced
from api.prefix import BaseDep
from gisgrid import workflow
from gisgrid.errors import NotFound
from gisgrid.evaluation import INDICATORS, REGION_COLUMNS
from maps import assets
from maps import console as page

router = APIRouter(tags=["console 指挥地图"])


@router.get("/console", response_class=HTMLResponse, summary="指挥中心地图 Operator map console (zh-CN)")
def console(request: Request, engine: EngineDep, base: BaseDep, settings: SettingsDep) -> HTMLResponse:
    basemap = request.app.state.basemap  # made from the settings at start-up
    services = request.app.state.cases
    with engine.connect() as conn:
        bounds = page.coverage_bounds(conn)
    html = page.build_console(
        bounds=bounds,
        states=workflow.STATES,
        roles=workflow.ROLES,
        actions=workflow.ACTIONS,
        required={a: rule.required for a, rule in workflow.TRANSITIONS.items()},
        optional={a: rule.optional for a, rule in workflow.TRANSITIONS.items()},
        field_labels=workflow.FIELD_LABELS,
        field_kinds=workflow.FIELD_KINDS,
        time_units=workflow.TIME_UNITS,
        escalation_levels=workflow.ESCALATION_LEVELS,
        departments=services.departments,
        classes=page.event_classes(services.events, workflow.TIME_UNITS),
        indicators={c: INDICATORS[c] for c in REGION_COLUMNS if c in INDICATORS},
        basemap=basemap,
        reason_texts=request.app.state.reason_texts,
        base=base,
        center_name=settings.center_name,  # GISGRID_CENTER_NAME titles the page
    )
    html, nonce = nonced(html)
    policy = page.csp(basemap, nonce)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache", "Content-Security-Policy": policy})


@router.get("/static/vendor/{asset_path:path}", include_in_schema=False)
def vendor_asset(asset_path: Annotated[str, Path(max_length=300)]) -> FileResponse:
    path = assets.resolve(asset_path)
    if path is None:
        raise NotFound(f"no vendored asset {asset_path!r} (install them with: python -m maps.assets install)")
    age = assets.max_age(asset_path)
    cache = f"public, max-age={age}" + (", immutable" if age == assets.IMMUTABLE_MAX_AGE else "")
    return FileResponse(path, media_type=assets.media_type(path), headers={"Cache-Control": cache})
