"""A city changes a node's time limit from a day on (``effective_from`` in a node file): nodes opened before that day
keep the limit they opened under — their deadline, their light and their judgement in the case detail and in the
monthly evaluation — so shortening 核实 from 2 to 1 working hour does not fail last month's verifications."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from gisgrid import case_actions, case_intake
from gisgrid import cases as svc
from gisgrid.errors import InvalidInput
from gisgrid.evaluation_service import indicators, parse_period
from gisgrid.events import NODE_COLUMNS, NODE_OPTIONAL_COLUMNS, load_event_catalogue
from gisgrid.settings import PROJECT_ROOT
from tests.test_events_catalogue import write_csv

DATA = PROJECT_ROOT / "data"
CHINA = ZoneInfo("Asia/Shanghai")
HEADER = NODE_COLUMNS + NODE_OPTIONAL_COLUMNS
GARBAGE = "06010"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=CHINA)


def changes_file(tmp_path: Path, rows: list[list[str]]) -> Path:
    return write_csv(tmp_path / "city_node_time_limits.csv", HEADER, rows)


@pytest.fixture
def changed(tmp_path: Path) -> Path:
    """核实 1 working hour (the base) → 2 from Wednesday 15 October 2025 → 0.5 from 1 December, its urgent limit
    0.25 calendar hours then; 派遣 changes once with no urgent limit of its own."""
    return changes_file(
        tmp_path,
        [
            ["verify", "核实", "2", "working_hours", "", "", "", "2025-10-15"],
            ["verify", "核实", "0.5", "working_hours", "", "0.25", "calendar_hours", "2025-12-01"],
            ["dispatch", "派遣", "1", "working_hours", "", "", "", "2025-12-01"],
        ],
    )


def test_the_limits_in_force_on_a_day_are_the_last_change_on_or_before_it(changed: Path) -> None:
    cat = load_event_catalogue(DATA, [changed])
    base = load_event_catalogue(DATA)
    assert cat.node_limits == base.node_limits and cat.node_limits["verify"] == (1.0, "working_hours")
    nodes, urgent = cat.node_limits_at(dt.date(2025, 10, 14))
    assert (nodes, urgent) == (base.node_limits, base.urgent_node_limits)
    nodes, urgent = cat.node_limits_at(dt.date(2025, 10, 15))
    assert nodes == base.node_limits | {"verify": (2.0, "working_hours")}
    assert "verify" not in urgent  # a change without an urgent limit: the node's own applies to urgent cases
    assert urgent == {k: v for k, v in base.urgent_node_limits.items() if k != "verify"}
    nodes, urgent = cat.node_limits_at(dt.date(2026, 3, 1))
    assert nodes == base.node_limits | {"verify": (0.5, "working_hours"), "dispatch": (1.0, "working_hours")}
    assert urgent["verify"] == (0.25, "calendar_hours") and "dispatch" not in urgent
    assert [v[0] for v in cat.limit_versions()] == [None, dt.date(2025, 10, 15), dt.date(2025, 12, 1)]


def test_a_change_row_that_cannot_be_read_is_refused_naming_it(tmp_path: Path) -> None:
    bad = changes_file(
        tmp_path,
        [
            ["verify", "核实", "2", "working_hours", "", "", "", "2025-13-01"],  # 2
            ["verify", "核实", "2", "working_hours", "", "", "", "from October"],  # 3
            ["verify", "核实", "2", "working_hours", "", "", "", "1800-01-01"],  # 4
            ["check", "核查", "2", "working_hours", "", "", "", "2025-10-15"],  # 5
            ["check", "核查", "3", "working_hours", "", "", "", "2025-10-15"],  # 6: the same node and day again
            ["check", "核查", "3", "working_hours", "", "", "", "2025-11-15"],  # 7: another day: fine
        ],
    )
    with pytest.raises(InvalidInput) as exc:
        load_event_catalogue(DATA, [bad])
    found = {(p["row"], p["field"]): (p["value"], p["reason"]) for p in exc.value.detail["problems"]}
    assert found == {
        (2, "effective_from"): ("2025-13-01", "not a date (YYYY-MM-DD, e.g. 2027-01-01)"),
        (3, "effective_from"): ("from October", "not a date (YYYY-MM-DD, e.g. 2027-01-01)"),
        (4, "effective_from"): ("1800-01-01", "outside the years 1900–2100"),
        (6, "node"): ("check/2025-10-15", "duplicate of row 5 in the same file"),
    }


@pytest.fixture
def city(services: svc.CaseServices, changed: Path) -> svc.CaseServices:
    return dataclasses.replace(services, events=load_event_catalogue(DATA, [changed]))


def test_a_node_is_due_by_the_limit_of_the_day_it_opened(
    loaded: Engine, city: svc.CaseServices, spot: tuple[float, float]
) -> None:
    def reported(when: str) -> dict:
        item = case_intake.Intake(class_code=GARBAGE, lon=spot[0], lat=spot[1], datum="cgcs2000")
        case_id, _ = case_intake.intake(loaded, city, item, now=at(when))
        with loaded.connect() as conn:
            return svc.get_case(conn, city, case_id)

    assert reported("2025-10-14T09:00:00")["due_at"] == "2025-10-14T10:00:00+08:00"  # the base 1 h
    assert reported("2025-10-15T09:00:00")["due_at"] == "2025-10-15T11:00:00+08:00"  # 2 h from that day
    assert reported("2025-12-01T09:00:00")["due_at"] == "2025-12-01T09:30:00+08:00"  # 0.5 h


def verified_after_90_minutes(engine: Engine, services: svc.CaseServices, point: tuple[float, float], day: str) -> int:
    item = case_intake.Intake(class_code=GARBAGE, lon=point[0], lat=point[1], datum="cgcs2000")
    case_id, _ = case_intake.intake(engine, services, item, now=at(f"{day}T09:00:00"))
    req = case_actions.ActionRequest(action="verify", role="supervisor", actor="监督员甲", version=1)
    case_actions.act(engine, services, case_id, req, now=at(f"{day}T10:30:00"))
    return case_id


def test_the_evaluation_and_the_case_detail_judge_a_node_by_the_limit_it_opened_under(
    loaded: Engine, services: svc.CaseServices, city: svc.CaseServices, spot: tuple[float, float]
) -> None:
    """Two verifications of 1.5 working hours each: on 14 October (limit 1 h) late, on 15 October (2 h) on time.
    Judged by the limit now in force (before this change) both counted late — or both on time."""
    before = verified_after_90_minutes(loaded, city, spot, "2025-10-14")
    after = verified_after_90_minutes(loaded, city, spot, "2025-10-15")
    with loaded.connect() as conn:
        judged = {cid: svc.get_case(conn, city, cid)["nodes"] for cid in (before, after)}
    verify = {cid: next(n for n in nodes if n["node"] == "verify") for cid, nodes in judged.items()}
    assert (verify[before]["limit_h"], verify[before]["on_time"]) == (1.0, False)
    assert (verify[after]["limit_h"], verify[after]["on_time"]) == (2.0, True)

    october = parse_period("2025-10")
    table = indicators(loaded, city, october, "region", "district", as_of="2025-11-01")
    assert table["on_time_verify_rate"].tolist() == [0.5]
    # Without the dated change (the base catalogue): both are judged by 1 h.
    assert indicators(loaded, services, october, "region", "district", as_of="2025-11-01")[
        "on_time_verify_rate"
    ].tolist() == [0.0]


def test_an_urgent_case_is_judged_by_the_urgent_limit_of_the_day_its_node_opened(
    loaded: Engine, city: svc.CaseServices, spot: tuple[float, float]
) -> None:
    """紧急 道路破损 verified 20 minutes after its report: the base urgent 核实 limit is half an hour round the clock;
    from 15 October the change has no urgent limit, so the node's own 2 working hours apply; from 1 December a
    quarter of an hour — late."""

    def verified(day: str) -> dict:
        item = case_intake.Intake(class_code="06013", disposal_type="紧急", lon=spot[0], lat=spot[1], datum="cgcs2000")
        case_id, _ = case_intake.intake(loaded, city, item, now=at(f"{day}T09:00:00"))
        req = case_actions.ActionRequest(action="verify", role="supervisor", actor="监督员甲", version=1)
        case_actions.act(loaded, city, case_id, req, now=at(f"{day}T09:20:00"))
        with loaded.connect() as conn:
            return next(n for n in svc.get_case(conn, city, case_id)["nodes"] if n["node"] == "verify")

    judged = {day: verified(day) for day in ("2025-10-14", "2025-10-15", "2025-12-01")}
    assert {d: (n["limit_h"], n["calendar_time"], n["on_time"]) for d, n in judged.items()} == {
        "2025-10-14": (0.5, True, True),
        "2025-10-15": (2.0, False, True),
        "2025-12-01": (0.25, True, False),
    }
