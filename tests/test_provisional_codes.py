"""Codes numbered by --assign-codes are stored as provisional (admin_units.code_assigned) and every grid whose
code embeds one says so: the import report, `boundaries list`, the exports and the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from api.main import create_app
from gisgrid.boundaries import BoundaryOptions
from gisgrid.cli import app
from gisgrid.grids import workflows
from gisgrid.settings import Settings
from tests.fixtures import COMMUNITIES, DISTRICT, STREETS, small_district

runner = CliRunner()
ASSIGN = BoundaryOptions(assign_codes=True)
DONGMING = COMMUNITIES[2]  # 东明社区, the only community of street 2: numbered 001 it gets its official code


def write_without_codes(folder: Path, blank: tuple[str, ...], name: str = "blank.geojson") -> Path:
    """The small district with the code of the units ``blank`` left empty (their level and parent kept)."""
    gdf = small_district()
    gdf["code"] = gdf["code"].where(~gdf["code"].isin(blank), None)
    path = folder / name
    gdf.to_file(path, driver="GeoJSON")
    return path


def write_official(folder: Path) -> Path:
    path = folder / "official.geojson"
    small_district().to_file(path, driver="GeoJSON")
    return path


def assigned_flags(engine: Engine) -> dict[str, bool]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT code, code_assigned FROM admin_units")).all())


def env_of(settings: Settings) -> dict[str, str]:
    return {"GISGRID_DATABASE_URL": settings.database_url or ""}


def test_import_marks_exactly_the_numbered_units_and_reports_them(
    clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    src = write_without_codes(tmp_path, (DONGMING,))
    r = runner.invoke(app, ["boundaries", "import", str(src), "--assign-codes"], env=env_of(settings))
    assert r.exit_code == 0, r.output
    assert "assigned 1 codes (north→south, then west→east, per parent): 临时编码 provisional" in r.output
    assert f"\n临时编码 provisional {DONGMING} 东明社区 (community)\n" in r.output
    assert r.output.endswith(
        "stored: 6 inserted, 0 updated\n临时编码 provisional: 1 stored unit(s) have a code gisgrid numbered "
        "(theirs or their street's); list them with gisgrid boundaries list --provisional\n"
    )
    assert assigned_flags(clean_db) == {c: c == DONGMING for c in (DISTRICT, *STREETS, *COMMUNITIES)}

    listed = runner.invoke(app, ["boundaries", "list", "--provisional"], env=env_of(settings))
    assert (listed.exit_code, listed.output) == (
        0,
        f"{DONGMING}\tcommunity\t东明社区\t{STREETS[1]}\t临时编码 provisional\n1 unit(s) with provisional codes\n",
    )


def test_official_import_reports_no_provisional_codes(clean_db: Engine, settings: Settings, tmp_path: Path) -> None:
    r = runner.invoke(app, ["boundaries", "import", str(write_official(tmp_path))], env=env_of(settings))
    assert r.exit_code == 0 and "provisional" not in r.output, r.output
    listed = runner.invoke(app, ["boundaries", "list", "--level", "street"], env=env_of(settings))
    assert (listed.exit_code, listed.output) == (
        0,
        f"{STREETS[0]}\tstreet\t西城街道\t{DISTRICT}\n{STREETS[1]}\tstreet\t东关街道\t{DISTRICT}\n2 unit(s)\n",
    )
    assert not any(assigned_flags(clean_db).values())


def test_a_numbered_street_makes_its_communities_codes_provisional(
    clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    """The community's own part came from the file, but its 12 digits embed the street's numbered part."""
    workflows.import_boundaries(clean_db, write_without_codes(tmp_path, (STREETS[1],)), ASSIGN)
    assert assigned_flags(clean_db) == {c: c == STREETS[1] for c in (DISTRICT, *STREETS, *COMMUNITIES)}
    listed = runner.invoke(app, ["boundaries", "list", "--provisional"], env=env_of(settings))
    assert (listed.exit_code, listed.output) == (
        0,
        f"{STREETS[1]}\tstreet\t东关街道\t{DISTRICT}\t临时编码 provisional\n"
        f"{DONGMING}\tcommunity\t东明社区\t{STREETS[1]}\t上级临时编码 provisional street part {STREETS[1]}\n"
        "2 unit(s) with provisional codes\n",
    )


@pytest.mark.parametrize(("suffix", "field"), [(".shp", "CODE_PROV"), (".gpkg", "code_provisional")])
def test_exports_flag_the_grids_whose_code_embeds_a_numbered_part_until_official_reimport(
    clean_db: Engine, tmp_path: Path, suffix: str, field: str
) -> None:
    workflows.import_boundaries(clean_db, write_without_codes(tmp_path, (DONGMING,)), ASSIGN)
    workflows.generate_grids(clean_db)
    workflows.build_tiers(clean_db, target_size=20)

    def exported(tier: str) -> dict[str, bool]:
        out = tmp_path / f"tier{tier}{suffix}"
        workflows.export_grids(clean_db, out, tier=tier)
        back = gpd.read_file(out)
        code = "CODE" if suffix == ".shp" else "code"
        return dict(zip(back[code], back[field].astype(bool), strict=True))

    cells = exported("unit")
    assert cells and cells == {c: c[:12] == DONGMING for c in cells}
    assert sum(cells.values()) > 0 and not all(cells.values())
    assert exported("1") == {STREETS[0]: False, STREETS[1]: False}
    assert exported("2") == {COMMUNITIES[0]: False, COMMUNITIES[1]: False, DONGMING: True}
    tier3 = exported("3")
    assert tier3 == {c: c[:12] == DONGMING for c in tier3} and any(tier3.values())

    # The city gets the official code (here the same number): re-importing the file that carries it clears the flag.
    again = workflows.import_boundaries(clean_db, write_official(tmp_path), BoundaryOptions())
    assert again.summary is not None and (again.summary.inserted, again.summary.updated) == (0, 6)
    assert again.provisional_stored == 0
    assert not any(assigned_flags(clean_db).values())
    assert not any(exported("unit").values()) and not any(exported("3").values())


def test_grids_make_flags_the_cells_of_numbered_units(tmp_path: Path) -> None:
    result = workflows.make_grids_from_file(
        write_without_codes(tmp_path, (DONGMING,)), ASSIGN, out=tmp_path / "cells.shp"
    )
    back = gpd.read_file(tmp_path / "cells.shp")
    flags = dict(zip(back["CODE"], back["CODE_PROV"].astype(bool), strict=True))
    assert len(flags) == len(result.cells) and flags == {c: c[:12] == DONGMING for c in flags}
    assert any(flags.values()) and not all(flags.values())


@pytest.fixture
def client(clean_db: Engine, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    workflows.import_boundaries(clean_db, write_without_codes(tmp_path, (DONGMING,)), ASSIGN)
    workflows.generate_grids(clean_db)
    workflows.build_tiers(clean_db, target_size=20)
    with TestClient(create_app(settings)) as c:
        yield c


def _cell_in(engine: Engine, community: str) -> tuple[str, float, float]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM unit_grids "
                "WHERE community_code = :c ORDER BY code LIMIT 1"
            ),
            {"c": community},
        ).one()
    return row[0], row[1], row[2]


def test_api_says_which_grid_codes_are_provisional(client: TestClient, clean_db: Engine, tmp_path: Path) -> None:
    numbered, x, y = _cell_in(clean_db, DONGMING)
    official, ox, oy = _cell_in(clean_db, COMMUNITIES[0])

    def answers() -> tuple[bool, bool, bool, bool, bool, bool]:
        locate = lambda lon, lat: client.get(  # noqa: E731
            "/grids/locate", params={"lon": lon, "lat": lat, "datum": "cgcs2000"}
        ).json()
        return (
            client.get(f"/grids/{numbered}").json()["properties"]["code_provisional"],
            client.get(f"/grids/{official}").json()["properties"]["code_provisional"],
            client.get(f"/grids/{DONGMING}").json()["properties"]["code_provisional"],
            client.get(f"/grids/{COMMUNITIES[0]}").json()["properties"]["code_provisional"],
            locate(x, y)["code_provisional"],
            locate(ox, oy)["code_provisional"],
        )

    assert answers() == (True, False, True, False, True, False)
    listed = client.get("/grids", params={"limit": 1000}).json()["features"]
    assert {f["id"]: f["properties"]["code_provisional"] for f in listed} == {
        f["id"]: f["id"][:12] == DONGMING for f in listed
    }

    workflows.import_boundaries(clean_db, write_official(tmp_path), BoundaryOptions())
    assert answers() == (False, False, False, False, False, False)
