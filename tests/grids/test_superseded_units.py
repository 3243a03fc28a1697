"""A unit cut before child units were imported under it is no longer a lowest unit (fixgen).

Specification: unit grids are cut for the lowest units only. When a street that has unit grids gains communities,
``grids generate`` cuts the communities and retires every cell of the street as a regeneration retires a changed
cell: its codes are remembered in ``retired_unit_grids`` (never issued again) and its cells deleted; cases and
components in them move to the community cells that cover them now; the street's tier-3 grids give way to as many
tier-3 grids of its communities; the run says so, zh-CN first. A community imported by mistake and never cut can be
removed, and the street, lowest again, keeps its cells and codes; once cut, the community has issued codes and is
refused (``boundaries remove``).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gisgrid import case_intake
from gisgrid import cases as svc
from gisgrid.boundaries import BoundaryOptions
from gisgrid.cli import app
from gisgrid.components_store import ComponentInput, catalogue_for, save_component
from gisgrid.errors import Conflict, InvalidInput, Reason
from gisgrid.grids import workflows
from gisgrid.grids.numbering import CodeChanges
from gisgrid.settings import Settings
from tests.fixtures import COMMUNITIES, METRIC, STREETS, X0, Y0, ellipsoid_area_m2, lon_lat, small_district
from tests.test_recode import NOW, env_of

runner = CliRunner()
EAST = STREETS[1]  # 东关街道: x 700…1200 m, in the fixture its only community is 东明社区
DONGMING = COMMUNITIES[2]
OLD = [f"{EAST}000{s:03d}" for s in range(1, 41)]  # the street's own cells (street code + 000 + seq)
NEW = [f"{DONGMING}{s:03d}" for s in range(1, 41)]


def _rows(engine: Engine, sql: str, **params: object) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params).all()]


def _codes(engine: Engine, sql: str, **params: object) -> list[str]:
    return sorted(str(r[0]) for r in _rows(engine, sql, **params))


def _write(folder: Path, name: str, codes: list[str]) -> Path:
    gdf = small_district()
    path = folder / name
    gdf[gdf["code"].isin(codes)].to_file(path, driver="GeoJSON")
    return path


def _generate(settings: Settings) -> str:
    r = runner.invoke(app, ["grids", "generate"], env=env_of(settings))
    assert r.exit_code == 0, r.stderr
    return r.stdout


@pytest.fixture
def street_cut(clean_db: Engine, tmp_path: Path) -> Engine:
    """The small district without 东明社区: 东关街道 is a lowest unit, cut into 40 cells in 2 tier-3 grids."""
    everything = small_district()["code"].tolist()
    workflows.import_boundaries(
        clean_db, _write(tmp_path, "d.geojson", [c for c in everything if c != DONGMING]), BoundaryOptions()
    )
    workflows.generate_grids(clean_db)
    workflows.build_tiers(clean_db, target_size=20)
    assert _codes(clean_db, "SELECT code FROM unit_grids WHERE unit_code = :u", u=EAST) == OLD
    return clean_db


def test_a_street_that_gains_communities_has_its_cells_retired_and_its_place_cut_by_them(
    street_cut: Engine, settings: Settings, tmp_path: Path
) -> None:
    engine = street_cut
    tier3_old = _codes(engine, "SELECT code FROM management_grids WHERE tier = 3 AND admin_code = :u", u=EAST)
    assert tier3_old == [f"{EAST}00001", f"{EAST}00002"]
    others = _rows(engine, "SELECT code, tier3_code FROM unit_grids WHERE unit_code <> :u ORDER BY code", u=EAST)
    # A case in progress and a lamp in the street's 5th cell.
    services = svc.load_services(settings.model_copy(update={"data_dir": tmp_path / "data"}))
    svc.sync_reference_data(engine, services)
    ((lon, lat, row, col),) = _rows(
        engine,
        "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)), row, col FROM unit_grids WHERE code = :c",
        c=OLD[4],
    )
    case_id, _ = case_intake.intake(
        engine,
        services,
        case_intake.Intake(class_code="06010", lon=lon, lat=lat, datum="cgcs2000", description="x"),
        now=NOW,
    )
    lamp = save_component(
        engine,
        catalogue_for(Settings()),
        ComponentInput(class_code="01037", lon=lon, lat=lat, datum="cgcs2000", maint_dept="990000000000000008"),
        actor="t",
    )["id"]
    case_sql = "SELECT unit_grid_code, street_code, community_code, tier3_code FROM cases WHERE id = :i"
    assert _rows(engine, case_sql, i=case_id) == [(OLD[4], EAST, None, tier3_old[0])]

    # 东明社区 imported under the street (it covers the street exactly), then a regeneration.
    workflows.import_boundaries(engine, _write(tmp_path, "c.geojson", [DONGMING]), BoundaryOptions())
    out = _generate(settings)

    # No unit grid of the street remains; the community's 40 cells cover its place, numbered from 001.
    assert _codes(engine, "SELECT code FROM unit_grids WHERE unit_code = :u", u=EAST) == []
    assert _codes(engine, "SELECT code FROM unit_grids WHERE unit_code = :u", u=DONGMING) == NEW
    assert (
        _rows(
            engine,
            "SELECT code, tier3_code FROM unit_grids WHERE left(code, 6) = '419902' "
            "AND unit_code NOT IN (:u, :c) ORDER BY code",
            u=EAST,
            c=DONGMING,
        )
        == others
    )
    # The street's codes are retired, remembered with their cells, and the street keeps its highest number.
    assert _codes(engine, "SELECT code FROM retired_unit_grids WHERE unit_code = :u", u=EAST) == OLD
    assert _rows(engine, "SELECT grid_seq_issued FROM admin_units WHERE code = :u", u=EAST) == [(40,)]
    # Exactly the street's area, to 1 m² (on the ellipsoid), and no overlap.
    ((cells_m2, union_m2, street_m2),) = _rows(
        engine,
        "SELECT sum(ST_Area(g.geom::geography)), ST_Area(ST_Union(g.geom)::geography), "
        "(SELECT ST_Area(geom::geography) FROM admin_units WHERE code = :u) FROM unit_grids g WHERE g.unit_code = :c",
        u=EAST,
        c=DONGMING,
    )
    assert abs(cells_m2 - street_m2) < 1.0 and abs(union_m2 - street_m2) < 1.0, (cells_m2, union_m2, street_m2)
    # The case and the lamp now name the community's cell of the same lattice cell, its tier-3 grid and community.
    ((moved,),) = _rows(
        engine, "SELECT code FROM unit_grids WHERE unit_code = :c AND row = :r AND col = :k", c=DONGMING, r=row, k=col
    )
    tier3_new = _codes(engine, "SELECT code FROM management_grids WHERE tier = 3 AND admin_code = :u", u=DONGMING)
    assert tier3_new == [f"{DONGMING}01", f"{DONGMING}02"]  # as many as the street had
    assert _codes(engine, "SELECT code FROM management_grids WHERE tier = 3 AND admin_code = :u", u=EAST) == []
    ((tier3_of_cell,),) = _rows(engine, "SELECT tier3_code FROM unit_grids WHERE code = :c", c=moved)
    assert _rows(engine, case_sql, i=case_id) == [(moved, EAST, DONGMING, tier3_of_cell)]
    assert _rows(
        engine, "SELECT unit_grid_code, street_code, community_code FROM components WHERE id = :i", i=lamp
    ) == [(moved, EAST, DONGMING)]

    # The run says so, zh-CN first; the other communities keep their 3 tier-3 grids. (The case followed its
    # cell, not a regrouped one: it took the new cell's tier-3 grid with the cell, as a case in a retired cell does.)
    first, last = OLD[0], OLD[-1]
    lines = out.splitlines()
    kept = len(others)
    assert CodeChanges(kept=kept, issued=NEW, retired=OLD).to_text() in lines
    assert (
        f"街道 {EAST} 东关街道 已有下级单元,不再切分单元网格:其 40 个单元网格({first}…{last})已停用并删除,编码不再分配,"
        f"由下级单元的网格取代 / street {EAST} (东关街道) has child units now and gets no unit grids of its own: "
        f"its 40 unit grid(s) ({first} … {last}) were retired and deleted, their codes never given again; "
        "its children's cells cover its place"
    ) in lines
    assert (
        "tier 3: kept 3 grids (code, area, 网格长/网格员 unchanged), rebuilt 0, new 2, dropped 2; staff assignments "
        "dropped on 0 grids; regrouped units with changed unit grids: 1"
    ) in lines

    # Again: nothing changes, nothing more retires.
    again = workflows.generate_grids(engine)
    assert again.codes == CodeChanges(kept=kept + 40) and again.superseded == []

    # Cut, the community has issued codes and named cells: it cannot be removed.
    with pytest.raises(Conflict) as refused:
        workflows.remove_unit(engine, DONGMING)
    assert refused.value.reason == Reason.UNIT_IN_USE


def test_a_community_imported_by_mistake_and_never_cut_is_removed_and_the_street_keeps_its_cells(
    street_cut: Engine, tmp_path: Path
) -> None:
    engine = street_cut
    cells = _rows(engine, "SELECT code, tier3_code, md5(ST_AsBinary(geom)) FROM unit_grids ORDER BY code")
    workflows.import_boundaries(engine, _write(tmp_path, "c.geojson", [DONGMING]), BoundaryOptions())
    removed = workflows.remove_unit(engine, DONGMING)
    assert (removed.code, removed.management_grids) == (DONGMING, 1)
    # The street is lowest again: cut the same, every code kept, nothing retired.
    result = workflows.generate_grids(engine)
    assert result.codes == CodeChanges(kept=len(cells)) and result.superseded == []
    assert _rows(engine, "SELECT code, tier3_code, md5(ST_AsBinary(geom)) FROM unit_grids ORDER BY code") == cells
    assert _codes(engine, "SELECT code FROM retired_unit_grids") == []


def test_the_street_s_staffed_tier3_grid_is_dropped_only_with_replace_tiers(street_cut: Engine, tmp_path: Path) -> None:
    engine = street_cut
    staffed = f"{EAST}00001"
    with engine.begin() as conn:
        conn.execute(text("UPDATE management_grids SET leader_name = '张网格' WHERE code = :c"), {"c": staffed})
    workflows.import_boundaries(engine, _write(tmp_path, "c.geojson", [DONGMING]), BoundaryOptions())
    with pytest.raises(InvalidInput) as refused:
        workflows.generate_grids(engine)
    assert [d["code"] for d in refused.value.detail] == [staffed]
    # Nothing written: the street keeps its cells, no code is retired.
    assert _codes(engine, "SELECT code FROM unit_grids WHERE unit_code = :u", u=EAST) == OLD
    assert _codes(engine, "SELECT code FROM retired_unit_grids") == []
    result = workflows.generate_grids(engine, replace_tiers=True)
    assert [u.code for u in result.superseded] == [EAST] and result.tier3 is not None
    assert (result.tier3.dropped, result.tier3.staff_dropped) == ([staffed, f"{EAST}00002"], [staffed])
    assert _codes(engine, "SELECT code FROM unit_grids WHERE unit_code = :u", u=EAST) == []


def test_a_street_whose_communities_leave_part_of_it_out_says_how_much_has_no_cell_now(
    street_cut: Engine, tmp_path: Path
) -> None:
    engine = street_cut
    west_part = shapely.Polygon([(X0 + x, Y0 + y) for x, y in [(700, 0), (1000, 0), (1000, 800), (700, 800)]])
    path = tmp_path / "part.geojson"
    gpd.GeoDataFrame(
        [{"code": DONGMING, "name": "东明社区", "level": "community", "parent_code": EAST}],
        geometry=[west_part],
        crs=METRIC,
    ).to_crs(4490).to_file(path, driver="GeoJSON")
    workflows.import_boundaries(engine, path, BoundaryOptions())
    result = workflows.generate_grids(engine)
    (unit,) = result.superseded
    ((gap,),) = _rows(
        engine,
        "SELECT ST_Area(ST_Difference(s.geom, c.geom)::geography) FROM admin_units s, admin_units c "
        "WHERE s.code = :s AND c.code = :c",
        s=EAST,
        c=DONGMING,
    )
    # x 1000…1200 m less the notch (50 × 800 / 2) on the ellipsoid, geodesic edges as PostGIS geography takes them
    east = small_district().set_index("code").geometry[EAST]
    expected = ellipsoid_area_m2(east.difference(lon_lat(west_part)), geodesic_edges=True)
    assert unit.uncovered_m2 == pytest.approx(gap) and gap == pytest.approx(expected, abs=0.01)
    text_ = unit.to_text()
    assert f"取代;其中 {gap:.0f} 平方米不在任何下级单元内,该处已无单元网格,请补全下级单元 / " in text_
    assert text_.endswith(
        f"cover its place; {gap:.0f} m² of it lie in none of its children and have no unit grid now: import the "
        "missing child units"
    )
    assert _codes(engine, "SELECT code FROM unit_grids WHERE unit_code = :u", u=EAST) == []
