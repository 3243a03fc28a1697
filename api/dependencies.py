"""Query parameters as reusable dependencies (one function per parameter family, as in tipg)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Query, Request
from fastapi.dependencies.models import Dependant

from gisgrid.errors import InvalidInput, Reason
from gisgrid.geodesy import BBox, parse_bbox
from gisgrid.paging import MAX_LIMIT, MAX_OFFSET
from gisgrid.photos import THUMB_MAX


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
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Features per page")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Features to skip")] = 0,
) -> Page:
    """Paging parameters (async: a sync dependency costs a thread-pool hop per request)."""
    return Page(limit, offset)


DatumQuery = Annotated[
    Literal["wgs84", "cgcs2000", "gcj02", "bd09"],
    Query(description="Datum of lon/lat: wgs84, cgcs2000, gcj02 (AMap/Tencent) or bd09 (Baidu)"),
]
#: A photo's ``size``: a plain string checked by :func:`gisgrid.photos.check_size`, whose 422 names the value given.
PhotoSizeQuery = Annotated[
    str | None,
    Query(description=f"thumb: a JPEG at most {THUMB_MAX} px on the long edge, turned upright; omit: the original"),
]


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


_NAMES_ATTR = "gisgrid_query_names"  # a route's query parameter names, found on its first request with a query


async def known_query_only(request: Request) -> None:
    """Refuse a query parameter the endpoint does not take: a misspelt filter (``stat=closed``) or one it lacks
    would otherwise be ignored, and the answer hold every row with no sign of it."""
    route = request.scope.get("route")
    if route is None or not request.query_params:
        return
    names: frozenset[str] | None = getattr(route, _NAMES_ATTR, None)
    if names is None:  # routes are not hashable; their dependency tree does not change once built
        names = frozenset(_query_names(route.dependant))
        setattr(route, _NAMES_ATTR, names)
    unknown = sorted(set(request.query_params) - names)
    if unknown:
        raise InvalidInput(
            f"{unknown[0]}: not a parameter of {request.url.path}; it takes {', '.join(sorted(names))}",
            detail=[{"field": u, "reason": "unknown parameter"} for u in unknown],
            reason=Reason.EXTRA_FORBIDDEN,
        )
