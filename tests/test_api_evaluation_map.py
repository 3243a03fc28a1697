"""GET /evaluation/map: one 综合评价 indicator over unit grids or a tier, classed (mapclassify), as GeoJSON."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mapclassify
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.main import create_app
from gisgrid import cases as svc
from gisgrid.evaluation_service import indicators, parse_period
from gisgrid.settings import Settings
from maps import choropleth
from tests.test_map_render import PERIOD, write_simulated_history

LEGEND_KEYS = {"class", "label", "colour", "count", "lower", "upper"}


@pytest.fixture
def client(clean_db: Engine, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    write_simulated_history(clean_db, settings, tmp_path)
    with TestClient(create_app(settings)) as c:
        yield c


def table_values(engine: Engine, settings: Settings, level: str, indicator: str) -> pd.Series:
    services = svc.load_services(settings)
    table = indicators(engine, services, parse_period(PERIOD), "region", level)
    # The regions with cases: the table lists every region (本期无案件 不参评), the map shows those without as 无数据.
    table = table[table["ungraded_reason"] != "本期无案件"]
    return table.set_index("subject")[indicator]


def get_map(client: TestClient, **params: Any) -> dict[str, Any]:
    r = client.get("/evaluation/map", params={"period": PERIOD, **params})
    assert r.status_code == 200, r.text
    return r.json()


def check_consistent(body: dict[str, Any]) -> None:
    """Every feature's class and colour match the legend; the legend counts the features."""
    legend = body["legend"]
    assert all(set(row) == LEGEND_KEYS for row in legend)
    colour = {row["class"]: row["colour"] for row in legend}
    counted: dict[Any, int] = {}
    for f in body["features"]["features"]:
        p = f["properties"]
        assert f["id"] == p["code"]
        assert p["colour"] == colour[p["class"]]
        assert (p["class"] is None) == (p["value"] is None)
        counted[p["class"]] = counted.get(p["class"], 0) + 1
    assert {row["class"]: row["count"] for row in legend if row["count"]} == counted


def test_tier3_map_of_a_rate(client: TestClient, clean_db: Engine, settings: Settings) -> None:
    body = get_map(client, indicator="on_time_disposal_rate", level="tier3", k=4)
    assert {"period", "level", "indicator", "indicator_label", "title", "title_en", "scheme", "k", "subtitle",
            "note", "breaks", "legend", "features"} <= set(body)  # fmt: skip
    assert body["period"] == PERIOD and body["level"] == "tier3" and body["scheme"] == "quantiles"
    assert body["indicator_label"] == "按期处置率" and body["title"] == "按期处置率"  # zh-CN, as the console
    assert body["title_en"] == "On-time disposal rate"
    fc = body["features"]
    assert fc["type"] == "FeatureCollection" and "crs" not in fc
    with clean_db.connect() as conn:
        tier3 = conn.execute(text("SELECT code, name FROM management_grids WHERE tier = 3 ORDER BY code")).all()
    assert [(f["id"], f["properties"]["name"]) for f in fc["features"]] == [tuple(r) for r in tier3]
    check_consistent(body)

    values = table_values(clean_db, settings, "tier3", "on_time_disposal_rate").reindex([c for c, _ in tier3])
    v = values.dropna().to_numpy(dtype=float)
    expected = mapclassify.Quantiles(v, k=4)
    classes = [row for row in body["legend"] if row["class"] is not None]
    assert [row["count"] for row in classes] == [int(c) for c in expected.counts]
    assert all(row["count"] > 0 for row in body["legend"]) and body["note"] is None  # no empty class, none merged
    assert body["breaks"] == pytest.approx([v.min(), *expected.bins])
    assert [row["upper"] for row in classes] == pytest.approx(list(expected.bins))
    no_data = body["legend"][-1]
    assert no_data["class"] is None and no_data["label"] == "无数据"
    assert no_data["count"] == int(values.isna().sum()) >= 1 and no_data["colour"] == choropleth.NO_DATA_COLOUR
    first = fc["features"][0]["properties"]  # the grid whose cases were moved out of the period
    assert first["value"] is None and first["rank"] is None and first["grade"] is None
    ranked = [f["properties"] for f in fc["features"] if f["properties"]["value"] is not None]
    assert all(p["value_label"].endswith("%") and p["grade"] in set("ABCDE") and p["rank"] >= 1 for p in ranked)
    # transport geometry: coordinates to 6 decimals, polygons still valid and where they were
    with clean_db.connect() as conn:
        stored = dict(conn.execute(text("SELECT code, ST_AsText(geom) FROM management_grids WHERE tier = 3")).all())
    for f in fc["features"]:
        coords = shapely.get_coordinates(shapely.geometry.shape(f["geometry"]))
        assert np.array_equal(coords, np.round(coords, 6))
        geom = shapely.geometry.shape(f["geometry"])
        original = shapely.from_wkt(stored[f["id"]])
        assert geom.is_valid and shapely.hausdorff_distance(geom, original) < 2e-5


def test_unit_grids_natural_breaks_and_tier1_grades(client: TestClient, clean_db: Engine, settings: Settings) -> None:
    body = get_map(client, indicator="reports", level="unit_grid", scheme="natural_breaks", k=5)
    with clean_db.connect() as conn:
        n_cells = conn.execute(text("SELECT count(*) FROM unit_grids")).scalar_one()
    assert len(body["features"]["features"]) == n_cells and body["scheme"] == "natural_breaks"
    assert sum(row["count"] for row in body["legend"]) == n_cells and 2 <= body["k"] <= 5
    check_consistent(body)
    # the same every time (the default evaluation time is now: compared at one fixed time)
    fixed = {"indicator": "reports", "level": "unit_grid", "k": 5, "as_of": "2026-01-01"}
    assert get_map(client, scheme="natural_breaks", **fixed) == get_map(client, scheme="jenks", **fixed)
    values = table_values(clean_db, settings, "unit_grid", "reports")
    assert sum(row["count"] for row in body["legend"] if row["class"] is not None) == len(values)
    name = body["features"]["features"][0]["properties"]["name"]
    assert "社区" in name and "单元网格" in name

    grades = get_map(client, indicator="grade", level="tier1")
    assert [row["label"][0] for row in grades["legend"][:5]] == list("ABCDE") and grades["breaks"] == []
    assert [f["id"] for f in grades["features"]["features"]] == ["419902001", "419902002"]
    check_consistent(grades)
    equal = get_map(client, indicator="score", level="tier2", scheme="equal_interval", k=3)
    scores = table_values(clean_db, settings, "tier2", "score").dropna().to_numpy(dtype=float)
    assert [row["count"] for row in equal["legend"]] == [
        int(c) for c in mapclassify.EqualInterval(scores, k=min(3, len(np.unique(scores)))).counts
    ]


def test_bad_parameters_are_422_naming_the_parameter(client: TestClient) -> None:
    def error(**params: Any) -> Any:
        r = client.get("/evaluation/map", params={"period": PERIOD, "indicator": "score", **params})
        assert r.status_code == 422, r.text
        return r.json()

    body = error(indicator="happiness")
    assert body["error"] == "invalid_input" and body["detail"]["message"].startswith("indicator: 'happiness'")
    assert body["reason"] == "unknown_indicator"
    item = body["detail"]["items"][0]
    assert item["field"] == "indicator" and "on_time_disposal_rate" in item["choices"]
    body = error(period="someday")
    assert body["detail"]["message"].startswith("period:") and body["detail"]["items"][0]["field"] == "period"
    assert body["reason"] == "period_unreadable"
    body = error(period="2100-01")  # not begun (a past month without cases is a map of 无数据 regions)
    assert body["detail"]["message"].startswith("period: no cases were reported in 2100-01: it begins")
    assert body["detail"]["items"][0]["field"] == "period"
    assert body["reason"] == "no_cases_in_period"
    body = error(level="tier9")
    assert body["detail"]["items"][0]["field"] == "level" and body["detail"]["items"][0]["code"] == "literal_error"
    body = error(scheme="kriging")
    assert body["detail"]["items"][0]["field"] == "scheme" and "natural_breaks" in body["detail"]["message"]
    assert body["reason"] == "literal_error"
    body = error(k=12)
    assert body["detail"]["items"][0]["field"] == "k" and body["detail"]["items"][0]["code"] == "less_than_equal"
    missing = client.get("/evaluation/map", params={"period": PERIOD})
    assert missing.status_code == 422 and missing.json()["detail"]["items"][0]["field"] == "indicator"


def test_the_regions_shapes_are_made_once_while_the_grids_stay_as_they_are(
    client: TestClient, clean_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review35 D6: reading and simplifying every unit grid cost seconds per request; the shapes are kept while
    the stored regions' fingerprint stays, and made again when a region's name or polygon changes."""
    loads: list[str] = []
    real = choropleth.load_regions

    def counted(conn: Any, level: str) -> Any:
        loads.append(level)
        return real(conn, level)

    monkeypatch.setattr(choropleth, "load_regions", counted)
    choropleth._SHAPES.clear()
    first = get_map(client, indicator="score", level="tier3")
    assert (
        get_map(client, indicator="reports", level="tier3")["features"]["features"][0]["geometry"]
        == (first["features"]["features"][0]["geometry"])
    )
    assert loads == ["tier3"]
    code = first["features"]["features"][0]["id"]
    with clean_db.begin() as conn:  # a renamed region: the next map says the new name
        conn.execute(text("UPDATE management_grids SET name = name || '(新)' WHERE code = :c"), {"c": code})
    renamed = get_map(client, indicator="score", level="tier3")
    assert loads == ["tier3", "tier3"]
    assert renamed["features"]["features"][0]["properties"]["name"].endswith("(新)")
    with clean_db.begin() as conn:  # a moved boundary: the next map draws it
        conn.execute(
            text("UPDATE management_grids SET geom = ST_Multi(ST_Translate(geom, 0.001, 0)) WHERE code = :c"),
            {"c": code},
        )
    moved = get_map(client, indicator="score", level="tier3")
    assert loads == ["tier3", "tier3", "tier3"]
    before = shapely.geometry.shape(renamed["features"]["features"][0]["geometry"]).centroid.x
    after = shapely.geometry.shape(moved["features"]["features"][0]["geometry"]).centroid.x
    assert after - before == pytest.approx(0.001, abs=1e-6)
    check_consistent(moved)
