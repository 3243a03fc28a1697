"""Tier-3 grids and their 网格长/网格员 survive regeneration (DB11/T 2157: grids are 相对稳定).

Specification: regenerating unit grids from unchanged boundaries keeps every tier-3 grid, its code, its cells,
its leader and staff, and the tier-3 code of cases; a boundary change regroups only the changed unit; rebuilding
tiers with the same result keeps staff; anything that would drop staff is refused without ``replace_tiers`` and,
with it, is done and reported.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import shapely
from sqlalchemy import Engine, text

from gisgrid import case_actions, case_intake
from gisgrid import cases as svc
from gisgrid.errors import InvalidInput
from gisgrid.grids import workflows
from gisgrid.settings import Settings
from tests.fixtures import COMMUNITIES, X0, Y0
from tests.test_components_store import inside_points


def _tier3(engine: Engine) -> dict[str, tuple[str | None, list[str]]]:
    """code → (leader_name, staff names) of every tier-3 grid."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT code, leader_name, staff FROM management_grids WHERE tier = 3")).all()
    return {r.code: (r.leader_name, [m["name"] for m in r.staff or []]) for r in rows}


def _assignment(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT code, tier3_code FROM unit_grids")).all())


def _staff(engine: Engine, tmp_path: Path, codes: list[str]) -> None:
    rows = [(c, "网格长", f"组长{i}", "13800000000") for i, c in enumerate(codes)]
    rows += [(c, "网格员", f"组员{i}", "") for i, c in enumerate(codes)]
    path = tmp_path / "staff.csv"
    pd.DataFrame(rows, columns=["grid_code", "role", "name", "phone"]).to_csv(path, index=False)
    assert workflows.import_staff(engine, path) == len(codes)


@pytest.fixture
def staffed(loaded: Engine, tmp_path: Path) -> Engine:
    """The small district with every tier-3 grid staffed."""
    _staff(loaded, tmp_path, sorted(_tier3(loaded)))
    return loaded


def test_regenerating_unchanged_boundaries_keeps_every_tier3_grid_and_its_staff(staffed: Engine) -> None:
    grids, cells = _tier3(staffed), _assignment(staffed)
    assert len(grids) >= 3 and all(leader for leader, _ in grids.values())

    result = workflows.generate_grids(staffed)

    assert result.tier3 is not None
    assert result.tier3.kept == sorted(grids)
    assert (result.tier3.rebuilt, result.tier3.new, result.tier3.dropped) == ([], [], [])
    assert result.tier3.staff_dropped == [] and result.regrouped_units == []
    assert _tier3(staffed) == grids  # same codes, same 网格长 and 网格员
    assert _assignment(staffed) == cells  # every unit grid in the same tier-3 grid
    assert "kept " + str(len(grids)) in result.tier3.to_text()


def test_a_case_filed_after_regeneration_gets_its_tier3_grid(staffed: Engine, services: svc.CaseServices) -> None:
    xs, ys = inside_points(1, seed=21)
    now = dt.datetime(2025, 9, 26, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
    item = case_intake.Intake(class_code="06010", lon=float(xs[0]), lat=float(ys[0]), datum="cgcs2000")
    before, _ = case_intake.intake(staffed, services, item, now=now)

    workflows.generate_grids(staffed)
    after, _ = case_intake.intake(staffed, services, dataclasses.replace(item, description="again"), now=now)

    with staffed.connect() as conn:
        codes = dict(conn.execute(text("SELECT id, tier3_code FROM cases")).all())
    assert codes[before] is not None and len(codes[before]) == 14
    assert codes[after] == codes[before]


def test_tiers_rebuilding_the_same_grouping_keeps_staff(staffed: Engine) -> None:
    grids = _tier3(staffed)
    result = workflows.build_tiers(staffed, target_size=20)
    assert result.change.kept == sorted(grids) and result.change.staff_dropped == []
    assert _tier3(staffed) == grids


def test_a_different_grouping_that_would_drop_staff_is_refused_without_the_flag(staffed: Engine) -> None:
    grids, cells = _tier3(staffed), _assignment(staffed)
    with pytest.raises(InvalidInput, match=r"--replace-tiers") as err:
        workflows.build_tiers(staffed, target_size=7)
    assert "网格长/网格员" in str(err.value)
    assert _tier3(staffed) == grids and _assignment(staffed) == cells  # nothing written

    result = workflows.build_tiers(staffed, target_size=7, replace_tiers=True)

    change = result.change
    assert change.staff_dropped and set(change.staff_dropped) <= set(grids)
    after = _tier3(staffed)
    for code in change.staff_dropped:
        assert after.get(code, (None, []))[1] == []  # rebuilt without staff, or gone
    for code in change.kept:
        assert after[code] == grids[code]
    assert f"staff assignments dropped on {len(change.staff_dropped)} grids" in change.to_text()


def _move_east_edge(engine: Engine, community: str, dx: float) -> None:
    """Grow a community (and its street and district) eastwards by a strip ``dx`` metres wide past x = 1200."""
    strip = f"ST_Transform(ST_MakeEnvelope({X0 + 1150}, {Y0}, {X0 + 1200 + dx}, {Y0 + 800}, 4547), 4490)"
    with engine.begin() as conn:
        conn.execute(
            text(f"UPDATE admin_units SET geom = ST_Multi(ST_Union(geom, {strip})) WHERE code = ANY(:c)"),
            {"c": [community, community[:9], community[:6]]},
        )


def test_a_boundary_change_regroups_only_that_unit_and_keeps_the_others(staffed: Engine) -> None:
    grids, cells = _tier3(staffed), _assignment(staffed)
    changed = COMMUNITIES[2]
    _move_east_edge(staffed, changed, 300.0)

    with pytest.raises(InvalidInput, match="--replace-tiers"):
        workflows.generate_grids(staffed)  # the changed community's staffed grids would be rebuilt
    assert _assignment(staffed) == cells

    result = workflows.generate_grids(staffed, replace_tiers=True)

    assert result.regrouped_units == [changed]
    assert result.tier3 is not None
    others = sorted(c for c in grids if not c.startswith(changed))
    assert set(others) <= set(result.tier3.kept)
    assert all(c.startswith(changed) for c in result.tier3.staff_dropped)
    after = _tier3(staffed)
    for code in others:
        assert after[code] == grids[code]
    new_cells = _assignment(staffed)
    assert all(t is not None for t in new_cells.values())  # every unit grid has a tier-3 grid
    assert {c: t for c, t in new_cells.items() if not c.startswith(changed)} == {
        c: t for c, t in cells.items() if not c.startswith(changed)
    }
    # as many tier-3 grids in the changed community as before
    assert len({t for c, t in new_cells.items() if c.startswith(changed)}) == len(
        [c for c in grids if c.startswith(changed)]
    )


def test_the_command_says_what_it_kept_and_refuses_with_one_message(staffed: Engine, settings: Settings) -> None:
    from typer.testing import CliRunner

    from gisgrid.cli import app

    runner = CliRunner()
    env = {"GISGRID_DATABASE_URL": settings.database_url or ""}
    n = len(_tier3(staffed))

    again = runner.invoke(app, ["grids", "generate"], env=env)
    assert again.exit_code == 0, again.output
    assert f"tier 3: kept {n} grids (code, area, 网格长/网格员 unchanged), rebuilt 0, new 0, dropped 0" in again.output

    refused = runner.invoke(app, ["grids", "tiers", "--target-size", "7"], env=env)
    # main() prints an InvalidInput as one "error:" line; CliRunner hands it back as the exception.
    assert isinstance(refused.exception, InvalidInput)
    assert "--replace-tiers" in str(refused.exception) and "\n" not in str(refused.exception)


def test_after_a_boundary_change_every_case_lies_in_its_recorded_cell(
    staffed: Engine, services: svc.CaseServices
) -> None:
    """verify11 N1: a case's recorded unit grid (and so its tier-3 grid) follows the new cells where the old one
    no longer covers it; cases still inside their recorded cell keep it."""
    xs, ys = inside_points(40, seed=5)
    now = dt.datetime(2025, 9, 26, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        item = case_intake.Intake(class_code="06010", lon=float(x), lat=float(y), datum="cgcs2000", description=str(i))
        case_intake.intake(staffed, services, item, now=now)
    changed = COMMUNITIES[2]
    with staffed.connect() as conn:
        before = dict(conn.execute(text("SELECT id, unit_grid_code FROM cases")).all())
    _move_east_edge(staffed, changed, 300.0)
    workflows.generate_grids(staffed, replace_tiers=True)

    with staffed.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.id, c.unit_grid_code, c.tier3_code, g.tier3_code AS grid_tier3, "
                "coalesce(ST_Covers(g.geom, c.geom), false) AS inside "
                "FROM cases c LEFT JOIN unit_grids g ON g.code = c.unit_grid_code"
            )
        ).all()
    assert len(rows) == 40
    assert all(r.inside for r in rows), [r.id for r in rows if not r.inside]
    assert all(r.tier3_code == r.grid_tier3 and r.tier3_code for r in rows)
    assert any(r.unit_grid_code != before[r.id] for r in rows)  # the change moved some
    # outside the changed community's street nothing moved
    assert all(r.unit_grid_code == before[r.id] for r in rows if not before[r.id].startswith(changed[:9]))


def _close(engine: Engine, services: svc.CaseServices, case_id: int) -> None:
    """Walk a reported case through the main path to 结案."""
    from tests.test_cases import _jpeg

    steps = [
        ("verify", "supervisor", {}, []),
        ("file", "shift_lead", {}, []),
        ("dispatch", "dispatcher", {}, []),
        ("handle", "department", {"result": "已清理"}, [("after.jpg", _jpeg(90))]),
        ("check", "supervisor", {}, []),
        ("close", "shift_lead", {}, []),
    ]
    now = dt.datetime(2025, 9, 26, 11, tzinfo=ZoneInfo("Asia/Shanghai"))
    for version, (action, role, payload, photos) in enumerate(steps, start=1):
        req = case_actions.ActionRequest(
            action=action, role=role, actor="测试员", version=version, payload=payload, photos=photos
        )
        case_actions.act(engine, services, case_id, req, now=now + dt.timedelta(minutes=10 * version))


def _reject(loaded: Engine, services: svc.CaseServices, case_id: int, now: dt.datetime) -> None:
    """不予立案 of a just reported case (version 1) by 受理员."""
    payload = {"reason": "不属于立案范围"}
    case_actions.act(
        loaded, services, case_id, case_actions.ActionRequest("reject", "intake", "测试员", 1, payload=payload), now=now
    )


def _a_cell_regrouped_at_size_7(loaded: Engine) -> tuple[shapely.Point, str, str]:
    """A point inside a unit grid whose tier-3 grid ``build_tiers(target_size=7)`` will change; its old and new
    tier-3 codes."""
    from gisgrid.grids import store
    from gisgrid.grids.tiers import group_tier3

    with loaded.connect() as conn:
        cells = store.load_unit_grids(conn)
    regrouped = group_tier3(cells, target_size=7)  # what build_tiers(target_size=7) will store
    moves = cells.loc[regrouped.ne(cells["tier3_code"])]
    cell = moves.iloc[0]
    old_code, new_code = cell["tier3_code"], regrouped.loc[moves.index[0]]
    assert old_code != new_code
    return cell.geometry.representative_point(), old_code, new_code


def test_a_regroup_moves_cases_in_progress_and_leaves_finished_ones_where_they_were_handled(
    loaded: Engine, services: svc.CaseServices
) -> None:
    """A case still being handled answers to its unit grid's new tier-3 grid; a closed, rejected or merged one
    keeps the tier-3 code it was handled under — the record the evaluation of past months reads."""
    point, old_code, new_code = _a_cell_regrouped_at_size_7(loaded)
    now = dt.datetime(2025, 9, 26, 10, tzinfo=ZoneInfo("Asia/Shanghai"))

    def file(description: str) -> int:
        item = case_intake.Intake(
            class_code="06010", lon=point.x, lat=point.y, datum="cgcs2000", description=description
        )
        case_id, _ = case_intake.intake(loaded, services, item, now=now)
        return case_id

    open_, dispatched, closed, rejected, merged = (file(d) for d in ("open", "dispatched", "closed", "rej", "dup"))
    for version, (action, role) in enumerate((("verify", "supervisor"), ("file", "shift_lead")), start=1):
        case_actions.act(
            loaded, services, dispatched, case_actions.ActionRequest(action, role, "测试员", version), now=now
        )
    case_actions.act(
        loaded, services, dispatched, case_actions.ActionRequest("dispatch", "dispatcher", "测试员", 3), now=now
    )
    _close(loaded, services, closed)
    _reject(loaded, services, rejected, now)
    case_actions.merge_duplicate(loaded, services, merged, open_, actor="值班长", role="shift_lead", version=1)

    result = workflows.build_tiers(loaded, target_size=7)

    with loaded.connect() as conn:
        codes = dict(conn.execute(text("SELECT id, tier3_code FROM cases")).all())
        states = dict(conn.execute(text("SELECT id, state FROM cases")).all())
    assert states == {
        open_: "reported",
        dispatched: "dispatched",
        closed: "closed",
        rejected: "rejected",
        merged: "voided",
    }
    assert codes == {
        open_: new_code,
        dispatched: new_code,
        closed: old_code,
        rejected: old_code,
        merged: old_code,
    }
    assert (result.change.cases_repointed, result.change.finished_cases_kept) == (2, 3)
    assert result.change.to_text().endswith(
        "; cases: 2 in progress moved to their unit grid's new tier-3 grid, "
        "3 finished (结案/不予立案/作废) kept the tier-3 grid they were handled in"
    )
    again = workflows.build_tiers(loaded, target_size=7)  # the same grouping: nothing moves, nothing is counted
    assert (again.change.cases_repointed, again.change.finished_cases_kept) == (0, 0)
    assert "cases:" not in again.change.to_text()


@pytest.mark.parametrize("via", ["sync", "async"])
def test_a_report_written_while_a_regroup_commits_gets_the_new_tier3_grid(
    loaded: Engine, services: svc.CaseServices, monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    """A report located while a regroup had rewritten its unit grid but not committed read the old tier-3 code
    and was inserted with it; the regroup's update of the cases in progress had run before, so the case kept a
    tier-3 grid its cell no longer belongs to (escalation and the tier-3 evaluation went to the wrong grid). The
    write now waits for the regroup and reads again."""
    import threading

    from gisgrid.grids import store
    from tests.test_cases import intake_over_asyncpg

    point, old_code, new_code = _a_cell_regrouped_at_size_7(loaded)
    now = dt.datetime(2025, 9, 26, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
    item = case_intake.Intake(class_code="06010", lon=point.x, lat=point.y, datum="cgcs2000", description="during")
    file = case_intake.intake if via == "sync" else intake_over_asyncpg
    filed: list[object] = []
    waited: list[bool] = []
    save_tier3 = store.save_tier3

    def report() -> None:
        try:
            filed.append(file(loaded, services, item, now=now)[0])
        except Exception as exc:  # reported below
            filed.append(exc)

    def regroup_then_report(*args: object, **kwargs: object) -> store.Tier3Change:
        change = save_tier3(*args, **kwargs)  # cells regrouped, cases in progress moved; not yet committed
        thread = threading.Thread(target=report)
        thread.start()
        thread.join(1.0)
        waited.append(thread.is_alive())
        threads.append(thread)
        return change

    threads: list[threading.Thread] = []
    monkeypatch.setattr(store, "save_tier3", regroup_then_report)
    workflows.build_tiers(loaded, target_size=7)
    threads[0].join(60)  # returns once done: long enough for a busy machine

    assert waited == [True]  # the write waited for the regroup's commit …
    assert len(filed) == 1 and isinstance(filed[0], int), filed
    with loaded.connect() as conn:
        stored = conn.execute(text("SELECT tier3_code FROM cases WHERE id = :i"), {"i": filed[0]}).scalar_one()
    assert (stored, old_code != new_code) == (new_code, True)  # … and read the grids again


def test_a_component_saved_while_a_regeneration_commits_lies_in_its_recorded_cell(
    staffed: Engine, services: svc.CaseServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Components saved after a regeneration had replaced the cells (and moved the stored components) but before
    it committed kept the cell codes they read — the old cells' — inside a changed community: another cell's code
    or none. The regeneration now holds component writes for its last step, which moves what was written meanwhile."""
    import threading

    from gisgrid.components_store import ComponentInput, catalogue_for, save_component

    changed = COMMUNITIES[2]
    with staffed.connect() as conn:
        community = shapely.from_wkb(
            bytes(
                conn.execute(
                    text("SELECT ST_AsBinary(geom) FROM admin_units WHERE code = :c"), {"c": changed}
                ).scalar_one()
            )
        )
    xs, ys = inside_points(400, seed=8)
    points = [(float(x), float(y)) for x, y in zip(xs, ys, strict=True) if community.contains(shapely.Point(x, y))]
    assert len(points) >= 20
    _move_east_edge(staffed, changed, 300.0)
    saved: list[object] = []

    def save() -> None:
        for x, y in points[:20]:
            try:
                item = ComponentInput(class_code="01037", lon=x, lat=y, datum="cgcs2000", maint_dept=None)
                saved.append(save_component(staffed, catalogue_for(Settings()), item, actor="t")["id"])
            except Exception as exc:  # reported below
                saved.append(exc)

    carry = workflows._carry_tier3

    def carry_then_save(*args: object, **kwargs: object) -> object:
        result = carry(*args, **kwargs)  # the new cells stored, not yet committed
        thread = threading.Thread(target=save)
        thread.start()
        thread.join(1.0)
        threads.append(thread)
        return result

    threads: list[threading.Thread] = []
    monkeypatch.setattr(workflows, "_carry_tier3", carry_then_save)
    workflows.generate_grids(staffed, replace_tiers=True)
    threads[0].join(60)  # returns once done: long enough for a busy machine

    assert len(saved) == 20 and all(isinstance(i, str) for i in saved), saved
    with staffed.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.id, c.unit_grid_code, coalesce(ST_Covers(g.geom, c.geom), false) AS inside "
                "FROM components c LEFT JOIN unit_grids g ON g.code = c.unit_grid_code WHERE c.id = ANY(:ids)"
            ),
            {"ids": saved},
        ).all()
    assert [r.id for r in rows if not r.inside] == []


def test_a_boundary_change_moves_a_finished_case_to_the_cell_that_covers_it_keeping_its_codes(
    loaded: Engine, services: svc.CaseServices
) -> None:
    """relocate_cases: a case whose cell is gone takes the cell covering it now (its orders can still be drawn);
    one in progress takes that cell's street, community and tier-3 codes, a finished one keeps its own."""
    from gisgrid.grids import store

    with loaded.connect() as conn:
        cells = store.load_unit_grids(conn)
    cell = cells.iloc[0]
    point = cell.geometry.representative_point()
    now = dt.datetime(2025, 9, 26, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
    ids = []
    for description in ("open", "rejected"):
        item = case_intake.Intake(
            class_code="06010", lon=point.x, lat=point.y, datum="cgcs2000", description=description
        )
        ids.append(case_intake.intake(loaded, services, item, now=now)[0])
    open_, rejected = ids
    _reject(loaded, services, rejected, now)
    fake = ("990000000000000", "990000000", "990000000000", "99000000000001")  # as if recorded under old grids
    with loaded.begin() as conn:
        conn.execute(
            text("UPDATE cases SET unit_grid_code = :g, street_code = :s, community_code = :c, tier3_code = :t"),
            dict(zip("gsct", fake, strict=True)),
        )
        assert store.relocate_cases(conn) == 2
    with loaded.connect() as conn:
        rows = {
            r.id: tuple(r[1:])
            for r in conn.execute(text("SELECT id, unit_grid_code, street_code, community_code, tier3_code FROM cases"))
        }
    assert rows == {
        open_: (cell["code"], cell["street_code"], cell["community_code"], cell["tier3_code"]),
        rejected: (cell["code"], *fake[1:]),
    }


def test_a_merged_duplicate_reopened_after_a_regroup_answers_to_its_grids_tier3_of_now(
    loaded: Engine, services: svc.CaseServices
) -> None:
    """A merged duplicate kept its tier-3 code through a regroup (finished then); when its kept case is voided it is
    a case in progress again, under the tier-3 grid its unit grid belongs to now."""
    point, old_code, new_code = _a_cell_regrouped_at_size_7(loaded)
    now = dt.datetime(2025, 9, 26, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
    kept, dup = (
        case_intake.intake(
            loaded,
            services,
            case_intake.Intake(class_code="06010", lon=point.x, lat=point.y, datum="cgcs2000"),
            now=now,
        )[0]
        for _ in range(2)
    )
    case_actions.merge_duplicate(loaded, services, dup, kept, actor="值班长", role="shift_lead", version=1)
    workflows.build_tiers(loaded, target_size=7)
    with loaded.connect() as conn:
        codes = dict(conn.execute(text("SELECT id, tier3_code FROM cases")).all())
    assert codes == {kept: new_code, dup: old_code}

    payload = {"reason": "虚假上报"}
    case_actions.act(
        loaded, services, kept, case_actions.ActionRequest("void", "shift_lead", "测试员", 1, payload=payload), now=now
    )

    with loaded.connect() as conn:
        rows = conn.execute(
            text("SELECT c.id, c.state, c.tier3_code, c.unit_grid_code = g.code FROM cases c JOIN unit_grids g "
                 "ON ST_Covers(g.geom, c.geom) ORDER BY c.id")
        ).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [(kept, "voided", new_code, True), (dup, "reported", new_code, True)]


def test_a_kept_case_voided_while_a_regroup_commits_reopens_its_duplicate_under_the_new_tier3_grid(
    loaded: Engine, services: svc.CaseServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kept case lies in a cell the regroup leaves alone, its merged duplicate across the boundary in a cell
    it regroups. Voided while the regroup had rewritten the grids but not committed, the kept case reopened the
    duplicate with the tier-3 code read from the old grids — a case in progress again, which the regroup had
    passed over as finished. The 作废 now waits for the regroup and reads the grids it committed."""
    import threading

    from gisgrid.grids import store
    from gisgrid.grids.tiers import group_tier3

    with loaded.connect() as conn:
        cells = store.load_unit_grids(conn)
    regrouped = group_tier3(cells, target_size=7)
    moved = regrouped.ne(cells["tier3_code"])
    still = cells.loc[~moved]
    pair = next(
        (a, b)
        for a in cells.loc[moved].itertuples()
        for b in still.itertuples()
        if a.geometry.intersection(b.geometry).length > 0
    )
    edge = pair[0].geometry.intersection(pair[1].geometry)
    near = edge.interpolate(0.5, normalized=True).buffer(2e-5)  # both points ~1 m off their shared edge
    dup_point, kept_point = (near.intersection(c.geometry).representative_point() for c in pair)
    new_code = regrouped.loc[pair[0].Index]
    now = dt.datetime(2025, 9, 26, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
    kept, dup = (
        case_intake.intake(
            loaded, services, case_intake.Intake(class_code="06010", lon=p.x, lat=p.y, datum="cgcs2000"), now=now
        )[0]
        for p in (kept_point, dup_point)
    )
    case_actions.merge_duplicate(loaded, services, dup, kept, actor="值班长", role="shift_lead", version=1)
    void = case_actions.ActionRequest("void", "shift_lead", "测试员", 1, payload={"reason": "虚假上报"})
    done: list[object] = []
    waited: list[bool] = []
    threads: list[threading.Thread] = []
    save_tier3 = store.save_tier3

    def act() -> None:
        try:
            done.append(case_actions.act(loaded, services, kept, void, now=now).case_id)
        except Exception as exc:  # reported below
            done.append(exc)

    def regroup_then_void(*args: object, **kwargs: object) -> store.Tier3Change:
        change = save_tier3(*args, **kwargs)  # cells regrouped, cases in progress moved; not yet committed
        thread = threading.Thread(target=act)
        thread.start()
        thread.join(1.0)
        waited.append(thread.is_alive())
        threads.append(thread)
        return change

    monkeypatch.setattr(store, "save_tier3", regroup_then_void)
    workflows.build_tiers(loaded, target_size=7)
    threads[0].join(60)  # returns once done: long enough for a busy machine

    assert (waited, done) == ([True], [kept])  # the 作废 waited for the regroup's commit …
    with loaded.connect() as conn:
        rows = dict(conn.execute(text("SELECT id, (state, tier3_code) FROM cases")).all())
    assert rows[dup] == f"(reported,{new_code})"  # … and reopened the duplicate under the grids of now
