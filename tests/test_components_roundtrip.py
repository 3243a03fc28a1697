"""The analyst's round trip: export components, open the file, import it again (review11 D6, D9).

An unedited export re-imports as "unchanged" with no history, in every format; its fields are the GB/T 47678.5
表2 abbreviations with the department, street and community names; an edited field is the only change."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
from sqlalchemy import Engine, text

from gisgrid.components_store import export_components
from tests.fixtures import DISTRICT
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
    again = run(stored, path, actor="roundtrip", src_crs=options.get("crs"))
    assert (again.read, again.inserted, again.updated, again.unchanged, again.refused) == (4, 0, 0, 4, 0), (
        again.to_text()
    )
    assert history_rows(stored) == history
    with stored.connect() as conn:
        after = conn.execute(text("SELECT * FROM components ORDER BY id")).all()
    assert after == before  # attrs, geometry, version, updated_at: nothing touched


def test_the_export_uses_the_standard_field_names_with_department_and_place_names(
    stored: Engine, tmp_path: Path
) -> None:
    back = gpd.read_file(export(stored, tmp_path / "c.shp", encoding="gbk"), engine="pyogrio")
    assert list(back.columns) == [*STANDARD_FIELDS, "geometry"]
    lamp = back.loc[back["GLBJMC"] == "路灯甲"].iloc[0]
    assert lamp["GLBJBSM"] == f"{DISTRICT}{LAMP}000001"
    assert (lamp["ZGBMDM"], lamp["QSDWDM"], lamp["YHDWDM"]) == (LIGHTS, WATER, LIGHTS)
    assert (lamp["ZGBMMC"], lamp["QSDWMC"], lamp["YHDWMC"]) == ("城市照明管理处", "供水集团有限公司", "城市照明管理处")
    assert (lamp["GLBJZT"], lamp["CSRQ"], lamp["BGRQ"], lamp["SJLY"]) == ("破损", "2020-01-05", "2024-03-02", "实测")
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
    with stored.connect() as conn:
        changes = conn.execute(
            text("SELECT changes FROM component_history WHERE component_id = :i AND action = 'update'"), {"i": target}
        ).scalar_one()
        attrs = conn.execute(text("SELECT attrs FROM components WHERE id = :i"), {"i": target}).scalar_one()
    assert changes == {"status": ["完好", "丢失"], "note": [None, "夜间被盗"]}
    assert attrs == {"SetLoc": ""}  # the custom column the export does not carry is kept
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
