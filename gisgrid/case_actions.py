"""Workflow actions on a case (核实, 立案, 派遣, 处置 …, :func:`act`) and the merge of a reported duplicate
(:func:`merge_duplicate`): each one transaction on the case's locked row — checked by the state machine
(``gisgrid.workflow``), its deadlines set (``gisgrid.node_clock``), its step logged, its orders issued (laid out by
:mod:`gisgrid.case_documents`). A refused action writes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, text

from gisgrid import geodesy, routing, workflow
from gisgrid.case_intake import COMPONENT_LINK_M, NEAREST_COMPONENT, route_report
from gisgrid.cases import (
    OPEN_STATES,
    CaseServices,
    case_state,
    check_acting_department,
    check_idempotency_key,
    check_texts,
    decision_from_json,
    decision_json,
    escalation_target,
    event_class,
    local_now,
    log_transition,
)
from gisgrid.documents import document_number
from gisgrid.errors import Conflict, InvalidInput, NotFound, Reason
from gisgrid.events import EventClass, matter_code_of
from gisgrid.grids import store as grid_store
from gisgrid.node_clock import (
    LOCAL_TZ,
    deadlines_after,
    disposal_limit,
    extended_due,
    extension_due,
    extension_terms,
    node_clock,
    one_length,
    refuse_late_extension_request,
)
from gisgrid.photos import (
    PhotoInfo,
    check_pixel_budget,
    inspect_photo,
    one_request,
    refused_photo,
)


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
        row = _locked_case(conn, case_id, req.action)
        if fingerprint is not None and _replayed_step(conn, case_id, req, fingerprint):
            return Acted(case_id, replayed=True)
        step = _checked_step(conn, services, case_id, row, req, now)
        req = step.req
        tr = workflow.apply(case_state(row), req.action, req.role, payload=step.payload, expected_version=req.version)
        _record_step(step, tr, fingerprint)
    return Acted(case_id)


@dataclass
class _Step:
    """An action being taken on a case's locked ``row``, checked and worked out before anything is written: the
    request (its photos made one request's, ``infos`` their checks), the payload as the state machine gets it, the
    reported event class and the one the case ends with (a class corrected by 核实/立案), the disposal type, the
    stored routing and its decision (None for a case stored without one), and whether an approved 延期 is the one
    asked for."""

    conn: Connection
    services: CaseServices
    case_id: int
    row: Any
    req: ActionRequest
    now: dt.datetime
    payload: dict[str, Any]
    reported_ev: EventClass
    ev: EventClass
    disposal_type: str
    routing_json: dict[str, Any]
    decided: routing.RoutingDecision | None
    infos: list[PhotoInfo] = field(default_factory=list)
    as_requested: bool = False


def _locked_case(conn: Connection, case_id: int, action: str) -> Any:
    """The case's row, locked for the action — after the grids' lock (``grid_store.read_grids_first``, held by an
    action that re-opens merged duplicates)."""
    rule = workflow.TRANSITIONS.get(action)
    reopens = rule is not None and rule.to_state in workflow.REOPENS_DUPLICATES
    grid_store.read_grids_first(conn, hold=reopens)  # before the case's row: see there
    row = conn.execute(text("SELECT * FROM cases WHERE id = :id FOR UPDATE"), {"id": case_id}).one_or_none()
    if row is None:
        raise NotFound(f"no case with id {case_id}", message_zh=f"未找到 id 为 {case_id} 的案件")
    return row


def _checked_step(
    conn: Connection, services: CaseServices, case_id: int, row: Any, req: ActionRequest, now: dt.datetime
) -> _Step:
    """Every check of the action, in the order its refusals are chosen: the payload's time unit and the case's
    class, the state machine (version, role, state, guard; the department's own cases), the payload's fields and
    texts, the department a 派遣 names, a corrected class, the action's own checks (:data:`_BEFORE_PHOTOS`), the
    photos, then the action's checks of them (:data:`_AFTER_PHOTOS`)."""
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
    _check_request(services, row, req, payload, now)
    corrected_ev, disposal_type = _class_and_type(services, row, req.action, payload, ev)
    step = _Step(
        conn, services, case_id, row, req, now, payload, ev, corrected_ev, disposal_type, routing_json, decided
    )
    if req.action in _BEFORE_PHOTOS:
        _BEFORE_PHOTOS[req.action](step)
    step.req, step.infos = _checked_action_photos(req)
    if req.action in _AFTER_PHOTOS:
        _AFTER_PHOTOS[req.action](step)
    return step


def _check_request(
    services: CaseServices, row: Any, req: ActionRequest, payload: dict[str, Any], now: dt.datetime
) -> None:
    """The state machine's checks of the request (version, role, state, guard; a department acts on its own
    cases; a 延期申请 in time), then its payload's fields and texts and the department a 派遣 names."""
    case = case_state(row)
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


def _class_and_type(
    services: CaseServices, row: Any, action: str, payload: dict[str, Any], ev: EventClass
) -> tuple[EventClass, str]:
    """The event class the case ends the step with (``ev``, the reported one, unless 核实/立案 corrects it: the
    ``class_code`` in ``payload`` then stripped) and its disposal type."""
    reported_ev = ev
    corrected = payload.get("class_code")
    if isinstance(corrected, str) and corrected.strip() and action in RECLASSIFYING_ACTIONS:
        # 核实/立案 correcting the reported class (unknown: refused here, before anything is written)
        payload["class_code"] = corrected = corrected.strip()
        ev = event_class(services, row.scheme, corrected)
    disposal_type = row.disposal_type
    if ev is not reported_ev:  # the new class's default type and limits: the old one's may not exist for it
        disposal_type = disposal_limit(services, ev, None).disposal_type
    if action == "dispatch" and payload.get("disposal_type"):  # the dispatcher decides 停工/处罚/拆除, 紧急
        disposal_type = disposal_limit(services, ev, payload["disposal_type"]).disposal_type
    return ev, disposal_type


def _checked_action_photos(req: ActionRequest) -> tuple[ActionRequest, list[PhotoInfo]]:
    """The request with its photos made one request's (at most 10; the same file twice is one photo), and their
    checks: names, the pixel budget by the headers, then each photo decoded."""
    req = replace(req, photos=one_request(req.photos))
    for i, (name, _) in enumerate(req.photos):
        check_texts({f"photos[{i}]": name})
    check_pixel_budget(req.photos)
    infos = []
    for i, (name, data) in enumerate(req.photos):
        try:
            infos.append(inspect_photo(data, filename=name))
        except InvalidInput as exc:
            raise refused_photo(i, exc) from None
    return req, infos


def _asked_extension(step: _Step) -> None:
    """延期申请: what is asked is refused as its approval would be; a new deadline asked is stored as a time."""
    payload = step.payload
    one_length(payload, "an extension request")
    if payload.get("new_due_at"):  # a time, stored as one
        asked_due, _ = extended_due(step.services, step.row, {"new_due_at": payload["new_due_at"]})
        payload["new_due_at"] = asked_due.isoformat()
    if payload.get("amount") is not None:
        extended_due(step.services, step.row, {"amount": payload["amount"], "unit": payload.get("unit")})


def _after_photo(step: _Step) -> None:
    """处置: the after-photo is a photo sent with the action, not a name in the payload — neither the report's photo
    nor an earlier after-photo of the case."""
    req, case_id = step.req, step.case_id
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
        step.conn.execute(
            text("SELECT sha256, kind FROM case_photos WHERE case_id = :c AND kind IN ('before', 'after')"),
            {"c": case_id},
        ).all()
    )
    for i, info in enumerate(step.infos):
        if earlier.get(info.sha256) == "before":
            raise InvalidInput(
                f"photos[{i}]: the same picture as the report's photo; the after-photo shows the place after handling",
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
    step.payload["after_photo"] = [n for n, _ in req.photos]


def _approved_extension(step: _Step) -> None:
    """批准延期: the new deadline given, or the one asked for (approved as asked) when none is given."""
    requested = None
    if step.payload.get("amount") is None and not step.payload.get("new_due_at"):  # approved as asked
        requested = step.conn.execute(
            text(
                "SELECT details FROM case_transitions WHERE case_id = :c AND action = 'request_extension' "
                "ORDER BY id DESC LIMIT 1"
            ),
            {"c": step.case_id},
        ).scalar()
    step.payload, step.as_requested = extension_due(step.services, step.row, step.payload, requested)


#: An action's own checks and payload, before the photos are checked and after (the order its refusals come in).
_BEFORE_PHOTOS: dict[str, Callable[[_Step], None]] = {"request_extension": _asked_extension}
_AFTER_PHOTOS: dict[str, Callable[[_Step], None]] = {"handle": _after_photo, "approve_extension": _approved_extension}


def _record_step(step: _Step, tr: workflow.Transition, fingerprint: str | None) -> None:
    """Write the step ``tr``: the case's row (at the version acted on, else 409), its log entry, its photos, the
    orders it issues, the merged duplicates it re-opens."""
    conn, req, row, new, now, case_id = step.conn, step.req, step.row, tr.case, step.now, step.case_id
    updates, basis = _case_updates(step, tr)
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
        | _order_terms(tr, step.disposal_type)
        | basis
        | ({"as_requested": True} if step.as_requested else {})
        | extension_terms(req.action, step.payload),
        attachments=[n for n, _ in req.photos],
        idempotency=(req.idempotency_key, fingerprint),
    )
    kind = "after" if req.action == "handle" else "evidence"
    for info, (_, data) in zip(step.infos, req.photos, strict=True):
        _save_photo(conn, step.services, case_id, info, data, kind=kind, transition_id=logged)
    for effect, kind in (("issue_dispatch_order", "dispatch"), ("issue_supervision_order", "supervision")):
        if effect in tr.effects:
            _issue_document(
                conn, case_id, row.case_no, kind, new.department, updates.get("due_at"), req, step.payload, now, logged
            )
    if new.state in workflow.REOPENS_DUPLICATES:
        _reopen_duplicates(conn, step.services, row, new.state, now, actor=req.actor, role=req.role)


def _case_updates(step: _Step, tr: workflow.Transition) -> tuple[dict[str, Any], dict[str, Any]]:
    """The columns the step ``tr`` sets on the case (state, department, class, disposal type, deadlines, routing)
    and its log entry's basis: a corrected class's ``class_change``, or a 派遣's own 派遣依据."""
    services, row, new = step.services, step.row, tr.case
    updates: dict[str, Any] = {
        "state": new.state,
        "previous_state": new.previous_state,
        "department_code": new.department,
        "rework_count": new.rework_count,
        "escalation_level": new.escalation_level,
        "pending_extension": new.pending_extension,
    }
    if step.disposal_type != row.disposal_type or step.ev is not step.reported_ev:
        limit = disposal_limit(services, step.ev, step.disposal_type)
        updates.update(disposal_type=limit.disposal_type, urgent=limit.urgent)
    updates.update(deadlines_after(services, step.ev, row, tr, step.now, step.disposal_type))
    if "due_at" in updates:  # the hours it was counted under, beside it (gisgrid.deadline_hours)
        updates["hours_counted"] = services.hours_in_force
    basis: dict[str, Any] = {}
    if step.ev is not step.reported_ev:
        basis = _reclassify(step.conn, services, row, step.reported_ev, step.ev, step.routing_json, updates)
    if step.req.action == "dispatch" and step.decided is not None:
        # The routing's own decision stays the suggestion; a dispatcher's choice against it (改派, or 人工派遣 of
        # a case the routing left to a person) is recorded beside it in a flat list, and the step names which
        # one it was: its 交办单 prints that dispatch's own 派遣依据.
        assert new.department is not None  # workflow.apply refuses a dispatch without one
        dispatched, basis = routing.dispatch_choice(
            step.decided,
            new.department,
            step.req.actor,
            step.now.astimezone(LOCAL_TZ),
            step.payload.get("reason") or step.req.note,
            departments=services.departments,
        )
        step.routing_json["decision"] = decision_json(dispatched)
        updates["routing"] = json.dumps(step.routing_json, ensure_ascii=False)
    return updates, basis


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
                    f"SELECT k.* FROM p CROSS JOIN LATERAL ({NEAREST_COMPONENT}) k"
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
                "version = version + 1, node = 'verify', node_started_at = :now, due_at = :due, hours_counted = :h, "
                "node_calendar_time = :ncal, closed_at = NULL, updated_at = :now WHERE id = :id"
            ),
            {
                "s": tr.to_state,
                "now": now,
                "due": clock["due_at"],
                "h": services.hours_in_force,
                "ncal": clock["node_calendar_time"],
                "id": r.id,
            },
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
