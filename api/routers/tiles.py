"""``/tiles/{layer}/{z}/{x}/{y}.mvt``: Mapbox vector tiles of grids, components and cases (ST_AsMVT)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import EngineDep
from gisgrid.errors import NotFound
from gisgrid.settings import STORAGE_SRID
from gisgrid.workflow import TERMINAL_STATES
from maps import tiles_sql

router = APIRouter(prefix="/tiles", tags=["tiles 矢量瓦片"])

#: Cases whose deadline clock does not run (grey on the map).
NO_CLOCK_STATES = (*sorted(TERMINAL_STATES), "suspended")


@router.get(
    "/{layer}/{z}/{x}/{y}.mvt",
    summary="矢量瓦片 Vector tile (MVT) of one layer",
    description=(
        "Layers: " + ", ".join(tiles_sql.LAYERS) + ". Each tile holds one MVT layer named like the URL layer. "
        f"Extent {tiles_sql.EXTENT}, buffer {tiles_sql.BUFFER}; components only from zoom 13 (empty below); "
        f"at most {tiles_sql.MAX_FEATURES} features per tile."
    ),
    response_class=Response,
    responses={200: {"content": {tiles_sql.MEDIA_TYPE: {}}}, 404: {"description": "Unknown layer or tile"}},
)
def tile(engine: EngineDep, layer: str, z: str, x: str, y: str) -> Response:
    try:
        spec, zi, xi, yi = tiles_sql.parse_tile(layer, z, x, y)
    except tiles_sql.TileNotFound as exc:
        raise NotFound(str(exc)) from None
    with engine.connect() as conn:
        data = tiles_sql.fetch_tile(conn, spec, zi, xi, yi, srid=STORAGE_SRID, no_clock_states=NO_CLOCK_STATES)
    return Response(
        content=data,
        media_type=tiles_sql.MEDIA_TYPE,
        headers={"Cache-Control": f"public, max-age={spec.max_age}"},
    )
