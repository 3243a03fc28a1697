"""The merged catalogue in force (review55 F2): `gisgrid catalogue show` with each row's file:line, and the one
warning of `db up`/`serve` about rows still naming a placeholder department (9900000000000000NN) while a city's
own district, not the demo's, is loaded."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy import Engine
from typer.testing import CliRunner

from gisgrid import cases as svc
from gisgrid.catalogue_view import PlaceholderUse, placeholder_uses, placeholder_warning
from gisgrid.cli import app
from gisgrid.settings import PROJECT_ROOT, Settings
from gisgrid.start_checks import check_stored_data

runner = CliRunner()
DATA = PROJECT_ROOT / "data"
ROUTING = DATA / "rules" / "routing.csv"
EVENTS = DATA / "catalogue" / "event_classes.csv"
COMPONENTS = DATA / "catalogue" / "component_classes.csv"
CITY_DEPT = "12410183MB0000001X"


def _placeholder_lines(path: Path, column: str) -> list[int]:
    """The lines of a shipped file whose ``column`` is a placeholder department (the header is line 1)."""
    rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    return [n for n, row in enumerate(rows, start=2) if row[column].startswith("9900000000000000")]


def _runs(lines: list[int]) -> str:
    assert lines == list(range(lines[0], lines[-1] + 1))  # every row of the shipped files names one
    return f"{lines[0]}-{lines[-1]}"


def _city_files(tmp_path: Path) -> list[Path]:
    """A city's extra files: its department, and every shipped routing rule, event and component class with its
    department instead of the placeholder (as a city overriding them all would write them)."""
    dept = tmp_path / "部门.csv"
    dept.write_text(f"code,name,kind\n{CITY_DEPT},新密市城市管理局,government\n", encoding="gb18030")
    files = [dept]
    for base in (ROUTING, EVENTS, COMPONENTS):
        text = base.read_text(encoding="utf-8-sig")
        for n in range(1, 20):
            text = text.replace(f"9900000000000000{n:02d}", CITY_DEPT)
        files.append(tmp_path / f"city_{base.name}")
        files[-1].write_text(text, encoding="utf-8")
    return files


def test_the_warning_names_each_file_and_its_lines_once_for_a_city_district(
    loaded: Engine, services: svc.CaseServices, settings: Settings, tmp_path: Path
) -> None:
    routing, events, components = (
        _placeholder_lines(ROUTING, "department"),
        _placeholder_lines(EVENTS, "default_dept"),
        _placeholder_lines(COMPONENTS, "default_dept"),
    )
    total = len(routing) + len(events) + len(components)
    expected = (
        f"占位部门:已载入辖区 419902(不是演示辖区 419901),但 {total} 行目录仍指向虚构的占位部门(9900000000000000NN),"
        f"案件会派往不存在的部门 / the loaded district 419902 is not the demo's (419901), yet {total} routing rule(s) "
        "and event/component class default(s) in force name a fictitious placeholder department "
        "(9900000000000000NN): cases would be sent to it. Override them with the city's departments "
        "(GISGRID_CATALOGUE_EXTRA; an event class 01-05 has its own default_dept beside its component class'); "
        "`gisgrid catalogue show --kind routing|events|components` lists each row with its file:line:\n"
        f"  {ROUTING}: line {_runs(routing)} ({len(routing)} row(s))\n"
        f"  {EVENTS}: line {_runs(events)} ({len(events)} row(s))\n"
        f"  {COMPONENTS}: line {_runs(components)} ({len(components)} row(s))"
    )
    # the small district is 419902: a city's district, not the demo's 419901
    assert check_stored_data(loaded, services, settings).placeholders == expected
    # `db up` says it once (and `serve` through the same report, before its socket)
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "data")}
    up = runner.invoke(app, ["db", "up"], env=env)
    assert up.exit_code == 0, up.output
    assert up.output.count("warning: 占位部门") == 1 and f"warning: {expected}\n" in up.output

    # A city that overrides every such row with its own department is not warned.
    city = settings.model_copy(update={"catalogue_extra": _city_files(tmp_path)})
    overridden = svc.load_services(city)
    assert placeholder_uses(overridden.components, overridden.events, overridden.rules) == []
    assert check_stored_data(loaded, overridden, city).placeholders is None
    # One component class's default overridden, not its event class: the event class is still named (its own row).
    lamp = tmp_path / "部件类别.csv"
    lamp.write_text(
        f"scheme,code,big_code,big_name,name,default_dept,evidence\ngbt47678,01037,01,公用设施,路灯,{CITY_DEPT},L\n",
        encoding="utf-8",
    )
    partly = svc.load_services(settings.model_copy(update={"catalogue_extra": [*_city_files(tmp_path)[:2], lamp]}))
    uses = placeholder_uses(partly.components, partly.events, partly.rules)
    lamp_event = next(n for n in events if EVENTS.read_text(encoding="utf-8").splitlines()[n - 1].startswith(
        "gbt47678,01037,"
    ))  # fmt: skip
    assert PlaceholderUse(str(EVENTS), lamp_event, "event class 01037") in uses
    assert not any(u.what == "component class 01037" for u in uses)


def test_the_demo_district_or_no_district_is_not_warned() -> None:
    uses = [PlaceholderUse("/x/routing.csv", 2, "routing rule R001"), PlaceholderUse("/x/routing.csv", 3, "r")]
    assert placeholder_warning(["419901"], uses) is None  # the demo
    assert placeholder_warning([], uses) is None  # nothing loaded yet
    assert placeholder_warning(["410183"], []) is None  # nothing named
    warning = placeholder_warning(["410183", "419901"], uses)
    assert warning is not None and warning.startswith("占位部门:已载入辖区 410183, 419901(不是演示辖区 419901)")
    assert warning.endswith("lists each row with its file:line:\n  /x/routing.csv: line 2-3 (2 row(s))")


def test_catalogue_show_prints_each_row_with_its_file_and_line(tmp_path: Path) -> None:
    dept = tmp_path / "部门.csv"
    dept.write_text(f"code,name,kind\r\n{CITY_DEPT},新密市路灯管理所,public_institution\r\n", encoding="gb18030")
    lamp = tmp_path / "部件类别.csv"
    lamp.write_text(
        "scheme,code,big_code,big_name,name,default_dept,evidence\n"
        f"gbt47678,21001,21,扩展部件,共享单车停放点,{CITY_DEPT},\n"
        f"gbt47678,01037,01,公用设施,路灯,{CITY_DEPT},L\n",
        encoding="utf-8",
    )
    env = {"GISGRID_CATALOGUE_EXTRA": f'["{dept}","{lamp}"]', "GISGRID_DATABASE_URL": ""}
    shown = runner.invoke(app, ["catalogue", "show", "--kind", "components", "--format", "csv"], env=env)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout_bytes.startswith(b"scheme,code,name,default_dept,dept_name,placeholder,source\r\n")  # CRLF
    rows = {(r["scheme"], r["code"]): r for r in csv.DictReader(io.StringIO(shown.output, newline=""))}
    assert rows[("gbt47678", "01037")] == {
        "scheme": "gbt47678",
        "code": "01037",
        "name": "路灯",
        "default_dept": CITY_DEPT,
        "dept_name": "新密市路灯管理所",
        "placeholder": "",
        "source": f"{lamp}:3",
    }
    assert rows[("gbt47678", "21001")]["source"] == f"{lamp}:2"
    bin_line = next(n for n, x in enumerate(COMPONENTS.read_text(encoding="utf-8").splitlines(), 1) if ",03005," in x)
    assert rows[("gbt47678", "03005")]["source"] == f"{COMPONENTS}:{bin_line}"
    assert rows[("gbt47678", "03005")]["placeholder"] == "yes"

    departments = runner.invoke(app, ["catalogue", "show", "--kind", "departments"], env=env)
    assert departments.exit_code == 0, departments.output
    lines = departments.output.splitlines()
    assert lines[0].split() == ["code", "name", "kind", "score_group", "placeholder", "source"]
    assert lines[1].split() == [CITY_DEPT, "新密市路灯管理所", "public_institution", f"{dept}:2"]  # by code
    assert lines[2].split() == [
        "990000000000000001", "区城市管理委员会", "government", "yes", f"{DATA / 'catalogue' / 'departments.csv'}:2"
    ]  # fmt: skip
    # aligned: each column starts where its header does (a CJK character is two columns wide)
    assert lines[1].index(f"{dept}:2") + 8 == lines[0].index("source")  # 8 CJK characters before it, 2 columns each

    routing = runner.invoke(app, ["catalogue", "show", "--kind", "routing", "--format", "csv"], env=env)
    rules = list(csv.DictReader(io.StringIO(routing.output)))
    assert {r["rule_id"]: r["source"] for r in rules}["R001"] == f"{ROUTING}:2"
    events = runner.invoke(app, ["catalogue", "show", "--kind", "events", "--format", "csv"], env=env)
    n_events = len(list(csv.DictReader(io.StringIO(events.output))))
    everything = runner.invoke(app, ["catalogue", "show"], env=env)
    assert [x for x in everything.output.splitlines() if x.startswith("# ")] == [
        "# 部门 departments (20)",
        f"# 事项类别 event classes ({n_events})",
        "# 部件类别 component classes (106)",
        f"# 派遣规则 routing rules ({len(rules)})",
    ]
    # A rule an extra file removed is not a row (not in force); the table says which and where (review56 F5).
    assert "removed" not in everything.output
    drop = tmp_path / "派遣规则.csv"
    header = ROUTING.read_text(encoding="utf-8").splitlines()[0]
    drop.write_text(f"{header}\nR009,,,,,,,,,-,本市不用\n", encoding="utf-8")
    with_drop = {**env, "GISGRID_CATALOGUE_EXTRA": f'["{dept}","{lamp}","{drop}"]'}
    shown = runner.invoke(app, ["catalogue", "show", "--kind", "routing"], env=with_drop)
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[-1] == f"已删除 removed: R009 ({drop}:2)"
    assert not any(x.split()[0] == "R009" for x in shown.output.splitlines()[1:-1])
    refused = runner.invoke(app, ["catalogue", "show", "--format", "csv"], env=env)
    assert refused.exit_code == 1 and str(refused.exception) == (
        "--format csv prints one kind: add --kind departments, events, components or routing"
    )
