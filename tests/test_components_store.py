"""Components in PostGIS: bulk import that loses nothing, identifiers, upsert, history, queries."""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from gisgrid import geodesy
from gisgrid.boundaries import BoundaryOptions
from gisgrid.components_store import (
    WARNINGS_SHOWN,
    ComponentQuery,
    ImportOptions,
    ImportSummary,
    UnitGrids,
    catalogue_for,
    export_components,
    import_components,
    query_components,
    repeated_places,
    retire_component,
)
from gisgrid.errors import InvalidInput, Reason
from gisgrid.grids import workflows
from gisgrid.settings import Settings
from tests.fixtures import COMMUNITIES, DISTRICT, load_small_district, small_district

LAMP, BIN = "01037", "03005"
CATALOGUE = catalogue_for(Settings())


@pytest.fixture
def district(clean_db: Engine, tmp_path: Path) -> Engine:
    load_small_district(clean_db, tmp_path)
    return clean_db


def inside_points(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    geom = small_district().query("level == 'district'").geometry.iloc[0]
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = geom.bounds
    xs, ys = rng.uniform(x0, x1, 4 * n), rng.uniform(y0, y1, 4 * n)
    keep = shapely.contains_xy(geom, xs, ys)
    return xs[keep][:n], ys[keep][:n]


def write_csv(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False, encoding="utf-8")
    return path


def run(engine: Engine, path: Path, **kw) -> object:
    return import_components(engine, path, CATALOGUE, ImportOptions(**kw))


def count(engine: Engine, sql: str, **p: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), p).scalar_one())


def test_the_summary_lists_the_first_warnings_and_counts_the_rest() -> None:
    n = WARNINGS_SHOWN + 2
    warnings = pd.DataFrame({"row": range(2, n + 2), "field": "YHDWMC", "value": "x", "reason": "name differs"})
    lines = ImportSummary(read=n, unchanged=n, warnings=warnings, written=True).to_text().splitlines()
    assert lines[0] == f"read {n}, inserted 0, updated 0, unchanged {n}, refused 0"
    assert lines[1:] == [f"warning: row {r} field YHDWMC: name differs" for r in range(2, WARNINGS_SHOWN + 2)] + [
        "… and 2 more warning(s) (all with --errors FILE)"
    ]


def test_the_warnings_of_accepted_rows_are_written_beside_the_refusals(district: Engine, tmp_path: Path) -> None:
    """With --errors every warning is written (the summary shows the first 20), beside the refusals' file; a
    refused row is not warned about as well."""
    xs, ys = inside_points(WARNINGS_SHOWN + 3, seed=5)
    lamp_dept = "990000000000000012"  # 城市照明管理处
    rows = [
        {"class_code": LAMP, "ZGBMDM": lamp_dept, "ZGBMMC": "路灯所", "lon": x, "lat": y}
        for x, y in zip(xs, ys, strict=True)
    ]
    rows[-1]["lon"] = 0.0  # refused (0, 0) and its name differs too
    rows[-1]["lat"] = 0.0
    summary = run(district, write_csv(tmp_path / "c.csv", rows), errors_path=tmp_path / "refused.csv")
    accepted = WARNINGS_SHOWN + 2
    assert (summary.inserted, summary.refused, len(summary.warnings)) == (accepted, 1, accepted)
    assert summary.warnings_path == tmp_path / "refused.warnings.csv"
    written = pd.read_csv(summary.warnings_path, encoding="utf-8-sig", dtype=str)
    assert written["row"].tolist() == [str(r) for r in range(2, accepted + 2)]
    assert set(written["field"]) == {"ZGBMMC"}
    assert summary.to_text().splitlines()[-3:-1] == [
        f"… and 2 more warning(s) (all in {tmp_path / 'refused.warnings.csv'})",
        f"first refusal: row {accepted + 2} field lon/lat: 坐标为 (0, 0):是占位值,不是位置 / coordinates are (0, 0): a "
        "placeholder, not a location",
    ]


def test_import_generates_identifiers_and_assigns_grids(district: Engine, tmp_path: Path) -> None:
    xs, ys = inside_points(5)
    rows = [
        {"class_code": LAMP if i < 3 else BIN, "lon": x, "lat": y} for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    ]
    summary = run(district, write_csv(tmp_path / "c.csv", rows))
    assert (summary.read, summary.inserted, summary.updated, summary.refused) == (5, 5, 0, 0)
    assert summary.generated_ids == 5
    with district.connect() as conn:
        got = conn.execute(
            text("SELECT id, class_code, unit_grid_code, community_code, main_dept_code FROM components ORDER BY id")
        ).all()
        history = conn.execute(text("SELECT action, source FROM component_history ORDER BY id")).all()
    assert [r.id for r in got] == [
        f"{DISTRICT}{LAMP}000001",
        f"{DISTRICT}{LAMP}000002",
        f"{DISTRICT}{LAMP}000003",
        f"{DISTRICT}{BIN}000001",
        f"{DISTRICT}{BIN}000002",
    ]
    for r in got:
        assert r.unit_grid_code is not None and r.unit_grid_code.startswith(r.community_code)
        assert r.community_code in COMMUNITIES
    assert {r.main_dept_code for r in got if r.class_code == LAMP} == {"990000000000000012"}  # class default
    assert [h.action for h in history] == ["create"] * 5 and history[0].source == "c.csv"
    # the grid assignment agrees with PostGIS containment
    assert (
        count(
            district,
            "SELECT count(*) FROM components c JOIN unit_grids g ON g.code = c.unit_grid_code "
            "WHERE NOT ST_Intersects(g.geom, c.geom)",
        )
        == 0
    )


def test_refused_rows_go_to_the_errors_file_and_the_rest_is_written(district: Engine, tmp_path: Path) -> None:
    (x, x2), (y, y2) = inside_points(2)
    rows = [
        {"class_code": LAMP, "lon": x, "lat": y, "initial_date": "20240105"},  # row 2: fine
        {"class_code": LAMP, "lon": "", "lat": y},  # 3: missing lon
        {"class_code": LAMP, "lon": y, "lat": x},  # 4: swapped
        {"class_code": LAMP, "lon": 0, "lat": 0},  # 5: (0,0)
        {"class_code": LAMP, "lon": 116.4, "lat": 39.9},  # 6: outside the district
        {"class_code": "01999", "lon": x, "lat": y},  # 7: unknown class
        {"id": "4199020103700000", "class_code": LAMP, "lon": x, "lat": y},  # 8: 16 digits
        {"id": f"{DISTRICT}{LAMP}000777", "class_code": LAMP, "lon": x2, "lat": y2},  # 9: fine (not row 2's place)
        {"id": f"{DISTRICT}{LAMP}000777", "class_code": LAMP, "lon": x2, "lat": y2},  # 10: duplicate in file
        {"class_code": LAMP, "lon": x, "lat": y, "initial_date": "2024-02-30"},  # 11: impossible date
        {"class_code": LAMP, "lon": x, "lat": y, "maint_dept": "990000000000009999"},  # 12: unknown dept
    ]
    errors = tmp_path / "errors.csv"
    summary = run(district, write_csv(tmp_path / "c.csv", rows), errors_path=errors)
    assert (summary.read, summary.inserted, summary.refused) == (11, 2, 9)
    table = pd.read_csv(errors, dtype=str, encoding="utf-8-sig")
    assert list(table.columns) == ["row", "field", "value", "reason"]
    got = {(int(r.row), r.field) for r in table.itertuples()}
    assert got == {
        (3, "lon"),
        (4, "lon/lat"),  # the file's columns (review38 U1)
        (5, "lon/lat"),
        (6, "lon/lat"),
        (7, "class_code"),
        (8, "id"),
        (10, "id"),
        (11, "initial_date"),
        (12, "maint_dept"),
    }
    reasons = dict(((int(r.row), r.field), r.reason) for r in table.itertuples())
    assert "swapped" in reasons[(4, "lon/lat")]
    assert "first used at row 9" in reasons[(10, "id")]
    assert count(district, "SELECT count(*) FROM components") == 2


def test_all_or_nothing_and_dry_run_write_nothing(district: Engine, tmp_path: Path) -> None:
    xs, ys = inside_points(2)
    rows = [{"class_code": LAMP, "lon": xs[0], "lat": ys[0]}, {"class_code": "bad", "lon": xs[1], "lat": ys[1]}]
    path = write_csv(tmp_path / "c.csv", rows)
    s1 = run(district, path, all_or_nothing=True)
    assert (s1.refused, s1.inserted, s1.written) == (1, 0, False)
    s2 = run(district, path, dry_run=True)
    assert (s2.refused, s2.written) == (1, False)
    assert count(district, "SELECT count(*) FROM components") == 0
    assert count(district, "SELECT count(*) FROM component_serials") == 0  # no serial was spent


def test_dry_run_says_what_it_would_insert_and_update_and_writes_nothing(district: Engine, tmp_path: Path) -> None:
    xs, ys = inside_points(4)
    ids = [f"{DISTRICT}{LAMP}000010", f"{DISTRICT}{LAMP}000011"]
    base = [{"id": i, "class_code": LAMP, "lon": x, "lat": y} for i, x, y in zip(ids, xs[:2], ys[:2], strict=True)]
    run(district, write_csv(tmp_path / "a.csv", base))
    rows = [
        dict(base[0], status="破损"),  # an update
        base[1],  # unchanged
        {"class_code": LAMP, "lon": xs[2], "lat": ys[2]},  # two new ones, identifiers generated
        {"class_code": BIN, "lon": xs[3], "lat": ys[3]},
        {"class_code": "bad", "lon": xs[3], "lat": ys[3]},  # refused
    ]
    before = (
        count(district, "SELECT count(*) FROM component_history"),
        count(district, "SELECT count(*) FROM components"),
    )
    summary = run(district, write_csv(tmp_path / "b.csv", rows), dry_run=True)
    assert (summary.inserted, summary.updated, summary.unchanged, summary.refused) == (2, 1, 1, 1)
    assert summary.to_text().splitlines()[0] == "read 5, would insert 2, would update 1, unchanged 1, refused 1"
    assert "would generate 2 identifiers" in summary.to_text()
    assert summary.to_text().endswith("dry run: nothing written")
    after = (
        count(district, "SELECT count(*) FROM component_history"),
        count(district, "SELECT count(*) FROM components"),
    )
    assert after == before
    assert count(district, "SELECT count(*) FROM components WHERE status = '破损'") == 0
    real = run(district, write_csv(tmp_path / "b.csv", rows))
    assert (real.inserted, real.updated, real.unchanged, real.refused) == (2, 1, 1, 1)


def test_reimport_upserts_by_identifier_and_records_what_changed(district: Engine, tmp_path: Path) -> None:
    xs, ys = inside_points(2)
    ids = [f"{DISTRICT}{LAMP}000010", f"{DISTRICT}{LAMP}000011"]
    base = [
        {"id": i, "class_code": LAMP, "lon": x, "lat": y, "status": "完好"} for i, x, y in zip(ids, xs, ys, strict=True)
    ]
    run(district, write_csv(tmp_path / "a.csv", base))
    changed = [dict(base[0], status="破损", note="灯杆倾斜"), base[1]]
    summary = run(district, write_csv(tmp_path / "b.csv", changed), actor="王伟")
    assert (summary.inserted, summary.updated, summary.unchanged) == (0, 1, 1)
    with district.connect() as conn:
        status, version = conn.execute(
            text("SELECT status, version FROM components WHERE id = :i"), {"i": ids[0]}
        ).one()
        hist = conn.execute(
            text("SELECT actor, action, changes FROM component_history WHERE component_id = :i ORDER BY id"),
            {"i": ids[0]},
        ).all()
    assert (status, version) == ("破损", 2)
    assert [h.action for h in hist] == ["create", "update"]
    assert hist[1].actor == "王伟"
    assert hist[1].changes == {"status": ["完好", "破损"], "note": [None, "灯杆倾斜"]}


def test_the_standards_chinese_headers_import_and_update_by_their_identifier(district: Engine, tmp_path: Path) -> None:
    """review50 F5: a bureau's sheet with 表2's Chinese headers. Its 部件名称 is the name and its 备注 the note (they
    went into attrs, the name became the class name), and its ids in 部件标识码 update (they were refused as
    duplicates "give its identifier"); the one column kept as a custom attribute is said in a note."""
    xs, ys = inside_points(2, seed=31)
    sheet = {"部件标识码": ["", ""], "部件名称": ["红桥路口西", "停车场东"], "类别代码": [LAMP, LAMP], "经度": xs,
             "纬度": ys, "备注": ["甲", "乙"], "材质": ["钢", "铸铁"]}  # fmt: skip
    pd.DataFrame(sheet).to_csv(tmp_path / "bureau.csv", index=False, encoding="utf-8-sig")
    summary = run(district, tmp_path / "bureau.csv")
    assert summary.to_text().splitlines()[:3] == [
        "read 2, inserted 2, updated 0, unchanged 0, refused 0",
        "note: 以下列存为自定义属性(attrs):材质 / column(s) kept as custom attributes (attrs): 材质",
        "generated 2 identifiers",
    ]
    ids = [f"{DISTRICT}{LAMP}000001", f"{DISTRICT}{LAMP}000002"]
    select = "SELECT id, name, note, attrs FROM components ORDER BY id"
    with district.connect() as conn:
        assert [tuple(r) for r in conn.execute(text(select))] == [
            (ids[0], "红桥路口西", "甲", {"材质": "钢"}),
            (ids[1], "停车场东", "乙", {"材质": "铸铁"}),
        ]
    edited = dict(sheet, 部件标识码=ids, 部件名称=["红桥路口西(改)", "停车场东"])
    pd.DataFrame(edited).to_csv(tmp_path / "ids.csv", index=False, encoding="utf-8-sig")
    summary = run(district, tmp_path / "ids.csv")
    assert (summary.inserted, summary.updated, summary.unchanged, summary.refused) == (0, 1, 1, 0)
    # A component an earlier import gave the attribute 部件名称 exports without it: beside GLBJMC the file would
    # name the field twice, which the import refuses; the export re-imports unchanged.
    with district.begin() as conn:
        conn.execute(text("""UPDATE components SET attrs = attrs || '{"部件名称": "旧名"}'"""))
        notes: list[str] = []
        export_components(conn, tmp_path / "out.csv", fmt=None, encoding="utf-8", crs=None, notes=notes)
    assert notes == ["custom attributes named as a standard column are not exported: 部件名称"]
    assert (run(district, tmp_path / "out.csv").unchanged, run(district, tmp_path / "out.csv").refused) == (2, 0)


def test_generated_identifiers_take_the_lowest_free_serials_and_never_reuse_a_retired_one(
    district: Engine, tmp_path: Path
) -> None:
    """Changed deliberately (review11 D8): a given serial no longer pushes generated ones above it."""
    xs, ys = inside_points(6)
    given = [
        {"id": f"{DISTRICT}{LAMP}{s:06d}", "class_code": LAMP, "lon": xs[i], "lat": ys[i]}
        for i, s in enumerate((1, 3, 999999))
    ]
    run(district, write_csv(tmp_path / "a.csv", given))
    retire_component(district, f"{DISTRICT}{LAMP}000003", actor="t", reason="道路改造拆除")
    new = [{"class_code": LAMP, "lon": x, "lat": y} for x, y in zip(xs[3:], ys[3:], strict=True)]
    summary = run(district, write_csv(tmp_path / "b.csv", new))
    assert (summary.inserted, summary.generated_ids) == (3, 3)
    with district.connect() as conn:
        ids = list(conn.execute(text("SELECT id FROM components ORDER BY id")).scalars())
        retired = conn.execute(text("SELECT status FROM components WHERE id LIKE '%000003'")).scalar()
    # 000003 is retired and stays taken; 999999 blocks nothing below it.
    assert [i[-6:] for i in ids] == ["000001", "000002", "000003", "000004", "000005", "999999"]
    assert retired == "移除"


def test_a_class_runs_out_only_when_every_serial_is_in_use(district: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    import gisgrid.components_store as store

    monkeypatch.setattr(store, "SERIAL_MAX", 1000)  # the rule, not a million rows
    with district.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO components (id, scheme, district_code, class_code, status, geom) "
                "SELECT :p || lpad(s::text, 6, '0'), 'gbt47678', :d, :c, '完好', "
                "ST_SetSRID(ST_MakePoint(113.7, 34.75), 4490) FROM generate_series(1, 998) s"
            ),
            {"p": f"{DISTRICT}{LAMP}", "d": DISTRICT, "c": LAMP},
        )
    with district.begin() as conn:
        [last] = store.free_serials(conn, DISTRICT, "gbt47678", LAMP, 1, [])
        assert last == 999
        with pytest.raises(InvalidInput, match=f"no free serial numbers left in class {LAMP}.*: 2 free, 3 needed"):
            store.reserve_serials(conn, DISTRICT, "gbt47678", {LAMP: 3})


def test_a_new_row_at_the_place_of_a_stored_component_is_a_duplicate(district: Engine, tmp_path: Path) -> None:
    xs, ys = inside_points(1)
    run(district, write_csv(tmp_path / "a.csv", [{"class_code": LAMP, "lon": xs[0], "lat": ys[0]}]))
    again = run(district, write_csv(tmp_path / "b.csv", [{"class_code": LAMP, "lon": xs[0] + 1e-6, "lat": ys[0]}]))
    assert (again.inserted, again.refused) == (0, 1)
    assert "duplicate of stored component" in again.errors.iloc[0]["reason"]
    other_class = run(district, write_csv(tmp_path / "c.csv", [{"class_code": BIN, "lon": xs[0], "lat": ys[0]}]))
    assert other_class.inserted == 1  # a bin beside a lamp is not a duplicate


def test_a_row_with_an_identifier_no_component_has_at_a_stored_ones_place_is_a_duplicate(
    district: Engine, tmp_path: Path
) -> None:
    """review38 D1: a made-up or mistyped identifier does not make a second component of one thing."""
    xs, ys = inside_points(2)
    stored = [
        {"id": f"{DISTRICT}{LAMP}000101", "class_code": LAMP, "lon": xs[0], "lat": ys[0]},
        {"id": f"{DISTRICT}{BIN}000001", "class_code": BIN, "lon": xs[1], "lat": ys[1]},
    ]
    run(district, write_csv(tmp_path / "a.csv", stored))
    rows = [
        {"id": f"{DISTRICT}{LAMP}000102", "class_code": LAMP, "lon": xs[0] + 1e-6, "lat": ys[0]},  # 0.1 m off
        {"id": f"{DISTRICT}{LAMP}000103", "class_code": LAMP, "lon": xs[1], "lat": ys[1]},  # at the bin: not one
        *stored,  # as exported: unchanged, not duplicates of themselves
    ]
    summary = run(district, write_csv(tmp_path / "b.csv", rows))
    assert (summary.inserted, summary.updated, summary.unchanged, summary.refused) == (1, 0, 2, 1)
    assert summary.errors.to_dict("records") == [
        {
            "row": 2,
            "field": "lon/lat",
            "value": f"{DISTRICT}{LAMP}000101",
            "reason": f"与已存部件 {DISTRICT}{LAMP}000101 重复(同一小类,相距 0.5 米以内);如需更新请填写其标识码 / "
            f"duplicate of stored component {DISTRICT}{LAMP}000101 (same class within 0.5 m); give its identifier to "
            "update it",
        }
    ]
    assert count(district, "SELECT count(*) FROM components") == 3


def _east(x: float, y: float, metres: float) -> float:
    """The longitude ``metres`` east of (x, y)."""
    lon, _, _ = Geod(ellps="GRS80").fwd(x, y, 90.0, metres)
    return float(lon)


def test_a_new_row_at_the_place_of_an_earlier_row_of_the_file_is_refused_naming_it(
    district: Engine, tmp_path: Path
) -> None:
    """review47 F3: two rows of one class at one point in one file were both inserted, while the same rows in two
    files were one component and one refusal. The later row is refused naming the earlier (zh-CN first), as a
    repeated identifier is, in the refusals file too; the first import of a file keeps what a re-import keeps."""
    xs, ys = inside_points(2)
    gx, gy = geodesy.from_storage(xs, ys, "gcj02")  # as the review's file: GCJ-02, read with --src-datum gcj02
    x, y = float(gx[0]), float(gy[0])
    rows = [
        {"class_code": LAMP, "lon": x, "lat": y},  # row 2
        {"class_code": LAMP, "lon": x, "lat": y, "name": "c"},  # 3: the same lamp again
        {"class_code": BIN, "lon": x, "lat": y},  # 4: a bin beside it is not a copy
        {"id": f"{DISTRICT}{LAMP}000555", "class_code": LAMP, "lon": x, "lat": y},  # 5: a made-up id is no excuse
        {"class_code": LAMP, "lon": float(gx[1]), "lat": float(gy[1])},  # 6: elsewhere
    ]
    errors = tmp_path / "refused.csv"
    path = write_csv(tmp_path / "imp.csv", rows)
    summary = run(district, path, src_datum="gcj02", errors_path=errors)
    assert (summary.inserted, summary.refused, summary.refused_rows) == (3, 2, [3, 5])
    reason = (
        "与第 2 行重复(同一小类,相距 0.5 米以内):同一部件只填一行 / duplicate of row 2 (same class within 0.5 m): "
        "one row per component"
    )
    want = [
        {"row": 3, "field": "lon/lat", "value": "2", "reason": reason},
        {"row": 5, "field": "lon/lat", "value": "2", "reason": reason},
    ]
    assert summary.errors.to_dict("records") == want
    table = pd.read_csv(errors, dtype=str, encoding="utf-8-sig")
    assert [(int(r.row), r.field, r.value, r.reason) for r in table.itertuples()] == [
        (w["row"], w["field"], w["value"], w["reason"]) for w in want
    ]
    assert count(district, "SELECT count(*) FROM components") == 3
    assert count(district, "SELECT count(*) FROM components WHERE class_code = :c", c=LAMP) == 2
    # The same file again: every new row a copy of a stored component, as the first run's refusals said.
    again = run(district, path, src_datum="gcj02")
    assert (again.inserted, again.refused) == (0, 5)
    assert again.errors["reason"].str.startswith("与已存部件 ").all()


def test_copies_in_a_file_are_judged_in_its_order_and_all_or_nothing_writes_none(
    district: Engine, tmp_path: Path
) -> None:
    """Three lamps 0.4 m apart in a line: the second repeats the first; the third, 0.8 m from the first, is kept —
    the second, refused, makes no copy of it (importing them one by one keeps the same two). Copies 0.6 m apart
    are two lamps. A copy of a stored lamp is refused naming that lamp, and a later row at its place too (not the
    refused row). With all_or_nothing one copy refuses the whole file."""
    xs, ys = inside_points(3, seed=7)
    x, y = float(xs[0]), float(ys[0])
    line = [
        {"class_code": LAMP, "lon": x, "lat": y},  # row 2
        {"class_code": LAMP, "lon": _east(x, y, 0.4), "lat": y},  # 3: repeats 2
        {"class_code": LAMP, "lon": _east(x, y, 0.8), "lat": y},  # 4: kept
        {"class_code": BIN, "lon": float(xs[1]), "lat": float(ys[1])},  # 5
        {"class_code": BIN, "lon": _east(float(xs[1]), float(ys[1]), 0.6), "lat": float(ys[1])},  # 6: kept
    ]
    path = write_csv(tmp_path / "line.csv", line)
    none = run(district, path, all_or_nothing=True)
    assert (none.inserted, none.refused_rows, none.written) == (0, [3], False)
    assert count(district, "SELECT count(*) FROM components") == 0
    summary = run(district, path)
    assert (summary.inserted, summary.refused_rows) == (4, [3])
    assert summary.errors.iloc[0]["reason"].startswith("与第 2 行重复")
    stored = [{"class_code": LAMP, "lon": float(xs[2]), "lat": float(ys[2])}]
    run(district, write_csv(tmp_path / "stored.csv", stored))
    rows = [
        {"class_code": LAMP, "lon": float(xs[2]), "lat": float(ys[2])},  # row 2: the stored lamp again
        {"class_code": LAMP, "lon": _east(float(xs[2]), float(ys[2]), 0.3), "lat": float(ys[2])},  # 3: too
    ]
    copies = run(district, write_csv(tmp_path / "copies.csv", rows))
    assert (copies.inserted, copies.refused_rows) == (0, [2, 3])
    assert copies.errors["reason"].str.startswith("与已存部件 ").all()
    assert count(district, "SELECT count(*) FROM components") == 5


def _moved(x: float, y: float, azimuth: float, metres: float) -> tuple[float, float]:
    """The point ``metres`` from (x, y) towards ``azimuth`` (degrees from north), on CGCS2000's ellipsoid."""
    lon, lat, _ = Geod(ellps="GRS80").fwd(x, y, azimuth, metres)
    return float(lon), float(lat)


def test_repeated_places_flags_exactly_the_rows_within_half_a_metre_of_an_earlier_one_of_their_class() -> None:
    """The same-place check of one file, at its threshold: 0.499 m apart (east, north or diagonal) is one
    component, 0.501 m two; a pair either side of a 1e-5° line is found as any other; another class, or a row that
    is not new (an update), is no copy; a row repeats the first earlier row kept, never a refused one."""
    cell = 1e-5
    x0, y0 = 117.20 - cell / 10, 31.80  # just west of a multiple of 1e-5°: the next point lies across it
    spots = [(x0 + i * 1e-3, y0 + i * 1e-3) for i in range(6)]  # ~100 m apart: independent of one another
    placed = [
        # (class, point, new)
        (LAMP, spots[0], True),  # row 2
        (LAMP, _moved(*spots[0], 90, 0.499), True),  # 3: east, just inside → repeats 2
        (LAMP, spots[1], True),  # 4
        (LAMP, _moved(*spots[1], 0, 0.501), True),  # 5: north, just outside → kept
        (LAMP, _moved(*spots[1], 180, 0.499), True),  # 6: south, just inside → repeats 4
        (LAMP, spots[2], True),  # 7
        (LAMP, _moved(*spots[2], 45, 0.501), True),  # 8: diagonal, just outside → kept
        (LAMP, _moved(*spots[2], 225, 0.499), True),  # 9: diagonal, just inside → repeats 7
        (LAMP, spots[3], True),  # 10
        (LAMP, (spots[3][0] + cell / 5, spots[3][1]), True),  # 11: 0.02 m east, across the 1e-5° line → repeats 10
        (BIN, spots[3], True),  # 12: another class at the very point → kept
        (BIN, spots[4], False),  # 13: not new (an update): not judged, and no row repeats it
        (BIN, spots[4], True),  # 14: kept
        (BIN, _moved(*spots[4], 90, 0.3), True),  # 15: repeats 14
        (BIN, _moved(*spots[4], 90, 0.6), True),  # 16: 0.3 m from the refused 15, 0.6 m from 14 → kept
        (LAMP, spots[5], True),  # 17: alone
    ]
    accepted = pd.DataFrame(
        {"_row": np.arange(2, 2 + len(placed)), "class_code": pd.Series([c for c, _, _ in placed], dtype=object)}
    )
    x = np.array([p[0] for _, p, _ in placed])
    y = np.array([p[1] for _, p, _ in placed])
    new = np.array([n for _, _, n in placed])
    found = repeated_places(accepted, new, x, y)
    assert list(zip(found["row"], found["value"], strict=True)) == [
        (3, "2"),
        (6, "4"),
        (9, "7"),
        (11, "10"),
        (15, "14"),
    ]
    assert found["field"].eq("coordinates").all()
    assert found["reason"].iloc[0] == (
        "与第 2 行重复(同一小类,相距 0.5 米以内):同一部件只填一行 / duplicate of row 2 (same class within 0.5 m): "
        "one row per component"
    )
    # Fewer than two new rows: nothing to compare.
    assert repeated_places(accepted, np.eye(1, len(placed), 0, dtype=bool)[0], x, y).empty


def test_an_identifier_with_serial_000000_is_refused(district: Engine, tmp_path: Path) -> None:
    xs, ys = inside_points(2)
    rows = [
        {"id": f"{DISTRICT}{LAMP}000000", "class_code": LAMP, "lon": xs[0], "lat": ys[0]},
        {"id": f"{DISTRICT}{LAMP}000001", "class_code": LAMP, "lon": xs[1], "lat": ys[1]},
    ]
    summary = run(district, write_csv(tmp_path / "a.csv", rows))
    assert (summary.inserted, summary.refused) == (1, 1)
    assert summary.errors.drop(columns="code").to_dict("records") == [
        {
            "row": 2,
            "field": "id",
            "value": f"{DISTRICT}{LAMP}000000",
            "reason": "标识码顺序代码不能为 000000 / the identifier's serial is 000000: serials start at 000001",
        }
    ]
    assert count(district, "SELECT count(*) FROM components WHERE id LIKE '%000000'") == 0
    # One stored before this rule (as review38 found one) stays updatable.
    with district.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO components (id, scheme, district_code, class_code, status, geom) VALUES (:i, 'gbt47678', "
                ":d, :c, '完好', ST_SetSRID(ST_MakePoint(:x, :y), 4490))"
            ),
            {"i": f"{DISTRICT}{LAMP}000000", "d": DISTRICT, "c": LAMP, "x": float(xs[0]), "y": float(ys[0])},
        )
    again = run(district, write_csv(tmp_path / "b.csv", [dict(rows[0], status="破损")]))
    assert (again.updated, again.refused) == (1, 0)
    assert count(district, "SELECT count(*) FROM components WHERE id LIKE '%000000' AND status = '破损'") == 1


def test_refusals_name_the_files_own_columns(district: Engine, tmp_path: Path) -> None:
    """review38 U1: the refusals file and the summary name GLBJBSM, CSRQ, wkt (what the user finds in the file),
    not id, initial_date, coordinates."""
    xs, ys = inside_points(2)
    rows = [
        {"GLBJBSM": f"{DISTRICT}{LAMP}00001x", "ObjCode": LAMP, "CSRQ": "", "wkt": f"POINT ({xs[0]} {ys[0]})"},
        {"GLBJBSM": "", "ObjCode": LAMP, "CSRQ": "2024-13-40", "wkt": f"POINT ({xs[1]} {ys[1]})"},
        {"GLBJBSM": "", "ObjCode": LAMP, "CSRQ": "", "wkt": "POINT (0 0)"},
        {"GLBJBSM": "", "ObjCode": LAMP, "CSRQ": "", "wkt": "POINT (113.7"},
    ]
    errors = tmp_path / "refused.csv"
    summary = run(district, write_csv(tmp_path / "edited.csv", rows), errors_path=errors, dry_run=True)
    assert summary.refused == 4
    table = pd.read_csv(errors, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    assert table[["row", "field"]].values.tolist() == [["2", "GLBJBSM"], ["3", "CSRQ"], ["4", "wkt"], ["5", "wkt"]]
    first = "first refusal: row 2 field GLBJBSM: 标识码只能包含数字(0-9) / identifier must contain digits only (0-9)"
    assert first in summary.to_text()
    # a pair of columns names both; a custom column named like a canonical field keeps its own name
    xy = tmp_path / "xy.csv"
    x, y = geodesy_to_4547(xs[0], ys[0])
    xy.write_text(f"ObjCode,PointX,PointY,lat\n{LAMP},{x},{y},a\x07b\n{LAMP},0,0,\n", encoding="utf-8")
    summary = run(district, xy, src_crs="EPSG:4547", dry_run=True)
    assert summary.errors[["row", "field"]].values.tolist() == [[2, "lat"], [3, "PointX/PointY"]]


def geodesy_to_4547(lon: float, lat: float) -> tuple[float, float]:
    from pyproj import Transformer

    return Transformer.from_crs(4490, 4547, always_xy=True).transform(lon, lat)


def test_two_imports_at_once_get_distinct_identifiers(district: Engine, tmp_path: Path) -> None:
    xs, ys = inside_points(400, seed=7)
    files = [
        write_csv(
            tmp_path / f"f{k}.csv",
            [{"class_code": LAMP, "lon": x, "lat": y} for x, y in zip(xs[k::2], ys[k::2], strict=True)],
        )
        for k in range(2)
    ]
    results: list[object] = []
    threads = [threading.Thread(target=lambda p=p: results.append(run(district, p))) for p in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.inserted for r in results) == 400
    with district.connect() as conn:
        serials = sorted(int(i[-6:]) for i in conn.execute(text("SELECT id FROM components")).scalars())
    assert serials == list(range(1, 401))


def test_gcj02_input_lands_within_a_metre_of_the_wgs84_position(clean_db: Engine, tmp_path: Path) -> None:
    # A small district around the published AMap test point (WGS 116.481499, 39.990475 ↔ GCJ 116.487586, 39.991754).
    box = gpd.GeoDataFrame(
        {"code": ["119901"], "name": ["测试区"], "level": ["district"], "parent_code": [None]},
        geometry=[shapely.box(116.47, 39.98, 116.50, 40.00)],
        crs=4490,
    )
    box.to_file(tmp_path / "b.geojson", driver="GeoJSON")
    workflows.import_boundaries(clean_db, tmp_path / "b.geojson", BoundaryOptions())
    workflows.generate_grids(clean_db)
    path = write_csv(tmp_path / "g.csv", [{"class_code": LAMP, "lon": 116.487586, "lat": 39.991754}])
    summary = run(clean_db, path, src_datum="gcj02")
    assert summary.inserted == 1
    with clean_db.connect() as conn:
        x, y = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM components")).one()
    _, _, metres = Geod(ellps="WGS84").inv(x, y, 116.481499, 39.990475)
    assert metres < 1.0
    gx, gy = geodesy.from_storage(np.array([x]), np.array([y]), "gcj02")
    assert abs(gx[0] - 116.487586) < 1e-5 and abs(gy[0] - 39.991754) < 1e-5


def test_queries_by_radius_nearest_grid_tier_department_status(district: Engine, tmp_path: Path) -> None:
    xs, ys = inside_points(60, seed=3)
    rows = [
        {"class_code": LAMP if i % 2 else BIN, "lon": x, "lat": y, "status": "破损" if i % 5 == 0 else "完好"}
        for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    ]
    run(district, write_csv(tmp_path / "c.csv", rows))
    cx, cy = float(xs[0]), float(ys[0])
    with district.connect() as conn:
        near, _ = query_components(conn, ComponentQuery(near=(cx, cy), nearest=5, class_code=LAMP))
        expected = conn.execute(
            text(
                "SELECT id, ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4490)::geography) d "
                "FROM components WHERE class_code = :c ORDER BY d LIMIT 5"
            ),
            {"x": cx, "y": cy, "c": LAMP},
        ).all()
        within, matched = query_components(conn, ComponentQuery(near=(cx, cy), radius_m=200, limit=1000))
        radius_truth = conn.execute(
            text(
                "SELECT count(*) FROM components WHERE ST_Distance(geom::geography, "
                "ST_SetSRID(ST_MakePoint(:x, :y), 4490)::geography) <= 200"
            ),
            {"x": cx, "y": cy},
        ).scalar_one()
        one_grid = conn.execute(text("SELECT unit_grid_code FROM components LIMIT 1")).scalar_one()
        by_grid, _ = query_components(conn, ComponentQuery(unit_grid=one_grid, limit=1000))
        by_tier2, t2 = query_components(conn, ComponentQuery(tier_grid=COMMUNITIES[0], limit=1000))
        broken, nb = query_components(conn, ComponentQuery(status="破损", limit=1000))
        _, nd = query_components(conn, ComponentQuery(department="990000000000000012", limit=1000))
        with pytest.raises(InvalidInput, match="department: unknown department '990000000000009999'") as unknown:
            query_components(conn, ComponentQuery(department="990000000000009999", limit=1000))
        assert unknown.value.reason == Reason.UNKNOWN_DEPARTMENT  # a typo is named, not an empty answer
    assert [f["id"] for f in near] == [r.id for r in expected]
    assert [f["properties"]["distance_m"] for f in near] == [round(r.d, 2) for r in expected]
    assert matched == radius_truth == len(within)
    assert {f["properties"]["unit_grid_code"] for f in by_grid} == {one_grid}
    assert t2 == len(by_tier2) and all(f["properties"]["community_code"] == COMMUNITIES[0] for f in by_tier2)
    assert nb == 12 and all(f["properties"]["status"] == "破损" for f in broken)
    assert nd == 30  # every lamp: 路灯管理处 is the lamps' 主管部门


def test_bulk_load_rebuilds_indexes_and_foreign_keys(
    district: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gisgrid.components_store as store

    def schema() -> tuple[set[str], set[str]]:
        with district.connect() as conn:
            idx = set(conn.execute(text("SELECT indexdef FROM pg_indexes WHERE tablename = 'components'")).scalars())
            fks = set(
                conn.execute(
                    text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'components'::regclass")
                ).scalars()
            )
        return idx, fks

    before = schema()
    monkeypatch.setattr(store, "BULK_REBUILD_MIN", 1)  # take the bulk path for a small file
    xs, ys = inside_points(50, seed=9)
    summary = run(
        district,
        write_csv(tmp_path / "c.csv", [{"class_code": LAMP, "lon": x, "lat": y} for x, y in zip(xs, ys, strict=True)]),
    )
    assert summary.inserted == 50
    assert schema() == before  # every index and constraint is back, with the same definition
    with district.connect() as conn:  # analysed with the load: the planner knows the classes at once
        common = conn.execute(
            text(
                "SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'components' AND attname = 'class_code'"
            )
        ).scalar_one()
    assert common == "{" + LAMP + "}"
    with district.connect() as conn, pytest.raises(IntegrityError, match="foreign key"):
        conn.execute(text("UPDATE components SET main_dept_code = 'nope' WHERE true"))


def test_serials_continue_across_chunks_in_file_order(
    district: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gisgrid.components_store as store

    monkeypatch.setattr(store, "CHUNK", 3)  # 8 rows: chunks of 3, 3 and 2, each class split across them
    xs, ys = inside_points(8, seed=11)
    classes = [LAMP, BIN, LAMP, LAMP, BIN, LAMP, BIN, LAMP]
    rows = [
        {"class_code": c, "lon": x, "lat": y, "name": f"line {i + 2}"}
        for i, (c, x, y) in enumerate(zip(classes, xs, ys, strict=True))
    ]
    rows[4]["id"] = f"{DISTRICT}{BIN}000002"  # a given identifier in the file: generated ones go around it
    summary = run(district, write_csv(tmp_path / "c.csv", rows))
    assert (summary.inserted, summary.generated_ids) == (8, 7)
    with district.connect() as conn:
        by_row = conn.execute(
            text("SELECT split_part(source, '#', 1), component_id FROM component_history ORDER BY id")
        ).all()
        ids_in_file_order = list(
            conn.execute(text("SELECT id FROM components ORDER BY split_part(name, ' ', 2)::int")).scalars()
        )
    assert ids_in_file_order == [
        f"{DISTRICT}{LAMP}000001",
        f"{DISTRICT}{BIN}000001",
        f"{DISTRICT}{LAMP}000002",
        f"{DISTRICT}{LAMP}000003",
        f"{DISTRICT}{BIN}000002",
        f"{DISTRICT}{LAMP}000004",
        f"{DISTRICT}{BIN}000003",
        f"{DISTRICT}{LAMP}000005",
    ]
    # one 'create' history row per component, written beside each chunk
    assert sorted(i for _, i in by_row) == sorted(ids_in_file_order) and {s for s, _ in by_row} == {"c.csv"}


def test_a_duplicate_identifier_in_another_chunk_is_refused(
    district: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gisgrid.components_store as store

    monkeypatch.setattr(store, "CHUNK", 2)
    xs, ys = inside_points(5, seed=12)
    given = f"{DISTRICT}{LAMP}000009"
    rows = [{"class_code": LAMP, "lon": x, "lat": y} for x, y in zip(xs, ys, strict=True)]
    rows[0]["id"] = rows[3]["id"] = given  # lines 2 and 5: first and second chunk
    summary = run(district, write_csv(tmp_path / "c.csv", rows))
    assert (summary.inserted, summary.refused, summary.refused_rows) == (4, 1, [5])
    assert summary.errors[["row", "field", "reason"]].values.tolist() == [
        [5, "id", "标识码重复:第 2 行已使用 / duplicate identifier: first used at row 2"]
    ]
    with district.connect() as conn:
        ids = list(conn.execute(text("SELECT id FROM components ORDER BY id")).scalars())
    # Generated: the lowest free serials, around the given 000009 (review11 D8; they used to follow it).
    assert ids == [f"{DISTRICT}{LAMP}{s:06d}" for s in (1, 2, 3, 9)]


def test_bulk_load_keeps_component_cells_and_turns_the_trigger_back_on(
    district: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gisgrid.components_store as store

    def cells() -> dict[str, tuple[int, float, float]]:
        with district.connect() as conn:
            rows = conn.execute(text("SELECT unit_grid_code, n, sx, sy FROM component_cells")).all()
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def truth() -> dict[str, tuple[int, float, float]]:
        with district.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT unit_grid_code, count(*), sum(ST_X(ST_Centroid(geom))), sum(ST_Y(ST_Centroid(geom))) "
                    "FROM components WHERE status <> '移除' AND unit_grid_code IS NOT NULL GROUP BY 1"
                )
            ).all()
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def assert_cells_right() -> None:
        got, want = cells(), truth()
        assert set(got) == set(want)
        for code, (n, sx, sy) in want.items():
            assert got[code][0] == n
            assert got[code][1] == pytest.approx(sx, abs=1e-9) and got[code][2] == pytest.approx(sy, abs=1e-9)

    monkeypatch.setattr(store, "BULK_REBUILD_MIN", 1)
    monkeypatch.setattr(store, "CHUNK", 7)
    xs, ys = inside_points(40, seed=13)
    wkt = [f"POINT ({float(x)!r} {float(y)!r})" for x, y in zip(xs, ys, strict=True)]
    square = shapely.box(xs[0] - 1e-4, ys[0] - 1e-4, xs[0] + 2e-4, ys[0] + 1e-4)  # counted at its centroid
    wkt[1] = square.wkt
    statuses = ["移除" if i % 9 == 0 else "完好" for i in range(40)]  # removed ones do not count
    rows = [{"class_code": LAMP, "wkt": w, "status": s} for w, s in zip(wkt, statuses, strict=True)]
    summary = run(district, write_csv(tmp_path / "c.csv", rows))
    assert summary.inserted == 40
    assert sum(n for n, _, _ in cells().values()) == 40 - 5
    assert_cells_right()
    with district.connect() as conn:
        enabled = conn.execute(
            text("SELECT tgenabled FROM pg_trigger WHERE tgname = 'component_cells_insert'")
        ).scalar_one()
    assert enabled == "O"
    monkeypatch.setattr(store, "BULK_REBUILD_MIN", 10**9)  # a small import after it is counted by the trigger
    more = run(district, write_csv(tmp_path / "d.csv", [{"class_code": BIN, "lon": xs[2], "lat": ys[2]}]))
    assert more.inserted == 1
    assert sum(n for n, _, _ in cells().values()) == 36
    assert_cells_right()


def test_a_point_within_the_position_tolerance_outside_every_cell_takes_the_cell_it_touches() -> None:
    """The district check takes a point 1 cm or less outside the boundary as on it (an export's rounding): it is
    located like a point on the edge, not left without a unit grid; 2 cm out is no cell's."""
    south, north = shapely.box(116.49, 39.94, 116.50, 39.95), shapely.box(116.49, 39.95, 116.50, 39.96)
    meta = np.array([("A", "s1", "c1"), ("B", "s1", "c2")], dtype=object)
    grids = UnitGrids(shapely.STRtree([south, north]), meta)
    lon = [116.50 + 0.6e-7, 116.50 + 2e-7, 116.495, 116.50 + 0.6e-7, 116.495]
    lat = [39.945, 39.945, 39.955, 39.95, 39.95]  # east of A; 2 cm east; inside B; east of both (corner); A/B edge
    located = grids.locate(shapely.points(lon, lat))
    assert located.to_numpy().tolist() == [
        ["A", "s1", "c1"],
        [None, None, None],
        ["B", "s1", "c2"],
        ["A", "s1", "c1"],
        ["A", "s1", "c1"],
    ]


def test_two_imports_of_one_file_at_once_insert_each_component_once(
    district: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review43 D1: the same-place rule holds against a concurrent import — the second checks after the first
    commits (the class lock) and refuses every row as a duplicate, instead of both inserting every component."""
    from gisgrid import components_store as store

    checked = store.same_place_duplicates

    def slow_check(*args: object, **kw: object) -> pd.DataFrame:
        found = checked(*args, **kw)  # type: ignore[arg-type]
        time.sleep(0.5)  # both imports would check before either commits, were they not serialised
        return found

    monkeypatch.setattr(store, "same_place_duplicates", slow_check)
    xs, ys = inside_points(30, seed=11)
    rows = [
        {"class_code": LAMP if i % 2 else BIN, "lon": x, "lat": y} for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    ]
    path = write_csv(tmp_path / "par.csv", rows)
    start = threading.Barrier(2)
    results: list[ImportSummary] = []

    def one() -> None:
        start.wait()
        results.append(run(district, path))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted((r.inserted, r.refused) for r in results) == [(0, 30), (30, 0)]
    second = next(r for r in results if r.refused)
    assert second.errors["reason"].str.startswith("与已存部件 ").all()
    assert count(district, "SELECT count(*) FROM components") == 30


def test_numbers_no_crs_has_are_refused_by_row_and_do_not_decide_the_crs(district: Engine, tmp_path: Path) -> None:
    """review43 U2: a small file whose longitudes were 1e308, inf, nan was refused whole — "not lon/lat (bounds
    [inf, …]); pass --src-crs" — with numpy's overflow warning; now its rows are refused one by one, as in a larger
    file, and the finite rows beside them import."""
    bad = ["1e308", "inf", "nan", "-inf", "1e309"]
    unparseable = "经度无法解析(不是数字) / unparseable longitude (not a number)"
    metres = (
        "不是经纬度:投影坐标(米)需指定源坐标系 / not lon/lat degrees: projected coordinates (metres) need the source "
        "CRS"
    )
    expected = [
        {"row": 2, "field": "lon/lat", "value": "1e308,34.8", "reason": metres},
        *(
            {"row": r, "field": "lon", "value": v, "reason": unparseable}
            for r, v in zip(range(3, 7), bad[1:], strict=True)
        ),
    ]
    only_bad = tmp_path / "bad.csv"
    only_bad.write_text("class_code,lon,lat\n" + "".join(f"{LAMP},{v},34.8\n" for v in bad), encoding="utf-8")
    xs, ys = inside_points(2, seed=5)
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(
        only_bad.read_text(encoding="utf-8") + "".join(f"{LAMP},{x},{y}\n" for x, y in zip(xs, ys, strict=True)),
        encoding="utf-8",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning on the way
        summary = run(district, only_bad)
        assert (summary.inserted, summary.refused) == (0, 5)
        assert summary.errors.drop(columns="code").to_dict("records") == expected
        summary = run(district, mixed)
    assert (summary.inserted, summary.refused) == (2, 5)
    assert summary.errors.drop(columns="code").to_dict("records") == expected
    assert count(district, "SELECT count(*) FROM components") == 2
