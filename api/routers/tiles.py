"""``/tiles/{layer}/{z}/{x}/{y}.mvt``: Mapbox vector tiles of grids, components and cases (ST_AsMVT)."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request, Response
from isal import isal_zlib
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import DATABASE_UNAVAILABLE, AsyncPool
from api.errors import domain_error_response
from api.prefix import route_path
from api.schemas import ErrorBody
from gisgrid.constants import STORAGE_SRID
from gisgrid.errors import DatabaseError, GisgridError, NotFound, Reason
from gisgrid.storage.database import describe_connect_error, timeout_cause
from gisgrid.workflow import TERMINAL_STATES
from maps import tiles_sql

PREFIX = "/tiles/"
router = APIRouter(prefix=PREFIX.rstrip("/"), tags=["tiles 矢量瓦片"])

#: Cases whose deadline clock does not run (grey on the map).
NO_CLOCK_STATES = (*sorted(TERMINAL_STATES), "suspended")
#: Tiles are gzipped here, fast: ISA-L's level 1 is zlib level 1's size (2.34 against 2.32 KB from a 6.7 KB z15
#: unit-grid tile) in a third of the time (22 against 64 µs); zlib level 9 took 42 ms on a 368 KB tile for 12 %
#: less than level 1's 3 ms. The app's GZip middleware leaves an encoded answer alone.
GZIP_LEVEL = 1
GZIP_MIN_BYTES = 1024


_PATH_PARAMETERS = [
    {"name": "layer", "in": "path", "required": True, "schema": {"type": "string", "enum": list(tiles_sql.LAYERS)}},
    *({"name": n, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}} for n in "zxy"),
]


@router.get(
    "/{layer}/{z}/{x}/{y}.mvt",
    summary="矢量瓦片 Vector tile (MVT) of one layer",
    description=(
        "Layers: " + ", ".join(tiles_sql.LAYERS) + ". Each tile holds one MVT layer named like the URL layer. "
        f"Extent {tiles_sql.EXTENT}, buffer {tiles_sql.BUFFER}; components only from zoom "
        f"{tiles_sql.LAYERS['components'].min_zoom} and cases from zoom {tiles_sql.LAYERS['cases'].min_zoom} "
        "(empty below: /cases/heat is the overview); "
        f"at most {tiles_sql.MAX_FEATURES} features per tile. Gzipped when the client accepts it."
    ),
    response_class=Response,
    responses={
        200: {"content": {tiles_sql.MEDIA_TYPE: {}}},
        404: {"model": ErrorBody, "description": "Unknown layer or tile"},
    },
    openapi_extra={"parameters": _PATH_PARAMETERS},
)
async def tile(request: Request) -> Response:
    # Served by TileFastPath before FastAPI's layers; this route is what the OpenAPI document shows, and answers
    # the same when the app runs without that middleware.
    p = request.path_params
    return await tile_response(
        request.app.state.tile_pool,
        p["layer"],
        p["z"],
        p["x"],
        p["y"],
        request.headers.get("accept-encoding", ""),
        request.headers.get("if-none-match", ""),
    )


async def tile_response(
    pool: AsyncPool, layer: str, z: str, x: str, y: str, accept_encoding: str, if_none_match: str = ""
) -> Response:
    """One tile as an HTTP response: the address checked (404 naming what is wrong), the MVT from the tile pool
    (503 when the database does not answer), gzipped when the client accepts it; a weak ETag of the tile's content
    (the same for both encodings), and 304 without a body when the client already holds that content."""
    try:
        spec, zi, xi, yi = tiles_sql.parse_tile(layer, z, x, y)
    except tiles_sql.TileNotFound as exc:
        raise NotFound(str(exc)) from None
    try:
        data = await tiles_sql.fetch_tile_async(
            pool, spec, zi, xi, yi, srid=STORAGE_SRID, no_clock_states=NO_CLOCK_STATES
        )
    except DATABASE_UNAVAILABLE as exc:
        timed_out = timeout_cause(exc)  # asyncpg's command_timeout (an OSError) or the server's statement_timeout
        if timed_out is not None:
            raise DatabaseError(f"tile {layer}/{z}/{x}/{y}: {timed_out}", reason=Reason.DATABASE_TIMEOUT) from None
        raise DatabaseError(f"tile {layer}/{z}/{x}/{y}: {describe_connect_error(pool.url, exc)}") from None
    etag = 'W/"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'
    headers = {
        "Cache-Control": f"{'public' if spec.shared_cache else 'private'}, max-age={spec.max_age}",
        "Vary": "Accept-Encoding",
        "ETag": etag,
    }
    if if_none_match and etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    if len(data) >= GZIP_MIN_BYTES and accepts_gzip(accept_encoding):
        data = isal_zlib.compress(data, GZIP_LEVEL, wbits=31)  # wbits 31: a gzip member
        headers["Content-Encoding"] = "gzip"
    return Response(content=data, media_type=tiles_sql.MEDIA_TYPE, headers=headers)


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Whether an If-None-Match header names ``etag`` (compared weakly, as RFC 9110 has it for If-None-Match) or
    is ``*``."""
    opaque = etag.removeprefix("W/")
    return any(tag == "*" or tag.removeprefix("W/") == opaque for tag in (t.strip() for t in if_none_match.split(",")))


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header takes gzip: its own q (or that of ``*`` when gzip is not named) above 0."""
    quality: dict[str, float] = {}
    for part in accept_encoding.lower().split(","):
        name, *params = (p.strip() for p in part.split(";"))
        q = next((p.removeprefix("q=").strip() for p in params if p.startswith("q=")), "1")
        try:
            quality[name] = float(q)
        except ValueError:
            quality[name] = 0.0  # an unreadable weight takes nothing
    return quality.get("gzip", quality.get("*", 0.0)) > 0


class TileFastPath:
    """ASGI middleware answering ``GET /tiles/{layer}/{z}/{x}/{y}.mvt`` straight from the tile pool, before
    FastAPI's routing, dependency and middleware layers: measured in process, those cost ~0.3 ms a request — as
    long as a small tile's whole query. Errors get the app's JSON bodies; everything else passes through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope)  # behind a proxy uvicorn puts the root path in front
        if scope["type"] == "http" and scope["method"] == "GET" and path.startswith(PREFIX):
            parts = path[len(PREFIX) :].split("/")
            if len(parts) == 4 and parts[3].endswith(".mvt"):
                layer, z, x, y = parts[0], parts[1], parts[2], parts[3][:-4]
                accept = match = ""
                for k, v in scope["headers"]:
                    if k == b"accept-encoding":
                        accept = v.decode("latin-1")
                    elif k == b"if-none-match":
                        match = v.decode("latin-1")
                try:
                    response = await tile_response(scope["app"].state.tile_pool, layer, z, x, y, accept, match)
                except GisgridError as exc:
                    response = domain_error_response(exc, f"GET {path}")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
