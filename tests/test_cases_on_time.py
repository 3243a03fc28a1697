"""按期 in a case's detail: ``nodes`` and ``closed_on_time`` judged by the evaluation's own node rule (working time
less suspensions, against the node's limit or the approved extension; 按期结案 = closed with every 处置 on time),
so the detail and the monthly indicators never disagree about a case.

Times are Asia/Shanghai; working hours 08:30–12:00 and 13:30–17:30 (7.5 h a day); 暴露垃圾 (06010) has 4 working
hours of 处置. Monday 2025-10-13 is a working day after the National Day holiday."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api import schemas
from api.main import create_app
from gisgrid import cases as svc
from gisgrid import history
from gisgrid.errors import Reason
from gisgrid.evaluation import Period, evaluate, prepare
from gisgrid.settings import Settings
from gisgrid.workflow import TransitionNotAllowed
from tests.fixtures import acting
from tests.test_cases import _dispatchable, _jpeg, act, at, get, report
from tests.test_components_store import inside_points

MONDAY = "2025-10-13T09:00:00"


@pytest.fixture
def spot() -> tuple[float, float]:
    xs, ys = inside_points(1, seed=31)
    return float(xs[0]), float(ys[0])


def dispatched(engine: Engine, services: svc.CaseServices, xy: tuple[float, float]) -> int:
    """A 暴露垃圾 case reported, verified, filed and dispatched on Monday 09:00 (处置 due 14:30; version 4)."""
    cid = _dispatchable(engine, services, *xy, MONDAY)
    act(engine, services, cid, "dispatch", "dispatcher", 3, MONDAY)
    return cid


def handle(engine: Engine, services: svc.CaseServices, cid: int, version: int, now: str, shade: int) -> dict:
    return act(engine, services, cid, "handle", "department", version, now, result="已清理",
               photos=[(f"{shade}.jpg", _jpeg(shade))])  # fmt: skip


def check_and_close(engine: Engine, services: svc.CaseServices, cid: int, version: int, now: str, then: str) -> dict:
    act(engine, services, cid, "check", "supervisor", version, now)
    return act(engine, services, cid, "close", "shift_lead", version + 1, then)


def judged(case: dict[str, Any], node: str) -> list[tuple[float, float | None, bool | None]]:
    """(elapsed_h, allowed_h, on_time) of each instance of ``node``."""
    return [(n["elapsed_h"], n["allowed_h"], n["on_time"]) for n in case["nodes"] if n["node"] == node]


def test_a_case_handled_within_its_limit_and_closed_is_closed_on_time(
    loaded: Engine, services: svc.CaseServices, spot: tuple[float, float]
) -> None:
    cid = dispatched(loaded, services, spot)
    handle(loaded, services, cid, 4, "2025-10-13T11:00:00", 40)  # 2 working hours of 4
    c = check_and_close(loaded, services, cid, 5, "2025-10-13T11:30:00", "2025-10-13T11:40:00")
    assert c["state"] == "closed" and c["closed_on_time"] is True
    nodes = [
        (n["node"], n["label"], n["opened_at"], n["closed_at"], n["elapsed_h"], n["limit_h"], n["on_time"])
        for n in c["nodes"]
    ]
    # 受理 ended by 核实 itself (no 发核实) and 发核查 by the 核查: neither is a node instance.
    assert nodes == [
        ("verify", "核实", "2025-10-13T09:00:00+08:00", "2025-10-13T09:00:00+08:00", 0.0, 1.0, True),
        ("file", "立案", "2025-10-13T09:00:00+08:00", "2025-10-13T09:00:00+08:00", 0.0, 0.5, True),
        ("dispatch", "派遣", "2025-10-13T09:00:00+08:00", "2025-10-13T09:00:00+08:00", 0.0, 0.5, True),
        ("disposal", "处置", "2025-10-13T09:00:00+08:00", "2025-10-13T11:00:00+08:00", 2.0, 4.0, True),
        ("check", "核查", "2025-10-13T11:00:00+08:00", "2025-10-13T11:30:00+08:00", 0.5, 2.0, True),
        ("close", "结案", "2025-10-13T11:30:00+08:00", "2025-10-13T11:40:00+08:00", 0.1667, 1.0, True),
    ]
    # Each node names the timeline steps that opened and closed it.
    disposal = c["nodes"][3]
    assert c["timeline"][disposal["opened_step"]]["action"] == "dispatch"
    assert c["timeline"][disposal["closed_step"]]["action"] == "handle"
    assert disposal["calendar_time"] is False and disposal["allowed_h"] == 4.0


def test_a_late_first_disposal_is_not_redeemed_by_a_timely_rework(
    loaded: Engine, services: svc.CaseServices, spot: tuple[float, float]
) -> None:
    """The console used to compare the LAST 处置 with the disposal deadline — which a 返工 resets — and called this
    case 按期; the evaluation counts the late first 处置 and so 超期结案."""
    cid = dispatched(loaded, services, spot)
    handle(loaded, services, cid, 4, "2025-10-13T15:30:00", 40)  # 5 working hours: late
    act(loaded, services, cid, "rework", "supervisor", 5, "2025-10-13T16:00:00", reason="仍有残留")
    c = handle(loaded, services, cid, 6, "2025-10-14T09:00:00", 200)  # 2 working hours after the rework
    assert c["disposal_due_at"] == "2025-10-14T11:00:00+08:00"  # the last 处置 was before the (reset) deadline
    c = check_and_close(loaded, services, cid, 7, "2025-10-14T09:30:00", "2025-10-14T09:40:00")
    assert c["closed_on_time"] is False
    assert judged(c, "disposal") == [(5.0, 4.0, False), (2.0, 4.0, True)]
    assert [c["timeline"][n["closed_step"]]["at"] for n in c["nodes"] if n["on_time"] is False] == [
        "2025-10-13T15:30:00+08:00"
    ]


def test_a_suspension_during_disposal_does_not_count_against_it(
    loaded: Engine, services: svc.CaseServices, spot: tuple[float, float]
) -> None:
    cid = dispatched(loaded, services, spot)
    act(loaded, services, cid, "suspend", "dispatcher", 4, "2025-10-13T10:00:00", reason="需协调产权单位")
    act(loaded, services, cid, "resume", "shift_lead", 5, "2025-10-15T09:00:00")
    # Mon 09:00 → Wed 11:30 is 17.5 working hours, 14 of them suspended: 3.5 of 4.
    handle(loaded, services, cid, 6, "2025-10-15T11:30:00", 40)
    c = check_and_close(loaded, services, cid, 7, "2025-10-15T12:00:00", "2025-10-15T13:40:00")
    assert judged(c, "disposal") == [(3.5, 4.0, True)]
    assert c["closed_on_time"] is True


def test_an_approved_extension_is_the_deadline_the_disposal_is_judged_by(
    loaded: Engine, services: svc.CaseServices, spot: tuple[float, float]
) -> None:
    def extended() -> int:
        cid = dispatched(loaded, services, spot)
        act(loaded, services, cid, "request_extension", "department", 4, "2025-10-13T10:00:00", reason="需调大型机械")
        c = act(loaded, services, cid, "approve_extension", "dispatcher", 5, "2025-10-13T10:30:00", amount=1,
                unit="working_days")  # fmt: skip
        assert c["timeline"][-1]["details"]["new_due_at"] == "2025-10-14T14:30:00+08:00"
        return cid

    # 11.5 working hours from the dispatch to the new deadline: 11 used is on time, 12 is not.
    in_time, late = extended(), extended()
    handle(loaded, services, in_time, 6, "2025-10-14T14:00:00", 40)
    c = check_and_close(loaded, services, in_time, 7, "2025-10-14T14:10:00", "2025-10-14T14:20:00")
    assert judged(c, "disposal") == [(11.0, 11.5, True)] and c["closed_on_time"] is True
    handle(loaded, services, late, 6, "2025-10-14T15:00:00", 200)
    c = check_and_close(loaded, services, late, 7, "2025-10-14T15:10:00", "2025-10-14T15:20:00")
    assert judged(c, "disposal") == [(12.0, 11.5, False)] and c["closed_on_time"] is False
    assert c["nodes"][3]["limit_h"] == 4.0  # the catalogue's limit; allowed_h is what the extension made of it


def test_an_open_case_is_not_judged_until_its_node_is_overdue(
    loaded: Engine, services: svc.CaseServices, spot: tuple[float, float]
) -> None:
    cid = dispatched(loaded, services, spot)
    c = get(loaded, services, cid, "2025-10-13T10:00:00")
    assert c["closed_on_time"] is None
    (open_node,) = [n for n in c["nodes"] if n["closed_at"] is None]
    assert open_node["node"] == "disposal" and open_node["closed_step"] is None
    assert (open_node["elapsed_h"], open_node["on_time"]) == (1.0, None)
    c = get(loaded, services, cid, "2025-10-13T15:00:00")  # past 14:30
    assert judged(c, "disposal") == [(4.5, 4.0, False)] and c["closed_on_time"] is None


def test_the_detail_and_the_evaluation_judge_a_case_alike(
    loaded: Engine, services: svc.CaseServices, settings: Settings, spot: tuple[float, float], tmp_path: Path
) -> None:
    """The same cases through the monthly evaluation (read from the database as ``gisgrid evaluate`` reads them)
    and through ``GET /cases/{id}``: the same node instances, times and verdicts, and 按期结案率 from the same
    closed_on_time."""
    good = dispatched(loaded, services, spot)
    handle(loaded, services, good, 4, "2025-10-13T11:00:00", 40)
    check_and_close(loaded, services, good, 5, "2025-10-13T11:30:00", "2025-10-13T11:40:00")
    reworked = dispatched(loaded, services, spot)
    handle(loaded, services, reworked, 4, "2025-10-13T15:30:00", 70)
    act(loaded, services, reworked, "rework", "supervisor", 5, "2025-10-13T16:00:00", reason="仍有残留")
    handle(loaded, services, reworked, 6, "2025-10-14T09:00:00", 200)
    check_and_close(loaded, services, reworked, 7, "2025-10-14T09:30:00", "2025-10-14T09:40:00")

    period = Period.month(2025, 10)
    with loaded.connect() as conn:
        limits = history.disposal_limits(services.events, services.calendar.hours.hours_per_day)
        cases, steps = history.read_history(conn, period, limits)
    args = (cases, steps, services.calendar, services.events.node_limits, period)
    urgent = services.events.urgent_node_limits
    facts = prepare(*args, as_of=period.end, urgent_node_limits=urgent)
    row = evaluate(*args, "region", level="district", as_of=period.end, urgent_node_limits=urgent).iloc[0]
    assert row["on_time_closure_rate"] == 0.5 and row["on_time_disposal_rate"] == 2 / 3

    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "data"}))) as client:
        shown = {cid: client.get(f"/cases/{cid}").json() for cid in (good, reworked)}
    for case in shown.values():
        schemas.CaseDetail.model_validate(case, strict=True)  # the fields are the ones the OpenAPI schema names
    assert [shown[good]["closed_on_time"], shown[reworked]["closed_on_time"]] == [True, False]
    for cid, case in shown.items():
        mine = facts.nodes[facts.nodes["case_id"] == cid].sort_values(["open_at", "open_id"])
        assert [n["node"] for n in case["nodes"]] == mine["node"].astype(str).tolist()
        assert [n["elapsed_h"] for n in case["nodes"]] == mine["elapsed_h"].round(4).tolist()
        verdicts = [bool(v) if c else None for v, c in zip(mine["on_time"], mine["counted"], strict=True)]
        assert [n["on_time"] for n in case["nodes"]] == verdicts
        opened = [t.isoformat() for t in mine["open_at"]]
        assert [n["opened_at"] for n in case["nodes"]] == opened


def test_a_reissued_verify_or_check_task_restarts_the_live_clock_as_the_evaluation_judges_it(
    loaded: Engine, services: svc.CaseServices, spot: tuple[float, float]
) -> None:
    """发核实 and 发核查 open their node again (the evaluation counts the last opener): the case's due time and light
    follow, so the console does not show red a 核实 the evaluation will judge on time (review26 D1). 核实 has 1
    working hour, 核查 2."""
    cid = report(loaded, services, *spot, now=at("2025-10-13T11:00:00"))
    assert get(loaded, services, cid, "2025-10-13T11:00:00")["due_at"] == "2025-10-13T12:00:00+08:00"
    c = act(loaded, services, cid, "request_verify", "intake", 1, "2025-10-13T11:50:00")
    assert (c["node"], c["due_at"]) == ("verify", "2025-10-13T14:20:00+08:00")  # 10 min before lunch, 50 after
    late_by_the_report = get(loaded, services, cid, "2025-10-13T13:40:00")
    assert (late_by_the_report["light"], judged(late_by_the_report, "verify")) == ("green", [(0.3333, 1.0, None)])
    c = act(loaded, services, cid, "verify", "supervisor", 2, "2025-10-13T13:45:00")
    assert judged(c, "verify") == [(0.4167, 1.0, True)]

    dispatched_id = dispatched(loaded, services, spot)
    handle(loaded, services, dispatched_id, 4, "2025-10-13T10:00:00", 1)
    c = act(loaded, services, dispatched_id, "request_check", "intake", 5, "2025-10-13T15:00:00")
    assert (c["node"], c["due_at"]) == ("check", "2025-10-13T17:00:00+08:00")  # not 12:00, two hours after 处置
    assert get(loaded, services, dispatched_id, "2025-10-13T16:00:00")["light"] == "green"


def test_an_extension_is_requested_within_the_disposal_deadline_not_after_it(
    loaded: Engine, services: svc.CaseServices, settings: Settings, spot: tuple[float, float], tmp_path: Path
) -> None:
    """延期 is asked for within the disposal time limit: one minute after the deadline (14:30) the request is
    refused, 409 extension_after_deadline, nothing written — approved, it would have turned the overdue case on
    time (review40 D2); one minute before, it is taken and its approval moves the deadline as before. 挂账 moves
    the deadline it is judged by."""
    late = dispatched(loaded, services, spot)
    before = get(loaded, services, late, "2025-10-13T14:31:00")
    assert (before["version"], before["due_at"], before["light"]) == (4, "2025-10-13T14:30:00+08:00", "red")
    with pytest.raises(TransitionNotAllowed) as refused:
        act(loaded, services, late, "request_extension", "department", 4, "2025-10-13T14:31:00", reason="需调机械")
    assert refused.value.reason == Reason.EXTENSION_AFTER_DEADLINE
    assert refused.value.message == (
        "处置时限 2025-10-13 14:30 已过,不能再申请延期(延期须在处置时限内申请);本次未写入 / request_extension is "
        "not allowed after the deadline: the disposal deadline 2025-10-13 14:30 (China time) has passed; an "
        "extension is asked for within the time limit; nothing was written"
    )
    assert refused.value.detail == [
        {
            "field": None,
            "reason": "the disposal deadline 2025-10-13 14:30 (China time) has passed",
            "code": "extension_after_deadline",
            "action": "request_extension",
            "state": "dispatched",
            "due_at": "2025-10-13T14:30:00+08:00",
        }
    ]
    after = get(loaded, services, late, "2025-10-13T14:31:00")
    assert (after["version"], after["pending_extension"], after["timeline"]) == (4, False, before["timeline"])

    in_time = dispatched(loaded, services, spot)
    c = act(loaded, services, in_time, "request_extension", "department", 4, "2025-10-13T14:29:00", reason="需调机械")
    assert (c["version"], c["pending_extension"], c["timeline"][-1]["action"]) == (5, True, "request_extension")
    # The approval after the deadline is the dispatcher's, of a request made in time: unaffected.
    c = act(loaded, services, in_time, "approve_extension", "dispatcher", 5, "2025-10-13T15:00:00", amount=1,
            unit="working_days")  # fmt: skip
    assert (c["due_at"], c["light"], c["pending_extension"]) == ("2025-10-14T14:30:00+08:00", "green", False)

    # 挂账 stops the clock: 1 of 4 working hours used by 10:00, so resumed Wed 09:00 it is due Wed 12:00.
    held = dispatched(loaded, services, spot)
    act(loaded, services, held, "suspend", "dispatcher", 4, "2025-10-13T10:00:00", reason="需协调产权单位")
    c = act(loaded, services, held, "resume", "shift_lead", 5, "2025-10-15T09:00:00")
    assert c["due_at"] == "2025-10-15T12:00:00+08:00"
    with pytest.raises(TransitionNotAllowed) as refused:
        act(loaded, services, held, "request_extension", "department", 6, "2025-10-15T12:01:00", reason="需调机械")
    assert refused.value.reason == Reason.EXTENSION_AFTER_DEADLINE and "2025-10-15 12:00" in refused.value.message
    c = act(loaded, services, held, "request_extension", "department", 6, "2025-10-15T11:59:00", reason="需调机械")
    assert c["pending_extension"] is True

    # Over HTTP (now: long after the 2025 deadline): 409 transition_not_allowed with the reason.
    overdue = dispatched(loaded, services, spot)
    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "data"}))) as client:
        r = client.post(
            f"/cases/{overdue}/actions/request_extension",
            json={"version": 4, "payload": {"reason": "需调机械", "amount": 2}},
            headers=acting(client, overdue, "department"),
        )
        assert (r.status_code, r.json()["error"], r.json()["reason"]) == (
            409,
            "transition_not_allowed",
            "extension_after_deadline",
        )
        assert r.json()["detail"]["message"].startswith("request_extension is not allowed after the deadline")
        assert client.get(f"/cases/{overdue}").json()["version"] == 4
        # Not offered either, in the detail or the list (a button that can only answer 409); 回退, 处置 still are.
        headers = acting(client, overdue, "department")
        offered = client.get(f"/cases/{overdue}", headers=headers).json()["allowed_actions"]
        assert "request_extension" not in offered and {"return", "handle"} <= set(offered)
        number = client.get(f"/cases/{overdue}").json()["case_no"]
        listed = client.get("/cases", params={"case_no": number}, headers=headers).json()["data"]
        assert listed and "request_extension" not in listed[0]["allowed_actions"]
        early = dispatched(loaded, services, spot)  # due in 2025 too: only a case not yet due is offered it
        with loaded.begin() as conn:
            conn.execute(text("UPDATE cases SET due_at = now() + interval '1 day' WHERE id = :id"), {"id": early})
        assert "request_extension" in client.get(f"/cases/{early}", headers=headers).json()["allowed_actions"]
