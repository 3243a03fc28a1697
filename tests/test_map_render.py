"""``gisgrid map render``: a choropleth folder (HTML + local Leaflet, relative links) that opens offline."""

from __future__ import annotations

import datetime as dt
import html
import itertools
import json
import re
import warnings
from pathlib import Path
from urllib.parse import unquote

import mapclassify
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gisgrid import case_intake, history
from gisgrid import cases as svc
from gisgrid.cli.maprender import app
from gisgrid.errors import InvalidInput
from gisgrid.evaluation_service import indicators, parse_period
from gisgrid.settings import Settings
from gisgrid.simulate import classes_from_catalogue, node_hours_from_catalogue, simulate
from maps import assets, choropleth, render
from tests.fixtures import COMMUNITIES, load_small_district
from tests.test_components_store import inside_points

LINK = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)""", re.IGNORECASE)
CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")
#: When the ``district`` fixture's six cases are reported (one a minute); then each is moved back by its id in days.
FILED = dt.datetime(2025, 10, 15, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.fixture
def district(installed_assets: None, clean_db: Engine, settings: Settings, tmp_path: Path) -> Engine:
    """The small district with 40 components (4 faulty) and 6 cases (2 of them closed as rejected)."""
    load_small_district(clean_db, tmp_path)
    with clean_db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO components (id, class_code, name, status, unit_grid_code, street_code, community_code, "
                "district_code, geom) "
                "SELECT '41990201001' || lpad(row_number() OVER (ORDER BY code)::text, 6, '0'), '01001', '井盖', "
                "CASE WHEN row_number() OVER (ORDER BY code) % 10 = 0 THEN '破损' ELSE '完好' END, "
                "code, street_code, community_code, district_code, ST_PointOnSurface(geom) "
                "FROM unit_grids ORDER BY code LIMIT 40"
            )
        )
    services = svc.load_services(settings)
    svc.sync_reference_data(clean_db, services)
    xs, ys = inside_points(6, seed=9)
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        case_intake.intake(
            clean_db,
            services,
            case_intake.Intake(class_code="06010" if i % 2 else "06012", lon=float(x), lat=float(y), datum="cgcs2000"),
            now=FILED + dt.timedelta(minutes=i),  # a fixed moment: no midnight between two reports (review57 F3)
        )
    with clean_db.begin() as conn:
        conn.execute(text("UPDATE cases SET state = 'rejected' WHERE id IN (SELECT id FROM cases ORDER BY id LIMIT 2)"))
        conn.execute(text("UPDATE cases SET created_at = created_at - make_interval(days => id::int)"))
    return clean_db


def run(settings: Settings, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["render", *args], obj=settings)
    return result.exit_code, result.output + (str(result.exception) if result.exception else "")


def check_folder(html_path: Path) -> str:
    """The page opens from its folder alone: every linked file (and every file a stylesheet names) is there."""
    page = html_path.read_text(encoding="utf-8")
    assets.assert_no_external(page)
    links = LINK.findall(page)
    assert links, "no script or stylesheet linked"
    for link in links:
        assert not link.startswith("/") and "://" not in link, link
        target = html_path.parent / unquote(link)
        assert target.is_file(), link
        assert target.resolve().is_relative_to(html_path.parent.resolve())
        if target.suffix == ".css":
            for _, ref in CSS_URL.findall(target.read_text(encoding="utf-8")):
                if ref.startswith(("data:", "#")):
                    continue
                assert (target.parent / unquote(ref.split("?")[0].split("#")[0])).is_file(), ref
    return page


def test_tier2_grids_coloured_by_cases(district: Engine, settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "maps" / "社区案件.html"
    code, output = run(settings, "--layer", "grids", "--tier", "2", "--color-by", "cases", "--out", str(out))
    assert code == 0, output
    assert out.is_file() and (tmp_path / "maps" / "社区案件_files").is_dir()
    page = check_folder(out)
    assert "leaflet@" in page and "jquery" not in page and "bootstrap" not in page  # only what a choropleth needs
    assert 'id="gg-legend"' in page and "二级网格(社区) · 案件数" in page
    assert '<html lang="zh-CN">' in page
    for community in COMMUNITIES:
        assert community in page
    assert "3 features" in output and "wrote" in output


def test_the_map_is_headed_by_the_configured_centre(district: Engine, settings: Settings, tmp_path: Path) -> None:
    """GISGRID_CENTER_NAME first in the page's title and the legend's heading, as on the console; markup in it (or
    in --title) stays text; unset, the default centre (数字化城市管理监督指挥中心)."""
    city = settings.model_copy(update={"center_name": "新密市<数字化城市管理>监督指挥中心"})
    out = tmp_path / "cases.html"
    code, output = run(city, "--layer", "cases", "--color-by", "state", "--out", str(out))
    assert code == 0, output
    page = check_folder(out)
    name = "新密市&lt;数字化城市管理&gt;监督指挥中心"
    assert page.count("<title>") == 1 and f"<title>{name} · 专题图 · 案件 · 状态</title>" in page
    assert page.count("<h1>") == 1 and f"<h1>{name} · 案件 · 状态</h1>" in page
    assert "<数字化城市管理>" not in page
    code, output = run(city, "--layer", "grids", "--tier", "1", "--title", "<街道>", "--out", str(out))
    assert code == 0, output
    page = check_folder(out)
    assert f"<title>{name} · 专题图 · &lt;街道&gt;</title>" in page and f"<h1>{name} · &lt;街道&gt;</h1>" in page
    code, output = run(settings, "--layer", "components", "--out", str(out))
    assert code == 0, output
    page = check_folder(out)
    assert "<title>数字化城市管理监督指挥中心 · 专题图 · 城市部件</title>" in page
    assert "<h1>数字化城市管理监督指挥中心 · 城市部件</h1>" in page


def test_unit_grids_in_quantile_classes(district: Engine, settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "unit.html"
    code, output = run(settings, "--layer", "grids", "--color-by", "components", "--classes", "4", "--out", str(out))
    assert code == 0, output
    page = check_folder(out)
    with district.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM unit_grids")).scalar_one()
    assert f"{n} features" in output
    legend = re.search(r'<div id="gg-legend".*?</ul></div>', page, re.S)
    assert legend and "分位数分级" in legend.group(0)
    rows = re.findall(r"<li>.*?<small>([\d,]+)</small></li>", legend.group(0))
    assert 1 <= len(rows) <= 4 and sum(int(r.replace(",", "")) for r in rows) == n
    assert "warning:" not in output


def test_a_page_of_more_features_than_a_browser_draws_at_ease_is_warned_about(
    district: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review47 F6: the demo's unit grids made a 28 MB page of 38,415 inline polygons, said as '38,415 features'."""
    with district.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM unit_grids")).scalar_one()
    monkeypatch.setattr(render, "HEAVY_FEATURES", n - 1)
    code, output = run(settings, "--layer", "grids", "--out", str(tmp_path / "unit.html"))
    assert code == 0, output
    size = re.search(r"files, ([\d.]+) MB in all\)", output).group(1)
    said = " ".join(output[output.index("warning:") :].split())
    assert said.startswith(
        f"warning: 页面内嵌 {n:,} 个要素({size} MB),浏览器打开会很慢,可用 --tier、--bbox 或 --limit 缩小范围 / "
        f"the page holds {n:,} features inline ({size} MB), more than the ~{n - 1:,} a browser draws at ease: "
        "narrow it with --tier, --bbox or --limit (the console serves unit grids as vector tiles)"
    )


def test_cases_by_state_and_components_by_status(district: Engine, settings: Settings, tmp_path: Path) -> None:
    code, output = run(settings, "--layer", "cases", "--color-by", "state", "--out", str(tmp_path / "c.html"))
    assert code == 0, output
    page = check_folder(tmp_path / "c.html")
    assert "上报(reported)" in page and "不予立案(rejected)" in page and "6 features" in output
    code, output = run(settings, "--layer", "components", "--color-by", "status", "--out", str(tmp_path / "p.html"))
    assert code == 0, output
    page = check_folder(tmp_path / "p.html")
    assert "破损" in page and "完好" in page and "40 features" in output
    code, output = run(
        settings, "--layer", "cases", "--color-by", "age_days", "--scale", "linear", "--out", str(tmp_path / "l.html")
    )
    assert code == 0, output
    assert "linear-gradient(" in check_folder(tmp_path / "l.html")
    code, output = run(settings, "--layer", "components", "--limit", "5", "--out", str(tmp_path / "few.html"))
    assert code == 0 and "5 features of 40" in output


def test_retired_components_are_neither_counted_nor_drawn(district: Engine, settings: Settings, tmp_path: Path) -> None:
    """review32 D3: a component retired (移除) has left the registry: not in a grid's 部件数 (nor its 非完好) nor on
    the map. Retired here: the first (完好) and the tenth (破损) of the 40."""
    with district.begin() as conn:
        retired = (
            conn.execute(
                text(
                    "UPDATE components SET status = '移除' WHERE id IN (SELECT id FROM components ORDER BY id "
                    "LIMIT 1) OR status = '破损' AND id = (SELECT min(id) FROM components WHERE status = '破损') "
                    "RETURNING unit_grid_code"
                )
            )
            .scalars()
            .all()
        )
    assert len(retired) == 2
    with district.connect() as conn:
        grids = render.load_grids(conn, "unit").set_index("code")
        tier1 = render.load_grids(conn, "1")
    assert int(grids["components"].sum()) == 38 and int(tier1["components"].sum()) == 38
    assert int(grids["components_faulty"].sum()) == 3
    assert [int(grids.loc[c, "components"]) for c in retired] == [0, 0]
    code, output = run(settings, "--layer", "components", "--color-by", "status", "--out", str(tmp_path / "p.html"))
    assert code == 0 and "38 features" in output, output
    assert "移除" not in check_folder(tmp_path / "p.html")


def test_unknown_layer_column_or_tier_are_refused_with_the_choices(
    district: Engine, settings: Settings, tmp_path: Path
) -> None:
    out = str(tmp_path / "x.html")
    code, output = run(settings, "--layer", "roads", "--out", out)
    assert code == 2 and "grids" in output and "components" in output and "cases" in output
    code, output = run(settings, "--layer", "grids", "--color-by", "nope", "--out", out)
    assert code == 2 and "nope" in output and "open_cases" in output and "cases_per_km2" in output
    code, output = run(settings, "--layer", "cases", "--tier", "2", "--out", out)
    assert code == 2 and "tier" in output
    code, output = run(settings, "--layer", "grids", "--tier", "4", "--out", out)
    assert code == 2 and "unit" in output
    code, output = run(settings, "--layer", "grids", "--out", str(tmp_path / "x.png"))
    assert code == 2 and ".html" in output
    assert not (tmp_path / "x.html").exists()


def test_an_output_path_that_cannot_be_written_is_refused_not_a_traceback(
    district: Engine, settings: Settings, tmp_path: Path
) -> None:
    """review32 D2: a path through a file, or into a file system that takes no files, is the CLI's one line."""
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile" / "x.html", Path("/proc/x.html")):
        result = CliRunner().invoke(app, ["render", "--layer", "grids", "--tier", "1", "--out", str(out)], obj=settings)
        assert result.exit_code == 1 and isinstance(result.exception, InvalidInput), result.output
        assert str(result.exception).startswith(f"{out}: cannot write it ("), str(result.exception)


def test_a_bbox_that_misses_the_layer_warns_with_its_extent(
    district: Engine, settings: Settings, tmp_path: Path
) -> None:
    """review32 D7: an empty map with exit 0 and no word; now a warning naming where the layer is."""
    with district.connect() as conn:
        x0, y0, x1, y1 = conn.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                "FROM (SELECT ST_Extent(geom) e FROM components) q"
            )
        ).one()
    out = tmp_path / "empty.html"
    result = CliRunner().invoke(
        app, ["render", "--layer", "components", "--bbox", "10,10,11,11", "--out", str(out)], obj=settings
    )
    assert result.exit_code == 0, result.output
    assert "0 features" in result.output
    assert (
        "warning: the map is empty: --bbox lies outside the layer, which lies within "
        f"{x0:.4f},{y0:.4f},{x1:.4f},{y1:.4f}"
    ) in result.output
    # a bbox holding the layer, a filter leaving nothing: the filter is named, not the bbox (review34 D5)
    filtered = CliRunner().invoke(
        app,
        ["render", "--layer", "cases", "--period", "2020-01", "--bbox", f"{x0},{y0},{x1},{y1}", "--out", str(out)],
        obj=settings,
    )
    assert filtered.exit_code == 0, filtered.output
    assert "warning: the map is empty: no feature in --bbox matches --period 2020-01" in filtered.output
    inside = CliRunner().invoke(
        app, ["render", "--layer", "components", "--bbox", f"{x0},{y0},{x1},{y1}", "--out", str(out)], obj=settings
    )
    assert inside.exit_code == 0 and "40 features" in inside.output and "warning" not in inside.output


def test_grid_case_counts_of_a_period_and_the_legend_says_which(
    district: Engine, settings: Settings, tmp_path: Path
) -> None:
    """review32 G3: a grid map's 案件数 counted every case ever stored, and its legend did not say so; --period
    counts the cases reported in it (cases_30d stays the last 30 days)."""
    with district.begin() as conn:  # two of the six cases reported in October 2026, the others in November
        conn.execute(text("UPDATE cases SET created_at = '2026-11-20T10:00+08:00'"))
        conn.execute(
            text(
                "UPDATE cases SET created_at = '2026-10-15T10:00+08:00' WHERE id IN "
                "(SELECT id FROM cases ORDER BY id DESC LIMIT 2)"
            )
        )
    with district.connect() as conn:
        every = render.load_grids(conn, "2")
        october = render.load_grids(conn, "2", period=parse_period("2026-10"))
    assert int(every["cases"].sum()) == 6 and int(october["cases"].sum()) == 2
    assert int(october["open_cases"].sum()) == 2  # the two rejected are the two oldest ids, not these
    assert october["cases_30d"].tolist() == every["cases_30d"].tolist()
    out = tmp_path / "oct.html"
    code, output = run(
        settings, "--layer", "grids", "--tier", "2", "--color-by", "cases", "--period", "2026-10", "--out", str(out)
    )
    assert code == 0, output
    assert sum(n for _, n in legend_rows(check_folder(out))) == 3 and "案件上报于 2026-10" in out.read_text("utf-8")
    code, output = run(settings, "--layer", "grids", "--tier", "2", "--color-by", "cases", "--out", str(out))
    assert code == 0 and "案件:全部(自启用起)" in out.read_text("utf-8")
    # coloured by another column, the tooltips' case counts are still the period's: said too (review34)
    code, output = run(
        settings,
        "--layer",
        "grids",
        "--tier",
        "2",
        "--color-by",
        "components",
        "--period",
        "2026-10",
        "--out",
        str(out),
    )
    assert code == 0 and "案件上报于 2026-10" in out.read_text("utf-8")
    code, output = run(settings, "--layer", "components", "--period", "2026-10", "--out", str(out))
    assert code == 2 and "--period" in output


def test_point_maps_draw_the_streets_under_the_points(district: Engine, settings: Settings, tmp_path: Path) -> None:
    """review32 G4: a cases or components map on plain grey said nothing of where the points are; the streets'
    boundaries are drawn under them (not taking the pointer), said in the legend. A grid map has its own lines."""
    with district.connect() as conn:
        streets = conn.execute(text("SELECT count(*) FROM management_grids WHERE tier = 1")).scalar_one()
        outlines = render.street_outlines(conn)
    assert streets == 2 and len(outlines["features"]) == 2
    assert {f["geometry"]["type"] for f in outlines["features"]} <= {"LineString", "MultiLineString"}
    for layer in ("components", "cases"):
        out = tmp_path / f"{layer}.html"
        code, output = run(settings, "--layer", layer, "--out", str(out))
        assert code == 0, output
        page = check_folder(out)
        assert "灰线:街道界线" in page and page.count('"interactive": false') == 1, layer
        drawn = re.findall(r"\bgeo_json_\w+_add\((\{.*?\})\);\n", page, re.S)
        assert len(drawn) == 2, layer  # the streets first (under), then the points
        assert [f["geometry"] for f in json.loads(drawn[0])["features"]] == [
            f["geometry"] for f in outlines["features"]
        ], layer
    code, output = run(settings, "--layer", "grids", "--tier", "1", "--out", str(tmp_path / "g.html"))
    assert code == 0 and "街道界线" not in (tmp_path / "g.html").read_text("utf-8")
    with district.begin() as conn:  # no streets stored: nothing drawn, nothing said
        conn.execute(text("DELETE FROM management_grids WHERE tier = 1"))
    code, output = run(settings, "--layer", "components", "--out", str(tmp_path / "bare.html"))
    page = (tmp_path / "bare.html").read_text("utf-8")
    assert code == 0 and "街道界线" not in page and "灰线" not in page


def coloured_legend_rows(page: str) -> list[tuple[str, int, str]]:
    """(label, count, colour) of each legend row of a rendered page."""
    legend = re.search(r'<div id="gg-legend".*?</ul></div>', page, re.S)
    assert legend, "no legend"
    rows = re.findall(
        r'<li><i style="background:(#[0-9a-f]{6})"></i><span>(.*?)</span> <small>([\d,]+)</small></li>', legend.group(0)
    )
    return [(html.unescape(label), int(count.replace(",", "")), colour) for colour, label, count in rows]


def legend_rows(page: str) -> list[tuple[str, int]]:
    """(label, count) of each legend row of a rendered page."""
    legend = re.search(r'<div id="gg-legend".*?</ul></div>', page, re.S)
    assert legend, "no legend"
    rows = re.findall(r"<li>.*?<span>(.*?)</span> <small>([\d,]+)</small></li>", legend.group(0))
    return [(html.unescape(label), int(count.replace(",", ""))) for label, count in rows]


def test_unit_grids_by_natural_breaks_and_equal_interval(district: Engine, settings: Settings, tmp_path: Path) -> None:
    with district.connect() as conn:
        areas = render.load_grids(conn, "unit")["area_m2"].to_numpy()
    for scheme, cls in (("natural_breaks", mapclassify.NaturalBreaks), ("equal_interval", mapclassify.EqualInterval)):
        out = tmp_path / f"{scheme}.html"
        code, output = run(
            settings, "--layer", "grids", "--color-by", "area_m2", "--scheme", scheme, "-k", "3", "--out", str(out)
        )
        assert code == 0, output
        rows = legend_rows(check_folder(out))
        assert sum(n for _, n in rows) == len(areas) and 2 <= len(rows) <= 3
        assert choropleth.SCHEMES[scheme] in out.read_text(encoding="utf-8")
        if cls is mapclassify.EqualInterval:  # deterministic: the same classes as mapclassify's
            assert [n for _, n in rows] == expected_counts(pd.Series(areas), "equal_interval", 3)
    code, output = run(settings, "--layer", "grids", "--scheme", "kriging", "--out", str(tmp_path / "k.html"))
    assert code == 2 and "natural_breaks" in output and "equal_interval" in output


# -- the evaluation layer -----------------------------------------------------------------------------

PERIOD = "2025-10"


def write_simulated_history(engine: Engine, settings: Settings, folder: Path) -> None:
    """The small district, its tiers and 45 days of simulated cases (2025-09-15 …); the first tier-3 grid's cases
    are moved a year back, so in 2025-10 it has no data."""
    load_small_district(engine, folder)
    services = svc.load_services(settings)
    svc.sync_reference_data(engine, services)
    with engine.connect() as conn:
        cells = history.cells_for_simulation(conn)
    sim = simulate(
        cells,
        list(services.departments),
        classes_from_catalogue(services.events),
        node_hours=node_hours_from_catalogue(services.events, services.calendar.hours.hours_per_day),
        days=45,
        seed=5,
        start=dt.date(2025, 9, 15),
        rate=0.3,
    )
    history.write_history(engine, sim.cases, sim.transitions, services)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE cases SET created_at = created_at - interval '1 year' "
                "WHERE tier3_code = (SELECT min(code) FROM management_grids WHERE tier = 3)"
            )
        )


@pytest.fixture
def evaluated(installed_assets: None, clean_db: Engine, settings: Settings, tmp_path: Path) -> Engine:
    write_simulated_history(clean_db, settings, tmp_path)
    return clean_db


def expected_counts(values: pd.Series, scheme: str, k: int) -> list[int]:
    v = values.dropna().to_numpy(dtype=float)
    cls = {"quantiles": mapclassify.Quantiles, "equal_interval": mapclassify.EqualInterval}[scheme]
    return [int(c) for c in cls(v, k=min(k, len(np.unique(v)))).counts]


def test_evaluation_layer_over_tier3_grids(evaluated: Engine, settings: Settings, tmp_path: Path) -> None:
    services = svc.load_services(settings)
    table = indicators(evaluated, services, parse_period(PERIOD), "region", "tier3")
    with evaluated.connect() as conn:
        tier3 = conn.execute(text("SELECT code, name FROM management_grids WHERE tier = 3 ORDER BY code")).all()
    # the grid without cases in the period: listed (不参评, 本期无案件) in the table, 无数据 on the map
    assert len(tier3) >= 4 and table.set_index("subject").loc[tier3[0][0], "ungraded_reason"] == "本期无案件"
    table = table[table["ungraded_reason"] != "本期无案件"]
    values = pd.Series(dict(zip(table["subject"], table["on_time_disposal_rate"], strict=True)))
    values = values.reindex([c for c, _ in tier3])

    out = tmp_path / "按期处置率.html"
    code, output = run(
        settings, "--layer", "evaluation", "--indicator", "on_time_disposal_rate", "--period", PERIOD,
        "--level", "tier3", "--classes", "4", "--out", str(out),
    )  # fmt: skip
    assert code == 0, output
    page = check_folder(out)  # every link local, no off-origin URL
    assert "三级网格 · 按期处置率 On-time disposal rate" in page and f"评价期 {PERIOD}" in page
    # GISGRID_CENTER_NAME unset: the default centre heads the page and the legend, as on the console
    assert "<title>数字化城市管理监督指挥中心 · 专题图 · 三级网格 · 按期处置率 On-time disposal rate</title>" in page
    assert "<h1>数字化城市管理监督指挥中心 · 三级网格 · 按期处置率 On-time disposal rate</h1>" in page
    assert "分位数分级" in page
    rows = legend_rows(page)
    n_missing = int(values.isna().sum())
    assert rows[-1] == ("无数据", n_missing) and n_missing >= 1
    assert [n for _, n in rows[:-1]] == expected_counts(values, "quantiles", 4)
    assert all(label.endswith("%") for label, _ in rows[:-1])  # rates as percentages
    assert sum(n for _, n in rows) == len(tier3)
    assert f"{len(tier3)} features" in output
    for c, name in tier3:
        assert c in page and (name in page or json.dumps(name)[1:-1] in page)
    # the tooltip: code, name, the indicator, grade and rank (in Chinese)
    fields = re.search(r"let fields = (\[.*?\]);\s*let aliases = (\[.*?\]);", page, re.S)
    assert fields is not None
    assert json.loads(fields.group(1)) == ["code", "name", "value_label", "grade", "rank"]
    assert json.loads(fields.group(2)) == ["编码", "名称", "按期处置率", "等级", "排名"]

    # grades: fixed classes A–E; equal intervals of the score over communities (tier 2)
    out = tmp_path / "grade.html"
    code, output = run(settings, "--layer", "evaluation", "--indicator", "grade", "--period", PERIOD, "--out", str(out))
    assert code == 0, output
    grades = [label for label, _ in legend_rows(check_folder(out))]
    assert grades[:5] == ["A (≥ 90)", "B (75–90)", "C (60–75)", "D (40–60)", "E (< 40)"]
    out = tmp_path / "score.html"
    city = settings.model_copy(update={"center_name": "新密市<数字化城市管理>监督指挥中心"})
    code, output = run(
        city, "--layer", "evaluation", "--color-by", "score", "--period", PERIOD, "--level", "tier2",
        "--scale", "equal", "-k", "3", "--out", str(out),
    )  # fmt: skip
    assert code == 0, output
    t2 = indicators(evaluated, services, parse_period(PERIOD), "region", "tier2").set_index("subject")["score"]
    page = check_folder(out)
    assert "二级网格(社区) · 综合指标值 Composite score" in page and "等间距分级" in page
    name = "新密市&lt;数字化城市管理&gt;监督指挥中心"
    assert f"<title>{name} · 专题图 · 二级网格(社区) · 综合指标值 Composite score</title>" in page
    assert f"<h1>{name} · 二级网格(社区) · 综合指标值 Composite score</h1>" in page
    assert [n for _, n in legend_rows(page)] == expected_counts(t2.reindex(list(COMMUNITIES)), "equal_interval", 3)


def test_evaluation_layer_refuses_unknown_indicator_period_and_options(
    evaluated: Engine, settings: Settings, tmp_path: Path
) -> None:
    out = str(tmp_path / "e.html")
    base = ["--layer", "evaluation", "--out", out]
    code, output = run(settings, *base, "--indicator", "happiness", "--period", PERIOD)
    assert code == 2 and "happiness" in output and "on_time_disposal_rate" in output and "按期处置率" in output
    code, output = run(settings, *base, "--indicator", "score", "--period", "someday")
    assert code == 2 and "--period" in output and "2026-Q3" in output
    # a period not begun (a past month without cases is a map of 无数据 regions, review49 F5)
    code, output = run(settings, *base, "--indicator", "score", "--period", "2100-01")
    assert code == 2 and "no cases" in output and "尚未开始" in output
    code, output = run(settings, *base, "--period", PERIOD)
    assert code == 2 and "--indicator" in output and "rework_rate" in output
    code, output = run(settings, *base, "--indicator", "score", "--period", PERIOD, "--level", "tier9")
    assert code == 2 and "tier3" in output
    code, output = run(settings, *base, "--indicator", "score", "--period", PERIOD, "--scheme", "linear")
    assert code == 2 and "quantiles" in output
    code, output = run(settings, "--layer", "grids", "--indicator", "score", "--out", out)
    assert code == 2 and "evaluation" in output
    code, output = run(settings, "--layer", "evaluation", "--tier", "3", "--indicator", "score", "--out", out)
    assert code == 2 and "--level" in output
    assert not Path(out).exists()


# -- classing -----------------------------------------------------------------------------------------


def test_classes_with_few_distinct_values_all_equal_or_no_data() -> None:
    q = choropleth.classify(np.array([0, 0, 0, 1, 2, 3, 10.0]), "quantiles", 4)
    assert q.edges == (0, 0, 1, 2.5, 10) and q.counts == (3, 1, 1, 2) and q.labels[0] == "0"
    two = choropleth.classify([1.0, 2.0, 2.0, np.nan], "natural_breaks", 5)  # k lowered to the distinct values
    assert two.k == 2 and two.counts == (1, 2) and two.no_data == 1
    assert [e.label for e in two.legend()][-1] == "无数据"
    same = choropleth.classify([5.0, 5.0], "equal_interval", 5)
    assert same.k == 1 and same.labels == ("5",) and same.counts == (2,) and same.subtitle == "单一取值"
    none = choropleth.classify([np.nan, None], "quantiles", 5)
    assert none.k == 0 and none.no_data == 2 and list(none.colours_of([np.nan])) == [choropleth.NO_DATA_COLOUR]
    ints = choropleth.classify(pd.array([3, None, 1, 2], dtype="Int64"), "quantile", 3)  # an alias
    assert ints.scheme == "quantiles" and list(ints.index_of([3, None, 1, 2])) == [2, -1, 0, 1]


def test_natural_breaks_are_jenks_and_do_not_change_between_runs() -> None:
    rng = np.random.default_rng(7)
    small = rng.gamma(2.0, size=150)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba not installed
        jenks = tuple(mapclassify.FisherJenks(small, k=5).bins)
    assert choropleth.classify(small, "natural_breaks", 5).edges[1:] == jenks  # exact Jenks
    big = np.concatenate([rng.normal(10, 1, 400), rng.normal(30, 1, 400), rng.normal(60, 2, 400)])
    state = np.random.get_state()
    first = choropleth.classify(big, "natural_breaks", 3)
    assert first == choropleth.classify(big, "natural_breaks", 3)  # k-means, seeded
    assert np.array_equal(np.random.get_state()[1], state[1])  # the global generator given back
    assert first.counts == (400, 400, 400)
    with pytest.raises(choropleth.InvalidInput, match="scheme"):
        choropleth.classify(big, "headtail", 3)


def test_choropleth_geojson_rounds_simplifies_and_marks_no_data() -> None:
    import geopandas as gpd
    import shapely

    wiggly = shapely.Polygon([(113.0000004, 34.0), (113.0005, 34.000000001), (113.001, 34.0), (113.001, 34.001),
                              (113.000123456789, 34.0015), (113.0, 34.001)])  # fmt: skip
    regions = gpd.GeoDataFrame(
        {"code": ["a", "b", "c"], "name": ["甲", "乙", "丙"], "rework_rate": [0.1, np.nan, 0.3],
         "rank": pd.array([1, None, 2], dtype="Int64")},
        geometry=[wiggly, shapely.box(113.001, 34.0, 113.002, 34.001), shapely.box(113.002, 34.0, 113.003, 34.001)],
        crs=4490,
    )  # fmt: skip
    body = choropleth.choropleth(regions, "rework_rate", k=2, properties=("code", "name", "rank"))
    fc = body["features"]
    assert fc["type"] == "FeatureCollection" and [f["id"] for f in fc["features"]] == ["a", "b", "c"]
    a, b, c = (f["properties"] for f in fc["features"])
    assert a == {"code": "a", "name": "甲", "rank": 1, "value": 0.1, "value_label": "10.0%", "class": 0,
                 "colour": body["legend"][0]["colour"]}  # fmt: skip
    assert b["class"] is None and b["value"] is None and b["colour"] == choropleth.NO_DATA_COLOUR and b["rank"] is None
    assert c["class"] == 1
    ring = fc["features"][0]["geometry"]["coordinates"][0]
    assert len(ring) == 6  # the 0.1 mm wiggle is gone, the 55 m bump kept
    assert all(round(x, 6) == x and round(y, 6) == y for x, y in ring)
    assert [113.000123, 34.0015] in ring and [113.0, 34.0] in ring
    assert [row["count"] for row in body["legend"]] == [1, 1, 1] and body["legend"][-1]["class"] is None
    assert body["breaks"] == [0.1, 0.2, 0.3]


def test_map_geojson_rings_follow_the_right_hand_rule_without_rounding_repeats() -> None:
    """review23 D2: the choropleth (console, /evaluation/map) and the static maps send RFC 7946 rings — exterior
    counter-clockwise, holes clockwise — whatever the stored orientation, the type kept, no vertex repeated."""
    import geopandas as gpd
    import shapely

    exterior = [(116.0, 39.9), (116.0, 39.901), (116.001, 39.901), (116.0010000004, 39.901), (116.001, 39.9)]
    hole = [(116.0004, 39.9004), (116.0006, 39.9004), (116.0006, 39.9006), (116.0004, 39.9006)]
    clockwise = shapely.MultiPolygon([shapely.Polygon(exterior, [hole])])
    assert not clockwise.geoms[0].exterior.is_ccw and clockwise.geoms[0].interiors[0].is_ccw
    frame = gpd.GeoDataFrame(
        {"code": ["cw", "pt"], "rework_rate": [0.1, 0.2]},
        geometry=[clockwise, shapely.Point(116.00012345678, 39.9)],
        crs=4490,
    )
    for fc in (choropleth.choropleth(frame, "rework_rate", k=2)["features"], render._feature_collection(frame)):
        polygon, point = (f["geometry"] for f in fc["features"])
        assert polygon["type"] == "MultiPolygon" and point == {"type": "Point", "coordinates": [116.000123, 39.9]}
        [[outer, inner]] = polygon["coordinates"]
        assert shapely.LinearRing(outer).is_ccw and not shapely.LinearRing(inner).is_ccw
        assert outer == [[116.0, 39.9], [116.001, 39.9], [116.001, 39.901], [116.0, 39.901], [116.0, 39.9]]
        assert len(inner) == 5 and all(a != b for a, b in itertools.pairwise(outer))


# -- review9 S1, S2, M1 ------------------------------------------------------------------------------------


def test_case_maps_filter_by_state_and_period_draw_open_cases_on_top_and_colour_by_light(
    district: Engine, settings: Settings, tmp_path: Path
) -> None:
    with district.connect() as conn:
        rows = conn.execute(text("SELECT id, state, created_at FROM cases ORDER BY id")).all()
    open_ids = [r.id for r in rows if r.state not in render.TERMINAL_STATES]
    assert len(open_ids) == 4 and len(rows) == 6
    with district.begin() as conn:  # in clock time (node_calendar_time): 10 % used, 90 % used, past due; suspended
        for case_id, started, due in zip(
            open_ids[:3], ("1 hour", "9 days", "10 days"), ("30 days", "1 day", "-1 day"), strict=True
        ):
            conn.execute(
                text(
                    "UPDATE cases SET node_calendar_time = true, "
                    "node_started_at = now() - CAST(:started AS interval), due_at = now() + CAST(:due AS interval) "
                    "WHERE id = :id"
                ),
                {"id": case_id, "started": started, "due": due},
            )
        conn.execute(text("UPDATE cases SET state = 'suspended' WHERE id = :id"), {"id": open_ids[3]})
    # all states: the closed (rejected) cases first in the file, so the open ones are drawn above them
    out = tmp_path / "all.html"
    code, output = run(settings, "--layer", "cases", "--color-by", "state", "--out", str(out))
    assert code == 0, output
    with district.connect() as conn:
        gdf, total = render.load_cases(conn)
    assert total == 6 and list(gdf["state"].isin(render.TERMINAL_STATES)) == [True, True, False, False, False, False]
    # 在办 only, coloured by light (红黄绿灯 as the console draws them)
    out = tmp_path / "open.html"
    code, output = run(settings, "--layer", "cases", "--state", "open", "--color-by", "light", "--out", str(out))
    assert code == 0, output
    page = check_folder(out)
    assert "4 features" in output and "在办(未结案)" in page
    # one case of each light and one suspended (挂账: no running clock), by times well clear of the render's now;
    # the legend's rows in the lights' own order, each with its colour (review57 F5)
    assert coloured_legend_rows(page) == [
        ("绿灯", 1, render.LIGHT_COLOURS["green"]),
        ("黄灯", 1, render.LIGHT_COLOURS["yellow"]),
        ("红灯", 1, render.LIGHT_COLOURS["red"]),
        ("未计时(挂账、无时限或已结案)", 1, render.NO_DATA_COLOUR),
    ]
    assert "按类别(3 类 + 未计时)" in page  # the legend's rows: its classes and the unclocked row
    assert "案件 · 红黄绿灯" in page and json.dumps("红黄绿灯")[1:-1] in page  # legend title, tooltip
    # a period: the cases reported in it (created_at was moved back by id days)
    newest = max(r.created_at for r in rows).astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    code, output = run(
        settings, "--layer", "cases", "--period", f"{newest}..{newest + dt.timedelta(days=1)}",
        "--out", str(tmp_path / "day.html"),
    )  # fmt: skip
    assert code == 0 and "1 features" in output, output
    assert "上报于" in (tmp_path / "day.html").read_text(encoding="utf-8")
    # refused: an unknown state, a state filter on another layer
    code, output = run(settings, "--layer", "cases", "--state", "nope", "--out", str(tmp_path / "x.html"))
    assert code == 2 and "--state" in output and "open" in output and "dispatched" in output
    code, output = run(settings, "--layer", "grids", "--state", "open", "--out", str(tmp_path / "x.html"))
    assert code == 2 and "cases" in output
    code, output = run(settings, "--layer", "components", "--period", "2026-10", "--out", str(tmp_path / "x.html"))
    assert code == 2 and "--period" in output


def test_static_maps_have_a_metric_scale_bar_and_no_leaflet_prefix(
    district: Engine, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "g.html"
    code, output = run(settings, "--layer", "grids", "--tier", "3", "--out", str(out))
    assert code == 0, output
    page = check_folder(out)
    assert "L.control.scale({metric: true, imperial: false" in page and "L.control.scale()" not in page
    assert "attributionControl.setPrefix(false)" in page


def test_indicator_colours_follow_which_way_is_better_in_the_rules() -> None:
    from gisgrid.evaluation import default_rules

    weighted = {w.indicator: w.complement for ws in default_rules().weights.values() for w in ws}
    assert weighted["on_time_disposal_rate"] is False and weighted["rework_rate"] is True  # what the rules say
    assert choropleth.better_when("on_time_disposal_rate") == "higher"
    assert choropleth.better_when("closure_rate") == "higher"
    assert choropleth.better_when("rework_rate") == "lower" and choropleth.better_when("public_report_rate") == "lower"
    assert choropleth.better_when("score") == "higher" and choropleth.better_when("rank") == "lower"
    assert choropleth.better_when("filed") is None  # an amount: no direction, the plain light → dark ramp

    def greenness(colour: str) -> int:
        r, g = int(colour[1:3], 16), int(colour[3:5], 16)
        return g - r

    values = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    good_high = choropleth.classify_indicator(values, "on_time_disposal_rate", "equal_interval", 5)
    assert greenness(good_high.colours[-1]) > 0 > greenness(good_high.colours[0])  # 100 % green, 50 % red
    good_low = choropleth.classify_indicator(values, "rework_rate", "equal_interval", 5)
    assert greenness(good_low.colours[0]) > 0 > greenness(good_low.colours[-1])
    amount = choropleth.classify_indicator(values * 10, "filed", "equal_interval", 5)
    assert amount.colours == choropleth.ramp_colours(5, None)


def test_the_evaluation_map_colours_the_best_grids_green(evaluated: Engine, settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "rate.html"
    code, output = run(
        settings, "--layer", "evaluation", "--indicator", "on_time_disposal_rate", "--period", PERIOD,
        "--scheme", "equal_interval", "--out", str(out),
    )  # fmt: skip
    assert code == 0, output
    page = check_folder(out)
    assert "越高越好(绿好红差)" in page
    body = re.search(r'<div id="gg-legend".*?</ul></div>', page, re.S)
    assert body
    colours = re.findall(r'<li><i style="background:(#[0-9a-f]{6})"></i>', body.group(0))
    classes = [c for c in colours if c != choropleth.NO_DATA_COLOUR]
    assert len(classes) >= 2
    top, bottom = classes[-1], classes[0]  # legend rows go from the lowest rate to the highest
    assert int(top[3:5], 16) > int(top[1:3], 16) and int(bottom[1:3], 16) > int(bottom[3:5], 16)


# -- review24 #1: names from data are text in the page --------------------------------------------------------

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "</script><script>alert(2)</script>"


def geojson_data(page: str) -> dict:
    """The data's FeatureCollection folium embeds in the page (``geo_json_…_add({...});``)."""
    found = re.findall(r"\bgeo_json_\w+_add\((\{.*?\})\);\n", page, re.S)
    assert found
    return json.loads(found[-1])  # the data's layer: a point map draws the streets' lines before it


def assert_no_markup_from_data(page: str) -> None:
    for raw in ("<img", "onerror=alert(1)>", "<script>alert(2)", "</script><script>alert"):
        assert raw not in page, raw


def test_names_holding_markup_are_text_in_tooltips_legend_and_title(
    district: Engine, settings: Settings, tmp_path: Path
) -> None:
    with district.begin() as conn:
        ids = conn.execute(text("SELECT id FROM components ORDER BY id LIMIT 3")).scalars().all()
        for cid, name in zip(ids, (IMG, SCRIPT, "路灯 & 灯杆"), strict=True):
            conn.execute(text("UPDATE components SET name = :n WHERE id = :i"), {"n": name, "i": cid})
        tier3 = conn.execute(text("SELECT code FROM management_grids WHERE tier = 3 ORDER BY code LIMIT 1")).scalar()
        conn.execute(text("UPDATE management_grids SET name = :n WHERE code = :c"), {"n": IMG, "c": tier3})
        conn.execute(text("UPDATE admin_units SET name = :n WHERE code = :c"), {"n": SCRIPT, "c": COMMUNITIES[0]})

    # components coloured by name: each name its own category (escaped in the data, not in the colouring)
    out = tmp_path / "comp.html"
    code, output = run(settings, "--layer", "components", "--color-by", "name", "--out", str(out))
    assert code == 0, output
    page = check_folder(out)
    assert_no_markup_from_data(page)
    props = {f["properties"]["id"]: f["properties"] for f in geojson_data(page)["features"]}
    assert props[ids[0]]["name"] == "&lt;img src=x onerror=alert(1)&gt;"
    assert props[ids[1]]["name"] == "&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;"
    assert props[ids[2]]["name"] == "路灯 &amp; 灯杆"
    assert sum(p["name"] == "井盖" for p in props.values()) == 37  # plain names as they are
    legend = dict(legend_rows(page))  # (unescaped labels)
    assert legend[IMG] == 1 and legend[SCRIPT] == 1 and legend["路灯 & 灯杆"] == 1 and legend["井盖"] == 37
    with district.connect() as conn:
        gdf, _ = render.load_components(conn)
    built, entries = render.build_map(gdf, layer="components", column="name")
    colours = {e.label: e.colour for e in entries}
    assert len(set(colours.values())) == len(colours) == 4  # 井盖 and the three names: no name fell into 其他
    style = re.search(r"switch\(feature\.id\) \{(.*?)default:", built, re.S)
    assert style is not None
    for i, name in ((1, IMG), (2, SCRIPT), (3, "路灯 & 灯杆")):  # features in id order, 0 = the first one
        pos = [f["properties"]["id"] for f in geojson_data(built)["features"]].index(ids[i - 1])
        case = re.search(rf'case "{pos}":.*?return (\{{.*?\}});', style.group(1), re.S)
        assert case is not None and json.loads(case.group(1))["fillColor"] == colours[name]

    # grids: a tier-3 grid's name, a community's name in the unit grids' tooltips; a title given on the CLI
    out = tmp_path / "grids3.html"
    code, output = run(settings, "--layer", "grids", "--tier", "3", "--title", f"三级网格 {IMG}", "--out", str(out))
    assert code == 0, output
    page = check_folder(out)
    assert_no_markup_from_data(page)
    assert f"<title>数字化城市管理监督指挥中心 · 专题图 · 三级网格 {html.escape(IMG)}</title>" in page
    assert f"<h1>数字化城市管理监督指挥中心 · 三级网格 {html.escape(IMG)}</h1>" in page
    names = {f["properties"]["code"]: f["properties"]["name"] for f in geojson_data(page)["features"]}
    assert names[tier3] == html.escape(IMG)
    out = tmp_path / "unit.html"
    code, output = run(settings, "--layer", "grids", "--color-by", "community_name", "--out", str(out))
    assert code == 0, output
    page = check_folder(out)
    assert_no_markup_from_data(page)
    shown = {f["properties"]["community_name"] for f in geojson_data(page)["features"]}
    assert html.escape(SCRIPT) in shown and SCRIPT not in shown


def test_the_evaluation_map_shows_region_names_as_text() -> None:
    import geopandas as gpd
    import shapely

    regions = gpd.GeoDataFrame(
        {"code": ["a", "b"], "name": [IMG, "金水区 A&B"], "score": [80.0, 60.0], "grade": ["B", "C"],
         "rank": pd.array([1, 2], dtype="Int64")},
        geometry=[shapely.box(113.0, 34.0, 113.001, 34.001), shapely.box(113.001, 34.0, 113.002, 34.001)],
        crs=4490,
    )  # fmt: skip
    page, legend = render.build_evaluation_map(regions, indicator="score", level="tier3", period_label="2026-11")
    assert_no_markup_from_data(page)
    props = [f["properties"] for f in geojson_data(page)["features"]]
    assert [p["name"] for p in props] == [html.escape(IMG), "金水区 A&amp;B"]
    assert [p["value_label"] for p in props] == ["80", "60"] and [p["rank"] for p in props] == [1, 2]
    assert len(legend) == 2 and {p["colour"] for p in props} == {e.colour for e in legend}


def test_components_are_coloured_by_the_exports_field_names_too(
    district: Engine, settings: Settings, tmp_path: Path
) -> None:
    """review38 U4: ``--color-by GLBJZT`` (the name every components export writes) colours as ``status`` does;
    ZGBMDM is main_dept_code, in any case; an unknown name is refused listing both names of each column."""
    with district.begin() as conn:
        conn.execute(text("UPDATE components SET main_dept_code = '990000000000000003'"))
    by_status, by_field = tmp_path / "status.html", tmp_path / "glbjzt.html"
    code, output = run(settings, "--layer", "components", "--color-by", "status", "--out", str(by_status))
    assert code == 0, output
    code, output = run(settings, "--layer", "components", "--color-by", "GLBJZT", "--out", str(by_field))
    assert code == 0, output
    assert legend_rows(check_folder(by_field)) == legend_rows(check_folder(by_status)) == [("完好", 36), ("破损", 4)]
    assert "城市部件 · 状态" in by_field.read_text(encoding="utf-8")
    out = tmp_path / "dept.html"
    code, output = run(settings, "--layer", "components", "--color-by", "zgbmdm", "--out", str(out))
    assert code == 0, output
    assert legend_rows(check_folder(out)) == [("区环境卫生服务中心(990000000000000003)", 40)]  # named, as by code

    code, output = run(settings, "--layer", "components", "--color-by", "GLBJXX", "--out", str(tmp_path / "x.html"))
    assert code == 2 and not (tmp_path / "x.html").exists()
    message = " ".join(output.replace("│", " ").split())
    assert (
        "layer components has no column 'GLBJXX' to colour by; choose one of — numbers: —; categories: "
        "id (GLBJBSM), scheme, class_code, name (GLBJMC), status (GLBJZT), main_dept_code (ZGBMDM), "
        "maint_dept_code (YHDWDM), unit_grid_code (SZDYWGBSM), street_code (SZJDDM), community_code (SZSQDM), "
        "initial_date (CSRQ), change_date (BGRQ)"  # no component has a date here: a column of None
    ) in message
    with district.connect() as conn:
        gdf, _ = render.load_components(conn)
    with pytest.raises(render.UnknownColumn) as refused:
        render.build_map(gdf, layer="components", column="GLBJXX")
    assert refused.value.detail == [
        {
            "field": "color_by",
            "reason": "unknown column",
            "choices": [
                "id", "scheme", "class_code", "name", "status", "main_dept_code", "maint_dept_code", "unit_grid_code",
                "street_code", "community_code", "initial_date", "change_date", "GLBJBSM", "GLBJMC", "GLBJZT",
                "ZGBMDM", "YHDWDM", "SZDYWGBSM", "SZJDDM", "SZSQDM", "CSRQ", "BGRQ",
            ],
        }
    ]  # fmt: skip
