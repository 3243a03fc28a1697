"""component_cells: the per-unit-grid component count the console draws below zoom 16, kept by triggers."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from gisgrid.components_store import retire_component, update_component
from tests.fixtures import load_small_district
from tests.test_components_store import BIN, CATALOGUE, LAMP, inside_points, run, write_csv


@pytest.fixture
def district(clean_db: Engine, tmp_path: Path) -> Engine:
    load_small_district(clean_db, tmp_path)
    return clean_db


def cells(engine: Engine) -> dict[str, tuple[int, float, float]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT unit_grid_code, n, ST_X(geom), ST_Y(geom) FROM component_cells")).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def truth(engine: Engine) -> dict[str, tuple[int, float, float]]:
    """The same figures computed from scratch."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT unit_grid_code, count(*), avg(ST_X(geom)), avg(ST_Y(geom)) FROM components "
                "WHERE status <> '移除' GROUP BY unit_grid_code"
            )
        ).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def assert_same(engine: Engine) -> None:
    got, want = cells(engine), truth(engine)
    assert set(got) == set(want)
    for code, (n, x, y) in want.items():
        assert got[code][0] == n
        assert got[code][1] == pytest.approx(x, abs=1e-9) and got[code][2] == pytest.approx(y, abs=1e-9)


def test_cells_follow_imports_moves_and_retirements(district: Engine, tmp_path: Path) -> None:
    xs, ys = inside_points(300, seed=7)
    rows = [
        {"class_code": LAMP if i % 2 else BIN, "lon": x, "lat": y} for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    ]
    summary = run(district, write_csv(tmp_path / "c.csv", rows))
    assert summary.inserted == 300
    assert sum(n for n, _, _ in cells(district).values()) == 300
    assert_same(district)

    with district.connect() as conn:
        first, grid = conn.execute(text("SELECT id, unit_grid_code FROM components ORDER BY id LIMIT 1")).one()
        far = conn.execute(
            text(
                "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM unit_grids "
                "WHERE code <> :g ORDER BY code DESC LIMIT 1"
            ),
            {"g": grid},
        ).one()
    before = cells(district)[grid][0]
    moved = update_component(
        district, CATALOGUE, first, {"lon": far[0], "lat": far[1], "datum": "cgcs2000"}, actor="t", expected_version=1
    )
    assert moved["properties"]["unit_grid_code"] != grid
    assert cells(district).get(grid, (0, 0, 0))[0] == before - 1
    assert_same(district)

    retire_component(district, first, actor="t", reason="拆除", expected_version=2)
    assert sum(n for n, _, _ in cells(district).values()) == 299  # a removed (移除) component no longer counts
    assert_same(district)

    kept = cells(district)  # the recount a bulk import ends with agrees with what the triggers kept
    with district.begin() as conn:
        conn.execute(text("SELECT component_cells_recount()"))
    assert set(cells(district)) == set(kept)
    for code, (n, x, y) in kept.items():
        assert cells(district)[code][0] == n
        assert cells(district)[code][1:] == pytest.approx((x, y), abs=1e-9)

    with district.connect() as conn, conn.begin():
        conn.execute(text("DELETE FROM component_history"))
        conn.execute(text("DELETE FROM components"))
    assert cells(district) == {}  # a grid whose last component went has no cell


def test_a_failed_import_leaves_the_cells_as_they_were(district: Engine, tmp_path: Path) -> None:
    xs, ys = inside_points(20, seed=3)
    run(
        district,
        write_csv(tmp_path / "a.csv", [{"class_code": LAMP, "lon": x, "lat": y} for x, y in zip(xs, ys, strict=True)]),
    )
    before = cells(district)
    bad = [{"class_code": LAMP, "lon": x, "lat": y} for x, y in zip(*inside_points(10, seed=4), strict=True)]
    bad.append({"class_code": "99999", "lon": xs[0], "lat": ys[0]})
    summary = run(district, write_csv(tmp_path / "b.csv", bad), all_or_nothing=True)
    assert (summary.inserted, summary.refused) == (0, 1)
    assert cells(district) == before
