"""Query parameters as reusable dependencies (one function per parameter family, as in tipg)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Query

from gisgrid.errors import InvalidInput

BBox = tuple[float, float, float, float]


async def bbox_query(
    bbox: Annotated[
        str | None,
        Query(description="minLon,minLat,maxLon,maxLat (CGCS2000/WGS84 degrees)", examples=["113.6,34.7,113.8,34.8"]),
    ] = None,
) -> BBox | None:
    if bbox is None:
        return None
    parts = bbox.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise InvalidInput(f"bbox: {bbox!r} is not four comma-separated numbers", detail=[{"field": "bbox"}]) from None
    if len(values) != 4:
        raise InvalidInput(f"bbox: expected 4 numbers, got {len(values)}", detail=[{"field": "bbox"}])
    minx, miny, maxx, maxy = values
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        raise InvalidInput(
            "bbox: need minLon < maxLon within ±180 and minLat < maxLat within ±90", detail=[{"field": "bbox"}]
        )
    return minx, miny, maxx, maxy


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


async def page_query(
    limit: Annotated[int, Query(ge=1, le=5000, description="Features per page")] = 100,
    offset: Annotated[int, Query(ge=0, description="Features to skip")] = 0,
) -> Page:
    """Paging parameters (async: a sync dependency costs a thread-pool hop per request)."""
    return Page(limit, offset)


DatumQuery = Annotated[
    Literal["wgs84", "cgcs2000", "gcj02", "bd09"],
    Query(description="Datum of lon/lat: wgs84, cgcs2000, gcj02 (AMap/Tencent) or bd09 (Baidu)"),
]
