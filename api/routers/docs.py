"""``/docs`` (Swagger UI) from the app's own vendored files, under the proxy's prefix.

FastAPI's own page loads it from cdn.jsdelivr.net (the favicon from fastapi.tiangolo.com): blank on an offline
city intranet. Here the same page links the pinned npm copy
(``maps/package.json``, served under ``/static/vendor``) and the OpenAPI document, each after the request's root
path, and Swagger UI's online validator badge is off.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from api.http import nonced
from api.prefix import BaseDep
from maps.assets import ASSETS

router = APIRouter(include_in_schema=False)

#: Swagger UI would otherwise send the OpenAPI document's URL to validator.swagger.io for its badge.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
#: This origin only (frame-ancestors comes from GISGRID_FRAME_ANCESTORS, merged in by api.http.HardeningHeaders).
#: ReDoc is not offered: its npm package brings ~120 peer packages for one optional page.
#: Its inline bootstrap script runs by the request's nonce (``{nonce}``, :func:`api.http.nonced`), no other.
CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'self'"
)


def _own_origin_only(page: HTMLResponse) -> HTMLResponse:
    html, nonce = nonced(bytes(page.body).decode())
    return HTMLResponse(html, headers={"Content-Security-Policy": CSP.format(nonce=nonce)})


@router.get("/docs")
def swagger_ui(request: Request, base: BaseDep) -> HTMLResponse:
    app = request.app
    return _own_origin_only(
        get_swagger_ui_html(
            openapi_url=base + app.openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=base + ASSETS["swagger_ui_js"],
            swagger_css_url=base + ASSETS["swagger_ui_css"],
            swagger_favicon_url=base + ASSETS["swagger_ui_favicon"],
            swagger_ui_parameters={**SWAGGER_UI_PARAMETERS, **(app.swagger_ui_parameters or {})},
        )
    )
