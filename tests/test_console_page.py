"""GET /console: the zh-CN operator map page renders small, links only its own origin, and its API calls work."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from gisgrid import workflow
from maps import assets, tiles_sql
from maps import console as page
from tests.test_components_store import inside_points

MAX_BYTES = 200 * 1024


@pytest.fixture
def client(page_client: TestClient) -> TestClient:
    return page_client


def test_console_renders_small_zh_cn_and_offline(client: TestClient) -> None:
    r = client.get("/console")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert len(r.content) <= MAX_BYTES
    assets.assert_no_external(html)
    assert '<html lang="zh-CN">' in html and "<title>gisgrid 指挥中心地图</title>" in html
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    # every script and stylesheet comes from this app
    urls = re.findall(r"""<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)\"""", html)
    assert len(urls) >= 12
    for url in urls:
        assert url.startswith("/static/vendor/"), url
        got = client.get(url)
        assert got.status_code == 200, url


def test_console_layers_match_the_tile_layers(client: TestClient) -> None:
    html = client.get("/console").text
    for layer in ("unit_grids", "tier1", "tier2", "tier3", "component_cells", "components"):
        assert layer in tiles_sql.LAYERS
        assert f"'/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt'" in html
        assert f"vectorTileLayerStyles: {{ {layer}:" in html  # the MVT layer name ST_AsMVT gives
    assert "L.realtime(" in html and '"interval": 10000' in html and '"removeMissing": true' in html
    assert 'format: "geojson", limit: String(C.casesLimit)' in html and '"casesLimit": 1000' in html
    assert "L.control.layers(" in html
    assert "/cases/lights" in html and "/grids/locate" in html and "/actions/" in html
    # zh-CN vocabulary for the panel: roles, states, action labels
    for label in ("派遣员", "值班长", "立案", "红灯", "绿灯", "黄灯"):
        assert label in html
    for label in ("单元网格", "一级网格(街道)", "城市部件", "案件热力图(按筛选时段)", "案件(实时)"):  # layer control
        assert json.dumps(label)[1:-1] in html  # (JSON-escaped)
    # components by zoom: counts per grid 13–15, point tiles at 16, clustered points from 17
    assert "minZoom: 13" in html and "maxZoom: 15" in html and "L.markerClusterGroup(" in html
    assert '"clusterMinZoom": 17' in html and "L.heatLayer(" in html and "/cases/heat?" in html
    # the district is fitted before any layer exists, with an explicit min zoom (see _FitNow)
    assert html.index("fitBounds(") < html.index("L.vectorGrid.protobuf(") and '"minZoom": 5' in html
    for name in ("department", "grid", "since", "until"):  # panel filters
        assert f'name="{name}"' in html
    # 综合评价专题图: indicators of the region table, drawn from /evaluation/map
    assert "/evaluation/map?" in html and 'id="gg-eval-form"' in html
    assert '<option value="on_time_disposal_rate" selected>按期处置率</option>' in html


def test_heat_counts_the_filtered_cases_of_the_period(client: TestClient) -> None:
    xs, ys = inside_points(3, seed=11)
    for x, y, cls in zip(xs, ys, ("06010", "06010", "01037"), strict=True):
        made = client.post(
            "/cases",
            json={"class_code": cls, "lon": float(x), "lat": float(y), "datum": "cgcs2000"},
            headers={"X-Role": "supervisor"},
        )
        assert made.status_code == 201, made.text
    heat = client.get("/cases/heat").json()
    assert heat["cases"] == 3 and sum(p[2] for p in heat["points"]) == 3
    lat, lon, _ = heat["points"][0]
    assert min(abs(lat - y) + abs(lon - x) for x, y in zip(xs, ys, strict=True)) < 1e-3
    assert client.get("/cases/heat", params={"class_code": "06010"}).json()["cases"] == 2
    assert client.get("/cases/heat", params={"since": "2099-01-01T00:00:00+08:00"}).json() == {
        "cell_deg": 0.0005,
        "cases": 0,
        "points": [],
    }
    bad = client.get("/cases/heat", params={"since": "2026-02-01T00:00:00+08:00", "until": "2026-01-01T00:00:00+08:00"})
    assert bad.status_code == 422 and bad.json()["detail"]["items"] == [{"field": "until"}]
    assert bad.json()["detail"]["message"] == "until: must be after since"
    assert client.get("/cases/heat", params={"since": "yesterday"}).status_code == 422


def test_the_panel_endpoints_answer_and_a_bad_filter_explains_itself(client: TestClient) -> None:
    xs, ys = inside_points(1, seed=3)
    made = client.post(
        "/cases",
        json={"class_code": "06010", "lon": float(xs[0]), "lat": float(ys[0]), "datum": "cgcs2000"},
        headers={"X-Role": "supervisor"},
    )
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    fc = client.get("/cases", params={"format": "geojson", "limit": 1000}).json()
    assert fc["type"] == "FeatureCollection" and [f["properties"]["id"] for f in fc["features"]] == [cid]
    props = fc["features"][0]["properties"]
    assert {"id", "light", "state_label", "class_name", "case_no"} <= set(props)
    assert set(client.get("/cases/lights").json()) == {"green", "yellow", "red"}
    detail = client.get(f"/cases/{cid}", headers={"X-Role": "supervisor"}).json()
    assert "verify" in detail["allowed_actions"] and detail["timeline"]
    # what the panel shows for a malformed filter: the API's 422 detail, field by field
    bad = client.get("/cases", params={"format": "geojson", "limit": 1000, "class_code": "06x"})
    assert bad.status_code == 422
    assert bad.json()["error"] == "invalid_input" and bad.json()["detail"][0]["field"] == "class_code"
    # a refused action: the API's message
    refused = client.post(
        f"/cases/{cid}/actions/dispatch",
        json={"version": detail["version"], "payload": {}},
        headers={"X-Role": "leader"},
    )
    assert refused.status_code in (403, 409, 422) and refused.json()["detail"]


def _page(**kw: object) -> str:
    return page.build_console(
        bounds=None,
        states=workflow.STATES,
        roles=workflow.ROLES,
        actions=workflow.ACTIONS,
        required={a: r.required for a, r in workflow.TRANSITIONS.items()},
        field_labels=workflow.FIELD_LABELS,
        departments={"DEPT01": "市政设施养护中心"},
        **kw,
    )


def test_no_basemap_by_default_and_a_local_basemap_when_set() -> None:
    plain = _page()
    assert "L.tileLayer(" not in plain
    local = _page(basemap_url="/basemap/{z}/{x}/{y}.png", basemap_attribution="市测绘院")
    assert "L.tileLayer(" in local and "/basemap/{z}/{x}/{y}.png" in local
    assets.assert_no_external(local)
    assert "http://10.8.0.5:8080" in page.csp("http://10.8.0.5:8080/xyz/{z}/{x}/{y}.png")
    assert page.csp(None).count("'self'") >= 5


def test_panel_text_is_escaped() -> None:
    html = page.build_console(
        bounds=None,
        states={"reported": "<b>上报</b>"},
        roles={"x": '"><script>alert(1)</script>'},
        actions={},
        required={},
        field_labels={},
        departments={"d": "</script><script>alert(2)</script>"},
    )
    assert "<script>alert(1)</script>" not in html and "</script><script>alert(2)" not in html
