"""read_boundaries on hand-made fixture files (GeoJSON, Shapefile, GeoPackage) with Chinese names."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.affinity
from pyproj import Geod
from shapely.geometry import LineString, Point, Polygon, box

from gisgrid import geodesy
from gisgrid.boundaries import UNIT_COLUMNS, BoundaryOptions, provisional, read_boundaries
from gisgrid.errors import InvalidInput
from gisgrid.grids.cutting import choose_metric_crs
from tests.fixtures import legacy_gbk_shapefile

# Fixtures are drawn in metres in CGCS2000 3° GK CM 117E (Beijing), so their areas are known exactly.
BJ_GK = "EPSG:4548"
X0, Y0 = 440000.0, 4420000.0


def mbox(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    return box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def write(tmp_path: Path, records: list[dict], name: str = "b.geojson", crs: str | None = BJ_GK, **kw) -> Path:
    """Write records (attributes + metric ``geometry``) as lon/lat EPSG:4490, or as is when crs is None."""
    gdf = gpd.GeoDataFrame(records, geometry="geometry", crs=crs)
    if crs == BJ_GK:
        # Densified first, as real lon/lat sources are: a 2 km metric edge written as one lon/lat chord is ~2.5 cm
        # off its midpoint, which the topology check (measuring lon/lat edges as drawn) reports as a sliver.
        gdf = gdf.set_geometry(gdf.geometry.segmentize(10.0)).to_crs("EPSG:4490")
    path = tmp_path / name
    gdf.to_file(path, engine="pyogrio", **kw)
    return path


def three_levels() -> list[dict]:
    return [
        {"code": "110101", "name": "东城区", "geometry": mbox(0, 0, 2000, 1000)},
        {"code": "110101001", "name": "东华门街道", "geometry": mbox(0, 0, 1000, 1000)},
        {"code": "110101002", "name": "景山街道", "geometry": mbox(1000, 0, 2000, 1000)},
        {"code": "110101001001", "name": "多福巷社区", "geometry": mbox(0, 0, 500, 1000)},
        {"code": "110101001002", "name": "银闸社区", "geometry": mbox(500, 0, 1000, 1000)},
    ]


def metric_area(geom) -> float:
    return float(gpd.GeoSeries([geom], crs="EPSG:4490").to_crs(BJ_GK).area.iloc[0])


# ---------------------------------------------------------------- codes and levels


def test_full_codes_three_levels(tmp_path: Path) -> None:
    bset = read_boundaries(write(tmp_path, three_levels()), BoundaryOptions())
    units = bset.units
    assert list(units.columns) == [*UNIT_COLUMNS, "synthesised", "code_assigned", "geometry"]
    assert units.crs == "EPSG:4490"
    assert (units.geom_type == "MultiPolygon").all()
    assert units["code"].tolist() == ["110101", "110101001", "110101001001", "110101001002", "110101002"]
    row = units.set_index("code").loc["110101001002"]
    assert row["level"] == "community" and row["parent_code"] == "110101001"
    assert (row["district_code"], row["street_code"], row["community_code"]) == (
        "110101",
        "110101001",
        "110101001002",
    )
    assert (row["district_name"], row["street_name"], row["community_name"]) == ("东城区", "东华门街道", "银闸社区")
    district = units.set_index("code").loc["110101"]
    assert district["parent_code"] is None and district["street_code"] is None and district["street_name"] is None
    assert bset.report.counts == {"district": 1, "street": 2, "community": 2}
    assert bset.report.topology_ok, bset.report.to_text()
    assert "topology: no overlaps" in bset.report.to_text()
    assert abs(metric_area(units.geometry.iloc[0]) - 2e6) < 2e6 * 1e-4


def test_local_codes_with_level_and_parent_fields(tmp_path: Path) -> None:
    records = [
        {"code": "110101", "name": "东城区", "level": "区", "parent_code": None, "geometry": mbox(0, 0, 2000, 1000)},
        {
            "code": "001",
            "name": "东华门街道",
            "level": "街道",
            "parent_code": "110101",
            "geometry": mbox(0, 0, 1000, 1000),
        },
        {
            "code": "002",
            "name": "景山街道",
            "level": "street",
            "parent_code": "110101",
            "geometry": mbox(1000, 0, 2000, 1000),
        },
        {
            "code": "005",
            "name": "多福巷社区",
            "level": "社区",
            "parent_code": "001",
            "geometry": mbox(0, 0, 1000, 1000),
        },
    ]
    units = read_boundaries(write(tmp_path, records), BoundaryOptions(district_code="110101")).units
    assert units["code"].tolist() == ["110101", "110101001", "110101001005", "110101002"]
    assert units.set_index("code").loc["110101001005", "parent_code"] == "110101001"


def test_numeric_local_codes_keep_leading_zeros(tmp_path: Path) -> None:
    records = [
        {"code": 110101, "name": "东城区", "geometry": mbox(0, 0, 2000, 1000)},
        {"code": 1, "name": "东华门街道", "geometry": mbox(0, 0, 1000, 1000)},
        {"code": 2, "name": "景山街道", "geometry": mbox(1000, 0, 2000, 1000)},
    ]
    levels = ["district", "street", "street"]
    path = write(tmp_path, [r | {"level": lv} for r, lv in zip(records, levels, strict=True)])
    bset = read_boundaries(path, BoundaryOptions())
    assert bset.units["code"].tolist() == ["110101", "110101001", "110101002"]
    assert any("001–999" in note for note in bset.report.notes)


def lon_lat_streets() -> list[dict]:
    # A 2 × 2 block of streets in lon/lat plus one further south, written in shuffled order.
    return [
        {"name": "东南街道", "geometry": box(116.41, 39.90, 116.42, 39.91)},
        {"name": "西北街道", "geometry": box(116.40, 39.91, 116.41, 39.92)},
        {"name": "南端街道", "geometry": box(116.40, 39.88, 116.42, 39.89)},
        {"name": "西南街道", "geometry": box(116.40, 39.90, 116.41, 39.91)},
        {"name": "东北街道", "geometry": box(116.41, 39.91, 116.42, 39.92)},
    ]


ASSIGN = BoundaryOptions(level="street", assign_codes=True, district_code="110101", district_name="东城区")


def test_assign_codes_north_to_south_then_west_to_east(tmp_path: Path) -> None:
    bset = read_boundaries(write(tmp_path, lon_lat_streets(), crs="EPSG:4490"), ASSIGN)
    streets = bset.units[bset.units["level"] == "street"]
    assert dict(zip(streets["name"], streets["code"], strict=True)) == {
        "西北街道": "110101001",
        "东北街道": "110101002",
        "西南街道": "110101003",
        "东南街道": "110101004",
        "南端街道": "110101005",
    }
    assert len(bset.report.assigned) == 5
    assert "assigned 5 codes" in bset.report.to_text()


def test_assign_codes_stable_across_reads_and_row_order(tmp_path: Path) -> None:
    first = read_boundaries(write(tmp_path, lon_lat_streets(), "a.geojson", crs="EPSG:4490"), ASSIGN).units
    again = read_boundaries(tmp_path / "a.geojson", ASSIGN).units
    reordered = read_boundaries(write(tmp_path, lon_lat_streets()[::-1], "b.geojson", crs="EPSG:4490"), ASSIGN).units
    for other in (again, reordered):
        assert other[["code", "name"]].equals(first[["code", "name"]])


def test_assign_codes_skips_codes_in_use(tmp_path: Path) -> None:
    records = lon_lat_streets()
    for r in records:
        r["code"] = "001" if r["name"] == "西南街道" else None
    units = read_boundaries(write(tmp_path, records, crs="EPSG:4490"), ASSIGN).units
    codes = dict(zip(units["name"], units["code"], strict=True))
    assert codes["西南街道"] == "110101001"
    assert [codes[n] for n in ("西北街道", "东北街道", "东南街道", "南端街道")] == [
        "110101002",
        "110101003",
        "110101004",
        "110101005",
    ]


def test_assign_codes_marks_exactly_the_numbered_units_as_provisional(tmp_path: Path) -> None:
    records = lon_lat_streets()
    for r in records:
        r["code"] = "001" if r["name"] == "西南街道" else None
    bset = read_boundaries(write(tmp_path, records, crs="EPSG:4490"), ASSIGN)
    flags = dict(zip(bset.units["code"], bset.units["code_assigned"], strict=True))
    # The file's 001 and the district (--district-code, an official code) are not numbered by gisgrid.
    assert flags == {
        "110101": False,
        "110101001": False,
        "110101002": True,
        "110101003": True,
        "110101004": True,
        "110101005": True,
    }
    lines = bset.report.to_text().splitlines()
    assert (
        "assigned 4 codes (north→south, then west→east, per parent): 临时编码 provisional, not official codes — "
        "replace them when the official ones are known (gisgrid boundaries recode OLD NEW)" in lines
    )
    assert [line for line in lines if line.startswith("临时编码")] == [
        "临时编码 provisional 110101002 西北街道 (street)",
        "临时编码 provisional 110101003 东北街道 (street)",
        "临时编码 provisional 110101004 东南街道 (street)",
        "临时编码 provisional 110101005 南端街道 (street)",
    ]
    assert (
        not read_boundaries(write(tmp_path, three_levels(), "o.geojson"), BoundaryOptions())
        .units["code_assigned"]
        .any()
    )


def test_provisional_codes_are_those_embedding_a_numbered_street_or_community() -> None:
    codes = pd.Series(["110101", "110101002", "110101002001", "110101002001003", "110101001007001", "11010100100701"])
    assigned = {"110101002", "110101001007"}
    assert provisional(codes, assigned).tolist() == [False, True, True, True, True, True]
    assert provisional(codes, set()).tolist() == [False] * 6


def test_synthesised_district_from_option(tmp_path: Path) -> None:
    bset = read_boundaries(write(tmp_path, lon_lat_streets(), crs="EPSG:4490"), ASSIGN)
    district = bset.units[bset.units["level"] == "district"].iloc[0]
    assert (district["code"], district["name"], bool(district["synthesised"])) == ("110101", "东城区", True)
    streets = bset.units[bset.units["level"] == "street"]
    assert (streets["district_name"] == "东城区").all()
    assert metric_area(district.geometry) == pytest.approx(streets.to_crs(BJ_GK).area.sum(), rel=1e-6)
    [synth] = bset.report.synthesised
    assert (synth.code, synth.name, synth.children) == ("110101", "东城区", 5)
    assert "synthesised district 110101 东城区" in bset.report.to_text()
    assert bset.report.topology_ok  # no gap/outside check against a parent made of its children


def test_synthesised_district_named_from_parent_name_field(tmp_path: Path) -> None:
    records = [r | {"district": "东城区"} for r in lon_lat_streets()]
    opts = BoundaryOptions(level="street", assign_codes=True, district_code="110101", parent_name_field="district")
    units = read_boundaries(write(tmp_path, records, crs="EPSG:4490"), opts).units
    assert units.iloc[0]["name"] == "东城区"


def test_parent_found_by_location(tmp_path: Path) -> None:
    records = [
        {"code": "110101", "name": "东城区", "level": "district", "geometry": mbox(0, 0, 2000, 1000)},
        {"code": None, "name": "东华门街道", "level": "street", "geometry": mbox(0, 0, 1000, 1000)},
        {"code": None, "name": "景山街道", "level": "street", "geometry": mbox(1000, 0, 2000, 1000)},
    ]
    bset = read_boundaries(write(tmp_path, records), BoundaryOptions(assign_codes=True))
    assert bset.units["code"].tolist() == ["110101", "110101001", "110101002"]
    assert any("by location" in note for note in bset.report.notes)


# ---------------------------------------------------------------- refusals


def test_empty_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": []}), encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"empty\.geojson: no features"):
        read_boundaries(path, BoundaryOptions())


def two_layer_gpkg(tmp_path: Path) -> Path:
    path = tmp_path / "admin.gpkg"
    recs = three_levels()
    gpd.GeoDataFrame(recs[:1], crs=BJ_GK).to_crs(4490).to_file(path, layer="districts")
    gpd.GeoDataFrame(recs[1:3], crs=BJ_GK).to_crs(4490).to_file(path, layer="streets")
    return path


def test_gpkg_layers(tmp_path: Path) -> None:
    path = two_layer_gpkg(tmp_path)
    units = read_boundaries(path, BoundaryOptions(layer="streets", district_name="东城区")).units
    assert units["code"].tolist() == ["110101", "110101001", "110101002"]
    assert units["name"].tolist() == ["东城区", "东华门街道", "景山街道"]
    with pytest.raises(InvalidInput, match=r"no layer 'roads'; available layers: districts, streets"):
        read_boundaries(path, BoundaryOptions(layer="roads"))
    with pytest.raises(InvalidInput, match=r"2 layers, choose one with --layer: districts, streets"):
        read_boundaries(path, BoundaryOptions())


def test_missing_code_field_refused(tmp_path: Path) -> None:
    path = write(tmp_path, lon_lat_streets(), crs="EPSG:4490")
    with pytest.raises(InvalidInput, match="no code field 'code' or 'adcode' \\(fields: ") as err:
        read_boundaries(path, BoundaryOptions(level="street"))
    assert "--assign-codes" in err.value.message and "--code-field" in err.value.message
    assert "name" in err.value.detail["fields"]


@pytest.mark.parametrize(("field", "name"), [("adcode", "b.geojson"), ("ADCODE", "b.shp")])
def test_adcode_of_datav_and_amap_files_is_a_default_code_field(tmp_path: Path, field: str, name: str) -> None:
    """review50 F13: DataV / AMap boundary files name the code adcode, a number in their GeoJSON."""
    records = [{field: int(r.pop("code")), **r} for r in three_levels()]
    bset = read_boundaries(write(tmp_path, records, name), BoundaryOptions())
    assert bset.units["code"].tolist() == ["110101", "110101001", "110101001001", "110101001002", "110101002"]
    assert f"codes read from field {field!r} (no field 'code'; --code-field names another)" in bset.report.notes
    # A field named on the command line is that field only.
    with pytest.raises(InvalidInput, match=f"no code field 'cd' \\(fields: {field}, name\\)"):
        read_boundaries(write(tmp_path, records, name), BoundaryOptions(code_field="cd"))


def test_duplicate_codes_refused_naming_both(tmp_path: Path) -> None:
    records = three_levels()
    records[2]["code"] = "110101001"
    with pytest.raises(InvalidInput, match="duplicate codes: code 110101001") as err:
        read_boundaries(write(tmp_path, records), BoundaryOptions())
    assert "row 2 (东华门街道)" in err.value.message and "row 3 (景山街道)" in err.value.message
    assert err.value.detail["duplicates"] == {"110101001": [2, 3]}


def test_non_numeric_code_refused(tmp_path: Path) -> None:
    records = three_levels()
    records[1]["code"] = "11010100A"
    with pytest.raises(InvalidInput, match=r"row 2 \(东华门街道\) '11010100A': code in field 'code' is not numeric"):
        read_boundaries(write(tmp_path, records), BoundaryOptions(level=None))


def test_wrong_code_length_refused(tmp_path: Path) -> None:
    records = three_levels()[1:3]
    records[0]["code"] = "1101010"
    with pytest.raises(InvalidInput, match=r"row 1 \(东华门街道\) '1101010': wrong code length for a street"):
        read_boundaries(write(tmp_path, records), BoundaryOptions(level="street"))


def test_code_not_under_parent_refused(tmp_path: Path) -> None:
    records = three_levels()[1:3]
    with pytest.raises(
        InvalidInput, match=r"row 1 \(东华门街道\) '110101001 under 110102'.*does not start with its parent's code"
    ):
        read_boundaries(write(tmp_path, records), BoundaryOptions(level="street", district_code="110102"))


def test_points_and_lines_refused(tmp_path: Path) -> None:
    records = [
        {"code": "110101001", "name": "东华门街道", "geometry": box(116.40, 39.90, 116.41, 39.91)},
        {"code": "110101002", "name": "景山街道", "geometry": Point(116.4, 39.9)},
        {"code": "110101003", "name": "交道口街道", "geometry": LineString([(116.4, 39.9), (116.5, 39.9)])},
    ]
    with pytest.raises(InvalidInput, match=r"row 2 \(景山街道\), row 3 \(交道口街道\): not a polygon") as err:
        read_boundaries(write(tmp_path, records, crs="EPSG:4490"), BoundaryOptions())
    assert err.value.detail["rows"] == [2, 3]


def test_empty_geometry_refused(tmp_path: Path) -> None:
    records = [
        {"code": "110101001", "name": "东华门街道", "geometry": box(116.40, 39.90, 116.41, 39.91)},
        {"code": "110101002", "name": "景山街道", "geometry": None},
    ]
    with pytest.raises(InvalidInput, match=r"row 2 \(景山街道\): empty geometry"):
        read_boundaries(write(tmp_path, records, crs="EPSG:4490"), BoundaryOptions())


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_projected_coordinates_without_crs_refused(tmp_path: Path) -> None:
    path = write(tmp_path, three_levels(), "noprj.shp", crs=None)
    assert not path.with_suffix(".prj").exists()
    with pytest.raises(InvalidInput, match="no CRS and its coordinates are not lon/lat") as err:
        read_boundaries(path, BoundaryOptions())
    assert "--src-crs" in err.value.message
    # The same file with --src-crs reads fine.
    units = read_boundaries(path, BoundaryOptions(src_crs=BJ_GK)).units
    assert len(units) == 5


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_projected_coordinates_in_geojson_refused(tmp_path: Path) -> None:
    # GeoJSON is lon/lat by definition; metres in it mean a wrong export.
    path = write(tmp_path, three_levels()[:1], "metres.geojson", crs=None)
    with pytest.raises(InvalidInput, match=r"not lon/lat in the declared CRS.*--src-crs"):
        read_boundaries(path, BoundaryOptions())


def _shifted(dx: float = 0.0, *, swap: bool = False) -> list[dict]:
    """three_levels() with ``dx`` added to the eastings (39,000,000: the zone number 39 in front), X and Y swapped
    when ``swap`` (survey tables write X = north)."""
    out = []
    for record in three_levels():
        geom = shapely.affinity.translate(record["geometry"], xoff=dx)
        out.append({**record, "geometry": shapely.transform(geom, lambda xy: xy[:, ::-1]) if swap else geom})
    return out


ZONE_39 = "pass --src-crs EPSG:4527 (CGCS2000 3° GK zone 39, CM 117E; or EPSG:4548 with the zone number taken off)"
SWAP = "swap them (in the file, e.g. QGIS' Swap X and Y coordinates)"


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_a_file_without_crs_is_told_the_zone_its_eastings_name_and_a_swap(tmp_path: Path) -> None:
    """fixcrs (2): the boundary import reads the zone number in the eastings as the component import does
    (geodesy.projected_crs_hint, one zone table): a .shp without .prj in zone 39 (EPSG:4527) or zone 38 is told
    its EPSG code, and X/Y swapped — the zone number in Y, or northings in X beside CM eastings in Y — is said."""
    path = write(tmp_path, _shifted(39_000_000), "z39.shp", crs=None)
    with pytest.raises(InvalidInput) as err:
        read_boundaries(path, BoundaryOptions())
    assert err.value.message == (
        "z39.shp: the file has no CRS and its coordinates are not lon/lat (bounds [39440000.0, 4420000.0, "
        f"39442000.0, 4421000.0]); the eastings carry the zone number 39: {ZONE_39}"
    )
    assert len(read_boundaries(path, BoundaryOptions(src_crs="EPSG:4527")).units) == 5  # as the hint says
    path = write(tmp_path, _shifted(38_000_000 + 300_000), "z38.shp", crs=None)
    with pytest.raises(InvalidInput) as err:
        read_boundaries(path, BoundaryOptions())
    assert err.value.message.endswith(
        "; the eastings carry the zone number 38: pass --src-crs EPSG:4526 (CGCS2000 3° GK zone 38, CM 114E; or "
        "EPSG:4547 with the zone number taken off)"
    )
    path = write(tmp_path, _shifted(39_000_000, swap=True), "z39swapped.shp", crs=None)
    with pytest.raises(InvalidInput) as err:
        read_boundaries(path, BoundaryOptions())
    assert err.value.message == (
        "z39swapped.shp: the file has no CRS and its coordinates are not lon/lat (bounds [4420000.0, 39440000.0, "
        "4421000.0, 39442000.0]); X and Y look swapped (the Y values carry the zone number 39, as eastings do): "
        f"{SWAP} and {ZONE_39}"
    )
    path = write(tmp_path, _shifted(swap=True), "cmswapped.shp", crs=None)
    with pytest.raises(InvalidInput) as err:
        read_boundaries(path, BoundaryOptions())
    assert err.value.message == (
        "cmswapped.shp: the file has no CRS and its coordinates are not lon/lat (bounds [4420000.0, 440000.0, "
        "4421000.0, 442000.0]); X and Y look swapped (the X values are northings, the Y values eastings without a "
        f"zone number, as survey tables write them): {SWAP} and pass --src-crs, e.g. EPSG:4547 (CGCS2000 3° GK CM "
        "114E) or EPSG:4548 (CM 117E) — the zone of their central meridian"
    )
    # Nothing in the numbers names a zone: the generic hint, as before.
    with pytest.raises(InvalidInput) as err:
        read_boundaries(write(tmp_path, three_levels(), "noprj.shp", crs=None), BoundaryOptions())
    assert err.value.message.endswith(
        "; pass --src-crs, e.g. EPSG:4547 (CGCS2000 3° GK CM 114E) or EPSG:4548 (CM 117E)"
    )


def test_a_declared_crs_the_coordinates_do_not_fit_is_told_a_swap_or_the_zone(tmp_path: Path) -> None:
    """fixcrs (2): a file labelled EPSG:4548 whose X and Y are swapped, or whose eastings carry the zone number
    39, is refused saying so, not only that the CRS is probably wrong."""
    path = tmp_path / "swapped.shp"
    gpd.GeoDataFrame(_shifted(swap=True), crs=BJ_GK).to_file(path)
    with pytest.raises(InvalidInput) as err:
        read_boundaries(path, BoundaryOptions())
    assert err.value.message.startswith(
        "swapped.shp: coordinates (x 4.42e+06..4.421e+06, y 440000..442000) lie outside the area of use of the "
        "declared CRS EPSG:4548 (CGCS2000 / 3-degree Gauss-Kruger CM 117E: x "
    )
    assert err.value.message.endswith(
        "); X and Y look swapped (swapped, they lie in its area of use; survey tables write X = northing): swap "
        "them (in the file, e.g. QGIS' Swap X and Y coordinates)"
    )
    path = tmp_path / "z39.shp"
    gpd.GeoDataFrame(_shifted(39_000_000), crs=BJ_GK).to_file(path)
    with pytest.raises(InvalidInput) as err:
        read_boundaries(path, BoundaryOptions())
    assert err.value.message.endswith(f"); the CRS is probably wrong: the eastings carry the zone number 39: {ZONE_39}")
    assert len(read_boundaries(path, BoundaryOptions(src_crs="EPSG:4527")).units) == 5


def test_district_code_cannot_be_invented(tmp_path: Path) -> None:
    records = [{"name": "东城区", "geometry": mbox(0, 0, 2000, 1000)}]
    with pytest.raises(InvalidInput, match="cannot be invented"):
        read_boundaries(write(tmp_path, records), BoundaryOptions(level="district", assign_codes=True))
    units = read_boundaries(
        tmp_path / "b.geojson", BoundaryOptions(level="district", assign_codes=True, district_code="110101")
    ).units
    assert units["code"].tolist() == ["110101"]


# ---------------------------------------------------------------- geometry and topology


def test_bow_tie_repaired_and_reported(tmp_path: Path) -> None:
    bow_tie = Polygon([(116.40, 39.90), (116.41, 39.91), (116.41, 39.90), (116.40, 39.91), (116.40, 39.90)])
    records = [{"code": "110101001", "name": "东华门街道", "geometry": bow_tie}]
    bset = read_boundaries(write(tmp_path, records, crs="EPSG:4490"), BoundaryOptions())
    geom = bset.units.geometry.iloc[0]
    assert geom.is_valid and geom.geom_type == "MultiPolygon" and len(geom.geoms) == 2
    [item] = bset.report.repaired
    assert (item.code, item.name) == ("110101001", "东华门街道")
    assert item.reason.startswith("Self-intersection")
    assert "repaired 110101001 东华门街道: Self-intersection" in bset.report.to_text()


def test_overlap_gap_and_outside_areas(tmp_path: Path) -> None:
    records = [
        {"code": "110101", "name": "东城区", "geometry": mbox(0, 0, 2000, 1000)},
        {"code": "110101001", "name": "东华门街道", "geometry": mbox(0, 0, 1000, 1000)},
        {"code": "110101002", "name": "景山街道", "geometry": mbox(900, 0, 1900, 1000)},
        {"code": "110101003", "name": "交道口街道", "geometry": mbox(1900, 0, 2100, 500)},
    ]
    report = read_boundaries(write(tmp_path, records), BoundaryOptions()).report
    assert report.metric_crs.startswith("EPSG:4548")

    # The report measures in that zone, where the boxes were drawn: the areas are those of the drawn shapes (the
    # lon/lat round trip of 10 m-densified edges moves them by far less than the report's 0.1 m²).
    district, east, west, third = (r["geometry"] for r in records)

    [overlap] = report.overlaps
    assert (overlap.code_a, overlap.code_b) == ("110101001", "110101002")
    assert overlap.area_m2 == pytest.approx(east.intersection(west).area, abs=0.05)  # 100 × 1000 m

    [outside] = report.outside
    assert (outside.code, outside.parent_code) == ("110101003", "110101")
    assert outside.area_m2 == pytest.approx(third.difference(district).area, abs=0.05)  # 100 × 500 m
    assert outside.share == pytest.approx(third.difference(district).area / third.area, rel=1e-6)  # half of it

    [gap] = report.gaps
    assert (gap.parent_code, gap.pieces) == ("110101", 1)
    children = shapely.union_all([east, west, third])
    assert gap.area_m2 == pytest.approx(district.difference(children).area, abs=0.05)  # x 1900…2000 m, y 500…1000 m
    x, y = gpd.GeoSeries([Point(gap.largest[0].lon, gap.largest[0].lat)], crs=4490).to_crs(BJ_GK).iloc[0].coords[0]
    assert 1900 < x - X0 < 2000 and 500 < y - Y0 < 1000  # the piece can be found on a map

    text = report.to_text()
    assert "overlap 110101001 东华门街道 × 110101002 景山街道: 10" in text
    assert "gap in 110101 东城区: 50" in text and "outside 110101003 交道口街道" in text
    as_dict = report.to_dict()
    assert as_dict["overlaps"][0]["name_b"] == "景山街道" and not report.topology_ok


def test_gcj02_input_converted(tmp_path: Path) -> None:
    wgs = box(116.40, 39.90, 116.41, 39.91)
    gcj = geodesy.transform_geometries(np.array([wgs], dtype=object), "gcj02", direction="from_storage")[0]
    records = [{"code": "110101001", "name": "东华门街道", "geometry": gcj}]
    path = write(tmp_path, records, crs="EPSG:4326")
    bset = read_boundaries(path, BoundaryOptions(src_datum="gcj02"))
    got = shapely.get_coordinates(bset.units.geometry.iloc[0])
    corners = np.column_stack(geodesy.to_storage(*shapely.get_coordinates(gcj).T, "gcj02"))
    # Every corner converted is a vertex; the edges were densified (≤ DENSIFY_DEG) before converting.
    assert (np.abs(got[None, :, :] - corners[:, None, :]).max(axis=2).min(axis=1) < 1e-9).all()
    assert len(got) > 4 * 0.01 / geodesy.DENSIFY_DEG
    # A ~1 km edge straight in GCJ-02 runs ~6 cm off the straight WGS edge between the same corners.
    assert shapely.hausdorff_distance(bset.units.geometry.iloc[0], wgs) < 1e-6
    assert bset.report.datum == "gcj02" and "datum gcj02" in bset.report.to_text()
    # Without the option the polygon stays ~600 m away in Beijing.
    plain = read_boundaries(path, BoundaryOptions()).units.geometry.iloc[0]
    assert shapely.hausdorff_distance(plain, wgs) > 0.003


def test_gcj02_datum_edges_follow_their_true_course(tmp_path: Path) -> None:
    """A 4 km edge straight in GCJ-02 (as digitised on an AMap basemap) is curved in CGCS2000: converting only its
    two vertices put its middle 1.36 m off (review 39 D4); densified first, the midpoint converted alone lies on it."""
    edge = box(116.40, 39.90, 116.447, 39.91)  # south edge 116.40–116.447 at 39.90: 4.02 km
    path = write(tmp_path, [{"code": "110101001", "name": "东华门街道", "geometry": edge}], crs="EPSG:4326")
    unit = read_boundaries(path, BoundaryOptions(src_datum="gcj02")).units.geometry.iloc[0]
    mid = shapely.points(*geodesy.to_storage([116.4235], [39.90], "gcj02"))[0]
    ring = unit.geoms[0].exterior  # units are MultiPolygons
    on_edge = ring.interpolate(ring.project(mid))
    assert Geod(ellps="GRS80").line_length([mid.x, on_edge.x], [mid.y, on_edge.y]) < 0.01


def test_shapefile_in_epsg4547_read_via_prj(tmp_path: Path) -> None:
    # Zhengzhou, CGCS2000 3° GK CM 114E, in metres; the .prj carries the CRS.
    x0, y0 = 467952.2, 3846914.1
    records = [
        {"code": "410102", "name": "中原区", "geometry": box(x0, y0, x0 + 3000, y0 + 2000)},
        {"code": "410103", "name": "二七区", "geometry": box(x0, y0 - 2000, x0 + 3000, y0)},
    ]
    path = write(tmp_path, records, "zz.shp", crs="EPSG:4547")
    assert path.with_suffix(".prj").exists()
    bset = read_boundaries(path, BoundaryOptions())
    assert bset.units["name"].tolist() == ["中原区", "二七区"]
    assert "4547" in bset.report.source_crs and bset.report.metric_crs.startswith("EPSG:4547")
    # Straight GK edges follow their true course in lon/lat: densified (≤ 20 m) before the transformation.
    expected = gpd.GeoSeries([r["geometry"] for r in records], crs="EPSG:4547").segmentize(20.0).to_crs(4490)
    for got, exp in zip(bset.units.geometry, expected, strict=True):
        assert shapely.hausdorff_distance(got, exp) < 1e-9
    areas = bset.units.to_crs("EPSG:4547").area
    np.testing.assert_allclose(areas, 6e6, rtol=1e-6)


def test_legacy_gbk_shapefile_without_cpg_names_read_as_gb18030(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame(three_levels(), geometry="geometry", crs=BJ_GK)
    path = legacy_gbk_shapefile(gdf, tmp_path / "legacy.shp")
    bset = read_boundaries(path, BoundaryOptions())
    names = dict(zip(bset.units["code"], bset.units["name"], strict=True))
    assert names == {r["code"]: r["name"] for r in three_levels()}
    assert bset.report.warnings == [
        "legacy.shp: no .cpg and no language driver: read as GB18030 (not UTF-8), e.g. '东城区', '东华门街道', "
        "'景山街道': if these are wrong, pass --src-encoding"
    ]
    assert f"warning: {bset.report.warnings[0]}" in (bset.report.to_text().splitlines())
    # --src-encoding overrides the guess (here wrongly: the user asked for it) and no note is given.
    latin = read_boundaries(path, BoundaryOptions(src_encoding="latin-1"))
    assert latin.units.set_index("code")["name"]["110101"] == "¶«³ÇÇø" and latin.report.warnings == []
    gbk = read_boundaries(path, BoundaryOptions(src_encoding="gbk"))
    assert gbk.units.set_index("code")["name"]["110101"] == "东城区" and gbk.report.warnings == []


@pytest.mark.parametrize(("lon", "epsg"), [(112.5, 4547), (112.49, 4546), (76.5, 4535), (82.5, 4537)])
def test_topology_measures_in_the_zone_the_cut_uses(tmp_path: Path, lon: float, epsg: int) -> None:
    # review39: a set centred on a zone edge (1.5° from two central meridians) was measured in the western zone
    # (round() rounds half to even: 112.5 → CM 111) and cut in the eastern one (CM 114). One rule now: the cut's.
    district = box(lon - 0.01, 34.0, lon + 0.01, 34.02)
    path = write(tmp_path, [{"code": "410102", "name": "中原区", "geometry": district}], crs="EPSG:4490")
    report = read_boundaries(path, BoundaryOptions()).report
    assert report.metric_crs.startswith(f"EPSG:{epsg} ")
    assert choose_metric_crs(lon, 34.01).to_epsg() == epsg
