"""A department's staff act only on the cases dispatched to their department (review35 D2): the department role
says which department it acts for (X-Department, set by the login gateway from the user's account), and a step
on a case that is with another department is refused, nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.main import create_app
from gisgrid import case_intake, workflow
from gisgrid import cases as svc
from gisgrid.settings import Settings

GARBAGE = "06010"
OURS, THEIRS = "990000000000000003", "990000000000000006"


@pytest.fixture
def client(loaded: Engine, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "d"}))) as c:
        yield c


def step(client: TestClient, cid: int, action: str, headers: dict[str, str], **payload: Any) -> Any:
    version = client.get(f"/cases/{cid}").json()["version"]
    return client.post(f"/cases/{cid}/actions/{action}", json={"version": version, "payload": payload}, headers=headers)


@pytest.fixture
def ours(client: TestClient, spot: tuple[float, float]) -> int:
    """A case dispatched to OURS (version 4)."""
    x, y = spot
    cid = client.post("/cases", json={"class_code": GARBAGE, "lon": x, "lat": y}, headers={"X-Role": "supervisor"})
    cid = cid.json()["id"]
    for action, role, payload in (
        ("verify", "supervisor", {}),
        ("file", "shift_lead", {}),
        ("dispatch", "dispatcher", {"department": OURS}),
    ):
        assert step(client, cid, action, {"X-Role": role}, **payload).status_code == 200
    return cid


def log_length(engine: Engine, cid: int) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM case_transitions WHERE case_id = :c"), {"c": cid}).scalar_one()


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("return", {"reason": "不属本部门"}),
        ("request_extension", {"reason": "需调机械", "amount": 2, "unit": "working_days"}),
    ],
)
def test_another_departments_staff_cannot_act_on_the_case(
    client: TestClient, loaded: Engine, ours: int, action: str, payload: dict[str, Any]
) -> None:
    before = log_length(loaded, ours)
    r = step(client, ours, action, {"X-Role": "department", "X-Department": THEIRS}, **payload)
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "role_not_allowed" and r.json()["reason"] == "other_department"
    assert r.json()["detail"]["items"] == [
        {
            "field": "X-Department",
            "reason": "not the case's department",
            "code": "other_department",
            "action": action,
            "department": THEIRS,
            "case_department": OURS,
        }
    ]
    assert r.json()["detail"]["message"].startswith(f"{action}: the case is with department {OURS}, not {THEIRS}")
    assert client.get(f"/cases/{ours}").json()["version"] == 4 and log_length(loaded, ours) == before
    done = step(client, ours, action, {"X-Role": "department", "X-Department": OURS}, **payload)
    assert done.status_code == 200, done.text


def test_the_department_role_must_say_its_department_and_a_known_one(client: TestClient, ours: int) -> None:
    r = step(client, ours, "return", {"X-Role": "department"}, reason="x")
    assert r.status_code == 422 and r.json()["reason"] == "missing"
    assert r.json()["detail"]["items"] == [
        {"field": "X-Department", "reason": "missing: the department role acts for one department", "code": "missing"}
    ]
    r = step(client, ours, "return", {"X-Role": "department", "X-Department": "nope"}, reason="x")
    assert r.status_code == 422 and r.json()["reason"] == "unknown_department"
    assert r.json()["detail"]["items"][0]["field"] == "X-Department"
    assert client.get(f"/cases/{ours}").json()["version"] == 4
    # other roles need no department; one a gateway sends anyway (an org unit's name) is not read
    assert step(client, ours, "supervise", {"X-Role": "leader"}, reason="督办", flagged=True).status_code == 200
    leader = {"X-Role": "leader", "X-Department": quote("指挥中心")}
    assert step(client, ours, "supervise", leader, reason="再督办", flagged=True).status_code == 200


def test_the_report_channels_name_every_role() -> None:
    assert set(case_intake.REPORT_SOURCES) == {None, *workflow.ROLES}
    assert all(set(channels) <= set(svc.SOURCES) for channels in case_intake.REPORT_SOURCES.values())


def test_a_case_shows_a_department_only_its_own_actions(client: TestClient, ours: int) -> None:
    mine = client.get(f"/cases/{ours}", headers={"X-Role": "department", "X-Department": OURS}).json()
    assert mine["allowed_actions"] == ["return", "handle", "request_extension"]
    theirs = client.get(f"/cases/{ours}", headers={"X-Role": "department", "X-Department": THEIRS}).json()
    assert theirs["allowed_actions"] == []
    listed = client.get("/cases", headers={"X-Role": "department", "X-Department": THEIRS}).json()["data"]
    assert [c["allowed_actions"] for c in listed if c["id"] == ours] == [[]]
    # without X-Department the department role could take no step (acting needs it): it is offered none, on the
    # detail, the list and the GeoJSON alike (review36: it was offered every department's)
    unstated = {"X-Role": "department"}
    assert client.get(f"/cases/{ours}", headers=unstated).json()["allowed_actions"] == []
    listed = client.get("/cases", headers=unstated).json()["data"]
    assert [c["allowed_actions"] for c in listed if c["id"] == ours] == [[]]
    features = client.get("/cases?format=geojson", headers=unstated).json()["features"]
    assert [f["properties"]["allowed_actions"] for f in features if f["properties"]["id"] == ours] == [[]]
    assert workflow.allowed_actions(workflow.CaseState(state="dispatched", department=OURS), "department", None) == [
        "return",
        "handle",
        "request_extension",
    ]  # the command line, trusted, names no department
    for path in (f"/cases/{ours}", "/cases"):  # a code no department has is named, not an empty action list
        r = client.get(path, headers={"X-Role": "department", "X-Department": "nope"})
        assert r.status_code == 422 and r.json()["reason"] == "unknown_department", path
        assert r.json()["detail"]["items"][0]["field"] == "X-Department"


def test_the_rule_is_the_workflows() -> None:
    case = workflow.CaseState(state="dispatched", department=OURS)
    workflow.check_department(case, "handle", "department", OURS)
    workflow.check_department(case, "handle", "department", None)  # not stated: the command line, trusted
    workflow.check_department(case, "escalate", "dispatcher", THEIRS)  # only the department role is bound
    with pytest.raises(workflow.RoleNotAllowed, match=f"the case is with department {OURS}, not {THEIRS}"):
        workflow.check_department(case, "handle", "department", THEIRS)
    assert workflow.allowed_actions(case, "department", THEIRS) == []
    assert workflow.allowed_actions(case, "department", OURS) == workflow.allowed_actions(case, "department")


def test_another_departments_retry_of_a_key_is_not_answered_as_the_step_taken(client: TestClient, ours: int) -> None:
    """review36 L4: a retry under a key is the same step only from the same department."""
    body = {"version": 4, "payload": {"reason": "不属本部门"}, "idempotency_key": "ret-1"}
    mine = {"X-Role": "department", "X-Department": OURS, "X-Actor": "li"}
    assert client.post(f"/cases/{ours}/actions/return", json=body, headers=mine).status_code == 200
    again = client.post(f"/cases/{ours}/actions/return", json=body, headers=mine)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    theirs = client.post(f"/cases/{ours}/actions/return", json=body, headers={**mine, "X-Department": THEIRS})
    assert theirs.status_code == 409 and theirs.json()["reason"] == "idempotency_key_reused"
    assert "Idempotent-Replayed" not in theirs.headers
