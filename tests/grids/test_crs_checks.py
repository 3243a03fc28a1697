"""CRS handling of grid making and boundary import, as the outside review (review11 D4, D5, D10, D11, D12, D15)
specified it: wrong declared CRSs refused, true areas, distorting cutting CRSs refused, exact tilings reported
clean, old datums warned about, every district cut in its own zone, tier exports with their area."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import box
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gisgrid.boundaries import BoundaryOptions, read_boundaries
from gisgrid.cli import app
from gisgrid.errors import InvalidInput
from gisgrid.geodesy import DatumApproximate
from gisgrid.grids import workflows
from gisgrid.settings import Settings
from gisgrid.vectorio import read_layer_any

runner = CliRunner()

GEOD = Geod(ellps="GRS80")  # CGCS2000's ellipsoid to 1e-11


def geod_area(geom: shapely.Geometry) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0])


def streets_file(tmp_path: Path, x0: float = 113.70, y0: float = 34.78, w: float = 0.04, name: str = "s.gpkg") -> Path:
    """A street (lon/lat box) split exactly into two communities at its middle meridian; no district feature."""
    mid = x0 + w / 2
    rows = [
        ("410105001", "测试街道", "street", None, box(x0, y0, x0 + w, y0 + 0.02)),
        ("410105001001", "甲社区", "community", "410105001", box(x0, y0, mid, y0 + 0.02)),
        ("410105001002", "乙社区", "community", "410105001", box(mid, y0, x0 + w, y0 + 0.02)),
    ]
    gdf = gpd.GeoDataFrame(
        [r[:4] for r in rows], columns=["code", "name", "level", "parent"], geometry=[r[4] for r in rows], crs=4490
    )
    path = tmp_path / name
    gdf.to_file(path)
    return path


def test_lon_lat_numbers_declared_as_a_projected_crs_are_refused_naming_file_and_crs(tmp_path: Path) -> None:
    path = streets_file(tmp_path)
    wrong = tmp_path / "wrong_declared_proj.gpkg"
    gpd.read_file(path).set_crs(4547, allow_override=True).to_file(wrong)
    with pytest.raises(InvalidInput) as err:
        read_boundaries(wrong, BoundaryOptions(district_name="金水区"))
    message = str(err.value)
    assert "wrong_declared_proj.gpkg" in message and "EPSG:4547" in message
    assert "look like lon/lat degrees" in message and "outside the area of use" in message and "\n" not in message


def test_exact_lon_lat_tiling_is_reported_without_gaps_or_outside_slivers(tmp_path: Path) -> None:
    # 4 km street split at 113.72: projected vertex by vertex it showed a 333.7 m² gap and 166.8 m² outside.
    report = read_boundaries(streets_file(tmp_path), BoundaryOptions(district_name="金水区")).report
    assert report.topology_ok, report.to_text()
    assert (report.gaps, report.outside, report.overlaps) == ([], [], [])


def test_beijing_1954_input_is_converted_with_a_one_line_ballpark_warning(tmp_path: Path) -> None:
    path = streets_file(tmp_path)
    b54 = tmp_path / "b54.gpkg"
    gpd.read_file(path).to_crs(4547).set_crs(2435, allow_override=True).to_file(b54)  # same numbers, old datum
    report = read_boundaries(b54, BoundaryOptions(district_name="金水区")).report
    [warning] = report.warnings
    assert "Beijing 1954" in warning and "ballpark" in warning and "\n" not in warning
    assert f"warning: {warning}" in report.to_text()
    modern = read_boundaries(path, BoundaryOptions(district_name="金水区")).report
    assert modern.warnings == []


def test_area_m2_is_the_geodesic_area_and_web_mercator_is_refused(tmp_path: Path) -> None:
    path = streets_file(tmp_path, w=0.012, name="small.gpkg")
    opts = BoundaryOptions(district_name="金水区")
    with pytest.raises(InvalidInput, match=r"--crs EPSG:3857 .*distorts scale by up to 2\d\.\d%.*'auto'"):
        workflows.make_grids_from_file(path, opts, out=None, crs="EPSG:3857")
    for crs in ("auto", "EPSG:32649", "EPSG:32650"):  # UTM 49N is 1.7° off its meridian here: still accepted
        cells = workflows.make_grids_from_file(path, opts, out=None, crs=crs).cells
        truth = np.array([geod_area(g) for g in cells.to_crs(4490).geometry])
        np.testing.assert_allclose(cells["area_m2"], truth, atol=0.01)  # m² on the ellipsoid, in every CRS


def test_streets_without_a_district_name_are_refused_naming_the_option(clean_db: Engine, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        workflows.import_boundaries(clean_db, streets_file(tmp_path), BoundaryOptions(), dry_run=True)
    assert "--district-name" in str(err.value) and "410105" in str(err.value) and "\n" not in str(err.value)


def test_generate_cuts_each_district_in_its_own_zone(clean_db: Engine, tmp_path: Path) -> None:
    # 410105 at 113.7E (zone CM 114E, EPSG:4547) and 110101 at 116.4E (CM 117E, EPSG:4548), stored together.
    zz = streets_file(tmp_path, w=0.012, name="zz.gpkg")
    bj = gpd.read_file(streets_file(tmp_path, x0=116.40, y0=39.90, w=0.012, name="bj.gpkg"))
    bj["code"] = bj["code"].str.replace("410105", "110101", n=1)
    bj["parent"] = bj["parent"].str.replace("410105", "110101", n=1)
    bj.to_file(tmp_path / "bj2.gpkg")
    workflows.import_boundaries(clean_db, zz, BoundaryOptions(district_name="金水区"))
    workflows.import_boundaries(clean_db, tmp_path / "bj2.gpkg", BoundaryOptions(district_name="东城区"))

    result = workflows.generate_grids(clean_db)

    assert result.zones == {"110101": 4548, "410105": 4547}
    with clean_db.connect() as conn:
        rows = conn.execute(
            text("SELECT district_code, area_m2, ST_AsBinary(geom) AS g FROM unit_grids ORDER BY code")
        ).all()
    assert {r.district_code for r in rows} == {"110101", "410105"}
    truth = np.array([geod_area(shapely.from_wkb(bytes(r.g))) for r in rows])
    np.testing.assert_allclose([r.area_m2 for r in rows], truth, atol=0.01)


def test_tier_grid_exports_carry_their_true_area(loaded: Engine, tmp_path: Path) -> None:
    for tier in ("1", "2", "3"):
        for out in (tmp_path / f"t{tier}.gpkg", tmp_path / f"t{tier}.shp"):
            [written, *_] = workflows.export_grids(loaded, out, tier=tier)
            back = gpd.read_file(written)
            field = "AREA_M2" if out.suffix == ".shp" else "area_m2"  # Shapefile: the README's 10-byte names
            truth = np.array([geod_area(g) for g in back.to_crs(4490).geometry])
            np.testing.assert_allclose(back[field], truth, atol=0.5)


# -- review23 D4: grids export --crs checked as cutting is -------------------------------------------------------


@pytest.mark.parametrize("suffix", [".gpkg", ".shp", ".csv"])
def test_export_to_a_zone_that_does_not_cover_the_grids_is_refused_naming_crs_and_zone(
    loaded: Engine, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"g4548{suffix}"  # the small district lies at 113.7E: CM 117E's area of use is 115.5..118.5E
    with pytest.raises(InvalidInput) as err:
        workflows.export_grids(loaded, out, crs="EPSG:4548")
    message = str(err.value)
    assert message.startswith(
        f"{out}: --crs EPSG:4548 (CGCS2000 / 3-degree Gauss-Kruger CM 117E): the layer spans lon "
    )
    assert "outside the area of use of EPSG:4548 (" in message and "lon 115.5..118.5" in message
    assert message.endswith(
        "use the zone that covers the data (EPSG:4547, CGCS2000 / 3-degree Gauss-Kruger CM 114E) or EPSG:4490 (lon/lat)"
    )
    assert not out.exists()  # nothing written


def test_export_to_a_crs_distorting_scale_is_refused(loaded: Engine, tmp_path: Path) -> None:
    refused = (
        r"--crs EPSG:3857 \(WGS 84 / Pseudo-Mercator\) distorts scale by up to 2\d\.\d% over the layer "
        r"\(more than 0\.3%\): lengths and areas measured in the file would be off by that much; use the zone"
    )
    with pytest.raises(InvalidInput, match=refused):
        workflows.export_grids(loaded, tmp_path / "web.gpkg", crs="EPSG:3857")
    # The same check as cutting's, one fact: Web Mercator is refused there too for the same scale error.
    assert not (tmp_path / "web.gpkg").exists()


def test_export_by_a_ballpark_datum_shift_is_written_with_a_warning(
    loaded: Engine, settings: Settings, tmp_path: Path
) -> None:
    notes: list[str] = []
    [out, *_] = workflows.export_grids(loaded, tmp_path / "b54.gpkg", crs="EPSG:2435", notes=notes)
    [warning] = notes
    assert warning.startswith(
        "b54.gpkg --crs EPSG:2435: CGCS2000 is converted to Beijing 1954 / 3-degree Gauss-Kruger CM 114E (datum "
        "Beijing 1954) with PROJ's ballpark operation (no datum shift, accuracy unknown: often tens of metres)"
    )
    assert "\n" not in warning and gpd.read_file(out).crs.to_epsg() == 2435
    env = {"GISGRID_DATABASE_URL": settings.database_url or ""}
    result = runner.invoke(
        app, ["grids", "export", "--out", str(tmp_path / "b54cli.gpkg"), "--crs", "EPSG:2435"], env=env
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "warning: " + warning.replace("b54.gpkg", "b54cli.gpkg")
    with pytest.warns(DatumApproximate, match="ballpark"):  # without notes: a Python warning, never silent
        workflows.export_grids(loaded, tmp_path / "b54w.gpkg", crs="EPSG:2435")


def test_export_to_the_zone_of_the_grids_is_written_without_a_word(
    loaded: Engine, settings: Settings, tmp_path: Path
) -> None:
    notes: list[str] = []
    [out, *_] = workflows.export_grids(loaded, tmp_path / "g4547.gpkg", crs="EPSG:4547", notes=notes)
    assert notes == [] and gpd.read_file(out).crs.to_epsg() == 4547
    assert workflows.export_grids(loaded, tmp_path / "ll.gpkg", crs="EPSG:4326", notes=notes) and notes == []
    env = {"GISGRID_DATABASE_URL": settings.database_url or ""}
    result = runner.invoke(app, ["grids", "export", "--out", str(tmp_path / "cli.gpkg"), "--crs", "EPSG:4547"], env=env)
    assert result.exit_code == 0 and "warning" not in result.output, result.output


def test_a_projected_csv_export_says_its_crs_in_the_result_line_and_a_prj(
    loaded: Engine, settings: Settings, tmp_path: Path
) -> None:
    """review23 D6: the CSV's projected WKT is recorded as EPSG:4547 beside it and in what the command prints."""
    out = tmp_path / "g4547.csv"
    env = {"GISGRID_DATABASE_URL": settings.database_url or ""}
    result = runner.invoke(app, ["grids", "export", "--out", str(out), "--crs", "EPSG:4547"], env=env)
    assert result.exit_code == 0, result.output
    csvt, prj = out.with_suffix(".csvt"), out.with_suffix(".prj")
    assert result.output == f"wrote {out}, {csvt}, {prj} (coordinates in EPSG:4547)\n"
    back = read_layer_any(out)
    assert back.crs.to_epsg() == 4547 and back.total_bounds[0] > 100_000  # GK metres, and said to be
