"""`boundaries import` refuses a unit overlapping a stored unit of its level under another code (review 39 D2): a
point in both would be located in either (the lower code), so reports would silently go to the wrong district."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import box
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gisgrid.boundaries import BoundaryOptions
from gisgrid.cli import app
from gisgrid.errors import InvalidInput, Reason
from gisgrid.grids import workflows
from gisgrid.settings import Settings

runner = CliRunner()
Z = box(113.60, 34.70, 113.70, 34.75)  # 419901 Z区
ZHONGYUAN = box(113.65, 34.70, 113.75, 34.71)  # 410102 中原区: its west half lies in Z区


def write(folder: Path, name: str, units: list[tuple[str, str, shapely.Geometry]]) -> Path:
    gdf = gpd.GeoDataFrame(
        {"code": [u[0] for u in units], "name": [u[1] for u in units]}, geometry=[u[2] for u in units], crs=4490
    )
    path = folder / name
    gdf.to_file(path, driver="GeoJSON")
    return path


def stored(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT code, ST_AsText(geom) FROM admin_units ORDER BY code")).all())


def geodesic_area(geom: shapely.Geometry) -> float:
    return abs(Geod(ellps="GRS80").geometry_area_perimeter(geom)[0])


@pytest.fixture
def z_district(clean_db: Engine, tmp_path: Path) -> Engine:
    workflows.import_boundaries(clean_db, write(tmp_path, "z.geojson", [("419901", "Z区", Z)]), BoundaryOptions())
    return clean_db


def test_district_overlapping_a_stored_district_is_refused_naming_both_and_the_area(
    z_district: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path, "zhongyuan.geojson", [("410102", "中原区", ZHONGYUAN)])
    area = geodesic_area(Z.intersection(ZHONGYUAN))
    assert 5_000_000 < area < 5_200_000
    expected = (
        f"zhongyuan.geojson: 1 overlap(s) above 1 m² with a stored unit of the same level under another code: "
        f"410102 中原区 × stored 419901 Z区: {area:.1f} m²; a point there would be located in either unit. Correct "
        "the boundaries (or, if it is the same place under a corrected code, replace a 临时编码 provisional code "
        "with gisgrid boundaries recode OLD NEW); nothing written"
    )
    before = stored(z_district)
    for dry_run in (False, True):
        with pytest.raises(InvalidInput) as refused:
            workflows.import_boundaries(z_district, path, BoundaryOptions(level="district"), dry_run=dry_run)
        assert refused.value.message == expected
        assert refused.value.reason == Reason.OVERLAPS_STORED_UNIT
        assert refused.value.detail == [
            {
                "field": "code",
                "value": "410102",
                "stored_code": "419901",
                "area_m2": round(area, 1),
                "reason": "overlaps a stored unit of the same level",
                "code": "overlaps_stored_unit",
            }
        ]
        assert stored(z_district) == before

    # The command line says the same with --dry-run, writing nothing.
    env = {"GISGRID_DATABASE_URL": settings.database_url or ""}
    r = runner.invoke(app, ["boundaries", "import", str(path), "--level", "district", "--dry-run"], env=env)
    assert r.exit_code == 1 and str(r.exception) == expected
    assert stored(z_district) == before


def test_adjacent_district_and_the_stored_districts_own_streets_are_accepted(
    z_district: Engine, tmp_path: Path
) -> None:
    # 410103 shares Z区's east edge (with a vertex of its own on it); streets are compared with streets only.
    neighbour = shapely.Polygon([(113.70, 34.70), (113.80, 34.70), (113.80, 34.75), (113.70, 34.75), (113.70, 34.72)])
    done = workflows.import_boundaries(
        z_district, write(tmp_path, "erqi.geojson", [("410103", "二七区", neighbour)]), BoundaryOptions()
    )
    assert done.summary is not None and (done.summary.inserted, done.summary.updated) == (1, 0)
    streets = [
        ("419901001", "甲街道", box(113.60, 34.70, 113.65, 34.75)),
        ("419901002", "乙街道", box(113.65, 34.70, 113.70, 34.75)),
    ]
    done = workflows.import_boundaries(
        z_district, write(tmp_path, "streets.geojson", streets), BoundaryOptions(district_name="Z区")
    )
    assert done.summary is not None and (done.summary.inserted, done.summary.updated) == (2, 1)
    assert sorted(stored(z_district)) == ["410103", "419901", "419901001", "419901002"]


def test_reimport_of_the_same_codes_replaces_them_even_when_redrawn(z_district: Engine, tmp_path: Path) -> None:
    redrawn = box(113.60, 34.70, 113.71, 34.75)
    path = write(tmp_path, "z2.geojson", [("419901", "Z区", redrawn)])
    done = workflows.import_boundaries(z_district, path, BoundaryOptions())
    assert done.summary is not None and (done.summary.inserted, done.summary.updated) == (0, 1)
    assert shapely.equals(shapely.from_wkt(stored(z_district)["419901"]), shapely.MultiPolygon([redrawn]))
