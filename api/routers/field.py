"""``/field``: the phone page for field staff (网格员/监督员上报, zh-CN), and ``/field/classes``: its class list."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.dependencies import known_query_only
from api.deps import EngineDep, SettingsDep
from api.http import nonced
from api.prefix import BaseDep
from gisgrid import workflow
from maps import assets, console
from maps import field as page

router = APIRouter(tags=["field 移动上报"])

Scheme = Literal["gbt47678", "cjt214"]


@router.get("/field", response_class=HTMLResponse, summary="网格员上报 Field reporting page for a phone (zh-CN)")
def field_page(
    request: Request,
    engine: EngineDep,
    base: BaseDep,
    settings: SettingsDep,
    scheme: Annotated[Scheme, Query()] = "gbt47678",
) -> HTMLResponse:
    basemap = request.app.state.basemap  # the console's basemap (made from the settings at start-up)
    with engine.connect() as conn:
        bounds = console.coverage_bounds(conn)
    html = page.build_field_page(
        bounds=bounds,
        roles=workflow.ROLES,
        scheme=scheme,
        basemap=basemap,
        reason_texts=request.app.state.reason_texts,
        base=base,
        center_name=settings.center_name,  # GISGRID_CENTER_NAME titles the page
    )
    html, nonce = nonced(html)
    policy = page.csp(basemap, nonce)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache", "Content-Security-Policy": policy})


# The API route refuses a parameter it does not take (the page itself does not: a shared link may carry a
# messenger's own, such as from=singlemessage).
@router.get(
    "/field/classes",
    summary="上报类别 Event classes for the field page's picker",
    dependencies=[Depends(known_query_only)],
)
def field_classes(request: Request, scheme: Annotated[Scheme, Query()] = "gbt47678") -> JSONResponse:
    data: list[dict[str, Any]] = page.class_list(request.app.state.cases.events, scheme, request.app.state.search_terms)
    return JSONResponse({"data": data, "count": len(data)}, headers={"Cache-Control": "public, max-age=300"})


@router.get(page.SCRIPT_URL, include_in_schema=False)
def field_script() -> Response:
    """The field page's own script: its URL names its content (a new release is a new URL), so it is kept for good."""
    return Response(
        page.PAGE_JS,
        media_type="text/javascript",
        headers={"Cache-Control": f"public, max-age={assets.IMMUTABLE_MAX_AGE}, immutable"},
    )


@router.get(page.SW_URL, include_in_schema=False)
def field_service_worker(base: BaseDep) -> Response:
    """The field page's service worker: it lets /field open offline (HTTPS or localhost only). Its scope and the
    URLs it stores are under the proxy's path prefix, as the page that registers it."""
    return Response(
        page.service_worker(base),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": base + page.SW_SCOPE},
    )
