"""The API skeleton: /health, /docs, JSON errors."""

from __future__ import annotations

import socket

from fastapi.testclient import TestClient

from api.main import create_app
from gisgrid.settings import Settings
from gisgrid.storage import migrate


def test_health_reports_database_postgis_and_migration(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["database"]["reachable"] is True
    assert body["database"]["postgis_version"].startswith("3.")
    assert body["migration"] == {"current": migrate.head(), "head": migrate.head(), "up_to_date": True}


def test_health_is_503_with_a_reason_when_the_database_is_down(tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = Settings(database_url=f"postgresql://gisgrid@127.0.0.1:{port}/gisgrid", data_dir=tmp_path)
    with TestClient(create_app(dead)) as client:
        r = client.get("/health")
    assert r.status_code == 503
    assert r.json()["error"] == "database_unavailable"
    assert "cannot reach PostgreSQL" in r.json()["detail"]["database"]["detail"]


def test_openapi_docs_are_served(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.get("/docs").status_code == 200
        spec = client.get("/openapi.json").json()
    assert "/health" in spec["paths"]


def test_unknown_path_is_a_json_404(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        r = client.get("/no/such/thing")
    assert r.status_code == 404
    assert r.json() == {"error": "not_found", "detail": "Not Found"}


def test_home_page_is_chinese_first_and_links_the_docs(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in r.text and 'href="/docs"' in r.text
    assert "http://" not in r.text and "https://" not in r.text  # nothing off the origin


def test_health_warns_about_years_the_holiday_calendar_does_not_know(settings: Settings) -> None:
    from gisgrid.calendar import KNOWN_YEARS

    with TestClient(create_app(settings)) as client:
        cal = client.get("/health").json()["calendar"]
    assert cal["known_years"] == [KNOWN_YEARS.start, KNOWN_YEARS.stop - 1]
    last = KNOWN_YEARS.stop - 1
    import datetime as dt

    next_year = dt.date.today().year + 1
    if next_year > last:  # e.g. in late 2026 with a package that knows up to 2026
        assert next_year in cal["unknown_years"]
        assert any(f"does not know {next_year}" in w for w in cal["warnings"])
    else:
        assert cal["warnings"] == []
