"""``grids tiers --from-file``: gisgrid's own tier-3 exports re-import with the default field names, a dry run writes
nothing, and duplicate codes name their rows (review38 D2, U14)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gisgrid.boundaries import BoundaryOptions
from gisgrid.cli import app
from gisgrid.errors import InvalidInput
from gisgrid.grids import workflows
from gisgrid.settings import Settings
from tests.fixtures import write_small_district

runner = CliRunner()


@pytest.fixture
def tiered(clean_db: Engine, tmp_path: Path) -> Engine:
    workflows.import_boundaries(clean_db, write_small_district(tmp_path), BoundaryOptions())
    workflows.generate_grids(clean_db)
    workflows.build_tiers(clean_db, target_size=20)
    return clean_db


def _tier3(engine: Engine) -> list[tuple[str, str, int]]:
    """(tier-3 code, name, unit grids) of every stored tier-3 grid, and unit grids' assignment as a whole."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT m.code, m.name, (SELECT count(*) FROM unit_grids g WHERE g.tier3_code = m.code) "
                "FROM management_grids m WHERE m.tier = 3 ORDER BY m.code"
            )
        ).all()
    return [(str(c), str(n), int(k)) for c, n, k in rows]


def _assignment(engine: Engine) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        return [(str(c), t) for c, t in conn.execute(text("SELECT code, tier3_code FROM unit_grids ORDER BY code"))]


@pytest.mark.parametrize("suffix", [".shp", ".gpkg", ".geojson"])
def test_a_tier3_export_reimports_with_the_default_fields(tiered: Engine, tmp_path: Path, suffix: str) -> None:
    """D2: the Shapefile export writes CODE/NAME; the defaults code/name now find them (case-insensitive)."""
    before, assignment = _tier3(tiered), _assignment(tiered)
    out = tmp_path / f"t3{suffix}"
    workflows.export_grids(tiered, out, tier="3", encoding="gbk" if suffix == ".shp" else "utf-8")
    if suffix == ".shp":
        assert {"CODE", "NAME"} <= set(gpd.read_file(out).columns)
    change = workflows.import_tier3_file(tiered, out)
    assert change.stored == len(before)
    assert change.kept == [c for c, _, _ in before]
    assert (change.rebuilt, change.new, change.dropped) == ([], [], [])
    assert _tier3(tiered) == before
    assert _assignment(tiered) == assignment


def test_fields_differing_only_by_case_are_refused_naming_both(tiered: Engine, tmp_path: Path) -> None:
    out = tmp_path / "t3.geojson"
    workflows.export_grids(tiered, out, tier="3")
    data = json.loads(out.read_text(encoding="utf-8"))
    for feature in data["features"]:  # GeoJSON holds both (a GeoPackage or Shapefile would refuse the second)
        feature["properties"]["CODE"] = feature["properties"]["code"]
    two = tmp_path / "two.geojson"
    two.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InvalidInput) as err:
        workflows.import_tier3_file(tiered, two, code_field="Code")
    assert str(err.value) == (
        f"{two}: field 'Code' matches 'code' and 'CODE', which differ only by case; "
        "name the one to use exactly with --code-field"
    )
    # An exact name still picks its column.
    assert workflows.import_tier3_file(tiered, two, code_field="CODE").stored == len(_tier3(tiered))


def test_a_missing_field_is_refused_naming_the_option(tiered: Engine, tmp_path: Path) -> None:
    out = tmp_path / "t3.gpkg"
    workflows.export_grids(tiered, out, tier="3")
    with pytest.raises(InvalidInput, match=r"field 'grid_no' not found; available: code, tier, name, .*--code-field"):
        workflows.import_tier3_file(tiered, out, code_field="grid_no")


def test_duplicate_codes_name_their_rows(tiered: Engine, tmp_path: Path) -> None:
    """U14: 'in row 3 (…) and row 4 (…)', as a boundary file's duplicates are named."""
    out = tmp_path / "t3.gpkg"
    workflows.export_grids(tiered, out, tier="3")
    zones = gpd.read_file(out)
    assert len(zones) >= 4
    zones.loc[3, "code"] = zones.loc[2, "code"]
    zones.loc[2, "name"] = "宁馨社区第01网格"
    zones.loc[3, "name"] = "泰和社区第02网格"
    zones.to_file(tmp_path / "dup.gpkg")
    before = _tier3(tiered)
    with pytest.raises(InvalidInput) as err:
        workflows.import_tier3_file(tiered, tmp_path / "dup.gpkg")
    code = zones.loc[2, "code"]
    assert str(err.value) == (
        f"{tmp_path / 'dup.gpkg'}: tier-3 code appears more than once: "
        f"{code} in row 3 (宁馨社区第01网格) and row 4 (泰和社区第02网格)"
    )
    assert err.value.detail == {"duplicates": {code: [3, 4]}}
    assert _tier3(tiered) == before


def test_dry_run_reports_the_change_and_writes_nothing(tiered: Engine, tmp_path: Path) -> None:
    before, assignment = _tier3(tiered), _assignment(tiered)
    # One tier-3 grid of the file takes the area of its neighbour in the same community: a real change.
    out = tmp_path / "t3.gpkg"
    workflows.export_grids(tiered, out, tier="3")
    zones = gpd.read_file(out)
    first, second = zones.index[zones["code"].str[:12] == zones["code"].iloc[0][:12]][:2]
    zones.loc[first, "geometry"] = zones.loc[[first, second], "geometry"].union_all()
    zones = zones.drop(index=second)
    zones.to_file(tmp_path / "merged.gpkg")
    change = workflows.import_tier3_file(tiered, tmp_path / "merged.gpkg", dry_run=True)
    assert change.rebuilt == [zones.loc[first, "code"]]
    assert change.dropped == [before[int(second)][0]]
    assert _tier3(tiered) == before
    assert _assignment(tiered) == assignment


def test_cli_dry_run_says_what_it_would_store(tiered: Engine, settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "t3.shp"
    workflows.export_grids(tiered, out, tier="3", encoding="gbk")
    before = _tier3(tiered)
    env = {"GISGRID_DATABASE_URL": settings.database_url or ""}
    r = runner.invoke(app, ["grids", "tiers", "--from-file", str(out), "--dry-run"], env=env)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == f"would store {len(before)} tier-3 grids from {out}"
    assert lines[1].startswith(f"tier 3: kept {len(before)} grids (code, area, 网格长/网格员 unchanged), rebuilt 0")
    assert lines[-1] == "dry run: nothing written"
    assert _tier3(tiered) == before
    refused = runner.invoke(app, ["grids", "tiers", "--dry-run"], env=env)
    assert isinstance(refused.exception, InvalidInput)  # gisgrid.cli.main prints it as one line, exit 1
    assert str(refused.exception) == "--dry-run applies to --from-file only"
