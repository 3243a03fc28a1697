"""``gisgrid map render``: a choropleth folder (HTML + local Leaflet, relative links) that opens offline."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gisgrid import cases as svc
from gisgrid.boundaries import BoundaryOptions
from gisgrid.cli.maprender import app
from gisgrid.grids import workflows
from gisgrid.settings import Settings
from maps import assets, render
from tests.fixtures import COMMUNITIES, write_small_district
from tests.test_components_store import inside_points

LINK = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)""", re.IGNORECASE)
CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")


@pytest.fixture(scope="module")
def installed() -> None:
    assets.install_assets()


@pytest.fixture
def district(installed: None, clean_db: Engine, settings: Settings, tmp_path: Path) -> Engine:
    """The small district with 40 components (4 faulty) and 6 cases (2 of them closed as rejected)."""
    workflows.import_boundaries(clean_db, write_small_district(tmp_path), BoundaryOptions())
    workflows.generate_grids(clean_db)
    workflows.build_tiers(clean_db, target_size=20)
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
        svc.intake(
            clean_db,
            services,
            svc.Intake(class_code="06010" if i % 2 else "06012", lon=float(x), lat=float(y), datum="cgcs2000"),
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


def test_quantile_breaks() -> None:
    import numpy as np

    assert list(render.quantile_breaks(np.array([0, 0, 0, 1, 2, 3, 10.0]), 4)) == [
        0,
        1,
        2.5,
        10,
    ]  # 0 0 | 1 | 2.5 | 10: ties merged
    assert list(render.quantile_breaks(np.array([5.0, 5.0]), 5)) == [5]
    assert render.quantile_breaks(np.array([np.nan]), 5).size == 0
