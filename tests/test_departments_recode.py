"""``gisgrid departments recode OLD NEW`` (review27 D10): a city that replaces a placeholder department code with
its real 统一社会信用代码 in its departments file moves the stored cases, their log and orders, and components
with it, in one transaction; the filters and the evaluation then find them under the new code."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gisgrid import case_queries
from gisgrid import cases as svc
from gisgrid.cli import app
from gisgrid.components_store import catalogue_for, sync_departments
from gisgrid.departments import recode_department, recode_json_departments
from gisgrid.errors import Conflict, InvalidInput, NotFound, Reason
from gisgrid.evaluation_service import indicators, parse_period
from gisgrid.settings import PROJECT_ROOT, Settings
from gisgrid.storage.recode import RECODE_LOCK_WAIT_S
from tests.test_cases import _jpeg, act, at, report
from tests.test_components_store import LAMP, inside_points, run, write_csv

runner = CliRunner()

OLD = "990000000000000003"  # 区环境卫生服务中心: the default department of 06010 暴露垃圾
NEW = "12410100MB1234567X"
OTHER = "990000000000000001"


def recoded_data(tmp_path: Path, old: str = OLD, new: str = NEW) -> Path:
    """A copy of data/ with ``old`` replaced by ``new`` in every file, as a city edits its copy."""
    target = tmp_path / "citydata"
    shutil.copytree(PROJECT_ROOT / "data", target, ignore=shutil.ignore_patterns("demo", "*.gpkg"))
    for path in target.rglob("*.csv"):
        content = path.read_text(encoding="utf-8")
        if old in content:
            path.write_text(content.replace(old, new), encoding="utf-8")
    return target


def city_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"catalogue_dir": recoded_data(tmp_path), "data_dir": tmp_path / "data"})


def dispatched(engine: Engine, services: svc.CaseServices, x: float, y: float, hour: int) -> int:
    cid = report(engine, services, x, y, now=at(f"2025-09-30T{hour:02d}:00:00"))
    act(engine, services, cid, "verify", "supervisor", 1, f"2025-09-30T{hour:02d}:10:00")
    act(engine, services, cid, "file", "shift_lead", 2, f"2025-09-30T{hour:02d}:20:00")
    c = act(engine, services, cid, "dispatch", "dispatcher", 3, f"2025-09-30T{hour:02d}:30:00")
    assert c["department_code"] == OLD
    return cid


def stored_under(engine: Engine, code: str) -> dict[str, int]:
    """Where ``code`` is stored, counted without the recode's own code."""
    queries = {
        "cases": "SELECT count(*) FROM cases WHERE department_code = :c",
        "routing": "SELECT count(*) FROM cases WHERE routing::text LIKE '%' || :c || '%'",
        "transitions": "SELECT count(*) FROM case_transitions WHERE department_code = :c "
        "OR details::text LIKE '%' || :c || '%' OR actor = :c",
        "documents": "SELECT count(*) FROM case_documents WHERE department_code = :c",
        "components": "SELECT count(*) FROM components WHERE :c IN (main_dept_code, owner_dept_code, maint_dept_code)",
        "departments": "SELECT count(*) FROM departments WHERE code = :c",
    }
    with engine.connect() as conn:
        return {k: int(conn.execute(text(q), {"c": code}).scalar_one()) for k, q in queries.items()}


@pytest.fixture
def recorded(loaded: Engine, services: svc.CaseServices, tmp_path: Path) -> Engine:
    """Three cases dispatched to OLD — one closed, one returned by OLD and dispatched to OTHER (错误派遣) — and
    three components, two of OLD (主管部门, 养护单位)."""
    xs, ys = (list(map(float, v)) for v in inside_points(6, seed=33))
    dispatched(loaded, services, xs[0], ys[0], 9)
    closed = dispatched(loaded, services, xs[1], ys[1], 10)
    act(loaded, services, closed, "handle", "department", 4, "2025-09-30T10:40:00", result="已清理",
        photos=[("a.jpg", _jpeg(40))])  # fmt: skip
    act(loaded, services, closed, "check", "supervisor", 5, "2025-09-30T10:50:00")
    act(loaded, services, closed, "close", "shift_lead", 6, "2025-09-30T11:00:00")
    returned = dispatched(loaded, services, xs[2], ys[2], 14)
    act(loaded, services, returned, "return", "department", 4, "2025-09-30T14:40:00", reason="不属本单位")
    c = act(loaded, services, returned, "dispatch", "dispatcher", 5, "2025-09-30T14:50:00", department=OTHER,
            reason="改派")  # fmt: skip
    assert c["department_code"] == OTHER
    rows = [
        {"class_code": LAMP, "ZGBMDM": OLD, "lon": xs[3], "lat": ys[3]},
        {"class_code": LAMP, "ZGBMDM": OTHER, "YHDWDM": OLD, "lon": xs[4], "lat": ys[4]},
        {"class_code": LAMP, "ZGBMDM": OTHER, "lon": xs[5], "lat": ys[5]},
    ]
    assert run(loaded, write_csv(tmp_path / "c.csv", rows)).inserted == 3
    return loaded


BEFORE = {"cases": 2, "routing": 3, "transitions": 8, "documents": 3, "components": 2, "departments": 1}


NOW = "2025-10-01T09:00:00"
#: The refusal of OTHER, still in the catalogue (zh-CN first).
STILL_LISTED = (
    f"旧代码 {OTHER}(区城市管理委员会)仍在部门名录中:请先在名录中以 {NEW} 取代它"
    f"(附加部门文件中加一行 {OTHER},区城市管理委员会,- 即删除它),使新案件不再派往它,再改写已存记录 / "
    f"old code {OTHER} (区城市管理委员会) is still in the departments catalogue: replace it there by {NEW} first "
    f"(in an extra departments file, a row {OTHER},区城市管理委员会,- removes it), so that nothing new is routed "
    "to it, then recode the stored records"
)


def found(engine: Engine, services: svc.CaseServices, department: str) -> tuple[list[int], dict]:
    """The cases the department filter finds, and the department's evaluation row (as of 2025-10-31)."""
    with engine.connect() as conn:
        cases, _ = case_queries.list_cases(conn, services, case_queries.CaseFilter(department=department), now=at(NOW))
    table = indicators(engine, services, parse_period("2025-09"), "department", "tier3", as_of="2025-10-31")
    row = table.set_index("subject").loc[department].to_dict()
    return [c["id"] for c in cases], row


def test_a_recode_moves_every_record_and_the_filters_find_them_under_the_new_code(
    recorded: Engine, services: svc.CaseServices, settings: Settings, tmp_path: Path
) -> None:
    city = city_settings(settings, tmp_path)
    catalogue = catalogue_for(city)
    old_ids, old_row = found(recorded, services, OLD)
    assert stored_under(recorded, OLD) == BEFORE
    assert stored_under(recorded, NEW) == dict.fromkeys(BEFORE, 0)

    dry = recode_department(recorded, catalogue, OLD, NEW, dry_run=True)
    assert stored_under(recorded, OLD) == BEFORE  # nothing written
    result = recode_department(recorded, catalogue, OLD, NEW)
    assert result.counts == dry.counts
    assert (result.old_name, result.new_name) == ("区环境卫生服务中心", "区环境卫生服务中心")
    c = result.counts
    # 2 cases still with OLD (1 closed); 3 routing decisions named it (the returned case's as its overridden
    # original); the log: 3 dispatches, the closed case's handle, check and close, the return, and the
    # re-dispatch's returned_by; 3 交办单; 2 components.
    assert (c.cases, c.cases_finished, c.case_routing, c.case_documents) == (2, 1, 3, 3)
    assert (c.case_transitions, c.components, c.component_history, c.departments_removed) == (8, 2, 2, 1)
    assert stored_under(recorded, OLD) == dict.fromkeys(BEFORE, 0)
    assert stored_under(recorded, NEW) == BEFORE

    with recorded.connect() as conn:
        history = conn.execute(
            text("SELECT changes, source FROM component_history WHERE action = 'recode' ORDER BY component_id")
        ).all()
        returned_by = conn.execute(
            text("SELECT details->>'returned_by' FROM case_transitions WHERE details ? 'returned_by'")
        ).scalar_one()
    assert [h.changes for h in history] == [{"main_dept_code": [OLD, NEW]}, {"maint_dept_code": [OLD, NEW]}]
    assert {h.source for h in history} == {f"departments recode {OLD} {NEW}"}
    assert returned_by == NEW

    # The city's services (OLD no longer a department): what the filter and the evaluation found under OLD
    # before, they find under NEW — the same cases, the same figures, the name from the catalogue.
    city_services = svc.load_services(city)
    new_ids, new_row = found(recorded, city_services, NEW)
    assert len(old_ids) == 2 and new_ids == old_ids
    assert new_row == old_row
    assert new_row["name"] == "区环境卫生服务中心"
    with recorded.connect() as conn:
        first = svc.get_case(conn, city_services, old_ids[-1], role="dispatcher", now=at(NOW))
    assert (first["department_code"], first["department_name"]) == (NEW, "区环境卫生服务中心")
    assert f"区环境卫生服务中心({NEW})" in first["routing"]["decision"]["explanation"]


def test_sync_removes_a_department_no_record_names_and_keeps_one_that_records_name(
    recorded: Engine, settings: Settings, tmp_path: Path
) -> None:
    catalogue = catalogue_for(city_settings(settings, tmp_path))
    with recorded.begin() as conn:
        conn.execute(text("INSERT INTO departments (code, name) VALUES ('99X', '已撤销的部门')"))
        sync_departments(conn, catalogue)
        kept = set(conn.execute(text("SELECT code FROM departments WHERE NOT (code = ANY(:c))"),
                                {"c": sorted(catalogue.departments)}).scalars())  # fmt: skip
    assert kept == {OLD}  # its cases and components still name it; '99X' named by nothing is gone
    recode_department(recorded, catalogue, OLD, NEW)
    with recorded.begin() as conn:
        sync_departments(conn, catalogue)
        codes = set(conn.execute(text("SELECT code FROM departments")).scalars())
    assert codes == set(catalogue.departments)


@pytest.mark.parametrize(
    ("old", "new", "reason", "kind", "message"),
    [
        (OLD, "12410100mb1234567x", Reason.CODE_MALFORMED, InvalidInput,
         "new code '12410100mb1234567x' is not a department code: 1–18 upper-case letters or digits "
         "(统一社会信用代码: 18)"),
        (NEW, NEW, Reason.CODE_EXISTS, InvalidInput, f"the new code is the old one ({NEW}): nothing to recode"),
        (OLD, "12410100MB7654321X", Reason.UNKNOWN_DEPARTMENT, InvalidInput,
         "new code 12410100MB7654321X is not in the departments catalogue: put it in the city's departments file "
         "first (in place of the old code, same name), then recode the stored records"),
        (OTHER, NEW, Reason.DEPARTMENT_STILL_LISTED, InvalidInput,
         STILL_LISTED),
        ("990000000000000777", NEW, Reason.DEPARTMENT_NOT_FOUND, NotFound,
         "no department 990000000000000777 is stored: neither in the departments table nor on any case or "
         "component"),
    ],
)  # fmt: skip
def test_a_refused_recode_writes_nothing(
    recorded: Engine,
    settings: Settings,
    tmp_path: Path,
    old: str,
    new: str,
    reason: Reason,
    kind: type[Exception],
    message: str,
) -> None:
    catalogue = catalogue_for(city_settings(settings, tmp_path))
    with pytest.raises(kind) as exc:
        recode_department(recorded, catalogue, old, new)
    assert (exc.value.reason, exc.value.message) == (reason, message)  # type: ignore[attr-defined]
    assert stored_under(recorded, OLD) == BEFORE


def test_a_new_code_already_on_records_is_refused(recorded: Engine, settings: Settings, tmp_path: Path) -> None:
    """A recode does not merge two departments: NEW on a record already (a case routed to it since) is refused."""
    catalogue = catalogue_for(city_settings(settings, tmp_path))
    with recorded.begin() as conn:
        sync_departments(conn, catalogue)
        conn.execute(
            text("UPDATE components SET owner_dept_code = :n WHERE main_dept_code = :o"), {"n": NEW, "o": OTHER}
        )
    with pytest.raises(Conflict) as exc:
        recode_department(recorded, catalogue, OLD, NEW)
    assert exc.value.reason == Reason.CODE_EXISTS
    assert exc.value.message == (
        f"new code {NEW} is already on 2 stored record(s) (cases, their log and orders, components): a recode "
        "cannot merge two departments"
    )
    assert stored_under(recorded, OLD) == BEFORE


def test_a_recode_waits_for_a_writer_then_gives_up_with_a_clear_conflict(
    recorded: Engine, settings: Settings, tmp_path: Path
) -> None:
    catalogue = catalogue_for(city_settings(settings, tmp_path))
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with recorded.begin() as conn:
            conn.execute(text("UPDATE cases SET description = description WHERE id = (SELECT min(id) FROM cases)"))
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        with pytest.raises(Conflict) as exc:
            recode_department(recorded, catalogue, OLD, NEW)
    finally:
        release.set()
        thread.join()
    assert exc.value.reason == Reason.DEPARTMENT_BUSY
    assert f"for more than {RECODE_LOCK_WAIT_S} s" in exc.value.message
    assert stored_under(recorded, OLD) == BEFORE


def test_the_cli_prints_the_counts_and_refuses_with_exit_2(
    recorded: Engine, settings: Settings, tmp_path: Path
) -> None:
    city = city_settings(settings, tmp_path)
    env = {
        "GISGRID_DATABASE_URL": settings.database_url or "",
        "GISGRID_DATA_DIR": str(tmp_path / "d"),
        "GISGRID_CATALOGUE_DIR": str(city.catalogue_dir),
    }
    r = runner.invoke(app, ["departments", "recode", OLD, NEW, "--dry-run"], env=env)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[-10:] == [
        f"department 区环境卫生服务中心: {OLD} → {NEW}; would rewrite:",
        "  cases: 2",
        "  cases_finished: 1",
        "  case_routing: 3",
        "  case_transitions: 8",
        "  case_documents: 3",
        "  components: 2",
        "  component_history: 2",
        "  departments_removed: 1",
        "dry run: nothing written",
    ]
    assert stored_under(recorded, OLD) == BEFORE
    r = runner.invoke(app, ["departments", "recode", OTHER, NEW], env=env)
    assert r.exit_code == 3
    assert r.output.splitlines()[-1] == (
        f"error [department_still_listed]: recode {OTHER} → {NEW} refused: {STILL_LISTED}; nothing written"
    )


def city_extra_files(folder: Path, *, routing: bool = True) -> list[Path]:
    """The adoption route (docs/adoption.md steps 4–5): the package's data/ untouched, the city's extra files in
    /etc/gisgrid — a departments file giving NEW and removing OLD (kind '-'), and the shipped component class, event
    class and (``routing``) routing rows that named OLD, naming NEW."""
    folder.mkdir()
    departments = folder / "部门.csv"
    departments.write_text(
        f"code,name,kind\n{NEW},区环境卫生服务中心,public_institution\n{OLD},区环境卫生服务中心,-\n", encoding="utf-8"
    )
    files = [departments]
    shipped = [("部件类别.csv", "catalogue/component_classes.csv"), ("事项类别.csv", "catalogue/event_classes.csv")]
    for name, source in shipped + ([("派遣规则.csv", "rules/routing.csv")] if routing else []):
        header, *rows = (PROJECT_ROOT / "data" / source).read_text(encoding="utf-8").splitlines()
        (folder / name).write_text(
            "\n".join([header, *(r.replace(OLD, NEW) for r in rows if OLD in r)]) + "\n", encoding="utf-8"
        )
        files.append(folder / name)
    return files


def test_the_adoption_route_with_extra_files_only_lets_the_recode_finish(
    recorded: Engine, settings: Settings, tmp_path: Path
) -> None:
    """review58 M3: with only GISGRID_CATALOGUE_EXTRA files (no copy of data/), a departments row of kind '-'
    takes OLD out of the catalogue, so `departments recode OLD NEW` runs; while a routing rule in force still
    names OLD, the recode is refused naming that rule's file:line and the removing row, nothing written."""
    env = {
        "GISGRID_DATABASE_URL": settings.database_url or "",
        "GISGRID_DATA_DIR": str(tmp_path / "d"),
        "GISGRID_CATALOGUE_EXTRA": json.dumps([str(p) for p in city_extra_files(tmp_path / "half", routing=False)]),
    }
    r = runner.invoke(app, ["departments", "recode", OLD, NEW], env=env)
    assert r.exit_code == 3, r.output
    removing = tmp_path / "half" / "部门.csv"
    assert r.output.splitlines()[-2:] == [
        f"error: recode {OLD} → {NEW} refused: routing rules: 1 problem(s):",
        f"{PROJECT_ROOT / 'data/rules/routing.csv'}: row 2, field 'department': 部门 {OLD} 已被 {removing}:3 删除"
        f"(kind 为 -),此行仍指向它:改为接替它的部门 / department {OLD} is removed by {removing}:3 (kind '-') but this "
        "row still names it: name the department that replaces it; nothing written",
    ]
    assert stored_under(recorded, OLD) == BEFORE

    files = city_extra_files(tmp_path / "etc")
    env["GISGRID_CATALOGUE_EXTRA"] = json.dumps([str(p) for p in files])
    r = runner.invoke(app, ["catalogue", "show", "--kind", "departments"], env=env)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[-1] == f"已删除 removed: {OLD} ({files[0]}:3)"
    assert OLD not in r.output.replace(f"{OLD} ({files[0]}", "")
    r = runner.invoke(app, ["departments", "recode", OLD, NEW], env=env)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[-9:] == [
        f"department 区环境卫生服务中心: {OLD} → {NEW}; rewrote:",
        "  cases: 2",
        "  cases_finished: 1",
        "  case_routing: 3",
        "  case_transitions: 8",
        "  case_documents: 3",
        "  components: 2",
        "  component_history: 2",
        "  departments_removed: 1",
    ]
    assert stored_under(recorded, OLD) == dict.fromkeys(BEFORE, 0)
    assert stored_under(recorded, NEW) == BEFORE


def test_the_json_rewrite_touches_department_values_and_labels_only() -> None:
    decision = {
        "department": OLD,
        "explanation": f"派遣员改派: 区城市管理委员会({OTHER}) by 王, 原因: 非{OLD}职责; 原判断: 环卫({OLD})",
        "override_reason": f"({OLD})",
        "candidates": [{"rule_id": OLD, "department": OLD}, {"rule_id": "R2", "department": OTHER}],
        "original": {"department": OLD, "original": {"department": OLD, "explanation": f"环卫({OLD})"}},
    }
    assert recode_json_departments(decision, OLD, NEW) == {
        "department": NEW,
        "explanation": f"派遣员改派: 区城市管理委员会({OTHER}) by 王, 原因: 非{OLD}职责; 原判断: 环卫({NEW})",
        "override_reason": f"({OLD})",
        "candidates": [{"rule_id": OLD, "department": NEW}, {"rule_id": "R2", "department": OTHER}],
        "original": {"department": NEW, "original": {"department": NEW, "explanation": f"环卫({NEW})"}},
    }
