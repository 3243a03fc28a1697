"""Out-of-range query values are refused by name, never a 500 (review24 #5): an ``offset`` past
``gisgrid.paging.MAX_OFFSET`` (past PostgreSQL's bigint it was a database error) and a period outside
``gisgrid.evaluation.PERIOD_YEARS`` (year 1 made the evaluation's previous period year 0)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from gisgrid.settings import Settings
from tests.fixtures import load_small_district, refusal_body

#: The zh-CN text of finite_number (messages_zh.csv): the CLI prints it before the English.
FINITE = "须为有限的数(不能是 NaN 或无穷大)"


@pytest.fixture
def client(clean_db: Engine, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    load_small_district(clean_db, tmp_path)
    with TestClient(create_app(settings)) as c:
        yield c


OFFSET_ITEM = {
    "field": "offset",
    "reason": "Input should be less than or equal to 10000000",
    "code": "less_than_equal",
    "limit": {"le": 10_000_000},
}


def test_an_offset_past_the_bound_is_a_422_naming_offset_and_the_bound_itself_is_answered(
    client: TestClient,
) -> None:
    for path in (
        "/cases?offset=99999999999999999999999",
        "/components?offset=9223372036854775808",
        "/grids?offset=9223372036854775808",
        "/cases?offset=10000001",
        "/components?offset=10000001",
        "/grids?offset=10000001",
    ):
        r = client.get(path)
        assert (r.status_code, r.json()) == (422, refusal_body([OFFSET_ITEM])), path
    for path in ("/cases", "/components", "/grids"):
        r = client.get(path, params={"offset": 10_000_000})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body.get("data", body.get("features")) == [], path


LIMIT_ITEM = {
    "field": "limit",
    "reason": "Input should be less than or equal to 5000",
    "code": "less_than_equal",
    "limit": {"le": 5000},
}


def test_a_limit_past_the_bound_is_a_422_naming_limit_and_the_bound_itself_is_answered(client: TestClient) -> None:
    # review25 P1: gisgrid.paging.MAX_LIMIT is 5000 rows a page, over HTTP as in the CLI.
    for path in ("/cases", "/components", "/grids"):
        r = client.get(path, params={"limit": 5001})
        assert (r.status_code, r.json()) == (422, refusal_body([LIMIT_ITEM])), path
        r = client.get(path, params={"limit": 5000})
        assert r.status_code == 200, (path, r.text)


def _years_refusal(given: str) -> dict:
    return {
        "error": "invalid_input",
        "reason": "out_of_range",
        "detail": {
            "message": f"period: {given!r} is outside the years 1900–2100 a period may cover",
            "items": [
                {
                    "field": "period",
                    "value": given,
                    "reason": "years 1900–2100",
                    "limit": {"ge": 1900, "le": 2100},
                    "code": "out_of_range",
                }
            ],
        },
    }


@pytest.mark.parametrize(
    ("path", "given"),
    [
        ("/evaluation?period=0001-01", "0001-01"),
        ("/evaluation?period=0001", "0001"),
        ("/evaluation?period=0001-01-01..9999-12-31", "0001-01-01..9999-12-31"),
        ("/evaluation?period=1899-12", "1899-12"),
        ("/evaluation?period=2101", "2101"),
        ("/evaluation?period=2100-12-01..2101-01-02", "2100-12-01..2101-01-02"),
        ("/risks/selective?period=0001-01", "0001-01"),
        ("/risks/overload?period=0001-01-01..9999-12-31", "0001-01-01..9999-12-31"),
    ],
)
def test_a_period_outside_the_years_is_a_422_naming_period_and_the_years(
    client: TestClient, path: str, given: str
) -> None:
    r = client.get(path)
    assert (r.status_code, r.json()) == (422, _years_refusal(given))


def test_the_evaluation_map_and_case_list_refuse_those_years_by_period(client: TestClient) -> None:
    message = "period: '0001-01-01..9999-12-31' is outside the years 1900–2100 a period may cover"
    r = client.get("/evaluation/map", params={"period": "0001-01-01..9999-12-31", "indicator": "score"})
    assert r.status_code == 422, r.text
    body = r.json()
    assert (body["reason"], body["detail"]["message"]) == ("out_of_range", message)
    assert body["detail"] == _years_refusal("0001-01-01..9999-12-31")["detail"]  # as /evaluation names it
    r = client.get("/cases", params={"period": "0001-01-01..9999-12-31", "limit": 1})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["detail"] == _years_refusal("0001-01-01..9999-12-31")["detail"]  # one refusal on every route


def test_the_widest_period_is_evaluated_with_its_previous_one(client: TestClient) -> None:
    """1900-01-01..2101-01-01: its previous period starts in 1698, still a date pandas holds — no 500."""
    message = "no cases were reported in 1900-01-01..2101-01-01"
    r = client.get("/evaluation", params={"period": "1900-01-01..2101-01-01", "level": "tier1"})
    body = r.json()
    # a period not yet ended is judged now; without a case it is the table of every street, none graded
    # (review49 F5: an empty period is a table, not a refusal)
    assert r.status_code == 200, r.text
    assert (body["provisional"], body["count"]) == (True, 2)
    assert {(row["reports"], row["grade"], row["ungraded_reason"]) for row in body["data"]} == {
        (0, "不参评", "本期无案件")
    }
    assert dt.datetime.fromisoformat(body["as_of"]).year >= 2026
    # 1900's local midnight printed at +08:00 as every instant, not the zone's LMT +08:05:43 (review54 F9)
    assert body["period"] == "1900-01-01T00:00:00+08:00/2101-01-01T00:00:00+08:00"
    item = {"field": "period", "reason": message, "value": "1900-01-01..2101-01-01", "code": "no_cases_in_period"}
    r = client.get("/risks/selective", params={"period": "1900-01-01..2101-01-01"})
    assert (r.status_code, r.json()) == (
        422,
        {
            "error": "invalid_input",
            "reason": "no_cases_in_period",
            "detail": {
                "message": f"period: {message}",
                "items": [item],
            },
        },
    )


@pytest.mark.parametrize(
    ("path", "params"), [("/evaluation", {}), ("/risks/overload", {}), ("/evaluation/map", {"indicator": "score"})]
)
def test_an_unreadable_period_is_named_by_its_parameter_on_every_evaluation_route(
    client: TestClient, path: str, params: dict[str, str]
) -> None:
    """review41 D7: /evaluation and /risks sent a plain-string detail without the field."""
    r = client.get(path, params={"period": "someday", **params})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["reason"] == "period_unreadable" and body["detail"]["message"].startswith("period: ")
    [item] = body["detail"]["items"]
    assert {k: item[k] for k in ("field", "value", "code")} == {
        "field": "period",
        "value": "someday",
        "code": "period_unreadable",
    }
    assert item["reason"].startswith("'someday' is not a month (2026-10)")


PERIOD_ROUTES = (
    ("/evaluation", {}),
    ("/evaluation/map", {"indicator": "score"}),
    ("/risks/selective", {}),
    ("/risks/overload", {}),
    ("/cases", {}),
    ("/cases/lights", {}),
)
REVERSED = "2026-11-29..2026-11-01"


def _period_refusal(given: str, reason: str, message: str, **extra: object) -> dict:
    """The body of a period refused with ``message`` (zh-CN first as the CLI prints it: the API's is the English
    half, the item's reason that without the field's name)."""
    english = message.split(" / ", 1)[-1]
    item = {"field": "period", "reason": english.removeprefix("period: "), "value": given, **extra, "code": reason}
    return {"error": "invalid_input", "reason": reason, "detail": {"message": english, "items": [item]}}


@pytest.mark.parametrize(("path", "params"), PERIOD_ROUTES)
@pytest.mark.parametrize(
    ("given", "body"),
    [
        (
            REVERSED,
            _period_refusal(
                REVERSED,
                "period_end_not_after_start",
                "period: end must be after start",
                start="2026-11-29 00:00:00+08:00",
                end="2026-11-01 00:00:00+08:00",
            ),
        ),
        (
            "2026-Q5",
            _period_refusal(
                "2026-Q5",
                "period_unreadable",
                "季度须为 1–4 / period: quarter must be 1–4, got 5",
                limit={"ge": 1, "le": 4},
            ),
        ),
        (
            "2025-W53",
            _period_refusal(
                "2025-W53",
                "period_unreadable",
                "周次须在 2025-W01…2025-W52 之间(2025 年只有 52 个 ISO 周) / period: 2025 has 52 ISO weeks "
                "(2025-W01…2025-W52), got week 53",
                limit={"ge": 1, "le": 52},
            ),
        ),
        (
            "2026-13",
            _period_refusal(
                "2026-13",
                "period_unreadable",
                "月份须为 1–12 / period: month must be 1–12, got 13",
                limit={"ge": 1, "le": 12},
            ),
        ),
    ],
)
def test_a_refused_period_has_one_body_on_every_route(
    client: TestClient, path: str, params: dict[str, str], given: str, body: dict
) -> None:
    """review42 D4: /evaluation, /evaluation/map and /risks gave ``items`` as an object ({"start", "end"},
    {"quarter": 5}) while /cases re-wrapped the same refusal as a list — now the parser's own list, unwrapped;
    U1: a month or week that does not exist says its range, not "is not a month (2026-10) …"."""
    r = client.get(path, params={"period": given, **params})
    assert (r.status_code, r.json()) == (422, body), path


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            "2026-W54",
            "周次须在 2026-W01…2026-W53 之间(2026 年只有 53 个 ISO 周) / period: 2026 has 53 ISO weeks "
            "(2026-W01…2026-W53), got week 54",
        ),
        (
            "2026-W00",
            "周次须在 2026-W01…2026-W53 之间(2026 年只有 53 个 ISO 周) / period: 2026 has 53 ISO weeks "
            "(2026-W01…2026-W53), got week 0",
        ),
        ("2026-00", "月份须为 1–12 / period: month must be 1–12, got 0"),
        ("2026-13..2027-01", "月份须为 1–12 / period: month must be 1–12, got 13"),  # a range's named end
    ],
)
def test_a_period_that_does_not_exist_says_its_range(client: TestClient, given: str, message: str) -> None:
    """review42 U1: well-formed but impossible, so the format message (naming the format used) was wrong."""
    r = client.get("/evaluation", params={"period": given}, headers={"Accept-Language": "zh-CN"})
    assert r.status_code == 422, r.text
    body = r.json()
    zh, english = message.split(" / ", 1)
    assert (body["reason"], body["detail"]["message"]) == ("period_unreadable", english)
    assert body["message_zh"] == zh  # the Chinese in message_zh, the English in message, as every refusal
    assert [i["value"] for i in body["detail"]["items"]] == [given]


def test_the_risks_say_the_period_as_it_was_written(client: TestClient) -> None:
    """Its label was ``1-01`` for 0001-01, an ISO interval for a range."""
    for given in ("2026-10", "2026-10-01..2026-11-01", "2026-10..2026-12"):
        r = client.get("/risks/escalation", params={"period": given})
        assert r.status_code == 422, r.text
        assert r.json()["detail"]["message"] == f"period: no cases were reported in {given}"
        assert r.json()["reason"] == "no_cases_in_period"


def test_the_cli_refuses_those_years_in_one_line(tmp_path: Path) -> None:
    """``gisgrid evaluate --period 0001-01`` ended in a traceback; refused before any database is needed."""
    env = {
        **os.environ,
        "GISGRID_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "GISGRID_DATA_DIR": str(tmp_path),
    }
    for args, given in (
        (["evaluate", "--period", "0001-01"], "0001-01"),
        (["evaluate", "--period", "0001-01-01..9999-12-31", "--subject", "supervisor"], "0001-01-01..9999-12-31"),
        (["cases", "list", "--period", "0001"], "0001"),
    ):
        r = subprocess.run([sys.executable, "-m", "gisgrid", *args], capture_output=True, text=True, env=env)
        stderr = f"error: 超出允许范围 / period: {given!r} is outside the years 1900–2100 a period may cover\n"
        assert (r.returncode, r.stderr, r.stdout) == (1, stderr, ""), args
    for args in (["cases", "list", "--offset", "10000001"], ["components", "list", "--offset", "10000001"]):
        r = subprocess.run([sys.executable, "-m", "gisgrid", *args], capture_output=True, text=True, env=env)
        stderr = "error: --offset: must be between 0 and 10000000, got 10000001\n"
        assert (r.returncode, r.stderr, r.stdout) == (1, stderr, ""), args


def test_the_cli_says_a_lon_or_lat_that_is_no_number_is_not_a_finite_number(tmp_path: Path) -> None:
    """``--lon nan`` was "outside ±180°": it is the API's finite_number, said zh-CN first, before any database."""
    env = {
        **os.environ,
        "GISGRID_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "GISGRID_DATA_DIR": str(tmp_path),
    }
    point = ["--lon", "113.6", "--lat", "34.7"]
    for args, option, given in (
        (["components", "list", *point, "--radius", "10", "--lon", "nan"], "--lon", "nan"),
        (["components", "list", *point, "--radius", "10", "--lat", "-inf"], "--lat", "-inf"),
        (["cases", "report", "--class", "06010", *point, "--lat", "inf"], "--lat", "inf"),
    ):
        r = subprocess.run([sys.executable, "-m", "gisgrid", *args], capture_output=True, text=True, env=env)
        stderr = f"error: {FINITE} / {option}: {given} is not a finite number\n"
        assert (r.returncode, r.stderr, r.stdout) == (1, stderr, ""), args
    r = subprocess.run(
        [sys.executable, "-m", "gisgrid", "components", "list", "--lon", "200", "--lat", "34.7"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert (r.returncode, r.stderr, r.stdout) == (1, "error: 超出允许范围 / --lon: 200.0 is outside ±180°\n", "")


def test_a_period_with_an_offset_beyond_pg_s_is_the_same_instant_in_china_time(client: TestClient) -> None:
    """review54 F6: +20:00 in a range was a 500 (PostgreSQL refuses offsets beyond ±15:59); it is read as the same
    instant in the city's zone, on /evaluation as on /cases."""
    r = client.get("/evaluation", params={"period": "2026-11-01T00:00+20:00..2026-11-20T00:00", "level": "tier1"})
    assert r.status_code == 200, r.text
    assert r.json()["period"] == "2026-10-31T12:00:00+08:00/2026-11-20T00:00:00+08:00"
    r = client.get("/cases", params={"period": "2026-11-01T00:00-20:00..2026-11-20T00:00+23:59"})
    assert (r.status_code, r.json()["data"]) == (200, []), r.text
