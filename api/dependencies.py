"""Query parameters as reusable dependencies (one function per parameter family, as in tipg)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Query

from gisgrid.geodesy import BBox, parse_bbox


async def bbox_query(
    bbox: Annotated[
        str | None,
        Query(description="minLon,minLat,maxLon,maxLat (CGCS2000/WGS84 degrees)", examples=["113.6,34.7,113.8,34.8"]),
    ] = None,
) -> BBox | None:
    return None if bbox is None else parse_bbox(bbox)


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
