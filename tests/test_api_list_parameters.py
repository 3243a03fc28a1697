"""GET /components and GET /grids refuse a query parameter they do not take (review11 D7): a misspelt filter
(``radius`` for ``radius_m``, the CLI's ``class`` for ``class_code``) is a 422 naming it, not the whole registry.
Every route refuses a parameter it takes given twice (review29 D2): the framework kept the last value only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.main import create_app
from gisgrid.settings import Settings
from tests.fixtures import acting, load_small_district


@pytest.fixture
def client(clean_db: Engine, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    load_small_district(clean_db, tmp_path)
    with TestClient(create_app(settings)) as c:
        yield c


def refused(client: TestClient, path: str, **params: Any) -> dict[str, Any]:
    r = client.get(path, params=params)
    assert r.status_code == 422, r.text
    return r.json()


def test_components_list_refuses_unknown_parameters(client: TestClient) -> None:
    body = refused(client, "/components", lon=113.7039, lat=34.7611, radius=100)
    assert body["error"] == "invalid_input"
    assert body["detail"]["message"].startswith("radius: not a parameter of /components; it takes ")
    assert "radius_m" in body["detail"]["message"]
    assert body["detail"]["items"] == [{"field": "radius", "reason": "unknown parameter", "code": "extra_forbidden"}]
    body = refused(client, "/components", lon=113.7039, lat=34.7611, nearest=3, **{"class": "01037"})
    assert body["detail"]["items"] == [{"field": "class", "reason": "unknown parameter", "code": "extra_forbidden"}]
    ok = client.get("/components", params={"lon": 113.7039, "lat": 34.7611, "radius_m": 100, "class_code": "01037"})
    assert ok.status_code == 200 and ok.json()["numberMatched"] == 0


def test_grids_list_refuses_unknown_parameters(client: TestClient) -> None:
    body = refused(client, "/grids", tier="unit", level=3)
    assert body["detail"]["items"] == [{"field": "level", "reason": "unknown parameter", "code": "extra_forbidden"}]
    assert client.get("/grids", params={"tier": "3", "limit": 2}).status_code == 200


@pytest.mark.parametrize(
    ("path", "params", "unknown"),
    [
        ("/grids/locate", {"lon": 113.7039, "lat": 34.7611, "datum": "cgcs2000", "crs": "4326"}, "crs"),
        ("/evaluation", {"period": "2026-10", "subject": "region", "asof": "2026-11-01"}, "asof"),
        ("/evaluation/map", {"period": "2026-10", "indicator": "score", "level": "tier3", "asof": "x"}, "asof"),
        ("/risks/selective", {"period": "2026-10", "asof": "x"}, "asof"),
    ],
)
def test_the_evaluation_and_locate_refuse_a_misspelt_parameter(
    client: TestClient, path: str, params: dict[str, Any], unknown: str
) -> None:
    """``asof`` for ``as_of`` would silently judge the month as of now (verify11 N4)."""
    body = refused(client, path, **params)
    assert body["detail"]["items"] == [{"field": unknown, "reason": "unknown parameter", "code": "extra_forbidden"}]


def repeated(field: str, times: int, how: str, reason: str) -> dict[str, Any]:
    return {
        "error": "invalid_input",
        "reason": "repeated_parameter",
        "detail": {
            "message": f"{field}: given {times} times; {how}",
            "items": [{"field": field, "reason": reason, "code": "repeated_parameter"}],
        },
    }


LIST_STATE = "send it once, several values comma-separated (state=reported,filed)"
COMMA_REASON = "given 2 times; several values go comma-separated in one"


@pytest.mark.parametrize(
    ("path", "query", "body"),
    [
        ("/cases", "state=reported&state=filed", repeated("state", 2, LIST_STATE, COMMA_REASON)),
        ("/cases/lights", "state=reported&state=filed", repeated("state", 2, LIST_STATE, COMMA_REASON)),
        ("/cases/heat", "state=reported&state=filed", repeated("state", 2, LIST_STATE, COMMA_REASON)),
        ("/cases", "limit=1&limit=2", repeated("limit", 2, "send it once", "given 2 times")),
        ("/cases", "source=patrol&source=hotline&source=app", repeated("source", 3, "send it once", "given 3 times")),
        ("/components", "status=破损&status=完好", repeated("status", 2, "send it once", "given 2 times")),
        ("/grids", "tier=1&tier=3", repeated("tier", 2, "send it once", "given 2 times")),
        ("/grids/locate", "lon=113.70&lon=113.71&lat=34.76", repeated("lon", 2, "send it once", "given 2 times")),
        ("/evaluation", "period=2026-10&period=2026-11", repeated("period", 2, "send it once", "given 2 times")),
    ],
)
def test_a_repeated_parameter_is_a_422_naming_it_not_its_last_value(
    client: TestClient, path: str, query: str, body: dict[str, Any]
) -> None:
    """review29 D2: ``state=reported&state=filed`` listed the filed cases alone, with 200 — the framework keeps
    the last value; many clients (``requests`` with a list) send a list that way."""
    r = client.get(f"{path}?{query}")
    assert (r.status_code, r.json()) == (422, body)


def test_every_repeated_parameter_is_listed_and_the_comma_form_is_taken(client: TestClient) -> None:
    r = client.get("/cases?limit=1&state=reported&limit=2&state=filed")
    assert r.status_code == 422
    assert r.json()["detail"]["items"] == [
        {"field": "limit", "reason": "given 2 times", "code": "repeated_parameter"},
        {"field": "state", "reason": COMMA_REASON, "code": "repeated_parameter"},
    ]
    assert client.get("/cases?state=reported,filed&limit=1").status_code == 200
    # A parameter the route does not take is refused as unknown, however often it is given.
    r = client.get("/cases?stat=a&stat=b")
    assert r.json()["reason"] == "extra_forbidden"
    assert r.json()["detail"]["items"] == [{"field": "stat", "reason": "unknown parameter", "code": "extra_forbidden"}]


def test_the_openapi_document_marks_the_comma_separated_parameter(client: TestClient) -> None:
    params = client.get("/openapi.json").json()["paths"]["/cases"]["get"]["parameters"]
    state = next(p for p in params if p["name"] == "state")
    assert state["schema"]["x-comma-separated"] is True
    limit = next(p for p in params if p["name"] == "limit")
    assert "x-comma-separated" not in limit["schema"]


def test_a_single_record_or_photo_refuses_an_unknown_parameter(client: TestClient, spot: tuple[float, float]) -> None:
    """review41 D6: ``/cases/{id}?dataum=gcj02`` answered 200 in CGCS2000 (≈600 m off on an AMap basemap), and
    ``?sise=thumb`` sent the original photo."""
    x, y = spot
    case = client.post("/cases", json={"class_code": "06010", "lon": x, "lat": y, "datum": "cgcs2000"})
    cid = case.json()["id"]
    body = refused(client, f"/cases/{cid}", dataum="gcj02")
    assert body["reason"] == "extra_forbidden"
    assert body["detail"] == {
        "message": f"dataum: not a parameter of /cases/{cid}; it takes datum",
        "items": [{"field": "dataum", "reason": "unknown parameter", "code": "extra_forbidden"}],
    }
    assert client.get(f"/cases/{cid}", params={"datum": "gcj02"}).json()["datum"] == "gcj02"
    body = refused(client, f"/cases/{cid}/photos/{'0' * 64}", sise="thumb")
    assert body["detail"]["message"] == f"sise: not a parameter of /cases/{cid}/photos/{'0' * 64}; it takes size"
    assert client.get(f"/cases/{cid}/photos/{'0' * 64}", params={"size": "thumb"}).status_code == 404
    body = refused(client, "/components/C1/history", datum="gcj02")  # it takes none
    assert body["detail"]["message"] == "datum: not a parameter of /components/C1/history; it takes none"
    assert client.get("/components/C1/history").status_code == 404
    body = refused(client, "/components/C1", dataum="gcj02")  # it takes datum, as /cases/{id} (review47 F2)
    assert body["detail"]["message"] == "dataum: not a parameter of /components/C1; it takes datum"
    assert client.get("/components/C1", params={"datum": "gcj02"}).status_code == 404
    body = refused(client, f"/components/C1/photos/{'0' * 64}", sise="thumb")
    assert body["detail"]["items"] == [{"field": "sise", "reason": "unknown parameter", "code": "extra_forbidden"}]
    body = refused(client, "/field/classes", schema="cjt214")
    assert body["detail"]["items"] == [{"field": "schema", "reason": "unknown parameter", "code": "extra_forbidden"}]
    assert client.get("/field/classes", params={"scheme": "cjt214"}).status_code == 200


def test_every_api_route_with_query_parameters_refuses_unknown_ones() -> None:
    """A route added later gets the check too. The pages (/field) take what a shared link carries (a messenger adds
    from=singlemessage), tiles a cache-buster: they are left out."""
    from api.dependencies import known_query_only, route_query_params
    from api.routers import cases, components, console, docs, evaluation, field, grids, health, home, tiles

    def has(dependant: Any) -> bool:
        return any(d.call is known_query_only or has(d) for d in dependant.dependencies)

    missing = [
        route.path
        for module in (cases, components, console, docs, evaluation, field, grids, health, home, tiles)
        for route in module.router.routes
        if "GET" in getattr(route, "methods", ()) and route_query_params(route) and not has(route.dependant)
    ]
    assert missing == ["/field"]


def _rows(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _refused_write(r: Any, message: str, items: list[dict[str, str]]) -> None:
    assert (r.status_code, r.json()) == (
        422,
        {
            "error": "invalid_input",
            "reason": "extra_forbidden",
            "detail": {"message": message, "items": [{**item, "code": "extra_forbidden"} for item in items]},
        },
    )


def test_a_report_refuses_a_query_parameter_and_writes_nothing(
    client: TestClient, clean_db: Engine, spot: tuple[float, float]
) -> None:
    """review42 D1: ``POST /cases?datum=gcj02`` was 201 with the point read as CGCS2000 (~570 m off, another street's
    routing): the query of a write was ignored."""
    x, y = spot
    report = {"class_code": "06010", "lon": x, "lat": y}
    before = _rows(clean_db, "cases")
    _refused_write(
        client.post("/cases?datum=gcj02", json=report),
        "datum: not a query parameter of POST /cases; it takes none; datum is a body field: send it in the body",
        [{"field": "datum", "reason": "a body field, not a query parameter"}],
    )
    _refused_write(
        client.post("/cases/form?datum=gcj02&dataum=x", data={k: str(v) for k, v in report.items()}),
        "dataum: not a query parameter of POST /cases/form; it takes none",
        [
            {"field": "dataum", "reason": "unknown parameter"},
            {"field": "datum", "reason": "a body field, not a query parameter"},
        ],
    )
    assert _rows(clean_db, "cases") == before
    # The same reports with datum in the body are taken (nothing else about them was refused).
    assert client.post("/cases", json={**report, "datum": "gcj02"}).status_code == 201
    form = {**{k: str(v) for k, v in report.items()}, "datum": "gcj02"}
    assert client.post("/cases/form", data=form).status_code == 201
    assert _rows(clean_db, "cases") == before + 2


def test_an_action_and_a_component_write_refuse_a_query_parameter(
    client: TestClient, clean_db: Engine, spot: tuple[float, float]
) -> None:
    x, y = spot
    cid = client.post("/cases", json={"class_code": "06010", "lon": x, "lat": y, "datum": "cgcs2000"}).json()["id"]
    path = f"/cases/{cid}/actions/verify"
    _refused_write(
        client.post(f"{path}?note=x", json={"version": 1}, headers=acting(client, cid, "supervisor")),
        f"note: not a query parameter of POST {path}; it takes none; note is a body field: send it in the body",
        [{"field": "note", "reason": "a body field, not a query parameter"}],
    )
    case = client.get(f"/cases/{cid}").json()
    assert (case["state"], case["version"]) == ("reported", 1)  # not verified
    who = {"X-Actor": "li", "X-Role": "data_admin"}
    lamp = {"class_code": "01037", "lon": x, "lat": y}
    components = _rows(clean_db, "components")
    _refused_write(
        client.post("/components?datum=gcj02", json=lamp, headers=who),
        "datum: not a query parameter of POST /components; it takes none; datum is a body field: send it in the body",
        [{"field": "datum", "reason": "a body field, not a query parameter"}],
    )
    _refused_write(
        client.patch("/components/C1?version=1", json={"status": "破损"}, headers=who),
        "version: not a query parameter of PATCH /components/C1; it takes none; version is a body field: send it in "
        "the body",
        [{"field": "version", "reason": "a body field, not a query parameter"}],
    )
    assert _rows(clean_db, "components") == components
    assert client.post("/components", json={**lamp, "datum": "gcj02"}, headers=who).status_code == 201


def test_no_write_route_takes_a_query_parameter_and_every_one_refuses_them(client: TestClient) -> None:
    """The guard is the whole app's: a write route added later refuses too, before its path, identity or body is
    looked at. No write route takes a query parameter today — one that did would be listed here."""
    from api.dependencies import route_query_params
    from api.routers import cases, components, console, docs, evaluation, field, grids, health, home, tiles

    writes = [
        route
        for module in (cases, components, console, docs, evaluation, field, grids, health, home, tiles)
        for route in module.router.routes
        if "GET" not in getattr(route, "methods", ("GET",))
    ]
    assert len(writes) == 9
    assert {r.path: route_query_params(r) for r in writes if route_query_params(r)} == {}
    for route in writes:
        (method,) = route.methods
        path = route.path_format.replace("{case_id}", "1").replace("{action}", "verify")
        path = path.replace("{component_id}", "C1")
        r = client.request(method, f"{path}?zz=1")
        assert r.status_code == 422 and r.json()["reason"] == "extra_forbidden", (path, r.text)
        assert r.json()["detail"]["message"] == f"zz: not a query parameter of {method} {path}; it takes none"


@pytest.mark.parametrize(
    ("path", "name", "sent", "fixed"),
    [
        ("/cases", "changed_since", "2026-11-29T16:17:00+08:00", "2026-11-29T16:17:00%2B08:00"),
        ("/cases/lights", "since", "2026-11-01T00:00+0800", "2026-11-01T00:00%2B0800"),
        ("/evaluation", "as_of", "2026-11-15T18:00:00.5+08", "2026-11-15T18:00:00.5%2B08"),
    ],
)
def test_an_unencoded_plus_in_a_time_says_to_send_percent_2b(
    client: TestClient, path: str, name: str, sent: str, fixed: str
) -> None:
    """review41 U5: the '+' of a URL's query arrives as a space; it was 422 "unexpected extra characters" with no
    hint."""
    as_space = sent.replace("+", " ")
    extra = "period=2026-10&" if path == "/evaluation" else ""
    r = client.get(f"{path}?{extra}{name}={sent}")  # the '+' as a client leaves it in the URL
    assert (r.status_code, r.json()) == (
        422,
        {
            "error": "invalid_input",
            "reason": "datetime_parsing",
            "detail": {
                "message": f"{name}: {as_space!r} — a '+' sent unencoded in a URL arrives as a "
                f"space; send the offset's + as %2B ({name}={fixed})",
                "items": [
                    {
                        "field": name,
                        "reason": "'+' of the UTC offset arrived as a space: send it as %2B",
                        "code": "datetime_parsing",
                    }
                ],
            },
        },
    )
    if path != "/evaluation":
        assert client.get(f"{path}?{name}={fixed}").status_code == 200
