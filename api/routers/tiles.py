"""``/tiles/{layer}/{z}/{x}/{y}.mvt``: Mapbox vector tiles of grids, components and cases (ST_AsMVT)."""

from __future__ import annotations

import zlib

import asyncpg
from fastapi import APIRouter, Request, Response

from api.deps import TilePool
from gisgrid.errors import DatabaseError, NotFound
from gisgrid.settings import STORAGE_SRID
from gisgrid.workflow import TERMINAL_STATES
from maps import tiles_sql

router = APIRouter(prefix="/tiles", tags=["tiles 矢量瓦片"])

#: Cases whose deadline clock does not run (grey on the map).
NO_CLOCK_STATES = (*sorted(TERMINAL_STATES), "suspended")
#: Tiles are gzipped here, fast (nginx's default level): level 9 took 42 ms on a 368 KB tile for 12 % less than
#: level 1's 3 ms. The app's GZip middleware leaves an encoded answer alone.
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
        f"Extent {tiles_sql.EXTENT}, buffer {tiles_sql.BUFFER}; components only from zoom 13 (empty below); "
        f"at most {tiles_sql.MAX_FEATURES} features per tile. Gzipped when the client accepts it."
    ),
    response_class=Response,
    responses={200: {"content": {tiles_sql.MEDIA_TYPE: {}}}, 404: {"description": "Unknown layer or tile"}},
    openapi_extra={"parameters": _PATH_PARAMETERS},
)
async def tile(request: Request) -> Response:
    # The hottest path: the address is read and checked here (parse_tile) rather than by FastAPI's parameter
    # machinery, which costs about as much again as a small tile's whole query; the parameters are documented above.
    p = request.path_params
    layer, z, x, y = p["layer"], p["z"], p["x"], p["y"]
    try:
        spec, zi, xi, yi = tiles_sql.parse_tile(layer, z, x, y)
    except tiles_sql.TileNotFound as exc:
        raise NotFound(str(exc)) from None
    pool: TilePool = request.app.state.tile_pool
    try:
        data = await tiles_sql.fetch_tile_async(
            await pool.get(), spec, zi, xi, yi, srid=STORAGE_SRID, no_clock_states=NO_CLOCK_STATES
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseError(f"tile {layer}/{z}/{x}/{y}: the database did not answer ({exc})") from None
    headers = {"Cache-Control": f"public, max-age={spec.max_age}", "Vary": "Accept-Encoding"}
    if len(data) >= GZIP_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
        data = zlib.compress(data, GZIP_LEVEL, wbits=31)  # wbits 31: a gzip member
        headers["Content-Encoding"] = "gzip"
    return Response(content=data, media_type=tiles_sql.MEDIA_TYPE, headers=headers)
