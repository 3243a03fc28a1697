"""`make demo` loads Z区: boundaries, ~38,000 unit grids, ~680 tier-3 grids with staff; a second load is a no-op."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL

from gisgrid.demo import DEMO_DISTRICT_CODE
from gisgrid.demo_loader import load_demo
from gisgrid.storage import migrate
from gisgrid.storage.database import drop_database, ensure_postgis, make_engine
from tests.conftest import new_database


def test_demo_load_fills_the_district_and_is_idempotent(server_url: URL, tmp_path: Path) -> None:
    url = new_database(server_url, "gisgrid_demo")
    engine = make_engine(url)
    try:
        ensure_postgis(engine)
        migrate.upgrade(url)
        summary = load_demo(engine, tmp_path, echo=lambda _m: None, components=5_000, history_days=20)
        assert summary.startswith("demo district Z区 loaded: 137 units") and ", 5000 components, " in summary
        with engine.connect() as conn:
            levels = dict(conn.execute(text("SELECT level, count(*) FROM admin_units GROUP BY level")).all())
            cells = conn.execute(text("SELECT count(*), sum(area_m2) FROM unit_grids")).one()
            tiers = dict(conn.execute(text("SELECT tier, count(*) FROM management_grids GROUP BY tier")).all())
            unassigned = conn.execute(text("SELECT count(*) FROM unit_grids WHERE tier3_code IS NULL")).scalar()
            led = conn.execute(
                text("SELECT count(*) FROM management_grids WHERE tier = 3 AND leader_name IS NOT NULL")
            ).scalar()
            district_area = conn.execute(
                text("SELECT area_m2 FROM admin_units WHERE code = :c"), {"c": DEMO_DISTRICT_CODE}
            ).scalar()
        assert levels == {"district": 1, "street": 12, "community": 124}
        assert 37_000 <= cells[0] <= 40_000
        assert abs(cells[1] - district_area) / district_area < 1e-4  # the cells cover the district
        assert abs(district_area / 1e6 - 370) < 370 * 0.03
        assert tiers[1] == 12 and tiers[2] == 124 and 640 <= tiers[3] <= 720
        assert unassigned == 0 and led == tiers[3]
        with engine.connect() as conn:
            located = conn.execute(text("SELECT count(*) FROM components WHERE unit_grid_code IS NOT NULL")).scalar()
        assert located == 5_000  # every demo component sits in a unit grid
        with engine.connect() as conn:
            n_cases, open_with_clock, open_cases = conn.execute(
                text(
                    "SELECT count(*), count(*) FILTER (WHERE due_at IS NOT NULL AND state NOT IN "
                    "('closed','rejected','voided','suspended')), count(*) FILTER (WHERE state NOT IN "
                    "('closed','rejected','voided','suspended')) FROM cases"
                )
            ).one()
        assert n_cases > 500 and open_with_clock == open_cases > 0  # open cases show a traffic light

        assert load_demo(engine, tmp_path, echo=lambda _m: None).startswith("demo district Z区 already loaded")
    finally:
        engine.dispose()
        drop_database(server_url, url.database or "")
