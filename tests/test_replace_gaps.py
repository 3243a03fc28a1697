"""review50 F3: a boundary replace that opens a gap in the parent says so (m², a point in it, what to do), and no
writer of components stores one where no unit grid covers it while the district has unit grids."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pyproj import Transformer
from sqlalchemy import Engine, text

from gisgrid.components_store import ComponentInput, save_component, update_component
from gisgrid.errors import InvalidInput, Reason
from gisgrid.grids import workflows
from gisgrid.settings import Settings
from tests.fixtures import COMMUNITIES, DISTRICT, METRIC, STREETS, X0, Y0, ellipsoid_area_m2, write_small_district
from tests.test_boundaries_edit import cli, community_file, narrowed_to, place
from tests.test_cli_exit_codes import gisgrid
from tests.test_components_store import CATALOGUE, LAMP

DONGMING = COMMUNITIES[2]  # 东明社区, the only community of 东关街道 (x 700…1200 m, a notch in its east edge)
TO_LON_LAT = Transformer.from_crs(METRIC, "EPSG:4490", always_xy=True)
GAP = TO_LON_LAT.transform(X0 + 1130, Y0 + 100)  # east of x 1100 m: left by the narrowed 东明社区
INSIDE = TO_LON_LAT.transform(X0 + 300, Y0 + 200)  # 桃园社区
#: x 1100…1200 m less the notch (50 × 800 / 2), on the ellipsoid.
GAP_M2 = "59,998.7"


def gap_warning(parent: str, level: str, name: str, kinds: tuple[str, str, str], why_zh: str, why_en: str) -> str:
    zh_kind, en_kind, en_kinds = kinds
    return (
        f"warning: 上级{level} {parent} {name} 内有 {GAP_M2} m² 不属于任何{zh_kind}(缺口,约在 {{at}}):"
        f"该处不会划分单元网格,部件导入与案件上报将被拒绝;请修改相邻{zh_kind}边界以覆盖该处,"
        f"或加 --reshape-parent 使上级边界改为其{zh_kind}的并集"
        f"({why_zh}) / a gap of {GAP_M2} m² in the parent {{kind}} {parent} is covered by no {en_kind} (near {{at}}): "
        "no unit grid is cut there, and components and case reports there are refused; replace a neighbouring "
        f"{en_kind}'s boundary to cover it, or pass --reshape-parent to make the parent the union of its {en_kinds} "
        f"({why_en})\n"
    )


def one(engine: Engine, sql: str, **params: object) -> object:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def test_a_replace_that_opens_a_gap_in_its_parent_reports_its_area_and_a_point_in_it(
    clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    workflows.import_boundaries(clean_db, write_small_district(tmp_path), workflows.BoundaryOptions())
    narrow = community_file(tmp_path, DONGMING, 1100)
    status, out, err = cli(settings, "replace", DONGMING, str(narrow), "--dry-run")
    assert status == 0, err
    at = err.split("约在 ")[1].split(")")[0]
    lon, lat = (float(v) for v in at.split(","))
    x, y = Transformer.from_crs("EPSG:4490", METRIC, always_xy=True).transform(lon, lat)
    assert 1100 < x - X0 < 1200 and 0 < y - Y0 < 800  # in the strip the community gave up
    # 东关街道's boundary was its only community's: the warning says so (as a district synthesised at import).
    expected = gap_warning(
        STREETS[1],
        "街道",
        "东关街道",
        ("社区", "community", "communities"),
        "该街道边界原为其社区的并集,与导入时由街道合成的区相同",
        "its boundary was the union of its communities, as an import synthesises a district from its streets",
    )
    assert err == expected.format(at=at, kind="street")
    assert out.endswith("dry run: nothing written\n")

    # --reshape-parent: the street follows its community; the gap is then the district's, whose boundary stays.
    street_area = lambda: float(one(clean_db, "SELECT area_m2 FROM admin_units WHERE code = :c", c=STREETS[1]))  # noqa: E731
    before = street_area()
    status, out, err = cli(settings, "replace", DONGMING, str(narrow), "--reshape-parent")
    assert status == 0, err
    assert out.splitlines()[1] == (
        f"上级 {STREETS[1]} 边界改为其下级的并集 / parent {STREETS[1]}: boundary replaced by the union of its "
        f"children, area {before:,.1f} m² → {street_area():,.1f} m²"
    )
    # on the ellipsoid, as stored (to 0.01 m²): the street's own shape, then its narrowed community's
    assert (before, street_area()) == pytest.approx((ellipsoid_area_m2(place(STREETS[1])), narrowed_to(1100)), abs=0.02)
    assert one(
        clean_db,
        "SELECT ST_Equals(s.geom, c.geom) FROM admin_units s, admin_units c WHERE s.code = :s AND c.code = :c",
        s=STREETS[1],
        c=DONGMING,
    )
    at = err.split("约在 ")[1].split(")")[0]
    expected = gap_warning(
        DISTRICT, "区", "测试区", ("街道", "street", "streets"), "其边界保持不变", "its own boundary is kept"
    )
    assert err == expected.format(at=at, kind="district")


def narrowed(engine: Engine, tmp_path: Path) -> None:
    """The small district with its grids, then 东明社区 narrowed to x 700…1100 m (a gap in 东关街道) and re-cut."""
    workflows.import_boundaries(engine, write_small_district(tmp_path), workflows.BoundaryOptions())
    workflows.generate_grids(engine)
    path = community_file(tmp_path, DONGMING, 1100)
    workflows.replace_unit_boundary(
        engine, DONGMING, path, workflows.read_boundaries(path, workflows.BoundaryOptions())
    )
    workflows.generate_grids(engine)


NO_GRID = (
    "不在任何单元网格内(街道/社区边界之间的缺口,或边界修改后未重新划分网格:gisgrid grids generate) / "
    "covered by no unit grid (a gap between the street/community boundaries, or grids not re-cut since a boundary "
    "changed: gisgrid grids generate)"
)


def test_components_import_refuses_a_row_no_unit_grid_covers_naming_it_and_imports_the_others(
    clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    narrowed(clean_db, tmp_path)
    src, refused = tmp_path / "c.csv", tmp_path / "refused.csv"
    pd.DataFrame(
        [
            {"name": "缺口路灯", "class_code": LAMP, "lon": f"{GAP[0]:.7f}", "lat": f"{GAP[1]:.7f}"},
            {"name": "桃园路灯", "class_code": LAMP, "lon": f"{INSIDE[0]:.7f}", "lat": f"{INSIDE[1]:.7f}"},
        ]
    ).to_csv(src, index=False)
    r = gisgrid(settings, tmp_path, "components", "import", str(src), "--errors", str(refused))
    assert r.returncode == 3, r.stdout + r.stderr  # a partial import
    assert r.stdout.startswith("read 2, inserted 1, updated 0, unchanged 0, refused 1\n"), r.stdout
    assert f"first refusal: row 2 field lon/lat: {NO_GRID}\n" in r.stdout
    errors = pd.read_csv(refused, dtype=str, encoding="utf-8-sig")
    assert errors.to_dict("records") == [
        {"row": "2", "field": "lon/lat", "value": f"{GAP[0]:.7f},{GAP[1]:.7f}", "reason": NO_GRID}
    ]
    with clean_db.connect() as conn:
        stored = conn.execute(text("SELECT name, unit_grid_code, street_code FROM components")).all()
    assert [(n, g is not None, s) for n, g, s in stored] == [("桃园路灯", True, STREETS[0])]


def test_with_no_unit_grid_in_the_district_components_are_stored_and_located_by_grids_generate(
    clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    """Before any unit grid is cut, a component is stored unlocated, as before: grids generate locates it."""
    workflows.import_boundaries(clean_db, write_small_district(tmp_path), workflows.BoundaryOptions())
    src = tmp_path / "c.csv"
    pd.DataFrame([{"class_code": LAMP, "lon": INSIDE[0], "lat": INSIDE[1]}]).to_csv(src, index=False)
    r = gisgrid(settings, tmp_path, "components", "import", str(src))
    assert r.returncode == 0, r.stdout + r.stderr
    assert one(clean_db, "SELECT count(*) FROM components WHERE unit_grid_code IS NULL") == 1
    workflows.generate_grids(clean_db)
    assert one(clean_db, "SELECT street_code FROM components WHERE unit_grid_code IS NOT NULL") == STREETS[0]


def test_the_api_refuses_a_new_component_or_a_move_no_unit_grid_covers_but_edits_one_left_in_a_gap(
    clean_db: Engine, tmp_path: Path
) -> None:
    workflows.import_boundaries(clean_db, write_small_district(tmp_path), workflows.BoundaryOptions())
    workflows.generate_grids(clean_db)
    lamp = save_component(
        clean_db, CATALOGUE, ComponentInput(class_code=LAMP, lon=GAP[0], lat=GAP[1], datum="cgcs2000"), actor="li"
    )
    assert lamp["properties"]["unit_grid_code"] is not None  # gridded, before the replace
    path = community_file(tmp_path, DONGMING, 1100)
    workflows.replace_unit_boundary(
        clean_db, DONGMING, path, workflows.read_boundaries(path, workflows.BoundaryOptions())
    )
    workflows.generate_grids(clean_db)
    lamp_id = lamp["id"]
    assert one(clean_db, "SELECT unit_grid_code FROM components WHERE id = :i", i=lamp_id) is None  # in the gap now

    beside = TO_LON_LAT.transform(X0 + 1140, Y0 + 200)
    with pytest.raises(InvalidInput) as refused:
        save_component(
            clean_db,
            CATALOGUE,
            ComponentInput(class_code=LAMP, lon=beside[0], lat=beside[1], datum="cgcs2000"),
            actor="li",
        )
    assert refused.value.reason == Reason.OUTSIDE_COVERAGE
    assert refused.value.message == f"coordinates: {NO_GRID}"
    assert refused.value.detail == [
        {
            "field": "coordinates",
            "reason": NO_GRID,
            "code": "outside_coverage",
            "value": f"{beside[0]:.7f},{beside[1]:.7f}",
        }
    ]
    # The component left in the gap keeps its place and can still be edited; moving it within the gap cannot.
    version = int(one(clean_db, "SELECT version FROM components WHERE id = :i", i=lamp_id))
    edited = update_component(clean_db, CATALOGUE, lamp_id, {"name": "缺口路灯"}, actor="li", expected_version=version)
    assert edited["properties"]["name"] == "缺口路灯"
    with pytest.raises(InvalidInput) as moved:
        update_component(
            clean_db,
            CATALOGUE,
            lamp_id,
            {"lon": beside[0], "lat": beside[1], "datum": "cgcs2000"},
            actor="li",
            expected_version=version + 1,
        )
    assert moved.value.reason == Reason.OUTSIDE_COVERAGE
    assert one(clean_db, "SELECT count(*) FROM components") == 1


def test_reshape_parent_on_a_district_says_it_changed_nothing(
    clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = write_small_district(tmp_path)
    workflows.import_boundaries(clean_db, path, workflows.BoundaryOptions())
    status, out, err = cli(settings, "replace", DISTRICT, str(path), "--reshape-parent", "--dry-run")
    assert status == 0, err
    assert err == f"warning: {DISTRICT} has no parent unit: --reshape-parent changed nothing\n"
    assert out.endswith("dry run: nothing written\n") and "上级" not in out
