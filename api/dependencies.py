"""Query parameters as reusable dependencies (one function per parameter family, as in tipg)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Query, Request
from fastapi.dependencies.models import Dependant
from pydantic import BaseModel

from api.http import SHIFTED_GEOJSON_HELP
from gisgrid.errors import InvalidInput, Reason
from gisgrid.geodesy import BBox, parse_bbox
from gisgrid.paging import MAX_LIMIT, MAX_OFFSET
from gisgrid.photos import THUMB_MAX


async def bbox_query(
    bbox: Annotated[
        str | None,
        Query(
            description="minLon,minLat,maxLon,maxLat in degrees: CGCS2000/WGS84, or the request's datum where it "
            "takes one",
            examples=["113.6,34.7,113.8,34.8"],
        ),
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


#: ``datum`` of a GET that answers places (GET /components, /grids, /grids/locate): one meaning with GET /cases'
#: — the datum of the lon/lat and ``bbox`` given and of every coordinate answered; the answer names it. Its
#: default is the storage frame's label, ``cgcs2000`` (wgs84 is the same numbers).
AnswerDatumQuery = Annotated[
    Literal["wgs84", "cgcs2000", "gcj02", "bd09"],
    Query(
        description="Datum of lon/lat and bbox given and of the coordinates answered (the answer's datum names it): "
        "cgcs2000 (stored; ≈ wgs84), gcj02 to draw on AMap/Tencent tiles, bd09 on Baidu's; a GeoJSON answer: "
        + SHIFTED_GEOJSON_HELP
    ),
]
#: A photo's ``size``: a plain string checked by :func:`gisgrid.photos.check_size`, whose 422 names the value given.
PhotoSizeQuery = Annotated[
    str | None,
    Query(description=f"thumb: a JPEG at most {THUMB_MAX} px on the long edge, turned upright; omit: the original"),
]


#: Marks a query parameter that takes several values as one comma-separated text (``state=reported,filed``):
#: OpenAPI shows it on the parameter's schema, and :func:`refuse_repeated_query` tells to use that form.
COMMA_SEPARATED: dict[str, Any] = {"x-comma-separated": True}


def _query_params(dependant: Dependant) -> dict[str, bool]:
    """A route's query parameters (its dependencies' too), by name: whether each takes a comma-separated list."""
    found: dict[str, bool] = {}
    for param in dependant.query_params:
        extra = param.field_info.json_schema_extra
        found[param.alias] = isinstance(extra, dict) and bool(extra.get("x-comma-separated"))
    for sub in dependant.dependencies:
        found.update(_query_params(sub))
    return found


_PARAMS_ATTR = "gisgrid_query_params"  # a route's query parameters, found on its first request with a query


def route_query_params(route: Any) -> dict[str, bool]:
    """:func:`_query_params` of ``route``, worked out once (routes are not hashable; their dependency tree does
    not change once built)."""
    params: dict[str, bool] | None = getattr(route, _PARAMS_ATTR, None)
    if params is None:
        params = _query_params(route.dependant)
        setattr(route, _PARAMS_ATTR, params)
    return params


def _body_fields(dependant: Dependant) -> set[str]:
    """The names a route reads from its body: a JSON model's fields, or the form's fields and files."""
    found: set[str] = set()
    for param in dependant.body_params:
        model = param.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            found.update(field.alias or name for name, field in model.model_fields.items())
        else:
            found.add(param.alias)
    for sub in dependant.dependencies:
        found.update(_body_fields(sub))
    return found


async def known_query_only(request: Request) -> None:
    """Refuse a query parameter the endpoint does not take: a misspelt filter (``stat=closed``) or one it lacks
    would otherwise be ignored, and the answer hold every row with no sign of it."""
    route = request.scope.get("route")
    if route is None or not request.query_params:
        return
    names = route_query_params(route)
    unknown = sorted(set(request.query_params) - set(names))
    if not unknown:
        return
    takes = f"it takes {', '.join(sorted(names))}" if names else "it takes none"
    if "GET" in getattr(route, "methods", ()):
        raise InvalidInput(
            f"{unknown[0]}: not a parameter of {request.url.path}; {takes}",
            detail=[{"field": u, "reason": "unknown parameter"} for u in unknown],
            reason=Reason.EXTRA_FORBIDDEN,
        )
    # A write: a body field sent in the query string (POST /cases?datum=gcj02) is the natural mistake — say where
    # it belongs.
    body = _body_fields(route.dependant)
    first = unknown[0]
    raise InvalidInput(
        f"{first}: not a query parameter of {request.method} {request.url.path}; {takes}"
        + (f"; {first} is a body field: send it in the body" if first in body else ""),
        detail=[
            {"field": u, "reason": "a body field, not a query parameter" if u in body else "unknown parameter"}
            for u in unknown
        ],
        reason=Reason.EXTRA_FORBIDDEN,
    )


async def known_query_only_on_writes(request: Request) -> None:
    """:func:`known_query_only` for every route that does not answer GET (a dependency of the whole app, so a write
    route added later has it too): its query parameters were ignored, so ``POST /cases?datum=gcj02`` stored the
    point as CGCS2000, ~570 m off (review42 D1). A GET route has its own choice (the pages take what a shared link
    carries)."""
    route = request.scope.get("route")
    if route is None or "GET" in getattr(route, "methods", ()):
        return
    await known_query_only(request)


async def refuse_repeated_query(request: Request) -> None:
    """Refuse a query parameter of the route given more than once (422 ``repeated_parameter`` naming it): the
    framework keeps only the last value, so ``state=reported&state=filed`` — how many clients send a list — listed
    the filed cases alone, with 200 and no sign of it. A dependency of the whole app, so every route has it; a
    parameter the route does not take is left to :func:`known_query_only` (or ignored, where a route allows that)."""
    route = request.scope.get("route")
    if route is None or not getattr(route, "dependant", None) or not request.query_params:
        return
    params = route_query_params(route)
    values: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        values.setdefault(name, []).append(value)
    repeated = [name for name, given in values.items() if len(given) > 1 and name in params]
    if not repeated:
        return
    first = repeated[0]
    if params[first]:
        how = f"send it once, several values comma-separated ({first}={','.join(values[first])})"
    else:
        how = "send it once"
    raise InvalidInput(
        f"{first}: given {len(values[first])} times; {how}",
        detail=[
            {
                "field": name,
                "reason": f"given {len(values[name])} times"
                + ("; several values go comma-separated in one" if params[name] else ""),
            }
            for name in repeated
        ],
        reason=Reason.REPEATED_PARAMETER,
    )


#: A time whose UTC offset's ``+`` arrived as a space: ``2026-11-29T16:17:00+08:00`` sent unencoded in a URL.
_PLUS_AS_SPACE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)? (\d{2}(?::?\d{2})?)")


async def refuse_unencoded_plus(request: Request) -> None:
    """Refuse a time whose offset's ``+`` came unencoded (a URL's ``+`` is a space): the framework's "unexpected
    extra characters" gave no hint. Says to send ``%2B`` (zh-CN first), naming the parameter; a dependency of the
    whole app, so every time parameter (since, until, changed_since, as_of …) has it."""
    if not request.query_params:
        return
    for name, value in request.query_params.multi_items():
        found = _PLUS_AS_SPACE.fullmatch(value.strip())
        if found is None:
            continue
        fixed = f"{value.strip()[: found.start(1) - 1]}%2B{found.group(1)}"
        raise InvalidInput(
            f"时间中的“+”须写作 %2B / {name}: {value!r} — a '+' sent unencoded in a URL arrives as a space; send "
            f"the offset's + as %2B ({name}={fixed})",
            detail=[{"field": name, "reason": "'+' of the UTC offset arrived as a space: send it as %2B"}],
            reason=Reason.DATETIME_PARSING,
        )
