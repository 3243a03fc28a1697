"""Unit grids and management grids: paged GeoJSON, one grid, and point location."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Request

from api.dependencies import AnswerDatumQuery, BBox, Page, bbox_query, known_query_only, page_query
from api.deps import EngineDep
from api.http import GeoJSONResponse
from api.prefix import page_links
from api.schemas import error_responses
from gisgrid import geodesy
from gisgrid.grids import store

# Every grid query refuses a parameter it does not take (a misspelt one would be ignored).
router = APIRouter(
    prefix="/grids", tags=["grids 网格"], responses=error_responses(404), dependencies=[Depends(known_query_only)]
)

Tier = Literal["unit", "1", "2", "3"]


@router.get("", summary="网格列表 Grids as GeoJSON (paged)", response_class=GeoJSONResponse)
def list_grids(
    request: Request,
    engine: EngineDep,
    bbox: Annotated[BBox | None, Depends(bbox_query)],
    page: Annotated[Page, Depends(page_query)],
    tier: Annotated[Tier, Query(description="unit = 万米单元网格; 1/2/3 = 三级网格 tiers")] = "unit",
    datum: AnswerDatumQuery = geodesy.STORAGE_DATUM,
) -> dict[str, Any]:
    """``datum`` is that of ``bbox`` and of the polygons answered (each vertex converted), as GET /cases takes it."""
    if bbox is not None:
        bbox = geodesy.bbox_to_storage(bbox, datum)
    with engine.connect() as conn:
        features, matched = store.grid_features(conn, tier=tier, bbox=bbox, limit=page.limit, offset=page.offset)
    return {
        "type": "FeatureCollection",
        "features": geodesy.features_in_datum(features, datum),
        "numberMatched": matched,
        "numberReturned": len(features),
        "links": page_links(request, page.limit, page.offset, len(features), matched),
        "datum": datum,
    }


@router.get("/locate", summary="坐标定位 Locate a point to its unit grid and tiers")
def locate(
    engine: EngineDep,
    lon: Annotated[
        float, Query(description="Longitude, −180…180", json_schema_extra={"minimum": -180, "maximum": 180})
    ],
    lat: Annotated[float, Query(description="Latitude, −90…90", json_schema_extra={"minimum": -90, "maximum": 90})],
    datum: AnswerDatumQuery = geodesy.STORAGE_DATUM,
) -> dict[str, Any]:
    """``lon``/``lat`` are read in ``datum`` and answered as given, naming it (its default, cgcs2000, is the storage
    frame's label, as on GET /cases; wgs84 is the same numbers). A point no place (NaN, swapped, out of range) is
    refused as a report's is (422); a point in no unit grid is 404 ``not_found``, reason ``outside_coverage``, its
    items naming ``lon`` and ``lat`` (a lookup that found nothing; a report there is 422 with the same reason)."""
    geodesy.check_point(lon, lat)
    x, y = geodesy.to_storage(np.array([lon]), np.array([lat]), datum)
    with engine.connect() as conn:
        found = store.locate(conn, float(x[0]), float(y[0]))
    return {"lon": lon, "lat": lat, "datum": datum, **found}


@router.get("/{code}", summary="单个网格 One grid by code (a GeoJSON Feature)", response_class=GeoJSONResponse)
def get_grid(engine: EngineDep, code: str, datum: AnswerDatumQuery = geodesy.STORAGE_DATUM) -> dict[str, Any]:
    """The grid with its polygon in ``datum`` (each vertex converted)."""
    with engine.connect() as conn:
        feature = store.grid_feature(conn, code)
    return {**geodesy.features_in_datum([feature], datum)[0], "datum": datum}
