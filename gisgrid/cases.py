"""Cases (案件) in PostGIS: located intake, routing, the closed-loop workflow with working-time deadlines.

Pure rules live elsewhere and are only called here: the state machine (``gisgrid.workflow``), routing
(``gisgrid.routing``), the event catalogue and time limits (``gisgrid.events``), working time
(``gisgrid.calendar``), the node clock and its deadlines (``gisgrid.node_clock``), photos (``gisgrid.photos``).
Every intake and every action is one transaction: a refused request writes nothing.
The case list, its filters and paging are :mod:`gisgrid.case_queries`; the printed orders an action issues are
laid out by :mod:`gisgrid.case_documents`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, RowMapping, text

from gisgrid import cityfiles, geodesy, history, routing, workflow
from gisgrid.calendar import WorkingCalendar, load_city_calendar, traffic_light, unknown_years_warning
from gisgrid.catalogue import Catalogue
from gisgrid.components_store import catalogue_for
from gisgrid.constants import STORAGE_SRID
from gisgrid.documents import document_number
from gisgrid.errors import Conflict, InvalidInput, NotFound, Reason
from gisgrid.evaluation import EvaluationRules, judge_case, load_evaluation_rules
from gisgrid.events import DISPOSAL_NODE, EventCatalogue, EventClass, load_event_catalogue, matter_code_of
from gisgrid.grids import store as grid_store
from gisgrid.node_clock import (
    LOCAL_TZ,
    deadlines_after,
    disposal_limit,
    extended_due,
    extension_due,
    extension_terms,
    extension_too_late,
    node_clock,
    one_length,
    refuse_late_extension_request,
)
from gisgrid.photos import (
    PhotoInfo,
    PhotoStore,
    StoredPhoto,
    check_pixel_budget,
    inspect_photo,
    one_request,
    refused_photo,
)
from gisgrid.settings import Settings
from gisgrid.storage.prepared import AsyncFetcher, Prepared
from gisgrid.texts import refuse_bad_text

log = logging.getLogger(__name__)
#: The nearest component of the implied class within this distance is linked to the case.
COMPONENT_LINK_M = 30.0

SOURCES: dict[str, str] = {
    "patrol": "监督员/网格员巡查",
    "hotline": "12345热线",
    "public_app": "公众APP",
    "sensor": "视频/感知设备",
    "leader": "领导交办",
}
#: The channels a report may name, by the reporter's role (None: a report with no role, the public's); the first
#: is the default. A channel is what the evaluation credits (public reports, supervisors' finds): a citizen's
#: report cannot pass as a patrol's find or a leader's 交办, nor a supervisor's as the public's. The command
#: center's desk roles register reports of every channel (a 12345 call, a video alarm, a leader's instruction).
REPORT_SOURCES: dict[str | None, tuple[str, ...]] = {
    None: ("public_app",),
    "supervisor": ("patrol",),
    "grid_worker": ("patrol",),
    "intake": ("hotline", "public_app", "sensor", "patrol", "leader"),
    "shift_lead": ("hotline", "public_app", "sensor", "patrol", "leader"),
    "dispatcher": ("hotline", "public_app", "sensor", "patrol", "leader"),
    "department": ("public_app",),  # a department's staff report what they see as the public do
    "leader": ("leader",),
    "intake_system": ("hotline", "sensor", "public_app"),  # 12345 工单, video/IoT alarms, a public app it relays
}
OPEN_STATES = tuple(s for s in workflow.STATES if s not in workflow.TERMINAL_STATES)


@dataclass
class CaseServices:
    """Catalogues, rules and calendar: loaded once (per app or command) and passed in."""

    events: EventCatalogue
    components: Catalogue
    rules: routing.RoutingRules
    calendar: WorkingCalendar
    photos: PhotoStore
    #: 综合评价's weights, count scores and grade bands: GISGRID_CATALOGUE_DIR/rules/evaluation.csv, checked here
    #: at start so that a bad file stops the start, not a user's evaluation.
    evaluation_rules: EvaluationRules

    @property
    def departments(self) -> dict[str, str]:
        return self.components.departments

    @functools.cached_property
    def disposal_limits(self) -> dict[tuple[str, str, str | None], history.DisposalHours]:
        """Every class's disposal limit in working hours (:func:`history.disposal_limits`): made once, read by
        every case detail, the evaluation and the risks."""
        return history.disposal_limits(self.events, self.calendar.hours.hours_per_day)


def load_rules(
    settings: Settings, components: Catalogue | None = None, events: EventCatalogue | None = None
) -> routing.RoutingRules:
    """The routing rules file and the city's extra rule files (``catalogue_extra`` files with the rules' header),
    checked against the city's departments and event classes."""
    components = components or catalogue_for(settings)
    events = events or load_events(settings, components)
    extra_rules = cityfiles.extra_files(settings.catalogue_extra, "routing_rules")
    classes = {scheme: events.by_scheme[scheme].keys() for scheme in events.by_scheme}
    return routing.load_routing_rules(
        settings,
        extra_rules,
        departments=components.departments,
        classes=classes,
        class_names=routing.event_class_names(events),
    )


def load_events(settings: Settings, components: Catalogue | None = None) -> EventCatalogue:
    """The event catalogue with the city's extra event and time-limit files (told apart by their headers)."""
    return load_event_catalogue(settings, settings.catalogue_extra, components=components or catalogue_for(settings))


def load_services(settings: Settings) -> CaseServices:
    components = catalogue_for(settings)
    events = load_events(settings, components)
    return CaseServices(
        events=events,
        components=components,
        rules=load_rules(settings, components, events),
        calendar=load_city_calendar(settings.calendar_file, settings.working_hours, setting="GISGRID_CALENDAR_FILE"),
        photos=PhotoStore(settings.data_path / "photos"),
        evaluation_rules=load_evaluation_rules(settings, groups=components.department_groups),
    )


def sync_reference_data(engine: Engine, services: CaseServices) -> None:
    """Departments from the catalogue into their table (the FK target of cases and components)."""
    from gisgrid.components_store import sync_departments

    with engine.begin() as conn:
        sync_departments(conn, services.components)


# -- intake ---------------------------------------------------------------------------------------


@dataclass
class Intake:
    class_code: str
    scheme: str = "gbt47678"
    lon: float | None = None
    lat: float | None = None
    datum: str = "wgs84"
    description: str | None = None
    address: str | None = None
    source: str | None = None  # the channel (SOURCES); None: the reporter role's default (REPORT_SOURCES)
    reporter: str | None = None  # who reports, as shown (上报人: a citizen's name an intake clerk types …)
    reporter_role: str | None = None
    disposal_type: str | None = None
    idempotency_key: str | None = None
    external_ref: str | None = None  # the sending system's own number (12345 工单号, a vendor's alarm id)
    #: The location's accuracy in metres (a phone's GPS fix radius); stored as sent, also above MAX_GPS_ERROR_M.
    accuracy_m: float | None = None
    photos: list[tuple[str, bytes]] = field(default_factory=list)  # (filename, bytes)
    #: Who files it (the API's X-Actor identity), recorded as the report's actor — the name the evaluation credits
    #: the report to; None: the reporter (the CLI, where the operator names who reports).
    actor: str | None = None


#: The longest text a report or an action takes, per field (the API's request models and the CLI state these).
TEXT_LIMITS = {
    "description": 2000,
    "address": 256,
    "reporter": 100,
    "idempotency_key": 100,
    "external_ref": 64,
    "note": 2000,
    "result": 2000,
    "reason": 2000,
}


def check_texts(values: dict[str, Any], labels: dict[str, str] | None = None) -> None:
    """Refuse a text longer than ``TEXT_LIMITS`` allows for its field, or holding a NUL character (which no
    PostgreSQL text can store, also inside a dict or list value) or a control or bidirectional character
    (``texts.refuse_bad_text``: line breaks, Chinese and emoji stay). ``labels`` names a field as the caller's user
    knows it (the CLI's ``--key`` for ``idempotency_key``)."""
    for name, value in values.items():
        label = (labels or {}).get(name, name)
        limit = TEXT_LIMITS.get(name)
        if isinstance(value, str) and limit is not None and len(value) > limit:
            raise InvalidInput(
                f"{label}: at most {limit} characters, got {len(value)}",
                detail=[{"field": label, "reason": "too long", "limit": {"max_length": limit}}],
                reason=Reason.STRING_TOO_LONG,
            )
        refuse_bad_text({label: value})  # nested payload values too: jsonb cannot hold a NUL either


#: The largest location accuracy (metres) a report may state: beyond it the "fix" places nothing in a district.
MAX_ACCURACY_M = 50_000.0


def check_accuracy(accuracy_m: float | None) -> None:
    """Refuse an ``accuracy_m`` that is not a positive finite number of metres, at most :data:`MAX_ACCURACY_M`.
    One coarser than the photos' limit (``photos.MAX_GPS_ERROR_M``) is taken and stored: the field page asks the
    worker to confirm it, and an API client (a 12345 call has no GPS) may know no better."""
    if accuracy_m is None:
        return
    if not math.isfinite(accuracy_m) or accuracy_m > MAX_ACCURACY_M:
        raise InvalidInput(
            f"accuracy_m: {accuracy_m} is not a number of metres from 0 to {MAX_ACCURACY_M:.0f}",
            detail=[{"field": "accuracy_m", "reason": "out of range", "limit": {"gt": 0, "le": MAX_ACCURACY_M}}],
            reason=Reason.OUT_OF_RANGE,
        )
    if accuracy_m <= 0:
        raise InvalidInput(
            f"accuracy_m: must be a positive number of metres, got {accuracy_m}",
            detail=[{"field": "accuracy_m", "reason": "not positive", "limit": {"gt": 0}}],
            reason=Reason.NOT_POSITIVE,
        )


def check_idempotency_key(key: str | None, label: str = "idempotency_key", per: str = "report") -> None:
    """Refuse an empty or blank idempotency key (``label``: the header or field it came in; ``per``: what it keys,
    report or action). It names no request: stored, it would answer every later one sent with it by the first."""
    if key is not None and not key.strip():
        raise InvalidInput(
            f"{label}: empty; send a key of 1–{TEXT_LIMITS['idempotency_key']} characters (a new UUID per {per}), "
            "or none",
            detail=[{"field": label, "reason": "empty", "limit": {"min_length": 1}}],
            reason=Reason.STRING_TOO_SHORT,
        )


def local_now(now: dt.datetime | None) -> dt.datetime:
    return (now or dt.datetime.now(tz=LOCAL_TZ)).astimezone(LOCAL_TZ)


def event_class(services: CaseServices, scheme: str, code: str) -> EventClass:
    try:
        found = services.events.get(scheme, code) if scheme in ("gbt47678", "cjt214") else None
    except InvalidInput:
        found = None
    if found is None:
        raise InvalidInput(
            f"class_code: unknown {scheme} event class {code!r}",
            detail=[{"field": "class_code", "reason": f"not in the {scheme} event catalogue"}],
            reason=Reason.UNKNOWN_CLASS,
        )
    return found


# The nearest component of a class within COMPONENT_LINK_M of point ``p.g``: a degree box the geometry index
# answers (:dx, :dy from geodesy.degree_box), then class, status and exact metres on the few rows inside.
# OFFSET 0 keeps the class test out of the index scan: a plan made for any class (the prepared statement's
# generic plan) otherwise ANDs in the class index, reading every component of a common class (3 ms, not 0.1).
def nearest_component_sql(component_class: str, dx: str, dy: str) -> str:
    """The nearest-component probe over point ``p.g``, its class and degree box given as SQL expressions (binds
    for one report, columns for a batch of them)."""
    return f"""
    SELECT k.id, k.maint_dept_code, k.main_dept_code, k.owner_dept_code,
           ST_Distance(k.geom::geography, p.g::geography) AS d
    FROM (SELECT * FROM components WHERE geom && ST_Expand(p.g, {dx}, {dy}) OFFSET 0) k
    WHERE k.class_code = {component_class} AND k.status <> '移除'
      AND ST_DWithin(k.geom::geography, p.g::geography, {COMPONENT_LINK_M})
    ORDER BY d, k.id
    LIMIT 1
"""


_NEAREST_COMPONENT = nearest_component_sql("CAST(:cc AS text)", ":dx", ":dy")
#: Open cases of the same class within the class's radius (:r; :rdx, :rdy its degree box) and time window (since
#: :since) of ``p.g``; the same OFFSET 0 fence as above.
_DUPLICATES = """
    SELECT o.id, o.case_no, o.state, o.created_at,
           round(ST_Distance(o.geom::geography, p.g::geography)::numeric, 1) AS distance_m
    FROM (SELECT * FROM cases WHERE geom && ST_Expand(p.g, :rdx, :rdy) OFFSET 0) o
    WHERE o.scheme = :s AND o.class_code = :c AND o.state = ANY(:open) AND o.duplicate_of IS NULL
      AND o.created_at >= :since AND ST_DWithin(o.geom::geography, p.g::geography, :r)
    ORDER BY distance_m, o.id
    LIMIT 20
"""
#: Everything a report reads, in one round trip: a case already made with its idempotency key (its number and
#: request fingerprint too), the unit grid and tiers of the point, the nearest component of the implied class,
#: the possible duplicates.
_INTAKE_READ = Prepared(
    "gisgrid_intake_read",
    f"""
    WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:x, :y), {STORAGE_SRID}) AS g)
    SELECT
        e.id AS existing, e.case_no AS existing_no, e.idempotency_fingerprint AS existing_fingerprint,
        xr.id AS xref_case, xr.case_no AS xref_no, xr.state AS xref_state,
        w.grid,
        (SELECT to_jsonb(k) FROM ({_NEAREST_COMPONENT}) k) AS component,
        (SELECT coalesce(jsonb_agg(to_jsonb(o) ORDER BY o.distance_m, o.id), '[]') FROM ({_DUPLICATES}) o)
            AS duplicates,
        -- asked only when no grid holds the point (an init plan runs when first needed): the refusal's words
        CASE WHEN w.grid IS NULL THEN NOT EXISTS (SELECT 1 FROM unit_grids) ELSE false END AS no_grids
    FROM p CROSS JOIN LATERAL (SELECT (SELECT to_jsonb(u) FROM (
            SELECT code, district_code, street_code, community_code, tier3_code FROM unit_grids g
            WHERE {grid_store.unit_grid_at("p.g")}) u) AS grid OFFSET 0) w  -- fenced: probed once, not per use
    LEFT JOIN LATERAL (
        SELECT id, case_no, idempotency_fingerprint FROM cases WHERE idempotency_key = CAST(:key AS text)) e ON true
    LEFT JOIN LATERAL (  -- the case holding the sender's number (one, but for pairs filed before migration 0023)
        SELECT id, case_no, state FROM cases
        WHERE external_ref = CAST(:xref AS text) AND source = CAST(:src AS text)
        ORDER BY id DESC LIMIT 1) xr ON true
    """,
)
_CASE_INSERT_COLUMNS = (
    "case_no, scheme, class_code, matter_code, disposal_type, urgent, state, source, description, address, "
    "reporter, reporter_role, input_lon, input_lat, input_datum, unit_grid_code, district_code, street_code, "
    "community_code, tier3_code, component_id, component_distance_m, idempotency_key, idempotency_fingerprint, "
    "external_ref, accuracy_m, routing, node, node_started_at, due_at, node_calendar_time, created_at, updated_at, geom"
)
_CASE_INSERT_VALUES = (
    "next_case_no(:year), :scheme, :cls, :matter, :dtype, :urgent, 'reported', :source, :descr, :addr, :reporter, "
    ":rrole, :ilon, :ilat, :idatum, :ug, :d, :t1, :t2, :t3, :comp, :compd, :key, :fp, :xref, :acc, "
    "CAST(:routing AS jsonb), "
    f"'verify', :now, :due, :ncal, :now, :now, ST_SetSRID(ST_MakePoint(:x, :y), {STORAGE_SRID})"
)
_PHOTOS_CTE = """,
    ph AS (
        INSERT INTO case_photos (case_id, transition_id, sha256, relpath, content_type, kind, width, height,
            taken_at, gps_lon, gps_lat)
        SELECT c.id, t.id, f.* FROM c, t, unnest(CAST(:ph_sha AS text[]), CAST(:ph_path AS text[]),
            CAST(:ph_type AS text[]), CAST(:ph_kind AS text[]), CAST(:ph_w AS int[]), CAST(:ph_h AS int[]),
            CAST(:ph_taken AS timestamptz[]), CAST(:ph_gx AS float8[]), CAST(:ph_gy AS float8[])) AS f
    )"""


def _intake_write(with_photos: bool) -> Prepared:
    """The case, its first log entry (and its photos) in one statement — one round trip, one implicit
    transaction; the new case comes back ready to answer with. A conflict on the idempotency key (a concurrent
    retry) or on the case number inserts nothing and returns no row; so does a unit grid whose code or tier-3 grid
    changed since the read (a ``boundaries recode``, a tier-3 regroup, a grid regeneration): the codes read would
    be stale. The unit grid's row is share-locked: a regroup or regeneration that has rewritten it and not yet
    committed makes the write wait and then see its outcome; one that comes to the row after the write waits for
    it, and its later update of the cases in progress sees the new case."""
    attachments = "to_jsonb(CAST(:ph_name AS text[]))" if with_photos else "'[]'"  # the photos' file names
    return Prepared(
        "gisgrid_intake_write" + ("_photos" if with_photos else ""),
        f"""
        WITH c AS (
            INSERT INTO cases ({_CASE_INSERT_COLUMNS}) SELECT {_CASE_INSERT_VALUES}
            WHERE EXISTS (SELECT 1 FROM unit_grids WHERE code = CAST(:ug AS varchar)
                          AND tier3_code IS NOT DISTINCT FROM CAST(:t3 AS varchar) FOR SHARE)
            ON CONFLICT DO NOTHING
            RETURNING *
        ),
        t AS (
            INSERT INTO case_transitions (case_id, action, from_state, to_state, actor, role, at, note, attachments,
                version, effects, details)
            SELECT c.id, 'report', NULL, 'reported', :actor, :role, :now, :descr, {attachments}, 1, '[]',
                CAST(:details AS jsonb) FROM c
            RETURNING id
        ){_PHOTOS_CTE if with_photos else ""}
        SELECT {CASE_COLUMNS} FROM c LEFT JOIN departments d ON d.code = c.department_code
        """,
    )


@dataclass(frozen=True)
class Filed:
    """What an intake did: the case, whether this call made it, and the stored row when it did."""

    case_id: int
    created: bool
    row: Any = None  # a mapping of CASE_COLUMNS for a new case


def decision_json(decision: routing.RoutingDecision) -> dict[str, Any]:
    """The decision as stored in ``cases.routing`` (plain strings and booleans: no serialising round trip)."""
    return {
        "department": decision.department,
        "queue": decision.queue,
        "source": decision.source,
        "rule_id": decision.rule_id,
        "explanation": decision.explanation,
        "candidates": [c._asdict() for c in decision.candidates],
        "overridden_by": decision.overridden_by,
        "override_reason": decision.override_reason,
        "overridden_at": decision.overridden_at,
        "original": decision_json(decision.original) if decision.original else None,
        "overrides": [o.__dict__.copy() for o in decision.overrides],
    }


def decision_from_json(data: dict[str, Any]) -> routing.RoutingDecision:
    """A stored decision (``cases.routing -> decision``), as :func:`decision_json` writes it or as older rows hold
    it (no ``overrides``; a 改派 nested in the ``original`` of the next)."""
    return routing.RoutingDecision(  # every stored decision holds the first five; the override's came later
        department=data["department"],
        queue=data["queue"],
        source=data["source"],
        rule_id=data["rule_id"],
        explanation=data["explanation"],
        overridden_by=data.get("overridden_by"),
        override_reason=data.get("override_reason"),
        overridden_at=data.get("overridden_at"),
        candidates=[routing.Candidate(**c) for c in data.get("candidates") or []],
        original=decision_from_json(data["original"]) if data.get("original") else None,
        overrides=tuple(routing.Override(**o) for o in data.get("overrides") or []),
    )


def intake(engine: Engine, services: CaseServices, item: Intake, *, now: dt.datetime | None = None) -> tuple[int, bool]:
    """File a report: returns (case id, created). A repeated idempotency key returns the first case when the
    request is the same report (:func:`request_fingerprint`); with another report it is refused (409)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        filed = intake_on(conn, services, item, now=now)
    return filed.case_id, filed.created


def _checked_photos(item: Intake) -> list[PhotoInfo]:
    for i, (name, _) in enumerate(item.photos):
        check_texts({f"photos[{i}]": name})
    # by the headers, before any photo is decoded; a public report's budget is smaller (anyone may send one): one
    # without a role, and one a system or a department relays as the public's (source public_app)
    check_pixel_budget(item.photos, public=item.reporter_role is None or item.source == "public_app")
    infos: list[PhotoInfo] = []
    for i, (name, data) in enumerate(item.photos):
        try:
            infos.append(inspect_photo(data, filename=name))
        except InvalidInput as exc:
            raise refused_photo(i, exc) from None
    return infos


@dataclass(frozen=True)
class _Draft:
    """A report checked and located in storage coordinates, before the database is asked anything."""

    item: Intake
    ev: EventClass
    limit: Any
    infos: list[PhotoInfo]
    lon: float
    lat: float
    datum: str
    x: float
    y: float
    now: dt.datetime
    fingerprint: str | None = None  # of the request, when it carries an idempotency key

    def read_params(self) -> dict[str, Any]:
        """The binds of ``_INTAKE_READ``."""
        ev = self.ev
        dx, dy = geodesy.degree_box(self.y, COMPONENT_LINK_M)
        rdx, rdy = geodesy.degree_box(self.y, ev.duplicate_radius_m)
        return {
            "x": self.x,
            "y": self.y,
            "key": self.item.idempotency_key,
            "xref": self.item.external_ref,
            "src": self.item.source,
            "cc": ev.component_class or None,
            "dx": dx,
            "dy": dy,
            "s": ev.scheme,
            "c": ev.code,
            "open": list(OPEN_STATES),
            "since": self.now - dt.timedelta(hours=ev.duplicate_window_h),
            "r": ev.duplicate_radius_m,
            "rdx": rdx,
            "rdy": rdy,
        }

    @property
    def write(self) -> Prepared:
        return _INTAKE_WRITE_WITH_PHOTOS if self.infos else _INTAKE_WRITE


def report_source(role: str | None, source: str | None) -> str:
    """The channel of a report by ``role`` (a known role or None): ``source`` when the role may name it, else the
    role's default; an unknown source is a 422, a channel the role may not name a 403 (``role_not_allowed``)."""
    allowed = REPORT_SOURCES[role]
    if source is None:
        return allowed[0]
    if source not in SOURCES:
        raise InvalidInput(
            f"source: must be one of {', '.join(SOURCES)}",
            detail=[{"field": "source", "reason": "unknown source"}],
            reason=Reason.LITERAL_ERROR,
        )
    if source not in allowed:
        who = f"role {role} ({workflow.ROLES[role]})" if role else "a report without X-Role (公众上报)"
        raise workflow.RoleNotAllowed(
            f"source: {source} ({SOURCES[source]}) is not a channel {who} may report through; allowed: "
            + ", ".join(f"{s} ({SOURCES[s]})" for s in allowed),
            detail=[
                workflow.refusal_item(
                    "source",
                    "not a channel of this role",
                    Reason.ROLE_NOT_ALLOWED,
                    role=role,
                    source=source,
                    allowed_sources=list(allowed),
                )
            ],
        )
    return source


def check_role(role: str | None, label: str = "X-Role") -> None:
    """Refuse a reporter's role the workflow does not have, named as the caller's user sends it (``X-Role`` over
    HTTP, ``--role`` on the command line), not by the parameter's name (review52 F9)."""
    if role is not None and role not in workflow.ROLES:
        raise InvalidInput(
            f"{label}: unknown role {role!r}; expected one of: {', '.join(workflow.ROLES)}",
            detail=[{"field": "X-Role", "reason": "unknown role", "value": role}],
            reason=Reason.UNKNOWN_ROLE,
        )


def _draft(services: CaseServices, item: Intake, now: dt.datetime) -> _Draft:
    """Every check a report can fail without the database: role, source, class, disposal type, photos, location
    (given, or the photos' EXIF GPS), datum, (0, 0); the point converted to the storage datum."""
    check_role(item.reporter_role)
    item = replace(item, source=report_source(item.reporter_role, item.source))
    texts = ("description", "address", "reporter", "idempotency_key", "external_ref")
    check_texts({k: getattr(item, k) for k in texts})
    check_idempotency_key(item.idempotency_key)  # so every key stored has its fingerprint beside it
    if item.external_ref is not None and not item.external_ref.strip():  # a number that names nothing
        raise InvalidInput(
            f"external_ref: empty; send the sending system's number (1–{TEXT_LIMITS['external_ref']} characters), "
            "or none",
            detail=[{"field": "external_ref", "reason": "empty", "limit": {"min_length": 1}}],
            reason=Reason.STRING_TOO_SHORT,
        )
    check_accuracy(item.accuracy_m)
    ev = event_class(services, item.scheme, item.class_code)
    limit = disposal_limit(services, ev, item.disposal_type)
    item = replace(item, photos=one_request(item.photos))  # at most 10; the same file twice is one photo
    infos = _checked_photos(item)
    lon, lat, datum = item.lon, item.lat, item.datum
    if (lon is None) != (lat is None):  # half a location is a mistake, not "no location"
        given, missing = ("lon", "lat") if lat is None else ("lat", "lon")
        raise InvalidInput(
            f"{missing}: missing ({given} was given); give both, or neither to take the photo's GPS",
            detail=[{"field": missing, "reason": "missing"}],
            reason=Reason.MISSING,
        )
    if lon is not None and lat is not None:
        geodesy.check_point(lon, lat)  # as /grids/locate and /components?lon=… refuse it
    if lon is None or lat is None:
        located = next(((p.gps, p.gps_datum) for p in infos if p.gps is not None), None)
        if located is None:
            why = next((f"photos[{i}]: {p.gps_problem}" for i, p in enumerate(infos) if p.gps_problem), None)
            raise InvalidInput(
                "location: give lon and lat, or attach a photo that carries GPS (EXIF)" + (f"; {why}" if why else ""),
                detail=[{"field": "lon", "reason": "missing"}, {"field": "lat", "reason": "missing"}],
                reason=Reason.NO_LOCATION,
            )
        (lon, lat), datum = located[0], located[1] or "wgs84"  # GPSMapDatum, WGS-84 when absent
    if datum not in geodesy.DATUMS:
        raise InvalidInput(
            f"datum: must be one of {', '.join(geodesy.DATUMS)}",
            detail=[{"field": "datum"}],
            reason=Reason.LITERAL_ERROR,
        )
    if abs(lon) < 1e-9 and abs(lat) < 1e-9:
        raise InvalidInput(
            "location: (0, 0) is not a place in the district (an unset GPS fix?)",
            detail=[{"field": "lon", "reason": "(0,0)"}, {"field": "lat", "reason": "(0,0)"}],
            reason=Reason.ZERO_LOCATION,
        )
    xs, ys = geodesy.to_storage(np.array([lon]), np.array([lat]), datum)  # type: ignore[arg-type]
    fingerprint = None
    if item.idempotency_key is not None:
        # The class's default disposal type spelled out ("默认") is the report that left it out, as a datum, source
        # or reporter spelled out as its default is: hashed as absent, the fingerprint of the reports already kept.
        default = limit.disposal_type == disposal_limit(services, ev, None).disposal_type
        fingerprint = request_fingerprint(replace(item, disposal_type=None) if default else item, infos)
    return _Draft(item, ev, limit, infos, lon, lat, datum, float(xs[0]), float(ys[0]), now, fingerprint)


def request_fingerprint(item: Intake, infos: list[PhotoInfo]) -> str:
    """What makes two submissions under one idempotency key the same report: class, scheme, the location as sent
    (lon, lat, datum; or "from photo"), description, address, source, reporter, disposal type (None for the class's
    default, whether named or not: the caller passes it so), external_ref and
    the photos' SHA-256 — of the bytes sent (a HEIC is hashed as sent, not as the JPEG made from it), in order. A
    retry of the same submission (the field page's outbox resends the stored fields and photo bytes) gives the
    same value; not the reporter's role, nor the photos' file names."""
    located = item.lon is not None and item.lat is not None  # half a location was refused before
    where: Any = [float(item.lon), float(item.lat), item.datum] if located else "from photo"  # type: ignore[arg-type]
    shas = [
        info.sha256 if info.converted is None else hashlib.sha256(data).hexdigest()
        for info, (_, data) in zip(infos, item.photos, strict=True)
    ]
    canonical = [
        "v1",
        item.scheme,
        item.class_code,
        where,
        *(v or None for v in (item.description, item.address, item.source, item.reporter, item.disposal_type)),
        shas,
        # Only when given: a submission without one keeps the fingerprint it had before external_ref existed.
        *([["external_ref", item.external_ref]] if item.external_ref else []),
        *([["accuracy_m", float(item.accuracy_m)]] if item.accuracy_m is not None else []),
    ]
    return hashlib.sha256(json.dumps(canonical, ensure_ascii=False).encode()).hexdigest()


def route_report(
    services: CaseServices, ev: EventClass, where: Any, component: Any, at: dt.datetime
) -> routing.RoutingDecision:
    """The routing of a report: its class at its unit grid (``where``: code, street/community/tier3 codes) and
    time, its linked component's departments first (``component``: id, maint/main/owner_dept_code, or None) —
    for intake and for a history made as intake would have made it."""
    owner = (
        routing.ComponentOwner(
            maint_dept=component["maint_dept_code"],
            main_dept=component["main_dept_code"],
            owner_dept=component["owner_dept_code"],
            component_id=component["id"],
        )
        if component
        else None
    )
    return routing.route(
        routing.RoutingInput(
            class_code=ev.code,
            scheme=ev.scheme,
            unit_grid_code=where["code"],
            reported_at=at,
            tier1_code=where["street_code"],
            tier2_code=where["community_code"],
            tier3_code=where["tier3_code"],
            component_linked=component is not None,
        ),
        services.rules,
        component=owner,
        class_default=ev.default_dept or None,
    )


def _write_params(
    services: CaseServices, draft: _Draft, read: dict[str, Any], saved: list[SavedPhoto]
) -> dict[str, Any]:
    """From what ``_INTAKE_READ`` found (a report not seen before): the grid or the refusal, the routing decision
    with its explanation, the first deadline — the binds of the write; photos are stored here (and added to
    ``saved``: a write that files nothing removes those no row references, :func:`drop_unfiled_photos`)."""
    item, ev, now = draft.item, draft.ev, draft.now
    where = read["grid"]
    if where is None and read["no_grids"]:  # not the point's fault: no datum or lon/lat order would find a grid
        raise grid_store.no_boundaries_loaded()
    if where is None:
        raise InvalidInput(
            f"location: ({draft.lon}, {draft.lat}) {draft.datum} is outside the gridded coverage; check the datum "
            "and that lon/lat are not swapped",
            detail=[{"field": f, "reason": "outside coverage"} for f in ("lon", "lat")],
            reason=Reason.OUTSIDE_COVERAGE,
        )
    component = read["component"]
    decision = route_report(services, ev, where, component, now)
    # The duplicates' report times in China time like every other time the API gives (jsonb wrote them in UTC).
    duplicates = [
        {**d, "created_at": dt.datetime.fromisoformat(d["created_at"]).astimezone(LOCAL_TZ).isoformat()}
        for d in read["duplicates"]
    ]
    decided = {"decision": decision_json(decision), "duplicates": duplicates}
    verify_clock = node_clock(services, "verify", ev, draft.limit.disposal_type, now)
    params: dict[str, Any] = {
        "year": now.year,
        "scheme": ev.scheme,
        "cls": ev.code,
        "matter": matter_code_of(where["district_code"], ev),
        "dtype": draft.limit.disposal_type,
        "urgent": draft.limit.urgent,
        "source": item.source,
        "descr": item.description,
        "addr": item.address,
        "reporter": item.reporter,
        "rrole": item.reporter_role,
        "ilon": draft.lon,
        "ilat": draft.lat,
        "idatum": draft.datum,
        "ug": where["code"],
        "d": where["district_code"],
        "t1": where["street_code"],
        "t2": where["community_code"],
        "t3": where["tier3_code"],
        "comp": component["id"] if component else None,
        "compd": round(float(component["d"]), 2) if component else None,
        "key": item.idempotency_key,
        "fp": draft.fingerprint,
        "xref": item.external_ref,
        "acc": item.accuracy_m,
        "routing": json.dumps(decided, ensure_ascii=False),
        "now": now,
        "due": verify_clock["due_at"],
        "ncal": verify_clock["node_calendar_time"],
        "x": draft.x,
        "y": draft.y,
        "actor": item.actor or item.reporter or "anonymous",
        "role": item.reporter_role or item.source,
        "details": json.dumps(
            {"source": item.source, "datum": draft.datum, "input": [draft.lon, draft.lat]}, ensure_ascii=False
        ),
    }
    if draft.infos:
        params |= _photo_params(services, draft.infos, item.photos, saved)
    return params


#: Settings of a session that runs intake: one plan per statement (a custom plan per call re-plans for as long as
#: the query runs — see ``_NEAREST_COMPONENT``), and that plan made of index scans even when it is made while
#: ``cases`` is empty: every intake probe is an index lookup, but a generic plan made on an empty table scans it,
#: and keeps scanning it as it grows until an ANALYZE replaces the plan.
INTAKE_SESSION_SETTINGS = {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off"}
_WRITE_ATTEMPTS = 3
_NO_NUMBER = "case number: no free number could be taken; submit again"


def _replayed(draft: _Draft, found: Any) -> Filed:
    """The case an idempotency key already filed (``found``: ``existing``, ``existing_no``,
    ``existing_fingerprint``), when this request is that report again; a key reused for another report is
    refused (409), never answered with someone else's case. A case stored with a key and no fingerprint replays
    to any request with that key: such rows exist — keys filed before migration 0012 added the fingerprint — and
    nothing makes new ones (``_draft`` refuses a blank key and fingerprints every other)."""
    kept = found["existing_fingerprint"]
    if kept is not None and kept != draft.fingerprint:
        key, case_no = draft.item.idempotency_key, found["existing_no"]
        raise Conflict(
            f"idempotency_key: {key!r} was already used for another report, filed as case {case_no}; this report "
            "was not filed — send it with a new key",
            detail=[{"field": "idempotency_key", "reason": "used for another report", "case_no": case_no}],
            reason=Reason.IDEMPOTENCY_KEY_REUSED,
            message_zh=f"此提交编号已用于另一条上报(已立为案件 {case_no}):本次未受理,请换用新的提交编号重发",
        )
    return Filed(int(found["existing"]), False)


def _refuse_known_ref(draft: _Draft, found: Any) -> None:
    """Refuse a report whose (source, external_ref) a case holds already (``found``: ``xref_case``, ``xref_no``,
    ``xref_state``): the sending system's number names one case — a retry without its idempotency key (a system
    restarted, a video platform firing the same alarm again) is answered 409 naming that case, whatever its state
    (an ended one too: 不予立案 or 作废 was the decision on that report; a new matter comes with a new number)."""
    if found["xref_case"] is None:
        return
    item, case_id, case_no = draft.item, int(found["xref_case"]), found["xref_no"]
    state = found["xref_state"]
    label = workflow.STATES.get(state, state)
    raise Conflict(
        f"external_ref: 来源 {item.source} 的编号 {item.external_ref!r} 已有案件 {case_no}({label}),本次未受理 / "
        f"{item.source}'s number {item.external_ref!r} is case {case_no} already (id {case_id}, {state}); this report "
        "was not filed — look that case up (GET /cases?external_ref=…), or send a new matter with a new number",
        detail=[
            {
                "field": "external_ref",
                "reason": "a case holds this number of this source already",
                "code": Reason.EXTERNAL_REF_EXISTS.value,
                "case_id": case_id,
                "case_no": case_no,
                "state": state,
            }
        ],
        reason=Reason.EXTERNAL_REF_EXISTS,
    )


def intake_on(conn: Connection, services: CaseServices, item: Intake, *, now: dt.datetime | None = None) -> Filed:
    """:func:`intake` on the caller's connection, best in AUTOCOMMIT (``intake`` opens one so): the report takes
    two round trips — one read, one write that is its own transaction — and nothing is locked."""
    draft = _draft(services, item, local_now(now))
    (read,) = _INTAKE_READ.rows(conn, draft.read_params())
    if read["existing"] is not None:  # a retry of a report already filed, or the key reused
        return _replayed(draft, read)
    _refuse_known_ref(draft, read)
    saved: list[SavedPhoto] = []
    try:
        for _attempt in range(_WRITE_ATTEMPTS):
            written = draft.write.rows(conn, _write_params(services, draft, read, saved))
            if conn.in_transaction():
                conn.commit()  # a caller's connection outside AUTOCOMMIT
            if written:
                keep_filed_photos(conn, services, saved)
                saved = []  # the new case's
                return Filed(int(written[0]["id"]), True, written[0])
            # Nothing inserted: the same idempotency key made the case meanwhile (a concurrent retry) — answer with
            # it —, the number was taken by a history import that raised the year's counter — take the next one —
            # or the grid's codes changed since the read: read again.
            (read,) = _INTAKE_READ.rows(conn, draft.read_params())
            if conn.in_transaction():
                conn.commit()
            if read["existing"] is not None:
                return _replayed(draft, read)
            _refuse_known_ref(draft, read)  # a concurrent report of the same number won
        raise Conflict(_NO_NUMBER, reason=Reason.NO_CASE_NUMBER)
    finally:
        if saved:  # nothing filed: a losing concurrent report's photos are no case's (review43 D4)
            drop_unfiled_photos(conn, services, saved)


async def intake_async(
    conn: AsyncFetcher, services: CaseServices, item: Intake, *, now: dt.datetime | None = None
) -> Filed:
    """:func:`intake_on` on an asyncpg connection in autocommit, its session set up by ``init_async_connection``
    with ``INTAKE_SESSION_SETTINGS`` (the API's intake pool). Photo checks and storage, which read and write whole
    files, run in a worker thread; everything else on the event loop."""
    now = local_now(now)
    draft = await asyncio.to_thread(_draft, services, item, now) if item.photos else _draft(services, item, now)
    (read,) = await _INTAKE_READ.rows_async(conn, draft.read_params())
    if read["existing"] is not None:
        return _replayed(draft, read)
    _refuse_known_ref(draft, read)
    saved: list[SavedPhoto] = []
    try:
        for _attempt in range(_WRITE_ATTEMPTS):
            if draft.infos:
                params = await asyncio.to_thread(_write_params, services, draft, read, saved)
            else:
                params = _write_params(services, draft, read, saved)
            written = await draft.write.rows_async(conn, params)
            if written:
                await keep_filed_photos_async(conn, services, saved)
                saved = []
                return Filed(int(written[0]["id"]), True, written[0])
            (read,) = await _INTAKE_READ.rows_async(conn, draft.read_params())  # as in intake_on
            if read["existing"] is not None:
                return _replayed(draft, read)
            _refuse_known_ref(draft, read)  # a concurrent report of the same number won
        raise Conflict(_NO_NUMBER, reason=Reason.NO_CASE_NUMBER)
    finally:
        if saved:  # as in intake_on
            await drop_unfiled_photos_async(conn, services, saved)


def _photo_params(
    services: CaseServices, infos: list[PhotoInfo], photos: list[tuple[str, bytes]], saved: list[SavedPhoto]
) -> dict[str, Any]:
    """Photos saved (content-addressed: a retry or a failed write leaves no duplicate; each added to ``saved``)
    and their rows as arrays."""
    stored = []
    for info, (_, data) in zip(infos, photos, strict=True):
        stored.append(services.photos.save(data, info))
        saved.append(SavedPhoto(stored[-1], info, data))
    return {
        "ph_name": [name for name, _ in photos],
        "ph_sha": [s.sha256 for s in stored],
        "ph_path": [s.relpath for s in stored],
        "ph_type": [s.content_type for s in stored],
        "ph_kind": ["before"] * len(stored),
        "ph_w": [i.width for i in infos],
        "ph_h": [i.height for i in infos],
        "ph_taken": [i.taken_at for i in infos],
        "ph_gx": [i.position[0] if i.position else None for i in infos],
        "ph_gy": [i.position[1] if i.position else None for i in infos],
    }


class SavedPhoto(NamedTuple):
    """A photo a report saved before its write: what was stored, and what to store it again from."""

    stored: StoredPhoto
    info: PhotoInfo
    data: bytes


# A report's photos are saved before the one statement that files it, and that statement may file nothing (another
# report under the same key won). Its files then belong to no case — unless another case holds the same photo
# (content-addressed): a file is removed only when this report wrote it and no row references it, under an
# exclusive advisory lock. A report that filed its case takes the lock shared and writes again any of its files
# that is gone: a concurrent report of the same photo may have found the file stored, then seen it removed by the
# loser before its own row was there.
_PHOTO_SWEEP = "hashtext('gisgrid.photo_sweep')"
_PHOTOS_REFERENCED = """
SELECT s FROM unnest(CAST({shas} AS text[])) AS s
WHERE EXISTS (SELECT 1 FROM case_photos p WHERE p.sha256 = s)
   OR EXISTS (SELECT 1 FROM components c WHERE c.photos @> jsonb_build_array(jsonb_build_object('sha256', s)))
"""


def _written_by(saved: list[SavedPhoto]) -> dict[str, StoredPhoto]:
    """The files these saves wrote (a file found stored was there before this report), by sha256."""
    return {p.stored.sha256: p.stored for p in saved if p.stored.created}


def drop_unfiled_photos(conn: Connection, services: CaseServices, saved: list[SavedPhoto]) -> None:
    """After a write that filed nothing: remove the files it wrote that no case or component references. Never
    raises (the refusal that got here is what the caller should see); a file left is only disk space."""
    written = _written_by(saved)
    if not written:
        return
    try:
        conn.execute(text(f"SELECT pg_advisory_lock({_PHOTO_SWEEP})"))
        try:
            sql = text(_PHOTOS_REFERENCED.format(shas=":shas"))
            referenced = set(conn.execute(sql, {"shas": list(written)}).scalars())
            for sha, stored in written.items():
                if sha not in referenced:
                    services.photos.remove(stored)
        finally:
            conn.execute(text(f"SELECT pg_advisory_unlock({_PHOTO_SWEEP})"))
            if conn.in_transaction():
                conn.commit()
    except Exception:
        log.warning("could not remove the photo files of a report that was not filed", exc_info=True)


async def drop_unfiled_photos_async(conn: AsyncFetcher, services: CaseServices, saved: list[SavedPhoto]) -> None:
    """:func:`drop_unfiled_photos` on an asyncpg connection in autocommit."""
    written = _written_by(saved)
    if not written:
        return
    try:
        await conn.fetch(f"SELECT pg_advisory_lock({_PHOTO_SWEEP})")
        try:
            rows = await conn.fetch(_PHOTOS_REFERENCED.format(shas="$1"), list(written))
            referenced = {r[0] for r in rows}
            for sha, stored in written.items():
                if sha not in referenced:
                    services.photos.remove(stored)
        finally:
            await conn.fetch(f"SELECT pg_advisory_unlock({_PHOTO_SWEEP})")
    except Exception:
        log.warning("could not remove the photo files of a report that was not filed", exc_info=True)


def keep_filed_photos(conn: Connection, services: CaseServices, saved: list[SavedPhoto]) -> None:
    """After the write that filed the case: its photo files are there (written again if a losing report removed
    one meanwhile)."""
    if not saved:
        return
    conn.execute(text(f"SELECT pg_advisory_lock_shared({_PHOTO_SWEEP})"))
    try:
        for p in saved:
            if not services.photos.holds(p.stored):
                services.photos.save(p.data, p.info)
    finally:
        conn.execute(text(f"SELECT pg_advisory_unlock_shared({_PHOTO_SWEEP})"))
        if conn.in_transaction():
            conn.commit()


async def keep_filed_photos_async(conn: AsyncFetcher, services: CaseServices, saved: list[SavedPhoto]) -> None:
    """:func:`keep_filed_photos` on an asyncpg connection in autocommit (a file is written in a worker thread)."""
    if not saved:
        return
    await conn.fetch(f"SELECT pg_advisory_lock_shared({_PHOTO_SWEEP})")
    try:
        missing = [p for p in saved if not services.photos.holds(p.stored)]
        for p in missing:
            await asyncio.to_thread(services.photos.save, p.data, p.info)
    finally:
        await conn.fetch(f"SELECT pg_advisory_unlock_shared({_PHOTO_SWEEP})")


def _save_photo(
    conn: Connection,
    services: CaseServices,
    case_id: int,
    info: PhotoInfo,
    data: bytes,
    kind: str,
    transition_id: int | None = None,
) -> None:
    stored = services.photos.save(data, info)
    position = info.position
    conn.execute(
        text(
            "INSERT INTO case_photos (case_id, transition_id, sha256, relpath, content_type, kind, width, height, "
            "taken_at, gps_lon, gps_lat) VALUES (:c, :tr, :h, :p, :t, :k, :w, :hgt, :ta, :gx, :gy)"
        ),
        {
            "c": case_id,
            "tr": transition_id,
            "h": stored.sha256,
            "p": stored.relpath,
            "t": stored.content_type,
            "k": kind,
            "w": info.width,
            "hgt": info.height,
            "ta": info.taken_at,
            "gx": position[0] if position else None,
            "gy": position[1] if position else None,
        },
    )


def log_transition(
    conn: Connection,
    case_id: int,
    tr: workflow.Transition,
    *,
    actor: str,
    role: str,
    at: dt.datetime,
    note: str | None = None,
    department: str | None = None,
    effects: list[str] | tuple[str, ...] = (),
    details: dict[str, Any] | None = None,
    attachments: list[str] | None = None,
    idempotency: tuple[str | None, str | None] = (None, None),
) -> int:
    """Append the transition ``tr`` (action, states, the case's new version) to the case's log, with who took it,
    when and what came with it, and the request's idempotency key and fingerprint; its id (the photos taken with
    it point at it)."""
    return conn.execute(
        text(
            "INSERT INTO case_transitions (case_id, action, from_state, to_state, actor, role, at, note, attachments, "
            "version, department_code, effects, details, idempotency_key, idempotency_fingerprint) VALUES (:c, :a, "
            ":f, :t, :actor, :role, :at, :note, CAST(:att AS jsonb), :v, :dep, CAST(:eff AS jsonb), "
            "CAST(:det AS jsonb), :key, :fp) RETURNING id"
        ),
        {
            "c": case_id,
            "a": tr.action,
            "f": tr.from_state,
            "t": tr.to_state,
            "actor": actor,
            "role": role,
            "at": at,
            "note": note,
            "att": json.dumps(attachments or []),
            "v": tr.case.version,
            "dep": department,
            "eff": json.dumps(list(effects)),
            "det": json.dumps(details or {}, ensure_ascii=False, default=str),
            "key": idempotency[0],
            "fp": idempotency[1],
        },
    ).scalar_one()


# -- actions --------------------------------------------------------------------------------------


@dataclass
class ActionRequest:
    action: str
    role: str
    actor: str
    version: int
    note: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    #: Photos taken with the action: the after-photos of 处置 (its required ``after_photo``), evidence of others.
    photos: list[tuple[str, bytes]] = field(default_factory=list)
    #: The client's key for this request: a retry whose answer was lost answers with the step already taken.
    idempotency_key: str | None = None
    #: The department the department role acts for (the API's X-Department): its steps only on that
    #: department's cases. None: not stated (the command line, trusted to act for any).
    department: str | None = None


class Acted(NamedTuple):
    """What :func:`act` did: the case, and whether the request was a retry of a step already taken under its
    idempotency key (nothing written)."""

    case_id: int
    replayed: bool = False


def action_fingerprint(req: ActionRequest) -> str:
    """What makes two requests under one idempotency key the same step: action, role, actor, the version acted
    on, note, payload and the photos' SHA-256 in order (not their file names); for the department role, the
    department it acts for (another department's retry of the key is another request, not that step)."""
    canonical = [
        "v1",
        req.action,
        req.role,
        req.actor,
        req.version,
        req.note or None,
        req.payload,
        [hashlib.sha256(data).hexdigest() for _, data in req.photos],
    ]
    if req.role == workflow.DEPARTMENT_ROLE and req.department is not None:  # others keep their fingerprints
        canonical.append(["department", req.department])
    return hashlib.sha256(json.dumps(canonical, ensure_ascii=False, sort_keys=True, default=str).encode()).hexdigest()


def _replayed_step(conn: Connection, case_id: int, req: ActionRequest, fingerprint: str) -> bool:
    """True when this case's log holds the step ``req``'s key took and ``req`` is that request again; a key
    already used for another request is refused (409), never answered with another step."""
    found = conn.execute(
        text(
            "SELECT action, version, idempotency_fingerprint FROM case_transitions "
            "WHERE case_id = :c AND idempotency_key = :k"
        ),
        {"c": case_id, "k": req.idempotency_key},
    ).one_or_none()
    if found is None:
        return False
    if found.idempotency_fingerprint != fingerprint:
        label = workflow.ACTIONS.get(found.action, found.action)
        raise Conflict(
            f"idempotency_key: {req.idempotency_key!r} was already used on this case for another request "
            f"({found.action} {label}, the step that made version {found.version}); this {req.action} was not "
            "taken — send it with a new key",
            detail=[
                {
                    "field": "idempotency_key",
                    "reason": "used for another request",
                    "action": found.action,
                    "version": found.version,
                }
            ],
            reason=Reason.IDEMPOTENCY_KEY_REUSED,
            message_zh=f"此提交编号已用于本案件的另一项操作({workflow.ACTIONS.get(found.action, found.action)},"
            f"形成版本 {found.version}):本次未办理,请换用新的提交编号重发",
        )
    return True


def case_state(row: Any) -> workflow.CaseState:
    return workflow.CaseState(
        state=row.state,
        previous_state=row.previous_state,
        department=row.department_code,
        rework_count=row.rework_count,
        escalation_level=row.escalation_level,
        pending_extension=row.pending_extension,
        version=row.version,
    )


def check_acting_department(services: CaseServices, department: str | None) -> None:
    """The department an actor says it acts for is one of the catalogue's (None, UNSTATED_DEPARTMENT: not stated)."""
    if department and department not in services.departments:
        raise InvalidInput(
            f"X-Department: unknown department {department[:40]!r}; the code of a department of the catalogue",
            detail=[{"field": "X-Department", "reason": "unknown department"}],
            reason=Reason.UNKNOWN_DEPARTMENT,
        )


def act(
    engine: Engine, services: CaseServices, case_id: int, req: ActionRequest, *, now: dt.datetime | None = None
) -> Acted:
    """Apply one workflow action; two operators acting on the same version: one wins, the other gets 409. A
    request with an idempotency key this case's log already holds is a retry: answered as taken, nothing written
    (checked under the case's row lock, so two retries at once take the step once)."""
    now = local_now(now)
    fingerprint = None
    if req.idempotency_key is not None:
        check_idempotency_key(req.idempotency_key, per="action")
        check_texts({"idempotency_key": req.idempotency_key})
        fingerprint = action_fingerprint(req)
    with engine.connect() as conn, conn.begin():
        rule = workflow.TRANSITIONS.get(req.action)
        reopens = rule is not None and rule.to_state in workflow.REOPENS_DUPLICATES
        grid_store.read_grids_first(conn, hold=reopens)  # before the case's row: see there
        row = conn.execute(text("SELECT * FROM cases WHERE id = :id FOR UPDATE"), {"id": case_id}).one_or_none()
        if row is None:
            raise NotFound(f"no case with id {case_id}", message_zh=f"未找到 id 为 {case_id} 的案件")
        if fingerprint is not None and _replayed_step(conn, case_id, req, fingerprint):
            return Acted(case_id, replayed=True)
        case = case_state(row)
        payload = dict(req.payload)
        if "unit" in payload:  # 工作日 typed in words: stored as its key, as the log and arithmetic read it
            payload["unit"] = workflow.time_unit(payload["unit"])
        if req.note:
            payload.setdefault("note", req.note)
        ev = event_class(services, row.scheme, row.class_code)
        routing_json = dict(row.routing or {})
        # None for a case stored without a routing (an imported one): nothing to suggest, nothing to record.
        decided = decision_from_json(routing_json["decision"]) if routing_json.get("decision") else None
        if req.action == "dispatch" and decided is not None:  # default: 派遣建议, never a department that returned it
            offered = routing.suggestion(decided, returned_departments(conn, case_id), services.departments)
            payload.setdefault("department", offered.department)
        if req.action == "supervise":  # a fact of the deadline, not the caller's claim
            payload["overdue"] = row.due_at is not None and now > row.due_at
        # Version, role, state and guard first: bad input to an action nobody may take now is a 409/403, not 422.
        workflow.check(case, req.action, req.role, payload=payload, expected_version=req.version)
        if req.role == workflow.DEPARTMENT_ROLE:  # another role's X-Department (a gateway's org unit) is not read
            check_acting_department(services, req.department)
            workflow.check_department(case, req.action, req.role, req.department)
        if req.action == "request_extension":  # a fact of the deadline, as the guards' refusals are (409)
            refuse_late_extension_request(row.due_at, now)
        workflow.check_payload(req.action, req.payload)
        check_texts({"note": req.note, **req.payload})
        department = payload.get("department") if req.action == "dispatch" else None
        if department and (not isinstance(department, str) or department not in services.departments):
            raise InvalidInput(
                f"department: unknown department {department!r}",
                detail=[{"field": "department"}],
                reason=Reason.UNKNOWN_DEPARTMENT,
            )
        reported_ev = ev
        corrected = payload.get("class_code")
        if isinstance(corrected, str) and corrected.strip() and req.action in RECLASSIFYING_ACTIONS:
            # 核实/立案 correcting the reported class (unknown: refused here, before anything is written)
            payload["class_code"] = corrected = corrected.strip()
            ev = event_class(services, row.scheme, corrected)
        disposal_type = row.disposal_type
        if ev is not reported_ev:  # the new class's default type and limits: the old one's may not exist for it
            disposal_type = disposal_limit(services, ev, None).disposal_type
        if req.action == "dispatch" and payload.get("disposal_type"):  # the dispatcher decides 停工/处罚/拆除, 紧急
            disposal_type = disposal_limit(services, ev, payload["disposal_type"]).disposal_type
        if req.action == "request_extension":  # what is asked is refused as its approval would be
            one_length(payload, "an extension request")
            if payload.get("new_due_at"):  # a time, stored as one
                asked_due, _ = extended_due(services, row, {"new_due_at": payload["new_due_at"]})
                payload["new_due_at"] = asked_due.isoformat()
            if payload.get("amount") is not None:
                extended_due(services, row, {"amount": payload["amount"], "unit": payload.get("unit")})
        req = replace(req, photos=one_request(req.photos))  # at most 10; the same file twice is one photo
        for i, (name, _) in enumerate(req.photos):
            check_texts({f"photos[{i}]": name})
        check_pixel_budget(req.photos)
        infos = []
        for i, (name, data) in enumerate(req.photos):
            try:
                infos.append(inspect_photo(data, filename=name))
            except InvalidInput as exc:
                raise refused_photo(i, exc) from None
        if req.action == "handle":  # the after-photo is a photo sent with the action, not a name in the payload
            if not req.photos:
                raise workflow.MissingField(
                    "handle needs 'after_photo' (处置后照片), a photo sent as a file with the action: "
                    f"POST /cases/{case_id}/actions/handle/form with photos (CLI: --photo)",
                    detail=[
                        workflow.refusal_item(
                            "after_photo",
                            "handle needs it",
                            Reason.MISSING,
                            action="handle",
                            required=list(workflow.TRANSITIONS["handle"].required),
                        )
                    ],
                    reason=Reason.MISSING,
                )
            earlier: dict[str, str] = dict(
                conn.execute(
                    text("SELECT sha256, kind FROM case_photos WHERE case_id = :c AND kind IN ('before', 'after')"),
                    {"c": case_id},
                ).all()
            )
            for i, info in enumerate(infos):
                if earlier.get(info.sha256) == "before":
                    raise InvalidInput(
                        f"photos[{i}]: the same picture as the report's photo; the after-photo shows the place "
                        "after handling",
                        detail=[{"field": f"photos[{i}]", "reason": "same as a before-photo"}],
                        reason=Reason.AFTER_PHOTO_IS_BEFORE_PHOTO,
                    )
                if earlier.get(info.sha256) == "after":  # 返工 found it not done: the old proof proves nothing now
                    raise InvalidInput(
                        f"photos[{i}]: the same picture as an earlier after-photo of this case; after 返工 the "
                        "after-photo shows the place handled again",
                        detail=[{"field": f"photos[{i}]", "reason": "same as an earlier after-photo"}],
                        reason=Reason.AFTER_PHOTO_REUSED,
                    )
            payload["after_photo"] = [n for n, _ in req.photos]
        as_requested = False
        if req.action == "approve_extension":
            requested = None
            if payload.get("amount") is None and not payload.get("new_due_at"):  # approved as asked
                requested = conn.execute(
                    text(
                        "SELECT details FROM case_transitions WHERE case_id = :c AND action = 'request_extension' "
                        "ORDER BY id DESC LIMIT 1"
                    ),
                    {"c": case_id},
                ).scalar()
            payload, as_requested = extension_due(services, row, payload, requested)
        tr = workflow.apply(case, req.action, req.role, payload=payload, expected_version=req.version)
        new = tr.case
        updates: dict[str, Any] = {
            "state": new.state,
            "previous_state": new.previous_state,
            "department_code": new.department,
            "rework_count": new.rework_count,
            "escalation_level": new.escalation_level,
            "pending_extension": new.pending_extension,
        }
        if disposal_type != row.disposal_type or ev is not reported_ev:
            limit = disposal_limit(services, ev, disposal_type)
            updates.update(disposal_type=limit.disposal_type, urgent=limit.urgent)
        updates.update(deadlines_after(services, ev, row, tr, now, disposal_type))
        basis: dict[str, Any] = {}
        if ev is not reported_ev:
            basis = _reclassify(conn, services, row, reported_ev, ev, routing_json, updates)
        if req.action == "dispatch" and decided is not None:
            # The routing's own decision stays the suggestion; a dispatcher's choice against it (改派, or 人工派遣 of
            # a case the routing left to a person) is recorded beside it in a flat list, and the step names which
            # one it was: its 交办单 prints that dispatch's own 派遣依据.
            assert new.department is not None  # workflow.apply refuses a dispatch without one
            dispatched, basis = routing.dispatch_choice(
                decided,
                new.department,
                req.actor,
                now.astimezone(LOCAL_TZ),
                payload.get("reason") or req.note,
                departments=services.departments,
            )
            routing_json["decision"] = decision_json(dispatched)
            updates["routing"] = json.dumps(routing_json, ensure_ascii=False)
        sets = ", ".join(f"{k} = :{k}" if k != "routing" else "routing = CAST(:routing AS jsonb)" for k in updates)
        done = conn.execute(
            text(f"UPDATE cases SET {sets}, version = version + 1, updated_at = :now WHERE id = :id AND version = :v"),
            {**updates, "now": now, "id": case_id, "v": req.version},
        ).rowcount
        if done != 1:
            raise workflow.StaleVersion(f"{req.action}: the case changed meanwhile; reload it and retry")
        logged = log_transition(
            conn,
            case_id,
            tr,
            actor=req.actor,
            role=req.role,
            at=now,
            note=req.note,
            department=new.department,
            effects=tr.effects,
            details=dict(tr.details)
            | _escalated_to(conn, row, new)
            | _order_terms(tr, disposal_type)
            | basis
            | ({"as_requested": True} if as_requested else {})
            | extension_terms(req.action, payload),
            attachments=[n for n, _ in req.photos],
            idempotency=(req.idempotency_key, fingerprint),
        )
        kind = "after" if req.action == "handle" else "evidence"
        for info, (_, data) in zip(infos, req.photos, strict=True):
            _save_photo(conn, services, case_id, info, data, kind=kind, transition_id=logged)
        for effect, kind in (("issue_dispatch_order", "dispatch"), ("issue_supervision_order", "supervision")):
            if effect in tr.effects:
                _issue_document(
                    conn, case_id, row.case_no, kind, new.department, updates.get("due_at"), req, payload, now, logged
                )
        if new.state in workflow.REOPENS_DUPLICATES:
            _reopen_duplicates(conn, services, row, new.state, now, actor=req.actor, role=req.role)
    return Acted(case_id)


#: The actions that take a corrected ``class_code`` (workflow rules' optional field): 核实 on site, 立案 at filing.
RECLASSIFYING_ACTIONS = frozenset(a for a, r in workflow.TRANSITIONS.items() if "class_code" in r.optional)


def _reclassify(
    conn: Connection,
    services: CaseServices,
    row: Any,
    old: EventClass,
    new: EventClass,
    routing_json: dict[str, Any],
    updates: dict[str, Any],
) -> dict[str, Any]:
    """A class corrected by 核实/立案: the case's class, 事项编码 and component link (the nearest component of the new
    class's component class within COMPONENT_LINK_M, as at intake) set in ``updates``, and its routing decided
    again as intake decides it (the new class at the report's unit grid and time) — the step's ``class_change``
    detail, with the new routing's department and explanation. The possible duplicates found at intake stay."""
    component = None
    if new.component_class:
        (lat,) = conn.execute(text("SELECT ST_Y(geom) FROM cases WHERE id = :id"), {"id": row.id}).one()
        dx, dy = geodesy.degree_box(lat, COMPONENT_LINK_M)
        found = (
            conn.execute(
                text(
                    "WITH p AS (SELECT geom AS g FROM cases WHERE id = :id) "
                    f"SELECT k.* FROM p CROSS JOIN LATERAL ({_NEAREST_COMPONENT}) k"
                ),
                {"id": row.id, "cc": new.component_class, "dx": dx, "dy": dy},
            )
            .mappings()
            .first()
        )
        component = dict(found) if found is not None else None
    where = {
        "code": row.unit_grid_code,
        "street_code": row.street_code,
        "community_code": row.community_code,
        "tier3_code": row.tier3_code,
    }
    decision = route_report(services, new, where, component, row.created_at)
    routing_json["decision"] = decision_json(decision)
    updates.update(
        class_code=new.code,
        matter_code=matter_code_of(row.district_code, new),
        component_id=component["id"] if component else None,
        component_distance_m=round(float(component["d"]), 2) if component else None,
        routing=json.dumps(routing_json, ensure_ascii=False),
    )
    return {
        "class_change": {
            "from": old.code,
            "from_name": old.name,
            "to": new.code,
            "to_name": new.name,
            "department": decision.department,
            "queue": decision.queue,
            "explanation": decision.explanation,
        }
    }


def _reopen_duplicates(
    conn: Connection, services: CaseServices, kept: Any, kept_state: str, now: dt.datetime, *, actor: str, role: str
) -> list[int]:
    """The duplicates merged into ``kept``, which has just ended as ``kept_state`` (作废/不予立案) without the matter
    being handled: each goes back to 上报, no longer merged, its verification clock started now as a new report's
    — in the caller's transaction, each logged as 重新受理 naming the kept case. Their ids."""
    rows = conn.execute(
        text("SELECT * FROM cases WHERE duplicate_of = :id AND state = 'voided' ORDER BY id FOR UPDATE"),
        {"id": kept.id},
    ).all()
    label = workflow.STATES[kept_state]
    note = f"主案 {kept.case_no} {label},重新受理 / kept case {kept.case_no} {kept_state}: back to intake"
    for r in rows:
        tr = workflow.reopen_duplicate(case_state(r), kept_state)
        ev = event_class(services, r.scheme, r.class_code)
        clock = node_clock(services, "verify", ev, r.disposal_type, now)
        conn.execute(
            text(
                "UPDATE cases SET state = :s, previous_state = NULL, pending_extension = false, duplicate_of = NULL, "
                "version = version + 1, node = 'verify', node_started_at = :now, due_at = :due, "
                "node_calendar_time = :ncal, closed_at = NULL, updated_at = :now WHERE id = :id"
            ),
            {"s": tr.to_state, "now": now, "due": clock["due_at"], "ncal": clock["node_calendar_time"], "id": r.id},
        )
        log_transition(
            conn,
            r.id,
            tr,
            actor=actor,
            role=role,
            at=now,
            note=note,
            details={"kept_case": kept.id, "kept_case_no": kept.case_no, "kept_state": kept_state, "reason": note},
        )
    grid_store.refresh_case_codes(conn, [r.id for r in rows])  # merged, they kept the codes of their report
    return [r.id for r in rows]


def _order_terms(tr: workflow.Transition, disposal_type: str | None) -> dict[str, Any]:
    """A step that issues a 交办单 records the disposal type it was issued with: the order printed later states
    that one, not whatever a later 派遣 made of the case."""
    return {"disposal_type": disposal_type} if "issue_dispatch_order" in tr.effects and disposal_type else {}


def _escalated_to(conn: Connection, row: Any, new: workflow.CaseState) -> dict[str, Any]:
    """The log's record of a 提级: the grid (and its 网格长) the case went to."""
    if new.escalation_level == row.escalation_level:
        return {}
    target = escalation_target(conn, row.tier3_code, new.escalation_level) or {}
    return {
        "to_grid": target.get("grid_code"),
        "to_grid_name": target.get("grid_name"),
        "to_leader": target.get("leader_name"),
    }


def escalation_target(conn: Connection, tier3_code: str | None, level: int) -> dict[str, Any] | None:
    """Where an escalated case (提级) is coordinated: the 二级 (level 2) or 一级 (level 1) management grid above
    the case's 三级 grid, with its 网格长; None at level 3."""
    if level >= 3 or not tier3_code:
        return None
    up = conn.execute(
        text(
            "SELECT g2.code AS c2, g2.name AS n2, g2.leader_name AS l2, g2.leader_phone AS p2, "
            "g1.code AS c1, g1.name AS n1, g1.leader_name AS l1, g1.leader_phone AS p1 FROM management_grids g3 "
            "LEFT JOIN management_grids g2 ON g2.code = g3.parent_code "
            "LEFT JOIN management_grids g1 ON g1.code = g2.parent_code WHERE g3.code = :t3"
        ),
        {"t3": tier3_code},
    ).one_or_none()
    n = str(level)
    return {
        "level": level,
        "label": workflow.ESCALATION_LEVELS[level],
        "grid_code": getattr(up, "c" + n, None),
        "grid_name": getattr(up, "n" + n, None),
        "leader_name": getattr(up, "l" + n, None),
        "leader_phone": getattr(up, "p" + n, None),
    }


#: What each kind of case photo is (case_photos.kind): the report's, 处置's after-photo, another step's evidence.
PHOTO_KIND_LABELS = {"before": "上报照片", "after": "处置后照片", "evidence": "办理佐证照片"}


def _issue_document(
    conn: Connection,
    case_id: int,
    case_no: str,
    kind: str,
    department: str | None,
    due_at: Any,
    req: ActionRequest,
    payload: dict[str, Any],
    issued_at: dt.datetime,
    step: int,
) -> None:
    """Record an order issued by the action at ``issued_at`` — the action's own time, as its log entry's (``step``,
    whose details the order prints). A 交办单
    is the 指挥中心's order: one issued by 返工 (the 监督员's failed 核查) is signed by whoever made the case's last
    派遣, not by the supervisor (:func:`rework_issuer`)."""
    issuer = rework_issuer(conn, case_id) if req.action == "rework" else None
    n = conn.execute(
        text("SELECT count(*) FROM case_documents WHERE case_id = :c AND kind = :k"), {"c": case_id, "k": kind}
    ).scalar_one()
    if due_at is None:
        due_at = conn.execute(text("SELECT due_at FROM cases WHERE id = :c"), {"c": case_id}).scalar()
    conn.execute(
        text(
            "INSERT INTO case_documents (case_id, kind, number, department_code, due_at, issued_at, issued_by, reason, "
            "transition_id) VALUES (:c, :k, :n, :d, :due, :at, :by, :why, :step)"
        ),
        {
            "c": case_id,
            "k": kind,
            "n": document_number(kind, case_no, int(n) + 1),
            "d": department,
            "due": due_at,
            "at": issued_at,
            "by": issuer or req.actor,
            "why": payload.get("reason") or req.note,
            "step": step,
        },
    )


#: The 交办单 of a 返工 is signed by the actor of the case's last 派遣 (the 指挥中心's dispatcher). The rule is this
#: query's; ``history._issue_documents`` applies it to the log it writes (in memory, in log order: the last 派遣
#: before each 返工), and migration 0014 holds a frozen copy of it as it stood then for the orders stored before.
REWORK_ISSUER_SQL = (
    "SELECT actor FROM case_transitions WHERE case_id = :c AND action = 'dispatch' ORDER BY at DESC, id DESC LIMIT 1"
)


def returned_departments(conn: Connection, case_id: int) -> set[str]:
    """The departments that have returned the case (回退): never offered again as its 派遣建议."""
    return set(
        conn.execute(
            text(
                "SELECT DISTINCT department_code FROM case_transitions WHERE case_id = :c AND action = 'return' "
                "AND department_code IS NOT NULL"
            ),
            {"c": case_id},
        ).scalars()
    )


def rework_issuer(conn: Connection, case_id: int) -> str | None:
    """Who signs a 返工's 交办单: the actor of the case's last 派遣 (None if it has none)."""
    return conn.execute(text(REWORK_ISSUER_SQL), {"c": case_id}).scalar()


# -- reading --------------------------------------------------------------------------------------


def light_of(services: CaseServices, row: Any, now: dt.datetime) -> str | None:
    if row["due_at"] is None or row["node_started_at"] is None or row["state"] in workflow.TERMINAL_STATES:
        return None
    if row["state"] == "suspended":
        return None
    return traffic_light(
        row["node_started_at"], row["due_at"], now, services.calendar, calendar_time=bool(row["node_calendar_time"])
    )


CASE_COLUMNS = """
c.id, c.case_no, c.scheme, c.class_code, c.matter_code, c.disposal_type, c.urgent, c.state, c.source,
c.description, c.address, c.reporter, c.external_ref, c.accuracy_m, c.unit_grid_code, c.district_code, c.street_code,
c.community_code, c.tier3_code, c.component_id, c.component_distance_m, c.duplicate_of, c.department_code,
d.name AS department_name, c.routing, c.previous_state, c.rework_count, c.escalation_level, c.pending_extension,
c.node, c.node_started_at, c.due_at, c.node_calendar_time, c.disposal_due_at, c.closed_at, c.version, c.created_at,
c.updated_at, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat
"""
_INTAKE_WRITE = _intake_write(with_photos=False)
_INTAKE_WRITE_WITH_PHOTOS = _intake_write(with_photos=True)


def node_label(services: CaseServices, node: str | None) -> str | None:
    """The Chinese name of a workflow node (核实, 派遣, 处置 …) from the node catalogue."""
    if node is None:
        return None
    if node == DISPOSAL_NODE[0]:
        return DISPOSAL_NODE[1]
    return services.events.node_names.get(node, node)


def case_json(services: CaseServices, row: Any, now: dt.datetime) -> dict[str, Any]:
    data: dict[str, Any] = {
        k: (v.astimezone(LOCAL_TZ).isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()
    }
    for k in ("lon", "lat"):  # 1e-7° is a centimetre: the float noise of a datum conversion is not information
        if isinstance(data.get(k), float):
            data[k] = round(data[k], 7)
    try:
        data["class_name"] = services.events.get(row["scheme"], row["class_code"]).name
    except (InvalidInput, AttributeError):  # a class removed from the catalogue since
        data["class_name"] = None
    data["state_label"] = workflow.STATES.get(row["state"])
    data["node_label"] = node_label(services, row["node"])
    data["source_label"] = SOURCES.get(row["source"] or "")
    data["light"] = light_of(services, row, now)
    data["calendar_warning"] = _calendar_warning(services, row)
    return data


def _calendar_warning(services: CaseServices, row: Any, node_years: tuple[int, ...] = ()) -> str | None:
    """A clear word when the running clock, or the working time of the case's judged nodes (``node_years``: the
    unknown years :func:`node_judgement` found, for a case's detail), crosses a year whose holidays the calendar
    does not know."""
    clock: list[int] = []
    if row["due_at"] is not None and row["state"] not in workflow.TERMINAL_STATES:
        ends = [t.astimezone(LOCAL_TZ).year for t in (row["node_started_at"], row["due_at"]) if t is not None]
        clock = [y for y in range(min(ends), max(ends) + 1) if not services.calendar.knows_year(y)]
    zh, en = (
        ("时限和环节用时", "the deadline and the nodes' working time")
        if clock and node_years
        else ("时限", "the deadline")
        if clock
        else ("环节用时", "the nodes' working time")
    )
    parts = unknown_years_warning([*clock, *node_years], zh, en)
    return None if parts is None else " ".join(parts)


def case_summary(
    services: CaseServices,
    row: Any,
    *,
    role: str | None = None,
    department: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """A case as the API shows it, from a row of CASE_COLUMNS (with the actions ``role``, acting for
    ``department``, may take)."""
    data = case_json(services, row, local_now(now))
    if role is not None:
        if role == workflow.DEPARTMENT_ROLE:
            check_acting_department(services, department)
        data["allowed_actions"] = actions_in_time(
            workflow.allowed_actions(snapshot_from_mapping(row), role, department), row, local_now(now)
        )
    return data


def actions_in_time(actions: list[str], row: Any, now: dt.datetime) -> list[str]:
    """``actions`` without 延期申请 once the running deadline has passed (:func:`refuse_late_extension_request`
    would refuse it): a button that can only answer 409 is not offered."""
    if "request_extension" in actions and extension_too_late(row["due_at"], now):
        return [a for a in actions if a != "request_extension"]
    return actions


def _case_row(conn: Connection, case_id: int) -> Any:
    row = (
        conn.execute(
            text(
                f"SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN departments d ON d.code = c.department_code "
                "WHERE c.id = :id"
            ),
            {"id": case_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no case with id {case_id}", message_zh=f"未找到 id 为 {case_id} 的案件")
    return row


def case_by_id(
    conn: Connection, services: CaseServices, case_id: int, *, role: str | None = None, department: str | None = None
) -> dict[str, Any]:
    """One case as :func:`case_summary` shows it — the answer of a report, so that an idempotent replay carries
    exactly the keys of the 201 that filed it."""
    return case_summary(services, _case_row(conn, case_id), role=role, department=department)


def get_case(
    conn: Connection,
    services: CaseServices,
    case_id: int,
    *,
    role: str | None = None,
    department: str | None = None,
    now: dt.datetime | None = None,
    full: bool = True,
    base: str = "",
) -> dict[str, Any]:
    """One case; ``full`` adds its timeline, photos and documents (intake answers with the case alone). The photo
    and document ``url`` fields (and a photo's ``thumb_url``, its thumbnail) are paths of the service, after
    ``base``: the path prefix a proxy serves it under."""
    now = local_now(now)
    row = _case_row(conn, case_id)
    data = case_summary(services, row, role=role, department=department, now=now)
    data["escalation"] = escalation_target(conn, row["tier3_code"], row["escalation_level"])
    if not full:
        return data
    timeline = (
        conn.execute(
            text(
                "SELECT action, from_state, to_state, actor, role, at, note, version, department_code, effects, "
                "details, attachments FROM case_transitions WHERE case_id = :id ORDER BY at, id"
            ),
            {"id": case_id},
        )
        .mappings()
        .all()
    )
    judged = node_judgement(services, row, timeline, now)
    data["dispatch_suggestion"] = dispatch_suggestion(services, row["routing"], timeline)
    # A finished case has no running clock, but its nodes' working time may have run through an unknown year.
    data["calendar_warning"] = _calendar_warning(services, row, judged.pop("unknown_years"))
    data.update(judged)
    data["timeline"] = [
        {
            **t,
            "at": t["at"].astimezone(LOCAL_TZ).isoformat(),
            "action_label": workflow.ACTIONS.get(t["action"])
            or workflow.LOG_ACTIONS.get(t["action"])
            or workflow.SYSTEM_ACTIONS.get(t["action"], t["action"]),
        }
        for t in timeline
    ]
    data["photos"] = [
        {
            **p,
            "at": p["at"].astimezone(LOCAL_TZ).isoformat() if p["at"] else None,
            "taken_at": p["taken_at"].astimezone(LOCAL_TZ).isoformat() if p["taken_at"] else None,
            "url": f"{base}/cases/{case_id}/photos/{p['sha256']}",
            "thumb_url": f"{base}/cases/{case_id}/photos/{p['sha256']}?size=thumb",
        }
        for p in conn.execute(
            text(
                "SELECT p.sha256, p.content_type, p.kind, p.width, p.height, p.transition_id, t.action, t.at, "
                "t.version, p.taken_at, p.gps_lon, p.gps_lat, "
                # metres on the ellipsoid from the case's location: evidence taken elsewhere stands out
                "round(ST_Distance(geography(ST_SetSRID(ST_MakePoint(p.gps_lon, p.gps_lat), 4326)), "
                "geography(ST_Transform(c.geom, 4326)))::numeric, 0)::int AS gps_distance_m "
                "FROM case_photos p JOIN cases c ON c.id = p.case_id "
                "LEFT JOIN case_transitions t ON t.id = p.transition_id WHERE p.case_id = :id ORDER BY p.id"
            ),
            {"id": case_id},
        ).mappings()
    ]
    data["documents"] = [
        {
            **d,
            "issued_at": d["issued_at"].astimezone(LOCAL_TZ).isoformat(),
            "due_at": d["due_at"].astimezone(LOCAL_TZ).isoformat() if d["due_at"] else None,
            "url": f"{base}/cases/{case_id}/documents/{d['id']}",
            "pdf_url": f"{base}/cases/{case_id}/documents/{d['id']}.pdf",
        }
        for d in conn.execute(
            text(
                "SELECT id, kind, number, department_code, due_at, issued_at, issued_by FROM case_documents "
                "WHERE case_id = :id ORDER BY id"
            ),
            {"id": case_id},
        ).mappings()
    ]
    data["merged_duplicates"] = merged_duplicates(conn, case_id)
    data["datum"] = geodesy.STORAGE_DATUM  # of lon/lat (GET /cases/{id}?datum= answers in another)
    return data


def merged_duplicates(conn: Connection, case_id: int) -> list[dict[str, Any]]:
    """The reports merged into a kept case (合并: each duplicate is voided with ``duplicate_of`` pointing here; a
    kept case that ends without the matter handled sends them back to intake, and they are no longer listed),
    in the order they were reported: id, number, source (and its label), reporter and when it was reported."""
    rows = conn.execute(
        text(
            "SELECT id, case_no, source, reporter, created_at FROM cases WHERE duplicate_of = :id "
            "ORDER BY created_at, id"
        ),
        {"id": case_id},
    ).mappings()
    return [
        {
            "id": r["id"],
            "case_no": r["case_no"],
            "source": r["source"],
            "source_label": SOURCES.get(r["source"] or ""),
            "reporter": r["reporter"],
            "reported_at": r["created_at"].astimezone(LOCAL_TZ).isoformat(),
        }
        for r in rows
    ]


def dispatch_suggestion(
    services: CaseServices, stored: dict[str, Any] | None, timeline: Sequence[RowMapping]
) -> dict[str, Any]:
    """派遣建议 as the 派遣 form offers it (:func:`routing.suggestion`): the routing's own department and
    explanation, or none with a zh ``hint`` when that department has returned the case (``timeline``: the log)."""
    if not stored or not stored.get("decision"):
        return {"department": None, "explanation": None, "withheld": None, "hint": None}
    decision = decision_from_json(stored["decision"])
    returned = {t["department_code"] for t in timeline if t["action"] == "return" and t["department_code"]}
    offered = routing.suggestion(decision, returned, services.departments)
    return {
        "department": offered.department,
        "explanation": offered.explanation,
        "withheld": offered.withheld,
        "hint": offered.hint,
    }


#: The transition columns the evaluation reads, as the timeline holds them.
_JUDGED_STEP_COLUMNS = ("action", "to_state", "actor", "role", "at", "department_code", "details", "effects")


def node_judgement(
    services: CaseServices, row: Any, timeline: Sequence[RowMapping], now: dt.datetime
) -> dict[str, Any]:
    """``nodes`` and ``closed_on_time`` of a case (a row of CASE_COLUMNS, its timeline oldest first), judged by
    the evaluation's own rule (:func:`gisgrid.evaluation.judge_case`: working time less suspensions against the
    node's limit or the approved extension; 按期结案 = closed with every 处置 on time) with the limits the
    evaluation uses. A node's ``opened_step``/``closed_step`` index the timeline. ``unknown_years``: the years the
    calendar does not know that a node's working time ran through."""
    limits = services.disposal_limits
    hours, unit, urgent = history.case_disposal_limit(limits, row["scheme"], row["class_code"], row["disposal_type"])
    case = {
        "id": row["id"],
        "source": row["source"],
        "created_at": row["created_at"],
        "disposal_limit_h": hours,
        "disposal_limit_unit": unit,
        "urgent": urgent,
    }
    steps = pd.DataFrame(
        {
            "id": np.arange(len(timeline)),
            "case_id": row["id"],
            **{col: pd.Series([t[col] for t in timeline], dtype=object) for col in _JUDGED_STEP_COLUMNS},
        }
    )
    judged = judge_case(
        case,
        steps,
        services.calendar,
        services.events.node_limits,
        # as of now, every step recorded included (steps count strictly before as_of; a step may be stamped now)
        as_of=max([now, *(t["at"] for t in timeline)]) + dt.timedelta(microseconds=1),
        urgent_node_limits=services.events.urgent_node_limits,
        limit_changes=services.events.limit_versions()[1:],
    )

    def when(ts: Any) -> str | None:
        return None if ts is None else ts.to_pydatetime().astimezone(LOCAL_TZ).isoformat()

    nodes = [
        {
            "node": n["node"],
            # 发核查 has no catalogue row: it is named by the action that closes it
            "label": workflow.ACTIONS["request_check"]
            if n["node"] == "issue_check"
            else node_label(services, n["node"]),
            "opened_at": when(n["opened_at"]),
            "closed_at": when(n["closed_at"]),
            "opened_step": n["open_id"],
            "closed_step": n["close_id"],
            **{k: n[k] for k in ("elapsed_h", "limit_h", "allowed_h", "calendar_time", "on_time")},
        }
        for n in judged["nodes"]
    ]
    return {"nodes": nodes, "closed_on_time": judged["closed_on_time"], "unknown_years": judged["unknown_years"]}


def snapshot_from_mapping(row: Any) -> workflow.CaseState:
    return workflow.CaseState(
        state=row["state"],
        previous_state=row["previous_state"],
        department=row["department_code"],
        rework_count=row["rework_count"],
        escalation_level=row["escalation_level"],
        pending_extension=row["pending_extension"],
        version=row["version"],
    )


#: A case number: the service's own (year + 6 digits) or an imported city's own (gisgrid.history_import), up to
#: cases.case_no's 20 characters; spaces inside it are the city's (ZZ 2025 0101), around it never (read stripped).
CASE_NO_MAX = 20
CASE_NO_PATTERN = re.compile(rf"\S(?:.{{0,{CASE_NO_MAX - 2}}}\S)?")


CASE_REF_HELP = (
    "The case: its id or its case number (案件编号, e.g. 2026008701). A value that is the number of one case and "
    "the id of another is refused as ambiguous: write id:8701 or no:2026008701 to say which."
)


def resolve_case_ref(conn: Connection, ref: str) -> int:
    """The id of the case ``ref`` names (the command line's CASE argument, :data:`CASE_REF_HELP`): ``id:N``, ``no:X``,
    or a bare value looked up both as an id and as a case number — one case found is it; the number of one case
    and the id of another is refused (ids and case numbers are both numbers and may collide), never guessed."""
    ref = ref.strip()
    kind, _, value = ref.partition(":") if ref[:3] in ("id:", "no:") else ("", "", ref)
    value = value.strip()
    by_id: int | None = None
    if kind in ("", "id") and value.isascii() and value.isdigit() and len(value) <= 18:  # a bigint
        by_id = conn.execute(text("SELECT id FROM cases WHERE id = :i"), {"i": int(value)}).scalar_one_or_none()
    elif kind == "id":
        raise InvalidInput(f"case: {ref!r}: an id is a whole number", detail=[{"field": "case"}])
    by_no = None
    if kind in ("", "no") and CASE_NO_PATTERN.fullmatch(value) and len(value) <= CASE_NO_MAX:
        by_no = conn.execute(text("SELECT id FROM cases WHERE case_no = :n"), {"n": value}).scalar_one_or_none()
    if by_id is not None and by_no is not None and by_id != by_no:
        other = conn.execute(text("SELECT case_no FROM cases WHERE id = :i"), {"i": by_id}).scalar_one()
        raise InvalidInput(
            f"case: {value!r} is ambiguous: case number {value} is the case with id {by_no}, and id {value} is "
            f"case {other}; write no:{value} or id:{value}",
            detail=[{"field": "case", "value": value}],
        )
    found = by_id if by_id is not None else by_no
    if found is None:
        what = {"id": "id", "no": "case number"}.get(kind, "id or case number")
        what_zh = {"id": "id", "no": "案件编号"}.get(kind, "id 或案件编号")
        raise NotFound(f"no case with {what} {value}", message_zh=f"未找到{what_zh}为 {value} 的案件")
    return int(found)


def in_datum(cases: list[dict[str, Any]], datum: str) -> list[dict[str, Any]]:
    """The cases with ``lon``/``lat`` in ``datum`` (gcj02 to draw on AMap/Tencent tiles, bd09 on Baidu's), for a
    client that draws on such tiles; storage lon/lat as they are for cgcs2000 and wgs84."""
    to = geodesy.check_datum(datum)
    if to in ("cgcs2000", "wgs84") or not cases:
        return cases
    lon, lat = geodesy.from_storage([c["lon"] for c in cases], [c["lat"] for c in cases], to)
    return [
        {**c, "lon": round(float(x), 7), "lat": round(float(y), 7)} for c, x, y in zip(cases, lon, lat, strict=True)
    ]


def merge_duplicate(
    engine: Engine,
    services: CaseServices,
    case_id: int,
    into: int,
    *,
    actor: str,
    role: str,
    version: int,
    now: dt.datetime | None = None,
) -> None:
    """An operator merges a reported duplicate into the kept case: it is voided (through the state machine, so
    roles and states are checked) and points at the kept case — one transaction. The kept case must be open, not
    itself merged, of the same class and within the class's duplicate radius (as the listed duplicates are)."""
    if case_id == into:
        raise InvalidInput(
            "into: a case cannot be a duplicate of itself", detail=[{"field": "into"}], reason=Reason.MERGE_INTO_ITSELF
        )
    now = local_now(now)
    with engine.connect() as conn, conn.begin():
        grid_store.read_grids_first(conn)  # before the cases' rows: a recode rewrites them (see there)
        rows = {  # both locked, in id order: two merges at once cannot point two cases at each other
            r.id: r
            for r in conn.execute(
                text(
                    "SELECT c.*, ST_Distance(c.geom::geography, (SELECT geom FROM cases WHERE id = :b)::geography) "
                    "AS distance_m FROM cases c WHERE c.id IN (:a, :b) ORDER BY c.id FOR UPDATE"
                ),
                {"a": case_id, "b": into},
            )
        }
        for wanted in (case_id, into):
            if wanted not in rows:
                raise NotFound(f"no case with id {wanted}", message_zh=f"未找到 id 为 {wanted} 的案件")
        row, kept = rows[case_id], rows[into]
        reason = f"与案件 {kept.case_no} 重复"  # operators know cases by number, not by id
        workflow.check(case_state(row), "void", role, expected_version=version)
        ev = event_class(services, row.scheme, row.class_code)
        refusal: tuple[Reason, str] | None = None
        merged_in = conn.execute(
            text("SELECT count(*) FROM cases WHERE duplicate_of = :id"), {"id": case_id}
        ).scalar_one()
        if merged_in:  # its duplicates would point at a voided case
            refusal = (
                Reason.MERGE_KEPT_HAS_DUPLICATES,
                f"case {row.case_no} is the kept case of {merged_in} merged duplicate(s): merge {kept.case_no} into it "
                "instead",
            )
        elif kept.state not in OPEN_STATES or kept.duplicate_of is not None:
            refusal = (
                Reason.MERGE_TARGET_NOT_OPEN,
                f"case {kept.case_no} is {workflow.STATES.get(kept.state, kept.state)}, not an open case to keep",
            )
        elif (kept.scheme, kept.class_code) != (row.scheme, row.class_code):
            refusal = (
                Reason.MERGE_OTHER_CLASS,
                f"case {kept.case_no} is of class {kept.class_code}, not {row.class_code} ({ev.name})",
            )
        elif row.distance_m is not None and row.distance_m > ev.duplicate_radius_m:
            refusal = (
                Reason.MERGE_TOO_FAR,
                f"case {kept.case_no} is {row.distance_m:.0f} m away, beyond the {ev.duplicate_radius_m:g} m of "
                f"{ev.name}",
            )
        if refusal:
            code, why = refusal
            raise workflow.TransitionNotAllowed(
                f"merge case {row.case_no} into {kept.case_no}: {why}",
                detail=[{"field": "into", "reason": why, "case_no": kept.case_no}],
                reason=code,
            )
        tr = workflow.apply(case_state(row), "void", role, payload={"reason": reason}, expected_version=version)
        conn.execute(
            text(
                "UPDATE cases SET state = :s, duplicate_of = :into, version = version + 1, due_at = NULL, node = NULL, "
                "closed_at = :now, updated_at = :now WHERE id = :id"
            ),
            {"s": tr.case.state, "into": into, "now": now, "id": case_id},
        )
        log_transition(
            conn,
            case_id,
            tr,
            actor=actor,
            role=role,
            at=now,
            note=reason,
            details={"duplicate_of": into, "duplicate_of_case_no": kept.case_no, "reason": reason},
        )
