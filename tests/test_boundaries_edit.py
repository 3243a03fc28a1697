"""`gisgrid boundaries replace CODE FILE` and `gisgrid boundaries remove CODE` (left46 item 3): one stored unit's
boundary replaced from a file under the same code, or the unit removed — refused, zh-CN first, naming how many
records of each kind and which still name it; `--dry-run`; all or nothing; a refusal exits 3 as a recode's does."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gisgrid.boundaries import BoundaryOptions, read_boundaries
from gisgrid.cli import app
from gisgrid.errors import Conflict, InvalidInput, NotFound, Reason
from gisgrid.grids import store, workflows
from gisgrid.settings import Settings
from tests.fixtures import (
    COMMUNITIES,
    METRIC,
    STREETS,
    X0,
    Y0,
    ellipsoid_area_m2,
    load_small_district,
    lon_lat,
    small_district,
    write_small_district,
)
from tests.test_recode import Place, env_of, populate, snapshot

runner = CliRunner()
DONGMING = COMMUNITIES[2]  # 东明社区, the only community of street 2 (东关街道)
ZIJING = COMMUNITIES[1]  # 紫荆社区, west of 东明社区


@pytest.fixture
def busy(clean_db: Engine, settings: Settings, tmp_path: Path) -> tuple[Engine, Place]:
    """The small district with grids and tiers, and in 东明社区 a case in progress, a finished one and a lamp."""
    return clean_db, populate(clean_db, settings, tmp_path, (), DONGMING)


def cli(settings: Settings, *args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, ["boundaries", *args], env=env_of(settings))
    return r.exit_code, r.stdout, r.stderr


def one(engine: Engine, sql: str, **params: object) -> object:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def codes(engine: Engine, sql: str, **params: object) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(text(sql), params).scalars())


def shapes(engine: Engine) -> list[tuple[str, str, float]]:
    """Every unit's and management grid's boundary (as EWKB hex) and area: what a replace writes."""
    with engine.connect() as conn:
        return sorted(
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT code, encode(ST_AsEWKB(geom), 'hex'), area_m2 FROM admin_units UNION ALL "
                    "SELECT code, encode(ST_AsEWKB(geom), 'hex'), tier FROM management_grids"
                )
            )
        )


def community_file(
    folder: Path, code: str, east: float, *, west: float = 700, parent: str = STREETS[1], name: str = "c.geojson"
) -> Path:
    """东明社区's place (x 700…1200 m of the district) with its edges at ``west`` and ``east`` m, alone in a file."""
    c3 = shapely.Polygon([(X0 + x, Y0 + y) for x, y in [(west, 0), (east, 0), (east, 800), (west, 800)]])
    gdf = gpd.GeoDataFrame(
        [{"code": code, "name": "东明社区", "level": "community", "parent_code": parent}], geometry=[c3], crs=METRIC
    ).to_crs(4490)
    path = folder / name
    gdf.to_file(path, driver="GeoJSON")
    return path


def place(code: str) -> shapely.Polygon:
    """The small district's unit ``code`` as its file gives it (lon/lat)."""
    units = small_district()
    return units.geometry[units["code"] == code].item()


def narrowed_to(east: float) -> float:
    """The ellipsoidal area of :func:`community_file`'s 东明社区 with its east edge at ``east`` m."""
    return ellipsoid_area_m2(lon_lat(shapely.box(X0 + 700, Y0, X0 + east, Y0 + 800)))


def test_remove_refuses_a_unit_anything_names_saying_how_many_and_which(
    busy: tuple[Engine, Place], settings: Settings
) -> None:
    engine, place = busy
    case_nos = codes(engine, "SELECT case_no FROM cases")
    cells = place.cells + codes(engine, "SELECT code FROM unit_grids WHERE unit_code = :c", c=DONGMING)
    cells = sorted(set(cells))
    assert len(cells) > 5 and len(place.tier3) >= 1
    before = snapshot(engine)
    for extra in ([], ["--dry-run"]):
        status, out, err = cli(settings, "remove", DONGMING, *extra)
        assert (status, out) == (3, ""), err
        assert err == (
            f"error [unit_in_use]: remove {DONGMING} refused: 社区 {DONGMING} 东明社区 仍被引用,不能删除:"
            f"单元网格 {len(cells)} 个({'、'.join(cells[:5])}、…)、"
            f"三级网格 {len(place.tier3)} 个({'、'.join(place.tier3[:5])})、"
            f"案件 2 件(其中已办结 1 件:{'、'.join(case_nos)})、部件 1 个({place.component});"
            "请先删除或移走这些记录(有案件的区划不能删除,可用 gisgrid boundaries replace 修改其边界) / "
            f"community {DONGMING} (东明社区) is still referenced: {len(cells)} unit grid(s) "
            f"({', '.join(cells[:5])}, …), {len(place.tier3)} tier-3 grid(s) ({', '.join(place.tier3[:5])}), "
            f"2 case(s) (1 finished: {', '.join(case_nos)}), 1 component(s) ({place.component}); it cannot be "
            "removed while anything names it (a unit with cases never can: change its boundary with gisgrid "
            "boundaries replace); nothing written\n"
        )
        assert snapshot(engine) == before
    # The street: its community first.
    status, _, err = cli(settings, "remove", STREETS[1])
    assert status == 3 and f"街道 {STREETS[1]} 东关街道 仍被引用,不能删除:下级单元 1 个({DONGMING})、" in err
    with pytest.raises(Conflict) as refused:
        workflows.remove_unit(engine, DONGMING)
    assert refused.value.reason == Reason.UNIT_IN_USE
    assert [(i["field"], i["code"], i["table"], i["count"]) for i in refused.value.detail] == [
        ("code", "unit_in_use", "unit_grids", len(cells)),
        ("code", "unit_in_use", "management_grids", len(place.tier3)),
        ("code", "unit_in_use", "cases", 2),
        ("code", "unit_in_use", "components", 1),
    ]
    assert refused.value.detail[2]["first"] == case_nos
    assert snapshot(engine) == before


def test_remove_of_a_unit_nothing_names_takes_it_and_its_tier_grid_only(
    clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    """Boundaries imported, no grids cut yet (a unit imported by mistake): 紫荆社区 goes, with its tier-2 grid."""
    workflows.import_boundaries(clean_db, write_small_district(tmp_path), BoundaryOptions())
    before = snapshot(clean_db)
    status, out, err = cli(settings, "remove", ZIJING, "--dry-run")
    assert (status, err) == (0, "")
    assert out == f"would remove community {ZIJING} 紫荆社区 and its tier-2 grid\ndry run: nothing written\n"
    assert snapshot(clean_db) == before
    status, out, err = cli(settings, "remove", ZIJING)
    assert (status, err, out) == (0, "", f"removed community {ZIJING} 紫荆社区 and its tier-2 grid\n")
    units = codes(clean_db, "SELECT code FROM admin_units")
    assert units == sorted({"419902", *STREETS, *COMMUNITIES} - {ZIJING})
    assert codes(clean_db, "SELECT code FROM management_grids") == sorted({*STREETS, *COMMUNITIES} - {ZIJING})
    status, _, err = cli(settings, "remove", ZIJING)  # gone: not found, as recode says it
    assert status == 3
    assert err.startswith(f"error [unit_not_found]: remove {ZIJING} refused: 没有编码为 {ZIJING} 的行政区划 / ")
    with pytest.raises(NotFound):
        workflows.remove_unit(clean_db, ZIJING)


def test_remove_refuses_a_unit_that_has_issued_unit_grid_codes(
    clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    """fixcrs (3): a unit's highest issued sequence number and its retired cells go with its row (ON DELETE
    CASCADE), so removed and imported again it would number from 001, giving codes that named other places to new
    cells. A unit that was ever cut keeps a unit grid (each cut gives every unit a cell) and is refused for that;
    should all its cells be retired, it is still refused, for its codes, and nothing is written."""
    load_small_district(clean_db, tmp_path, tiers=False)
    cells = codes(clean_db, "SELECT code FROM unit_grids WHERE unit_code = :c", c=DONGMING)
    assert cells == [f"{DONGMING}{s:03d}" for s in range(1, 41)]
    with clean_db.begin() as conn:  # every cell retired, as a regeneration records them
        store.record_retired(conn, cells, [])
        conn.execute(text("DELETE FROM unit_grids WHERE unit_code = :c"), {"c": DONGMING})
    before = snapshot(clean_db)
    listed = [f"{DONGMING}{s:03d}" for s in range(1, 6)]
    for extra in ([], ["--dry-run"]):
        status, out, err = cli(settings, "remove", DONGMING, *extra)
        assert (status, out) == (3, ""), err
        assert err == (
            f"error [unit_in_use]: remove {DONGMING} refused: 社区 {DONGMING} 东明社区 已发放单元网格编码(序号至 040,"
            f"停用 40 个:{'、'.join(listed)}、…),不能删除:删除会丢失这些编号记录,同一编码的区划再次导入时将从 001 "
            "起重新编号,把曾指其他地点的编码发给新网格;请用 gisgrid boundaries replace 修改其边界 / community "
            f"{DONGMING} (东明社区) has issued unit-grid codes (sequence up to 040, 40 retired: "
            f"{', '.join(listed)}, …); removing it would forget them, and a unit imported again under its code "
            "would number from 001, giving codes that named other places to new cells: change its boundary with "
            "gisgrid boundaries replace; "
            "nothing written\n"
        )
        assert snapshot(clean_db) == before
    with pytest.raises(Conflict) as refused:
        workflows.remove_unit(clean_db, DONGMING)
    assert refused.value.reason == Reason.UNIT_IN_USE
    assert [(i["table"], i["count"], i["first"], i["issued"]) for i in refused.value.detail] == [
        ("retired_unit_grids", 40, listed, 40)
    ]
    # Its cut again: every cell equal to a retired one takes its code back; nothing is issued anew.
    result = workflows.generate_grids(clean_db)
    assert (result.codes.restored, result.codes.issued) == (cells, [])
    assert codes(clean_db, "SELECT code FROM unit_grids WHERE unit_code = :c", c=DONGMING) == cells
    assert one(clean_db, "SELECT count(*) FROM retired_unit_grids") == 0


def test_replace_takes_the_file_s_boundary_under_the_same_code(
    busy: tuple[Engine, Place], settings: Settings, tmp_path: Path
) -> None:
    engine, _ = busy
    new = community_file(tmp_path, DONGMING, 1100)  # 100 m narrower in the east
    area = lambda: float(one(engine, "SELECT area_m2 FROM admin_units WHERE code = :c", c=DONGMING))  # noqa: E731
    old_area = area()
    cells = int(one(engine, "SELECT count(*) FROM unit_grids WHERE unit_code = :c", c=DONGMING))
    before = snapshot(engine), shapes(engine)
    status, out, err = cli(settings, "replace", DONGMING, str(new), "--dry-run")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"community {DONGMING} 东明社区: boundary would be replaced, area {old_area:,.1f} m² → ")
    assert lines[1:] == [
        f"its {cells} unit grid(s) were cut from the old boundary: re-cut them with gisgrid grids generate "
        "--district 419902 (the cases and components in them are located again)",
        "dry run: nothing written",
    ]
    # Inside its street, but the strip it gives up is in no community now: the gap is said (tests/test_replace_gaps).
    assert err.startswith(f"warning: 上级街道 {STREETS[1]} 东关街道 内有 59,998.7 m² 不属于任何社区(缺口,约在 ")
    assert err.count("\n") == 1
    assert (snapshot(engine), shapes(engine)) == before

    status, out, err = cli(settings, "replace", DONGMING, str(new))
    assert status == 0, err
    assert out.startswith(f"community {DONGMING} 东明社区: boundary replaced, area {old_area:,.1f} m² → {area():,.1f}")
    assert "dry run" not in out
    # On the ellipsoid, as stored (to 0.01 m²): 500 × 800 m less a notch, then 400 × 800 m, drawn in the GK zone,
    # whose scale (~1 + 1e-5 here) makes them ~8 and ~7 m² smaller than 380,000 and 320,000.
    assert (old_area, area()) == pytest.approx((ellipsoid_area_m2(place(DONGMING)), narrowed_to(1100)), abs=0.02)
    # Stored as the file gives it; the tier-2 grid follows; name, parent and flags stay.
    assert one(
        engine,
        "SELECT ST_Equals(u.geom, m.geom) AND u.name = '东明社区' AND u.parent_code = :s AND NOT u.code_assigned "
        "FROM admin_units u JOIN management_grids m ON m.code = u.code WHERE u.code = :c",
        c=DONGMING,
        s=STREETS[1],
    )
    stored_wide = one(engine, "SELECT ST_XMax(ST_Transform(geom, 4547)) FROM admin_units WHERE code = :c", c=DONGMING)
    assert stored_wide == pytest.approx(X0 + 1100, abs=0.01)


@pytest.mark.parametrize(
    ("code", "file_code", "west", "reason", "said"),
    [
        (DONGMING, DONGMING, 650, Reason.OVERLAPS_STORED_UNIT, f"{DONGMING} 东明社区 × stored {ZIJING} 紫荆社区"),
        (DONGMING, "419902002009", 700, Reason.UNIT_NOT_FOUND, f"c.geojson 中没有编码为 {DONGMING} 的区划 / "),
        ("419902002009", "419902002009", 700, Reason.UNIT_NOT_FOUND, "没有编码为 419902002009 的行政区划 / "),
    ],
)
def test_a_refused_replace_names_the_reason_exits_2_and_writes_nothing(
    busy: tuple[Engine, Place],
    settings: Settings,
    tmp_path: Path,
    code: str,
    file_code: str,
    west: float,
    reason: Reason,
    said: str,
) -> None:
    engine, _ = busy
    path = community_file(tmp_path, file_code, 1200, west=west)  # 650: 50 m into 紫荆社区
    before = snapshot(engine), shapes(engine)
    for extra in ([], ["--dry-run"]):
        status, out, err = cli(settings, "replace", code, str(path), *extra)
        assert (status, out) == (3, ""), err
        assert err.startswith(f"error [{reason}]: replace {code} refused: ") and said in err, err
        assert err.endswith("; nothing written\n")
        assert (snapshot(engine), shapes(engine)) == before
    kind = NotFound if code != DONGMING else InvalidInput
    with pytest.raises(kind) as refused:
        workflows.replace_unit_boundary(engine, code, path, read_boundaries(path, BoundaryOptions()))
    assert refused.value.reason == reason


def test_a_replace_file_that_cannot_be_read_is_an_import_error(
    clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    workflows.import_boundaries(clean_db, write_small_district(tmp_path), BoundaryOptions())
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    r = runner.invoke(app, ["boundaries", "replace", DONGMING, str(bad)], env=env_of(settings))
    assert r.exit_code == 1 and isinstance(r.exception, InvalidInput)  # main() prints it and exits 1
    assert "no features" in r.exception.message


def test_replace_warns_of_a_child_left_outside_the_new_boundary(
    clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    """东关街道 narrowed by 100 m in the east leaves that strip of its community 东明社区 outside it: said on stderr
    with the area, as an import reports gaps, and stored (the analyst replaces the community next)."""
    workflows.import_boundaries(clean_db, write_small_district(tmp_path), BoundaryOptions())
    street = tmp_path / "street.geojson"
    drawn = shapely.Polygon([(X0 + 700, Y0), (X0 + 1100, Y0), (X0 + 1100, Y0 + 800), (X0 + 700, Y0 + 800)])
    gdf = gpd.GeoDataFrame(
        [{"code": STREETS[1], "name": "东关街道", "level": "street", "parent_code": "419902"}],
        geometry=[drawn],
        crs=METRIC,
    ).to_crs(4490)
    gdf.to_file(street, driver="GeoJSON")
    status, out, err = cli(settings, "replace", STREETS[1], str(street))
    assert status == 0, err
    assert out.startswith(f"street {STREETS[1]} 东关街道: boundary replaced, area ")
    assert "unit grid" not in out  # none cut yet
    child, gap = err.splitlines()
    assert child.startswith("warning: ") and child.endswith(f" m² of its child {DONGMING} outside the new boundary")
    m2 = float(child.removeprefix("warning: ").split(" m²")[0].replace(",", ""))
    # x 1100…1200 m less the notch (50 × 800 / 2), on the ellipsoid (PostGIS geography: geodesic edges), said to 0.1
    outside = place(DONGMING).difference(lon_lat(drawn))
    assert m2 == pytest.approx(ellipsoid_area_m2(outside, geodesic_edges=True), abs=0.05)
    # The strip is a gap in the district too (its boundary is kept): said with the same area.
    assert gap.startswith("warning: 上级区 419902 测试区 内有 59,998.7 m² 不属于任何街道(缺口,约在 ")
