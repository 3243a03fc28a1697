"""The case state machine (gisgrid.workflow): pure, no database."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from typing import Any

import pytest

from gisgrid import workflow
from gisgrid.errors import Conflict, InvalidInput, Reason
from gisgrid.workflow import (
    PREVIOUS,
    ROLES,
    STATE_PHRASES,
    STATES,
    TRANSITIONS,
    UNCHANGED,
    CaseState,
    MissingField,
    RoleNotAllowed,
    StaleVersion,
    Transition,
    TransitionNotAllowed,
    allowed_actions,
    apply,
    check_payload,
)

DEPT = "990000000000000012"
OTHER_DEPT = "990000000000000002"

FULL_PAYLOAD: dict[str, Any] = {
    "department": DEPT,
    "reason": "书面说明",
    "result": "已更换灯泡",
    "after_photo": "after.jpg",
    "new_due_at": "2026-03-10T18:00:00+08:00",
}


def case_in(state: str, *, action: str | None = None, **changes: Any) -> CaseState:
    """A valid snapshot in ``state`` that satisfies ``action``'s case guards."""
    fields: dict[str, Any] = {"state": state, "version": 7}
    if state in ("dispatched", "returned", "handled", "checked", "closed"):
        fields["department"] = DEPT
    if state == "suspended":
        fields["previous_state"] = "dispatched"
        fields["department"] = DEPT
    if action in ("approve_extension", "deny_extension"):
        fields["pending_extension"] = True
    fields.update(changes)
    return CaseState(**fields)


def payload_for(action: str) -> dict[str, Any]:
    payload = {f: FULL_PAYLOAD[f] for f in TRANSITIONS[action].required}
    if action == "supervise":
        payload["overdue"] = True
    return payload


def do(case: CaseState, action: str, role: str | None = None, **payload: Any) -> Transition:
    role = role or SPEC[action].roles[0]
    return apply(case, action, role, payload={**payload_for(action), **payload}, expected_version=case.version)


# --------------------------------------------------------------------------------------- the specification

# The workflow as the module docstring (README: "table in its docstring") and the standards notes §4 state it,
# written out by hand: the exhaustive tests below iterate over THIS, not over TRANSITIONS, so a role or a from-state
# added to (or dropped from) a row of the code fails here instead of being tested as intended.
SPEC_STATES = (
    "reported", "verified", "rejected", "voided", "filed", "dispatched", "returned", "handled", "checked", "closed",
    "suspended",
)  # fmt: skip
SPEC_ROLES = (
    "supervisor",
    "grid_worker",
    "intake",
    "shift_lead",
    "dispatcher",
    "department",
    "leader",
    "intake_system",
)


@dataclass(frozen=True)
class Row:
    label: str
    roles: tuple[str, ...]
    from_states: tuple[str, ...]
    to_state: str  # a state, "=" (unchanged) or "←" (back to previous_state)
    guard: str | None = None


SPEC: dict[str, Row] = {
    "request_verify": Row("发核实", ("intake", "shift_lead"), ("reported",), "="),
    "verify": Row("核实", ("supervisor", "grid_worker"), ("reported",), "verified"),
    "reject": Row("不予立案", ("intake", "shift_lead"), ("reported", "verified"), "rejected"),
    "void": Row("作废", ("shift_lead",), ("reported", "verified", "filed"), "voided"),
    "file": Row("立案", ("shift_lead",), ("verified",), "filed"),
    "dispatch": Row("派遣", ("dispatcher",), ("filed", "returned"), "dispatched"),
    "return": Row("回退", ("department",), ("dispatched",), "returned"),
    "handle": Row("处置", ("department",), ("dispatched",), "handled"),
    "request_check": Row("发核查", ("intake", "shift_lead"), ("handled",), "="),
    "check": Row("核查", ("supervisor", "grid_worker"), ("handled",), "checked"),
    "rework": Row("返工", ("supervisor", "grid_worker"), ("handled",), "dispatched"),
    "close": Row("结案", ("shift_lead",), ("checked",), "closed"),
    "request_extension": Row("延期申请", ("department",), ("dispatched",), "=", "no_pending_extension"),
    "approve_extension": Row("延期批准", ("dispatcher", "shift_lead"), ("dispatched",), "=", "pending_extension"),
    "deny_extension": Row("延期驳回", ("dispatcher", "shift_lead"), ("dispatched",), "=", "pending_extension"),
    "suspend": Row("挂账", ("dispatcher", "shift_lead"), ("filed", "dispatched", "returned"), "suspended"),
    "resume": Row("挂账恢复", ("shift_lead",), ("suspended",), "←"),
    "supervise": Row("督办", ("leader", "shift_lead"), ("dispatched",), "=", "overdue_or_flagged"),
    "escalate": Row(
        "提级",
        ("grid_worker", "dispatcher", "shift_lead"),
        ("reported", "verified", "filed", "dispatched", "returned", "suspended"),
        "=",
        "escalation_level_above_1",
    ),
}

ALLOWED = [(a, s, role) for a, r in SPEC.items() for s in r.from_states for role in r.roles]
REFUSED_STATES = [(a, s) for a, r in SPEC.items() for s in SPEC_STATES if s not in r.from_states]
REFUSED_ROLES = [(a, role) for a, r in SPEC.items() for role in SPEC_ROLES if role not in r.roles]
REQUIRED = [(r.action, f) for r in TRANSITIONS.values() for f in r.required]


def test_the_table_is_the_specification() -> None:
    """review25 W1–W3, W13–W15: a role or a from-state added to a row kept the suite green."""
    assert tuple(STATES) == SPEC_STATES and tuple(ROLES) == SPEC_ROLES
    assert list(TRANSITIONS) == list(SPEC)  # table order: allowed_actions lists the console's buttons in it
    assert {a: Row(r.label, r.roles, r.from_states, r.to_state, r.guard) for a, r in TRANSITIONS.items()} == SPEC
    assert (UNCHANGED, PREVIOUS) == ("=", "←")


_GUARD_WORDS = {
    "none pending": "no_pending_extension",
    "one pending": "pending_extension",
    "overdue/flagged": "overdue_or_flagged",
    "level > 1": "escalation_level_above_1",
}


def _docstring_actions() -> dict[str, Row]:
    """The Actions table of gisgrid.workflow's docstring, read by column (display width: a Chinese label takes two
    columns), with continuation lines joined to their row."""

    def width(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    lines = workflow.__doc__.split("Actions (")[1].splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("====")]
    starts = [m.start() for m in re.finditer(r"=+", lines[rules[0]])]
    rows: list[list[str]] = []
    for line in lines[rules[1] + 1 : rules[2]]:
        cells = [""] * len(starts)
        for m in re.finditer(r"\S+(?: \S+)*", line):
            col = max(i for i, s in enumerate(starts) if s <= width(line[: m.start()]))
            cells[col] = m.group()
        if cells[0]:
            rows.append(cells)
        else:
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
    out: dict[str, Row] = {}
    for action, label, roles, from_, to in rows:
        guard = re.search(r"\((.+)\)$", from_)
        states = from_[: guard.start()] if guard else from_
        out[action] = Row(
            label,
            tuple(re.split(r",\s*", roles)),
            tuple(s for s in re.split(r",\s*", states.strip()) if s),
            to,
            _GUARD_WORDS[guard.group(1)] if guard else None,
        )
    return out


def test_the_docstring_table_is_the_specification() -> None:
    """The table the README points readers to says what the code does (labels aside: 核查 is 核查(通过) there)."""
    documented = _docstring_actions()
    assert list(documented) == list(SPEC)
    assert {a: replace(r, label=SPEC[a].label) for a, r in documented.items()} == SPEC
    assert documented["check"].label == "核查(通过)"


# --------------------------------------------------------------------------------------- the table


def test_table_uses_known_states_and_roles() -> None:
    for rule in TRANSITIONS.values():
        assert set(rule.from_states) <= set(STATES)
        assert rule.to_state in STATES or rule.to_state in (UNCHANGED, PREVIOUS)
        assert set(rule.roles) <= set(ROLES)
    # Terminal states have no way out.
    for terminal in ("rejected", "voided", "closed"):
        assert all(terminal not in r.from_states for r in TRANSITIONS.values())


@pytest.mark.parametrize(("action", "state", "role"), ALLOWED)
def test_every_allowed_transition(action: str, state: str, role: str) -> None:
    case = case_in(state, action=action)
    t = apply(case, action, role, payload=payload_for(action), expected_version=case.version)
    to_state = SPEC[action].to_state
    expected = {"=": state, "←": case.previous_state}.get(to_state, to_state)
    assert (t.action, t.from_state, t.to_state, t.role) == (action, state, expected, role)
    assert t.case.state == expected
    assert t.case.version == case.version + 1
    assert set(TRANSITIONS[action].effects) <= set(t.effects)
    assert action in allowed_actions(case, role)


@pytest.mark.parametrize(("action", "state"), REFUSED_STATES)
def test_every_refused_state(action: str, state: str) -> None:
    case = case_in(state, action=action if state == "dispatched" else None)
    rule = SPEC[action]
    with pytest.raises(TransitionNotAllowed) as err:
        do(case, action)
    allowed_zh = "、".join(STATE_PHRASES[s] for s in rule.from_states)
    assert err.value.message == (
        f"案件当前为「{STATE_PHRASES[state]}」,不能办理「{rule.label}」(可办理的状态:{allowed_zh}) / "
        f"{action} is not allowed in state {state!r} ({STATES[state]}); allowed from: {', '.join(rule.from_states)}"
    )
    assert err.value.reason is None and err.value.detail == [
        {
            "field": None,
            "reason": f"not allowed in state {state}",
            "code": "transition_not_allowed",
            "action": action,
            "state": state,
            "allowed_from": list(rule.from_states),
        }
    ]
    assert action not in allowed_actions(case, rule.roles[0])


@pytest.mark.parametrize(("action", "role"), REFUSED_ROLES)
def test_every_refused_role(action: str, role: str) -> None:
    rule = SPEC[action]
    case = case_in(rule.from_states[0], action=action)
    with pytest.raises(RoleNotAllowed) as err:
        do(case, action, role)
    assert err.value.message.startswith(f"{action} is not allowed for role {role!r} ({ROLES[role]}); allowed roles: ")
    assert err.value.detail == [
        {
            "field": "X-Role",
            "reason": f"not allowed to {action}",
            "code": "role_not_allowed",
            "action": action,
            "role": role,
            "allowed_roles": list(rule.roles),
        }
    ]
    assert action not in allowed_actions(case, role)


@pytest.mark.parametrize(("action", "field"), REQUIRED)
def test_every_required_field(action: str, field: str) -> None:
    rule = TRANSITIONS[action]
    case = case_in(rule.from_states[0], action=action)
    for empty in (None, "", "   ", []):
        payload = {**payload_for(action), field: empty}
        with pytest.raises(MissingField) as err:
            apply(case, action, rule.roles[0], payload=payload, expected_version=case.version)
        assert f"{action} needs {field!r}" in err.value.message
        assert err.value.code == "invalid_input" and err.value.reason == Reason.MISSING
        assert err.value.detail == [
            {
                "field": field,
                "reason": f"{action} needs it",
                "code": "missing",
                "action": action,
                "required": list(rule.required),
            }
        ]


@pytest.mark.parametrize("state", SPEC_STATES)
@pytest.mark.parametrize("role", SPEC_ROLES)
def test_allowed_actions_match_apply(state: str, role: str) -> None:
    """Every action × role × state against the specification: the role is checked first, then the state and the
    guards (a plain snapshot has no pending extension; ``supervise`` is sent overdue), and allowed_actions lists
    exactly what apply takes, in table order."""
    case = case_in(state)
    listed = allowed_actions(case, role)
    expected_listed = []
    for action, rule in SPEC.items():
        if role not in rule.roles:
            with pytest.raises(RoleNotAllowed):
                do(case, action, role)
        elif state not in rule.from_states or rule.guard == "pending_extension":
            with pytest.raises(TransitionNotAllowed):
                do(case, action, role)
        else:
            t = do(case, action, role)
            assert t.to_state == {"=": state, "←": case.previous_state}.get(rule.to_state, rule.to_state)
            expected_listed.append(action)
    assert listed == expected_listed


def test_error_types_and_messages() -> None:
    assert issubclass(TransitionNotAllowed, Conflict)
    assert issubclass(StaleVersion, Conflict)
    assert issubclass(RoleNotAllowed, InvalidInput)
    assert issubclass(MissingField, InvalidInput)
    closed = (
        r"^案件当前为「已结案」,不能办理「派遣」\(可办理的状态:已立案\(待派遣\)、已回退\(待重新派遣\)\) / "
        r"dispatch is not allowed in state 'closed' \(结案\); allowed from: filed, returned$"
    )
    with pytest.raises(TransitionNotAllowed, match=closed):
        do(case_in("closed"), "dispatch")
    with pytest.raises(RoleNotAllowed, match=r"allowed roles: dispatcher \(派遣员\)$"):
        do(case_in("filed"), "dispatch", "supervisor")
    with pytest.raises(MissingField, match=r"^suspend needs 'reason' \(原因/说明\)") as err:
        apply(case_in("filed"), "suspend", "dispatcher", payload={}, expected_version=7)
    assert err.value.reason == Reason.MISSING
    with pytest.raises(MissingField, match=r"'result'.*'after_photo'"):
        apply(case_in("dispatched"), "handle", "department", payload={}, expected_version=7)
    with pytest.raises(MissingField, match="'department'"):
        apply(case_in("filed"), "dispatch", "dispatcher", payload=None, expected_version=7)


def test_unknown_action_and_role() -> None:
    with pytest.raises(InvalidInput, match="unknown action 'reopen'") as err:
        apply(case_in("closed"), "reopen", "shift_lead", payload={}, expected_version=7)
    assert err.value.reason == Reason.UNKNOWN_ACTION
    with pytest.raises(InvalidInput, match="unknown role 'mayor'") as err:
        do(case_in("filed"), "dispatch", "mayor")
    assert err.value.reason == Reason.UNKNOWN_ROLE
    with pytest.raises(InvalidInput, match="unknown role") as err:
        allowed_actions(case_in("filed"), "mayor")
    assert err.value.reason == Reason.UNKNOWN_ROLE


def test_unknown_action_and_role_list_their_items_as_every_refusal_does() -> None:
    """review29 D7: ``detail`` was an object (``{"action": "fly"}``), not the documented list of items."""
    with pytest.raises(InvalidInput) as err:
        apply(case_in("closed"), "fly", "shift_lead", payload={}, expected_version=7)
    assert err.value.detail == [{"field": "action", "reason": "not an action of the workflow", "value": "fly"}]
    with pytest.raises(InvalidInput) as err:
        allowed_actions(case_in("filed"), "boss")
    assert err.value.detail == [{"field": "X-Role", "reason": "not a role of the workflow", "value": "boss"}]


# --------------------------------------------------------------------------------------- flows


def test_main_path_end_to_end() -> None:
    case = CaseState()
    assert (case.state, case.version, case.escalation_level) == ("reported", 1, 3)
    steps = [
        ("request_verify", "intake", {}, "reported", ("issue_verify_task",)),
        ("verify", "supervisor", {}, "verified", ()),
        ("file", "shift_lead", {}, "filed", ()),
        ("dispatch", "dispatcher", {"department": DEPT}, "dispatched", ("issue_dispatch_order",)),
        ("handle", "department", {"result": "已修复", "after_photo": ["a.jpg"]}, "handled", ()),
        ("request_check", "intake", {}, "handled", ("issue_check_task",)),
        ("check", "grid_worker", {}, "checked", ()),
        ("close", "shift_lead", {}, "closed", ()),
    ]
    for action, role, payload, to_state, effects in steps:
        assert action in allowed_actions(case, role)
        t = apply(case, action, role, payload=payload, expected_version=case.version)
        assert (t.to_state, t.effects) == (to_state, effects)
        case = t.case
    assert case == CaseState(state="closed", department=DEPT, version=9)
    assert case.terminal and case.label == "结案"
    assert all(allowed_actions(case, role) == [] for role in ROLES)


def test_rework_goes_back_to_the_same_department_and_counts() -> None:
    case = do(do(case_in("filed"), "dispatch").case, "handle").case
    t = do(case, "rework", "supervisor", reason="路面未恢复")
    assert (t.to_state, t.case.department, t.case.rework_count, t.rework_increment) == ("dispatched", DEPT, 1, 1)
    assert t.effects == ("record_rework", "issue_dispatch_order")
    assert t.details == {"reason": "路面未恢复", "department": DEPT, "rework_count": 1}
    second = do(do(t.case, "handle").case, "rework")
    assert second.case.rework_count == 2
    closed = do(do(do(second.case, "handle").case, "check").case, "close")
    assert closed.case.rework_count == 2 and closed.rework_increment == 0
    with pytest.raises(InvalidInput, match="same department") as err:
        do(do(second.case, "handle").case, "rework", department=OTHER_DEPT)
    assert err.value.reason == Reason.REWORK_OTHER_DEPARTMENT


def test_return_then_redispatch_records_misdispatch_only_for_another_department() -> None:
    returned = do(do(case_in("filed"), "dispatch").case, "return", reason="不属本单位职责")
    assert (returned.to_state, returned.case.department) == ("returned", DEPT)
    again = do(returned.case, "dispatch", department=OTHER_DEPT)
    assert again.effects == ("issue_dispatch_order", "record_misdispatch")
    assert again.details["returned_by"] == DEPT and again.case.department == OTHER_DEPT
    same = do(returned.case, "dispatch", department=DEPT)
    assert "record_misdispatch" not in same.effects


@pytest.mark.parametrize("state", ["filed", "dispatched", "returned"])
def test_suspend_and_resume_restore_the_previous_state(state: str) -> None:
    case = case_in(state)
    suspended = do(case, "suspend", "shift_lead", reason="涉及拆迁, 时限内无法解决")
    assert suspended.case.state == "suspended" and suspended.case.previous_state == state
    assert suspended.effects == ("pause_due_clock",)
    assert allowed_actions(suspended.case, "shift_lead") == ["resume", "escalate"]
    resumed = do(suspended.case, "resume")
    assert (resumed.to_state, resumed.case.previous_state, resumed.effects) == (state, None, ("resume_due_clock",))
    assert resumed.case == CaseState(state=state, department=case.department, version=9)


def test_extension_request_approve_deny() -> None:
    case = case_in("dispatched")
    assert "request_extension" in allowed_actions(case, "department")
    requested = do(case, "request_extension", reason="需采购配件")
    assert requested.case.pending_extension and requested.to_state == "dispatched"
    assert requested.effects == ("create_extension_request",)
    assert "request_extension" not in allowed_actions(requested.case, "department")
    with pytest.raises(TransitionNotAllowed, match="already pending") as err:
        do(requested.case, "request_extension")
    assert err.value.reason == Reason.EXTENSION_PENDING

    approved = do(requested.case, "approve_extension", "shift_lead", new_due_at="2026-03-12T18:00:00+08:00")
    assert not approved.case.pending_extension
    assert approved.effects == ("close_extension_request", "move_due_at")
    assert approved.details["new_due_at"] == "2026-03-12T18:00:00+08:00"

    denied = do(requested.case, "deny_extension", "dispatcher", reason="时限充足")
    assert not denied.case.pending_extension and denied.effects == ("close_extension_request",)
    for action in ("approve_extension", "deny_extension"):
        with pytest.raises(TransitionNotAllowed, match="no pending extension") as err:
            do(denied.case, action)
        assert err.value.reason == Reason.NO_PENDING_EXTENSION


def test_leaving_dispatch_withdraws_a_pending_extension() -> None:
    pending = case_in("dispatched", pending_extension=True)
    for action in ("handle", "return", "suspend"):
        t = do(pending, action)
        assert not t.case.pending_extension
        assert t.effects[-1] == "withdraw_extension_request"


def test_extension_refused_on_a_closed_case() -> None:
    closed = case_in("closed")
    for action in ("request_extension", "approve_extension", "deny_extension"):
        english = rf" / {action} is not allowed in state 'closed' \(结案\)"
        with pytest.raises(TransitionNotAllowed, match=english) as err:
            do(closed, action)
        assert err.value.reason is None  # the state alone: transition_not_allowed says it all


def test_escalation_3_2_1_then_refused() -> None:
    case = case_in("dispatched")
    levels = []
    for _ in range(2):
        t = do(case, "escalate", "grid_worker", reason="网格内无法协调")
        assert t.to_state == "dispatched" and t.effects == ("notify_escalation",)
        levels.append((t.details["from_level"], t.details["to_level"]))
        case = t.case
    assert levels == [(3, 2), (2, 1)] and case.escalation_level == 1
    assert "escalate" not in allowed_actions(case, "grid_worker")
    with pytest.raises(TransitionNotAllowed, match="already at escalation level 1") as err:
        do(case, "escalate")
    assert err.value.reason == Reason.TOP_ESCALATION_LEVEL


def test_supervise_needs_an_overdue_or_flagged_case() -> None:
    case = case_in("dispatched")
    with pytest.raises(TransitionNotAllowed, match="past its deadline, or flagged") as err:
        apply(case, "supervise", "leader", payload={"reason": "限期办结"}, expected_version=7)
    assert err.value.reason == Reason.NOT_OVERDUE_OR_FLAGGED
    assert err.value.detail == [
        {
            "field": None,
            "reason": "督办 needs a case past its deadline, or flagged=true (重点督办)",
            "code": "not_overdue_or_flagged",
            "action": "supervise",
            "state": "dispatched",
        }
    ]
    t = apply(case, "supervise", "leader", payload={"reason": "限期办结", "flagged": True}, expected_version=7)
    assert (t.to_state, t.effects, t.case.version) == ("dispatched", ("issue_supervision_order",), 8)
    assert t.details == {"reason": "限期办结", "overdue": False, "flagged": True}


def test_stale_version() -> None:
    case = case_in("filed")
    first = apply(case, "dispatch", "dispatcher", payload={"department": DEPT}, expected_version=7)
    assert first.case.version == 8
    # A second dispatcher acting on the version they read (7) loses: 409.
    with pytest.raises(StaleVersion, match="version 8, the request expected 7") as err:
        apply(first.case, "suspend", "dispatcher", payload={"reason": "x"}, expected_version=7)
    assert err.value.code == "stale_version" and isinstance(err.value, Conflict)
    assert err.value.detail == [
        {
            "field": "version",
            "reason": "the case is at version 8",
            "code": "stale_version",
            "action": "suspend",
            "version": 8,
            "expected_version": 7,
        }
    ]
    # The version is checked before anything else, so a stale client is told to reload.
    with pytest.raises(StaleVersion):
        apply(first.case, "close", "supervisor", payload={}, expected_version=3)


def test_apply_does_not_mutate_and_details_are_read_only() -> None:
    case = case_in("filed")
    t = do(case, "dispatch", note="急")
    assert case.state == "filed" and case.version == 7
    assert t.details == {"department": DEPT, "note": "急"}
    with pytest.raises(TypeError):
        t.details["department"] = OTHER_DEPT  # type: ignore[index]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"state": "reopened"}, "unknown state"),
        ({"state": "suspended"}, "previous_state"),
        ({"state": "suspended", "previous_state": "closed"}, "previous_state"),
        ({"state": "filed", "previous_state": "filed"}, "only kept while suspended"),
        ({"escalation_level": 0}, "escalation_level"),
        ({"rework_count": -1}, "negative"),
        ({"state": "handled", "pending_extension": True}, "pending_extension"),
    ],
)
def test_invalid_snapshots(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        CaseState(**fields)


def test_a_payload_for_an_unknown_action_is_refused_by_name() -> None:
    with pytest.raises(InvalidInput, match="unknown action 'fly'"):
        check_payload("fly", {})


@pytest.mark.parametrize(
    ("action", "payload", "reason"),
    [
        ("dispatch", {"department": 12}, Reason.STRING_TYPE),
        ("request_extension", {"amount": "3"}, Reason.FLOAT_TYPE),
        ("supervise", {"flagged": "yes"}, Reason.BOOL_TYPE),
        ("request_extension", {"unit": "weeks"}, Reason.LITERAL_ERROR),
    ],
)
def test_a_refused_payload_field_names_its_cause_by_code(action: str, payload: dict[str, Any], reason: Reason) -> None:
    with pytest.raises(InvalidInput) as err:
        check_payload(action, payload)
    assert err.value.reason == reason and err.value.detail[0]["field"] == next(iter(payload))


def test_an_unknown_payload_field_is_named_by_its_json_path_as_its_message_names_it() -> None:
    """review29 D7: the item said ``departmnt`` where the message said ``payload.departmnt``."""
    with pytest.raises(InvalidInput) as err:
        check_payload("dispatch", {"departmnt": DEPT})
    assert err.value.reason == Reason.EXTRA_FORBIDDEN
    assert err.value.message.startswith("payload.departmnt: dispatch takes no 'departmnt'; it takes department, ")
    assert err.value.detail == [{"field": "payload.departmnt", "reason": "unknown field"}]


def test_a_merged_duplicate_is_reopened_only_when_its_kept_case_ends_unhandled() -> None:
    from gisgrid.workflow import CaseState, TransitionNotAllowed, reopen_duplicate

    merged = CaseState(state="voided", version=2)
    for kept_state in ("voided", "rejected"):
        tr = reopen_duplicate(merged, kept_state)
        assert (tr.action, tr.from_state, tr.to_state) == ("reopen", "voided", "reported")
        assert (tr.case.state, tr.case.version) == ("reported", 3)
        assert dict(tr.details) == {"kept_state": kept_state}
    with pytest.raises(InvalidInput, match="leaves its duplicates merged"):
        reopen_duplicate(merged, "closed")  # handled: the duplicates were handled with it
    with pytest.raises(TransitionNotAllowed, match="only a merged"):
        reopen_duplicate(CaseState(state="filed"), "voided")


def test_a_machine_clients_role_reports_and_takes_no_action() -> None:
    """``intake_system`` (a 12345 platform, a video system) is a role of its own: no rule names it, so it may not
    不予立案 or 发核实 a case as ``intake`` may; it reports the channels such systems send (review52 F5)."""
    from gisgrid.case_intake import REPORT_SOURCES

    assert sorted(workflow.SYSTEM_ROLES) == ["intake_system"]
    assert workflow.ROLES["intake_system"] == "接入系统"
    assert [r.action for r in workflow.TRANSITIONS.values() if set(r.roles) & workflow.SYSTEM_ROLES] == []
    assert REPORT_SOURCES["intake_system"] == ("hotline", "sensor", "public_app")
    assert {"reject", "request_verify"} <= {a for a, r in workflow.TRANSITIONS.items() if "intake" in r.roles}
