"""Unit-grid codes survive regeneration (DB11/T 2157: grids are 相对稳定; review47 F1).

Specification: after one unit's boundary changes, ``grids generate`` gives every cell that comes back the same its
old code; a removed cell's code is retired and the cell remembered (``retired_unit_grids``), so when an edit brings
the same cell back it takes that code back; the other new cells get sequence numbers above every number the unit
has ever issued (remembered in ``admin_units.grid_seq_issued``), so a retired code never names another place, not
even after later regenerations; the run says how many codes it kept, restored, newly issued and retired; cases and
components stay on, or move to, the cell that covers them. A first cut numbers in reading order (test_grids_store,
test_cutting).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from sqlalchemy import Engine, text

from gisgrid import case_intake
from gisgrid import cases as svc
from gisgrid.errors import InvalidInput
from gisgrid.grids import workflows
from gisgrid.grids.numbering import CodeChanges, keep_codes
from tests.fixtures import COMMUNITIES, X0, Y0
from tests.test_components_store import LAMP, run, write_csv

C1 = COMMUNITIES[0]  # 桃园社区: x 0…430, y 0…800 in the fixture's metres; its top row of cells is row 7
TOP = int(Y0 // 100) + 7
TO_LONLAT = pyproj.Transformer.from_crs(4547, 4490, always_xy=True)


def _cells(engine: Engine, unit: str = C1) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT code, seq, row, col, ST_AsEWKB(geom) AS g FROM unit_grids WHERE unit_code = :u ORDER BY code"),
            {"u": unit},
        ).all()
    return pd.DataFrame(
        [(r.code, r.seq, r.row, r.col, bytes(r.g)) for r in rows], columns=["code", "seq", "row", "col", "g"]
    )


def _all_codes(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT code FROM unit_grids")).scalars())


def _issued(engine: Engine, unit: str = C1) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(text("SELECT grid_seq_issued FROM admin_units WHERE code = :u"), {"u": unit}).scalar_one()
        )


def _cut_north(engine: Engine, original: bytes, top: float) -> None:
    """C1 keeps only its part south of y = ``top`` metres (in EPSG:4547), as `boundaries replace` would store it."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE admin_units SET geom = ST_Multi(ST_Transform(ST_Intersection(ST_Transform("
                "ST_GeomFromEWKB(:g), 4547), ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4547)), 4490)) WHERE code = :c"
            ),
            {"g": original, "x0": X0 - 100, "y0": Y0 - 100, "x1": X0 + 1000, "y1": Y0 + top, "c": C1},
        )


def _restore(engine: Engine, original: bytes) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE admin_units SET geom = ST_GeomFromEWKB(:g) WHERE code = :c"), {"g": original, "c": C1}
        )


def _retired(engine: Engine, unit: str = C1) -> list[tuple[str, int, int, int]]:
    """The unit's remembered retired cells: (code, seq, row, col)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT code, seq, row, col FROM retired_unit_grids WHERE unit_code = :u ORDER BY code"), {"u": unit}
        ).all()
    return [tuple(r) for r in rows]


def _same_geometry(engine: Engine, a: bytes, b: bytes) -> bool:
    """The two cells cover the same ground to within 0.1 m², a 1 mm band along a side. The boundary's trip through
    EPSG:4547 moves its vertices by ~1e-9°, which can put them either side of a 1e-7° snapping line (snapped copies
    need not be equal), and the shortened east edge, straight in lon/lat, lies ~0.3 mm off the old one."""
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text("SELECT ST_Area(ST_SymDifference(ST_GeomFromEWKB(:a), ST_GeomFromEWKB(:b))::geography) < 0.1"),
                {"a": a, "b": b},
            ).scalar_one()
        )


def _codes(seqs: range) -> list[str]:
    return [f"{C1}{s:03d}" for s in seqs]


def _point(x: float, y: float) -> tuple[float, float]:
    lon, lat = TO_LONLAT.transform(X0 + x, Y0 + y)
    return float(lon), float(lat)


def test_an_edge_cut_keeps_the_codes_of_unchanged_cells_and_never_reuses_retired_ones(  # noqa: PLR0915
    loaded: Engine, services: svc.CaseServices, tmp_path: Path
) -> None:
    with loaded.connect() as conn:
        original = bytes(
            conn.execute(text("SELECT ST_AsEWKB(geom) FROM admin_units WHERE code = :c"), {"c": C1}).scalar_one()
        )
        total = int(conn.execute(text("SELECT count(*) FROM unit_grids")).scalar_one())
    before = _cells(loaded)
    top = before[before["row"] == TOP]
    n, k = len(before), len(top)
    assert (n, k, int(before["seq"].max()), _issued(loaded)) == (32, 4, 32, 32)  # a first cut: 001…032
    assert top["code"].tolist() == _codes(range(1, 5))  # the top row first, west to east
    others = {c: _cells(loaded, c)["code"].tolist() for c in COMMUNITIES[1:]}

    # A case and a lamp in an unchanged cell (row 3, col 1), a case and a lamp in the top row's part that stays.
    now = dt.datetime(2025, 9, 26, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
    places = {"kept": _point(150, 350), "top": _point(150, 720)}
    case = {}
    for name, (lon, lat) in places.items():
        item = case_intake.Intake(class_code="06010", lon=lon, lat=lat, datum="cgcs2000", description=name)
        case[name], _ = case_intake.intake(loaded, services, item, now=now)
    lamps = [{"class_code": LAMP, "lon": lon, "lat": lat, "name": name} for name, (lon, lat) in places.items()]
    run(loaded, write_csv(tmp_path / "lamps.csv", lamps))

    def grid_of(table: str) -> dict[str, str]:
        """What each case (by description) or lamp (by name) records as its unit grid."""
        label = "description" if table == "cases" else "name"
        with loaded.connect() as conn:
            return dict(conn.execute(text(f"SELECT {label}, unit_grid_code FROM {table}")).all())

    kept_cell = before.loc[(before["row"] == TOP - 4) & (before["col"] == int(X0 // 100) + 1), "code"].item()
    assert grid_of("cases") == {"kept": kept_cell, "top": _codes(range(2, 3))[0]}

    # 1. 60 m off the north edge: the top row's four cells become 40 m pieces, every other cell comes back the same.
    _cut_north(loaded, original, 740)
    first = workflows.generate_grids(loaded)

    after = _cells(loaded)
    assert len(after) == n
    old = before.set_index("code")
    for code, g in after.loc[after["row"] != TOP, ["code", "g"]].itertuples(index=False):
        assert _same_geometry(loaded, old.loc[code, "g"], g), code  # the same code for the same place
    new_top = after[after["row"] == TOP].sort_values("col")
    assert new_top["code"].tolist() == _codes(range(33, 37))  # above the 32 issued, west to east
    assert not any(_same_geometry(loaded, a, b) for a in top["g"] for b in new_top["g"])
    assert first.codes == CodeChanges(kept=total - k, issued=_codes(range(33, 37)), retired=_codes(range(1, 5)))
    assert first.codes.to_text() == (
        f"单元网格编码:沿用 {total - k} 个,恢复 0 个,新编 4 个({C1}033、{C1}034、{C1}035、{C1}036),停用 4 个"
        f"({C1}001、{C1}002、{C1}003、{C1}004)(停用的编码不再分配给其他网格) / unit-grid codes: kept {total - k}, "
        f"restored 0, newly issued 4 ({C1}033, {C1}034, {C1}035, {C1}036), retired 4 ({C1}001, {C1}002, {C1}003, "
        f"{C1}004) (a retired code is never given to another grid)"
    )
    assert _issued(loaded) == 36
    assert {c: _cells(loaded, c)["code"].tolist() for c in COMMUNITIES[1:]} == others
    # The case and lamp in the unchanged cell stay on its code; those in the cut top cell move to its new code.
    assert grid_of("cases") == {"kept": kept_cell, "top": f"{C1}034"}
    assert grid_of("components") == {"kept": kept_cell, "top": f"{C1}034"}

    # 2. Cut at y = 700: the top row goes, nothing else changes; the unit's highest stored number drops to 32.
    _cut_north(loaded, original, 700)
    second = workflows.generate_grids(loaded)
    assert second.codes == CodeChanges(kept=total - k, issued=[], retired=_codes(range(33, 37)))
    assert _cells(loaded)["seq"].max() == 32 and _issued(loaded) == 36
    cols = top.sort_values("col")["col"].tolist()
    full_top = [(c, s, TOP, col) for c, s, col in zip(_codes(range(1, 5)), range(1, 5), cols, strict=True)]
    cut_top = [(c, s, TOP, col) for c, s, col in zip(_codes(range(33, 37)), range(33, 37), cols, strict=True)]
    assert _retired(loaded) == full_top + cut_top  # both cuts of the top row remembered, with their lattice cells

    # 3. The boundary restored: the top row comes back the same as it was cut first and takes 001…004 back; the
    # case and the lamp there name their first cell again. Nothing new is issued.
    _restore(loaded, original)
    third = workflows.generate_grids(loaded)
    assert third.codes == CodeChanges(kept=total - k, issued=[], retired=[], restored=_codes(range(1, 5)))
    assert third.codes.to_text() == (
        f"单元网格编码:沿用 {total - k} 个,恢复 4 个({C1}001、{C1}002、{C1}003、{C1}004),新编 0 个,停用 0 个 / "
        f"unit-grid codes: kept {total - k}, restored 4 ({C1}001, {C1}002, {C1}003, {C1}004), newly issued 0, "
        "retired 0"
    )
    restored = _cells(loaded)
    assert restored["code"].tolist() == before["code"].tolist()
    assert restored["g"].tolist() == before["g"].tolist()  # the very cells of the first cut
    assert grid_of("cases") == {"kept": kept_cell, "top": f"{C1}002"}
    assert grid_of("components") == {"kept": kept_cell, "top": f"{C1}002"}
    assert _retired(loaded) == cut_top and _issued(loaded) == 36

    # 4. Cut at y = 740 again: the 40 m pieces come back the same and take 033…036 back; 001…004 retire again.
    _cut_north(loaded, original, 740)
    fourth = workflows.generate_grids(loaded)
    assert fourth.codes == CodeChanges(
        kept=total - k, issued=[], retired=_codes(range(1, 5)), restored=_codes(range(33, 37))
    )
    assert grid_of("cases") == {"kept": kept_cell, "top": f"{C1}034"}
    assert _retired(loaded) == full_top and _issued(loaded) == 36

    # 5. Cut at y = 750: the top row's places are cut another way, equal to neither remembered cut: new codes
    # 037…040, never a retired one; the 40 m pieces retire.
    _cut_north(loaded, original, 750)
    fifth = workflows.generate_grids(loaded)
    assert fifth.codes == CodeChanges(kept=total - k, issued=_codes(range(37, 41)), retired=_codes(range(33, 37)))
    assert _cells(loaded).query("row == @TOP").sort_values("col")["code"].tolist() == _codes(range(37, 41))
    assert not _all_codes(loaded) & set(_codes(range(1, 5)) + _codes(range(33, 37)))
    assert _retired(loaded) == full_top + cut_top and _issued(loaded) == 40

    # 6. Restored again: 001…004 back once more, 037…040 retire; no number is issued.
    _restore(loaded, original)
    sixth = workflows.generate_grids(loaded)
    assert sixth.codes == CodeChanges(
        kept=total - k, issued=[], retired=_codes(range(37, 41)), restored=_codes(range(1, 5))
    )
    assert _cells(loaded)["code"].tolist() == before["code"].tolist() and _issued(loaded) == 40
    assert [c for c, *_ in _retired(loaded)] == _codes(range(33, 41))

    # 7. Nothing changed: every code is kept, none restored, issued or retired.
    again = workflows.generate_grids(loaded)
    assert again.codes == CodeChanges(kept=total, issued=[], retired=[])
    assert _cells(loaded)["code"].tolist() == before["code"].tolist()


def test_a_unit_that_would_run_past_999_is_refused_naming_it(loaded: Engine) -> None:
    with loaded.begin() as conn:
        conn.execute(text("UPDATE admin_units SET grid_seq_issued = 997 WHERE code = :c"), {"c": C1})
        conn.execute(text("DELETE FROM unit_grids WHERE unit_code = :c AND row = :r"), {"c": C1, "r": TOP})
    codes = _all_codes(loaded)

    with pytest.raises(InvalidInput) as err:
        workflows.generate_grids(loaded)  # the top row's 4 cells would need 998…1001

    assert str(err.value).startswith(
        f"单元 {C1}(桃园社区)的单元网格序号将用到 1001,超过 3 位序号的上限 999(已停用的编码不再分配);未写入任何数据 / "
        f"unit {C1} (桃园社区) would need unit-grid sequence number 1001 (28 of its 32 cells keep their code; "
    )
    assert _all_codes(loaded) == codes and _issued(loaded) == 997  # nothing written


def test_generate_takes_the_units_before_the_grids_so_a_recode_cannot_deadlock_with_it(loaded: Engine) -> None:
    """Generate now writes ``admin_units`` (the highest number issued). Had it locked units' rows after a recode took
    the units' table, it would wait for the grids the recode holds while the recode waits for those rows. It takes
    the units first, as the recode does: while a recode holds them, it holds nothing the recode needs."""
    done: list[object] = []

    def generate() -> None:
        try:
            done.append(workflows.generate_grids(loaded))
        except Exception as exc:  # reported below
            done.append(exc)

    thread = threading.Thread(target=generate)
    with loaded.connect() as recode, recode.begin():  # what recode_unit holds, then the rows it rewrites
        recode.execute(text("SET LOCAL lock_timeout = '30s'"))
        recode.execute(text("LOCK TABLE admin_units IN SHARE ROW EXCLUSIVE MODE"))
        recode.execute(text("LOCK TABLE unit_grids, management_grids IN ACCESS EXCLUSIVE MODE"))
        me = recode.execute(text("SELECT pg_backend_pid()")).scalar_one()
        thread.start()
        deadline = time.monotonic() + 120  # the cut comes first: long enough for a busy machine
        while not _waits_for_a_lock(loaded, me):
            assert thread.is_alive() and time.monotonic() < deadline, done
            time.sleep(0.05)
        recode.execute(text("UPDATE admin_units SET name = name WHERE code = :c"), {"c": C1})  # … not holding it
    thread.join(120)
    assert len(done) == 1 and isinstance(done[0], workflows.GenerateResult), done
    assert done[0].codes == CodeChanges(kept=96, issued=[], retired=[])


def _waits_for_a_lock(engine: Engine, other_than: int) -> bool:
    with engine.connect() as probe:
        return bool(
            probe.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted AND pid <> :me "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
                ),
                {"me": other_than},
            ).scalar_one()
        )


def _frame(rows: list[tuple[str, int, int, int, shapely.Geometry]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "code": [f"{C1}{s:03d}" for _, s, _, _, _ in rows],
            "unit_code": [u for u, _, _, _, _ in rows],
            "district_code": C1[:6],
            "street_code": C1[:9],
            "community_code": [u for u, _, _, _, _ in rows],
            "community_name": "桃园社区",
            "seq": [s for _, s, _, _, _ in rows],
            "row": [r for _, _, r, _, _ in rows],
            "col": [c for _, _, _, c, _ in rows],
        },
        geometry=[g for *_, g in rows],
        crs=4490,
    )


def test_keep_codes_matches_pieces_of_the_same_lattice_cell_within_a_centimetre() -> None:
    box = shapely.box(113.0, 34.0, 113.001, 34.001)
    shifted = shapely.box(113.0 + 5e-8, 34.0, 113.001 + 5e-8, 34.001)  # ~5 mm: the same cell
    moved = shapely.box(113.0 + 5e-6, 34.0, 113.001 + 5e-6, 34.001)  # ~0.5 m: another cell
    start = shapely.Polygon(np.roll(np.asarray(box.exterior.coords)[:-1], 2, axis=0))  # another first vertex
    stored = _frame([(C1, 1, 0, 0, box), (C1, 2, 0, 1, box), (C1, 3, 0, 2, box), (C1, 4, 1, 0, box)])
    cells = _frame([(C1, 1, 0, 0, shifted), (C1, 2, 0, 1, moved), (C1, 3, 0, 2, start), (C1, 4, 2, 0, box)])

    out, changes, high = keep_codes(cells, stored, pd.Series({C1: 6}))

    # (0,0) and (0,2) are kept; (0,1) moved and (2,0) is another lattice cell: 007, 008 in reading order.
    assert out[["code", "row", "col"]].values.tolist() == [
        [f"{C1}001", 0, 0],
        [f"{C1}003", 0, 2],
        [f"{C1}007", 0, 1],
        [f"{C1}008", 2, 0],
    ]
    assert changes == CodeChanges(kept=2, issued=[f"{C1}007", f"{C1}008"], retired=[f"{C1}002", f"{C1}004"])
    assert high.to_dict() == {C1: 8}

    fresh, first, high = keep_codes(cells, stored.iloc[:0], pd.Series(dtype="int64"))
    assert fresh["code"].tolist() == _codes(range(1, 5)) and high.to_dict() == {C1: 4}  # a first cut: reading order
    assert first == CodeChanges(kept=0, issued=_codes(range(1, 5)), retired=[])


def test_keep_codes_gives_a_retired_code_back_only_to_a_cell_equal_to_it() -> None:
    """A new cell equal to a remembered retired cell (same unit, row and col, within 1e-7°) takes its code back; a
    stored cell it also equals keeps priority; a retired cell moved ~0.5 m, of another lattice cell or of another
    unit gives nothing, and its number is never issued again."""
    other = COMMUNITIES[1]
    box = shapely.box(113.0, 34.0, 113.001, 34.001)
    shifted = shapely.box(113.0 + 5e-8, 34.0, 113.001 + 5e-8, 34.001)  # ~5 mm: the same cell
    moved = shapely.box(113.0 + 5e-6, 34.0, 113.001 + 5e-6, 34.001)  # ~0.5 m: another cell
    stored = _frame([(C1, 1, 0, 0, box), (C1, 5, 0, 4, box)])
    retired = _frame(
        [
            (C1, 2, 0, 1, box),  # comes back shifted: restored
            (C1, 3, 0, 2, moved),  # its place re-cut 0.5 m off: not restored
            (C1, 4, 0, 3, box),  # not cut again: stays retired
            (C1, 6, 0, 4, box),  # equal to the stored 005 too: the stored code stays
            (other, 7, 0, 5, box),  # another unit's retired cell: never this unit's
        ]
    )
    retired.loc[4, "code"] = f"{other}007"
    cells = _frame(
        [(C1, 1, 0, 0, box), (C1, 2, 0, 1, shifted), (C1, 3, 0, 2, box), (C1, 4, 0, 4, box), (C1, 5, 0, 5, box)]
    )

    out, changes, high = keep_codes(cells, stored, pd.Series({C1: 7}), retired)

    assert out[["code", "row", "col"]].values.tolist() == [
        [f"{C1}001", 0, 0],
        [f"{C1}002", 0, 1],
        [f"{C1}005", 0, 4],
        [f"{C1}008", 0, 2],
        [f"{C1}009", 0, 5],
    ]
    assert changes == CodeChanges(kept=2, issued=[f"{C1}008", f"{C1}009"], retired=[], restored=[f"{C1}002"])
    assert high.to_dict() == {C1: 9}
    # Without the memory (retired not given) the same cell is new: what the numbering did before it.
    _, forgotten, _ = keep_codes(cells, stored, pd.Series({C1: 7}))
    assert forgotten == CodeChanges(kept=2, issued=_codes(range(8, 11)), retired=[], restored=[])
