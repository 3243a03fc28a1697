"""Boundaries and unit grids in PostGIS: import, generate, tiers, staff, export — as the CLI runs them."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pyproj
import pytest
import shapely
from sqlalchemy import Engine, text

from gisgrid.boundaries import BoundaryOptions
from gisgrid.errors import InvalidInput
from gisgrid.grids import workflows
from gisgrid.settings import Settings
from tests.fixtures import COMMUNITIES, DISTRICT, STREETS, dbf_fields, small_district, write_small_district


def _count(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


@pytest.fixture
def imported(clean_db: Engine, tmp_path: Path) -> Engine:
    workflows.import_boundaries(clean_db, write_small_district(tmp_path), BoundaryOptions())
    return clean_db


def test_import_stores_units_with_metric_areas_and_tiers_1_2(imported: Engine) -> None:
    with imported.connect() as conn:
        rows = conn.execute(
            text("SELECT code, level, parent_code, metric_srid, area_m2 FROM admin_units ORDER BY code")
        )
        units = {r.code: r for r in rows}
    assert set(units) == {DISTRICT, *STREETS, *COMMUNITIES}
    assert units[DISTRICT].metric_srid == 4547
    # The area on the ellipsoid (review23 D3: it was the Gauss–Krüger plane's, 1200 × 800 − the notch = 940,000
    # m² here, 21 ppm more), as pyproj's geodesic measure gives it: the same measure as the cells' area_m2.
    # Measured on the edges as stored, straight in lon/lat (review39 D1): pyproj.Geod joins vertices by geodesics,
    # so it measures the stored polygon densified to ~1 m (on the 4 corners alone it gives 939,979.98).
    with imported.connect() as conn:
        wkb = conn.execute(text("SELECT ST_AsBinary(geom) FROM admin_units WHERE code = :c"), {"c": DISTRICT}).scalar()
    stored = shapely.segmentize(shapely.from_wkb(bytes(wkb)), 1e-5)
    geodesic = abs(pyproj.Geod(ellps="GRS80").geometry_area_perimeter(stored)[0])
    assert units[DISTRICT].area_m2 == pytest.approx(geodesic, abs=0.02)
    assert units[DISTRICT].area_m2 == pytest.approx(939_979.86, abs=0.02)
    assert units[COMMUNITIES[0]].parent_code == STREETS[0]
    assert _count(imported, "SELECT count(*) FROM management_grids WHERE tier = 1") == 2
    assert _count(imported, "SELECT count(*) FROM management_grids WHERE tier = 2") == 3


def test_dry_run_writes_nothing(clean_db: Engine, tmp_path: Path) -> None:
    result = workflows.import_boundaries(clean_db, write_small_district(tmp_path), BoundaryOptions(), dry_run=True)
    assert result.summary is None
    assert _count(clean_db, "SELECT count(*) FROM admin_units") == 0


def test_unknown_parent_is_refused_and_nothing_is_written(clean_db: Engine, tmp_path: Path) -> None:
    communities = small_district().query("level == 'community'")
    path = tmp_path / "communities.geojson"
    communities.to_file(path, driver="GeoJSON")
    with pytest.raises(InvalidInput, match="name a parent that is not loaded"):
        workflows.import_boundaries(clean_db, path, BoundaryOptions())
    assert _count(clean_db, "SELECT count(*) FROM admin_units") == 0


def test_reimport_updates_instead_of_duplicating(imported: Engine, tmp_path: Path) -> None:
    again = workflows.import_boundaries(imported, write_small_district(tmp_path, "again.geojson"), BoundaryOptions())
    assert again.summary is not None
    assert (again.summary.inserted, again.summary.updated) == (0, 6)
    assert _count(imported, "SELECT count(*) FROM admin_units") == 6


def test_generate_stores_cells_that_tile_each_unit(imported: Engine) -> None:
    result = workflows.generate_grids(imported)
    assert result.units == 3 and result.metric_epsg == 4547
    assert result.cells == _count(imported, "SELECT count(*) FROM unit_grids")
    with imported.connect() as conn:
        per_unit = conn.execute(
            text(
                """
                SELECT u.code, ST_Area(ST_Transform(u.geom, 4547)) AS unit_area,
                       ST_Area(ST_Transform(ST_Union(g.geom), 4547)) AS union_area,
                       sum(ST_Area(ST_Transform(g.geom, 4547))) AS sum_area,
                       bool_and(g.code LIKE u.code || '%') AS prefixed,
                       bool_and(ST_CoveredBy(ST_Transform(g.geom, 4547),
                                             ST_Buffer(ST_Transform(u.geom, 4547), 0.01))) AS inside
                FROM admin_units u JOIN unit_grids g ON g.unit_code = u.code GROUP BY u.code, u.geom
                """
            )
        ).all()
    assert {r.code for r in per_unit} == set(COMMUNITIES)
    for r in per_unit:
        assert abs(r.union_area - r.unit_area) / r.unit_area < 1e-4
        assert abs(r.sum_area - r.union_area) <= r.union_area / 1e6  # no overlaps: ≤ 1 m² per km²
        assert r.prefixed and r.inside  # within 1 cm: the lon/lat round trip moves vertices by ~2 mm
    with imported.connect() as conn:  # stored areas on one measure: a unit's is the sum of its cells'
        stored = conn.execute(
            text(
                "SELECT u.code, u.area_m2, sum(g.area_m2) AS cells, count(*) AS n FROM admin_units u "
                "JOIN unit_grids g ON g.unit_code = u.code GROUP BY u.code, u.area_m2"
            )
        ).all()
    assert len(stored) == 3
    for r in stored:
        assert abs(r.area_m2 - r.cells) <= 0.01 * r.n + 0.02, r  # the rounding of each cell to 0.01 m²
    assert result.coverage.units_area_m2 == pytest.approx(sum(r.area_m2 for r in stored), abs=0.05)
    assert result.coverage.cells_area_m2 == pytest.approx(sum(r.cells for r in stored), abs=0.05)
    # seq 001 is the north-west cell of each community
    with imported.connect() as conn:
        first = conn.execute(
            text("SELECT code, row, col FROM unit_grids WHERE code LIKE :c || '%' ORDER BY code LIMIT 1"),
            {"c": COMMUNITIES[0]},
        ).one()
        top_row = conn.execute(
            text("SELECT max(row) FROM unit_grids WHERE unit_code = :c"), {"c": COMMUNITIES[0]}
        ).scalar_one()
    assert first.code == COMMUNITIES[0] + "001" and first.row == top_row


def test_regenerate_is_identical(imported: Engine) -> None:
    workflows.generate_grids(imported)
    with imported.connect() as conn:
        before = conn.execute(text("SELECT code, ST_AsEWKB(geom) FROM unit_grids ORDER BY code")).all()
    workflows.generate_grids(imported)
    with imported.connect() as conn:
        after = conn.execute(text("SELECT code, ST_AsEWKB(geom) FROM unit_grids ORDER BY code")).all()
    assert [(c, bytes(g)) for c, g in before] == [(c, bytes(g)) for c, g in after]


def test_tiers_group_every_unit_grid_into_contiguous_tier3(imported: Engine) -> None:
    workflows.generate_grids(imported)
    result = workflows.build_tiers(imported, target_size=20)
    assert (result.tier1, result.tier2) == (2, 3)
    assert result.tier3 == _count(imported, "SELECT count(*) FROM management_grids WHERE tier = 3")
    assert _count(imported, "SELECT count(*) FROM unit_grids WHERE tier3_code IS NULL") == 0
    with imported.connect() as conn:
        rows = conn.execute(
            text(
                """
                SELECT m.code, m.parent_code, ST_NumGeometries(m.geom) AS parts,
                       (SELECT count(*) FROM unit_grids g WHERE g.tier3_code = m.code) AS cells
                FROM management_grids m WHERE m.tier = 3
                """
            )
        ).all()
    for r in rows:
        assert len(r.code) == 14 and r.code[:12] == r.parent_code
        assert r.parts == 1  # contiguous: the union of its cells is one polygon
        assert r.cells > 0


def test_staff_csv_sets_leaders_or_refuses_whole(imported: Engine, tmp_path: Path) -> None:
    good = tmp_path / "staff.csv"
    good.write_text(
        f"grid_code,role,name,phone\n{STREETS[0]},网格长,王伟,13800000001\n{STREETS[0]},网格员,李娜,13800000002\n",
        encoding="utf-8",
    )
    assert workflows.import_staff(imported, good) == 1
    with imported.connect() as conn:
        leader, staff = conn.execute(
            text("SELECT leader_name, staff FROM management_grids WHERE code = :c"), {"c": STREETS[0]}
        ).one()
    assert leader == "王伟"
    assert [s["name"] for s in staff] == ["王伟", "李娜"]

    bad = tmp_path / "bad.csv"
    bad.write_text(
        f"grid_code,role,name,phone\n{STREETS[1]},网格长,张三,13800000003\n999,网格员,,12ab\n", encoding="utf-8"
    )
    with pytest.raises(InvalidInput) as err:
        workflows.import_staff(imported, bad)
    assert {(e["row"], e["field"]) for e in err.value.detail} == {(3, "grid_code"), (3, "name"), (3, "phone")}
    with imported.connect() as conn:
        untouched = conn.execute(
            text("SELECT leader_name FROM management_grids WHERE code = :c"), {"c": STREETS[1]}
        ).scalar()
    assert untouched is None  # the good row of a refused file is not written either


def test_staff_csv_from_excel_in_gbk_is_read(imported: Engine, tmp_path: Path) -> None:
    """review27 D6: a staff list Excel saved as GBK CSV was refused as 'not a UTF-8 CSV file'."""
    gbk = tmp_path / "staff_gbk.csv"
    gbk.write_bytes(f"grid_code,role,name,phone,,\r\n{STREETS[0]},网格长,王伟,13800000001,,\r\n".encode("gbk"))
    assert workflows.import_staff(imported, gbk) == 1
    with imported.connect() as conn:
        leader = conn.execute(
            text("SELECT leader_name FROM management_grids WHERE code = :c"), {"c": STREETS[0]}
        ).scalar()
    assert leader == "王伟"


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_shapefile_export_keeps_chinese_names(imported: Engine, tmp_path: Path, encoding: str) -> None:
    workflows.generate_grids(imported)
    files = workflows.export_grids(imported, tmp_path / "grids.shp", encoding=encoding)  # type: ignore[arg-type]
    assert (tmp_path / "grids.cpg").read_text().strip().upper() == encoding.upper().replace("-", "-")
    assert (tmp_path / "grids.dbf").read_bytes()[29] == {"utf-8": 0x00, "gbk": 0x4D}[encoding]  # language driver
    back = gpd.read_file(tmp_path / "grids.shp")
    assert all(len(c.encode()) <= 10 and c.isascii() for c in back.columns)
    assert set(back.filter(like="COMM_NAME").iloc[:, 0]) == {"桃园社区", "紫荆社区", "东明社区"}
    assert len(back) == _count(imported, "SELECT count(*) FROM unit_grids")
    assert any(p.suffix == ".shp" for p in files)


def test_grids_export_cli_writes_gb18030_a_community_name_gbk_cannot_hold(
    imported: Engine, settings: Settings, tmp_path: Path
) -> None:
    """review55 F10: `grids export --encoding gb18030` was refused by the option ('gbk' at most); a community named
    with 䶮 (U+4DAE, outside GBK) is refused in GBK naming it, and written and read back in GB18030."""
    from typer.testing import CliRunner

    from gisgrid.cli import app

    workflows.generate_grids(imported)
    with imported.begin() as conn:
        conn.execute(text("UPDATE admin_units SET name = '䶮村社区' WHERE code = :c"), {"c": COMMUNITIES[0]})
    env = {"GISGRID_DATABASE_URL": settings.database_url or ""}
    runner = CliRunner()
    gbk = runner.invoke(app, ["grids", "export", "--out", str(tmp_path / "k.shp"), "--encoding", "gbk"], env=env)
    assert gbk.exit_code == 1 and isinstance(gbk.exception, InvalidInput)  # `error: …` once through gisgrid's main
    assert str(gbk.exception).endswith(
        "field 'COMM_NAME': value '䶮村社区' contains '䶮', which GBK cannot encode; "
        "write the Shapefile in GB18030 (--encoding gb18030) or UTF-8 or use GeoPackage"
    )
    out = tmp_path / "g.shp"
    done = runner.invoke(app, ["grids", "export", "--out", str(out), "--encoding", "gb18030"], env=env)
    assert done.exit_code == 0, done.output
    assert out.with_suffix(".cpg").read_bytes() == b"GB18030" and out.with_suffix(".dbf").read_bytes()[29] == 0
    back = gpd.read_file(out, engine="pyogrio")
    assert set(back["COMM_NAME"]) == {"䶮村社区", "紫荆社区", "东明社区"}
    assert back.loc[back["COMM_CODE"] == COMMUNITIES[0], "COMM_NAME"].unique().tolist() == ["䶮村社区"]


def test_tier_export_to_geopackage(imported: Engine, tmp_path: Path) -> None:
    workflows.generate_grids(imported)
    workflows.build_tiers(imported, target_size=20)
    workflows.export_grids(imported, tmp_path / "t3.gpkg", tier="3")
    back = gpd.read_file(tmp_path / "t3.gpkg")
    assert len(back) == _count(imported, "SELECT count(*) FROM management_grids WHERE tier = 3")
    assert back.crs.to_epsg() == 4490


def test_export_with_nothing_stored_is_refused(clean_db: Engine, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no unit grids are stored"):
        workflows.export_grids(clean_db, tmp_path / "x.gpkg")
    assert not (tmp_path / "x.gpkg").exists()


def test_export_into_a_missing_folder_is_refused_and_creates_nothing(imported: Engine, tmp_path: Path) -> None:
    """review38 U13: grids export --out /nonexist/x.gpkg created the folder."""
    workflows.generate_grids(imported)
    out = tmp_path / "nonexist" / "x.gpkg"
    with pytest.raises(InvalidInput) as err:
        workflows.export_grids(imported, out)
    assert str(err.value) == (
        f"文件夹 {tmp_path / 'nonexist'} 不存在:请先创建(拼错的路径不会被自动创建) / "
        f"{out}: the folder {tmp_path / 'nonexist'} does not exist; create it first (a mistyped path is not created)"
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "small.geojson"]


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_shapefile_export_declares_the_standard_code_and_name_widths(
    imported: Engine, tmp_path: Path, encoding: str
) -> None:
    """Review23 D5: unit-grid codes 15, district 6, street 9, community 12, street/community names 50 (bytes in the
    file's encoding, data/catalogue/export_fields.csv); other fields keep GDAL's widths."""
    workflows.generate_grids(imported)
    notes: list[str] = []
    workflows.export_grids(imported, tmp_path / "g.shp", encoding=encoding, notes=notes)  # type: ignore[arg-type]
    assert notes == []
    assert dbf_fields(tmp_path / "g.shp") == {
        "CODE": ("C", 15, 0),
        "DIST_CODE": ("C", 6, 0),
        "STRT_CODE": ("C", 9, 0),
        "COMM_CODE": ("C", 12, 0),
        "SEQ": ("N", 9, 0),  # 32-bit: ArcGIS reads N(18,0) as Double, N(9,0) as Long Integer (review47 F7)
        "ROW": ("N", 9, 0),
        "COL": ("N", 9, 0),
        "AREA_M2": ("N", 24, 15),  # pyogrio sets no precision: GDAL's default
        "T3_CODE": ("C", 14, 0),  # review38 U10: the tier-3 code's 14 digits
        "DIST_NAME": ("C", 80, 0),
        "STRT_NAME": ("C", 50, 0),
        "COMM_NAME": ("C", 50, 0),
        "CODE_PROV": ("L", 1, 0),
    }
    back = gpd.read_file(tmp_path / "g.shp", engine="pyogrio")
    with imported.connect() as conn:
        stored = conn.execute(text("SELECT code, street_code, community_code FROM unit_grids ORDER BY code")).all()
    assert list(back[["CODE", "STRT_CODE", "COMM_CODE"]].itertuples(index=False, name=None)) == stored
    assert set(back["COMM_NAME"]) == {"桃园社区", "紫荆社区", "东明社区"}


@pytest.mark.parametrize(("tier", "code", "parent", "admin"), [("1", 9, 6, 9), ("2", 12, 9, 12), ("3", 14, 12, 12)])
def test_tier_shapefile_export_declares_the_code_widths(
    imported: Engine, tmp_path: Path, tier: str, code: int, parent: int, admin: int
) -> None:
    """Review38 U10: tier CODE, PARENT and ADMIN_CODE were C(80), GDAL's width; they are the codes' digits."""
    workflows.generate_grids(imported)
    workflows.build_tiers(imported, target_size=20)
    notes: list[str] = []
    workflows.export_grids(imported, tmp_path / "t.shp", tier=tier, notes=notes)
    assert notes == []
    fields = dbf_fields(tmp_path / "t.shp")
    assert (fields["CODE"], fields["PARENT"], fields["ADMIN_CODE"]) == (
        ("C", code, 0),
        ("C", parent, 0),
        ("C", admin, 0),
    )
    assert fields["NAME"] == ("C", 80, 0)  # no standard length: GDAL's width
    back = gpd.read_file(tmp_path / "t.shp", engine="pyogrio")
    with imported.connect() as conn:
        stored = conn.execute(
            text("SELECT code, parent_code, admin_code FROM management_grids WHERE tier = :t ORDER BY code"),
            {"t": int(tier)},
        ).all()
    assert list(back[["CODE", "PARENT", "ADMIN_CODE"]].itertuples(index=False, name=None)) == [tuple(r) for r in stored]
