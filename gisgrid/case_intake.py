"""Case intake (上报): a report checked, located, routed and numbered, its possible duplicates listed, filed in one
statement — idempotent under its key, refused on a sending system's number a case holds already.

Every intake is one transaction: a refused report writes nothing (its photo files are removed again). The shared
parts (catalogues, text limits, the stored routing decision, the case's columns) are :mod:`gisgrid.cases`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import Connection, Engine, text

from gisgrid import geodesy, routing, workflow
from gisgrid.cases import (
    CASE_COLUMNS,
    OPEN_STATES,
    SOURCES,
    TEXT_LIMITS,
    CaseServices,
    check_idempotency_key,
    check_texts,
    decision_json,
    event_class,
    local_now,
)
from gisgrid.constants import STORAGE_SRID
from gisgrid.errors import Conflict, InvalidInput, Reason
from gisgrid.events import EventClass, matter_code_of
from gisgrid.grids import store as grid_store
from gisgrid.node_clock import (
    LOCAL_TZ,
    disposal_limit,
    node_clock,
)
from gisgrid.photos import (
    PhotoInfo,
    StoredPhoto,
    check_pixel_budget,
    inspect_photo,
    one_request,
    refused_photo,
)
from gisgrid.storage.prepared import AsyncFetcher, Prepared

log = logging.getLogger(__name__)
#: The nearest component of the implied class within this distance is linked to the case.
COMPONENT_LINK_M = 30.0


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


NEAREST_COMPONENT = nearest_component_sql("CAST(:cc AS text)", ":dx", ":dy")
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
        (SELECT to_jsonb(k) FROM ({NEAREST_COMPONENT}) k) AS component,
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
    "external_ref, accuracy_m, routing, node, node_started_at, due_at, hours_counted, node_calendar_time, created_at, "
    "updated_at, geom"
)
_CASE_INSERT_VALUES = (
    "next_case_no(:year), :scheme, :cls, :matter, :dtype, :urgent, 'reported', :source, :descr, :addr, :reporter, "
    ":rrole, :ilon, :ilat, :idatum, :ug, :d, :t1, :t2, :t3, :comp, :compd, :key, :fp, :xref, :acc, "
    "CAST(:routing AS jsonb), "
    f"'verify', :now, :due, :hours, :ncal, :now, :now, ST_SetSRID(ST_MakePoint(:x, :y), {STORAGE_SRID})"
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


_INTAKE_WRITE = _intake_write(with_photos=False)
_INTAKE_WRITE_WITH_PHOTOS = _intake_write(with_photos=True)


@dataclass(frozen=True)
class Filed:
    """What an intake did: the case, whether this call made it, and the stored row when it did."""

    case_id: int
    created: bool
    row: Any = None  # a mapping of CASE_COLUMNS for a new case


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
        "hours": services.hours_in_force,  # what ``due`` was counted under (gisgrid.deadline_hours)
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
#: the query runs — see ``NEAREST_COMPONENT``), and that plan made of index scans even when it is made while
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
