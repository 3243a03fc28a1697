"""The channel (来源) of a report is the reporter's to name only within its role (review35 D3): the evaluation
credits public reports and supervisors' finds by it, so a report without a role (the public) cannot pass as a
supervisor's patrol or a leader's 交办. The command center's desk roles register reports of every channel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.main import create_app
from gisgrid import case_intake
from gisgrid import cases as svc
from gisgrid.settings import Settings
from gisgrid.workflow import RoleNotAllowed

GARBAGE = "06010"


@pytest.fixture
def client(loaded: Engine, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "d"}))) as c:
        yield c


def counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(text("SELECT count(*) FROM cases")).scalar_one(),
            conn.execute(text("SELECT count(*) FROM case_transitions")).scalar_one(),
        )


@pytest.mark.parametrize(
    ("role", "source"),
    [
        (None, "public_app"),
        ("supervisor", "patrol"),
        ("grid_worker", "patrol"),
        ("intake", "hotline"),
        ("shift_lead", "hotline"),
        ("dispatcher", "hotline"),
        ("department", "public_app"),
        ("leader", "leader"),
    ],
)
def test_a_report_without_a_source_takes_its_roles_channel(
    client: TestClient, loaded: Engine, spot: tuple[float, float], role: str | None, source: str
) -> None:
    x, y = spot
    headers = {"X-Role": role} if role else {}
    r = client.post("/cases", json={"class_code": GARBAGE, "lon": x, "lat": y}, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["source"] == source
    with loaded.connect() as conn:
        logged = conn.execute(text("SELECT role FROM case_transitions WHERE case_id = :c"), {"c": r.json()["id"]})
        assert logged.scalar_one() == (role or source)  # the public's report is logged under its channel


@pytest.mark.parametrize(
    ("role", "source"),
    [(None, "leader"), (None, "patrol"), (None, "hotline"), ("supervisor", "public_app"), ("leader", "patrol")],
)
def test_a_channel_the_role_may_not_name_is_refused_and_nothing_is_filed(
    client: TestClient, loaded: Engine, spot: tuple[float, float], role: str | None, source: str
) -> None:
    x, y = spot
    before = counts(loaded)
    headers = {"X-Role": role} if role else {}
    body = {"class_code": GARBAGE, "lon": x, "lat": y, "source": source}
    r = client.post("/cases", json=body, headers=headers)
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "role_not_allowed"
    assert r.json()["detail"]["items"] == [
        {
            "field": "source",
            "reason": "not a channel of this role",
            "code": "role_not_allowed",
            "role": role,
            "source": source,
            "allowed_sources": list(case_intake.REPORT_SOURCES[role]),
        }
    ]
    form = client.post("/cases/form", data={k: str(v) for k, v in body.items()}, headers=headers)
    assert form.status_code == 403, form.text
    assert form.json()["detail"] == r.json()["detail"]
    assert counts(loaded) == before


def test_the_desk_roles_register_every_channel(client: TestClient, spot: tuple[float, float]) -> None:
    x, y = spot
    for k, source in enumerate(svc.SOURCES):
        body = {"class_code": GARBAGE, "lon": x, "lat": y + k * 1e-5, "source": source}
        r = client.post("/cases", json=body, headers={"X-Role": "intake"})
        assert r.status_code == 201, r.text
        assert r.json()["source"] == source


def test_the_rule_is_the_domains_not_only_the_apis() -> None:
    assert case_intake.report_source(None, None) == "public_app"
    assert case_intake.report_source("intake", "leader") == "leader"
    with pytest.raises(RoleNotAllowed, match=r"source: leader \(领导交办\) is not a channel a report without X-Role"):
        case_intake.report_source(None, "leader")
    with pytest.raises(svc.InvalidInput, match="source: must be one of patrol, hotline"):
        case_intake.report_source("intake", "rumour")
