"""Case workflow (案件办理流程): the closed-loop state machine, pure (no database, no I/O).

Main path (standards notes §4): 监督员上报 → 受理员发核实 → 监督员核实 → 值班长立案 → 派遣员派遣 → 专业部门处置
→ 受理员发核查 → 监督员核查 → 值班长结案. Side flows: 回退, 返工, 延期 (request/approve/deny), 挂账/挂账恢复,
作废, 不予立案, 督办, and escalation through the three management tiers (三级网格).

States (``STATES``; ids are English, labels Chinese):

=============  ==========  ============================================================================
state          label       meaning
=============  ==========  ============================================================================
reported       上报        reported by a 监督员/网格员 or the public; waiting for 核实
verified       核实        confirmed on site; waiting for 立案 by the 值班长
rejected       不予立案    terminal: not a case (outside the 立案条件)
voided         作废        terminal: cancelled by the 值班长 (duplicate, false report, …)
filed          立案        accepted as a case; waiting for 派遣
dispatched     派遣        a 交办单 is with ``department``; it handles, returns, or asks for an extension
returned       回退        the department returned a wrong assignment; back in the dispatcher's queue
handled        处置        the department reports it done (result + after-photo); waiting for 核查
checked        核查        核查 passed on site; waiting for 结案
closed         结案        terminal: closed by the 值班长
suspended      挂账        parked with a written reason; ``previous_state`` is where 挂账恢复 returns
=============  ==========  ============================================================================

Actions (``TRANSITIONS``; "=" means the state does not change, "←" means back to ``previous_state``):

==================  ============  ================================  ============================  ==========
action              label         roles                             from                          to
==================  ============  ================================  ============================  ==========
request_verify      发核实        intake, shift_lead                reported                      =
verify              核实          supervisor, grid_worker           reported                      verified
reject              不予立案      intake, shift_lead                reported, verified            rejected
void                作废          shift_lead                        reported, verified, filed     voided
file                立案          shift_lead                        verified                      filed
dispatch            派遣          dispatcher                        filed, returned               dispatched
return              回退          department                        dispatched                    returned
handle              处置          department                        dispatched                    handled
request_check       发核查        intake, shift_lead                handled                       =
check               核查(通过)    supervisor, grid_worker           handled                       checked
rework              返工          supervisor, grid_worker           handled                       dispatched
close               结案          shift_lead                        checked                       closed
request_extension   延期申请      department                        dispatched (none pending)     =
approve_extension   延期批准      dispatcher, shift_lead            dispatched (one pending)      =
deny_extension      延期驳回      dispatcher, shift_lead            dispatched (one pending)      =
suspend             挂账          dispatcher, shift_lead            filed, dispatched, returned   suspended
resume              挂账恢复      shift_lead                        suspended                     ←
supervise           督办          leader, shift_lead                dispatched (overdue/flagged)  =
escalate            提级          grid_worker, dispatcher,          reported, verified, filed,    =
                                  shift_lead                        dispatched, returned,
                                                                    suspended (level > 1)
==================  ============  ================================  ============================  ==========

Design notes (why):

* A merged duplicate (voided, ``duplicate_of`` set) is sent back to ``reported`` by ``reopen_duplicate`` when its
  kept case ends as ``voided`` or ``rejected`` (``REOPENS_DUPLICATES``): the report was never handled. ``reopen``
  is a log entry the service writes, not an action anyone takes (``LOG_ACTIONS``).
* ``returned`` is a state, not a flag: a returned case sits in the dispatcher's queue and may be dispatched
  again (to another department — recorded as ``record_misdispatch``, the 错误派遣 of §4 — or the same one),
  or suspended.
* ``rework`` goes straight back to ``dispatched`` with the SAME department and counts ``rework_count``
  (返工 = the same department dispatched again after a failed 核查).
* ``verify`` and ``file`` (核实/立案) take an optional ``class_code``: the class found on site or at filing,
  correcting the reported one. The service records it in the step (``class_change``: from/to, with the new
  routing's explanation), routes the case again as intake would for that class and times the next node by it; an
  unknown class is refused (``unknown_class``), nothing written.
* ``request_verify``/``request_check`` (受理员发核实/发核查) change no state and are not gates: they record that
  the task was issued, which the 受理员 evaluation (核实/核查按时派发率) needs.
* Leaving ``dispatched`` (handle, return, suspend) withdraws a pending extension request: it is moot.
* Time is the caller's concern: ``approve_extension`` takes the new ``due_at`` the caller computed; the
  effects ``pause_due_clock``/``resume_due_clock`` tell it when 挂账 stops and restarts the clock;
  ``supervise`` takes the caller's ``overdue`` fact (the service works it out from the deadline; a client
  sends only ``flagged``).
* Checks run in this order: unknown action/role (InvalidInput) → version (StaleVersion) → role
  (RoleNotAllowed) → state and guards (TransitionNotAllowed) → payload fields and kinds (``check_payload``:
  InvalidInput) → required fields (MissingField).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from gisgrid.errors import Conflict, InvalidInput, Reason

# --------------------------------------------------------------------------------------- vocabulary

STATES: dict[str, str] = {
    "reported": "上报",
    "verified": "核实",
    "rejected": "不予立案",
    "voided": "作废",
    "filed": "立案",
    "dispatched": "派遣",
    "returned": "回退",
    "handled": "处置",
    "checked": "核查",
    "closed": "结案",
    "suspended": "挂账",
}
TERMINAL_STATES: frozenset[str] = frozenset({"rejected", "voided", "closed"})
#: A state said as where the case stands and what it waits for, in a state refusal: 「处置」 is also the action's
#: name, and 「案件状态为「处置」,不能办理「处置」」 read as a contradiction (review40 U4).
STATE_PHRASES: dict[str, str] = {
    "reported": "已上报(待核实)",
    "verified": "已核实(待立案)",
    "rejected": "不予立案(已办结)",
    "voided": "已作废",
    "filed": "已立案(待派遣)",
    "dispatched": "已派遣(待处置)",
    "returned": "已回退(待重新派遣)",
    "handled": "已处置(待核查)",
    "checked": "已核查(待结案)",
    "closed": "已结案",
    "suspended": "挂账中",
}

ROLES: dict[str, str] = {
    "supervisor": "监督员",
    "grid_worker": "网格员",
    "intake": "受理员",
    "shift_lead": "值班长",
    "dispatcher": "派遣员",
    "department": "部门处置人员",
    "leader": "领导",
    # A machine client (a 12345 hotline platform, a video-analytics system) that reports and reads back what it
    # reported, and takes no workflow action: no rule below names it, so 不予立案/发核实 … are refused it (403) and
    # its cases' allowed_actions are empty (review52 F5). Its channels: case_intake.REPORT_SOURCES.
    "intake_system": "接入系统",
}
#: The roles of machine clients: they report, they act on no case (checked against the rules in the tests).
SYSTEM_ROLES: frozenset[str] = frozenset({"intake_system"})

#: Effects a transition asks the caller to carry out (documents, timers, counters), with Chinese labels.
EFFECTS: dict[str, str] = {
    "issue_verify_task": "发核实任务",
    "issue_check_task": "发核查任务",
    "issue_dispatch_order": "签发交办单",
    "issue_supervision_order": "签发督办单",
    "record_rework": "记返工",
    "record_misdispatch": "记错误派遣",
    "create_extension_request": "登记延期申请",
    "move_due_at": "延长处置时限",
    "close_extension_request": "办结延期申请",
    "withdraw_extension_request": "撤销未决延期申请",
    "pause_due_clock": "暂停计时",
    "resume_due_clock": "恢复计时",
    "notify_escalation": "通知上级网格",
}

#: Three management tiers (三级网格): the escalation level a case is coordinated at.
ESCALATION_LEVELS: dict[int, str] = {3: "三级网格(网格)", 2: "二级网格(社区)", 1: "一级网格(街道)"}

UNCHANGED = "="  # to_state marker: the action does not change the state
PREVIOUS = "←"  # to_state marker: back to the remembered previous_state

# Guards beyond the from-state; evaluated on the case (allowed_actions) or on the payload (apply only).
_NO_PENDING = "no_pending_extension"
_PENDING = "pending_extension"
_BELOW_TOP = "escalation_level_above_1"
_OVERDUE_OR_FLAGGED = "overdue_or_flagged"


@dataclass(frozen=True)
class ActionRule:
    """One row of the transition table."""

    action: str
    label: str
    roles: tuple[str, ...]
    from_states: tuple[str, ...]
    to_state: str  # a state id, UNCHANGED or PREVIOUS
    required: tuple[str, ...] = ()  # payload fields that must be non-empty
    effects: tuple[str, ...] = ()
    guard: str | None = None
    optional: tuple[str, ...] = ()  # payload fields it also takes (and records); ``note`` is taken by every action


#: Labels of payload fields, for messages and forms.
FIELD_LABELS: dict[str, str] = {
    "department": "处置部门",
    "reason": "原因/说明",
    "result": "处置结果",
    "after_photo": "处置后照片",
    "new_due_at": "新的处置时限",
    "disposal_type": "处置方式",
    "amount": "延长时间",
    "unit": "时间单位",
    "flagged": "重点督办",
    "class_code": "更正类别",
    "note": "备注",
}
#: What each payload field holds: text, a number, true/false, a date and time (ISO 8601), a time unit, or a list
#: of file names (filled by the service from the photos sent with the action).
FIELD_KINDS: dict[str, str] = {
    "department": "text",
    "reason": "text",
    "result": "text",
    "after_photo": "files",
    "new_due_at": "datetime",
    "disposal_type": "text",
    "amount": "number",
    "unit": "unit",
    "flagged": "bool",
    "class_code": "text",  # a class of the case's scheme: the service checks it, re-routes and re-times the case
    "note": "text",
}
TIME_UNITS: dict[str, str] = {"working_hours": "工作时", "working_days": "工作日", "calendar_hours": "小时(自然时)"}
#: The zh-CN words for a unit a person types into an extension (延期 5 工作日), taken as the unit they name.
TIME_UNIT_WORDS: dict[str, str] = {
    **{zh: key for key, zh in TIME_UNITS.items()},
    "工作小时": "working_hours",
    "小时": "calendar_hours",
    "自然时": "calendar_hours",
    "自然小时": "calendar_hours",
}


def time_unit(value: Any) -> Any:
    """``value`` as a unit key when it is one of :data:`TIME_UNIT_WORDS` (工作日 → working_days), else as given
    (a key, or a wrong value :func:`check_payload` refuses)."""
    return TIME_UNIT_WORDS.get(value.strip(), value) if isinstance(value, str) else value


_RULES: tuple[ActionRule, ...] = (
    ActionRule("request_verify", "发核实", ("intake", "shift_lead"), ("reported",), UNCHANGED,
               effects=("issue_verify_task",)),
    ActionRule("verify", "核实", ("supervisor", "grid_worker"), ("reported",), "verified", optional=("class_code",)),
    ActionRule("reject", "不予立案", ("intake", "shift_lead"), ("reported", "verified"), "rejected",
               required=("reason",)),
    ActionRule("void", "作废", ("shift_lead",), ("reported", "verified", "filed"), "voided", required=("reason",)),
    ActionRule("file", "立案", ("shift_lead",), ("verified",), "filed", optional=("class_code",)),
    ActionRule("dispatch", "派遣", ("dispatcher",), ("filed", "returned"), "dispatched", required=("department",),
               effects=("issue_dispatch_order",), optional=("disposal_type", "reason")),
    ActionRule("return", "回退", ("department",), ("dispatched",), "returned", required=("reason",)),
    ActionRule("handle", "处置", ("department",), ("dispatched",), "handled", required=("result", "after_photo")),
    ActionRule("request_check", "发核查", ("intake", "shift_lead"), ("handled",), UNCHANGED,
               effects=("issue_check_task",)),
    ActionRule("check", "核查", ("supervisor", "grid_worker"), ("handled",), "checked", optional=("result",)),
    ActionRule("rework", "返工", ("supervisor", "grid_worker"), ("handled",), "dispatched", required=("reason",),
               effects=("record_rework", "issue_dispatch_order"), optional=("department",)),
    ActionRule("close", "结案", ("shift_lead",), ("checked",), "closed"),
    ActionRule("request_extension", "延期申请", ("department",), ("dispatched",), UNCHANGED, required=("reason",),
               effects=("create_extension_request",), guard=_NO_PENDING, optional=("amount", "unit", "new_due_at")),
    ActionRule("approve_extension", "延期批准", ("dispatcher", "shift_lead"), ("dispatched",), UNCHANGED,
               required=("new_due_at",), effects=("close_extension_request", "move_due_at"), guard=_PENDING,
               optional=("amount", "unit", "reason")),
    ActionRule("deny_extension", "延期驳回", ("dispatcher", "shift_lead"), ("dispatched",), UNCHANGED,
               required=("reason",), effects=("close_extension_request",), guard=_PENDING),
    ActionRule("suspend", "挂账", ("dispatcher", "shift_lead"), ("filed", "dispatched", "returned"), "suspended",
               required=("reason",), effects=("pause_due_clock",)),
    ActionRule("resume", "挂账恢复", ("shift_lead",), ("suspended",), PREVIOUS, effects=("resume_due_clock",)),
    ActionRule("supervise", "督办", ("leader", "shift_lead"), ("dispatched",), UNCHANGED, required=("reason",),
               effects=("issue_supervision_order",), guard=_OVERDUE_OR_FLAGGED, optional=("flagged",)),
    ActionRule("escalate", "提级", ("grid_worker", "dispatcher", "shift_lead"),
               ("reported", "verified", "filed", "dispatched", "returned", "suspended"), UNCHANGED,
               required=("reason",), effects=("notify_escalation",), guard=_BELOW_TOP),
)  # fmt: skip

#: The transition table, keyed by action id (read-only; for documentation and the console).
TRANSITIONS: Mapping[str, ActionRule] = MappingProxyType({r.action: r for r in _RULES})
ACTIONS: dict[str, str] = {r.action: r.label for r in _RULES}
#: Log entries nobody takes from the table: the report itself, and a merged duplicate sent back to intake
#: (``reopen_duplicate``).
LOG_ACTIONS: dict[str, str] = {"report": "上报", "reopen": "重新受理"}
#: Log entries the system writes that change no state: a deadline counted again once the calendar learnt a year
#: (``gisgrid cases recompute-deadlines``, :mod:`gisgrid.deadlines`). Not a history import's action.
SYSTEM_ACTIONS: dict[str, str] = {"recompute_due": "重算时限"}
#: How a kept case can end without the reported matter being handled (作废, 不予立案): its merged duplicates,
#: reports of their own, go back to intake rather than point at a dead case.
REOPENS_DUPLICATES: frozenset[str] = frozenset({"voided", "rejected"})


# --------------------------------------------------------------------------------------- errors


class TransitionNotAllowed(Conflict):
    """The action does not fit the case's current state (or a state guard such as a pending extension)."""

    code = "transition_not_allowed"


class RoleNotAllowed(InvalidInput):
    """The role may not take this action. (An API may prefer to map this one to 403.)"""

    code = "role_not_allowed"


class MissingField(InvalidInput):
    """A payload field the action needs is missing or empty: an ``invalid_input`` like any other refused field
    (reason ``missing``, one item per field), its own class for callers that tell it apart."""


class StaleVersion(Conflict):
    """The case changed since the caller read it (optimistic locking → 409)."""

    code = "stale_version"


# --------------------------------------------------------------------------------------- snapshot


@dataclass(frozen=True)
class CaseState:
    """What the state machine needs to know about a case; ``apply`` returns a new one."""

    state: str = "reported"
    previous_state: str | None = None  # only while suspended: where 挂账恢复 returns
    department: str | None = None  # the department last dispatched to
    rework_count: int = 0
    escalation_level: int = 3  # 3 → 2 → 1 (三级网格 → 一级网格)
    pending_extension: bool = False
    version: int = 1  # the cases table starts at 1

    def __post_init__(self) -> None:
        # Snapshots come from storage; a corrupt one must not be moved further.
        problems = []
        if self.state not in STATES:
            problems.append(f"unknown state {self.state!r}")
        if self.state == "suspended" and self.previous_state not in _RESUMABLE:
            problems.append(f"a suspended case needs previous_state in {', '.join(_RESUMABLE)}")
        if self.state != "suspended" and self.previous_state is not None:
            problems.append("previous_state is only kept while suspended")
        if self.escalation_level not in ESCALATION_LEVELS:
            problems.append(f"escalation_level must be 1, 2 or 3, not {self.escalation_level!r}")
        if self.rework_count < 0:
            problems.append("rework_count must not be negative")
        if self.pending_extension and self.state != "dispatched":
            problems.append("pending_extension only exists while dispatched")
        if problems:
            raise InvalidInput("invalid case snapshot: " + "; ".join(problems), detail={"problems": problems})

    @property
    def label(self) -> str:
        return STATES[self.state]

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


_RESUMABLE: tuple[str, ...] = TRANSITIONS["suspend"].from_states


@dataclass(frozen=True)
class Transition:
    """The record of one applied action: store it in the case log and carry out ``effects``."""

    action: str
    from_state: str
    to_state: str
    role: str
    case: CaseState  # the new snapshot (version + 1)
    effects: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)  # department, reason, new_due_at, counters…

    @property
    def rework_increment(self) -> int:
        return 1 if "record_rework" in self.effects else 0


# --------------------------------------------------------------------------------------- helpers


def refusal_item(field_name: str | None, why: str, code: Reason, **facts: Any) -> dict[str, Any]:
    """One item of a refusal's detail, as every refusal lists them: the field (None when the request as a whole is
    refused: the case's state), why in English, its code, and the facts a client may act on (the case's state,
    the states the action is allowed from …)."""
    return {"field": field_name, "reason": why, "code": str(code), **facts}


def _state_text(state: str) -> str:
    return f"{state!r} ({STATES.get(state, '?')})"


def _state_refusal_zh(state: str, rule: ActionRule) -> str:
    """A state refusal in zh-CN, first in the message (an operator reading the API's answer, a 12345 system showing
    it): "案件当前为「已结案」,不能办理「延期申请」(可办理的状态:已派遣(待处置))"."""
    allowed = "、".join(STATE_PHRASES.get(s, s) for s in rule.from_states)
    return f"案件当前为「{STATE_PHRASES.get(state, state)}」,不能办理「{rule.label}」(可办理的状态:{allowed})"


def _role_text(role: str) -> str:
    return f"{role!r} ({ROLES.get(role, '?')})"


def _rule(action: str) -> ActionRule:
    rule = TRANSITIONS.get(action)
    if rule is None:
        raise InvalidInput(
            f"unknown action {action!r}; expected one of: {', '.join(TRANSITIONS)}",
            detail=[{"field": "action", "reason": "not an action of the workflow", "value": action[:40]}],
            reason=Reason.UNKNOWN_ACTION,
        )
    return rule


def _lookup(action: str, role: str) -> ActionRule:
    rule = _rule(action)
    _check_role(role)
    return rule


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(
            f"unknown role {role!r}; expected one of: {', '.join(ROLES)}",
            detail=[{"field": "X-Role", "reason": "not a role of the workflow", "value": role[:40]}],
            reason=Reason.UNKNOWN_ROLE,
        )


def _guard_failure(rule: ActionRule, case: CaseState) -> tuple[Reason, str] | None:
    """Why a case-level guard refuses the action (its reason code and words), or None."""
    if rule.guard == _NO_PENDING and case.pending_extension:
        return Reason.EXTENSION_PENDING, "an extension request is already pending; approve or deny it first"
    if rule.guard == _PENDING and not case.pending_extension:
        return Reason.NO_PENDING_EXTENSION, "there is no pending extension request"
    if rule.guard == _BELOW_TOP and case.escalation_level <= 1:
        return (
            Reason.TOP_ESCALATION_LEVEL,
            f"the case is already at escalation level 1 ({ESCALATION_LEVELS[1]}), the top tier",
        )
    return None


def _state_allows(rule: ActionRule, case: CaseState) -> bool:
    return case.state in rule.from_states and _guard_failure(rule, case) is None


def _filled(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple | set | dict):
        return bool(value)
    return True


# --------------------------------------------------------------------------------------- public


#: The role that acts for one department (部门处置人员): it takes a case's steps only while the case is with its
#: department — the department it acts for is part of its identity (the API's X-Department).
DEPARTMENT_ROLE = "department"
#: The department of a department-role actor who did not say it where it must (an HTTP read without X-Department):
#: it can take no step, so it is offered none. ``None`` is a trusted caller's "any" (the command line).
UNSTATED_DEPARTMENT = ""
#: Who acted when no one was named (an API request without X-Actor, ``cases report`` without --reporter): logged
#: so, and left out of the post evaluation — it is no person to rank (review44 U4).
UNNAMED_ACTOR = "anonymous"


def allowed_actions(case: CaseState, role: str, department: str | None = None) -> list[str]:
    """Actions ``role`` may take on ``case`` now, in table order (the console shows only these buttons); for the
    department role acting for ``department``, none on a case that is with another department.

    Payload-dependent conditions (``supervise`` needs an overdue/flagged case) are not known here.
    """
    _check_role(role)
    if role == DEPARTMENT_ROLE and department is not None and case.department != department:
        return []
    return [r.action for r in _RULES if role in r.roles and _state_allows(r, case)]


def check_department(case: CaseState, action: str, role: str, department: str | None) -> None:
    """The department role acting for ``department`` takes steps only on a case that is with that department
    (None: not stated — a caller trusted to act for any, the command line)."""
    if role != DEPARTMENT_ROLE or department is None or case.department == department:
        return
    raise RoleNotAllowed(
        f"{action}: the case is with department {case.department or '(none)'}, not {department} (X-Department); "
        "a department acts only on the cases dispatched to it",
        detail=[
            refusal_item(
                "X-Department",
                "not the case's department",
                Reason.OTHER_DEPARTMENT,
                action=action,
                department=department,
                case_department=case.department,
            )
        ],
        reason=Reason.OTHER_DEPARTMENT,
    )


def apply(
    case: CaseState,
    action: str,
    role: str,
    *,
    payload: Mapping[str, Any] | None = None,
    expected_version: int,
) -> Transition:
    """Apply ``action`` by ``role`` to ``case``; returns the Transition with the new snapshot (version + 1).

    Raises InvalidInput (unknown action/role), StaleVersion, RoleNotAllowed, TransitionNotAllowed, MissingField.
    """
    payload = dict(payload or {})
    rule = check(case, action, role, payload=payload, expected_version=expected_version)
    missing = [f for f in rule.required if not _filled(payload.get(f))]
    if missing:
        named = ", ".join(f"{f!r} ({FIELD_LABELS.get(f, f)})" for f in missing)
        raise MissingField(
            f"{action} needs {named} in the payload; required: {', '.join(rule.required)}",
            detail=[
                refusal_item(f, f"{action} needs it", Reason.MISSING, action=action, required=list(rule.required))
                for f in missing
            ],
            reason=Reason.MISSING,
        )
    return _transition(case, rule, role, payload)


def check(
    case: CaseState, action: str, role: str, *, payload: Mapping[str, Any] | None = None, expected_version: int
) -> ActionRule:
    """Whether ``role`` may take ``action`` on ``case`` now (version, role, state, guard), before the caller works
    out payload fields from the request (an extension's new deadline); its rule, or the error :func:`apply`
    raises."""
    payload = payload or {}
    rule = _lookup(action, role)
    if expected_version != case.version:
        raise StaleVersion(
            f"{action}: the case is at version {case.version}, the request expected {expected_version}; "
            "reload the case and retry",
            detail=[
                refusal_item(
                    "version",
                    f"the case is at version {case.version}",
                    Reason.STALE_VERSION,
                    action=action,
                    version=case.version,
                    expected_version=expected_version,
                )
            ],
        )
    if role not in rule.roles:
        allowed = ", ".join(f"{r} ({ROLES[r]})" for r in rule.roles)
        raise RoleNotAllowed(
            f"{action} is not allowed for role {_role_text(role)}; allowed roles: {allowed}",
            detail=[
                refusal_item(
                    "X-Role",
                    f"not allowed to {action}",
                    Reason.ROLE_NOT_ALLOWED,
                    action=action,
                    role=role,
                    allowed_roles=list(rule.roles),
                )
            ],
        )
    if case.state not in rule.from_states:
        raise TransitionNotAllowed(
            f"{_state_refusal_zh(case.state, rule)} / "
            f"{action} is not allowed in state {_state_text(case.state)}; allowed from: {', '.join(rule.from_states)}",
            detail=[
                refusal_item(
                    None,
                    f"not allowed in state {case.state}",
                    Reason.TRANSITION_NOT_ALLOWED,
                    action=action,
                    state=case.state,
                    allowed_from=list(rule.from_states),
                )
            ],
        )
    failure = _guard_failure(rule, case)
    if failure is None and rule.guard == _OVERDUE_OR_FLAGGED and not (payload.get("overdue") or payload.get("flagged")):
        failure = Reason.NOT_OVERDUE_OR_FLAGGED, "督办 needs a case past its deadline, or flagged=true (重点督办)"
    if failure is not None:
        code, why = failure
        raise TransitionNotAllowed(
            f"{action} is not allowed in state {_state_text(case.state)}: {why}",
            detail=[refusal_item(None, why, code, action=action, state=case.state)],
            reason=code,
        )
    return rule


def check_payload(action: str, payload: Mapping[str, Any]) -> None:
    """Refuse a field ``action`` does not take (a misspelt ``departmnet`` must not dispatch to the suggestion) or a
    value of the wrong kind (a reason that is an object); InvalidInput naming the field. Call it with the caller's
    payload, before the service adds what it works out itself (``overdue``, ``after_photo``)."""
    rule = _rule(action)
    takes = (*rule.required, *rule.optional, "note")
    for name, value in payload.items():
        if name not in takes:
            raise InvalidInput(
                f"payload.{name}: {action} takes no {name!r}; it takes {', '.join(takes)}",
                detail=[{"field": f"payload.{name}", "reason": "unknown field"}],
                reason=Reason.EXTRA_FORBIDDEN,
            )
        problem = None if value is None else _kind_problem(FIELD_KINDS.get(name, "text"), value)
        if problem:
            code, words = problem
            raise InvalidInput(f"{name}: {words}", detail=[{"field": name, "reason": words}], reason=code)


def _kind_problem(kind: str, value: Any) -> tuple[Reason, str] | None:
    if kind in ("text", "datetime") and not isinstance(value, str):
        return Reason.STRING_TYPE, f"must be text, not {type(value).__name__}"
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float) or value != value):
        return Reason.FLOAT_TYPE, f"must be a number, not {value!r}"
    if kind == "bool" and not isinstance(value, bool):
        return Reason.BOOL_TYPE, f"must be true or false, not {value!r}"
    if kind == "unit" and time_unit(value) not in TIME_UNITS:
        return Reason.LITERAL_ERROR, (
            f"must be one of {', '.join(TIME_UNITS)} (or {', '.join(TIME_UNIT_WORDS)}), not {value!r}"
        )
    return None  # files: filled by the service from the photos sent with the action


def _transition(case: CaseState, rule: ActionRule, role: str, payload: dict[str, Any]) -> Transition:  # noqa: C901
    effects = list(rule.effects)
    details: dict[str, Any] = {f: payload[f] for f in rule.required}
    details.update({f: payload[f] for f in rule.optional if _filled(payload.get(f))})
    if "note" in payload:
        details["note"] = payload["note"]
    changes: dict[str, Any] = {}

    if rule.to_state == UNCHANGED:
        to_state = case.state
    elif rule.to_state == PREVIOUS:
        to_state = case.previous_state or "filed"  # __post_init__ guarantees it is set
        changes["previous_state"] = None
    else:
        to_state = rule.to_state
    if to_state != case.state:
        changes["state"] = to_state

    match rule.action:
        case "dispatch":
            department = str(payload["department"]).strip()
            if case.state == "returned" and case.department and department != case.department:
                effects.append("record_misdispatch")  # 错误派遣: a second department got the case
                details["returned_by"] = case.department
            changes["department"] = department
            details["department"] = department
        case "rework":
            asked = payload.get("department")
            if _filled(asked) and str(asked).strip() != case.department:
                raise InvalidInput(
                    f"rework (返工) goes back to the same department {case.department!r}, not {asked!r}",
                    detail=[
                        refusal_item(
                            "department",
                            f"the case goes back to {case.department}",
                            Reason.REWORK_OTHER_DEPARTMENT,
                            action="rework",
                            department=case.department,
                        )
                    ],
                    reason=Reason.REWORK_OTHER_DEPARTMENT,
                )
            changes["rework_count"] = case.rework_count + 1
            details.update(department=case.department, rework_count=case.rework_count + 1)
        case "suspend":
            changes["previous_state"] = case.state
        case "request_extension":
            changes["pending_extension"] = True
        case "approve_extension" | "deny_extension":
            changes["pending_extension"] = False
            if payload.get("previous_due_at"):  # worked out by the caller: the deadline the extension moved
                details["previous_due_at"] = payload["previous_due_at"]
        case "escalate":
            changes["escalation_level"] = case.escalation_level - 1
            details.update(from_level=case.escalation_level, to_level=case.escalation_level - 1)
        case "supervise":
            details.update(overdue=bool(payload.get("overdue")), flagged=bool(payload.get("flagged")))

    if case.pending_extension and case.state == "dispatched" and to_state != "dispatched":
        changes["pending_extension"] = False  # leaving 派遣 makes the request moot
        effects.append("withdraw_extension_request")

    new_case = replace(case, **changes, version=case.version + 1)
    return Transition(
        action=rule.action,
        from_state=case.state,
        to_state=to_state,
        role=role,
        case=new_case,
        effects=tuple(effects),
        details=MappingProxyType(details),
    )


def reopen_duplicate(case: CaseState, kept_state: str) -> Transition:
    """A merged duplicate (voided) back to 上报 because the case it was merged into ended as ``kept_state`` (one of
    ``REOPENS_DUPLICATES``): the caller clears ``duplicate_of`` and restarts its clocks as a new report's."""
    if kept_state not in REOPENS_DUPLICATES:
        raise InvalidInput(
            f"reopen: a kept case that ends {_state_text(kept_state)} leaves its duplicates merged",
            detail={"action": "reopen", "kept_state": kept_state},
        )
    if case.state != "voided":
        raise TransitionNotAllowed(
            f"reopen is not allowed in state {_state_text(case.state)}: only a merged (voided) duplicate is reopened",
            detail=[
                refusal_item(
                    None,
                    f"not allowed in state {case.state}",
                    Reason.TRANSITION_NOT_ALLOWED,
                    action="reopen",
                    state=case.state,
                    allowed_from=["voided"],
                )
            ],
        )
    return Transition(
        action="reopen",
        from_state=case.state,
        to_state="reported",
        role="system",
        case=replace(case, state="reported", previous_state=None, pending_extension=False, version=case.version + 1),
        details=MappingProxyType({"kept_state": kept_state}),
    )
