"""A wrong class corrected after the report (review45 U2): 核实 and 立案 take an optional ``class_code``; the case
takes the class, is routed again as intake routes it, the next node is timed for the new class, and the step
records from/to; an unknown class is refused and nothing is written."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.main import create_app
from gisgrid import case_intake, node_clock, workflow
from gisgrid import cases as svc
from gisgrid.errors import InvalidInput, Reason
from gisgrid.events import matter_code_of
from gisgrid.settings import Settings
from tests.test_cases import act, at, get, report

GARBAGE = "06010"  # 暴露垃圾, default type not urgent
URGENT = "09012"  # its default type is urgent: the next node runs round the clock


def log(engine: Engine, case_id: int) -> list[tuple[str, dict[str, Any]]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT action, details FROM case_transitions WHERE case_id = :c ORDER BY id"), {"c": case_id}
        ).all()
    return [(r[0], r[1]) for r in rows]


def stored(engine: Engine, case_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT class_code, matter_code, disposal_type, urgent, node, due_at, node_calendar_time, routing, "
                "version, department_code FROM cases WHERE id = :c"
            ),
            {"c": case_id},
        ).mappings()
        return dict(row.one())


def routed_as_intake(services: svc.CaseServices, engine: Engine, case_id: int, code: str) -> Any:
    """The decision intake makes for class ``code`` at the case's unit grid and report time."""
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM cases WHERE id = :c"), {"c": case_id}).one()
    where = {
        "code": row.unit_grid_code,
        "street_code": row.street_code,
        "community_code": row.community_code,
        "tier3_code": row.tier3_code,
    }
    ev = svc.event_class(services, "gbt47678", code)
    return case_intake.route_report(services, ev, where, None, row.created_at), ev, row.district_code


def test_verify_and_file_correct_the_class_reroute_and_retime(
    loaded: Engine, services: svc.CaseServices, spot: tuple[float, float]
) -> None:
    assert workflow.TRANSITIONS["verify"].optional == ("class_code",)
    assert workflow.TRANSITIONS["file"].optional == ("class_code",)
    x, y = spot
    cid = report(loaded, services, x, y, class_code=GARBAGE)
    before = stored(loaded, cid)
    now = "2025-09-26T10:30:00"
    after = act(loaded, services, cid, "verify", "supervisor", 1, now, class_code=URGENT)
    assert (after["class_code"], after["state"]) == (URGENT, "verified")

    decision, ev, district = routed_as_intake(services, loaded, cid, URGENT)
    case = stored(loaded, cid)
    assert case["class_code"] == URGENT and case["matter_code"] == matter_code_of(district, ev)
    assert (case["disposal_type"], case["urgent"]) == ("默认", True)
    clock = node_clock.node_clock(services, "file", ev, "默认", at(now))
    assert (case["node"], case["due_at"], case["node_calendar_time"]) == ("file", clock["due_at"], True)
    assert case["due_at"] == at(now) + dt.timedelta(minutes=15)  # 立案 of an urgent case: 0.25 clock hours
    assert case["routing"]["decision"] == svc.decision_json(decision)
    assert case["routing"]["duplicates"] == before["routing"]["duplicates"]
    assert before["routing"]["decision"] != case["routing"]["decision"]
    assert log(loaded, cid)[-1] == (
        "verify",
        {
            "class_code": URGENT,
            "class_change": {
                "from": GARBAGE,
                "from_name": "暴露垃圾",
                "to": URGENT,
                "to_name": ev.name,
                "department": decision.department,
                "queue": decision.queue,
                "explanation": decision.explanation,
            },
        },
    )

    # 立案 corrects it back: routed and timed for 暴露垃圾 again
    later = "2025-09-26T10:40:00"
    act(loaded, services, cid, "file", "shift_lead", 2, later, class_code=GARBAGE)
    back, garbage, _ = routed_as_intake(services, loaded, cid, GARBAGE)
    case = stored(loaded, cid)
    assert (case["class_code"], case["urgent"], case["node"]) == (GARBAGE, False, "dispatch")
    assert case["due_at"] == node_clock.node_clock(services, "dispatch", garbage, "默认", at(later))["due_at"]
    assert case["routing"]["decision"] == svc.decision_json(back) == before["routing"]["decision"]
    assert log(loaded, cid)[-1][1]["class_change"]["from"] == URGENT
    assert log(loaded, cid)[-1][1]["class_change"]["to"] == GARBAGE


def test_an_unknown_class_is_refused_and_nothing_written(
    loaded: Engine, services: svc.CaseServices, spot: tuple[float, float]
) -> None:
    x, y = spot
    cid = report(loaded, services, x, y, class_code=GARBAGE)
    before, steps = stored(loaded, cid), log(loaded, cid)
    for bad in ("99999", "0601"):
        with pytest.raises(InvalidInput) as err:
            act(loaded, services, cid, "verify", "supervisor", 1, "2025-09-26T10:30:00", class_code=bad)
        assert err.value.reason == Reason.UNKNOWN_CLASS
        assert err.value.message == f"class_code: unknown gbt47678 event class {bad!r}"
    with pytest.raises(InvalidInput) as err:
        act(loaded, services, cid, "verify", "supervisor", 1, "2025-09-26T10:30:00", class_code=6010)
    assert err.value.reason == Reason.STRING_TYPE
    with pytest.raises(InvalidInput) as err:  # 派遣 takes none: the class is corrected at 核实/立案
        act(loaded, services, cid, "request_verify", "intake", 1, "2025-09-26T10:30:00", class_code=URGENT)
    assert err.value.reason == Reason.EXTRA_FORBIDDEN
    assert stored(loaded, cid) == before and log(loaded, cid) == steps
    assert get(loaded, services, cid)["class_code"] == GARBAGE


@pytest.fixture
def client(loaded: Engine, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "d"}))) as c:
        yield c


def test_the_api_takes_a_class_correction_on_verify(client: TestClient, spot: tuple[float, float]) -> None:
    x, y = spot
    filed = client.post("/cases", json={"class_code": "01001", "lon": x, "lat": y}, headers={"X-Role": "intake"})
    cid = filed.json()["id"]
    sup = {"X-Role": "supervisor", "X-Actor": "sup"}
    bad = client.post(
        f"/cases/{cid}/actions/verify", json={"version": 1, "payload": {"class_code": "0100"}}, headers=sup
    )
    assert (bad.status_code, bad.json()["reason"]) == (422, "unknown_class")
    ok = client.post(
        f"/cases/{cid}/actions/verify", json={"version": 1, "payload": {"class_code": "01023"}}, headers=sup
    )
    assert ok.status_code == 200, ok.text
    body = client.get(f"/cases/{cid}").json()
    assert (body["class_code"], body["class_name"], body["version"]) == ("01023", "不明井盖异常", 2)
    assert "不明井盖异常" in body["routing"]["decision"]["explanation"]
    form = client.post(
        f"/cases/{cid}/actions/file/form",
        data={"version": "2", "class_code": "01007"},
        headers={"X-Role": "shift_lead"},
    )
    assert form.status_code == 200, form.text
    assert client.get(f"/cases/{cid}").json()["class_code"] == "01007"
