"""Cases (案件) in PostGIS: what intake, the workflow and the readers share — the catalogues and rules loaded once
(:class:`CaseServices`), the channels, the text limits, the stored routing decision, the case log — and reading a
case.

Pure rules live elsewhere and are only called here: the state machine (``gisgrid.workflow``), routing
(``gisgrid.routing``), the event catalogue and time limits (``gisgrid.events``), working time
(``gisgrid.calendar``), the node clock and its deadlines (``gisgrid.node_clock``), photos (``gisgrid.photos``).
Filing a report is :mod:`gisgrid.case_intake`; the workflow's actions and the merge of a duplicate are
:mod:`gisgrid.case_actions`; the case list, its filters and paging are :mod:`gisgrid.case_queries`; the printed
orders an action issues are laid out by :mod:`gisgrid.case_documents`.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, RowMapping, text

from gisgrid import cityfiles, geodesy, history, routing, workflow
from gisgrid.calendar import WorkingCalendar, hours_setting, load_city_calendar, traffic_light, unknown_years_warning
from gisgrid.catalogue import Catalogue
from gisgrid.components_store import catalogue_for
from gisgrid.errors import InvalidInput, NotFound, Reason
from gisgrid.evaluation import EvaluationRules, judge_case, load_evaluation_rules
from gisgrid.events import DISPOSAL_NODE, EventCatalogue, EventClass, load_event_catalogue
from gisgrid.node_clock import (
    LOCAL_TZ,
    extension_too_late,
)
from gisgrid.photos import (
    PhotoStore,
)
from gisgrid.settings import Settings
from gisgrid.texts import refuse_bad_text

SOURCES: dict[str, str] = {
    "patrol": "监督员/网格员巡查",
    "hotline": "12345热线",
    "public_app": "公众APP",
    "sensor": "视频/感知设备",
    "leader": "领导交办",
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
    def hours_in_force(self) -> str:
        """The working hours the calendar counts under, normalised (``gisgrid.calendar.hours_setting``): what every
        write of a deadline stores beside it (``cases.hours_counted``, :mod:`gisgrid.deadline_hours`). Made once."""
        return hours_setting(self.calendar.hours)

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
        removed_departments=components.department_removed_by,
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
            f"class_code: unknown {scheme} event class {code!r}{services.events.no_event_class_note(scheme, code)}",
            detail=[{"field": "class_code", "reason": f"not in the {scheme} event catalogue"}],
            reason=Reason.UNKNOWN_CLASS,
        )
    return found


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
