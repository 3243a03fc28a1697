"""``/``: a plain zh-CN landing page listing what the service offers (no external assets)."""

from __future__ import annotations

import html

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from api.deps import SettingsDep
from api.prefix import BaseDep

router = APIRouter(tags=["home"])

_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{center} · gisgrid 数字化城市管理</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<style>body{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;max-width:46rem;margin:2rem auto;
padding:0 1rem;color:#1f2933}a{color:#0b6bcb}li{margin:.4rem 0}code{background:#f1f3f5;padding:0 .2rem}</style>
</head><body>
<h1>{center}</h1>
<p>gisgrid 数字化城市管理</p>
<p>万米单元网格 · 城市部件 · 案件管理 — Unit grids, components and cases on PostGIS.</p>
<ul>
<li><a href="/console">指挥中心地图 Operator console</a> · <a href="/field">网格员上报 Field reporting (phone)</a></li>
<li><a href="/docs">接口文档 API documentation (OpenAPI)</a></li>
<li><a href="/health">服务状态 Health</a></li>
<li><a href="/grids?limit=10">单元网格 Unit grids (GeoJSON)</a> ·
    <a href="/grids?tier=1">一级网格 Tier 1</a> · <a href="/grids?tier=2&amp;limit=20">二级网格 Tier 2</a> ·
    <a href="/grids?tier=3&amp;limit=20">三级网格 Tier 3</a></li>
<li>坐标定位 Locate: <code>{base}/grids/locate?lon=…&amp;lat=…&amp;datum=wgs84|cgcs2000|gcj02|bd09</code></li>
</ul>
</body></html>"""


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(base: BaseDep, settings: SettingsDep) -> str:
    base = html.escape(base)  # the links after the proxy's path prefix
    # The city's 监督指挥中心 (GISGRID_CENTER_NAME) heads the page, as it heads its orders.
    # The links first: a name holding "{base}" stays as the orders print it (review56 F7).
    page = _PAGE.replace('href="/', f'href="{base}/').replace("{base}", base)
    return page.replace("{center}", html.escape(settings.center_name))


#: The start page's icon, served under the root path: without a ``<link rel="icon">`` a browser asks for
#: /favicon.ico at the gateway's root, outside GISGRID_ROOT_PATH (a 404 there). A 2×2 grid, the service's subject.
FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect width="16" height="16" rx="2" fill="#0b6bcb"/>'
    '<path d="M8 2v12M2 8h12" stroke="#fff" stroke-width="1.5"/></svg>'
)


@router.get("/favicon.svg", include_in_schema=False)
def favicon() -> Response:
    return Response(FAVICON_SVG, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})
