"""write_layer / read_layer_any: Shapefile encodings and limits, GeoPackage, GeoJSON, CSV, reprojection."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from gisgrid import vectorio
from gisgrid.errors import InvalidInput
from gisgrid.settings import PROJECT_ROOT
from gisgrid.vectorio import (
    SHAPEFILE_FIELDS,
    estimate_shapefile_size,
    read_layer_any,
    shapefile_field_map,
    write_layer,
)
from tests.fixtures import dbf_fields, legacy_gbk_shapefile

NAMES = ["东华门街道", "景山街道", "交道口街道·北"]  # the middle dot is in GBK too


def units() -> gpd.GeoDataFrame:
    holed = Polygon(
        box(116.40, 39.90, 116.41, 39.91).exterior.coords, [box(116.402, 39.902, 116.403, 39.903).exterior.coords]
    )
    return gpd.GeoDataFrame(
        {
            "code": ["110101001", "110101002", "110101003"],
            "name": NAMES,
            "district_code": ["110101"] * 3,
            "district_name": ["东城区"] * 3,
            "street_name": NAMES,
            "area_m2": [1234.5, 2345.6, 3456.7],
            "tier3_code": ["001", "002", "003"],
            "leader_name": ["张三", "李四", None],
            "网格编号": ["网格001", "网格002", "网格003"],
            "n_cells": np.array([3, 4, 5], dtype=np.int64),
        },
        geometry=[
            holed,
            MultiPolygon([box(116.41, 39.90, 116.42, 39.91), box(116.43, 39.90, 116.44, 39.91)]),
            box(116.40, 39.91, 116.42, 39.92),
        ],
        crs="EPSG:4490",
    )


# ---------------------------------------------------------------- Shapefile


@pytest.mark.parametrize(("encoding", "cpg", "ldid"), [("utf-8", "UTF-8", 0x00), ("gbk", "GBK", 0x4D)])
def test_shapefile_round_trip_keeps_chinese(tmp_path: Path, encoding, cpg, ldid) -> None:
    gdf = units()
    files = write_layer(gdf, tmp_path / "units.shp", encoding=encoding)
    # 网格编号 is 8 bytes in GBK, a field name as it is; 12 in UTF-8, FIELD9, whose name the field map keeps.
    sidecar = ["units.fields.csv"] if encoding == "utf-8" else []
    assert [f.name for f in files] == [f"units{s}" for s in (".shp", ".shx", ".dbf", ".prj", ".cpg")] + sidecar
    assert (tmp_path / "units.cpg").read_bytes() == cpg.encode("ascii")
    assert (tmp_path / "units.dbf").read_bytes()[29] == ldid  # the DBF language driver id

    back = gpd.read_file(tmp_path / "units.shp", engine="pyogrio")
    assert back["NAME"].tolist() == NAMES
    assert back["STRT_NAME"].tolist() == NAMES
    assert back["DIST_NAME"].tolist() == ["东城区"] * 3
    assert back["LEADER"].tolist()[:2] == ["张三", "李四"]
    chinese = "FIELD9" if encoding == "utf-8" else "网格编号"  # all-Chinese name too long → FIELD<position>
    assert back[chinese].tolist() == ["网格001", "网格002", "网格003"]
    assert back["T3_CODE"].tolist() == ["001", "002", "003"]
    assert back["AREA_M2"].tolist() == [1234.5, 2345.6, 3456.7]
    assert back.crs.equals(gdf.crs)
    np.testing.assert_allclose(back.to_crs(4547).area, gdf.to_crs(4547).area, rtol=1e-9)

    # Field names in the DBF: at most 10 bytes in its encoding.
    fields = pyogrio.read_info(tmp_path / "units.shp")["fields"]
    assert all(len(f.encode(encoding)) <= 10 for f in fields)
    assert list(fields) == list(shapefile_field_map(gdf.columns.drop("geometry"), encoding).values())
    # read_layer_any reads the field map back: every column under its own name.
    notes: list[str] = []
    again = read_layer_any(tmp_path / "units.shp", notes=notes)
    assert "网格编号" in again.columns and "FIELD9" not in again.columns
    assert notes == (
        ["units.shp: field names from units.fields.csv (written by the export): FIELD9 → 网格编号"] if sidecar else []
    )

    # The bytes on disk really are in the declared encoding.
    dbf = (tmp_path / "units.dbf").read_bytes()
    assert "景山街道".encode(encoding) in dbf


def test_shapefile_gbk_without_cpg_is_read_by_its_language_driver_id(tmp_path: Path) -> None:
    """A program that ignores the .cpg (ArcGIS 9/10, MapInfo) finds GBK in the DBF header: GDAL does the same."""
    write_layer(units(), tmp_path / "units.shp", encoding="gbk")
    (tmp_path / "units.cpg").unlink()
    assert pyogrio.read_info(tmp_path / "units.shp")["encoding"] == "UTF-8"  # recoded from CP936 by GDAL
    back = gpd.read_file(tmp_path / "units.shp", engine="pyogrio")
    assert back["NAME"].tolist() == NAMES
    assert gpd.read_file(tmp_path / "units.shp", engine="pyogrio", encoding="gbk")["NAME"].tolist() == NAMES


def test_every_gbk_character_reaches_the_dbf_as_python_encodes_it(tmp_path: Path) -> None:
    """GDAL recodes to code page 936 (the language driver id's), the check before writing uses Python's GBK: the
    two agree on every character, so no value passes the check and is then mangled."""
    chars = [chr(c) for c in range(0x80, 0x10000) if not 0xD800 <= c < 0xE000]
    gbk = "".join(c for c in chars if vectorio._encodable(c, "gbk"))
    values = [gbk[i : i + 120] for i in range(0, len(gbk), 120)]  # 240 bytes each, under the 254-byte limit
    gdf = gpd.GeoDataFrame({"note": values}, geometry=[Point(116.4, 39.9)] * len(values), crs="EPSG:4490")
    write_layer(gdf, tmp_path / "all.shp", encoding="gbk")
    dbf = (tmp_path / "all.dbf").read_bytes()
    assert all(v.encode("gbk") in dbf for v in values)
    assert gpd.read_file(tmp_path / "all.shp", engine="pyogrio")["NOTE"].tolist() == values


def test_field_map_fixed_fallback_and_unique() -> None:
    mapping = shapefile_field_map(
        [
            "district_code",
            "street_code",
            "community_code",
            "component_category",
            "名称",
            "2nd",
            "Größe",
            "abcdefghijk1",
            "abcdefghijk2",
            "CODE",
            "code",
        ]
    )
    assert mapping["district_code"] == "DIST_CODE"
    assert mapping["street_code"] == "STRT_CODE"
    assert mapping["community_code"] == "COMM_CODE"
    assert mapping["component_category"] == "component"
    assert mapping["名称"] == "名称"  # 6 bytes in UTF-8: a DBF field name as it is
    assert mapping["2nd"] == "F2nd"
    assert mapping["Größe"] == "Größe"  # 7 bytes in UTF-8: kept
    assert shapefile_field_map(["Größe"], "gbk") == {"Größe": "Groe"}  # GBK has no ö, ß (and no ASCII form of ß)
    assert mapping["abcdefghijk1"] == "abcdefghij"
    assert mapping["abcdefghijk2"] == "abcdefgh_1"
    assert mapping["code"] == "CODE" and mapping["CODE"] == "CODE_1"  # the fixed name wins
    assert len({v.upper() for v in mapping.values()}) == len(mapping)
    assert all(len(v.encode()) <= 10 for v in mapping.values())
    # Measured in the file's encoding: 2 bytes per Chinese character in GBK, 3 in UTF-8.
    names = ["部件名称", "设置位置说明", "材质", "备注(旧)", "长度米", "井盖材质类型"]
    assert list(shapefile_field_map(names, "gbk").values()) == [
        "部件名称",
        "FIELD2",
        "材质",
        "FIELD4",
        "长度米",
        "FIELD6",
    ]
    assert list(shapefile_field_map(names, "utf-8").values()) == [
        "FIELD1",
        "FIELD2",
        "材质",
        "FIELD4",
        "长度米",
        "FIELD6",
    ]
    # The fixed table itself is valid and collision-free.
    assert all(v.isascii() and len(v) <= 10 for v in SHAPEFILE_FIELDS.values())
    assert len(set(SHAPEFILE_FIELDS.values())) == len(SHAPEFILE_FIELDS)
    assert shapefile_field_map(["名称", "x"]) == {"名称": "名称", "x": "x"}  # both fit a DBF field as they are
    # Deterministic across processes (review57 F8): names that collide, mapped under two hash seeds (a set's order
    # differs between them), give the names mapped here.
    crowded = ["code", "CODE", "abcdefghijk1", "abcdefghijk2", "部件名称", "设置位置说明", "2nd", "Größe", "x"]
    script = (
        "import json; from gisgrid.vectorio import shapefile_field_map; "
        f"print(json.dumps(shapefile_field_map({crowded!r}, 'gbk')))"
    )
    here = shapefile_field_map(crowded, "gbk")
    assert here["CODE"] == "CODE_1" and here["设置位置说明"] == "FIELD6"  # collisions and folds among them
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        ran = subprocess.run(
            [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True
        )
        assert json.loads(ran.stdout) == here, seed


def test_gbk_unencodable_value_refused_naming_row(tmp_path: Path) -> None:
    gdf = units()
    gdf.loc[1, "name"] = "𠮷祥社区"  # U+20BB7 is outside GBK
    with pytest.raises(InvalidInput, match=r"row 2, field 'NAME'.*'𠮷'.*GBK cannot encode") as err:
        write_layer(gdf, tmp_path / "units.shp", encoding="gbk")
    assert err.value.detail["row"] == 2  # the second feature (review32 D8: counted from 1)
    assert not (tmp_path / "units.shp").exists()
    # with the identifying column named, the row is named by it (a component's GLBJBSM, a grid's code)
    with pytest.raises(InvalidInput, match=r"units\.shp: CODE 110101002, field 'NAME'") as err:
        write_layer(gdf, tmp_path / "units.shp", encoding="gbk", row_label="code")
    assert (err.value.detail["row"], err.value.detail["id"]) == (2, "110101002")
    assert str(err.value).endswith("write the Shapefile in GB18030 (--encoding gb18030) or UTF-8 or use GeoPackage")
    # UTF-8 holds it.
    write_layer(gdf, tmp_path / "units.shp")
    assert gpd.read_file(tmp_path / "units.shp")["NAME"][1] == "𠮷祥社区"


def test_gb18030_holds_what_gbk_cannot_and_reads_back(tmp_path: Path) -> None:
    """review55 F10: a city's data arrives in GB18030; a rare place-name character outside GBK (䶮 U+4DAE, 𠮷
    U+20BB7) is written in GB18030 (.cpg GB18030, no language driver id: dBase has none for it) and read back."""
    gdf = units()
    gdf.loc[0, "name"] = "䶮村社区"
    gdf.loc[1, "name"] = "𠮷祥社区"
    assert write_layer(gdf, tmp_path / "units.shp", encoding="GB18030") == [
        tmp_path / f"units{s}" for s in (".shp", ".shx", ".dbf", ".prj", ".cpg")
    ]
    assert (tmp_path / "units.cpg").read_bytes() == b"GB18030"
    dbf = (tmp_path / "units.dbf").read_bytes()
    assert dbf[29] == 0x00
    assert "䶮村社区".encode("gb18030") in dbf and "𠮷祥社区".encode("gb18030") in dbf
    assert "䶮村社区".encode() not in dbf  # not UTF-8
    back = read_layer_any(tmp_path / "units.shp")  # as gisgrid reads it (the .cpg), and GDAL/QGIS alike
    assert back["NAME"].tolist() == ["䶮村社区", "𠮷祥社区", NAMES[2]]
    assert gpd.read_file(tmp_path / "units.shp", engine="pyogrio")["NAME"].tolist() == back["NAME"].tolist()
    assert "网格编号" in back.columns  # 8 bytes in GB18030 as in GBK: the name kept
    with pytest.raises(InvalidInput, match=r"unknown encoding 'big5': expected utf-8, gbk or gb18030"):
        write_layer(gdf, tmp_path / "b.shp", encoding="big5")


def test_text_over_254_bytes_refused(tmp_path: Path) -> None:
    gdf = units()
    gdf.loc[2, "leader_name"] = "长" * 85  # 255 bytes in UTF-8, 170 in GBK
    with pytest.raises(InvalidInput, match=r"row 3, field 'LEADER': text of 255 bytes in UTF-8 exceeds"):
        write_layer(gdf, tmp_path / "units.shp")
    write_layer(gdf, tmp_path / "gbk.shp", encoding="gbk")
    assert gpd.read_file(tmp_path / "gbk.shp")["LEADER"][2] == "长" * 85


def test_size_estimate_matches_written_files(tmp_path: Path) -> None:
    gdf = units().drop(columns=["n_cells"])
    gdf["n_small"] = np.array([1, 2, 3], dtype=np.int32)
    write_layer(gdf, tmp_path / "units.shp")
    written = gpd.GeoDataFrame(
        gdf.rename(columns=shapefile_field_map(gdf.columns.drop("geometry"))), geometry="geometry"
    )
    shp, dbf = estimate_shapefile_size(written)
    assert shp == (tmp_path / "units.shp").stat().st_size
    assert dbf == (tmp_path / "units.dbf").stat().st_size


def test_points_size_estimate(tmp_path: Path) -> None:
    pts = gpd.GeoDataFrame({"id": [1, 2]}, geometry=[Point(1, 2), None], crs=4490)
    write_layer(pts, tmp_path / "pts.shp")
    assert estimate_shapefile_size(pts)[0] == (tmp_path / "pts.shp").stat().st_size


def test_shapefile_limit_refused_before_writing(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(InvalidInput, match=r"too large for a Shapefile.*GeoPackage") as err:
        write_layer(units(), tmp_path / "units.shp", max_shapefile_bytes=500)
    assert err.value.detail["limit"] == 500
    assert not list(tmp_path.iterdir())
    # The default limit is 2 GiB: a (faked) 2.5 GiB estimate is refused without writing anything.
    monkeypatch.setattr(
        vectorio, "estimate_shapefile_size", lambda gdf, encoding="utf-8", widths=None: (100, 5 * 2**29)
    )
    with pytest.raises(InvalidInput, match=r"\.dbf 2\.50 GiB, over the 2\.00 GiB"):
        write_layer(units(), tmp_path / "units.shp")
    assert not list(tmp_path.iterdir())


def test_mixed_polygon_types_promoted_and_mixed_families_refused(tmp_path: Path) -> None:
    gdf = units()  # Polygon and MultiPolygon
    write_layer(gdf, tmp_path / "mixed.shp")
    assert pyogrio.read_info(tmp_path / "mixed.shp")["geometry_type"] in ("Polygon", "MultiPolygon")
    promoted = vectorio._single_geometry_type(gdf, tmp_path / "x.shp")
    assert set(promoted.geom_type) == {"MultiPolygon"}
    assert promoted.geometry.geom_equals(gdf.geometry).all()

    odd = gpd.GeoDataFrame({"a": [1, 2]}, geometry=[box(0, 0, 1, 1), LineString([(0, 0), (1, 1)])], crs=4490)
    with pytest.raises(InvalidInput, match=r"one geometry type.*LineString"):
        write_layer(odd, tmp_path / "odd.shp")


def test_datetime_written_as_iso_text(tmp_path: Path) -> None:
    gdf = units()
    gdf["updated_at"] = pd.to_datetime(["2024-05-01 08:30:00", "2024-05-02 00:00:00", None])
    write_layer(gdf, tmp_path / "units.shp")
    assert gpd.read_file(tmp_path / "units.shp")["UPDATED"][0] == "2024-05-01T08:30:00"


@pytest.mark.parametrize("suffix", [".shp", ".gpkg", ".geojson"])
def test_dates_are_written_as_date_fields_with_the_other_columns_unchanged(tmp_path: Path, suffix: str) -> None:
    """A column of datetime.date becomes a date field (DBF 'D', GeoPackage DATE, GeoJSON YYYY-MM-DD); such a layer
    takes pyogrio's raw writer, which must write the other columns and the geometry type as ``to_file`` does."""
    gdf = units()
    gdf["valid_from"] = [dt.date(2024, 5, 1), None, dt.date(1999, 12, 31)]
    gdf["n_null"] = pd.array([1, None, 3], dtype="Int64")
    gdf["flag"] = [True, False, True]
    gdf["leader_name"] = pd.Series(["张三", "李四", None], dtype="str")
    assert vectorio.date_columns(gdf) == ["valid_from"]
    path = write_layer(gdf, tmp_path / f"u{suffix}")[0]
    reference = write_layer(gdf.drop(columns="valid_from"), tmp_path / f"ref{suffix}")[0]

    info, ref = pyogrio.read_info(path), pyogrio.read_info(reference)
    types = dict(zip(info["fields"], info["dtypes"], strict=True))
    assert types.pop("VALID_FROM" if suffix == ".shp" else "valid_from") == "datetime64[D]"
    assert types == dict(zip(ref["fields"], ref["dtypes"], strict=True))
    assert info["geometry_type"] == ref["geometry_type"]
    back, expected = read_layer_any(path), read_layer_any(reference)
    dates = back.pop("VALID_FROM" if suffix == ".shp" else "valid_from")
    assert dates.tolist()[::2] == [pd.Timestamp("2024-05-01"), pd.Timestamp("1999-12-31")] and pd.isna(dates[1])
    pd.testing.assert_frame_equal(
        pd.DataFrame(back.drop(columns="geometry")), pd.DataFrame(expected.drop(columns="geometry"))
    )
    assert back.geometry.geom_equals_exact(expected.geometry, 0).all()


# ---------------------------------------------------------------- other formats


def test_gpkg_round_trip_keeps_names_and_other_layers(tmp_path: Path) -> None:
    gdf = units()
    path = tmp_path / "out.gpkg"
    assert write_layer(gdf, path, layer="街道") == [path]
    write_layer(gdf.iloc[:1], path, layer="other")
    write_layer(gdf.iloc[:2], path, layer="街道")  # replaces that layer only
    assert sorted(vectorio.list_layers(path)) == sorted(["街道", "other"])
    back = read_layer_any(path, "街道")
    assert back["网格编号"].tolist() == ["网格001", "网格002"]
    assert back["name"].tolist() == NAMES[:2] and back.crs.equals(gdf.crs)
    with pytest.raises(InvalidInput, match="available layers: "):
        read_layer_any(path, "nope")
    with pytest.raises(InvalidInput, match="2 layers, choose one with --layer"):
        read_layer_any(path)


def test_default_format_is_gpkg(tmp_path: Path) -> None:
    files = write_layer(units(), tmp_path / "plain")
    assert files == [tmp_path / "plain.gpkg"]
    assert vectorio.list_layers(files[0]) == ["plain"]
    with pytest.raises(InvalidInput, match=r"unknown output extension '\.txt'"):
        write_layer(units(), tmp_path / "x.txt")
    with pytest.raises(InvalidInput, match="does not match the requested format 'shp'"):
        write_layer(units(), tmp_path / "x.gpkg", fmt="shp")
    with pytest.raises(InvalidInput, match="Shapefiles only"):
        write_layer(units(), tmp_path / "x.gpkg", encoding="gbk")


def test_geojson_is_rfc7946_lon_lat(tmp_path: Path) -> None:
    gdf = units().to_crs("EPSG:4548")  # projected input is written as lon/lat
    path = tmp_path / "out.geojson"
    write_layer(gdf, path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert "crs" not in doc  # RFC 7946: no crs member, WGS-84 lon/lat implied
    assert doc["features"][0]["properties"]["name"] == "东华门街道"
    lon, lat = doc["features"][0]["geometry"]["coordinates"][0][0]
    assert 116.3 < lon < 116.5 and 39.8 < lat < 40.0
    back = read_layer_any(path)
    assert back.crs.to_epsg() == 4326
    assert shapely.hausdorff_distance(back.geometry.values, units().geometry.values).max() < 1e-6
    with pytest.raises(InvalidInput, match=r"GeoJSON .* cannot hold EPSG:4547"):
        write_layer(units(), tmp_path / "p.geojson", crs="EPSG:4547")


def test_csv_with_wkt_and_bom(tmp_path: Path) -> None:
    gdf = units()
    files = write_layer(gdf, tmp_path / "out.csv")
    assert files == [tmp_path / "out.csv", tmp_path / "out.csvt", tmp_path / "out.prj"]
    raw = files[0].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM for Excel
    header = raw[3:].decode("utf-8").splitlines()[0]
    assert header.endswith(",wkt") and "网格编号" in header
    back = read_layer_any(files[0])
    assert back.crs == "EPSG:4490"
    assert back["tier3_code"].tolist() == ["001", "002", "003"]  # text stays text (.csvt)
    assert back["n_cells"].tolist() == [3, 4, 5] and back["area_m2"].tolist() == [1234.5, 2345.6, 3456.7]
    assert back["name"].tolist() == NAMES and back["leader_name"].isna().tolist() == [False, False, True]
    assert shapely.equals_exact(back.geometry.values, gdf.geometry.values, tolerance=1e-12).all()


def test_reprojection_on_request(tmp_path: Path) -> None:
    gdf = units()  # at 116.4E: the CM 117E zone, EPSG:4548
    for name in ("p.gpkg", "p.shp", "q.csv"):
        write_layer(gdf, tmp_path / name, crs="EPSG:4548")
    expected = gdf.to_crs("EPSG:4548")
    gpkg = read_layer_any(tmp_path / "p.gpkg")
    assert gpkg.crs.to_epsg() == 4548
    assert shapely.hausdorff_distance(gpkg.geometry.values, expected.geometry.values).max() < 1e-6
    assert read_layer_any(tmp_path / "p.shp").crs.to_epsg() == 4548
    csv = read_layer_any(tmp_path / "q.csv")  # its .prj says EPSG:4548 (review23 D6)
    assert csv.crs.to_epsg() == 4548 and csv.total_bounds[0] > 1000  # metres, not degrees
    # Millimetres (review38 U11): each axis within 0.5 mm, a vertex within √2 × 0.5 mm.
    assert shapely.hausdorff_distance(csv.geometry.values, expected.geometry.values).max() <= 0.0005 * 2**0.5
    with pytest.raises(InvalidInput, match="unknown CRS 'EPSG:999999'"):
        write_layer(gdf, tmp_path / "bad.gpkg", crs="EPSG:999999")
    with pytest.raises(InvalidInput, match="has no CRS"):
        write_layer(gdf.set_crs(None, allow_override=True), tmp_path / "none.gpkg", crs="EPSG:4548")


def test_read_layer_any_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="file not found"):
        read_layer_any(tmp_path / "nope.gpkg")
    with pytest.raises(InvalidInput, match="file not found"):
        read_layer_any(tmp_path / "nope.csv")


def test_tier_grid_columns_have_fixed_readable_shapefile_names() -> None:
    """The tier-3 export's own columns: meaningful names, not ``staff_coun``, and upper case like the rest."""
    from gisgrid.vectorio import shapefile_field_map

    assert shapefile_field_map(["code", "tier", "admin_code", "staff_count", "unit_grids", "row", "col"]) == {
        "code": "CODE",
        "tier": "TIER",
        "admin_code": "ADMIN_CODE",
        "staff_count": "STAFF_N",
        "unit_grids": "N_UNITS",
        "row": "ROW",
        "col": "COL",
    }


def test_legacy_gbk_shapefile_without_cpg_or_language_driver_read_as_gb18030(tmp_path: Path) -> None:
    path = legacy_gbk_shapefile(units()[["code", "name", "geometry"]], tmp_path / "legacy.shp")
    assert not path.with_suffix(".cpg").exists() and path.with_suffix(".dbf").read_bytes()[29] == 0
    assert gpd.read_file(path, engine="pyogrio")["name"].iloc[1] == "¾°É½½ÖµÀ"  # what GDAL alone gives
    notes: list[str] = []
    back = read_layer_any(path, notes=notes)
    assert back["name"].tolist() == NAMES
    assert back["code"].tolist() == ["110101001", "110101002", "110101003"]
    assert notes == [
        "legacy.shp: no .cpg and no language driver: read as GB18030 (not UTF-8), e.g. '东华门街道', '景山街道', "
        "'交道口街道·北': if these are wrong, pass --src-encoding"  # the values the guess decided, to judge it by
    ]
    # Without a notes list the same line is a warning.
    with pytest.warns(vectorio.EncodingGuessed, match=r"^legacy.shp: no .cpg and no language driver: read as"):
        assert read_layer_any(path)["name"].tolist() == NAMES


def test_legacy_gbk_shapefile_with_the_ansi_language_driver_read_as_gb18030(tmp_path: Path) -> None:
    """LDID 0x57 is "ANSI", the code page of the Windows that wrote the file (GBK on a Chinese one)."""
    path = legacy_gbk_shapefile(units()[["code", "name", "geometry"]], tmp_path / "legacy.shp", ldid=0x57)
    assert gpd.read_file(path, engine="pyogrio")["name"].iloc[1] == "¾°É½½ÖµÀ"  # what GDAL alone gives
    notes: list[str] = []
    assert read_layer_any(path, notes=notes)["name"].tolist() == NAMES
    assert notes == [
        "legacy.shp: no .cpg and language driver 0x57 (ANSI: the writer's code page): read as GB18030 (not UTF-8), "
        "e.g. '东华门街道', '景山街道', '交道口街道·北': if these are wrong, pass --src-encoding"
    ]


def test_utf8_shapefile_without_cpg_read_as_utf8_without_note(tmp_path: Path) -> None:
    gdf = units()[["code", "name", "geometry"]]
    gdf.to_file(tmp_path / "u.shp", engine="pyogrio", encoding="UTF-8")
    (tmp_path / "u.cpg").unlink()
    assert (tmp_path / "u.dbf").read_bytes()[29] == 0
    notes: list[str] = []
    assert read_layer_any(tmp_path / "u.shp", notes=notes)["name"].tolist() == NAMES
    assert notes == []


def test_shapefile_encoding_option_overrides_the_guess(tmp_path: Path) -> None:
    path = legacy_gbk_shapefile(units()[["code", "name", "geometry"]], tmp_path / "legacy.shp")
    notes: list[str] = []
    assert read_layer_any(path, encoding="latin-1", notes=notes)["name"].iloc[1] == "¾°É½½ÖµÀ"
    assert read_layer_any(path, encoding="GBK", notes=notes)["name"].tolist() == NAMES
    assert notes == []
    # It also overrides a .cpg that is wrong.
    path.with_suffix(".cpg").write_text("UTF-8", encoding="ascii")
    assert read_layer_any(path, encoding="gbk")["name"].tolist() == NAMES


def test_shapefile_neither_utf8_nor_gb18030_refused_naming_the_option(tmp_path: Path) -> None:
    path = legacy_gbk_shapefile(units()[["code", "name", "geometry"]], tmp_path / "legacy.shp")
    dbf = path.with_suffix(".dbf")
    data = dbf.read_bytes()
    # 0x80 is not a lead byte in GB18030 and not valid UTF-8 either.
    dbf.write_bytes(data.replace("景山".encode("gbk"), b"\x80\x80\x80\x80", 1))
    with pytest.raises(
        InvalidInput,
        match=r"legacy.shp: no .cpg and no language driver, and the text is neither "
        r"UTF-8 nor GB18030 \(row 1, field .name.: illegal multibyte sequence\); pass the encoding with --src-encoding",
    ):
        read_layer_any(path)


def test_utf8_cut_inside_a_character_at_the_field_width_is_read_as_utf8(tmp_path: Path) -> None:
    """review21 #1: legacy writers cut text at the field's width in bytes; the cut character made the whole file
    "not UTF-8", and GB18030 — which decodes most UTF-8 Chinese without an error — turned every name to mojibake."""
    gdf = units()[["code", "name", "geometry"]]
    gdf.to_file(tmp_path / "u.shp", engine="pyogrio", encoding="UTF-8")
    (tmp_path / "u.cpg").unlink()
    dbf = tmp_path / "u.dbf"
    whole = "东华门街道".encode()
    dbf.write_bytes(dbf.read_bytes().replace(whole, whole[:-1] + b" ", 1))  # 道 cut after two of its bytes
    notes: list[str] = []
    assert read_layer_any(tmp_path / "u.shp", notes=notes)["name"].tolist() == ["东华门街", *NAMES[1:]]
    assert notes == [
        "u.shp: no .cpg and no language driver: read as UTF-8; 1 value(s) cut inside a character at the field's "
        "width lost that character's bytes (first: row 0, field 'name')"
    ]


def test_a_big5_shapefile_is_refused_not_read_as_gb18030_mojibake(tmp_path: Path) -> None:
    """review21 #2: 臺北市 in Big5 read as GB18030 gave 籓\ue665カ (private use, kana) with only a note."""
    gdf = units()[["code", "name", "geometry"]].iloc[:2].assign(name=["臺北市", "中正區"])
    gdf.to_file(tmp_path / "b.shp", engine="pyogrio", encoding="BIG5")
    (tmp_path / "b.cpg").unlink(missing_ok=True)
    data = bytearray((tmp_path / "b.dbf").read_bytes())
    data[29] = 0
    (tmp_path / "b.dbf").write_bytes(bytes(data))
    with pytest.raises(InvalidInput, match=r"neither UTF-8 nor GB18030 \(row 0, field 'name': read as GB18030 it "):
        read_layer_any(tmp_path / "b.shp")
    assert read_layer_any(tmp_path / "b.shp", encoding="big5")["name"].tolist() == ["臺北市", "中正區"]


def test_encoding_option_refused_when_unknown_or_for_a_utf8_only_format(tmp_path: Path) -> None:
    path = legacy_gbk_shapefile(units()[["code", "name", "geometry"]], tmp_path / "legacy.shp")
    with pytest.raises(InvalidInput, match=r"legacy.shp: unknown text encoding 'klingon' \(e.g. utf-8, gbk"):
        read_layer_any(path, encoding="klingon")
    gpkg = write_layer(units(), tmp_path / "u.gpkg")[0]
    with pytest.raises(InvalidInput, match=r"u.gpkg: a text encoding applies to Shapefiles and CSV only; .gpkg"):
        read_layer_any(gpkg, encoding="gbk")
    assert read_layer_any(gpkg, encoding="utf-8")["name"].tolist() == NAMES


@pytest.mark.parametrize("suffix", [".shp", ".gpkg"])
def test_declared_date_fields_are_dates_even_when_all_empty(tmp_path: Path, suffix: str) -> None:
    gdf = units()[["code", "geometry"]].assign(valid_from=[None, None, None], note=[None, None, None])
    path = write_layer(gdf, tmp_path / f"u{suffix}", date_fields=("valid_from",))[0]
    info = pyogrio.read_info(path)
    types = dict(zip(info["fields"], info["dtypes"], strict=True))
    date_name = "VALID_FROM" if suffix == ".shp" else "valid_from"
    assert types[date_name] == "datetime64[D]"
    assert types["NOTE" if suffix == ".shp" else "note"] == "object"  # not declared: text, as before


def test_a_projected_csv_records_its_crs_in_a_prj_that_gdal_reads(tmp_path: Path) -> None:
    """review23 D6: a CSV of projected WKT said nowhere which metres they were."""
    files = write_layer(units(), tmp_path / "g.csv", crs="EPSG:4548")
    assert files == [tmp_path / "g.csv", tmp_path / "g.csvt", tmp_path / "g.prj"]
    prj = (tmp_path / "g.prj").read_text(encoding="ascii")
    assert prj.startswith('PROJCS["CGCS2000 / 3-degree Gauss-Kruger CM 117E"') and 'AUTHORITY["EPSG","4548"]' in prj
    raw = pyogrio.read_dataframe(tmp_path / "g.csv", GEOM_POSSIBLE_NAMES="wkt", KEEP_GEOM_COLUMNS="NO")
    assert raw.crs.to_epsg() == 4548  # GDAL's CSV driver itself, not only read_layer_any
    assert read_layer_any(tmp_path / "g.csv", csv_crs="EPSG:4490").crs.to_epsg() == 4548  # the .prj wins
    (tmp_path / "g.prj").unlink()  # without it: the assumed CRS, as before
    assert read_layer_any(tmp_path / "g.csv").crs.to_epsg() == 4490


def test_text_lengths_set_shapefile_widths_and_warn_about_longer_values(tmp_path: Path) -> None:
    """Review23 D5: a text column with a standard length is declared that wide (bytes in the file's encoding); a
    longer value widens it and is warned about by row (without ``row_label``, the first five named); other formats
    ignore the lengths."""
    names = ["甲", "", None, "一二三四", "abcdefg", "x" * 9, "y" * 8, "z" * 10, "w" * 11]
    gdf = gpd.GeoDataFrame(
        {"name": names, "kind": ["a"] * 9, "empty": [None] * 9},
        geometry=[Point(116.4, 39.9)] * 9,
        crs="EPSG:4490",
    )
    lengths = {"name": 6, "empty": 4, "missing": 3}
    with pytest.warns(vectorio.FieldLongerThanStandard) as caught:
        write_layer(gdf, tmp_path / "t.shp", text_lengths=lengths)
    assert [str(w.message) for w in caught] == [
        "超出标准长度 t.shp: field NAME: 6 value(s) longer than the standard's 6 bytes in UTF-8: row 3 (12 bytes), "
        "row 4 (7 bytes), row 5 (9 bytes), row 6 (8 bytes), row 7 (10 bytes) … and 1 more; the field is declared "
        "C(12), so the file does not meet the standard's field definition (nothing was cut)"
    ]
    assert dbf_fields(tmp_path / "t.shp") == {"NAME": ("C", 12, 0), "kind": ("C", 80, 0), "empty": ("C", 4, 0)}
    back = gpd.read_file(tmp_path / "t.shp", engine="pyogrio")
    # an empty text reads back as null (a DBF tells none from blanks), as before
    assert [None if pd.isna(v) else v for v in back["NAME"]] == [
        "甲",
        None,
        None,
        "一二三四",
        "abcdefg",
        "x" * 9,
        "y" * 8,
        "z" * 10,
        "w" * 11,
    ]

    notes: list[str] = []
    write_layer(gdf.iloc[:3], tmp_path / "ok.shp", text_lengths=lengths, encoding="gbk", notes=notes)
    assert notes == [] and dbf_fields(tmp_path / "ok.shp")["NAME"] == ("C", 6, 0)
    write_layer(gdf, tmp_path / "t.gpkg", text_lengths=lengths, notes=notes)
    assert notes == []  # a GeoPackage has no field widths to meet


def test_a_csv_and_a_shapefile_of_one_name_cannot_share_their_prj(tmp_path: Path) -> None:
    """review32 D1: a CSV export wrote its CRS over the .prj of the Shapefile of the same name (lon/lat then read
    as Gauss–Krüger metres); either export refuses to overwrite the other's, and nothing is written."""
    gdf = units()
    write_layer(gdf, tmp_path / "网格.shp")
    prj = (tmp_path / "网格.prj").read_text()
    with pytest.raises(InvalidInput) as err:
        write_layer(gdf, tmp_path / "网格.csv", crs="EPSG:4548")
    assert str(err.value) == (
        f"{tmp_path / '网格.csv'}: 网格.shp beside it keeps its coordinate system in 网格.prj, which this CSV would "
        "overwrite; write it under another name or into another folder"
    )
    assert (tmp_path / "网格.prj").read_text() == prj and not (tmp_path / "网格.csv").exists()
    assert read_layer_any(tmp_path / "网格.shp").crs.to_epsg() == 4490
    write_layer(gdf, tmp_path / "表.csv", crs="EPSG:4548")
    with pytest.raises(InvalidInput, match=r"表\.csv beside it keeps its coordinate system in 表\.prj, which this SHP"):
        write_layer(gdf, tmp_path / "表.shp")
    assert read_layer_any(tmp_path / "表.csv").crs.to_epsg() == 4548 and not (tmp_path / "表.shp").exists()
    write_layer(gdf, tmp_path / "网格.shp", crs="EPSG:4548")  # the same format again replaces its own files
    assert read_layer_any(tmp_path / "网格.shp").crs.to_epsg() == 4548


def test_a_folder_or_an_unwritable_path_is_refused_in_one_line(tmp_path: Path) -> None:
    """review32 D5 and D2: a folder as --out wrote <folder>.gpkg beside it; a path through a file was a traceback."""
    (tmp_path / "out").mkdir()
    with pytest.raises(InvalidInput) as err:
        write_layer(units(), tmp_path / "out")
    assert (
        str(err.value)
        == f"{tmp_path / 'out'}: is a folder; name the file to write in it (e.g. {tmp_path / 'out' / 'grids.gpkg'})"
    )
    assert not (tmp_path / "out.gpkg").exists()
    (tmp_path / "afile").write_text("x")
    for name in ("x.shp", "x.gpkg", "x.csv", "x.geojson"):
        with pytest.raises(InvalidInput) as err:
            write_layer(units(), tmp_path / "afile" / name)
        assert str(err.value) == (
            f"无法写入 {tmp_path / 'afile' / name}:{tmp_path / 'afile'} 不是文件夹 / "
            f"{tmp_path / 'afile' / name}: cannot write it (not a folder: {tmp_path / 'afile'})"
        )
    with pytest.raises(InvalidInput, match=r"^/proc/x\.gpkg: cannot write it \("):
        write_layer(units(), Path("/proc/x.gpkg"))


@pytest.mark.parametrize("name", ["x.gpkg", "x.shp", "x.csv", "x.geojson", "x.xlsx"])
def test_a_missing_folder_is_refused_not_created(tmp_path: Path, name: str) -> None:
    """review38 U13: a mistyped --out folder was created silently (exit 0)."""
    out = tmp_path / "nonexist" / "deeper" / name
    with pytest.raises(InvalidInput) as err:
        write_layer(units(), out, crs="EPSG:4548" if name != "x.geojson" else None)
    assert str(err.value) == (
        f"文件夹 {tmp_path / 'nonexist' / 'deeper'} 不存在:请先创建(拼错的路径不会被自动创建) / "
        f"{out}: the folder {tmp_path / 'nonexist' / 'deeper'} does not exist; create it first "
        "(a mistyped path is not created)"
    )
    assert err.value.detail == {"path": str(out), "reason": "no such folder"}
    assert not (tmp_path / "nonexist").exists()
    # Through a file further up: the one-line 'not a folder', naming that file.
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InvalidInput) as err:
        write_layer(units(), tmp_path / "afile" / "sub" / name)
    assert str(err.value) == (
        f"无法写入 {tmp_path / 'afile' / 'sub' / name}:{tmp_path / 'afile'} 不是文件夹 / "
        f"{tmp_path / 'afile' / 'sub' / name}: cannot write it (not a folder: {tmp_path / 'afile'})"
    )


def test_a_geopackage_written_into_says_which_layers_it_kept(tmp_path: Path) -> None:
    """review32 D4: another export into the same GeoPackage adds its layer beside the others, and says so."""
    out = tmp_path / "multi.gpkg"
    notes: list[str] = []
    write_layer(units(), out, layer="tier1_grids", crs="EPSG:4548", notes=notes)
    assert notes == []
    write_layer(units(), out, layer="tier3_grids", notes=notes)
    assert notes == [
        "multi.gpkg: wrote layer 'tier3_grids'; the GeoPackage also holds 'tier1_grids' (EPSG:4548) from earlier "
        "exports, kept (write to a new file for this layer alone)"
    ]
    notes.clear()
    write_layer(units(), out, layer="tier3_grids", notes=notes)  # replacing a layer: the other is still named
    assert len(notes) == 1 and "'tier1_grids' (EPSG:4548)" in notes[0] and "'tier3_grids' (" not in notes[0]
    assert sorted(str(n) for n, _ in pyogrio.list_layers(out)) == ["tier1_grids", "tier3_grids"]


def test_a_zone_accepted_past_its_edge_is_warned_about_naming_the_covering_zone(tmp_path: Path) -> None:
    """review32 G6: a 6° zone (EPSG:4509, 114–120°E) for a district at 113.6–113.8°E is within the tolerance and
    the scale limit, so accepted, but Chinese practice keeps to the zone: a warning names the one that covers it."""
    gdf = gpd.GeoDataFrame({"code": ["a"]}, geometry=[box(113.60, 34.70, 113.80, 34.80)], crs=4490)
    notes: list[str] = []
    write_layer(gdf, tmp_path / "z.gpkg", crs="EPSG:4509", notes=notes)
    assert notes == [
        "z.gpkg --crs EPSG:4509: the layer (lon 113.600..113.800) reaches past the zone's own longitudes "
        "(114..120°E); accepted, its scale error within 0.3%, but the zone that covers it is EPSG:4547 "
        "(CGCS2000 / 3-degree Gauss-Kruger CM 114E)"
    ]
    notes.clear()
    write_layer(gdf, tmp_path / "ok.gpkg", crs="EPSG:4547", notes=notes)  # its own zone: nothing to say
    assert notes == []


def test_an_excel_table_of_polygons_has_a_label_point_and_text_codes(tmp_path: Path) -> None:
    """review32 G5: grids as an Excel table — codes in text cells, a point inside each grid (the shapes need
    GeoPackage or Shapefile), in metres when projected; the CRS on its own sheet."""
    from openpyxl import load_workbook

    gdf = units()
    write_layer(gdf, tmp_path / "units.xlsx")
    book = load_workbook(tmp_path / "units.xlsx")
    table = book["units"]
    header = [c.value for c in table[1]]
    assert header[-2:] == ["label_lon", "label_lat"] and "geometry" not in header
    codes = [r[header.index("code")] for r in table.iter_rows(min_row=2)]
    assert [(c.data_type, c.value) for c in codes] == [("s", "110101001"), ("s", "110101002"), ("s", "110101003")]
    inside = gdf.geometry.representative_point()
    for row, point in zip(table.iter_rows(min_row=2), inside, strict=True):
        assert (row[-2].value, row[-1].value) == (round(point.x, 7), round(point.y, 7))
    assert [[c.value for c in r] for r in book["CRS"].iter_rows()][2] == [
        "position",
        "label_lon, label_lat: a point inside each shape",
    ]
    write_layer(gdf, tmp_path / "gk.xlsx", crs="EPSG:4548", layer="tier1_grids")
    gk = load_workbook(tmp_path / "gk.xlsx")
    assert gk.sheetnames == ["tier1_grids", "CRS"] and [c.value for c in gk["tier1_grids"][1]][-2:] == [
        "label_x",
        "label_y",
    ]
    assert gk["CRS"]["B1"].value == "EPSG:4548"


def test_a_column_the_shapefile_cannot_name_is_said_with_its_field_name(tmp_path: Path) -> None:
    """review34 D3: a city's column named in Chinese became FIELD<n>, one longer than 10 bytes was cut — silently;
    both are said, and the standard names (fixed, documented) and case-only changes are not."""
    gdf = gpd.GeoDataFrame(
        {"code": ["a"], "巡查频次": ["3"], "maintenance_contract_no": ["x"], "area_m2": [1.0]},
        geometry=[Point(113.7, 34.7)],
        crs=4490,
    )
    notes: list[str] = []
    write_layer(gdf, tmp_path / "r.shp", notes=notes)
    assert notes == [
        "r.shp: Shapefile field names are at most 10 bytes (UTF-8: 3 per Chinese character): 巡查频次 → FIELD2, "
        "maintenance_contract_no → maintenanc; r.fields.csv beside it keeps the names, and an import of the "
        "Shapefile reads them back from it (keep it with the .shp, .dbf, .prj and .cpg); GeoPackage, GeoJSON, CSV "
        "and .xlsx keep the names"
    ]
    assert list(gpd.read_file(tmp_path / "r.shp").columns)[:4] == ["CODE", "FIELD2", "maintenanc", "AREA_M2"]
    assert (tmp_path / "r.fields.csv").read_text(encoding="utf-8-sig").splitlines() == [
        "shapefile_field,name",
        "FIELD2,巡查频次",
        "maintenanc,maintenance_contract_no",
    ]
    assert list(read_layer_any(tmp_path / "r.shp", notes=notes).columns)[:4] == [
        "CODE",
        "巡查频次",
        "maintenance_contract_no",
        "AREA_M2",
    ]
    # GBK holds 巡查频次 (8 bytes) as it is; an export without renames removes an earlier export's field map.
    notes.clear()
    gdf = gdf.drop(columns="maintenance_contract_no")
    files = write_layer(gdf, tmp_path / "r.shp", encoding="gbk", notes=notes)
    assert notes == [] and not (tmp_path / "r.fields.csv").exists()
    assert "r.fields.csv" not in [f.name for f in files]
    assert list(gpd.read_file(tmp_path / "r.shp").columns)[:3] == ["CODE", "巡查频次", "AREA_M2"]
    with pytest.warns(vectorio.FieldRenamed, match="巡查频次 → FIELD2"):
        write_layer(gdf, tmp_path / "w.shp")
    notes.clear()
    write_layer(gdf, tmp_path / "r.gpkg", notes=notes)
    assert notes == [] and "巡查频次" in gpd.read_file(tmp_path / "r.gpkg").columns


def test_an_excel_table_holds_zoned_times_as_their_text(tmp_path: Path) -> None:
    """Excel has no time zones (openpyxl refuses a zoned time): such a column is its ISO text, offset kept."""
    from openpyxl import load_workbook

    gdf = units().assign(checked_at=pd.to_datetime(["2026-11-28T09:30:00+08:00"] * 2 + [None], utc=False))
    write_layer(gdf, tmp_path / "t.xlsx")
    table = load_workbook(tmp_path / "t.xlsx")["t"]
    header = [c.value for c in table[1]]
    assert [r[header.index("checked_at")].value for r in table.iter_rows(min_row=2)] == [
        "2026-11-28T09:30:00+08:00",
        "2026-11-28T09:30:00+08:00",
        None,
    ]


def test_a_csv_rounds_projected_wkt_to_millimetres_and_lon_lat_to_1e8_degrees(tmp_path: Path) -> None:
    """Review38 U11: a projected CSV export wrote float noise (471599.9999999994)."""
    metric = gpd.GeoDataFrame(
        {"code": ["a", "b"]},
        geometry=[Point(471599.9999999994, 4419000.0000000012), Point(471600.12345, 4419000.5)],
        crs="EPSG:4548",
    )
    write_layer(metric, tmp_path / "m.csv")
    table = pd.read_csv(tmp_path / "m.csv", dtype=str, encoding="utf-8-sig")
    assert table["wkt"].tolist() == ["POINT (471600 4419000)", "POINT (471600.123 4419000.5)"]
    degrees = gpd.GeoDataFrame(
        {"code": ["a", "b"]}, geometry=[Point(116.40000000000001, 39.9), Point(116.123456789, 39.987654321)]
    )  # no CRS: lon/lat by its coordinates
    write_layer(degrees.set_crs("EPSG:4490"), tmp_path / "d.csv")
    write_layer(degrees, tmp_path / "n.csv")
    for name in ("d.csv", "n.csv"):
        table = pd.read_csv(tmp_path / name, dtype=str, encoding="utf-8-sig")
        assert table["wkt"].tolist() == ["POINT (116.4 39.9)", "POINT (116.12345679 39.98765432)"]
    # Reprojected to the zone: every coordinate at most 3 decimals, each within 0.5 mm of the exact transformation.
    write_layer(units(), tmp_path / "g.csv", crs="EPSG:4548")
    text = (tmp_path / "g.csv").read_text(encoding="utf-8-sig")
    numbers = re.findall(r"-?\d+\.\d+", text.split("wkt", 1)[1])
    assert numbers and max(len(n.split(".")[1]) for n in numbers if float(n) > 1000) <= 3
    back = read_layer_any(tmp_path / "g.csv")
    exact = units().to_crs(4548)
    assert shapely.equals_exact(back.geometry.values, exact.geometry.values, tolerance=0.0005 * 2**0.5).all()
    assert not shapely.equals_exact(back.geometry.values, exact.geometry.values, tolerance=1e-9).any()


def test_integers_that_fit_32_bits_are_declared_n9_others_keep_n18(tmp_path: Path) -> None:
    """review47 F7: ArcGIS reads a DBF N(18,0) as Double; an integer column whose values fit 32 bits is written as
    N(9,0) (Long Integer), nulls kept; one that does not fit keeps N(18,0) and its values."""
    gdf = gpd.GeoDataFrame(
        {
            "seq": np.array([1, 2, 3], dtype=np.int64),
            "staff": pd.array([4, None, 6], dtype="Int64"),
            "big": np.array([1, 2**40, 3], dtype=np.int64),
        },
        geometry=[Point(113.6, 34.7), Point(113.61, 34.7), Point(113.62, 34.7)],
        crs=4490,
    )
    write_layer(gdf, tmp_path / "n.shp")
    fields = dbf_fields(tmp_path / "n.shp")
    assert fields == {"SEQ": ("N", 9, 0), "staff": ("N", 9, 0), "big": ("N", 18, 0)}
    back = gpd.read_file(tmp_path / "n.shp", engine="pyogrio")
    assert back["SEQ"].tolist() == [1, 2, 3] and back["big"].tolist() == [1, 2**40, 3]
    assert back["staff"].isna().tolist() == [False, True, False] and back["staff"][0] == 4
