"""The error bodies as OpenAPI states them: every error is ``{"error": code, "detail": ...}`` (api/errors.py).

Routers declare which statuses they answer with ``error_responses(...)``; a 422 listed here replaces FastAPI's
``HTTPValidationError`` (``{"detail": [{"loc", "msg", "type"}]}``), which is not the shape this API sends.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from gisgrid import cases, node_clock, workflow

#: The datums a request may name and an answer states (lon/lat of a case, a bbox).
Datum = Literal["wgs84", "cgcs2000", "gcj02", "bd09"]


class FieldProblem(BaseModel):
    """One refused input: the field (a JSON path such as ``attrs.k``, a parameter or a header; null when the request
    as a whole is refused, e.g. by the case's state) and why. The workflow's refusals add their facts: ``action``,
    and ``state`` and ``allowed_from`` (transition_not_allowed), ``role`` and ``allowed_roles``
    (role_not_allowed), ``version`` and ``expected_version`` (stale_version), ``required`` (missing)."""

    model_config = ConfigDict(extra="allow")  # some items carry more (value, row, …)

    field: str | None = Field(default=None, examples=["name"])
    reason: str | None = Field(default=None, examples=["too long"])
    code: str | None = Field(default=None, description="The reason as a stable code", examples=["string_too_long"])


class ErrorMessage(BaseModel):
    """A message with the items it is about (field problems, or an object such as a role's allowed actions)."""

    message: str
    items: list[FieldProblem] | dict[str, Any] | list[Any] | None = None


class ErrorBody(BaseModel):
    """Every error answer. ``detail`` is a message, or a message with its items (every refusal naming fields:
    request validation's and the service's alike)."""

    error: str = Field(
        description="Machine-readable code: invalid_input (422: a field, parameter or header refused, a required "
        "payload field left out included, reason missing), not_found, conflict, role_not_allowed, forbidden (403; "
        "forbidden: a browser's write sent by another site's page, reason cross_site_request), bad_request (400), "
        "transition_not_allowed, stale_version (409), payload_too_large, unsupported_media_type, "
        "method_not_allowed (405), internal_error, stored_file_damaged (500), database_error, unavailable (503)",
        examples=["invalid_input"],
    )
    reason: str = Field(
        description="Why, as a stable code: the refusal's specific cause (gisgrid.errors.Reason), else the error code "
        "itself (not_found, stale_version, role_not_allowed …); in every error answer",
        examples=["nul_character"],
    )
    detail: str | list[FieldProblem] | ErrorMessage | dict[str, Any] = Field(
        description="What went wrong",
        examples=[
            {
                "message": "name: String should have at most 200 characters",
                "items": [
                    {"field": "name", "reason": "String should have at most 200 characters", "code": "string_too_long"}
                ],
            }
        ],
    )
    ref: str | None = Field(
        default=None,
        description="500 and 503: the reference of the server log's line that has the details (never sent)",
        examples=["3f9a0c1d2e4b"],
    )
    message_zh: str | None = Field(
        default=None,
        description="The refusal in Chinese, when the request's Accept-Language names zh (zh-CN, zh_CN …); "
        "message and each item's reason are English",
        examples=["lon、lat:须为数字"],
    )


DESCRIPTIONS: dict[int, str] = {
    403: "The acting role may not do this (or a browser sent the request from another site's page)",
    404: "Not found",
    409: "Conflict: a stale version, or the thing exists already",
    413: "Request body larger than the endpoint takes (the limit is named)",
    415: "Body not sent as application/json (or, where the endpoint takes a form, multipart/form-data — or "
    "application/x-www-form-urlencoded without photos)",
    422: "Invalid input: each refused field named with its reason",
    500: "Unexpected server error (logged; the body carries a reference, never a traceback)",
    503: "The database is unreachable or a required system package is missing",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a router or route: each status answered with an ``ErrorBody``."""
    return {s: {"model": ErrorBody, "description": DESCRIPTIONS[s]} for s in statuses}


_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_SCHEMA_REF = "#/components/schemas/{model}"
#: Models a route names only under a second media type (FastAPI files ``model`` under the route's own), added to
#: the document's schemas by :func:`json_error_bodies`.
_EXTRA_MODELS: dict[str, type[BaseModel]] = {}


def geojson_schema(model: type[BaseModel]) -> dict[str, str]:
    """The schema reference of ``model`` for a route's second answer, e.g. ``application/geo+json`` beside JSON."""
    _EXTRA_MODELS[model.__name__] = model
    return {"$ref": _SCHEMA_REF.format(model=model.__name__)}


def _takes_file(schema: dict[str, Any]) -> bool:
    text = json.dumps(schema)
    return '"binary"' in text or "contentMediaType" in text


def _urlencoded_too(spec: dict[str, Any], schemas: dict[str, Any]) -> None:
    """A form route reads ``application/x-www-form-urlencoded`` as well as multipart (``api.inputs``): stated on
    each whose required fields hold no file (photos need multipart), as FastAPI states multipart only."""
    for ops in spec.get("paths", {}).values():
        for op in ops.values():
            content = op.get("requestBody", {}).get("content", {})
            form = content.get("multipart/form-data")
            if form is None:
                continue
            body = schemas.get(str(form.get("schema", {}).get("$ref", "")).rsplit("/", 1)[-1], {})
            props = body.get("properties", {})
            if not any(_takes_file(props.get(name, {})) for name in body.get("required", [])):
                content["application/x-www-form-urlencoded"] = {"schema": form["schema"]}


#: What a GET cannot answer, though its router lists it for its writes: a body's 413/415, a write's 409.
_WRITE_ONLY_STATUSES = ("409", "413", "415")
_NO_INPUT_422 = (
    "The route reads no input: only a query string with a NUL, a control character or bytes that are not UTF-8 "
    "(refused on every route)"
)


def _honest_statuses(spec: dict[str, Any]) -> None:
    """The error statuses each operation can answer: the router-wide and app-wide lists (api/main.py) name those of
    their writes and inputs; a GET drops the write-only ones, and a route without parameters or body says why it
    could still answer 422."""
    for ops in spec.get("paths", {}).values():
        for method, op in ops.items():
            responses = op.get("responses", {})
            if method == "get":
                for status in _WRITE_ONLY_STATUSES:
                    responses.pop(status, None)
            if "422" in responses and not op.get("parameters") and "requestBody" not in op:
                responses["422"]["description"] = _NO_INPUT_422


def json_error_bodies(app: FastAPI) -> None:
    """FastAPI files a route's extra responses under the route's media type: the HTML pages' errors would read
    as text/html. Errors are JSON (a browser opening a page gets a short page for 500/503 instead, not stated)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        spec = generate()  # made once and cached by FastAPI; fixing it again changes nothing
        for ops in spec.get("paths", {}).values():
            for op in ops.values():
                for status, response in op.get("responses", {}).items():
                    content = response.get("content", {})
                    if status[0] in "45" and any(m.get("schema") == _ERROR_REF for m in content.values()):
                        response["content"] = {"application/json": {"schema": _ERROR_REF}}
        _honest_statuses(spec)
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        _urlencoded_too(spec, schemas)
        for name, model in _EXTRA_MODELS.items():
            if name not in schemas:
                body = model.model_json_schema(ref_template=_SCHEMA_REF, mode="serialization")
                for dep, dep_schema in body.pop("$defs", {}).items():
                    schemas.setdefault(dep, dep_schema)
                schemas[name] = body
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


# -- the main success answers, as the OpenAPI document states them ------------------------------------------
# Declared with ``responses=`` (documentation only): the routes build their JSON themselves, and POST /cases is a
# hot path that must not pay for validating its answer. ``extra="allow"``: the answers carry more than is named.


class PageLink(BaseModel):
    rel: Literal["self", "next", "prev"]
    href: str = Field(
        description="This request's URL (with the root path) with its offset moved by a page; a case list's next "
        "page: its after cursor at this page's last case"
    )


#: The enums of a case's answer, from where the service keeps them (one fact in one place).
if TYPE_CHECKING:  # a Literal built at run time is no type to mypy: it checks them as str, OpenAPI gets the enums
    CaseState = str
    CaseNodeName = str
    CaseSource = str
    CaseAction = str
else:
    CaseState = Literal[tuple(workflow.STATES)]
    CaseNodeName = Literal[tuple(dict.fromkeys(n for n in node_clock.NODE_OF_STATE.values() if n))]
    CaseSource = Literal[tuple(cases.SOURCES)]
    CaseAction = Literal[tuple(workflow.TRANSITIONS)]


class Case(BaseModel):
    """A case (案件) as the API shows it: a report's answer, a list item, the head of a detail. Every key a case
    carries is named here (tests/test_api_contract.py checks real answers against it)."""

    model_config = ConfigDict(extra="allow")

    id: int
    case_no: str | None = Field(description="Case number (案件编号); none until one is taken")
    scheme: str = Field(description="Event catalogue of class_code", examples=["gbt47678"])
    class_code: str = Field(examples=["06010"])
    class_name: str | None = Field(description="The class's Chinese name (null if removed from the catalogue)")
    matter_code: str | None = Field(description="管理事项代码: district + class, 11 digits (GB/T 47678 classes only)")
    disposal_type: str | None = Field(description="处置方式 whose limit applies (停工, 处罚, 拆除, 紧急 …)")
    urgent: bool = Field(description="紧急: its limits run round the clock, in clock hours")
    state: CaseState = Field(description="Workflow state (gisgrid.workflow.STATES)", examples=["reported"])
    state_label: str | None = Field(examples=["上报"])
    previous_state: CaseState | None = Field(description="While suspended (挂账): the state 挂账恢复 returns to")
    node: CaseNodeName | None = Field(description="Workflow node whose deadline runs (null while none runs)")
    node_label: str | None
    node_started_at: str | None = Field(description="ISO 8601, +08:00: when the running node started")
    node_calendar_time: bool = Field(description="The running node's limit is in clock hours, not working time")
    source: CaseSource | None = Field(description="Where the report came from")
    source_label: str | None
    description: str | None = Field(description="What was reported")
    address: str | None
    reporter: str | None = Field(description="上报人 as shown (the body's reporter, else the X-Actor name)")
    external_ref: str | None = Field(description="The sending system's own number (12345 工单号 …), if it gave one")
    accuracy_m: float | None = Field(
        description="The reported location's accuracy in metres (a phone's GPS fix radius), as sent; null: not given"
    )
    light: Literal["green", "yellow", "red"] | None = Field(description="Deadline light (红黄绿灯) of an open case")
    lon: float | None = Field(description="Longitude in datum: CGCS2000 (stored) unless a GET asked ?datum=")
    lat: float | None = Field(description="Latitude in datum: CGCS2000 (stored) unless a GET asked ?datum=")
    datum: Datum | None = Field(
        default=None,
        description="Datum of lon/lat, in every case answer but a list's items (the list states it): a write's "
        "answer (a report's 201 and its replay, an action's, a merge's) is cgcs2000, as stored, whatever datum the "
        "body's lon/lat were in; a GET's cgcs2000 unless it asked ?datum=gcj02 or bd09",
    )
    unit_grid_code: str | None = Field(description="万米单元网格 (15 digits)")
    district_code: str | None = Field(description="District (6 digits)")
    street_code: str | None = Field(description="Street, 一级网格 (9 digits)")
    community_code: str | None = Field(description="Community, 二级网格 (12 digits)")
    tier3_code: str | None = Field(description="三级网格 (14 digits)")
    component_id: str | None = Field(description="The linked component (部件) of the implied class within 30 m")
    component_distance_m: float | None = Field(description="Metres from the report to the linked component")
    duplicate_of: int | None = Field(description="The case this one was merged into (合并重复案件)")
    department_code: str | None = Field(description="The department dispatched to (处置部门)")
    department_name: str | None
    routing: dict[str, Any] | None = Field(
        description="The routing decision with its explanation (and overrides), and the possible duplicates found "
        "at intake"
    )
    rework_count: int = Field(description="返工 so far")
    escalation_level: int = Field(description="提级 level: 3 三级网格, 2 二级网格(社区), 1 一级网格(街道)")
    pending_extension: bool = Field(description="A 延期申请 waits for approval (延期待批)")
    due_at: str | None = Field(description="ISO 8601, +08:00: the running node's deadline")
    disposal_due_at: str | None = Field(description="ISO 8601, +08:00: the 处置 deadline (moved by an extension)")
    closed_at: str | None = Field(description="ISO 8601, +08:00: when the case ended (结案, 不予立案, 作废)")
    version: int = Field(description="Send it back with an action (a stale one is a 409)")
    created_at: str = Field(description="ISO 8601, +08:00: reported at")
    updated_at: str = Field(description="ISO 8601, +08:00: last changed at")
    calendar_warning: str | None = Field(
        description="zh-CN, then English: the running clock — in a case's detail also its judged nodes — ran "
        "through a year the holiday calendar does not know (counted Mon–Fri), naming the years and the remedy"
    )
    allowed_actions: list[CaseAction] | None = Field(
        default=None,
        description="The actions the X-Role may take now (only when X-Role is sent; list items too). A payload "
        "condition is not known here: 督办 is listed for a case within its deadline (it needs flagged=true then)",
    )


class Escalation(BaseModel):
    """Where an escalated case (提级) is coordinated: the grid above its 三级 grid, with its 网格长."""

    level: int = Field(description="2 二级网格(社区) or 1 一级网格(街道)")
    label: str = Field(examples=["二级网格(社区)"])
    grid_code: str | None
    grid_name: str | None
    leader_name: str | None
    leader_phone: str | None


class CaseNode(BaseModel):
    """One node instance of a case judged as the monthly evaluation judges it (``gisgrid.evaluation``)."""

    node: Literal["accept", "verify", "file", "dispatch", "disposal", "issue_check", "check", "close"]
    label: str = Field(examples=["处置"])
    opened_at: str = Field(description="ISO 8601, +08:00: the step that opened it")
    closed_at: str | None = Field(description="The step that closed it; null while open")
    opened_step: int = Field(description="Index in timeline of the step that opened it")
    closed_step: int | None = Field(description="Index in timeline of the step that closed it; null while open")
    elapsed_h: float = Field(
        description="Working hours from open to close (or to now while open) less the time suspended (挂账/缓办); "
        "clock hours when calendar_time"
    )
    limit_h: float | None = Field(description="The node's limit in the same hours; null when the class has none")
    allowed_h: float | None = Field(description="limit_h, or the time to an approved extension's new_due_at")
    calendar_time: bool = Field(description="Counted in clock hours (紧急), not working hours")
    on_time: bool | None = Field(
        description="elapsed_h ≤ allowed_h for a closed node; false for an open overdue one (not while suspended) "
        "and for a 处置 node returned (回退) after its allowed time (closed_at: the 回退); null while open and not "
        "overdue, or without a limit"
    )


class MergedDuplicate(BaseModel):
    """A report merged into this case (合并重复案件): voided, its duplicate_of this case's id."""

    id: int
    case_no: str | None = Field(description="Its case number (案件编号)")
    source: CaseSource | None = Field(description="Where it was reported from")
    source_label: str | None = Field(examples=["12345热线"])
    reporter: str | None = Field(description="上报人 as it showed")
    reported_at: str = Field(description="ISO 8601, +08:00: when it was reported")


class CaseDetail(Case):
    """One case with its timeline, photos and documents."""

    datum: Datum = Field(description="Datum of lon/lat: cgcs2000 unless the request asked for gcj02 or bd09")
    escalation: Escalation | None = Field(description="Where the case is escalated to (null at level 3)")
    dispatch_suggestion: dict[str, Any] = Field(
        description="派遣建议 that a 派遣 without a department takes and the console preselects: department and "
        "explanation of the routing's own decision (never a dispatcher's earlier 改派), both null when there is none "
        "or when that department has returned the case (回退): then withheld names it and hint says so in zh-CN"
    )
    timeline: list[dict[str, Any]] = Field(description="Transitions, oldest first (action, from/to state, actor …)")
    nodes: list[CaseNode] = Field(
        description="Node instances in the order they opened, judged by the evaluation's rule"
    )
    closed_on_time: bool | None = Field(
        description="按期结案: closed with every 处置 node on time (as 按期结案率 counts it); null unless closed"
    )
    photos: list[dict[str, Any]] = Field(
        description="Photos with url and thumb_url (?size=thumb), under the root path; kind, the step that brought "
        "it (transition_id, action, at, version); what its EXIF says: taken_at (ISO 8601, +08:00, null when the "
        "camera wrote no time with its zone), gps_lon/gps_lat (CGCS2000, converted from the datum the photo named) "
        "and gps_distance_m (metres from the case's location), null without a GPS fix"
    )
    documents: list[dict[str, Any]] = Field(description="交办单/督办单 with url and pdf_url")
    merged_duplicates: list[MergedDuplicate] = Field(
        description="The reports merged into this case as its duplicates (合并), oldest report first; empty for one "
        "kept case of none, and for a duplicate itself"
    )


class CaseList(BaseModel):
    """``GET /cases`` (``format=json``): a page of cases, newest first."""

    data: list[Case]
    count: int = Field(description="Cases matching the filter (all pages)")
    links: list[PageLink]
    datum: Datum = Field(description="Datum of lon/lat: cgcs2000 unless the request asked for gcj02 or bd09")


class PointGeometry(BaseModel):
    type: Literal["Point"]
    coordinates: list[float] = Field(
        description="[lon, lat], CGCS2000 (or the datum the request asked for)", min_length=2, max_length=2
    )


class CaseFeature(BaseModel):
    type: Literal["Feature"]
    id: int
    geometry: PointGeometry
    properties: dict[str, Any] = Field(description="The case's fields but lon/lat")


class CaseFeatureCollection(BaseModel):
    """``GET /cases?format=geojson``."""

    type: Literal["FeatureCollection"]
    features: list[CaseFeature]
    numberMatched: int
    numberReturned: int
    links: list[PageLink]
    datum: Datum = Field(description="Datum of the coordinates (a foreign member): cgcs2000 unless asked otherwise")


class ComponentProperties(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(examples=["41990201037000001"])
    scheme: str
    class_code: str = Field(examples=["01037"])
    name: str | None
    status: str = Field(examples=["完好"])
    unit_grid_code: str | None
    main_dept_code: str | None
    owner_dept_code: str | None
    maint_dept_code: str | None
    attrs: dict[str, Any] | None
    photos: list[dict[str, Any]] | None = Field(description="Photos with url and thumb_url (?size=thumb)")
    version: int = Field(description="Send it back with a PATCH (a stale one is a 409)")
    updated_at: str = Field(description="ISO 8601, +08:00")


class ComponentListFeature(BaseModel):
    """A component (部件) in a list: a GeoJSON Feature (the collection names the datum)."""

    type: Literal["Feature"]
    id: str
    geometry: PointGeometry
    properties: ComponentProperties


class ComponentFeature(ComponentListFeature):
    """A component (部件) as a GeoJSON Feature."""

    datum: Datum = Field(
        description="Datum of the coordinates (a foreign member): cgcs2000 unless GET asked for another; a write's "
        "answer is in cgcs2000 whatever datum its body's lon/lat were in"
    )


class ComponentFeatureCollection(BaseModel):
    type: Literal["FeatureCollection"]
    features: list[ComponentListFeature]
    numberMatched: int
    numberReturned: int
    links: list[PageLink]
    datum: Datum = Field(description="Datum of the coordinates (a foreign member): cgcs2000 unless asked otherwise")
