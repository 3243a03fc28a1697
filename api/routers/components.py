"""City components (部件): CRUD with history, and spatial queries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import quote

import numpy as np
from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import Field, field_validator

from api.dependencies import AnswerDatumQuery, BBox, Page, PhotoSizeQuery, bbox_query, known_query_only, page_query
from api.deps import ComponentEditorDep, EngineDep
from api.http import MAX_FORM_BYTES, GeoJSONResponse
from api.inputs import FormTextRoute, RequestModel
from api.prefix import BaseDep, page_links
from api.schemas import ComponentFeature, ComponentFeatureCollection, error_responses
from api.uploads import read_photos
from gisgrid import components_store as store
from gisgrid import geodesy
from gisgrid.components import TEXT_LIMITS, attrs_problem
from gisgrid.errors import InvalidInput, NotFound, Reason
from gisgrid.photos import check_size as check_photo_size

router = APIRouter(
    prefix="/components",
    tags=["components 部件"],
    responses=error_responses(404, 409, 413, 415),
    route_class=FormTextRoute,
)

_DEPT = TEXT_LIMITS["dept"]
_DATE = TEXT_LIMITS["date"]


class _Attrs(RequestModel):
    @field_validator("attrs", check_fields=False)
    @classmethod
    def _attrs_size(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        problem = None if v is None else attrs_problem(v)
        if problem:
            raise ValueError(problem)
        return v


class ComponentIn(_Attrs):
    class_code: str = Field(
        max_length=TEXT_LIMITS["class_code"], description="Class code, e.g. 01037 (路灯) in GB/T 47678.5"
    )
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    datum: Literal["wgs84", "cgcs2000", "gcj02", "bd09"] = "wgs84"
    id: str | None = Field(
        default=None, max_length=TEXT_LIMITS["id"], description="Identifier; omitted → generated (never reused)"
    )
    name: str | None = Field(default=None, max_length=TEXT_LIMITS["name"])
    main_dept: str | None = Field(default=None, max_length=_DEPT, description="主管部门 code (default: the class's)")
    owner_dept: str | None = Field(default=None, max_length=_DEPT, description="权属单位 code")
    maint_dept: str | None = Field(default=None, max_length=_DEPT, description="养护单位 code")
    status: Literal["完好", "破损", "丢失", "废弃", "移除"] | None = None
    initial_date: str | None = Field(default=None, max_length=_DATE, description="YYYYMMDD or YYYY-MM-DD")
    change_date: str | None = Field(default=None, max_length=_DATE)
    data_source: Literal["实测", "地形图", "基础地理数据", "其他"] | None = None
    note: str | None = Field(default=None, max_length=TEXT_LIMITS["note"])
    attrs: dict[str, Any] = Field(default_factory=dict, description="Free key/value pairs (at most 100 keys)")
    scheme: Literal["gbt47678", "cjt214"] = "gbt47678"


class ComponentPatch(_Attrs):
    version: int | None = Field(default=None, description="The version you read; a stale one gets 409")
    class_code: str | None = Field(
        default=None,
        max_length=8,
        description="The class the component has (a client may send back what it read): a component's class is part "
        "of its identifier and does not change — another one is refused (422, reason class_change); retire the "
        "component and create a new one",
    )
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    datum: Literal["wgs84", "cgcs2000", "gcj02", "bd09"] = "wgs84"
    name: str | None = Field(default=None, max_length=TEXT_LIMITS["name"])
    main_dept: str | None = Field(default=None, max_length=_DEPT)
    owner_dept: str | None = Field(default=None, max_length=_DEPT)
    maint_dept: str | None = Field(default=None, max_length=_DEPT)
    status: Literal["完好", "破损", "丢失", "废弃", "移除"] | None = None
    change_date: str | None = Field(default=None, max_length=_DATE)
    data_source: Literal["实测", "地形图", "基础地理数据", "其他"] | None = None
    note: str | None = Field(default=None, max_length=TEXT_LIMITS["note"])
    attrs: dict[str, Any] | None = None
    reason: str | None = Field(
        default=None,
        max_length=TEXT_LIMITS["reason"],
        description="Why — required when the status goes into or out of 移除 (retired), kept in the history",
    )


class RetireIn(RequestModel):
    reason: str = Field(
        min_length=1, max_length=TEXT_LIMITS["reason"], description="Why the component is removed (移除)"
    )
    version: int | None = None


def with_photo_urls(feature: dict[str, Any], base: str) -> dict[str, Any]:
    """Each photo of a component answered with where to fetch it and its thumbnail (under the root path), as a
    case's photos are."""
    props = feature.get("properties") or {}
    url = f"{base}/components/{quote(str(feature.get('id') or props.get('id')), safe='')}/photos"
    props["photos"] = [
        {**p, "url": f"{url}/{p['sha256']}", "thumb_url": f"{url}/{p['sha256']}?size=thumb"}
        for p in props.get("photos") or []
    ]
    return feature


def answer(base: str, status_code: int = 200) -> Callable[[dict[str, Any]], GeoJSONResponse]:
    """A write's answer, rendered inside its transaction (the store calls it before the commit): an answer that
    cannot be rendered rolls the change back rather than reporting a 500 for a change that was saved. The component
    as stored, in the storage datum, and saying so (the body's datum was that of the lon/lat sent)."""
    return lambda feature: GeoJSONResponse(
        {**with_photo_urls(feature, base), "datum": geodesy.STORAGE_DATUM}, status_code=status_code
    )


@router.post(
    "",
    status_code=201,
    summary="新增部件 Create a component",
    response_model=None,
    response_class=GeoJSONResponse,
    responses={201: {"model": ComponentFeature, "description": "The component as a GeoJSON Feature"}},
)
def create(
    request: Request, engine: EngineDep, base: BaseDep, actor: ComponentEditorDep, body: ComponentIn
) -> GeoJSONResponse:
    data = body.model_dump(exclude={"scheme"})
    item = store.ComponentInput(**data)
    return store.save_component(
        engine,
        request.app.state.catalogue,
        item,
        scheme=body.scheme,
        actor=actor.name,
        action="create",
        answer=answer(base, 201),
    )


# A misspelt filter (radius=100 for radius_m) must be a 422, not the whole registry (review11 D7).
@router.get(
    "",
    summary="部件查询 Query components (GeoJSON)",
    dependencies=[Depends(known_query_only)],
    response_model=None,
    response_class=GeoJSONResponse,
    responses={200: {"model": ComponentFeatureCollection, "description": "A page of components"}},
)
def search(
    request: Request,
    engine: EngineDep,
    base: BaseDep,
    bbox: Annotated[BBox | None, Depends(bbox_query)],
    page: Annotated[Page, Depends(page_query)],
    grid: Annotated[str | None, Query(pattern=r"^\d{15}$", description="Unit grid code")] = None,
    tier_grid: Annotated[str | None, Query(pattern=r"^(\d{9}|\d{12}|\d{14})$", description="Tier 1/2/3 code")] = None,
    lon: Annotated[float | None, Query(json_schema_extra={"minimum": -180, "maximum": 180})] = None,
    lat: Annotated[float | None, Query(json_schema_extra={"minimum": -90, "maximum": 90})] = None,
    datum: AnswerDatumQuery = geodesy.STORAGE_DATUM,
    radius_m: Annotated[
        float | None, Query(gt=0, le=50_000, allow_inf_nan=False, description="Radius in metres")
    ] = None,
    nearest: Annotated[int | None, Query(ge=1, le=1000, description="k nearest, with distance_m")] = None,
    class_code: Annotated[str | None, Query(pattern=r"^\d{4,5}$")] = None,
    department: str | None = None,
    status: Literal["完好", "破损", "丢失", "废弃", "移除"] | None = None,
) -> dict[str, Any]:
    """``datum`` is that of ``lon``/``lat`` and ``bbox`` and of the features' geometry, as GET /cases takes it."""
    near = None
    if lon is not None and lat is not None:
        geodesy.check_point(lon, lat)  # NaN, swapped, out of range: refused as a report's point is
        x, y = geodesy.to_storage(np.array([lon]), np.array([lat]), datum)
        near = (float(x[0]), float(y[0]))
    elif (lon is None) != (lat is None):
        raise InvalidInput(
            "lon/lat: give both or neither",
            detail=[{"field": "lon" if lon is None else "lat", "reason": "give both lon and lat, or neither"}],
            reason=Reason.MISSING,
        )
    q = store.ComponentQuery(
        bbox=None if bbox is None else geodesy.bbox_to_storage(bbox, datum),
        unit_grid=grid,
        tier_grid=tier_grid,
        near=near,
        radius_m=radius_m,
        nearest=nearest,
        class_code=class_code,
        department=department,
        status=status,
        limit=page.limit,
        offset=page.offset,
    )
    with engine.connect() as conn:
        features, matched = store.query_components(conn, q)
    return {
        "type": "FeatureCollection",
        "features": [with_photo_urls(f, base) for f in geodesy.features_in_datum(features, datum)],
        "numberMatched": matched,
        "numberReturned": len(features),
        "links": page_links(request, page.limit, page.offset, len(features), matched),
        "datum": datum,
    }


@router.get(
    "/{component_id}",
    summary="部件详情 One component",
    response_model=None,
    dependencies=[Depends(known_query_only)],  # a misspelt datum (dataum=gcj02) is refused, not answered in cgcs2000
    response_class=GeoJSONResponse,
    responses={200: {"model": ComponentFeature, "description": "The component as a GeoJSON Feature"}},
)
def read(
    engine: EngineDep, base: BaseDep, component_id: str, datum: AnswerDatumQuery = geodesy.STORAGE_DATUM
) -> dict[str, Any]:
    """The component with its geometry in ``datum``, as GET /cases/{id} answers a case's lon/lat."""
    with engine.connect() as conn:
        feature = store.get_component(conn, component_id)
    return {**with_photo_urls(geodesy.features_in_datum([feature], datum)[0], base), "datum": datum}


@router.patch(
    "/{component_id}",
    summary="修改部件 Update: status change, move, departments…",
    response_model=None,
    response_class=GeoJSONResponse,
    responses={200: {"model": ComponentFeature, "description": "The component as stored"}},
)
def update(
    request: Request,
    engine: EngineDep,
    base: BaseDep,
    actor: ComponentEditorDep,
    component_id: str,
    body: ComponentPatch,
) -> GeoJSONResponse:
    changes = body.model_dump(exclude_unset=True, exclude={"version"})
    return store.update_component(
        engine,
        request.app.state.catalogue,
        component_id,
        changes,
        actor=actor.name,
        expected_version=body.version,
        answer=answer(base),
    )


@router.post(
    "/{component_id}/retire",
    summary="移除部件 Retire a component (kept in history)",
    response_model=None,
    response_class=GeoJSONResponse,
    responses={200: {"model": ComponentFeature, "description": "The component as stored"}},
)
def retire(
    engine: EngineDep, base: BaseDep, actor: ComponentEditorDep, component_id: str, body: RetireIn
) -> GeoJSONResponse:
    return store.retire_component(
        engine, component_id, actor=actor.name, reason=body.reason, expected_version=body.version, answer=answer(base)
    )


@router.get("/{component_id}/history", summary="变更历史 Change history", dependencies=[Depends(known_query_only)])
def history(engine: EngineDep, component_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return {"id": component_id, "history": store.component_history(conn, component_id)}


@router.post(
    "/{component_id}/photos",
    summary="部件照片 Attach photos (multipart)",
    max_body_size=MAX_FORM_BYTES,
    response_model=None,
    response_class=GeoJSONResponse,
    responses={200: {"model": ComponentFeature, "description": "The component as stored"}},
)
async def add_photos(
    request: Request,
    engine: EngineDep,
    base: BaseDep,
    actor: ComponentEditorDep,
    component_id: str,
    photos: Annotated[list[UploadFile], File(description="JPEG/PNG/HEIC/WebP")],
) -> GeoJSONResponse:
    # Too many refused before any is read; each part's first bytes as it is (a part too large: the service's)
    files = await read_photos(photos, refuse_large=False)
    photo_store = request.app.state.cases.photos
    # Decoding, storing and the database write block: off the event loop.
    return await run_in_threadpool(
        store.add_photos, engine, photo_store, component_id, files, actor=actor.name, answer=answer(base)
    )


@router.get(
    "/{component_id}/photos/{sha256}",
    summary="部件照片 One photo (size=thumb: its thumbnail)",
    dependencies=[Depends(known_query_only)],
)
def photo(
    request: Request, engine: EngineDep, component_id: str, sha256: str, size: PhotoSizeQuery = None
) -> FileResponse:
    check_photo_size(size)
    with engine.connect() as conn:
        feature = store.get_component(conn, component_id)
    match = [p for p in feature["properties"]["photos"] or [] if p.get("sha256") == sha256]
    if not match:
        raise NotFound(f"component {component_id} has no photo {sha256}")
    path, media_type = request.app.state.cases.photos.file(sha256, size)
    return FileResponse(path, media_type=media_type or match[0]["content_type"])
