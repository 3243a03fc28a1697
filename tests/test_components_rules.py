"""Pure component rules: identifiers, reading CSV/GeoJSON/GPKG/Shapefile, every refusal, speed. No database."""

from __future__ import annotations

import datetime as dt
import re
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import CRS, Geod, Transformer
from shapely.affinity import translate
from shapely.geometry import LineString, Point, box

from gisgrid import geodesy
from gisgrid.catalogue import Catalogue, load_catalogue
from gisgrid.components import (
    ACCEPTED_COLUMNS,
    DATA_SOURCES,
    POSITION_TOLERANCE_DEG,
    STATUSES,
    custom_columns_note,
    file_fields,
    format_identifier,
    identifier_pattern,
    parse_identifier,
    read_component_file,
    same_positions,
    validate_components,
    write_errors,
)
from gisgrid.errors import InvalidInput
from gisgrid.geodesy import DatumApproximate
from gisgrid.settings import PROJECT_ROOT

DISTRICT = "110105"
COVERAGE = box(116.40, 39.90, 116.50, 40.00)
TODAY = dt.date(2025, 6, 1)
LAMP_DEPT = "990000000000000012"  # 城市照明管理处
WATER_DEPT = "990000000000000007"  # 供水集团
SANITATION = "990000000000000003"  # 环卫中心
GEOD = Geod(ellps="WGS84")
#: A reason starts with a CJK character: zh-CN first (review U1).
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def cat() -> Catalogue:
    return load_catalogue(PROJECT_ROOT / "data")


def validate(raw: pd.DataFrame, cat: Catalogue, scheme: str = "gbt47678", **kw: object):
    return validate_components(
        raw, scheme=scheme, catalogue=cat, district_code=DISTRICT, coverage=COVERAGE, today=TODAY, **kw
    )


def pairs(errors: pd.DataFrame) -> list[tuple[int, str]]:
    return list(zip(errors["row"].tolist(), errors["field"].tolist(), strict=True))


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


# ------------------------------------------------------------------------------------------- identifiers


def test_identifier_both_schemes() -> None:
    assert identifier_pattern("gbt47678") == r"([0-9]{6})([0-9]{5})([0-9]{6})"
    assert identifier_pattern("cjt214") == r"([0-9]{6})([0-9]{4})([0-9]{6})"
    assert parse_identifier("11010501037000042", "gbt47678") == ("110105", "01037", "000042")
    assert parse_identifier("3205080101000001", "cjt214") == ("320508", "0101", "000001")  # the Suzhou sample
    assert format_identifier("110105", "01037", 42, "gbt47678") == "11010501037000042"
    assert format_identifier("320508", "0101", "000001", "cjt214") == "3205080101000001"
    for bad, scheme in (
        ("3205080101000001", "gbt47678"),
        ("11010501037000042", "cjt214"),
        ("1101050103700004A", "gbt47678"),
    ):
        with pytest.raises(InvalidInput):
            parse_identifier(bad, scheme)
    with pytest.raises(InvalidInput, match="class code"):
        format_identifier("110105", "0103", 1, "gbt47678")
    with pytest.raises(InvalidInput, match="serial"):
        format_identifier("110105", "01037", 1_000_000, "gbt47678")
    with pytest.raises(InvalidInput, match="unknown scheme"):
        identifier_pattern("gb30428")


# ------------------------------------------------------------------------------------------- reading


def test_legacy_field_names(tmp_path: Path, cat: Catalogue) -> None:
    path = tmp_path / "legacy.csv"
    path.write_text(
        "ObjID,ObjName,DeptCode1,DeptCode2,DeptCode3,BGID,ObjState,ORDate,CHDate,DataSource,Note,PointX,PointY,Material\n"
        f"1101050118000001,路灯1,{LAMP_DEPT},,,110105001001001,破损,20200101,20240102,实测,旧,116.45,39.95,钢\n",
        encoding="utf-8",
    )
    raw = read_component_file(path)
    row = raw.iloc[0]
    assert row["id"] == "1101050118000001" and row["name"] == "路灯1" and row["main_dept"] == LAMP_DEPT
    assert (row["status"], row["initial_date"], row["change_date"]) == ("破损", "20200101", "20240102")
    assert (row["data_source"], row["note"], row["lon"], row["lat"]) == ("实测", "旧", 116.45, 39.95)
    assert row["attrs"] == {"Material": "钢"}  # BGID: a grid code the location gives (review50 F12)
    result = validate(raw, cat, "cjt214")
    assert result.errors.empty
    acc = result.accepted.iloc[0]
    assert acc["class_code"] == "0118"  # from the identifier
    assert acc["initial_date"] == dt.date(2020, 1, 1) and acc["change_date"] == dt.date(2024, 1, 2)
    assert list(result.accepted.columns) == list(ACCEPTED_COLUMNS)


def test_standard_names_case_insensitive_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "std.csv"
    path.write_text(
        "glbjbsm, GLBJMC ,zgbmdm,QSDWDM,YHDWDM,GLBJZT,CSRQ,BGRQ,SJLY,BZ,经度,纬度,SZDYWGBSM\n"
        f"11010501001000001,井盖,{WATER_DEPT},{WATER_DEPT},,完好,2024-01-01,,实测,,116.45,39.95,110105001001001\n",
        encoding="utf-8-sig",
    )
    raw = read_component_file(path)
    assert raw.loc[0, "id"] == "11010501001000001" and raw.loc[0, "name"] == "井盖"
    assert raw.loc[0, "owner_dept"] == WATER_DEPT and raw.loc[0, "lon"] == 116.45
    # 所在单元网格标识码 is derived from the location: recognised and not stored (was kept in attrs; review11 D6).
    assert raw.loc[0, "attrs"] == {}
    assert raw.attrs["gisgrid"]["derived"] == ["SZDYWGBSM"]
    assert raw.attrs["gisgrid"]["notes"] == []


def test_the_standards_chinese_headers_name_its_fields(tmp_path: Path, cat: Catalogue) -> None:
    """review50 F5: a bureau sheet heads its columns with 表2's Chinese names; they are the standard's fields (the
    id in 部件标识码 is the id, not a custom attribute), its derived ones are recognised and not stored, and only the
    other columns are custom attributes, listed in one note."""
    path = tmp_path / "bureau.csv"
    path.write_text(
        "部件标识码,部件名称,类别代码,主管部门代码,权属单位代码,养护单位代码,部件状态,初始日期,变更日期,数据来源,备注,"
        "经度,纬度,所在单元网格标识码,所在街道名称,主管部门名称,材质,设置位置\n"
        f"11010501037000007,红桥路口西,01037,{LAMP_DEPT},{LAMP_DEPT},{LAMP_DEPT},破损,2020/1/6,20240102,实测,"
        f'"含逗号,的备注",116.45,39.95,110105001001001,东花市街道,城市照明管理处,钢,路口\n',
        encoding="utf-8-sig",  # Excel's CSV (UTF-8): with a BOM
    )
    raw = read_component_file(path)
    row = raw.iloc[0]
    assert (row["id"], row["class_code"], row["name"]) == ("11010501037000007", "01037", "红桥路口西")
    assert (row["main_dept"], row["owner_dept"], row["maint_dept"]) == (LAMP_DEPT, LAMP_DEPT, LAMP_DEPT)
    assert (row["status"], row["initial_date"], row["change_date"]) == ("破损", "2020/1/6", "20240102")
    assert (row["data_source"], row["note"]) == ("实测", "含逗号,的备注")
    assert row["attrs"] == {"材质": "钢", "设置位置": "路口"}
    meta = raw.attrs["gisgrid"]
    assert meta["derived"] == ["所在单元网格标识码", "所在街道名称", "主管部门名称"]
    assert meta["dept_name_fields"] == {"main_dept": "主管部门名称"}
    assert custom_columns_note(meta) == (
        "以下列存为自定义属性(attrs):材质, 设置位置 / column(s) kept as custom attributes (attrs): 材质, 设置位置"
    )
    result = validate(raw, cat)
    assert result.errors.empty and result.warnings.empty
    accepted = result.accepted.iloc[0]
    assert (accepted["id"], accepted["name"], accepted["note"]) == ("11010501037000007", "红桥路口西", "含逗号,的备注")
    assert accepted["initial_date"] == dt.date(2020, 1, 6) and accepted["change_date"] == dt.date(2024, 1, 2)

    full = tmp_path / "full.csv"  # the names of 表2 in full, and the short 标识码
    full.write_text(
        "管理部件标识码,管理部件名称,管理部件状态,经度,纬度\n11010501037000008,灯,完好,116.45,39.95\n", encoding="utf-8"
    )
    raw = read_component_file(full)
    assert (raw.loc[0, "id"], raw.loc[0, "name"], raw.loc[0, "status"], raw.loc[0, "attrs"]) == (
        "11010501037000008",
        "灯",
        "完好",
        {},
    )
    assert custom_columns_note(raw.attrs["gisgrid"]) is None
    short = tmp_path / "short.csv"
    short.write_text("标识码,经度,纬度\n11010501037000009,116.45,39.95\n", encoding="utf-8")
    assert read_component_file(short).loc[0, "id"] == "11010501037000009"
    both = tmp_path / "both.csv"  # two names of one field: which holds the name is not ours to guess
    both.write_text("GLBJMC,部件名称,经度,纬度\n甲,乙,116.45,39.95\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        read_component_file(both)
    assert exc.value.message == (
        f"{both}: 列 GLBJMC 和 部件名称(第 1 列和第 2 列)是同一字段 name,请只保留一列 / columns GLBJMC and 部件名称 "
        "(columns 1 and 2) are both the field name; keep one"
    )


def test_a_department_name_not_registered_for_its_code_is_warned_about(tmp_path: Path, cat: Catalogue) -> None:
    """The code rules; a different name in ZGBMMC/QSDWMC/YHDWMC is warned about naming row, field and both names.
    A matching, empty or code-less name says nothing; an unknown code is refused as before, with no warning."""
    assert (cat.departments[LAMP_DEPT], cat.departments[WATER_DEPT]) == ("城市照明管理处", "供水集团有限公司")
    path = tmp_path / "names.csv"
    path.write_text(
        "class_code,ZGBMDM,ZGBMMC,QSDWDM,qsdwmc,YHDWDM,YHDWMC,lon,lat\n"
        f"01037,{LAMP_DEPT},城市照明管理处,{WATER_DEPT},自来水公司,,,116.45,39.95\n"  # line 2: QSDWMC differs
        f"01037,{LAMP_DEPT},路灯所,,供水集团有限公司,{LAMP_DEPT}, 城市照明管理处 ,116.45,39.96\n"  # 3: ZGBMMC
        f"01037,{LAMP_DEPT},,{WATER_DEPT},,,,116.45,39.97\n"  # 4: no names
        "01037,LOCAL99,某某局,,,,,116.45,39.98\n",  # 5: unknown code, refused
        encoding="utf-8",
    )
    raw = read_component_file(path)
    assert raw.attrs["gisgrid"]["dept_name_fields"] == {
        "main_dept": "ZGBMMC",
        "owner_dept": "qsdwmc",
        "maint_dept": "YHDWMC",
    }
    result = validate(raw, cat)
    assert pairs(result.errors) == [(5, "main_dept")]
    assert result.warnings.to_dict("records") == [
        {
            "row": 2,
            "field": "qsdwmc",
            "value": "自来水公司",
            "reason": f"部门名称与代码不符 department name '自来水公司' in qsdwmc is not '供水集团有限公司', the name "
            f"registered for code {WATER_DEPT}; the code is used",
        },
        {
            "row": 3,
            "field": "ZGBMMC",
            "value": "路灯所",
            "reason": f"部门名称与代码不符 department name '路灯所' in ZGBMMC is not '城市照明管理处', the name "
            f"registered for code {LAMP_DEPT}; the code is used",
        },
    ]
    accepted = result.accepted.set_index("_row")
    assert accepted.loc[[2, 3, 4], "main_dept"].tolist() == [LAMP_DEPT] * 3  # the codes, whatever the names
    assert accepted.loc[2, "owner_dept"] == WATER_DEPT and accepted["attrs"].tolist() == [{}, {}, {}]


def test_gbk_csv_fallback_with_note(tmp_path: Path, cat: Catalogue) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes("类别代码,名称,lon,lat\n03005,垃圾箱甲,116.45,39.95\n".encode("gbk"))
    raw = read_component_file(path)
    assert raw.loc[0, "class_code"] == "03005" and raw.loc[0, "attrs"] == {"名称": "垃圾箱甲"}
    assert "GBK" in raw.attrs["gisgrid"]["notes"][0]
    acc = validate(raw, cat).accepted.iloc[0]
    assert (acc["name"], acc["main_dept"], acc["status"]) == ("垃圾箱", SANITATION, "完好")  # class defaults


def test_explicit_fields_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("编号,类型,东,北\n11010501037000001,01037,116.45,39.95\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="no coordinates"):
        read_component_file(path)
    raw = read_component_file(path, lon_field="东", lat_field="北", class_field="类型")
    assert (raw.loc[0, "class_code"], raw.loc[0, "lon"], raw.loc[0, "attrs"]) == (
        "01037",
        116.45,
        {"编号": "11010501037000001"},
    )
    with pytest.raises(InvalidInput, match="no such column"):
        read_component_file(path, lon_field="lon", lat_field="北")
    with pytest.raises(InvalidInput, match="both"):
        read_component_file(path, lon_field="东")
    with pytest.raises(InvalidInput, match="src_datum"):
        read_component_file(path, lon_field="东", lat_field="北", src_datum="beijing54")


def test_gcj02_input_converted(tmp_path: Path, cat: Catalogue) -> None:
    path = tmp_path / "gcj.csv"
    path.write_text("class_code,lng,lat\n01037,116.487586,39.991754\n", encoding="utf-8")
    raw = read_component_file(path, src_datum="gcj02")
    assert metres(raw.loc[0, "lon"], raw.loc[0, "lat"], 116.481499, 39.990475) < 1.0
    assert raw.loc[0, "lon_text"] == "116.487586"  # the given text is kept for error messages
    # Same point as GeoJSON geometry.
    gj = tmp_path / "gcj.geojson"
    gpd.GeoDataFrame({"class_code": ["01037"]}, geometry=[Point(116.487586, 39.991754)], crs=4326).to_file(gj)
    raw = read_component_file(gj, src_datum="gcj02")
    assert metres(raw.loc[0, "lon"], raw.loc[0, "lat"], 116.481499, 39.990475) < 1.0
    assert validate(raw, cat).errors.empty


def test_projected_xy_with_src_crs(tmp_path: Path) -> None:
    x, y = Transformer.from_crs(4490, 4548, always_xy=True).transform(116.45, 39.95)  # CGCS2000 GK CM 117°E
    path = tmp_path / "xy.csv"
    path.write_text(f"ObjCode,PointX,PointY\n01037,{x:.3f},{y:.3f}\n", encoding="utf-8")
    raw = read_component_file(path, src_crs="EPSG:4548")
    assert metres(raw.loc[0, "lon"], raw.loc[0, "lat"], 116.45, 39.95) < 0.01
    with pytest.raises(InvalidInput, match="unknown CRS"):
        read_component_file(path, src_crs="EPSG:999999")


def test_numbers_the_crs_maps_to_no_position_are_refused_naming_the_crs_and_the_likely_cause(
    tmp_path: Path, cat: Catalogue
) -> None:
    """review50 F4: projected x/y that the CRS maps to inf were refused as "纬度无法解析(不是数字)" although the cell
    is a number. The zone number in an easting with a CRS without it, X/Y swapped (X = north, as survey tables write
    it) and a point far outside the zone each get their own reason naming the CRS; text that is not a number is
    still "not a number"."""
    x, y = Transformer.from_crs(4490, 4527, always_xy=True).transform(116.45, 39.95)  # zone 39, zone number in x
    path = tmp_path / "gk.csv"
    path.write_text(
        f"ObjCode,PointX,PointY\n01037,{x:.3f},{y:.3f}\n01037,{y:.3f},{x:.3f}\n01037,99000000,4425000\n"
        "01037,453000,abc\n",
        encoding="utf-8",
    )
    assert x == pytest.approx(39452999.012) and y == pytest.approx(4424122.180)
    raw = read_component_file(path, src_crs="EPSG:4527")
    result = validate(raw, cat)
    assert result.accepted["_row"].tolist() == [2]  # the right CRS: accepted
    assert file_fields(result.errors, raw.attrs["gisgrid"])[["row", "field", "value", "reason"]].to_dict("records") == [
        {
            "row": 3,
            "field": "PointX/PointY",
            "value": "4424122.180,39452999.012",
            "reason": "坐标不在 EPSG:4527 的范围内:X 与 Y 是否对调?(Y 值 39452999 是带带号 39 的东坐标) / coordinates "
            "outside the area of EPSG:4527: X and Y swapped? (the Y value 39452999 is an easting with zone number 39)",
        },
        {
            "row": 4,
            "field": "PointX/PointY",
            "value": "99000000,4425000",
            "reason": "坐标不在 EPSG:4527 的范围内(离该坐标系的适用区域太远:坐标系或 X/Y 顺序是否有误?) / coordinates "
            "outside the area of EPSG:4527 (too far from where it applies: is the CRS, or the order of X and Y, "
            "wrong?)",
        },
        {
            "row": 5,
            "field": "PointY",
            "value": "abc",
            "reason": "纬度无法解析(不是数字) / unparseable latitude (not a number)",
        },
    ]
    raw = read_component_file(path, src_crs="EPSG:4548")  # CM 117°E: the same zone without its number
    errors = validate(raw, cat).errors
    assert errors[["row", "field", "reason"]].head(2).to_dict("records") == [
        {
            "row": 2,
            "field": "coordinates",
            "reason": "坐标不在 EPSG:4548 的范围内:东坐标 39452999 带带号 39,应为 EPSG:4527? / coordinates outside the "
            "area of EPSG:4548: the easting 39452999 carries the zone number 39; EPSG:4527?",
        },
        # swapped, this pair is a position in EPSG:4548 (3°N 150°E): outside the district, not beyond the CRS
        {"row": 3, "field": "coordinates", "reason": "不在本区范围内(110105) / outside the district coverage (110105)"},
    ]
    layer = tmp_path / "gk.gpkg"  # a layer's geometry labelled with the CM form: said as for x/y, field geometry
    gpd.GeoDataFrame({"ObjCode": ["01037"]}, geometry=[Point(x, y)], crs=4548).to_file(layer)
    raw = read_component_file(layer)
    errors = file_fields(validate(raw, cat).errors, raw.attrs["gisgrid"])
    assert errors[["row", "field", "value"]].to_dict("records") == [
        {"row": 1, "field": "geometry", "value": "39452999.0124311,4424122.1797258"}
    ]
    assert errors["reason"].iloc[0].startswith("坐标不在 EPSG:4548 的范围内:东坐标 39452999 带带号 39,应为 EPSG:4527?")


def test_x_and_y_swapped_in_a_central_meridian_crs_are_said_naming_the_row_and_the_columns(
    tmp_path: Path, cat: Catalogue
) -> None:
    """fixcrs (1): survey tables write X = northing. In a CM-form zone (EPSG:4548, eastings 500 km ± without a
    zone number) the swapped pair is still a position, ~34° away: it was refused as "outside the district" alone.
    Now a row that swapped lies in the district, or (unlike as given) in the CRS's area of use, says X and Y look
    swapped and how to swap them; a row that swapped lies nowhere useful keeps the plain reason."""
    path = tmp_path / "survey.csv"
    path.write_text(
        "ObjCode,X,Y\n01037,4424122.180,452999.012\n01037,452999.012,4424122.180\n01037,3000000,600000\n"
        "01037,9000000,100\n",
        encoding="utf-8",
    )
    raw = read_component_file(path, x_field="X", y_field="Y", src_crs="EPSG:4548")
    result = validate(raw, cat)
    assert result.accepted["_row"].tolist() == [3]
    assert file_fields(result.errors, raw.attrs["gisgrid"])[["row", "field", "value", "reason"]].to_dict("records") == [
        {
            "row": 2,
            "field": "X/Y",
            "value": "4424122.180,452999.012",
            "reason": "不在本区范围内(110105):X 与 Y 疑似对调(对调后 116.450000,39.950000 位于本区内;"
            "测量表常以 X 为北坐标),请对调 X 与 Y 两列,或用 --x-field Y --y-field X / outside the district "
            "coverage (110105): X and Y look swapped (swapped, the point 116.450000,39.950000 lies in the district; "
            "survey tables often write X = northing): swap the columns X and Y, or pass --x-field Y --y-field X",
        },
        {
            "row": 4,
            "field": "X/Y",
            "value": "3000000,600000",
            "reason": "不在本区范围内(110105):X 与 Y 疑似对调(对调后 118.008442,27.108016 位于 EPSG:4548 的适用区域内,"
            "对调前不在;测量表常以 X 为北坐标),请对调 X 与 Y 两列,或用 --x-field Y --y-field X / outside the district "
            "coverage (110105): X and Y look swapped (swapped, the point 118.008442,27.108016 lies within the area of "
            "use of EPSG:4548, as given it does not; survey tables often write X = northing): swap the columns X and "
            "Y, or pass --x-field Y --y-field X",
        },
        {
            "row": 5,
            "field": "X/Y",
            "value": "9000000,100",
            "reason": "不在本区范围内(110105) / outside the district coverage (110105)",
        },
    ]
    # Swapped as the remedy says: every row in the district is accepted.
    raw = read_component_file(path, x_field="Y", y_field="X", src_crs="EPSG:4548")
    assert validate(raw, cat).accepted["_row"].tolist() == [2]
    # The point rows beside a WKT column (as an .xlsx export has them) are told the same, naming their columns.
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(
        'ObjCode,wkt,PointX,PointY\n01037,"POINT (452999.012 4424122.180)",,\n01037,,4424122.180,452999.012\n',
        encoding="utf-8",
    )
    raw = read_component_file(mixed, src_crs="EPSG:4548")
    result = validate(raw, cat)
    assert result.accepted["_row"].tolist() == [2]
    assert file_fields(result.errors, raw.attrs["gisgrid"])[["row", "field"]].to_dict("records") == [
        {"row": 3, "field": "wkt | PointX/PointY"}  # the coordinates of a mixed sheet, as its other refusals
    ]
    assert (
        result.errors["reason"]
        .iloc[0]
        .endswith("swap the columns PointX and PointY, or pass --x-field PointY --y-field PointX")
    )
    # A lon/lat file has no projected swap to tell: its rows keep the lon/lat checks.
    lonlat = tmp_path / "lonlat.csv"
    lonlat.write_text("ObjCode,lon,lat\n01037,116.6,39.95\n", encoding="utf-8")
    raw = read_component_file(lonlat)
    assert "swapped_lon" not in raw.columns
    assert validate(raw, cat).errors["reason"].tolist() == [
        "不在本区范围内(110105) / outside the district coverage (110105)"
    ]


def test_x_and_y_swapped_in_a_projected_layer_s_geometry_are_said_with_the_layer_s_remedy(
    tmp_path: Path, cat: Catalogue
) -> None:
    """A GeoPackage (or shapefile) whose points were written northing first in a CM-form zone gets the same "X and Y
    look swapped" as x/y columns, with a remedy for a layer (no columns to name); nothing of it is accepted."""
    layer = tmp_path / "swapped.gpkg"
    gpd.GeoDataFrame(
        {"ObjCode": ["01037", "01037"]},
        geometry=[Point(4424122.180, 452999.012), Point(452999.012, 4424122.180)],
        crs=4548,
    ).to_file(layer)
    raw = read_component_file(layer)
    result = validate(raw, cat)
    assert result.accepted["_row"].tolist() == [2]
    assert file_fields(result.errors, raw.attrs["gisgrid"])[["row", "field", "reason"]].to_dict("records") == [
        {
            "row": 1,
            "field": "geometry",
            "reason": "不在本区范围内(110105):X 与 Y 疑似对调(对调后 116.450000,39.950000 位于本区内;"
            "测量表常以 X 为北坐标),请对调 X 与 Y(在文件中对调,如 QGIS 的“Swap X and Y coordinates”工具) / outside "
            "the district coverage (110105): X and Y look swapped (swapped, the point 116.450000,39.950000 lies in "
            "the district; survey tables often write X = northing): swap them (in the file, e.g. QGIS' Swap X and Y "
            "coordinates)",
        }
    ]


def test_the_no_crs_hint_tells_northings_in_x_and_cm_eastings_in_y(tmp_path: Path) -> None:
    """fixcrs (1): without a CRS, X values that are northings (3,845,000 m) and Y values that are CM-form eastings
    (471,600 m) are X and Y swapped: said, with the columns' remedy, before the CRS to pass."""
    path = tmp_path / "survey.csv"
    path.write_text("ObjCode,PointX,PointY\n01037,3845000.0,471600.0\n01037,3845100,471700\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        read_component_file(path)
    assert exc.value.message == (
        f"{path}: the file has no CRS and its coordinates are not lon/lat (bounds [3845000.0, 471600.0, 3845100.0, "
        "471700.0]); X and Y look swapped (the X values are northings, the Y values eastings without a zone number, "
        "as survey tables write them): swap them (--x-field, --y-field) and pass --src-crs, e.g. EPSG:4547 (CGCS2000 "
        "3° GK CM 114E) or EPSG:4548 (CM 117E) — the zone of their central meridian"
    )


HINT = "pass --src-crs, e.g. EPSG:4547 (CGCS2000 3° GK CM 114E) or EPSG:4548 (CM 117E)"


def test_projected_coordinates_without_a_crs_refuse_the_file_once(tmp_path: Path) -> None:
    """review38 U2: as the boundary import says it — once for the file, with --src-crs — not once per row."""
    path = tmp_path / "noprj.csv"
    path.write_text(
        "ObjCode,PointX,PointY\n01037,471600.0,3845000.0\n01037,471700.25,3845100.04\n01037,0,0\n01037,,\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput) as exc:
        read_component_file(path)
    assert exc.value.message == (
        f"{path}: the file has no CRS and its coordinates are not lon/lat (bounds [471600.0, 3845000.0, 471700.2, "
        f"3845100.0]); {HINT}"
    )
    shp = tmp_path / "noprj.shp"  # a layer without a .prj
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        gpd.GeoDataFrame({"ObjCode": ["01037"]}, geometry=[Point(471600, 3845000)]).to_file(shp)
    with pytest.raises(InvalidInput) as exc:
        read_component_file(shp)
    assert exc.value.message == (
        f"{shp}: the file has no CRS and its coordinates are not lon/lat (bounds [471600.0, 3845000.0, 471600.0, "
        f"3845000.0]); {HINT}"
    )
    labelled = tmp_path / "labelled.gpkg"  # metres labelled as CGCS2000 lon/lat
    gpd.GeoDataFrame({"ObjCode": ["01037"]}, geometry=[Point(471600, 3845000)], crs=4490).to_file(labelled)
    with pytest.raises(InvalidInput) as exc:
        read_component_file(labelled)
    assert exc.value.message == (
        f"{labelled}: coordinates are not lon/lat in the declared CRS EPSG:4490 (bounds [471600.0, 3845000.0, "
        f"471600.0, 3845000.0]): the CRS is probably wrong; {HINT}"
    )


def test_the_no_crs_hint_reads_the_zone_number_of_the_eastings(tmp_path: Path) -> None:
    """review50 F10: 8-digit eastings carry their Gauss–Krüger zone (39,452,999 m: zone 39 = EPSG:4527); the hint
    suggested EPSG:4547/4548, both wrong for them. The Y values carrying it instead are X and Y swapped."""
    path = tmp_path / "gk.csv"
    path.write_text("ObjCode,PointX,PointY\n01037,39452999.012,4424122.180\n01037,39453100,4424200\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        read_component_file(path)
    assert exc.value.message == (
        f"{path}: the file has no CRS and its coordinates are not lon/lat (bounds [39452999.0, 4424122.2, 39453100.0, "
        "4424200.0]); the eastings carry the zone number 39: pass --src-crs EPSG:4527 (CGCS2000 3° GK zone 39, CM "
        "117E; or EPSG:4548 with the zone number taken off)"
    )
    path.write_text("ObjCode,PointX,PointY\n01037,4424122.180,39452999.012\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        read_component_file(path)
    assert exc.value.message.endswith(
        "; X and Y look swapped (the Y values carry the zone number 39, as eastings do): swap them (--x-field, "
        "--y-field) and pass --src-crs EPSG:4527 (CGCS2000 3° GK zone 39, CM 117E; or EPSG:4548 with the zone number "
        "taken off)"
    )
    path.write_text("ObjCode,PointX,PointY\n01037,20452999,4424122\n", encoding="utf-8")  # a 6° zone
    with pytest.raises(InvalidInput) as exc:
        read_component_file(path)
    assert exc.value.message.endswith(
        "; the eastings carry the zone number 20: pass --src-crs EPSG:4498 (CGCS2000 6° GK zone 20, CM 117E; or "
        "EPSG:4509 with the zone number taken off)"
    )
    path.write_text("ObjCode,PointX,PointY\n01037,39452999,4424122\n01037,38452999,4424122\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:  # two zones: no one CRS to suggest
        read_component_file(path)
    assert exc.value.message.endswith(f"; {HINT}")
    for epsg, name in ((4513, "zone 25"), (4527, "zone 39"), (4533, "zone 45"), (4534, "CM 75E"), (4548, "CM 117E")):
        assert CRS.from_epsg(epsg).name == f"CGCS2000 / 3-degree Gauss-Kruger {name}"  # the numbers the hints use
    assert (CRS.from_epsg(4498).name, CRS.from_epsg(4509).name) == (
        "CGCS2000 / Gauss-Kruger zone 20",
        "CGCS2000 / Gauss-Kruger CM 117E",
    )


def test_a_row_in_metres_among_lon_lat_rows_is_refused_as_a_row(tmp_path: Path, cat: Catalogue) -> None:
    path = tmp_path / "typo.csv"
    path.write_text("ObjCode,lon,lat\n01037,116.45,39.95\n01037,471600.0,3845000.0\n", encoding="utf-8")
    result = validate(read_component_file(path), cat)
    assert result.errors[["row", "field", "reason"]].to_dict("records") == [
        {
            "row": 3,
            "field": "coordinates",
            "reason": "不是经纬度:投影坐标(米)需指定源坐标系 / "
            "not lon/lat degrees: projected coordinates (metres) need the source CRS",
        }
    ]


def test_old_datum_xy_is_read_with_a_one_line_ballpark_warning(tmp_path: Path) -> None:
    """Beijing 1954 (EPSG:2435) has only PROJ's ballpark path to CGCS2000 here: said, not silent."""
    path = tmp_path / "b54.csv"
    path.write_text("ObjCode,PointX,PointY\n01037,39500000.000,4420000.000\n", encoding="utf-8")
    with pytest.warns(DatumApproximate) as caught:
        raw = read_component_file(path, src_crs="EPSG:2435")
    [message] = [str(w.message) for w in caught]
    assert message.startswith("b54.csv: Beijing 1954") and "ballpark" in message and "\n" not in message
    assert raw.attrs["gisgrid"]["notes"] == [message]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatumApproximate)  # a modern datum: no warning
        read_component_file(
            tmp_path / "xy.csv" if (tmp_path / "xy.csv").exists() else _cgcs_xy(tmp_path), src_crs="EPSG:4548"
        )


def _cgcs_xy(tmp_path: Path) -> Path:
    x, y = Transformer.from_crs(4490, 4548, always_xy=True).transform(116.45, 39.95)
    path = tmp_path / "xy.csv"
    path.write_text(f"ObjCode,PointX,PointY\n01037,{x:.3f},{y:.3f}\n", encoding="utf-8")
    return path


def _features(polygon: bool = True) -> gpd.GeoDataFrame:
    third = box(116.41, 39.91, 116.42, 39.92) if polygon else Point(116.41, 39.91)
    return gpd.GeoDataFrame(
        {
            "ObjID": ["11010501037000001", "11010501037000002", "11010504013000003"],
            "ObjName": ["路灯1", "路灯2", "绿地"],
            "DeptCode1": [LAMP_DEPT, LAMP_DEPT, ""],
            "ORDate": ["20240101", "20240102", "20240103"],
            "Material": ["钢", "铝", ""],
            "height": [8.5, 9.0, np.nan],
        },
        geometry=[Point(116.45, 39.95), None, third],
        crs=4490,
    )


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp"])
def test_vector_formats(tmp_path: Path, cat: Catalogue, suffix: str) -> None:
    path = tmp_path / f"parts{suffix}"
    shapefile = suffix == ".shp"  # one geometry type per Shapefile: points only there
    _features(polygon=not shapefile).to_file(path, engine="pyogrio")
    raw = read_component_file(path)
    assert raw["_row"].tolist() == [1, 2, 3]
    assert raw["id"].tolist() == ["11010501037000001", "11010501037000002", "11010504013000003"]
    assert raw.loc[0, "attrs"] == {"Material": "钢", "height": "8.5"}
    assert raw.loc[0, "geom_wkb"] is None and (raw.loc[2, "geom_wkb"] is None) == shapefile
    result = validate(raw, cat)
    assert pairs(result.errors) == [(2, "geometry")]  # the feature without geometry
    assert result.errors.loc[0, "reason"] == "缺少几何 / missing geometry"
    third = result.accepted.set_index("_row").loc[3]
    assert third["main_dept"] == "990000000000000004"  # 绿地 → 园林绿化局 by default
    assert COVERAGE.contains(Point(third["lon"], third["lat"]))
    if not shapefile:
        assert shapely.from_wkb(third["geom_wkb"]).equals(box(116.41, 39.91, 116.42, 39.92))


def test_gpkg_layer_reprojected_and_line(tmp_path: Path, cat: Catalogue) -> None:
    path = tmp_path / "two.gpkg"
    gdf = gpd.GeoDataFrame(
        {"GLBJBSM": ["11010502043000001"]}, geometry=[LineString([(116.45, 39.95), (116.46, 39.95)])], crs=4490
    )
    gdf.to_crs(3857).to_file(path, layer="speed_bumps")
    gdf.to_file(path, layer="other")
    with pytest.raises(InvalidInput, match="layers"):
        read_component_file(path)
    raw = read_component_file(path, layer="speed_bumps")
    line = shapely.from_wkb(raw.loc[0, "geom_wkb"])
    assert line.distance(Point(raw.loc[0, "lon"], raw.loc[0, "lat"])) < 1e-9  # the representative point
    assert line.geom_type == "LineString" and line.coords[0] == pytest.approx((116.45, 39.95))
    assert validate(raw, cat).accepted.loc[0, "class_code"] == "02043"


def test_z_and_m_values_are_dropped_and_said(tmp_path: Path, cat: Catalogue) -> None:
    """review50 F11: components are stored 2-D; a layer's heights (PointZ from a survey) or measures were dropped
    without a word. Now one note counts the rows."""
    path = tmp_path / "z.geojson"
    gpd.GeoDataFrame(
        {"ObjCode": ["01037", "01037", "01037"]},
        geometry=[
            Point(116.45, 39.95, 50.0),
            LineString([(116.44, 39.94, 1), (116.46, 39.96, 2)]),
            Point(116.45, 39.96),
        ],
        crs=4490,
    ).to_file(path)
    raw = read_component_file(path)
    assert raw.attrs["gisgrid"]["notes"] == ["z.geojson: Z/M 值已舍弃: 2 行 / Z/M values dropped: 2 rows"]
    assert (raw.loc[0, "lon"], raw.loc[0, "lat"]) == (116.45, 39.95)
    line = shapely.from_wkb(raw.loc[1, "geom_wkb"])
    assert not line.has_z and line.equals(LineString([(116.44, 39.94), (116.46, 39.96)]))
    assert validate(raw, cat).errors.empty
    wkt = tmp_path / "m.csv"
    wkt.write_text(
        'ObjCode,wkt\n01037,"POINT ZM (116.45 39.95 10 3)"\n01037,"POINT (116.45 39.96)"\n', encoding="utf-8"
    )
    raw = read_component_file(wkt)
    assert raw.attrs["gisgrid"]["notes"] == ["m.csv: Z/M 值已舍弃: 1 行 / Z/M values dropped: 1 row"]
    assert (raw.loc[0, "lon"], raw.loc[0, "lat"]) == (116.45, 39.95)
    flat = tmp_path / "flat.geojson"  # nothing to drop: no note
    gpd.GeoDataFrame({"ObjCode": ["01037"]}, geometry=[Point(116.45, 39.95)], crs=4490).to_file(flat)
    assert read_component_file(flat).attrs["gisgrid"]["notes"] == []


def test_csv_with_wkt(tmp_path: Path, cat: Catalogue) -> None:
    path = tmp_path / "wkt.csv"
    path.write_text(
        'class_code,wkt\n04013,"POLYGON ((116.41 39.91, 116.42 39.91, 116.42 39.92, 116.41 39.91))"\n'
        "04013,POLYGON ((oops\n04013,\n",
        encoding="utf-8",
    )
    result = validate(read_component_file(path), cat)
    assert pairs(result.errors) == [(3, "geometry"), (4, "geometry")]
    assert result.errors["reason"].tolist() == [
        "几何无法解析(WKT) / unparseable geometry (WKT)",
        "缺少几何 / missing geometry",
    ]
    assert result.accepted.loc[0, "geom_wkb"] is not None


# ------------------------------------------------------------------------------------------- refusals

HEADER = ["GLBJBSM", "类别代码", "GLBJMC", "ZGBMDM", "QSDWDM", "YHDWDM", "GLBJZT", "CSRQ", "BGRQ", "SJLY", "lon", "lat"]


def gid(cls: str, serial: int, district: str = DISTRICT) -> str:
    return f"{district}{cls}{serial:06d}"


def case_rows() -> tuple[list[list[str]], list[tuple[int, str]]]:
    """(rows, expected (line, field) refusals); line numbers count the header as line 1."""
    ok = ["01037", "路灯", LAMP_DEPT, "", "", "完好", "20240101", "", "实测", "116.45", "39.95"]

    def row(line: int, **changes: str) -> list[str]:
        values = dict(zip(HEADER[1:], ok, strict=True))
        values.update({k: v for k, v in changes.items() if k != "GLBJBSM"})
        return [changes.get("GLBJBSM", gid(values["类别代码"] if values["类别代码"] else "01037", line))] + [
            values[h] for h in HEADER[1:]
        ]

    rows = {
        2: row(2),  # accepted
        3: row(3, lon=""),
        4: row(4, lat="abc"),
        5: row(5, lon="39.95", lat="116.45"),
        6: row(6, lon="0", lat="0"),
        7: row(7, lon="116.60"),
        8: row(8, lon="500000", lat="4420000"),
        9: row(9, GLBJBSM="", 类别代码="01999"),
        10: row(10, GLBJBSM="1101050103700001A"),
        11: row(11, GLBJBSM="1101050103700011"),
        12: row(12, GLBJBSM=gid("01037", 12, "110106")),
        13: row(13, GLBJBSM=gid("01001", 13)),
        14: row(14, GLBJBSM=gid("01037", 2)),
        15: row(15, CSRQ="2024.01.01"),
        16: row(16, CSRQ="20240230"),
        17: row(17, CSRQ="2030-01-01"),
        18: row(18, CSRQ="20240301", BGRQ="2024/02/01"),
        19: row(19, ZGBMDM="123"),
        20: row(20, QSDWDM="990000000000009999"),
        21: row(21, YHDWDM="X"),
        22: row(22, GLBJZT="良好"),
        23: row(23, SJLY="卫星"),
        24: row(24, GLBJBSM="", lon="", 类别代码="99999", GLBJZT="坏"),
        25: row(25, GLBJBSM="", 类别代码=""),
        26: row(26, CSRQ="00010101"),
        27: row(27, GLBJBSM="", GLBJMC="", ZGBMDM="", GLBJZT="", CSRQ="2023/5/6", SJLY=""),  # accepted, defaults
        28: row(28, GLBJBSM=gid("01037", 999)),  # accepted: an update of an existing component
        29: row(29, GLBJBSM=gid("03005", 29), 类别代码="", GLBJMC="", ZGBMDM=""),  # accepted, class from id
        30: row(30, GLBJBSM=gid("01037", 2)),  # a second duplicate of line 2
    }
    expected = [
        (3, "lon"),
        (4, "lat"),
        (5, "coordinates"),
        (6, "coordinates"),
        (7, "coordinates"),
        (8, "coordinates"),
        (9, "class_code"),
        (10, "id"),
        (11, "id"),
        (12, "id"),
        (13, "id"),
        (14, "id"),
        (15, "initial_date"),
        (16, "initial_date"),
        (17, "initial_date"),
        (18, "change_date"),
        (19, "main_dept"),
        (20, "owner_dept"),
        (21, "maint_dept"),
        (22, "status"),
        (23, "data_source"),
        (24, "lon"),
        (24, "class_code"),
        (24, "status"),
        (25, "class_code"),
        (26, "initial_date"),
        (30, "id"),
    ]
    return [rows[k] for k in sorted(rows)], expected


def test_every_refusal_names_row_and_field(tmp_path: Path, cat: Catalogue) -> None:
    rows, expected = case_rows()
    path = tmp_path / "cases.csv"
    pd.DataFrame(rows, columns=HEADER).to_csv(path, index=False)
    result = validate(read_component_file(path), cat, existing_ids={gid("01037", 999)})
    errors = result.errors
    assert pairs(errors) == expected
    reason = dict(zip(pairs(errors), errors["reason"], strict=True))
    # Every reason says it in zh-CN first, then " / " and the English (review U1), and only once.
    assert all(CJK.match(r) and r.count(" / ") == 1 for r in errors["reason"]), errors["reason"].tolist()
    en = {k: r.split(" / ")[1] for k, r in reason.items()}
    assert reason[(3, "lon")] == "缺少经度 / missing longitude"
    assert reason[(4, "lat")] == "纬度无法解析(不是数字) / unparseable latitude (not a number)"
    assert (
        reason[(5, "coordinates")]
        == "经纬度疑似颠倒(纬度 116.45 > 90) / longitude and latitude look swapped (lat 116.45 > 90)"
    )
    assert (
        reason[(6, "coordinates")]
        == "坐标为 (0, 0):是占位值,不是位置 / coordinates are (0, 0): a placeholder, not a location"
    )
    assert reason[(7, "coordinates")] == "不在本区范围内(110105) / outside the district coverage (110105)"
    assert en[(8, "coordinates")].startswith("not lon/lat degrees")
    assert reason[(9, "class_code")] == "部件小类代码在 gbt47678 方案中不存在 / unknown class code for scheme gbt47678"
    assert reason[(10, "id")] == "标识码只能包含数字(0-9) / identifier must contain digits only (0-9)"
    assert en[(11, "id")].startswith("identifier must be 17 digits") and reason[(11, "id")].endswith("got 16")
    assert reason[(11, "id")].startswith("标识码应为 17 位")
    assert en[(12, "id")] == "identifier district prefix 110106 is not this district (110105)"
    assert en[(13, "id")] == "identifier class part 01001 does not match class code 01037"
    assert (
        reason[(14, "id")]
        == reason[(30, "id")]
        == "标识码重复:第 2 行已使用 / duplicate identifier: first used at row 2"
    )
    assert en[(15, "initial_date")].startswith("unrecognised date")
    assert reason[(16, "initial_date")] == "日期不存在 / impossible date (no such day)"
    assert en[(17, "initial_date")].startswith("date in the future")
    assert reason[(18, "change_date")] == (
        "变更日期 2024-02-01 早于初始日期 2024-03-01 / change date 2024-02-01 is before the initial date 2024-03-01"
    )
    assert en[(19, "main_dept")].startswith("unknown department code")
    assert reason[(22, "status")].startswith("状态须为 完好/破损/丢失/废弃/移除 之一")
    assert en[(22, "status")].startswith("status must be one of 完好/破损/丢失/废弃/移除")
    assert en[(23, "data_source")].startswith("data source must be one of")
    assert en[(25, "class_code")].startswith("missing class code")
    assert reason[(26, "initial_date")] == "日期不合理(早于 1900 年) / implausible date (before 1900)"
    value = dict(zip(pairs(errors), errors["value"], strict=True))
    assert value[(5, "coordinates")] == "39.95,116.45" and value[(16, "initial_date")] == "20240230"
    assert result.refused_rows == 25

    acc = result.accepted.set_index("_row")
    assert acc.index.tolist() == [2, 27, 28, 29]
    assert acc.loc[2, "id"] == gid("01037", 2) and not acc.loc[2, "is_update"]
    assert acc.loc[27, "id"] is None  # generated later
    assert (acc.loc[27, "name"], acc.loc[27, "main_dept"], acc.loc[27, "status"]) == ("路灯", LAMP_DEPT, "完好")
    assert acc.loc[27, "initial_date"] == dt.date(2023, 5, 6) and acc.loc[27, "data_source"] is None
    assert acc.loc[28, "is_update"]  # an existing id is an upsert, not an error
    assert (acc.loc[29, "class_code"], acc.loc[29, "name"], acc.loc[29, "main_dept"]) == ("03005", "垃圾箱", SANITATION)
    assert acc.loc[2, "owner_dept"] is None and acc.loc[2, "change_date"] is None


def test_swapped_below_90_and_contains_coverage(cat: Catalogue) -> None:
    # Urumqi-like district: swapped lat (87.6) is still ≤ 90, recognised by the bbox.
    coverage = box(87.5, 43.7, 87.7, 43.9)
    raw = pd.DataFrame({"_row": [2, 3], "class_code": ["01037", "01037"], "lon": [43.8, 87.6], "lat": [87.6, 43.8]})
    result = validate_components(
        raw, scheme="gbt47678", catalogue=cat, district_code="650102", coverage=coverage, today=TODAY
    )
    assert pairs(result.errors) == [(2, "coordinates")]
    assert "swapped" in result.errors.loc[0, "reason"]
    assert result.accepted["_row"].tolist() == [3]


def test_known_departments_override_and_cjt_scheme(cat: Catalogue) -> None:
    raw = pd.DataFrame(
        {"id": ["1101050305000001"], "main_dept": ["LOCAL01"], "lon": [116.45], "lat": [39.95]}, dtype=object
    )
    assert pairs(validate(raw, cat, "cjt214").errors) == [(1, "main_dept")]
    result = validate(raw, cat, "cjt214", known_departments={"LOCAL01"})
    assert result.errors.empty and result.accepted.loc[0, "class_code"] == "0305"


def test_constants() -> None:
    assert STATUSES == ("完好", "破损", "丢失", "废弃", "移除")
    assert DATA_SOURCES == ("实测", "地形图", "基础地理数据", "其他")


def test_write_errors_bom_csv(tmp_path: Path, cat: Catalogue) -> None:
    rows, _ = case_rows()
    raw = pd.DataFrame(rows, columns=HEADER)
    raw.insert(0, "_row", range(2, len(rows) + 2))
    raw = raw.rename(columns={"GLBJBSM": "id", "类别代码": "class_code", "GLBJZT": "status", "CSRQ": "initial_date"})
    raw["lon"] = pd.to_numeric(raw["lon"], errors="coerce")
    raw["lat"] = pd.to_numeric(raw["lat"], errors="coerce")
    errors = validate(raw, cat).errors
    out = write_errors(errors, tmp_path / "out" / "errors.csv")
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and data.splitlines()[0] == b"\xef\xbb\xbfrow,field,value,reason"
    back = pd.read_csv(out, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert back["row"].astype(int).tolist() == errors["row"].tolist()
    assert "良好" in back["value"].tolist()


# ------------------------------------------------------------------------------------------- speed


def test_validation_speed_200k(tmp_path: Path, cat: Catalogue) -> None:
    n = 200_000
    rng = np.random.default_rng(7)
    coverage = Point(116.45, 39.95).buffer(0.05, quad_segs=64)  # a 257-vertex polygon, as real boundaries are
    codes = np.array(sorted(cat.classes("gbt47678")))
    cls = codes[rng.integers(0, len(codes), n)]
    angle, radius = rng.uniform(0, 2 * np.pi, n), 0.06 * np.sqrt(rng.uniform(0, 1, n))  # ~30 % fall outside
    frame = pd.DataFrame(
        {
            "GLBJBSM": [f"{DISTRICT}{c}{i:06d}" for i, c in enumerate(cls)],
            "类别代码": cls,
            "GLBJMC": "部件",
            "ZGBMDM": LAMP_DEPT,
            "GLBJZT": rng.choice(["完好", "破损", "坏了"], n, p=[0.8, 0.19, 0.01]),
            "CSRQ": rng.choice(["20240101", "2024-02-30", "2023/7/1"], n, p=[0.5, 0.01, 0.49]),
            "SJLY": "实测",
            "lon": np.round(116.45 + radius * np.cos(angle), 7),
            "lat": np.round(39.95 + radius * np.sin(angle), 7),
            "SetLoc": "人行道",
        }
    )
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    start = time.perf_counter()
    raw = read_component_file(path)
    read_s = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    result = validate_components(
        raw, scheme="gbt47678", catalogue=cat, district_code=DISTRICT, coverage=coverage, today=TODAY
    )
    elapsed, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"\nread {n} rows in {read_s:.2f} s ({n / read_s:,.0f} rows/s); validated in {elapsed:.2f} s "
        f"({n / elapsed:,.0f} rows/s, {cpu_s:.2f} s CPU): {len(result.accepted)} accepted, "
        f"{len(result.errors)} refusals"
    )
    assert len(result.accepted) + result.refused_rows == n
    assert 0.5 * n < len(result.accepted) < 0.8 * n
    # A guard against a per-row Python loop (which takes minutes here), not a benchmark: ~3 s alone. Measured in
    # this process's CPU time (validation runs in one thread), which the other worker or a loaded machine does not
    # stretch as it stretches the wall time (5–7 s beside the suite, more on a busy 2-core machine; review57 F2);
    # scripts/bench/components.py measures the speed.
    assert cpu_s < 20.0, cpu_s


def test_full_width_digits_and_boundary_point(cat: Catalogue) -> None:
    raw = pd.DataFrame(
        {
            "_row": [2, 3, 4],
            "id": ["１１０１０５０１０３７０００００１", "", " "],
            "class_code": ["01037", "01037", "01037"],
            "lon": [116.45, 116.50, 116.45],  # row 3 lies exactly on the district's east edge
            "lat": [39.95, 39.95, 39.95],
        },
        dtype=object,
    )
    result = validate(raw, cat)
    assert pairs(result.errors) == [(2, "id"), (4, "id")]  # Excel full-width digits; a blank id is not stripped here
    assert result.accepted["_row"].tolist() == [3]


@pytest.mark.parametrize("labelled", ["EPSG:4547", "EPSG:4526"])
def test_a_file_labelled_with_the_wrong_gauss_kruger_zone_says_so(
    cat: Catalogue, tmp_path: Path, labelled: str
) -> None:
    """Metres of the district's zone (CM 117°E, EPSG:4548) read as the zone west of it put every row ~270 km
    away: each is refused as outside, and the reason names both zones (review38 U2)."""
    to_gk = Transformer.from_crs(4490, 4548, always_xy=True)
    x, y = to_gk.transform([116.45, 116.42], [39.95, 39.93])
    if labelled == "EPSG:4526":  # the zone-number form: eastings carry the zone (39) in front
        x = [v + 39_000_000 for v in x]
    path = tmp_path / "lamps.csv"
    pd.DataFrame({"class_code": ["01037"] * 2, "PointX": x, "PointY": y}).to_csv(path, index=False)
    result = validate(read_component_file(path, src_crs=labelled), cat)
    assert pairs(result.errors) == [(2, "coordinates"), (3, "coordinates")]
    assert set(result.errors["reason"]) == {
        f"不在本区范围内({DISTRICT});没有一行位于本区:文件坐标系 {labelled} 是中央经线 114°E 的高斯-克吕格分带,本区为 "
        f"117°E,若分带标错请用 --src-crs / outside the district coverage ({DISTRICT}); no row lies in the district: "
        f"the file's CRS {labelled} is the "
        "Gauss–Krüger zone of CM 114°E, the district's is CM 117°E (EPSG:4548, or EPSG:4527 with the zone number in "
        "the eastings) — if the file was labelled with the wrong zone, pass --src-crs"
    }
    # The right label: every row inside, no hint anywhere.
    right = validate(read_component_file(path, src_crs="EPSG:4548" if labelled == "EPSG:4547" else "EPSG:4527"), cat)
    assert right.errors.empty and len(right.accepted) == 2


def test_a_point_within_the_position_tolerance_of_the_boundary_is_inside(cat: Catalogue) -> None:
    # A point on the east edge written to 7 decimals lands up to 0.5e-7° outside; 2 cm out is outside.
    east = 116.50 + 0.5e-7
    raw = pd.DataFrame(
        {"_row": [2, 3, 4], "class_code": ["01037"] * 3, "lon": [east, 116.50 + 2e-7, 116.50], "lat": [39.95] * 3},
        dtype=object,
    )
    result = validate(raw, cat)
    assert pairs(result.errors) == [(3, "coordinates")]
    assert result.errors.loc[0, "reason"] == f"不在本区范围内({DISTRICT}) / outside the district coverage ({DISTRICT})"
    assert result.accepted["_row"].tolist() == [2, 4]


def test_same_positions_at_the_precision_an_export_writes() -> None:
    assert POSITION_TOLERANCE_DEG == 1e-7
    x, y = 113.6812345649999, 34.7512345650001
    point = Point(x, y)
    square = shapely.Polygon([(x, y), (x, y + 1e-4), (x + 1e-4, y + 1e-4), (x + 1e-4, y)])  # clockwise
    rounded = shapely.set_precision(shapely.Polygon(list(square.exterior.coords)[::-1]), 1e-7)  # RFC 7946 ring
    metre = 1 / 111_000  # ≈ 1 m of latitude in degrees
    stored = np.array([point, point, point, square, square, square, None, point], dtype=object)
    given = np.array(
        [
            Point(round(x, 7), round(y, 7)),  # GeoJSON: 7 decimals
            Point(x, y + metre),  # a real move of 1 m
            Point(x + 2e-7, y),  # 2 cm: a move
            rounded,  # re-oriented and rounded: the same polygon
            shapely.MultiPolygon([square]),  # a Shapefile makes it multi: the same place
            translate(square, yoff=metre),
            point,
            square.exterior,  # another kind of geometry
        ],
        dtype=object,
    )
    assert same_positions(stored, given).tolist() == [True, False, False, True, True, False, False, False]


def test_reader_strips_text_and_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        "id,class_code,lon,lat,BGID\n\n 11010501037000001 , 01037 ,116.45 , 39.95,\n,,,,\n", encoding="utf-8"
    )
    raw = read_component_file(path)
    assert raw["_row"].tolist() == [3]
    assert (raw.loc[0, "id"], raw.loc[0, "class_code"], raw.loc[0, "lon"]) == ("11010501037000001", "01037", 116.45)
    assert raw.loc[0, "attrs"] == {}  # BGID: a legacy grid code, not stored (review50 F12)


def test_a_legacy_bgid_column_is_read_said_and_not_stored(tmp_path: Path) -> None:
    """review50 F12: BGID (CJ/T 214 所在单元网格) is a grid code, stale as soon as grids change; it was kept as a
    custom attribute and exported beside SZDYWGBSM, which the location gives. It is a derived column now."""
    path = tmp_path / "legacy.csv"
    path.write_text(
        "ObjID,ObjName,ObjCode,BGID,ObjState,ORDate,PointX,PointY,Material\n"
        ",井盖子,01001,110101001000001,完好,20200105,116.4150,39.9050,铸铁\n",
        encoding="utf-8",
    )
    raw = read_component_file(path)
    assert raw.loc[0, "attrs"] == {"Material": "铸铁"}
    assert raw.attrs["gisgrid"]["derived"] == ["BGID"]
    assert raw.attrs["gisgrid"]["notes"] == [
        "legacy.csv: column BGID (所在单元网格, CJ/T 214) is not stored: each component's unit grid comes from its "
        "location (exported as SZDYWGBSM)"
    ]


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_offset_datum_line_follows_its_true_course(tmp_path: Path, datum: str) -> None:
    """A 4 km line straight in GCJ-02/BD-09 is curved in CGCS2000: converting only its two vertices put its middle
    ~1.4 m off (review 39 D4); densified first, its midpoint converted alone lies on the converted line."""
    line = LineString([(116.40, 39.90), (116.447, 39.90)])
    path = tmp_path / "line.geojson"
    gpd.GeoDataFrame({"class_code": ["01037"]}, geometry=[line], crs=4326).to_file(path)
    raw = read_component_file(path, src_datum=datum)
    got = shapely.from_wkb(raw.loc[0, "geom_wkb"])
    mid = shapely.points(*geodesy.to_storage([116.4235], [39.90], datum))[0]
    on_line = got.interpolate(got.project(mid))
    assert Geod(ellps="GRS80").line_length([mid.x, on_line.x], [mid.y, on_line.y]) < 0.01
    # The line's ends are its ends converted.
    ends = np.column_stack(geodesy.to_storage([116.40, 116.447], [39.90, 39.90], datum))
    np.testing.assert_allclose(shapely.get_coordinates(got)[[0, -1]], ends, atol=1e-9)


def test_a_sheet_says_a_lost_leading_zero_and_a_formula_without_a_saved_value(tmp_path: Path, cat: Catalogue) -> None:
    """review43 U3: Excel took the class code 01037 for the number 1037 — the refusal asks "01037?"; a longitude
    cell holding a formula a program wrote (no value saved: Excel computes it on opening) is not "missing longitude"
    but says to open and save the file in Excel. A code no zero makes a class, and a truly empty cell, keep their
    reasons."""
    import openpyxl

    path = tmp_path / "lamps.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    for row in (
        ["class_code", "lon", "lat"],
        [1037, 116.45, 39.95],  # 01037 as a number
        [99999, 116.45, 39.95],  # no class, with or without a zero
        ["01037", "=116.4+0.05", 39.95],  # a formula openpyxl writes without a value
        ["01037", None, 39.95],  # empty
        ["01037", 116.46, "=39.9+0.05"],
    ):
        sheet.append(row)
    book.save(path)
    errors = validate(read_component_file(path), cat).errors
    unsaved = (
        "公式没有保存的值:请在 Excel 中打开并保存该文件 / a formula without a saved value: open and save the file in "
        "Excel"
    )
    assert errors[["row", "field", "value", "reason"]].to_dict("records") == [
        {
            "row": 2,
            "field": "class_code",
            "value": "1037",
            "reason": "部件小类代码在 gbt47678 方案中不存在,是否为 01037?(Excel 去掉了开头的 0) / unknown class code "
            "for scheme gbt47678; did you mean 01037 (a leading zero lost by Excel)?",
        },
        {
            "row": 3,
            "field": "class_code",
            "value": "99999",
            "reason": "部件小类代码在 gbt47678 方案中不存在 / unknown class code for scheme gbt47678",
        },
        {
            "row": 4,
            "field": "lon",
            "value": "",
            "reason": unsaved,
        },
        {"row": 5, "field": "lon", "value": "", "reason": "缺少经度 / missing longitude"},
        {
            "row": 6,
            "field": "lat",
            "value": "",
            "reason": unsaved,
        },
    ]


def test_a_sheet_with_wkt_and_lon_lat_takes_each_row_from_the_one_it_fills(tmp_path: Path, cat: Catalogue) -> None:
    """review50 F2: a components .xlsx (and a CSV like it) carries lon/lat for the points and wkt for the other
    shapes: each row is read from the one it fills, neither being a custom attribute. A row filling both is
    refused, unless its WKT is the point its lon/lat give; a row filling neither lacks its coordinates."""
    path = tmp_path / "m.csv"
    path.write_text(
        "class_code,lon,lat,wkt,材质\n"
        "01037,116.45,39.95,,铸铁\n"
        '01037,,,"LINESTRING (116.41 39.91, 116.42 39.92)",\n'
        '01037,116.43,39.93,"POINT (116.43 39.93)",\n'
        '01037,116.44,39.94,"LINESTRING (116.41 39.91, 116.42 39.92)",\n'
        "01037,,,,\n"
        "01037,116.45,abc,,\n",
        encoding="utf-8",
    )
    raw = read_component_file(path)
    assert raw.attrs["gisgrid"]["coordinate_fields"] == ["wkt", "lon", "lat"]
    assert raw["attrs"].tolist()[0] == {"材质": "铸铁"}
    assert raw["lon"].tolist()[:3] == [116.45, 116.41, 116.43]  # the line: a point on it
    assert raw["geom_wkb"].notna().tolist() == [False, True, False, True, False, False]
    result = validate(raw, cat)
    assert result.accepted["_row"].tolist() == [2, 3, 4]
    assert result.errors[["row", "field", "reason"]].values.tolist() == [
        [
            5,
            "coordinates",
            "同一行既有 wkt 又有经纬度:图形填 wkt,点填经纬度,只填一项 / both a WKT geometry and lon/lat: give a shape "
            "in wkt or a point in lon/lat, not both",
        ],
        [6, "lon", "缺少经度 / missing longitude"],
        [6, "lat", "缺少纬度 / missing latitude"],
        [7, "lat", "纬度无法解析(不是数字) / unparseable latitude (not a number)"],
    ]


def test_every_fixed_component_refusal_is_worded_by_its_code_in_zh_and_english() -> None:
    """review53 F3: validate_components' fixed refusals are keyed by a stable code (components.REFUSALS), not by
    their English words (reworded, the zh-CN would silently drop out). Every code has both texts, every code the
    source names is in the table, and no refusal is added as bare English words."""
    import ast

    from gisgrid import components

    cjk = re.compile(r"[\u3400-\u9fff]")
    for code, (zh, en) in components.REFUSALS.items():
        assert re.fullmatch(r"[a-z][a-z_]*", code) and cjk.search(zh) and en and not en.startswith(zh), code
        assert components.refusal(code) == f"{zh} / {en}"
    tree = ast.parse((PROJECT_ROOT / "gisgrid" / "components.py").read_text(encoding="utf-8"))
    named: set[str] = set()
    bare: list[int] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name == "refusal":
            (arg,) = node.args
            if isinstance(arg, ast.Constant):
                named.add(arg.value)
            else:  # f"missing_{field}" over lon and lat
                assert isinstance(arg, ast.JoinedStr), ast.unparse(arg)
                template = ast.unparse(arg)[2:-1]
                named |= {template.replace("{field}", field) for field in ("lon", "lat")}
        elif name == "add" and len(node.args) >= 4:
            reason = node.args[3]
            if isinstance(reason, ast.JoinedStr | ast.Constant) and not cjk.search(ast.unparse(reason)):
                bare.append(node.lineno)
    assert named == set(components.REFUSALS)  # every code named has its texts, and none is left over
    assert not bare, f"components.py adds refusals as bare English (give them a code in REFUSALS): lines {bare}"
