"""`gisgrid boundaries recode OLD NEW`: a 临时编码 provisional code (--assign-codes) replaced by the official one in
every table that holds it, in one transaction; refusals name the code and the reason, exit 3, write nothing; and
`boundaries import` refuses a second unit on the place of a provisional one, pointing at the recode."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from api.main import create_app
from gisgrid import case_actions, case_intake
from gisgrid import cases as svc
from gisgrid.boundaries import BoundaryOptions
from gisgrid.cli import app
from gisgrid.components_store import ComponentInput, catalogue_for, save_component
from gisgrid.errors import Conflict, InvalidInput, NotFound, Reason
from gisgrid.grids import workflows
from gisgrid.settings import Settings
from gisgrid.storage import recode
from tests.fixtures import COMMUNITIES, DISTRICT, STREETS, small_district
from tests.test_provisional_codes import ASSIGN, DONGMING, write_without_codes

runner = CliRunner()
NOW = dt.datetime(2025, 9, 26, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
#: Every stored column that holds an administrative or grid code (what a recode may rewrite), for "nothing written".
CODE_COLUMNS = {
    "admin_units": ("code", "parent_code", "code_assigned"),
    "management_grids": ("code", "parent_code", "admin_code", "leader_name"),
    "unit_grids": ("code", "unit_code", "street_code", "community_code", "tier3_code"),
    "cases": ("id", "unit_grid_code", "street_code", "community_code", "tier3_code"),
    "case_transitions": ("id", "details"),
    "components": ("id", "unit_grid_code", "street_code", "community_code"),
    "component_history": ("id", "action"),
    "component_cells": ("unit_grid_code", "n"),
    "retired_unit_grids": ("code", "unit_code"),
}


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            table: sorted(
                (tuple(r) for r in conn.execute(text(f"SELECT {', '.join(cols)} FROM {table}"))),
                key=repr,
            )
            for table, cols in CODE_COLUMNS.items()
        }


def escalated_to(engine: Engine, case_id: int) -> list[str]:
    return column(
        engine, "SELECT details->>'to_grid' FROM case_transitions WHERE case_id = :i AND action = 'escalate'", i=case_id
    )


def column(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return sorted(conn.execute(text(sql), params).scalars())


@dataclass
class Place:
    """What the test put inside the unit that will be recoded."""

    cells: list[str]  # its unit grids
    tier3: list[str]  # its tier-3 grids
    open_case: int
    finished_case: int
    component: str


def env_of(settings: Settings, **extra: str) -> dict[str, str]:
    return {"GISGRID_DATABASE_URL": settings.database_url or "", **extra}


def populate(engine: Engine, settings: Settings, tmp_path: Path, blank: tuple[str, ...], inside: str) -> Place:
    """The small district with the units ``blank`` numbered, its grids and tiers, a 网格长 on the first tier-3 grid
    of community ``inside``, a case in progress and a finished (不予立案) one there, and a component."""
    workflows.import_boundaries(engine, write_without_codes(tmp_path, blank), ASSIGN)
    workflows.generate_grids(engine)
    workflows.build_tiers(engine, target_size=20)
    cells = column(engine, "SELECT code FROM unit_grids WHERE community_code = :c", c=inside)
    tier3 = column(engine, "SELECT code FROM management_grids WHERE tier = 3 AND admin_code = :c", c=inside)
    with engine.begin() as conn:
        conn.execute(text("UPDATE management_grids SET leader_name = '张网格' WHERE code = :c"), {"c": tier3[0]})
        x, y = conn.execute(
            text("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM unit_grids WHERE code = :c"),
            {"c": cells[0]},
        ).one()
    services = svc.load_services(settings.model_copy(update={"data_dir": tmp_path / "data"}))
    svc.sync_reference_data(engine, services)

    def report(description: str) -> int:
        item = case_intake.Intake(class_code="06010", lon=x, lat=y, datum="cgcs2000", description=description)
        return case_intake.intake(engine, services, item, now=NOW)[0]

    open_case, finished = report("open"), report("finished")
    reject = case_actions.ActionRequest("reject", "intake", "测试员", 1, payload={"reason": "不属于立案范围"})
    case_actions.act(engine, services, finished, reject, now=NOW)
    # 提级 to the community grid: the log records the grid's code.
    for version, (action, role, payload) in enumerate(
        [("verify", "supervisor", {}), ("file", "shift_lead", {}), ("escalate", "grid_worker", {"reason": "协调"})],
        start=1,
    ):
        case_actions.act(
            engine,
            services,
            open_case,
            case_actions.ActionRequest(action, role, "测试员", version, payload=payload),
            now=NOW,
        )
    lamp = save_component(
        engine,
        catalogue_for(Settings()),
        ComponentInput(class_code="01037", lon=x, lat=y, datum="cgcs2000", maint_dept="990000000000000008"),
        actor="t",
    )
    return Place(cells, tier3, open_case, finished, lamp["id"])


def case_codes(engine: Engine, case_id: int) -> tuple[str, ...]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT state, unit_grid_code, street_code, community_code, tier3_code FROM cases WHERE id = :i"),
            {"i": case_id},
        ).one()
    return tuple(row)


def component_codes(engine: Engine, component_id: str) -> tuple[str, ...]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT unit_grid_code, street_code, community_code FROM components WHERE id = :i"),
            {"i": component_id},
        ).one()
    return tuple(row)


def expected_counts(
    place: Place, *, units: int, tiers: dict[int, int], finished_note: int = 1, retired: int = 0
) -> str:
    return "\n".join(
        [
            f"admin_units: {units} (the unit and its children)",
            "management_grids: " + ", ".join(f"tier {t} {n}" for t, n in tiers.items()) + " (网格长/网格员 kept)",
            f"unit_grids: {len(place.cells)}",
            f"retired_unit_grids: {retired} (retired codes, kept for their place)",
            f"cases: 2 ({finished_note} finished: 结案/不予立案/作废)",
            "case_transitions: 1 (提级 records naming a grid)",
            "components: 1 (1 history entries written)",
            "component_cells: 1",
        ]
    )


def test_recode_of_a_community_rewrites_every_table_and_the_code_is_official(
    clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    place = populate(clean_db, settings, tmp_path, (DONGMING,), DONGMING)
    # Its last cell retired, as a regeneration that no longer has it remembers it (grids.numbering).
    gone = place.cells.pop()
    with clean_db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO retired_unit_grids (code, unit_code, seq, row, col, geom) "
                "SELECT code, unit_code, seq, row, col, geom FROM unit_grids WHERE code = :c"
            ),
            {"c": gone},
        )
        conn.execute(text("DELETE FROM unit_grids WHERE code = :c"), {"c": gone})
    new = "419902002005"
    cell0 = place.cells[0]
    assert case_codes(clean_db, place.finished_case) == ("rejected", cell0, STREETS[1], DONGMING, place.tier3[0])
    assert escalated_to(clean_db, place.open_case) == [DONGMING]

    before = snapshot(clean_db)
    dry = runner.invoke(app, ["boundaries", "recode", DONGMING, new, "--dry-run"], env=env_of(settings))
    counts = expected_counts(place, units=1, tiers={2: 1, 3: len(place.tier3)}, retired=1)
    assert (dry.exit_code, dry.stdout) == (
        0,
        f"community 东明社区: {DONGMING} → {new} (official); would rewrite:\n{counts}\ndry run: nothing written\n",
    )
    assert snapshot(clean_db) == before

    r = runner.invoke(app, ["boundaries", "recode", DONGMING, new], env=env_of(settings))
    assert (r.exit_code, r.stdout) == (0, f"community 东明社区: {DONGMING} → {new} (official); rewrote:\n{counts}\n")
    assert snapshot(clean_db) != before

    assert dict(column_pairs(clean_db, "SELECT code, code_assigned FROM admin_units")) == {
        DISTRICT: False,
        STREETS[0]: False,
        STREETS[1]: False,
        COMMUNITIES[0]: False,
        COMMUNITIES[1]: False,
        new: False,
    }
    # The highest unit-grid number issued goes with the cells, so a later regeneration numbers above it.
    assert column(clean_db, "SELECT grid_seq_issued FROM admin_units WHERE code = :c", c=new) == [len(place.cells) + 1]
    # The retired code goes with its unit too: the cell coming back takes it back under the official code.
    with clean_db.connect() as conn:
        retired = conn.execute(text("SELECT code, unit_code FROM retired_unit_grids")).all()
    assert [tuple(r) for r in retired] == [(new + gone[12:], new)]
    renamed = [new + c[12:] for c in place.cells]
    assert column(clean_db, "SELECT code FROM unit_grids WHERE left(code, 12) = :c", c=DONGMING) == []
    assert column(clean_db, "SELECT code FROM unit_grids WHERE unit_code = :c", c=new) == renamed
    assert column(clean_db, "SELECT DISTINCT community_code FROM unit_grids WHERE left(code, 12) = :c", c=new) == [new]
    new_tier3 = [new + c[12:] for c in place.tier3]
    assert column(clean_db, "SELECT code FROM management_grids WHERE left(code, 12) = :c", c=new) == [new, *new_tier3]
    assert column(clean_db, "SELECT code FROM management_grids WHERE left(code, 12) = :c", c=DONGMING) == []
    assert column(clean_db, "SELECT leader_name FROM management_grids WHERE code = :c", c=new_tier3[0]) == ["张网格"]
    assert column(clean_db, "SELECT parent_code FROM management_grids WHERE code = :c", c=new_tier3[0]) == [new]
    # The finished case follows too: the provisional code stood for the same place.
    assert case_codes(clean_db, place.open_case) == ("filed", renamed[0], STREETS[1], new, new_tier3[0])
    assert escalated_to(clean_db, place.open_case) == [new]
    assert case_codes(clean_db, place.finished_case) == ("rejected", renamed[0], STREETS[1], new, new_tier3[0])
    assert component_codes(clean_db, place.component) == (renamed[0], STREETS[1], new)
    assert column(clean_db, "SELECT unit_grid_code FROM component_cells") == [renamed[0]]
    assert column_pairs(
        clean_db,
        "SELECT action, changes FROM component_history WHERE component_id = :i AND action = 'recode'",
        i=place.component,
    ) == [("recode", {"unit_grid_code": [cell0, renamed[0]], "community_code": [DONGMING, new]})]

    listed = runner.invoke(app, ["boundaries", "list", "--provisional"], env=env_of(settings))
    assert (listed.exit_code, listed.output) == (0, "no unit has a provisional code\n")
    out = tmp_path / "cells.shp"
    workflows.export_grids(clean_db, out, tier="unit")
    back = gpd.read_file(out)
    assert set(back["CODE"]) >= set(renamed) and not back["CODE_PROV"].astype(bool).any()

    with TestClient(create_app(settings)) as client:
        cell = client.get(f"/grids/{renamed[0]}").json()["properties"]
        assert (cell["community_code"], cell["tier3_code"], cell["code_provisional"]) == (new, new_tier3[0], False)
        assert client.get(f"/grids/{cell0}").status_code == 404
        listed_grids = {f["id"] for f in client.get("/grids", params={"limit": 1000}).json()["features"]}
        assert set(renamed) <= listed_grids and not set(place.cells) & listed_grids
        case = client.get(f"/cases/{place.finished_case}").json()
        assert (case["unit_grid_code"], case["community_code"], case["tier3_code"]) == (renamed[0], new, new_tier3[0])


def column_pairs(engine: Engine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted((tuple(r) for r in conn.execute(text(sql), params)), key=repr)


def test_recode_of_a_street_renames_its_communities_and_their_grids(
    clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    """东关街道 was numbered 419902002 (001 is taken); its community's own part came from the file."""
    place = populate(clean_db, settings, tmp_path, (STREETS[1],), DONGMING)
    new, new_community = "419902007", "419902007001"
    r = runner.invoke(app, ["boundaries", "recode", STREETS[1], new], env=env_of(settings))
    counts = expected_counts(place, units=2, tiers={1: 1, 2: 1, 3: len(place.tier3)})
    assert (r.exit_code, r.stdout) == (0, f"street 东关街道: {STREETS[1]} → {new} (official); rewrote:\n{counts}\n")

    assert column_pairs(clean_db, "SELECT code, parent_code, code_assigned FROM admin_units WHERE left(code, 9) = :s",
                        s=new) == [(new, DISTRICT, False), (new_community, new, False)]  # fmt: skip
    assert column(clean_db, "SELECT code FROM admin_units WHERE left(code, 9) = :s", s=STREETS[1]) == []
    renamed = [new_community + c[12:] for c in place.cells]
    assert column(clean_db, "SELECT code FROM unit_grids WHERE community_code = :c", c=new_community) == renamed
    assert column(clean_db, "SELECT DISTINCT street_code FROM unit_grids WHERE left(code, 9) = :s", s=new) == [new]
    new_tier3 = [new_community + c[12:] for c in place.tier3]
    assert column_pairs(
        clean_db, "SELECT code, tier, parent_code, admin_code FROM management_grids WHERE left(code, 9) = :s", s=new
    ) == sorted(
        [(new, 1, None, new), (new_community, 2, new, new_community)]
        + [(c, 3, new_community, new_community) for c in new_tier3],
        key=repr,
    )
    assert case_codes(clean_db, place.open_case) == ("filed", renamed[0], new, new_community, new_tier3[0])
    assert escalated_to(clean_db, place.open_case) == [new_community]
    assert case_codes(clean_db, place.finished_case) == ("rejected", renamed[0], new, new_community, new_tier3[0])
    assert component_codes(clean_db, place.component) == (renamed[0], new, new_community)
    listed = runner.invoke(app, ["boundaries", "list", "--provisional"], env=env_of(settings))
    assert (listed.exit_code, listed.output) == (0, "no unit has a provisional code\n")


@pytest.fixture
def numbered(clean_db: Engine, settings: Settings, tmp_path: Path) -> Iterator[Engine]:
    """东关街道 numbered (419902002), its community 东明社区 numbered too (419902002001), grids, tiers, a case."""
    populate(clean_db, settings, tmp_path, (STREETS[1], DONGMING), DONGMING)
    yield clean_db


@pytest.mark.parametrize(
    ("old", "new", "reason", "message"),
    [
        ("419902002009", "419902002005", Reason.UNIT_NOT_FOUND, "no stored unit has the code '419902002009'"),
        (
            COMMUNITIES[0],
            "419902001005",
            Reason.CODE_NOT_PROVISIONAL,
            "419902001001 (桃园社区, community) is not a "
            "临时编码 provisional code: its code was taken from the boundary file (official)",
        ),
        (DISTRICT, "419903", Reason.CODE_NOT_PROVISIONAL, "district codes are GB/T 2260 codes, never numbered"),
        (DONGMING, "41990200200x", Reason.CODE_MALFORMED, "new code '41990200200x': codes are digits only"),
        (DONGMING, "419902002000", Reason.CODE_MALFORMED, "new code 419902002000: local code 000 is not allowed"),
        (
            DONGMING,
            "419902005",
            Reason.CODE_OTHER_LEVEL,
            "new code 419902005 has 9 digits but 419902002001 is a community (12 digits): a recode keeps the level",
        ),
        (
            DONGMING,
            "419902001005",
            Reason.CODE_OTHER_PARENT,
            "new code 419902001005 is under street 419902001 but "
            "419902002001 is under street 419902002: a recode keeps the parent",
        ),
        (
            STREETS[1],
            "419903002",
            Reason.CODE_OTHER_PARENT,
            "is under district 419903 but 419902002 is under district 419902",
        ),
        (STREETS[1], STREETS[0], Reason.CODE_EXISTS, "new code 419902001 is already in use (unit 419902001)"),
        (DONGMING, DONGMING, Reason.CODE_EXISTS, "new code 419902002001 is already in use (unit 419902002001)"),
    ],
)
def test_a_refused_recode_names_code_and_reason_exits_2_and_writes_nothing(
    numbered: Engine, settings: Settings, old: str, new: str, reason: Reason, message: str
) -> None:
    before = snapshot(numbered)
    for extra in ([], ["--dry-run"]):
        r = runner.invoke(app, ["boundaries", "recode", old, new, *extra], env=env_of(settings))
        assert r.exit_code == 3, r.output
        assert r.stdout == ""
        assert r.stderr.startswith(f"error [{reason}]: recode {old} → {new} refused: ")
        assert message in r.stderr and r.stderr.endswith("; nothing written\n")
        assert snapshot(numbered) == before
    kind = {Reason.UNIT_NOT_FOUND: NotFound, Reason.CODE_EXISTS: Conflict}.get(reason, InvalidInput)
    with pytest.raises(kind) as refused:
        workflows.recode_unit(numbered, old, new)
    assert refused.value.reason == reason


def test_a_community_whose_street_only_is_provisional_points_at_the_street(clean_db: Engine, tmp_path: Path) -> None:
    workflows.import_boundaries(clean_db, write_without_codes(tmp_path, (STREETS[1],)), ASSIGN)
    with pytest.raises(InvalidInput, match="only its street part 419902002 is provisional: recode the street") as e:
        workflows.recode_unit(clean_db, DONGMING, "419902002005")
    assert e.value.reason == Reason.CODE_NOT_PROVISIONAL


def test_recode_warns_about_a_routing_rule_naming_the_old_code(
    clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    workflows.import_boundaries(clean_db, write_without_codes(tmp_path, (DONGMING,)), ASSIGN)
    rules = tmp_path / "routing_local.csv"
    rules.write_text(
        "rule_id,priority,scheme,class_prefix,area_prefix,tier_grid,time_from,time_to,weekdays,department,note\n"
        f"L001,10,gbt47678,06,{DONGMING}001,,,,,990000000000000003,东明社区一号网格\n",
        encoding="utf-8",
    )
    r = runner.invoke(
        app,
        ["boundaries", "recode", DONGMING, "419902002005"],
        env=env_of(settings, GISGRID_CATALOGUE_EXTRA=f'["{rules}"]'),
    )
    assert r.exit_code == 0, r.output
    assert r.stderr == (
        f"warning: routing rule L001 ({rules}:2) names {DONGMING}001, inside the old code {DONGMING}: it no longer "
        "matches; edit it to 419902002005001 (rule files are not rewritten)\n"
    )
    assert rules.read_text(encoding="utf-8").count(f"{DONGMING}001") == 1  # the data file is left alone


def write_official_as(folder: Path, codes: dict[str, str], name: str = "official_new.geojson") -> Path:
    """The small district with official codes, ``codes`` renaming some (parents follow)."""
    gdf = small_district()
    gdf["code"] = gdf["code"].replace(codes)
    gdf["parent_code"] = gdf["parent_code"].replace(codes)
    path = folder / name
    gdf.to_file(path, driver="GeoJSON")
    return path


def test_import_refuses_a_second_unit_on_the_place_of_a_provisional_one_until_recoded(
    clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    workflows.import_boundaries(clean_db, write_without_codes(tmp_path, (DONGMING,)), ASSIGN)
    official = write_official_as(tmp_path, {DONGMING: "419902002005"})
    before = snapshot(clean_db)
    for extra in ([], ["--dry-run"]):
        r = runner.invoke(app, ["boundaries", "import", str(official), *extra], env=env_of(settings))
        assert r.exit_code == 1
        message = str(r.exception)
        assert message.startswith(
            "official_new.geojson: 1 unit(s) under a code not stored cover the place of a stored unit with a "
            "临时编码 provisional code: 419902002005 东明社区 covers stored 419902002001 东明社区 (100.0% shared)"
        ), message
        assert "(gisgrid boundaries recode 419902002001 419902002005) and import again; nothing written" in message
        assert r.exception.reason == Reason.MATCHES_PROVISIONAL_UNIT  # type: ignore[union-attr]
        assert snapshot(clean_db) == before

    recoded = runner.invoke(app, ["boundaries", "recode", DONGMING, "419902002005"], env=env_of(settings))
    assert recoded.exit_code == 0, recoded.output
    again = workflows.import_boundaries(clean_db, official, BoundaryOptions())
    assert again.summary is not None and (again.summary.inserted, again.summary.updated) == (0, 6)
    assert column(clean_db, "SELECT code FROM admin_units WHERE level = 'community'") == [
        COMMUNITIES[0],
        COMMUNITIES[1],
        "419902002005",
    ]


def test_import_guard_names_the_street_when_only_the_street_is_numbered(clean_db: Engine, tmp_path: Path) -> None:
    workflows.import_boundaries(clean_db, write_without_codes(tmp_path, (STREETS[1],)), ASSIGN)
    official = write_official_as(tmp_path, {STREETS[1]: "419902007", DONGMING: "419902007001"})
    with pytest.raises(InvalidInput) as refused:
        workflows.import_boundaries(clean_db, official, BoundaryOptions())
    assert refused.value.reason == Reason.MATCHES_PROVISIONAL_UNIT
    assert "2 unit(s) under a code not stored" in refused.value.message
    assert "419902007 东关街道 covers stored 419902002 东关街道 (100.0% shared); 419902007001 东明社区 covers stored " \
        "419902002001 东明社区 (100.0% shared)" in refused.value.message  # fmt: skip
    assert "(gisgrid boundaries recode 419902002 419902007)" in refused.value.message
    assert [(d["value"], d["stored_code"], d["code"]) for d in refused.value.detail] == [
        ("419902007", STREETS[1], "matches_provisional_unit"),
        ("419902007001", DONGMING, "matches_provisional_unit"),
    ]


@pytest.mark.parametrize("via", ["sync", "async"])
def test_a_report_read_before_a_recode_and_written_after_it_gets_the_new_codes(
    clean_db: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    """review18 #1: a report located before the recode committed was inserted after it with the old codes, which
    no longer exist anywhere (no 网格长 to escalate to, no region in the evaluation). Its write now checks that its
    unit grid is still there and reads again when it is not."""
    from tests.test_cases import intake_over_asyncpg

    place = populate(clean_db, settings, tmp_path, (DONGMING,), DONGMING)
    new = "419902002005"
    services = svc.load_services(settings.model_copy(update={"data_dir": tmp_path / "data"}))
    stale = case_intake._write_params
    recoded: list[str] = []

    def recode_between_read_and_write(*args: Any) -> dict[str, Any]:
        if not recoded:  # the first write's binds come from the read made before the recode
            recoded.append(workflows.recode_unit(clean_db, DONGMING, new).new)
        return stale(*args)

    monkeypatch.setattr(case_intake, "_write_params", recode_between_read_and_write)
    with clean_db.connect() as conn:
        x, y = conn.execute(
            text("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM unit_grids WHERE code = :c"),
            {"c": place.cells[0]},
        ).one()
    item = case_intake.Intake(class_code="06010", lon=x, lat=y, datum="cgcs2000", description="read before the recode")
    file = case_intake.intake if via == "sync" else intake_over_asyncpg
    case_id, created = file(clean_db, services, item, now=NOW)
    assert created and recoded == [new]
    renamed, tier3 = new + place.cells[0][12:], new + place.tier3[0][12:]
    assert case_codes(clean_db, case_id) == ("reported", renamed, STREETS[1], new, tier3)
    assert column(clean_db, "SELECT id FROM cases WHERE left(community_code, 12) = :c", c=DONGMING) == []
    assert column(clean_db, "SELECT count(*) FROM cases") == [3]  # populate's two and this one: one insert


def test_a_recode_that_cannot_have_the_grids_gives_up_and_writes_nothing(
    clean_db: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review19 D2: a transaction holding the grids (an import) left the recode — and everything queued behind it:
    tiles, reports — waiting for as long as it ran. The recode waits RECODE_LOCK_WAIT_S, then refuses."""
    populate(clean_db, settings, tmp_path, (DONGMING,), DONGMING)
    monkeypatch.setattr(recode, "RECODE_LOCK_WAIT_S", 1)
    before = snapshot(clean_db)
    with clean_db.connect() as holder, holder.begin():
        holder.execute(text("SELECT count(*) FROM unit_grids")).scalar_one()  # an import reading the grids
        with pytest.raises(Conflict, match=r"^a lock the recode needs — the grids, .* for more than 1 s, or ") as err:
            workflows.recode_unit(clean_db, DONGMING, "419902002005")
    assert err.value.reason == Reason.GRIDS_BUSY
    assert snapshot(clean_db) == before


@pytest.mark.parametrize("writer", ["escalate", "merge", "move_component"])
def test_writers_take_the_grids_before_their_rows_so_a_recode_cannot_deadlock_with_them(
    clean_db: Engine, settings: Settings, tmp_path: Path, writer: str
) -> None:
    """review19 D1: an action locked its case, then read the grids for its 提级; the recode held the grids, then
    wanted that case: each waited for the other (deadlock: the action failed as "database unavailable", or the
    recode did). Writers now take the grids first: while a recode holds them, they hold no row it needs."""
    import threading

    from gisgrid.components_store import update_component

    place = populate(clean_db, settings, tmp_path, (DONGMING,), DONGMING)
    services = svc.load_services(settings.model_copy(update={"data_dir": tmp_path / "data"}))
    done: list[object] = []
    with clean_db.connect() as conn:
        x, y = conn.execute(
            text("SELECT ST_X(geom), ST_Y(geom) FROM cases WHERE id = :i"), {"i": place.open_case}
        ).one()
    duplicate = case_intake.intake(
        clean_db, services, case_intake.Intake(class_code="06010", lon=x, lat=y, datum="cgcs2000"), now=NOW
    )[0]

    def write() -> None:
        try:
            if writer == "escalate":
                req = case_actions.ActionRequest("escalate", "grid_worker", "测试员", 4, payload={"reason": "再提级"})
                done.append(case_actions.act(clean_db, services, place.open_case, req, now=NOW))
            elif writer == "merge":  # it locks both cases
                done.append(
                    case_actions.merge_duplicate(
                        clean_db, services, duplicate, place.open_case, actor="值班长", role="shift_lead", version=1
                    )
                )
            else:
                done.append(update_component(clean_db, catalogue_for(Settings()), place.component,
                                             {"name": "路灯2"}, actor="t", expected_version=1))  # fmt: skip
        except Exception as exc:  # reported below
            done.append(exc)

    with clean_db.connect() as recode, recode.begin():  # what recode_unit holds, then the rows it rewrites
        recode.execute(text("SET LOCAL lock_timeout = '3s'"))
        recode.execute(text("LOCK TABLE unit_grids, management_grids IN ACCESS EXCLUSIVE MODE"))
        thread = threading.Thread(target=write)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()  # waiting for the grids …
        table, key = ("components", place.component) if writer == "move_component" else ("cases", place.open_case)
        recode.execute(text(f"SELECT 1 FROM {table} WHERE id = :k FOR UPDATE"), {"k": key})  # … not holding its row
    thread.join(60)  # returns once done: long enough for a busy machine
    assert len(done) == 1 and not isinstance(done[0], Exception), done
