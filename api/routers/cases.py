"""Cases (案件): intake (JSON or form with photos), list/detail, workflow actions, photos, printable orders."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Header, Path, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import Field
from sqlalchemy import Engine, text

from api.dependencies import COMMA_SEPARATED, BBox, Page, PhotoSizeQuery, bbox_query, known_query_only, page_query
from api.deps import DATABASE_UNAVAILABLE, ActingDep, ActorDep, AsyncPool, EngineDep, IntakePoolDep, SettingsDep
from api.http import GEOJSON_MEDIA_TYPE, MAX_FORM_BYTES, SHIFTED_GEOJSON_HELP, GeoJSONResponse
from api.inputs import FormTextRoute, RequestModel, form_payload
from api.prefix import BaseDep, cursor_links
from api.routers.tiles import etag_matches
from api.schemas import (
    Case,
    CaseDetail,
    CaseFeatureCollection,
    CaseList,
    Datum,
    ErrorBody,
    error_responses,
    geojson_schema,
)
from api.uploads import read_photos
from gisgrid import case_actions, case_documents, case_intake, case_queries, geodesy, workflow
from gisgrid import cases as svc
from gisgrid.documents import CSP as ORDER_CSP
from gisgrid.errors import DatabaseError, InvalidInput, NotFound, Reason
from gisgrid.evaluation_service import PERIOD_HELP, parse_period
from gisgrid.photos import check_size as check_photo_size
from gisgrid.storage.database import describe_connect_error, timeout_cause

#: Every answer of /cases*: a case holds personal data (reporters' names) and changes with each step — a cache may
#: keep it for this user only and must ask again before using it (GET /cases/{id} answers its ETag's 304).
CASE_CACHE_CONTROL = "private, no-cache"


class CaseRoute(FormTextRoute):
    """A /cases route: its answers say ``Cache-Control: private, no-cache`` unless the route set its own."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def private_handler(request: Request) -> Response:
            response = await handler(request)
            response.headers.setdefault("Cache-Control", CASE_CACHE_CONTROL)
            return response

        return private_handler


router = APIRouter(
    prefix="/cases", tags=["cases 案件"], responses=error_responses(403, 404, 409, 413, 415), route_class=CaseRoute
)

if TYPE_CHECKING:  # a Literal built at run time is no type to mypy: it checks it as str, OpenAPI gets the enum
    Source = str
else:
    Source = Literal[tuple(svc.SOURCES)]  # the service's list, stated as an enum
#: The action path parameter: its enum states the workflow's actions (an unknown one is refused by the workflow,
#: 422 unknown_action, as on the CLI).
ActionPath = Annotated[
    str,
    Path(
        description="A workflow action (workflow.TRANSITIONS)", json_schema_extra={"enum": list(workflow.TRANSITIONS)}
    ),
]
_ANSWER_DATUM_HELP = (
    "Datum of lon/lat in the answer, and of bbox: cgcs2000 (stored; ≈ wgs84), gcj02 to draw on AMap/Tencent tiles, "
    "bd09 on Baidu's; format=geojson: " + SHIFTED_GEOJSON_HELP
)
_XREF_HELP = (
    "The sending system's own number for this report (a 12345 工单号, a video vendor's alarm id; 1–64 characters): "
    "stored with the case, answered as external_ref, and found again by GET /cases?external_ref=…"
)
_SOURCE_HELP = (
    "The channel (来源) the report came through, one the X-Role may name: none (the public) public_app; supervisor, "
    "grid_worker patrol; leader leader; department public_app; intake, shift_lead, dispatcher any (they register "
    "12345 calls, video alarms, leaders' instructions: hotline = 12345 热线, sensor = video and IoT alarms "
    "(视频/感知设备); there is no video or 12345 source). Default: the role's first (public_app, patrol, hotline, "
    "leader); another role's channel is a 403 role_not_allowed"
)
_KEY_HELP = (
    "Makes a retried report one case (also as the Idempotency-Key header; both on one request must be equal). "
    "Global across clients: use a new UUID per report; 1–100 characters, not blank"
)


_ACCURACY_HELP = (
    "The location's accuracy in metres (a phone's GPS fix radius), stored with the case and shown with it; "
    f"positive, at most {case_intake.MAX_ACCURACY_M:.0f} (else 422 not_positive / out_of_range). "
    "A figure above the photos' 50 m limit is accepted as sent (the field page asks the worker first); none for a "
    "place not from GPS"
)


class CaseIn(RequestModel):  # a misspelt field is refused, not ignored
    class_code: str = Field(description="Event class, e.g. 06010 (暴露垃圾)")
    scheme: Literal["gbt47678", "cjt214"] = "gbt47678"
    # strict: a number, as the schema says — "113.7" or true is a 422 float_type, not read as 113.7 or 1.0
    lon: float | None = Field(
        default=None, strict=True, description="Longitude in ``datum`` (±180; checked by the service)"
    )
    lat: float | None = Field(
        default=None, strict=True, description="Latitude in ``datum`` (±90; checked by the service)"
    )
    datum: Datum = "wgs84"
    accuracy_m: float | None = Field(default=None, strict=True, description=_ACCURACY_HELP)
    description: str | None = Field(default=None, max_length=svc.TEXT_LIMITS["description"])
    address: str | None = Field(default=None, max_length=svc.TEXT_LIMITS["address"])
    source: Source | None = Field(default=None, description=_SOURCE_HELP)
    reporter: str | None = Field(
        default=None,
        max_length=svc.TEXT_LIMITS["reporter"],
        description="上报人 as shown on the case (e.g. a citizen's name); default the X-Actor name. The report is "
        "recorded as X-Actor's, whatever this says.",
    )
    disposal_type: str | None = None
    external_ref: str | None = Field(default=None, max_length=svc.TEXT_LIMITS["external_ref"], description=_XREF_HELP)
    # minLength stated only: a blank key is refused by the service, naming where it came (string_too_short)
    idempotency_key: (
        Annotated[str, Field(max_length=svc.TEXT_LIMITS["idempotency_key"], json_schema_extra={"minLength": 1})] | None
    ) = Field(default=None, description=_KEY_HELP)


_ACTION_KEY_HELP = (
    "Makes a retried action one step: a request whose answer was lost, sent again with the same key, is answered "
    "with the case as it is (Idempotent-Replayed: true), not refused as a stale version. Per case: a new UUID per "
    "action; 1–100 characters, not blank (also as the Idempotency-Key header; both on one request must be equal)"
)


def payload_fields() -> dict[str, dict[str, list[str]]]:
    """Each action's payload fields as its rule states them (``workflow.TRANSITIONS``: one fact in one place), for
    the OpenAPI document's ``x-payload-fields``: ``required`` must be non-empty, ``optional`` may be sent; any other
    is refused (422 extra_forbidden naming the ones it takes). ``note`` beside ``payload`` is every action's."""
    return {
        action: {"required": list(rule.required), "optional": list(rule.optional)}
        for action, rule in workflow.TRANSITIONS.items()
    }


def _payload_table() -> str:
    rows = [
        f"{a} ({rule.label}): " + (", ".join([*rule.required, *(f"[{f}]" for f in rule.optional)]) or "—")
        for a, rule in workflow.TRANSITIONS.items()
    ]
    return "; ".join(rows)


class ActionIn(RequestModel):
    # strict: true or "2" is a 422 int_type, not version 1 (a 409) or 2
    version: int = Field(strict=True, description="The case version you acted on; a stale one gets 409")
    note: str | None = Field(default=None, max_length=svc.TEXT_LIMITS["note"])
    payload: dict[str, Any] = Field(
        default_factory=dict,
        description="The action's fields (x-payload-fields of the route; [optional]): " + _payload_table(),
    )
    idempotency_key: (
        Annotated[str, Field(max_length=svc.TEXT_LIMITS["idempotency_key"], json_schema_extra={"minLength": 1})] | None
    ) = Field(default=None, description=_ACTION_KEY_HELP)


class MergeIn(RequestModel):
    into: int = Field(strict=True, description="The case to keep")
    version: int = Field(strict=True, description="The duplicate's version you acted on; a stale one gets 409")


async def _services(request: Request) -> svc.CaseServices:  # async: a sync dependency costs a thread hop
    return request.app.state.cases


ServicesDep = Annotated[svc.CaseServices, Depends(_services)]


async def _report(
    pool: AsyncPool,
    engine: Engine,
    services: svc.CaseServices,
    item: case_intake.Intake,
    role: str | None,
    base: str,
) -> JSONResponse:
    """File the report and answer 201 with the new case as stored (200 with the first case when its idempotency
    key was seen before; the timeline is at Location): its lon/lat as stored, saying so in ``datum`` as GET
    /cases/{id} does, whatever datum the body's were in (a write takes no ``?datum=``: review42 D1)."""
    try:
        async with (await pool.get()).acquire() as conn:  # autocommit: intake's read and its one-statement write
            filed = await case_intake.intake_async(conn, services, item)
    except DATABASE_UNAVAILABLE as exc:
        timed_out = timeout_cause(exc)  # asyncpg's command_timeout (an OSError) or the server's statement_timeout
        if timed_out is not None:
            raise DatabaseError(f"case intake: {timed_out}", reason=Reason.DATABASE_TIMEOUT) from None
        raise DatabaseError(f"case intake: {describe_connect_error(pool.url, exc)}") from None
    if filed.created:
        body = svc.case_summary(services, filed.row, role=role)
    else:
        body = await run_in_threadpool(_first_case, engine, services, filed.case_id, role)
    body = _as_stored(body)
    headers = {"Location": f"{base}/cases/{filed.case_id}"}
    if not filed.created:  # a retry answered with the case its key filed, said as a replayed action says it
        headers[_REPLAYED_HEADER] = "true"
    return JSONResponse(body, status_code=201 if filed.created else 200, headers=headers)


def _first_case(engine: Engine, services: svc.CaseServices, case_id: int, role: str | None) -> dict[str, Any]:
    with engine.connect() as conn:  # the keys of the 201 (case_summary), as the case is now
        return svc.case_by_id(conn, services, case_id, role=role)


_KEY_HEADER = "Idempotency-Key"
_REPLAYED_HEADER = "Idempotent-Replayed"


def _as_stored(case: dict[str, Any]) -> dict[str, Any]:
    """A write's case answer: lon/lat as stored, and ``datum`` saying so — whatever datum the body's lon/lat were
    in (a write takes no ``?datum=``, review42 D1: a client meaning the sent lon/lat's had its point misread)."""
    return {**case, "datum": geodesy.STORAGE_DATUM}


def _in_datum(case: dict[str, Any], datum: str) -> dict[str, Any]:
    """A case answer with its lon/lat in ``datum`` and the ``datum`` key saying so (every case answer but a list's
    items, whose list says it)."""
    return {**svc.in_datum([case], datum)[0], "datum": datum}  # (in_datum: lon/lat only)


def _idempotency_key(header: str | None, field: str | None, per: str = "report") -> str | None:
    """The request's idempotency key, from the header or the body's (form's) field: a blank one is refused by
    where it came; both given must be the same key — which of two would a retry send? (Without the check the
    header's won and a retry carrying only the field filed a second case.)"""
    svc.check_idempotency_key(header, _KEY_HEADER, per)
    svc.check_idempotency_key(field, "idempotency_key", per)
    if header is not None and field is not None and header != field:
        why = "the Idempotency-Key header and the idempotency_key field differ"
        raise InvalidInput(
            f"{_KEY_HEADER}, idempotency_key: two different keys ({header!r}, {field!r}); send one, or the same in "
            "both",
            detail=[{"field": _KEY_HEADER, "reason": why}, {"field": "idempotency_key", "reason": why}],
            reason=Reason.VALUE_ERROR,
        )
    return header if header is not None else field


_LOCATION = {"description": "The case's URL (GET it for the timeline)", "schema": {"type": "string"}}
_REPLAYED = {
    "description": "true: a retry under an idempotency key already used for this request, answered with the case "
    "as it is now; absent otherwise",
    "schema": {"type": "string", "enum": ["true"]},
}
_REPORT_ANSWERS: dict[int | str, dict[str, Any]] = {
    201: {
        "model": Case,
        "description": "The new case, as stored; Location names it",
        "headers": {"Location": _LOCATION},
    },
    200: {
        "model": Case,
        "description": "The idempotency key was seen before with this report: the case it filed (Idempotent-Replayed: "
        "true)",
        "headers": {"Location": _LOCATION, _REPLAYED_HEADER: _REPLAYED},
    },
    409: {
        "model": ErrorBody,
        "description": "The idempotency key was used for another report (idempotency_key_reused), or a case holds this "
        "source's external_ref already (external_ref_exists: the item names case_id, case_no, state)",
    },
}


@router.post(
    "",
    status_code=201,
    summary="案件上报 Report a case (JSON)",
    responses=_REPORT_ANSWERS,
)
async def report(
    pool: IntakePoolDep,
    engine: EngineDep,
    services: ServicesDep,
    actor: ActorDep,
    base: BaseDep,
    body: CaseIn,
    idempotency_key: Annotated[
        str | None, Header(alias=_KEY_HEADER, max_length=svc.TEXT_LIMITS["idempotency_key"], description=_KEY_HELP)
    ] = None,
) -> JSONResponse:
    item = case_intake.Intake(
        **body.model_dump(exclude={"idempotency_key", "reporter"}),
        reporter=body.reporter or actor.name,
        reporter_role=actor.role,
        actor=actor.name,  # the identity acting, never the body's reporter (a display field)
        idempotency_key=_idempotency_key(idempotency_key, body.idempotency_key),
    )
    return await _report(pool, engine, services, item, actor.role, base)


@router.post(
    "/form",
    status_code=201,
    summary="案件上报(带照片) Report a case with photos (multipart)",
    description="The JSON route's fields as form fields; a field left empty is not sent (an empty idempotency_key "
    "is no key; a blank one is refused). multipart/form-data, or application/x-www-form-urlencoded for a report "
    "without photos (as curl -d sends it); any other body is a 415.",
    max_body_size=MAX_FORM_BYTES,
    response_model=None,
    responses=_REPORT_ANSWERS,
)
async def report_form(
    pool: IntakePoolDep,
    engine: EngineDep,
    services: ServicesDep,
    actor: ActorDep,
    base: BaseDep,
    class_code: Annotated[str, Form()],
    scheme: Annotated[Literal["gbt47678", "cjt214"], Form()] = "gbt47678",
    lon: Annotated[float | None, Form()] = None,
    lat: Annotated[float | None, Form()] = None,
    datum: Annotated[Datum, Form()] = "wgs84",
    accuracy_m: Annotated[float | None, Form(description=_ACCURACY_HELP)] = None,
    description: Annotated[str | None, Form(max_length=svc.TEXT_LIMITS["description"])] = None,
    address: Annotated[str | None, Form(max_length=svc.TEXT_LIMITS["address"])] = None,
    source: Annotated[Source | None, Form(description=_SOURCE_HELP)] = None,
    reporter: Annotated[str | None, Form(max_length=svc.TEXT_LIMITS["reporter"])] = None,
    disposal_type: Annotated[str | None, Form()] = None,
    external_ref: Annotated[
        str | None, Form(max_length=svc.TEXT_LIMITS["external_ref"], description=_XREF_HELP)
    ] = None,
    idempotency_key: Annotated[
        str | None, Form(max_length=svc.TEXT_LIMITS["idempotency_key"], description=_KEY_HELP)
    ] = None,
    photos: Annotated[list[UploadFile] | None, File(description="JPEG/PNG/HEIC/WebP; EXIF GPS used")] = None,
    idempotency_header: Annotated[
        str | None, Header(alias=_KEY_HEADER, max_length=svc.TEXT_LIMITS["idempotency_key"], description=_KEY_HELP)
    ] = None,
) -> JSONResponse:
    files = await read_photos(photos)  # too many refused before any is read; each part's first bytes as it is
    item = case_intake.Intake(
        class_code=class_code,
        scheme=scheme,
        lon=lon,
        lat=lat,
        datum=datum,
        accuracy_m=accuracy_m,
        description=description,
        address=address,
        source=source,
        reporter=reporter or actor.name,
        reporter_role=actor.role,
        actor=actor.name,
        disposal_type=disposal_type,
        external_ref=external_ref or None,
        idempotency_key=_idempotency_key(idempotency_header, idempotency_key),
        photos=files,
    )
    return await _report(pool, engine, services, item, actor.role, base)


_EPOCH = re.compile(r"\s*[+-]?\d+(\.\d*)?\s*")
_TIME_PARAMETERS = ("since", "until", "changed_since")


def refuse_epoch_times(request: Request) -> None:
    """A bare number in ``since``/``until``/``changed_since`` is refused (422 datetime_parsing naming it): the
    framework read it as a Unix epoch, which the API states nowhere — the times are ISO 8601, China time without an
    offset, and a client sending a number most likely meant something else (milliseconds, a date as 20261129)."""
    for name in _TIME_PARAMETERS:
        value = request.query_params.get(name)
        if value is not None and _EPOCH.fullmatch(value):
            raise InvalidInput(
                f"{name}: {value!r} is a bare number, not a date and time; send ISO 8601 (2026-11-29T08:00:00+08:00, "
                "or 2026-11-29T08:00 for China time) — a Unix epoch is not taken",
                detail=[{"field": name, "reason": "ISO 8601 expected, not a Unix epoch", "value": value}],
                reason=Reason.DATETIME_PARSING,
            )


def bindable_instant(value: dt.datetime | None) -> dt.datetime | None:
    """A time parameter as it is bound: with an offset, the same instant in UTC — Python reads offsets up to
    ±23:59, PostgreSQL refuses any beyond ±15:59 (review54 F6: +23:59 was a 500); without one, as given (China time,
    the query says so)."""
    return value.astimezone(dt.UTC) if value is not None and value.tzinfo is not None else value


async def case_filter(
    request: Request,
    bbox: Annotated[BBox | None, Depends(bbox_query)],
    state: Annotated[
        str | None,
        Query(description="Comma-separated states, e.g. dispatched,returned", json_schema_extra=COMMA_SEPARATED),
    ] = None,
    class_code: Annotated[str | None, Query(pattern=rf"^{case_queries.CLASS_CODE_PATTERN.pattern}$")] = None,
    department: str | None = None,
    grid: Annotated[
        str | None, Query(pattern=rf"^({case_queries.GRID_FILTER_PATTERN.pattern})$", description="Unit or tier grid")
    ] = None,
    source: Source | None = None,
    since: Annotated[
        dt.datetime | None,
        Query(
            description="Reported at or after: ISO 8601 (no offset: China time; a bare number, Unix epoch, is refused)"
        ),
    ] = None,
    until: Annotated[
        dt.datetime | None,
        Query(description="Reported before: ISO 8601 (no offset: China time; a bare number is refused)"),
    ] = None,
    period: Annotated[str | None, Query(description=f"Reported in, instead of since/until: {PERIOD_HELP}")] = None,
    changed_since: Annotated[
        dt.datetime | None,
        Query(
            description="The record changed — reported, or any step since — at or after this time, ISO 8601 (no "
            "offset: China time; a bare number, Unix epoch, is refused): with sort=updated, the cases changed since "
            "a poll; compare each case's updated_at"
        ),
    ] = None,
    escalation_level: Annotated[
        int | None, Query(ge=1, le=3, description="提级 level: 2 二级网格(社区), 1 一级网格(街道)")
    ] = None,
    case_no: Annotated[
        str | None,
        Query(
            max_length=svc.CASE_NO_MAX,
            pattern=rf"^{svc.CASE_NO_PATTERN.pattern}$",
            description="Case number, exact (e.g. 2026008596; an imported city's own number too)",
        ),
    ] = None,
    pending_extension: Annotated[
        bool | None, Query(description="true: cases whose 延期申请 waits for approval (延期待批); false: the others")
    ] = None,
    external_ref: Annotated[
        str | None,
        Query(max_length=svc.TEXT_LIMITS["external_ref"], description="The sending system's own number, exact"),
    ] = None,
    queue: Annotated[
        Literal["manual", "routed"] | None,
        Query(
            description="manual: 人工派遣, the routing found no department, no dispatcher has chosen one yet and "
            "a 派遣 is still ahead (上报, 核实, 立案, or 挂账 before any 派遣); routed: the routing or a person "
            "decided a department (by rule, default, override or a dispatcher's choice) — finished cases included; "
            "a case the routing left to a person that ended undispatched (不予立案, 作废, merged) is in neither"
        ),
    ] = None,
) -> case_queries.CaseFilter:
    """The case filter the list, the heat map and the light counts share (async: no thread hop)."""
    refuse_epoch_times(request)
    since, until, changed_since = (bindable_instant(t) for t in (since, until, changed_since))
    if period is not None:
        if since is not None or until is not None:
            raise InvalidInput(
                "period: give either period or since/until, not both",
                detail=[{"field": "period"}],
                reason=Reason.PERIOD_WITH_SINCE_UNTIL,
            )
        svc.check_texts({"period": period})
        p = parse_period(period)  # its refusal names the field, as every other refused filter does
        since, until = p.start.to_pydatetime(), p.end.to_pydatetime()
    return case_queries.CaseFilter(
        escalation_level=escalation_level,
        case_no=case_no,
        pending_extension=pending_extension,
        queue=queue,
        state=[s for s in state.split(",") if s] if state else None,
        class_code=class_code,
        department=department,
        grid=grid,
        source=source,
        since=since,
        until=until,
        changed_since=changed_since,
        external_ref=external_ref,
        bbox=bbox,
    )


FilterDep = Annotated[case_queries.CaseFilter, Depends(case_filter)]


@router.get(
    "",
    summary="案件列表 List cases (JSON or GeoJSON)",
    dependencies=[Depends(known_query_only)],
    response_model=None,
    responses={
        200: {
            "model": CaseList,
            "description": "format=json; format=geojson answers a GeoJSON FeatureCollection as application/geo+json "
            "— " + SHIFTED_GEOJSON_HELP,
            "content": {GEOJSON_MEDIA_TYPE: {"schema": geojson_schema(CaseFeatureCollection)}},
        }
    },
)
def list_cases(
    request: Request,
    engine: EngineDep,
    services: ServicesDep,
    actor: ActorDep,
    f: FilterDep,
    page: Annotated[Page, Depends(page_query)],
    light: Literal["green", "yellow", "red"] | None = None,
    format: Literal["json", "geojson"] = "json",
    sort: Annotated[
        str,
        Query(
            description="newest: last reported first; updated: least recently changed first (updated_at, then id) "
            "— page a change feed with changed_since; due: the running deadline (due_at) first — most overdue "
            "first —, then the 挂账 (suspended) cases, whose clock is stopped, by the deadline they keep, then the "
            "cases without one",
            json_schema_extra={"enum": list(case_queries.CASE_SORTS)},
        ),
    ] = "newest",
    datum: Annotated[Datum, Query(description=_ANSWER_DATUM_HELP)] = "cgcs2000",
    after: Annotated[
        str | None,
        Query(
            max_length=40,
            description="Page cursor: the page starts after the case it names, in the list's order — take it from "
            "the next link. Reports arriving and cases changing between pages then neither repeat nor skip a case, "
            "as an offset would; give it or offset, not both",
        ),
    ] = None,
) -> dict[str, Any] | GeoJSONResponse:
    f = replace(f, light=light, limit=page.limit, offset=page.offset, sort=sort, after=after)
    if f.bbox is not None:
        f = replace(f, bbox=geodesy.bbox_to_storage(f.bbox, datum))
    with engine.connect() as conn:
        found = case_queries.case_page(conn, services, f, role=actor.role, department=actor.offered_department)
    items, matched = svc.in_datum(found.items, datum), found.matched
    links = cursor_links(request, page.limit, page.offset, found.next_after)
    if format == "geojson":
        return GeoJSONResponse(
            {
                "type": "FeatureCollection",
                "features": [case_queries.as_feature(c) for c in items],
                "numberMatched": matched,
                "numberReturned": len(items),
                "links": links,
                "datum": datum,
            }
        )
    return {"data": items, "count": matched, "links": links, "datum": datum}


@router.get("/heat", summary="案件热力 Cases per ~50 m square for a heat map", dependencies=[Depends(known_query_only)])
def heat(
    engine: EngineDep,
    services: ServicesDep,
    f: FilterDep,
    datum: Annotated[Datum, Query(description=_ANSWER_DATUM_HELP)] = "cgcs2000",
) -> dict[str, Any]:
    """``points``: [lat, lon, cases] per square (squares of ``cell_deg`` in the stored CGCS2000; each point, the mean
    of its cases, answered in ``datum``), as GET /cases takes ``datum`` for its lon/lat and bbox."""
    if f.bbox is not None:
        f = replace(f, bbox=geodesy.bbox_to_storage(f.bbox, datum))
    with engine.connect() as conn:
        points = case_queries.heat_in_datum(case_queries.case_heat(conn, services, f), datum)
    return {
        "cell_deg": case_queries.HEAT_CELL_DEG,
        "cases": sum(p[2] for p in points),
        "points": points,
        "datum": datum,
    }


@router.get(
    "/lights",
    summary="红黄绿灯统计 Open cases of the filter per traffic light",
    dependencies=[Depends(known_query_only)],
)
def lights(
    engine: EngineDep,
    services: ServicesDep,
    f: FilterDep,
    datum: Annotated[Datum, Query(description="Datum of ``bbox`` (the answer holds no place)")] = "cgcs2000",
) -> dict[str, int]:
    """The counts answer no place, but ``bbox`` is one: read in ``datum`` as GET /cases and /cases/heat read it
    (a GCJ-02 map's box taken as CGCS2000 counted the cases ~500 m off)."""
    if f.bbox is not None:
        f = replace(f, bbox=geodesy.bbox_to_storage(f.bbox, datum))
    with engine.connect() as conn:
        return case_queries.light_counts(conn, services, f)


@router.get(
    "/{case_id}",
    summary="案件详情 One case with its timeline",
    response_model=None,
    dependencies=[Depends(known_query_only)],  # a misspelt datum (dataum=gcj02) is refused, not answered in cgcs2000
    responses={200: {"model": CaseDetail, "description": "The case, with allowed_actions for the X-Role"}},
)
def read(
    engine: EngineDep,
    services: ServicesDep,
    actor: ActorDep,
    base: BaseDep,
    case_id: int,
    datum: Annotated[Datum, Query(description=_ANSWER_DATUM_HELP)] = "cgcs2000",
    if_none_match: Annotated[
        str | None, Header(alias="If-None-Match", description="An ETag of an earlier answer: 304 if it still holds")
    ] = None,
) -> Response:
    with engine.connect() as conn:
        case = svc.get_case(conn, services, case_id, role=actor.role, department=actor.offered_department, base=base)
    answer = JSONResponse(jsonable_encoder(_in_datum(case, datum)))
    # The answer's own bytes: a step, the light, a possible duplicate reported meanwhile, the role's or department's
    # allowed_actions, a running clock — whatever changes it changes its validator (review51's console follows a
    # case by re-reading it: a validator of the version alone served it stale).
    etag = 'W/"' + hashlib.blake2b(bytes(answer.body), digest_size=12).hexdigest() + '"'
    headers = {"ETag": etag, "Vary": _ETAG_VARY}
    if if_none_match and etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    answer.headers.update(headers)
    return answer


#: The request headers a case's detail answer depends on beside its URL (allowed_actions, a department's view).
_ETAG_VARY = "X-Role, X-Department"


def _act(
    engine: Any, services: svc.CaseServices, case_id: int, req: case_actions.ActionRequest, base: str
) -> JSONResponse:
    """Apply the action and answer with the case as the acting role sees it; a retry under the idempotency key of a
    step already taken says so in ``Idempotent-Replayed: true``."""
    acted = case_actions.act(engine, services, case_id, req)
    with engine.connect() as conn:
        case = svc.get_case(conn, services, case_id, role=req.role, department=req.department, base=base)
    headers = {_REPLAYED_HEADER: "true"} if acted.replayed else {}
    return JSONResponse(jsonable_encoder(_as_stored(case)), headers=headers)


_ACTED: dict[int | str, dict[str, Any]] = {
    200: {
        "model": CaseDetail,
        "description": "The case after the step, as the X-Role sees it (also when the request was a retry of a step "
        "already taken under its idempotency key: then with Idempotent-Replayed: true)",
        "headers": {_REPLAYED_HEADER: _REPLAYED},
    }
}


_ACTION_OPENAPI = {"x-payload-fields": payload_fields()}


@router.post(
    "/{case_id}/actions/{action}",
    summary="办理 Apply a workflow action",
    response_model=None,
    responses=_ACTED,
    openapi_extra=_ACTION_OPENAPI,
)
def act(
    engine: EngineDep,
    services: ServicesDep,
    actor: ActingDep,
    base: BaseDep,
    case_id: int,
    action: ActionPath,
    body: ActionIn,
    idempotency_key: Annotated[
        str | None,
        Header(alias=_KEY_HEADER, max_length=svc.TEXT_LIMITS["idempotency_key"], description=_ACTION_KEY_HELP),
    ] = None,
) -> JSONResponse:
    req = case_actions.ActionRequest(
        action=action,
        role=actor.role,
        department=actor.department,
        actor=actor.name,
        version=body.version,
        note=body.note,
        payload=body.payload,
        idempotency_key=_idempotency_key(idempotency_key, body.idempotency_key, "action"),
    )
    return _act(engine, services, case_id, req, base)


@router.post(
    "/{case_id}/actions/{action}/form",
    summary="办理(带照片) Apply an action with photos: 处置 after-photos, evidence for the others",
    description="The fields of the JSON route's ``payload`` as form fields, beside ``version``, ``note`` and the "
    "photos: each action takes those of its rule (``workflow.TRANSITIONS``) and refuses the others by name, as the "
    "JSON route does; a number or true/false is sent as its JSON text (``amount=2.5``, ``flagged=true``).",
    max_body_size=MAX_FORM_BYTES,
    response_model=None,
    responses=_ACTED,
    openapi_extra=_ACTION_OPENAPI,
)
async def act_form(
    engine: EngineDep,
    services: ServicesDep,
    actor: ActingDep,
    base: BaseDep,
    case_id: int,
    action: ActionPath,
    version: Annotated[int, Form()],
    note: Annotated[str | None, Form(max_length=svc.TEXT_LIMITS["note"])] = None,
    department: Annotated[str | None, Form(description="处置部门 (dispatch)")] = None,
    disposal_type: Annotated[str | None, Form(description="处置方式 (dispatch)")] = None,
    result: Annotated[str | None, Form(description="处置结果 (handle, check)")] = None,
    reason: Annotated[str | None, Form(description="原因/说明 (return, rework, suspend, …)")] = None,
    amount: Annotated[str | None, Form(description="延长时间, a number (request/approve_extension)")] = None,
    unit: Annotated[str | None, Form(description="时间单位: working_hours, working_days, calendar_hours")] = None,
    new_due_at: Annotated[str | None, Form(description="新的处置时限, ISO 8601 date or date and time")] = None,
    flagged: Annotated[str | None, Form(description="重点督办 (supervise): true or false")] = None,
    class_code: Annotated[
        str | None, Form(description="更正类别 (verify, file): the class found; the case is routed again for it")
    ] = None,
    photos: Annotated[list[UploadFile] | None, File()] = None,
    idempotency_key: Annotated[
        str | None, Form(max_length=svc.TEXT_LIMITS["idempotency_key"], description=_ACTION_KEY_HELP)
    ] = None,
    idempotency_key_header: Annotated[
        str | None,
        Header(alias=_KEY_HEADER, max_length=svc.TEXT_LIMITS["idempotency_key"], description=_ACTION_KEY_HELP),
    ] = None,
) -> JSONResponse:
    key = _idempotency_key(idempotency_key_header, idempotency_key, "action")
    files = await read_photos(photos)  # too many refused before any is read; each part's first bytes as it is
    payload = form_payload(
        {
            "department": department,
            "disposal_type": disposal_type,
            "result": result,
            "reason": reason,
            "amount": amount,
            "unit": unit,
            "new_due_at": new_due_at,
            "flagged": flagged,
            "class_code": class_code,
        }
    )
    req = case_actions.ActionRequest(
        action=action,
        role=actor.role,
        department=actor.department,
        actor=actor.name,
        version=version,
        note=note,
        payload=payload,
        photos=files,
        idempotency_key=key,
    )
    # blocking database work
    return await run_in_threadpool(_act, engine, services, case_id, req, base)


@router.post(
    "/{case_id}/merge",
    summary="合并重复案件 Merge a duplicate into another case",
    response_model=None,
    responses={200: {"model": CaseDetail, "description": "The duplicate, voided and pointing at the kept case"}},
)
def merge(
    engine: EngineDep,
    services: ServicesDep,
    actor: ActingDep,
    base: BaseDep,
    case_id: int,
    body: MergeIn,
) -> dict[str, Any]:
    case_actions.merge_duplicate(
        engine, services, case_id, body.into, actor=actor.name, role=actor.role, version=body.version
    )
    with engine.connect() as conn:
        case = svc.get_case(conn, services, case_id, role=actor.role, department=actor.offered_department, base=base)
    return _as_stored(case)


@router.get(
    "/{case_id}/photos/{sha256}",
    summary="案件照片 A photo of a case (size=thumb: its thumbnail)",
    dependencies=[Depends(known_query_only)],  # sise=thumb would send the original
)
def photo(
    engine: EngineDep, services: ServicesDep, case_id: int, sha256: str, size: PhotoSizeQuery = None
) -> FileResponse:
    check_photo_size(size)  # a wrong size is named before anything is looked up
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT content_type FROM case_photos WHERE case_id = :c AND sha256 = :h"), {"c": case_id, "h": sha256}
        ).first()
    if row is None:
        raise NotFound(f"case {case_id} has no photo {sha256}")
    path, media_type = services.photos.file(sha256, size)
    return FileResponse(path, media_type=media_type or row[0])


# Declared before the HTML route, whose {doc_id} would otherwise take "7.pdf" (and refuse it as not a number).
@router.get(
    "/{case_id}/documents/{doc_id}.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The order as an A4 PDF"}},
    summary="交办单/督办单 PDF",
)
def document_pdf(
    engine: EngineDep, services: ServicesDep, settings: SettingsDep, case_id: int, doc_id: int
) -> Response:
    # A sync route: FastAPI runs it in its threadpool, so the CPU-bound layout never holds the event loop.
    pdf, name = case_documents.render_document_pdf(engine, services, case_id, doc_id, issuing_body=settings.center_name)
    return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'})


@router.get("/{case_id}/documents/{doc_id}", response_class=HTMLResponse, summary="交办单/督办单 Printable order")
def document(
    engine: EngineDep, services: ServicesDep, settings: SettingsDep, base: BaseDep, case_id: int, doc_id: int
) -> HTMLResponse:
    with engine.connect() as conn:
        html = case_documents.render_document(
            conn, services, case_id, doc_id, base=base, issuing_body=settings.center_name
        )
    # The page's own policy (also in its <meta>, for a saved file) as a header, as /console sends its policy.
    return HTMLResponse(html, headers={"Content-Security-Policy": ORDER_CSP})
