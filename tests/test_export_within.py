"""``--within`` of grids export and components export: a street office gets its own grids and components
(review32 G2), the code checked, an area holding none refused."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
from sqlalchemy import Engine, text

from gisgrid.components_store import export_components
from gisgrid.errors import InvalidInput
from gisgrid.grids.workflows import export_grids
from tests.fixtures import COMMUNITIES, STREETS
from tests.test_components_store import BIN, LAMP, inside_points, run, write_csv


def codes(path: Path, column: str = "code") -> list[str]:
    return sorted(gpd.read_file(path, engine="pyogrio")[column])


def stored(engine: Engine, sql: str) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(text(sql)).scalars())


def test_grids_within_a_street_a_community_or_a_tier3_grid(loaded: Engine, tmp_path: Path) -> None:
    street, community = STREETS[0], COMMUNITIES[1]
    export_grids(loaded, tmp_path / "s.gpkg", within=street)
    assert codes(tmp_path / "s.gpkg") == stored(loaded, f"SELECT code FROM unit_grids WHERE street_code = '{street}'")
    export_grids(loaded, tmp_path / "t2.gpkg", tier="2", within=street)
    assert codes(tmp_path / "t2.gpkg") == [c for c in COMMUNITIES if c.startswith(street)]
    export_grids(loaded, tmp_path / "t3.gpkg", tier="3", within=community)
    tier3 = codes(tmp_path / "t3.gpkg")
    assert tier3 == stored(loaded, f"SELECT code FROM management_grids WHERE tier = 3 AND parent_code = '{community}'")
    export_grids(loaded, tmp_path / "u3.gpkg", within=tier3[0])  # the unit grids of one tier-3 grid
    assert codes(tmp_path / "u3.gpkg") == stored(loaded, f"SELECT code FROM unit_grids WHERE tier3_code = '{tier3[0]}'")
    assert len(codes(tmp_path / "u3.gpkg")) < len(codes(tmp_path / "s.gpkg"))


@pytest.mark.parametrize(
    ("within", "message"),
    [
        ("41990", "within: '41990' is not a district, street, community, tier-3 or unit grid code"),
        ("41990200100x", "within: '41990200100x' is not a district, street, community, tier-3 or unit grid code"),
        (
            "419902009",
            "街道 419902009 内没有单元网格,未导出 / within: no unit grids in street 419902009; nothing to export",
        ),
    ],
)
def test_grids_within_refusals_write_nothing(loaded: Engine, tmp_path: Path, within: str, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        export_grids(loaded, tmp_path / "x.gpkg", within=within)
    assert str(err.value).startswith(message) and err.value.detail[0]["field"] == "within"
    assert not (tmp_path / "x.gpkg").exists()


def test_components_within_a_street_or_a_tier3_grid(loaded: Engine, tmp_path: Path) -> None:
    xs, ys = inside_points(12, seed=31)
    rows = [
        {"class_code": LAMP if i % 2 else BIN, "lon": x, "lat": y} for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    ]
    assert run(loaded, write_csv(tmp_path / "c.csv", rows)).inserted == 12
    street = STREETS[1]
    with loaded.connect() as conn:
        export_components(conn, tmp_path / "s.gpkg", fmt=None, encoding="utf-8", crs=None, within=street)
        tier3 = conn.execute(
            text("SELECT g.tier3_code FROM components c JOIN unit_grids g ON g.code = c.unit_grid_code LIMIT 1")
        ).scalar_one()
        export_components(conn, tmp_path / "t.gpkg", fmt=None, encoding="utf-8", crs=None, within=tier3)
        with pytest.raises(InvalidInput, match=r"^within: no components in community 419902001009; nothing"):
            export_components(conn, tmp_path / "n.gpkg", fmt=None, encoding="utf-8", crs=None, within="419902001009")
    assert codes(tmp_path / "s.gpkg", "GLBJBSM") == stored(
        loaded, f"SELECT id FROM components WHERE street_code = '{street}'"
    )
    assert 0 < len(codes(tmp_path / "s.gpkg", "GLBJBSM")) < 12
    assert codes(tmp_path / "t.gpkg", "GLBJBSM") == stored(
        loaded,
        f"SELECT c.id FROM components c JOIN unit_grids g ON g.code = c.unit_grid_code WHERE g.tier3_code = '{tier3}'",
    )
    assert not (tmp_path / "n.gpkg").exists()
