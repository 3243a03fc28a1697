"""``/``: the zh-CN start page listing what the service offers (maps.home), and its icon."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from api.deps import SettingsDep
from api.prefix import BaseDep
from maps.home import FAVICON_SVG, build_home

router = APIRouter(tags=["home"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(base: BaseDep, settings: SettingsDep) -> str:
    # headed by the city's 监督指挥中心 (GISGRID_CENTER_NAME), as its orders are; links after the proxy's prefix
    return build_home(base=base, center_name=settings.center_name)


# The start page's icon, served under the root path (maps.home links it there).
@router.get("/favicon.svg", include_in_schema=False)
def favicon() -> Response:
    return Response(FAVICON_SVG, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})
