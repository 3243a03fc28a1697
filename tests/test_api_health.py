"""The API skeleton: /health, /docs, JSON errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.main import create_app
from gisgrid.settings import Settings
from gisgrid.storage import migrate
from tests.fixtures import host_port, load_small_district, outage_logged_not_sent


def test_health_reports_database_postgis_and_migration(loaded: Engine, settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        r = client.get("/health")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"  # a probe reads it fresh
    body = r.json()
    assert body["status"] == "ok" and "failing" not in body
    assert body["photo_store"] == {"writable": True}
    assert body["database"]["reachable"] is True
    # major versions only: /health answers anyone, the exact builds are the administrator's (review54 F9)
    with loaded.connect() as conn:
        exact = conn.execute(text("SELECT current_setting('server_version'), postgis_lib_version()")).one()
    server, postgis = exact[0].split(".")[0], ".".join(exact[1].split(".")[:2])
    assert body["database"] == {"reachable": True, "server_version": server, "postgis_version": postgis}
    assert postgis.startswith("3.") and server.isdigit() and exact[0] not in r.text and exact[1] not in r.text
    assert body["migration"] == {"current": migrate.head(), "head": migrate.head(), "up_to_date": True}


def test_health_is_503_when_the_database_is_down_its_reason_only_logged(
    unreachable_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gisgrid.api"), TestClient(create_app(unreachable_settings)) as c:
        r = c.get("/health")
    assert r.status_code == 503 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["error"] == "database_unavailable"
    assert body["detail"]["status"] == "unavailable" and body["detail"]["database"]["reachable"] is False
    line = outage_logged_not_sent(
        body, body["detail"]["database"]["detail"], caplog.records, host_port(unreachable_settings)
    )
    assert "cannot reach PostgreSQL at " in line


def test_openapi_docs_are_served(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.get("/docs").status_code == 200
        spec = client.get("/openapi.json").json()
    assert "/health" in spec["paths"]


def test_unknown_path_is_a_json_404(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        r = client.get("/no/such/thing")
    assert r.status_code == 404
    assert r.json() == {"error": "not_found", "reason": "not_found", "detail": "Not Found"}


def test_home_page_is_chinese_first_and_links_the_docs(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in r.text and 'href="/docs"' in r.text
    assert "http://" not in r.text and "https://" not in r.text  # nothing off the origin
    # headed by the city's 监督指挥中心 (GISGRID_CENTER_NAME, review55 F4), the default without it
    assert "<title>数字化城市管理监督指挥中心 · gisgrid 数字化城市管理</title>" in r.text
    assert "<h1>数字化城市管理监督指挥中心</h1>" in r.text
    city = settings.model_copy(update={"center_name": "新密市<数字化城市管理>监督指挥中心"})
    with TestClient(create_app(city)) as client:
        page = client.get("/").text
    assert "<title>新密市&lt;数字化城市管理&gt;监督指挥中心 · gisgrid 数字化城市管理</title>" in page
    assert "<h1>新密市&lt;数字化城市管理&gt;监督指挥中心</h1>" in page
    # a name holding the page's own placeholder is shown as written (review56 F7)
    braces = settings.model_copy(update={"center_name": "{base}中心"})
    with TestClient(create_app(braces), root_path="/gisgrid") as client:
        page = client.get("/").text
    assert "<h1>{base}中心</h1>" in page and 'href="/gisgrid/docs"' in page


def test_health_warns_about_years_the_holiday_calendar_does_not_know(settings: Settings) -> None:
    import datetime as dt
    from types import SimpleNamespace

    from api.routers.health import calendar_status
    from gisgrid.calendar import KNOWN_YEARS, unknown_year_text

    last = KNOWN_YEARS.stop - 1
    with TestClient(create_app(settings)) as client:
        plain = client.get("/health").json()["calendar"]
        assert plain["known_years"] == [KNOWN_YEARS.start, last]
        assert plain["file_years"] == [] and plain["partial_years"] == []  # no calendar file: the package only
        request = SimpleNamespace(app=client.app)
        # In the last known year, next year is unknown: a warning naming it, not a silent guess.
        late = calendar_status(request, today=dt.date(last, 11, 26))
        assert late["unknown_years"] == [last + 1]
        assert late["warnings"] == [unknown_year_text(last + 1)]  # the library's warning, word for word
        assert late["warnings"][0].endswith(
            "then run `gisgrid cases recompute-deadlines --year YYYY` to recompute the deadlines already stored"
        )
        # Two years earlier both this and next year are known: no warning.
        early = calendar_status(request, today=dt.date(last - 2, 6, 1))
        assert early["unknown_years"] == [] and early["warnings"] == []
    # A city that lists next year's arrangement (at least the 13 statutory days on weekdays) is warned no more;
    # one local day of that year is not its arrangement (review49 F3): still warned, naming what the file lists.
    city = settings.data_path / "calendar.csv"
    city.parent.mkdir(parents=True, exist_ok=True)
    city.write_text(f"date,kind\n{last + 1}-01-01,休息日\n", encoding="utf-8")
    with TestClient(create_app(settings.model_copy(update={"calendar_file": city}))) as client:
        partial = calendar_status(SimpleNamespace(app=client.app), today=dt.date(last, 11, 26))
        assert partial["unknown_years"] == [last + 1]
        # where each year comes from (review55 F8): the package's range; the file's year is partial, not known
        assert partial["known_years"] == [KNOWN_YEARS.start, last]
        assert partial["file_years"] == [] and partial["partial_years"] == [last + 1]
        weekday = int(dt.date(last + 1, 1, 1).weekday() < 5)
        assert partial["warnings"] == [unknown_year_text(last + 1, weekday)]
        assert f"GISGRID_CALENDAR_FILE lists {weekday} weekday rest day(s) of {last + 1}" in partial["warnings"][0]
    days = [dt.date(last + 1, 1, 1) + dt.timedelta(days=i) for i in range(40)]
    city.write_text("date,kind\n" + "".join(f"{d},休息日\n" for d in days if d.weekday() < 5), encoding="utf-8")
    with TestClient(create_app(settings.model_copy(update={"calendar_file": city}))) as client:
        listed = calendar_status(SimpleNamespace(app=client.app), today=dt.date(last, 11, 26))
        assert listed["unknown_years"] == [] and listed["warnings"] == []
        # /health says the year is known from the city's file, beside the package's range (review55 F8)
        body = client.get("/health").json()["calendar"]
        assert body["known_years"] == [KNOWN_YEARS.start, last]
        assert body["file_years"] == [last + 1] and body["partial_years"] == []


def test_an_empty_database_says_no_district_is_loaded(clean_db: Engine, settings: Settings, tmp_path: Path) -> None:
    """review41 U2: migrated, nothing imported — a report got outside_coverage with a datum/swap hint and /health
    said ok with no sign of it."""
    no_boundaries = {
        "message": "no district is loaded (no boundaries, no unit grids): run gisgrid boundaries import FILE first",
        "items": [{"field": None, "reason": "no boundaries loaded", "code": "no_boundaries"}],
    }
    with TestClient(create_app(settings)) as client:
        health = client.get("/health")
        # Reachable and migrated, but not ready: no report can be filed (review46 F2: it said 200 ok).
        assert health.status_code == 503 and health.json()["status"] == "not_ready"
        assert health.json()["failing"] == [
            {
                "check": "unit_grids",
                "message": "尚未导入辖区边界,上报将被拒绝(no_boundaries)/ no district is loaded: reports are refused "
                "until gisgrid boundaries import FILE",
            }
        ]
        assert client.get("/health/live").json() == {"status": "alive"}  # the process answers
        assert health.json()["coverage"] == {
            "districts": 0,
            "unit_grids_loaded": False,
            "warnings": [
                "尚未导入辖区边界,上报将被拒绝(no_boundaries)/ no district is loaded: reports are refused until "
                "gisgrid boundaries import FILE"
            ],
        }
        for path, kwargs in (
            ("/cases", {"json": {"class_code": "06010", "lon": 113.7, "lat": 34.76}}),
            ("/cases/form", {"data": {"class_code": "06010", "lon": "113.7", "lat": "34.76"}}),
        ):
            r = client.post(path, **kwargs)  # type: ignore[arg-type]
            assert (r.status_code, r.json()) == (
                422,
                {"error": "invalid_input", "reason": "no_boundaries", "detail": no_boundaries},
            ), path
        r = client.get("/grids/locate", params={"lon": 113.7, "lat": 34.76})
        assert (r.status_code, r.json()) == (
            404,
            {"error": "not_found", "reason": "no_boundaries", "detail": no_boundaries},
        )
        load_small_district(clean_db, tmp_path)
        health = client.get("/health")
        assert (health.status_code, health.json()["status"]) == (200, "ok")
        assert health.json()["coverage"] == {"districts": 1, "unit_grids_loaded": True, "warnings": []}
        r = client.post("/cases", json={"class_code": "06010", "lon": 116.4, "lat": 39.9})
        assert r.json()["reason"] == "outside_coverage"  # with grids loaded, a point outside is outside


def test_health_is_not_ready_while_the_photo_store_cannot_be_written(
    loaded: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review46 F2: a read-only photo mount answered 200 ok while every photo report failed. ``photos`` a file, not
    a folder (root ignores chmod); the probe's answer is reused for a few seconds."""
    from api.routers import health

    data = tmp_path / "data"
    clock = [1000.0]
    monkeypatch.setattr(health.time, "monotonic", lambda: clock[0])
    with TestClient(create_app(settings.model_copy(update={"data_dir": data}))) as client:
        assert client.get("/health").status_code == 200
        assert (data / "photos").is_dir() and list((data / "photos").iterdir()) == []  # the probe's file removed
        (data / "photos").rmdir()
        (data / "photos").write_bytes(b"not a folder")
        assert client.get("/health").status_code == 200  # the last probe, reused
        clock[0] += health.PHOTO_PROBE_SECONDS
        r = client.get("/health")
        message = (
            "照片存储不可写,带照片的上报和办理将被拒绝(photo_store_unavailable)/ the photo store "
            "(GISGRID_DATA_DIR/photos) cannot be written: Not a directory (ENOTDIR)"
        )
        assert (r.status_code, r.json()["status"], r.json()["failing"]) == (
            503,
            "not_ready",
            [{"check": "photo_store", "message": message}],
        )
        assert r.json()["photo_store"] == {"writable": False, "warnings": [message]}
        assert str(data) not in r.text  # the setting, not the server's path
        (data / "photos").unlink()
        clock[0] += health.PHOTO_PROBE_SECONDS
        assert client.get("/health").status_code == 200


def test_health_says_when_the_working_hours_differ_from_those_of_the_stored_deadlines(
    loaded: Engine, settings: Settings, tmp_path: Path
) -> None:
    """A field of the calendar section and a calendar warning — not a failure: the service stays ready."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from gisgrid import case_intake, deadline_hours
    from gisgrid import cases as svc
    from gisgrid.start_checks import check_stored_data
    from tests.test_components_store import inside_points

    seasonal = "05-01..09-30=08:00-12:00,14:30-18:00;10-01..04-30=08:30-12:00,13:30-17:30"
    services = svc.load_services(settings)
    svc.sync_reference_data(loaded, services)
    check_stored_data(loaded, services, settings)  # db up
    xs, ys = inside_points(1, seed=21)
    item = case_intake.Intake(class_code="06010", lon=float(xs[0]), lat=float(ys[0]), datum="cgcs2000")
    case_intake.intake(loaded, services, item, now=dt.datetime(2025, 7, 15, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    with TestClient(create_app(settings)) as client:
        same = client.get("/health").json()["calendar"]
    assert same["working_hours"] == {
        "in_force": "08:30-12:00,13:30-17:30",
        "recount_needed": False,
        "counted_under_other_hours": [],
    }
    assert not any("GISGRID_WORKING_HOURS" in w for w in same["warnings"])
    with TestClient(create_app(settings.model_copy(update={"working_hours": seasonal}))) as client:
        r = client.get("/health")
    body = r.json()
    assert r.status_code == 200 and body["status"] == "ok" and "failing" not in body
    assert body["calendar"]["working_hours"] == {
        "in_force": seasonal,
        "recount_needed": True,
        "counted_under_other_hours": [{"hours": "08:30-12:00,13:30-17:30", "open_cases": 1}],
    }
    change = deadline_hours.HoursChange((("08:30-12:00,13:30-17:30", 1),), seasonal)
    assert body["calendar"]["warnings"][-1] == deadline_hours.warning_text(change)
