"""The analyst's round trip: export components, open the file, import it again (review11 D6, D9).

An unedited export re-imports as "unchanged" with no history, in every format; its fields are the GB/T 47678.5
表2 abbreviations with the department, street and community names; an edited field is the only change."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from pyproj import Geod
from sqlalchemy import Engine, text

from gisgrid.components_store import export_components
from gisgrid.errors import InvalidInput
from gisgrid.vectorio import write_layer
from tests.fixtures import DISTRICT, dbf_fields, legacy_gbk_shapefile
from tests.test_components_store import BIN, LAMP, count, inside_points, run, write_csv

WATER, LIGHTS = "990000000000000007", "990000000000000012"
STANDARD_FIELDS = [
    "GLBJBSM", "GLBJMC", "ZGBMDM", "ZGBMMC", "QSDWDM", "QSDWMC", "YHDWDM", "YHDWMC", "SZDYWGBSM", "GLBJZT",
    "CSRQ", "BGRQ", "SJLY", "BZ", "SZJDDM", "SZJDMC", "SZSQDM", "SZSQMC", "class_code", "scheme",
]  # fmt: skip


@pytest.fixture
def stored(loaded: Engine, tmp_path: Path) -> Engine:
    """Four components: every field filled, only the required ones, a custom attribute, a long Chinese note."""
    xs, ys = inside_points(4, seed=7)
    rows = [
        {"class_code": LAMP, "lon": xs[0], "lat": ys[0], "name": "路灯甲", "main_dept": LIGHTS,
         "owner_dept": WATER, "maint_dept": LIGHTS, "status": "破损", "initial_date": "20200105",
         "change_date": "2024-03-02", "data_source": "实测", "note": "灯杆倾斜,已报修", "SetLoc": "人行道"},
        {"class_code": LAMP, "lon": xs[1], "lat": ys[1]},
        {"class_code": BIN, "lon": xs[2], "lat": ys[2], "name": "垃圾箱", "SetLoc": ""},
        {"class_code": BIN, "lon": xs[3], "lat": ys[3], "note": "长备注" * 20, "data_source": "其他"},
    ]  # fmt: skip
    summary = run(loaded, write_csv(tmp_path / "c.csv", rows))
    assert summary.inserted == 4, summary.to_text()
    return loaded


def history_rows(engine: Engine) -> int:
    return count(engine, "SELECT count(*) FROM component_history")


def export(engine: Engine, out: Path, **kw: str) -> Path:
    with engine.connect() as conn:
        export_components(conn, out, fmt=None, encoding=kw.get("encoding", "utf-8"), crs=kw.get("crs"))
    return out


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("c.shp", {}),
        ("c.shp", {"encoding": "gbk"}),
        ("c.shp", {"crs": "EPSG:4547"}),
        ("c.gpkg", {}),
        ("c.geojson", {}),
        ("c.csv", {}),
    ],
    ids=["shp", "shp-gbk", "shp-gk-zone", "gpkg", "geojson", "csv"],
)
def test_an_unedited_export_reimports_unchanged(
    stored: Engine, tmp_path: Path, name: str, options: dict[str, str]
) -> None:
    with stored.connect() as conn:
        before = conn.execute(text("SELECT * FROM components ORDER BY id")).all()
    history = history_rows(stored)
    path = export(stored, tmp_path / name, **options)
    if name.endswith(".shp"):  # the .cpg and the DBF language driver id name the same encoding
        gbk = options.get("encoding") == "gbk"
        assert path.with_suffix(".cpg").read_bytes() == (b"GBK" if gbk else b"UTF-8")
        assert path.with_suffix(".dbf").read_bytes()[29] == (0x4D if gbk else 0x00)
    again = run(stored, path, actor="roundtrip", src_crs=options.get("crs"))
    assert (again.read, again.inserted, again.updated, again.unchanged, again.refused) == (4, 0, 0, 4, 0), (
        again.to_text()
    )
    assert history_rows(stored) == history
    with stored.connect() as conn:
        after = conn.execute(text("SELECT * FROM components ORDER BY id")).all()
    assert after == before  # attrs, geometry, version, updated_at: nothing touched


def test_a_gb18030_export_keeps_a_name_gbk_cannot_hold_and_reimports_unchanged(loaded: Engine, tmp_path: Path) -> None:
    """review55 F10: 䶮 (U+4DAE) and 𠮷 (U+20BB7) are outside GBK: the GBK export refuses the row naming it, the
    GB18030 one (.cpg GB18030) keeps the names and imports back unchanged."""
    xs, ys = inside_points(2, seed=11)
    rows = [
        {"class_code": LAMP, "lon": xs[0], "lat": ys[0], "name": "䶮村路灯"},
        {"class_code": LAMP, "lon": xs[1], "lat": ys[1], "name": "𠮷祥路灯"},
    ]
    assert run(loaded, write_csv(tmp_path / "rare.csv", rows)).inserted == 2
    with pytest.raises(InvalidInput) as err:
        export(loaded, tmp_path / "gbk.shp", encoding="gbk")
    assert err.value.detail["value"] == "䶮村路灯" and err.value.detail["encoding"] == "gbk"
    assert not (tmp_path / "gbk.shp").exists()
    history = history_rows(loaded)
    path = export(loaded, tmp_path / "c.shp", encoding="gb18030")
    assert path.with_suffix(".cpg").read_bytes() == b"GB18030"
    assert path.with_suffix(".dbf").read_bytes()[29] == 0x00
    assert gpd.read_file(path, engine="pyogrio")["GLBJMC"].tolist() == ["䶮村路灯", "𠮷祥路灯"]
    again = run(loaded, path, actor="roundtrip")
    assert (again.read, again.inserted, again.updated, again.unchanged, again.refused) == (2, 0, 0, 2, 0)
    assert history_rows(loaded) == history
    with loaded.connect() as conn:
        names = conn.execute(text("SELECT name FROM components ORDER BY id")).scalars().all()
    assert names == ["䶮村路灯", "𠮷祥路灯"]


GEOD = Geod(ellps="GRS80")
#: The edge points more than 0.5 m apart (two lamps nearer are one: the import refuses the second).
EDGE_COMPONENTS = 134
EDGE_POINTS_SQL = """
SELECT ST_X(p), ST_Y(p) FROM (
    SELECT ST_LineInterpolatePoint(ST_ExteriorRing(ST_GeometryN(geom, 1)), f) AS p
    FROM unit_grids, generate_series(0.0137, 0.99, 0.1) AS f WHERE code IN (SELECT code FROM unit_grids ORDER BY code
    LIMIT 12)
    UNION ALL
    SELECT ST_LineInterpolatePoint(ST_ExteriorRing(ST_GeometryN(geom, 1)), f)
    FROM admin_units, generate_series(0.0131, 0.99, 0.031) AS f WHERE level = 'district') q
"""


@pytest.fixture
def on_edges(loaded: Engine, tmp_path: Path) -> Engine:
    """Components placed on unit-grid edges and on the district boundary, where rounding a position to the 7
    decimals a GeoJSON export writes, or reprojecting it there and back, crosses the line (120 grid-edge points,
    32 on the district boundary; the 18 a neighbouring cell's edge puts on a point already taken are left out: two
    lamps of one place are one, and the import refuses the second — review47 F3)."""
    with loaded.connect() as conn:
        points = conn.execute(text(EDGE_POINTS_SQL)).all()
    kept: list[tuple[float, float]] = []
    for x, y in points:
        if not kept or min(GEOD.inv([x] * len(kept), [y] * len(kept), *zip(*kept, strict=True))[2]) > 0.5:
            kept.append((x, y))
    rows = [{"class_code": LAMP, "lon": x, "lat": y, "initial_date": "2021-04-09"} for x, y in kept]
    summary = run(loaded, write_csv(tmp_path / "edges.csv", rows))
    assert (summary.read, summary.inserted, summary.refused) == (EDGE_COMPONENTS, EDGE_COMPONENTS, 0), summary.to_text()
    return loaded


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("e.shp", {}),
        ("e.shp", {"encoding": "gbk"}),
        ("e.shp", {"crs": "EPSG:4547"}),
        ("e.gpkg", {}),
        ("e.geojson", {}),
        ("e.csv", {}),
    ],
    ids=["shp", "shp-gbk", "shp-gk-zone", "gpkg", "geojson", "csv"],
)
def test_components_on_grid_edges_reimport_unchanged(
    on_edges: Engine, tmp_path: Path, name: str, options: dict[str, str]
) -> None:
    """A position written at the export's precision is the stored position: it neither moves the component nor
    puts it in the next unit grid (located from the file's position, GeoJSON gave 73 false updates here and the
    EPSG:4547 Shapefile 13) nor outside the district."""
    with on_edges.connect() as conn:
        before = conn.execute(text("SELECT * FROM components ORDER BY id")).all()
    history = history_rows(on_edges)
    again = run(on_edges, export(on_edges, tmp_path / name, **options), src_crs=options.get("crs"))
    n = EDGE_COMPONENTS
    assert (again.read, again.inserted, again.updated, again.unchanged, again.refused) == (n, 0, 0, n, 0), (
        again.to_text()
    )
    assert history_rows(on_edges) == history
    with on_edges.connect() as conn:
        assert conn.execute(text("SELECT * FROM components ORDER BY id")).all() == before


@pytest.mark.parametrize("name", ["m.geojson", "m.gpkg", "m.shp", "m.csv"])
def test_a_move_of_a_metre_in_an_export_is_an_update(stored: Engine, tmp_path: Path, name: str) -> None:
    target = f"{DISTRICT}{LAMP}000002"
    table = gpd.read_file(export(stored, tmp_path / f"c{Path(name).suffix}"), engine="pyogrio")
    if name.endswith(".csv"):
        table = gpd.GeoDataFrame(
            table.drop(columns="wkt"), geometry=gpd.GeoSeries.from_wkt(table["wkt"]), crs=4490
        )  # the CSV's geometry is its wkt column
    with stored.connect() as conn:
        x, y = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM components WHERE id = :i"), {"i": target}).one()
    hit = table["GLBJBSM"] == target
    table.loc[hit, "geometry"] = gpd.points_from_xy([x], [y + 1 / 111_000])  # ≈ 1 m north
    path = tmp_path / name
    if name.endswith(".csv"):
        frame = table.drop(columns="geometry").assign(wkt=table.geometry.to_wkt(rounding_precision=-1))
        frame.to_csv(path, index=False, encoding="utf-8-sig")
    else:
        for column in ("CSRQ", "BGRQ"):  # read back as date-times; written again as dates
            table[column] = pd.Series([None if pd.isna(v) else v.date() for v in table[column]], dtype=object)
        write_layer(table, path)
    history = history_rows(stored)
    summary = run(stored, path)
    assert (summary.inserted, summary.updated, summary.unchanged, summary.refused) == (0, 1, 3, 0), summary.to_text()
    with stored.connect() as conn:
        moved = conn.execute(
            text(
                "SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4490)::geography) "
                "FROM components WHERE id = :i"
            ),
            {"i": target, "x": x, "y": y},
        ).scalar_one()
        changes = conn.execute(
            text("SELECT changes FROM component_history WHERE component_id = :i AND action = 'update'"), {"i": target}
        ).scalar_one()
    assert round(moved, 1) == 1.0
    assert list(changes) == ["geom"]
    assert history_rows(stored) == history + 1


def test_the_export_uses_the_standard_field_names_with_department_and_place_names(
    stored: Engine, tmp_path: Path
) -> None:
    back = gpd.read_file(export(stored, tmp_path / "c.shp", encoding="gbk"), engine="pyogrio")
    assert list(back.columns) == [*STANDARD_FIELDS, "SetLoc", "geometry"]  # the city's own attribute after them
    lamp = back.loc[back["GLBJMC"] == "路灯甲"].iloc[0]
    assert lamp["GLBJBSM"] == f"{DISTRICT}{LAMP}000001"
    assert (lamp["ZGBMDM"], lamp["QSDWDM"], lamp["YHDWDM"]) == (LIGHTS, WATER, LIGHTS)
    assert (lamp["ZGBMMC"], lamp["QSDWMC"], lamp["YHDWMC"]) == ("城市照明管理处", "供水集团有限公司", "城市照明管理处")
    assert (lamp["GLBJZT"], lamp["SJLY"]) == ("破损", "实测")
    assert (lamp["CSRQ"], lamp["BGRQ"]) == (pd.Timestamp("2020-01-05"), pd.Timestamp("2024-03-02"))  # date fields
    assert lamp["SZDYWGBSM"].startswith(lamp["SZSQDM"]) and lamp["SZSQDM"].startswith(lamp["SZJDDM"])
    assert lamp["SZJDMC"] and lamp["SZSQMC"]
    with stored.connect() as conn:
        street, community = conn.execute(
            text("SELECT name FROM admin_units WHERE code IN (:s, :c) ORDER BY level = 'community'"),
            {"s": lamp["SZJDDM"], "c": lamp["SZSQDM"]},
        ).scalars()
    assert (lamp["SZJDMC"], lamp["SZSQMC"]) == (street, community)


def test_an_edited_export_changes_only_what_was_edited(stored: Engine, tmp_path: Path) -> None:
    path = export(stored, tmp_path / "c.gpkg")
    table = gpd.read_file(path, engine="pyogrio")
    target = f"{DISTRICT}{LAMP}000002"
    table.loc[table["GLBJBSM"] == target, ["GLBJZT", "BZ"]] = ["丢失", "夜间被盗"]
    table.loc[table["GLBJBSM"] == target, "ZGBMMC"] = "随便写的名称"  # derived: ignored
    table.to_file(tmp_path / "edited.gpkg", engine="pyogrio")
    history = history_rows(stored)
    summary = run(stored, tmp_path / "edited.gpkg", actor="王伟")
    assert (summary.inserted, summary.updated, summary.unchanged) == (0, 1, 3)
    warning = (
        f"部门名称与代码不符 department name '随便写的名称' in ZGBMMC is not '城市照明管理处', the name registered for "
        f"code {LIGHTS}; the code is used"
    )
    assert summary.warnings[["row", "field", "reason"]].to_dict("records") == [
        {"row": 2, "field": "ZGBMMC", "reason": warning}
    ]
    assert summary.to_text().splitlines()[1:3] == [
        "note: 以下列存为自定义属性(attrs):SetLoc / column(s) kept as custom attributes (attrs): SetLoc",
        f"warning: row 2 field ZGBMMC: {warning}",
    ]
    with stored.connect() as conn:
        changes = conn.execute(
            text("SELECT changes FROM component_history WHERE component_id = :i AND action = 'update'"), {"i": target}
        ).scalar_one()
        attrs = conn.execute(text("SELECT attrs FROM components WHERE id = :i"), {"i": target}).scalar_one()
    assert changes == {"status": ["完好", "丢失"], "note": [None, "夜间被盗"]}
    assert attrs == {}  # its SetLoc cell was empty: no attribute (review50 F9), and the export's empty one adds none
    assert history_rows(stored) == history + 1


def test_a_custom_column_in_the_file_updates_attrs_and_absent_ones_are_kept(stored: Engine, tmp_path: Path) -> None:
    target = f"{DISTRICT}{LAMP}000001"
    table = gpd.read_file(export(stored, tmp_path / "c.gpkg"), engine="pyogrio")
    table["SetLoc"] = ""  # as stored for the other three (their CSV cells were empty)
    table.loc[table["GLBJBSM"] == target, "SetLoc"] = "路口"
    table.to_file(tmp_path / "edited.gpkg", engine="pyogrio")
    summary = run(stored, tmp_path / "edited.gpkg")
    assert (summary.updated, summary.unchanged) == (1, 3)
    with stored.connect() as conn:
        attrs = dict(conn.execute(text("SELECT id, attrs FROM components ORDER BY id")).all())
        changes = conn.execute(
            text("SELECT changes FROM component_history WHERE component_id = :i AND action = 'update'"), {"i": target}
        ).scalar_one()
    assert attrs[target] == {"SetLoc": "路口"} and changes == {"attrs": [{"SetLoc": "人行道"}, {"SetLoc": "路口"}]}


def test_the_export_writes_dates_as_date_fields(stored: Engine, tmp_path: Path) -> None:
    """CSRQ and BGRQ: DBF type 'D' (YYYYMMDD) in a Shapefile, DATE in a GeoPackage, YYYY-MM-DD in GeoJSON and CSV
    (typed Date in the .csvt); an empty date stays empty."""
    shp = export(stored, tmp_path / "c.shp", encoding="gbk")
    dbf = shp.with_suffix(".dbf").read_bytes()
    header = {dbf[i : i + 11].rstrip(b"\0").decode(): (chr(dbf[i + 11]), dbf[i + 16]) for i in range(32, 32 * 21, 32)}
    assert header["CSRQ"] == header["BGRQ"] == ("D", 8)
    assert b"20200105" in dbf and b"20240302" in dbf
    info = pyogrio.read_info(shp)
    assert dict(zip(info["fields"], info["dtypes"], strict=True))["CSRQ"] == "datetime64[D]"

    gpkg = export(stored, tmp_path / "c.gpkg")
    with sqlite3.connect(gpkg) as db:
        types = {row[1]: row[2] for row in db.execute("PRAGMA table_info(components)")}
        values = db.execute("SELECT CSRQ, BGRQ FROM components ORDER BY GLBJBSM").fetchall()
    assert (types["CSRQ"], types["BGRQ"]) == ("DATE", "DATE")
    assert values == [("2020-01-05", "2024-03-02"), (None, None), (None, None), (None, None)]

    features = json.loads(export(stored, tmp_path / "c.geojson").read_text(encoding="utf-8"))["features"]
    assert [(f["properties"]["CSRQ"], f["properties"]["BGRQ"]) for f in features][:2] == [
        ("2020-01-05", "2024-03-02"),
        (None, None),
    ]

    csv = export(stored, tmp_path / "table.csv")
    table = pd.read_csv(csv, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    assert table[["CSRQ", "BGRQ"]].to_numpy().tolist()[:2] == [["2020-01-05", "2024-03-02"], ["", ""]]
    columns = csv.with_suffix(".csvt").read_text(encoding="ascii").strip().split(",")
    assert dict(zip(table.columns, columns, strict=True))["CSRQ"] == '"Date"'


def legacy_components(tmp_path: Path) -> Path:
    """Two components in a GBK Shapefile with no .cpg and language driver id 0, as legacy Chinese data is."""
    xs, ys = inside_points(2, seed=11)
    gdf = gpd.GeoDataFrame(
        {"class_code": [LAMP, BIN], "name": ["张自忠路新", "东四十条桥西"], "GLBJZT": ["完好", "破损"]},
        geometry=gpd.points_from_xy(xs, ys),
        crs="EPSG:4490",
    )
    return legacy_gbk_shapefile(gdf, tmp_path / "legacy.shp")


def test_legacy_gbk_shapefile_without_cpg_imports_exact_names(loaded: Engine, tmp_path: Path) -> None:
    summary = run(loaded, legacy_components(tmp_path))
    assert (summary.inserted, summary.refused) == (2, 0), summary.to_text()
    assert summary.to_text().splitlines()[:2] == [
        "read 2, inserted 2, updated 0, unchanged 0, refused 0",
        "note: legacy.shp: no .cpg and no language driver: read as GB18030 (not UTF-8), e.g. '张自忠路新', "
        "'东四十条桥西', '完好': if these are wrong, pass --src-encoding",
    ]
    with loaded.connect() as conn:
        stored = conn.execute(text("SELECT name, status FROM components ORDER BY class_code")).all()
    assert [tuple(r) for r in stored] == [("张自忠路新", "完好"), ("东四十条桥西", "破损")]  # 01037, 03005


def test_src_encoding_overrides_the_guess_for_a_shapefile(loaded: Engine, tmp_path: Path) -> None:
    path = legacy_components(tmp_path)
    # Read as Latin-1 (what GDAL alone does) the status is mojibake and every row is refused on it.
    summary = run(loaded, path, src_encoding="latin-1", dry_run=True)
    assert (summary.read, summary.refused) == (2, 2)
    assert summary.errors["field"].tolist() == ["GLBJZT", "GLBJZT"]  # the file's column (review38 U1)
    assert summary.errors["value"].tolist() == ["ÍêºÃ", "ÆÆËð"]
    summary = run(loaded, path, src_encoding="GBK")
    assert (summary.inserted, summary.notes) == (2, [])
    with loaded.connect() as conn:
        assert sorted(conn.execute(text("SELECT name FROM components")).scalars()) == sorted(
            ["张自忠路新", "东四十条桥西"]
        )


def test_src_encoding_applies_to_a_csv(loaded: Engine, tmp_path: Path) -> None:
    xs, ys = inside_points(1, seed=12)
    path = tmp_path / "big5.csv"
    pd.DataFrame({"class_code": [LAMP], "lon": xs, "lat": ys, "name": ["東四十條"]}).to_csv(
        path, index=False, encoding="big5"
    )
    summary = run(loaded, path, src_encoding="big5")
    assert (summary.inserted, summary.notes) == (1, [])
    with loaded.connect() as conn:
        assert conn.execute(text("SELECT name FROM components")).scalar_one() == "東四十條"
    with pytest.raises(InvalidInput, match=r"big5.csv: unknown text encoding 'big-5' \(e.g. utf-8"):
        run(loaded, path, src_encoding="big-5")


def test_the_export_declares_date_fields_when_no_component_has_a_date(loaded: Engine, tmp_path: Path) -> None:
    """Review 17 item 9: the schema does not depend on the rows (CSRQ/BGRQ used to become C(80) text)."""
    xs, ys = inside_points(2, seed=13)
    rows = [{"class_code": LAMP, "lon": xs[0], "lat": ys[0]}, {"class_code": BIN, "lon": xs[1], "lat": ys[1]}]
    assert run(loaded, write_csv(tmp_path / "nodates.csv", rows)).inserted == 2
    shp = export(loaded, tmp_path / "c.shp")
    dbf = shp.with_suffix(".dbf").read_bytes()
    header = {dbf[i : i + 11].rstrip(b"\0").decode(): (chr(dbf[i + 11]), dbf[i + 16]) for i in range(32, 32 * 21, 32)}
    assert header["CSRQ"] == header["BGRQ"] == ("D", 8)
    info = pyogrio.read_info(shp)
    types = dict(zip(info["fields"], info["dtypes"], strict=True))
    assert (types["CSRQ"], types["BGRQ"]) == ("datetime64[D]", "datetime64[D]")
    back = gpd.read_file(shp, engine="pyogrio")
    assert back["CSRQ"].isna().all() and back["BGRQ"].isna().all()

    with sqlite3.connect(export(loaded, tmp_path / "c.gpkg")) as db:
        gpkg_types = {row[1]: row[2] for row in db.execute("PRAGMA table_info(components)")}
    assert (gpkg_types["CSRQ"], gpkg_types["BGRQ"]) == ("DATE", "DATE")
    csv = export(loaded, tmp_path / "table.csv")
    header_row = pd.read_csv(csv, dtype=str, encoding="utf-8-sig", nrows=0).columns
    csvt = dict(zip(header_row, csv.with_suffix(".csvt").read_text(encoding="ascii").strip().split(","), strict=True))
    assert (csvt["CSRQ"], csvt["BGRQ"]) == ('"Date"', '"Date"')


#: GB/T 47678.5 表2 lengths as DBF field widths (BZ: 1000 in the standard, 254 the most a DBF holds); class_code and
#: scheme are gisgrid's own (GDAL's width). Review23 D5.
STANDARD_WIDTHS = {
    "GLBJBSM": ("C", 17, 0), "GLBJMC": ("C", 30, 0), "ZGBMDM": ("C", 18, 0), "ZGBMMC": ("C", 100, 0),
    "QSDWDM": ("C", 18, 0), "QSDWMC": ("C", 100, 0), "YHDWDM": ("C", 18, 0), "YHDWMC": ("C", 100, 0),
    "SZDYWGBSM": ("C", 15, 0), "GLBJZT": ("C", 10, 0), "CSRQ": ("D", 8, 0), "BGRQ": ("D", 8, 0),
    "SJLY": ("C", 30, 0), "BZ": ("C", 254, 0), "SZJDDM": ("C", 9, 0), "SZJDMC": ("C", 50, 0),
    "SZSQDM": ("C", 12, 0), "SZSQMC": ("C", 50, 0), "class_code": ("C", 80, 0), "scheme": ("C", 80, 0),
    "SetLoc": ("C", 80, 0),  # the city's own attribute (GDAL's width)
}  # fmt: skip


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_the_shapefile_declares_the_standard_field_widths(stored: Engine, tmp_path: Path, encoding: str) -> None:
    notes: list[str] = []
    with stored.connect() as conn:
        export_components(conn, tmp_path / "c.shp", fmt=None, encoding=encoding, crs=None, notes=notes)
        export_components(conn, tmp_path / "c.gpkg", fmt=None, encoding="utf-8", crs=None)
    assert notes == []
    assert dbf_fields(tmp_path / "c.shp") == STANDARD_WIDTHS
    shp = gpd.read_file(tmp_path / "c.shp", engine="pyogrio").drop(columns=["CSRQ", "BGRQ", "geometry"])
    gpkg = gpd.read_file(tmp_path / "c.gpkg", engine="pyogrio").drop(columns=["CSRQ", "BGRQ", "geometry"])
    # every text value whole; the components without SetLoc (an empty cell adds no attribute) have none in either
    assert gpkg["SetLoc"].iloc[0] == "人行道" and gpkg.pop("SetLoc").isna().tolist() == [False, True, True, True]
    assert shp.pop("SetLoc").isna().tolist() == [
        False,
        True,
        True,
        True,
    ]
    pd.testing.assert_frame_equal(shp, gpkg)
    assert shp["BZ"].str.len().max() == 60


@pytest.mark.parametrize(("encoding", "nbytes"), [("utf-8", 54), ("gbk", 36)])
def test_a_name_longer_than_the_standard_is_warned_about_and_kept_whole(
    loaded: Engine, tmp_path: Path, encoding: str, nbytes: int
) -> None:
    """18 characters: 54 bytes in UTF-8, 36 in GBK, both over GLBJMC's 30; the field is declared that wide."""
    long_name = "朝阳区东四十条桥东南角人行道北侧路灯"
    xs, ys = inside_points(2, seed=5)
    rows = [
        {"class_code": LAMP, "lon": xs[0], "lat": ys[0], "name": "路灯甲"},
        {"class_code": LAMP, "lon": xs[1], "lat": ys[1], "name": long_name},
    ]
    assert run(loaded, write_csv(tmp_path / "long.csv", rows)).inserted == 2
    notes: list[str] = []
    with loaded.connect() as conn:
        export_components(conn, tmp_path / "c.shp", fmt=None, encoding=encoding, crs=None, notes=notes)
    cpg = "UTF-8" if encoding == "utf-8" else "GBK"
    assert notes == [
        f"超出标准长度 c.shp: field GLBJMC: 1 value(s) longer than the standard's 30 bytes in {cpg}: "
        f"GLBJBSM {DISTRICT}{LAMP}000002 ({nbytes} bytes); the field is declared C({nbytes}), so the file does not "
        "meet the standard's field definition (nothing was cut)"
    ]
    assert dbf_fields(tmp_path / "c.shp")["GLBJMC"] == ("C", nbytes, 0)
    back = gpd.read_file(tmp_path / "c.shp", engine="pyogrio")
    assert back["GLBJMC"].tolist() == ["路灯甲", long_name]


def test_the_city_s_own_attributes_are_exported_and_come_back(loaded: Engine, tmp_path: Path) -> None:
    """review32 G1: custom columns of an import (kept in ``attrs``) were left out of every export: a city could not
    get its survey fields back. They follow the standard's, in name order, as text (an object as its JSON)."""
    xs, ys = inside_points(2, seed=21)
    rows = [
        {"class_code": LAMP, "lon": xs[0], "lat": ys[0], "Material": "铸铁", "养护合同号": "0012-2024"},
        {"class_code": BIN, "lon": xs[1], "lat": ys[1], "Material": "不锈钢"},
    ]
    assert run(loaded, write_csv(tmp_path / "in.csv", rows)).inserted == 2
    with loaded.connect() as conn:
        before = conn.execute(text("SELECT id, attrs FROM components ORDER BY id")).all()
    for name in ("out.gpkg", "out.csv", "out.geojson"):
        back = read_back(export(loaded, tmp_path / name))
        assert list(back.columns)[-3:] == ["Material", "养护合同号", "geometry"], name
        assert back["Material"].tolist() == ["铸铁", "不锈钢"], name
        assert back["养护合同号"].fillna("").tolist() == ["0012-2024", ""], name  # text: its leading zeros kept
        history = history_rows(loaded)
        summary = run(loaded, tmp_path / name)
        assert summary.unchanged == 2, (name, summary.to_text())
        assert history_rows(loaded) == history
    with loaded.connect() as conn:
        assert conn.execute(text("SELECT id, attrs FROM components ORDER BY id")).all() == before
    with loaded.begin() as conn:  # an object from a GeoJSON property is written as its JSON; a clash is said
        conn.execute(
            text("""UPDATE components SET attrs = attrs || '{"survey": {"by": "张三", "n": 2}, "glbjmc": "x"}'""")
        )
        notes: list[str] = []
        export_components(conn, tmp_path / "j.gpkg", fmt=None, encoding="utf-8", crs=None, notes=notes)
    back = gpd.read_file(tmp_path / "j.gpkg", engine="pyogrio")
    assert json.loads(back["survey"].iloc[0]) == {"by": "张三", "n": 2} and "glbjmc" not in back.columns
    assert notes == ["custom attributes named as a standard column are not exported: glbjmc"]
    with loaded.connect() as conn, pytest.warns(UserWarning, match="not exported: glbjmc"):  # said without notes too
        export_components(conn, tmp_path / "w.gpkg", fmt=None, encoding="utf-8", crs=None)


def read_back(path: Path) -> gpd.GeoDataFrame:
    if path.suffix == ".csv":
        frame = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False).replace("", None)
        return gpd.GeoDataFrame(frame.drop(columns="wkt"), geometry=gpd.GeoSeries.from_wkt(frame["wkt"]))
    return gpd.read_file(path, engine="pyogrio")


def test_an_excel_export_keeps_codes_as_text_and_reimports_unchanged(stored: Engine, tmp_path: Path) -> None:
    """review32 G5: a CSV opened in Excel turns 17-digit GLBJBSM, 18-digit department codes and class 01001 into
    numbers (digits and leading zeros lost); the .xlsx export writes them as text cells, CSRQ/BGRQ as dates, the
    position as lon/lat, the CRS on a sheet of its own — and imports back unchanged."""
    from openpyxl import load_workbook

    out = export(stored, tmp_path / "部件.xlsx")
    book = load_workbook(out)
    assert book.sheetnames == ["components", "CRS"]
    table = book["components"]
    header = [c.value for c in table[1]]
    assert header == [*STANDARD_FIELDS, "SetLoc", "lon", "lat"]
    lamp = next(r for r in table.iter_rows(min_row=2) if r[header.index("GLBJMC")].value == "路灯甲")
    cell = {h: c for h, c in zip(header, lamp, strict=True)}
    assert (cell["GLBJBSM"].data_type, cell["GLBJBSM"].value) == ("s", f"{DISTRICT}{LAMP}000001")
    assert (cell["ZGBMDM"].data_type, cell["ZGBMDM"].value) == ("s", LIGHTS)
    assert (cell["class_code"].data_type, cell["class_code"].value) == ("s", LAMP)
    assert cell["CSRQ"].is_date and cell["CSRQ"].value.date().isoformat() == "2020-01-05"
    assert isinstance(cell["lon"].value, float) and isinstance(cell["lat"].value, float)
    assert [book["CRS"]["A1"].value, book["CRS"]["B1"].value] == ["crs", "EPSG:4490"]
    history = history_rows(stored)
    summary = run(stored, out)
    assert summary.unchanged == 4 and summary.inserted == summary.updated == 0, summary.to_text()
    assert history_rows(stored) == history


def test_an_excel_export_in_a_projected_crs_reimports_by_the_crs_it_states(stored: Engine, tmp_path: Path) -> None:
    """An .xlsx in Gauss–Krüger metres states its CRS on its CRS sheet: the import reads it there (it took the x/y
    as lon/lat and refused every row unless --src-crs was given), and says so; a --src-crs given still wins."""
    out = export(stored, tmp_path / "部件.xlsx", crs="EPSG:4547")
    history = history_rows(stored)
    summary = run(stored, out)
    assert (summary.read, summary.unchanged, summary.refused) == (4, 4, 0), summary.to_text()
    assert "部件.xlsx: coordinates in EPSG:4547, as the workbook's CRS sheet says" in summary.to_text()
    assert history_rows(stored) == history
    wrong = run(stored, out, src_crs="EPSG:4546")  # the zone west of it: ~600 km off, outside the district
    assert (wrong.read, wrong.refused) == (4, 4), wrong.to_text()
    assert "CRS sheet says" not in wrong.to_text()


def test_an_export_with_custom_attributes_on_some_components_imports_back_unchanged(
    loaded: Engine, tmp_path: Path
) -> None:
    """review34 D2: every custom column is on every exported row; the components without the attribute got "" on
    re-import, and a number came back as text — every row updated, with history. Empty cells add nothing, and a
    value the export wrote as its text is the stored value."""
    xs, ys = inside_points(3, seed=41)
    rows = [{"class_code": LAMP, "lon": x, "lat": y} for x, y in zip(xs, ys, strict=True)]
    assert run(loaded, write_csv(tmp_path / "in.csv", rows)).inserted == 3
    with loaded.begin() as conn:
        conn.execute(
            text("UPDATE components SET attrs = CAST(:a AS jsonb) WHERE id = (SELECT min(id) FROM components)"),
            {
                "a": json.dumps(
                    {"Remark": "r1", "巡查频次": 3, "检修": True, "survey": {"by": "张三"}}, ensure_ascii=False
                )
            },
        )
        before = conn.execute(text("SELECT id, attrs, version FROM components ORDER BY id")).all()
    for name in ("out.gpkg", "out.xlsx", "out.geojson", "out.csv"):
        export(loaded, tmp_path / name)
        history = history_rows(loaded)
        summary = run(loaded, tmp_path / name)
        assert (summary.updated, summary.unchanged) == (0, 3), (name, summary.to_text())
        assert history_rows(loaded) == history, name
        with loaded.connect() as conn:
            assert conn.execute(text("SELECT id, attrs, version FROM components ORDER BY id")).all() == before, name


#: Custom attribute names of 2 to 6 Chinese characters: 4–12 bytes in GBK, 6–18 in UTF-8 (a DBF field name holds 10).
CHINESE_ATTRS = ["材质", "长度米", "设置位置", "备注说明文字", "养护合同编号"]


@pytest.mark.parametrize(
    ("encoding", "renamed"),
    [("gbk", ["养护合同编号", "备注说明文字"]), ("utf-8", ["养护合同编号", "备注说明文字", "设置位置"])],
)
def test_a_shapefile_with_chinese_custom_attributes_round_trips_unchanged(
    loaded: Engine, tmp_path: Path, encoding: str, renamed: list[str]
) -> None:
    """review50 F1: a custom name too long for a DBF field became FIELD<n>, which the import took as a new
    attribute: every round trip added keys and updated every component. A name that fits in the file's encoding
    (GBK: 2 bytes per Chinese character) keeps it; the others are written to the field map beside the Shapefile,
    which the import reads back: export → import → export → import is unchanged for every row."""
    xs, ys = inside_points(3, seed=51)
    rows = [
        {"class_code": LAMP, "lon": xs[0], "lat": ys[0], "材质": "铸铁", "长度米": "12", "设置位置": "红桥路口西",
         "备注说明文字": "夜间检修", "养护合同编号": "0012-2024"},
        {"class_code": BIN, "lon": xs[1], "lat": ys[1], "材质": "不锈钢", "设置位置": "垃圾箱乙"},
        {"class_code": BIN, "lon": xs[2], "lat": ys[2], "长度米": "3"},
    ]  # fmt: skip
    assert run(loaded, write_csv(tmp_path / "in.csv", rows)).inserted == 3
    with loaded.connect() as conn:
        before = conn.execute(text("SELECT id, attrs, version FROM components ORDER BY id")).all()
    history = history_rows(loaded)
    for name in ("a.shp", "b.shp"):
        path = tmp_path / name
        notes: list[str] = []
        with loaded.connect() as conn:
            files = export_components(conn, path, fmt=None, encoding=encoding, crs=None, notes=notes)
        sidecar = path.with_suffix(".fields.csv")
        assert sidecar in files
        fields = list(pyogrio.read_info(path)["fields"])[len(STANDARD_FIELDS) :]
        kept = [n for n in sorted(CHINESE_ATTRS) if n not in renamed]
        assert [f for f in fields if not f.startswith("FIELD")] == kept
        mapping = pd.read_csv(sidecar, dtype=str, encoding="utf-8-sig")
        assert sorted(mapping["name"]) == sorted(renamed) and all(mapping["shapefile_field"].str.startswith("FIELD"))
        said = next(n for n in notes if "Shapefile field names" in n)
        assert f"{sidecar.name} beside it keeps the names" in said
        summary = run(loaded, path)
        assert (summary.read, summary.inserted, summary.updated, summary.unchanged) == (3, 0, 0, 3), summary.to_text()
        assert f"{name}: field names from {sidecar.name} (written by the export): " in summary.to_text()
        assert history_rows(loaded) == history
        with loaded.connect() as conn:
            assert conn.execute(text("SELECT id, attrs, version FROM components ORDER BY id")).all() == before
    # The Shapefile without its field map (a copy that left it behind): as before, FIELD<n> is a custom column of
    # its own, an update of each component that has a value under a renamed name.
    (tmp_path / "b.fields.csv").unlink()
    without = run(loaded, tmp_path / "b.shp", dry_run=True)
    assert (without.updated, without.unchanged) == (1 if encoding == "gbk" else 2, 2 if encoding == "gbk" else 1)
    assert "field names from" not in without.to_text()


def test_an_excel_export_with_a_line_and_a_multipoint_reimports_unchanged(loaded: Engine, tmp_path: Path) -> None:
    """review50 F2: one line or multipoint switched the whole sheet to label_lon/label_lat, which the import did not
    know (and, named with --lon-field/--lat-field, turned the line into a point). The point rows keep lon/lat, the
    other shapes their exact geometry in wkt (as a CSV's): the sheet imports back unchanged. A label point is never
    a component's geometry."""
    from openpyxl import load_workbook
    from shapely.geometry import LineString, MultiPoint, Point

    xs, ys = inside_points(5, seed=61)
    layer = gpd.GeoDataFrame(
        {"class_code": [LAMP, BIN, LAMP], "name": ["路灯", "围栏", "双灯"]},
        geometry=[
            Point(xs[0], ys[0]),
            LineString([(xs[1], ys[1]), (xs[2], ys[2])]),
            MultiPoint([(xs[3], ys[3]), (xs[4], ys[4])]),
        ],
        crs="EPSG:4490",
    )
    layer.to_file(tmp_path / "in.geojson", engine="pyogrio")
    assert run(loaded, tmp_path / "in.geojson").inserted == 3
    with loaded.connect() as conn:
        before = conn.execute(text("SELECT id, ST_AsText(geom), attrs, version FROM components ORDER BY id")).all()
    history = history_rows(loaded)
    out = export(loaded, tmp_path / "c.xlsx")
    book = load_workbook(out)
    table = book["components"]
    header = [c.value for c in table[1]]
    assert header == [*STANDARD_FIELDS, "lon", "lat", "wkt"]
    rows = {r[header.index("GLBJMC")].value: r for r in table.iter_rows(min_row=2)}
    cells = {name: [r[header.index(c)].value for c in ("lon", "lat", "wkt")] for name, r in rows.items()}
    assert cells["路灯"][:2] == [round(xs[0], 7), round(ys[0], 7)] and cells["路灯"][2] is None
    assert cells["围栏"][:2] == [None, None] and cells["围栏"][2].startswith("LINESTRING (")
    assert cells["双灯"][:2] == [None, None] and cells["双灯"][2].startswith("MULTIPOINT (")
    assert book["CRS"]["B3"].value == "lon, lat: the point; wkt: the shape (lines, polygons, multipoints)"
    summary = run(loaded, out)
    assert (summary.read, summary.inserted, summary.updated, summary.unchanged) == (3, 0, 0, 3), summary.to_text()
    assert history_rows(loaded) == history

    # An .xlsx written before (label_lon/label_lat on every row) is refused whole, also when the label columns are
    # named as the coordinates: its line would become a point.
    table.cell(row=1, column=header.index("lon") + 1, value="label_lon")
    table.cell(row=1, column=header.index("lat") + 1, value="label_lat")
    table.delete_cols(header.index("wkt") + 1)
    book.save(tmp_path / "old.xlsx")
    refusal = (
        f"{tmp_path / 'old.xlsx'}: column label_lon is a label point inside each shape, not the component's geometry, "
        "and is not imported as coordinates"
    )
    for options in ({}, {"lon_field": "label_lon", "lat_field": "label_lat"}):
        with pytest.raises(InvalidInput) as err:
            run(loaded, tmp_path / "old.xlsx", **options)
        assert refusal in str(err.value)
    with loaded.connect() as conn:
        assert (
            conn.execute(text("SELECT id, ST_AsText(geom), attrs, version FROM components ORDER BY id")).all() == before
        )
    assert history_rows(loaded) == history


def test_an_empty_cell_adds_no_attribute_and_empties_one_the_component_has(loaded: Engine, tmp_path: Path) -> None:
    """review50 F9: empty custom cells were stored as "" attributes (one per blank column of the bureau's sheet, in
    every export and in the API). An empty cell adds no attribute; in an edited export, emptying a cell removes the
    attribute (no attribute holds an empty value), and the file imported again is unchanged."""
    xs, ys = inside_points(2, seed=71)
    rows = [
        {"GLBJMC": "灯A", "class_code": LAMP, "lon": xs[0], "lat": ys[0], "材质": "", "空列": ""},
        {"GLBJMC": "灯B", "class_code": LAMP, "lon": xs[1], "lat": ys[1], "材质": "铸铁", "空列": ""},
    ]
    assert run(loaded, write_csv(tmp_path / "empty.csv", rows)).inserted == 2

    def attrs() -> dict[str, dict]:
        with loaded.connect() as conn:
            return dict(conn.execute(text("SELECT name, attrs FROM components ORDER BY name")).all())

    assert attrs() == {"灯A": {}, "灯B": {"材质": "铸铁"}}
    out = export(loaded, tmp_path / "c.csv")
    table = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert list(table.columns)[-2:] == ["材质", "wkt"]  # no component has 空列
    history = history_rows(loaded)
    assert run(loaded, out).unchanged == 2
    table.loc[table["GLBJMC"] == "灯B", "材质"] = ""
    table.to_csv(tmp_path / "edited.csv", index=False, encoding="utf-8-sig")
    summary = run(loaded, tmp_path / "edited.csv")
    assert (summary.updated, summary.unchanged) == (1, 1), summary.to_text()
    assert attrs() == {"灯A": {}, "灯B": {}}
    assert history_rows(loaded) == history + 1
    again = run(loaded, tmp_path / "edited.csv")
    assert (again.updated, again.unchanged) == (0, 2), again.to_text()
    assert history_rows(loaded) == history + 1
