"""A report's location accuracy (review45 D3): ``accuracy_m`` — a phone's GPS fix radius — is taken on POST /cases
and /cases/form, stored with the case as sent (also above the photos' 50 m limit: the field page asks first, and
an API client may know no better), answered by GET /cases/{id}; a value that is no radius is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.main import create_app
from gisgrid import case_intake
from gisgrid.settings import Settings

GARBAGE = "06010"
WORKER = {"X-Role": "grid_worker", "X-Actor": "acc-test"}


@pytest.fixture
def client(loaded: Engine, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "d"}))) as c:
        yield c


def stored(loaded: Engine, case_id: int) -> object:
    with loaded.connect() as conn:
        return conn.execute(text("SELECT accuracy_m FROM cases WHERE id = :id"), {"id": case_id}).scalar_one()


def test_a_reports_accuracy_is_stored_and_shown(client: TestClient, loaded: Engine, spot: tuple[float, float]) -> None:
    x, y = spot
    coarse = client.post(
        "/cases", json={"class_code": GARBAGE, "lon": x, "lat": y, "accuracy_m": 812.5}, headers=WORKER
    )
    assert coarse.status_code == 201, coarse.text
    assert coarse.json()["accuracy_m"] == 812.5  # above MAX_GPS_ERROR_M: accepted as sent
    assert stored(loaded, coarse.json()["id"]) == 812.5
    assert client.get(f"/cases/{coarse.json()['id']}").json()["accuracy_m"] == 812.5
    whole = client.post("/cases", json={"class_code": GARBAGE, "lon": x, "lat": y, "accuracy_m": 12}, headers=WORKER)
    assert whole.status_code == 201 and whole.json()["accuracy_m"] == 12.0
    form = client.post(
        "/cases/form",
        data={"class_code": GARBAGE, "lon": str(x), "lat": str(y), "accuracy_m": "7.25"},
        headers=WORKER,
    )
    assert form.status_code == 201, form.text
    assert client.get(f"/cases/{form.json()['id']}").json()["accuracy_m"] == 7.25
    assert stored(loaded, form.json()["id"]) == 7.25
    none = client.post("/cases", json={"class_code": GARBAGE, "lon": x, "lat": y}, headers=WORKER)
    assert none.json()["accuracy_m"] is None and stored(loaded, none.json()["id"]) is None
    listed = {c["id"]: c["accuracy_m"] for c in client.get("/cases").json()["data"]}
    assert listed[coarse.json()["id"]] == 812.5 and listed[none.json()["id"]] is None


def test_the_accuracy_is_part_of_a_keyed_report(client: TestClient, spot: tuple[float, float]) -> None:
    x, y = spot
    body = {"class_code": GARBAGE, "lon": x, "lat": y, "accuracy_m": 30.0, "idempotency_key": "acc-1"}
    first = client.post("/cases", json=body, headers=WORKER)
    again = client.post("/cases", json=body, headers=WORKER)
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    other = client.post("/cases", json={**body, "accuracy_m": 900.0}, headers=WORKER)
    assert (other.status_code, other.json()["reason"]) == (409, "idempotency_key_reused")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (0, "not_positive"),
        (-5.0, "not_positive"),
        (case_intake.MAX_ACCURACY_M + 1, "out_of_range"),
        ("nan", "out_of_range"),
        ("inf", "out_of_range"),
    ],
)
def test_a_bad_accuracy_is_refused_and_nothing_filed(
    client: TestClient, loaded: Engine, spot: tuple[float, float], value: object, reason: str
) -> None:
    x, y = spot
    refused = client.post(
        "/cases/form",
        data={"class_code": GARBAGE, "lon": str(x), "lat": str(y), "accuracy_m": str(value)},
        headers=WORKER,
    )
    assert (refused.status_code, refused.json()["reason"]) == (422, reason), refused.text
    assert [d["field"] for d in refused.json()["detail"]["items"]] == ["accuracy_m"]
    if not isinstance(value, str):  # JSON has no NaN/Infinity
        as_json = client.post(
            "/cases", json={"class_code": GARBAGE, "lon": x, "lat": y, "accuracy_m": value}, headers=WORKER
        )
        assert (as_json.status_code, as_json.json()["reason"]) == (422, reason)
    not_a_number = client.post(
        "/cases", json={"class_code": GARBAGE, "lon": x, "lat": y, "accuracy_m": "800"}, headers=WORKER
    )
    assert not_a_number.status_code == 422
    assert [(d["field"], d["code"]) for d in not_a_number.json()["detail"]["items"]] == [("accuracy_m", "float_type")]
    with loaded.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cases")).scalar_one() == 0
