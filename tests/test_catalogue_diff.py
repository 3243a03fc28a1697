"""`gisgrid catalogue diff`: what a city's catalogue in force (its copy of data/ and its extra files) changes against
the package's own data/ — rows added, fields changed old → new, rows removed — each with the file:line that did it."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

from typer.testing import CliRunner

from gisgrid.catalogue_view import table_text
from gisgrid.cli import app
from gisgrid.settings import PROJECT_ROOT

runner = CliRunner()
DATA = PROJECT_ROOT / "data"
ROUTING = DATA / "rules" / "routing.csv"
CITY_DEPT = "12410183MB0000001X"
HEADER = "kind,change,key,name,field,old,new,source\r\n"


def _line(path: Path, start: str) -> int:
    """The line of the shipped file ``path`` starting with ``start`` (the header is line 1)."""
    return next(n for n, x in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if x.startswith(start))


def _diff(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["catalogue", "diff", *args], env={"GISGRID_DATABASE_URL": "", **env})
    return result.exit_code, result.stdout_bytes.decode()  # bytes: a CSV's CRLF kept


def test_the_packages_own_catalogue_has_no_differences() -> None:
    env = {"GISGRID_CATALOGUE_EXTRA": "[]"}
    assert _diff(env) == (
        0,
        f"无差异:现行目录与软件包自带目录 {DATA} 相同 / no differences: the catalogue in force is the package's own "
        f"({DATA})\n",
    )
    assert _diff(env, "--kind", "limits") == (
        0,
        f"无差异:现行时限与软件包自带目录 {DATA} 相同 / no differences: the time limits in force are the package's "
        f"own ({DATA})\n",
    )
    code, output = _diff(env, "--format", "csv")
    assert (code, output) == (0, HEADER)  # the header only


def _city(tmp_path: Path) -> tuple[dict[str, str], dict[str, Path]]:
    """A city: its copy of data/ without the cjt214 class 0102 (污水井盖), and extra files adding a department and
    a class (21001), overriding class 01037's department and 暴露垃圾's 默认 time limit, removing rule R009."""
    copy = tmp_path / "data"
    shutil.copytree(DATA, copy)
    classes = copy / "catalogue" / "component_classes.csv"
    text = classes.read_text(encoding="utf-8")
    classes.write_text(
        "".join(x for x in text.splitlines(keepends=True) if not x.startswith("cjt214,0102,")), encoding="utf-8"
    )
    files = {
        "dept": ("部门.csv", f"code,name,kind\n{CITY_DEPT},新密市城市管理局,government\n"),
        "classes": (
            "部件类别.csv",
            "scheme,code,big_code,big_name,name,default_dept,evidence\n"
            f"gbt47678,21001,21,扩展部件,共享单车停放点,{CITY_DEPT},\n"
            f"gbt47678,01037,01,市政公用设施,路灯,{CITY_DEPT},I\n",
        ),
        "limits": (
            "时限.csv",
            "scheme,code,disposal_type,limit,unit,urgent\ngbt47678,06010,默认,2,working_hours,false\n",
        ),
        "routing": (
            "派遣规则.csv",
            ROUTING.read_text(encoding="utf-8").splitlines()[0] + "\nR009,,,,,,,,,-,本市不用\n",
        ),
    }
    paths = {}
    for key, (name, content) in files.items():
        paths[key] = tmp_path / name
        paths[key].write_text(content, encoding="gb18030" if key == "dept" else "utf-8")
    paths["copy_classes"] = classes
    extra = "[" + ",".join(f'"{paths[k]}"' for k in files) + "]"
    return {"GISGRID_CATALOGUE_DIR": str(copy), "GISGRID_CATALOGUE_EXTRA": extra}, paths


def test_a_citys_catalogue_against_the_packages(tmp_path: Path) -> None:
    env, p = _city(tmp_path)
    r009 = ROUTING.read_text(encoding="utf-8").splitlines()[_line(ROUTING, "R009,") - 1].split(",")
    assert r009[:4] + r009[9:] == [
        "R009",
        "50",
        "gbt47678",
        "09",
        "990000000000000001",
        "街面秩序类事项 → 区城市管理委员会",
    ]
    added = f"big_code=21; big_name=扩展部件; default_dept={CITY_DEPT}; evidence=L"  # an extra class is local (L)
    dropped = "big_code=01; big_name=公用设施; default_dept=990000000000000008; evidence=I"
    gone = "priority=50; scheme=gbt47678; class_prefix=09; department=990000000000000001"
    code, output = _diff(env, "--format", "csv")
    assert code == 0
    assert output == HEADER + "".join(
        ",".join(row) + "\r\n"
        for row in [
            ["departments", "新增 added", CITY_DEPT, "新密市城市管理局", "", "", "kind=government", f"{p['dept']}:2"],
            ["limits", "修改 changed", "gbt47678 06010 默认", "暴露垃圾", "limit", "4", "2", f"{p['limits']}:2"],
            ["components", "新增 added", "gbt47678 21001", "共享单车停放点", "", "", added, f"{p['classes']}:2"],
            ["components", "修改 changed", "gbt47678 01037", "路灯", "default_dept", "990000000000000012", CITY_DEPT,
             f"{p['classes']}:3"],
            ["components", "删除 removed", "cjt214 0102", "污水井盖", "", dropped, "", str(p["copy_classes"])],
            ["routing", "删除 removed", "R009", "街面秩序类事项 → 区城市管理委员会", "", gone, "", f"{p['routing']}:2"],
        ]
    )  # fmt: skip

    # the table: each kind under its heading (zh first, as `catalogue show`'s), counting rows, not fields
    code, output = _diff(env)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(_diff(env, "--format", "csv")[1])))
    table = {kind: [{k: v for k, v in r.items() if k != "kind"} for r in rows if r["kind"] == kind] for kind in
             ("departments", "limits", "components", "routing")}  # fmt: skip
    columns = ("change", "key", "name", "field", "old", "new", "source")
    shown = {kind: table_text(columns, kind_rows) for kind, kind_rows in table.items()}
    assert output == "\n\n".join([
        "# 部门 departments: 新增 added 1, 修改 changed 0, 删除 removed 0\n" + shown["departments"],
        "# 事项类别 event classes: 无差异 no differences",
        "# 时限 time limits: 新增 added 0, 修改 changed 1, 删除 removed 0\n" + shown["limits"],
        "# 部件类别 component classes: 新增 added 1, 修改 changed 1, 删除 removed 1\n" + shown["components"],
        "# 派遣规则 routing rules: 新增 added 0, 修改 changed 0, 删除 removed 1\n" + shown["routing"],
    ]) + "\n"  # fmt: skip
    assert shown["limits"].splitlines()[1].split() == [
        "修改", "changed", "gbt47678", "06010", "默认", "暴露垃圾", "limit", "4", "2", f"{p['limits']}:2"
    ]  # fmt: skip

    # one kind
    code, output = _diff(env, "--kind", "routing")
    assert (code, output.splitlines()[0]) == (
        0,
        "# 派遣规则 routing rules: 新增 added 0, 修改 changed 0, 删除 removed 1",
    )
    assert output.splitlines()[2].split()[:3] == ["删除", "removed", "R009"]
    assert _diff(env, "--kind", "events") == (
        0,
        f"无差异:现行事项类别与软件包自带目录 {DATA} 相同 / no differences: the event classes in force are the "
        f"package's own ({DATA})\n",
    )


def test_an_event_class_and_a_node_limit_changed_and_a_rule_added(tmp_path: Path) -> None:
    events = tmp_path / "事项类别.csv"
    base_events = DATA / "catalogue" / "event_classes.csv"
    header = base_events.read_text(encoding="utf-8").splitlines()[0]
    row = base_events.read_text(encoding="utf-8").splitlines()[_line(base_events, "gbt47678,06010,") - 1]
    events.write_text(
        header + "\n" + row.replace(",990000000000000003,", ",990000000000000001,") + "\n", encoding="utf-8"
    )
    nodes = tmp_path / "节点时限.csv"
    nodes.write_text("node,name,limit,unit,evidence\nverify,核实,2,working_hours,L\n", encoding="utf-8")
    rule = tmp_path / "派遣规则.csv"
    rule.write_text(
        ROUTING.read_text(encoding="utf-8").splitlines()[0]
        + "\nX01,10,gbt47678,06010,419902001,,,,,990000000000000001,夜市\n",
        encoding="utf-8",
    )
    env = {"GISGRID_CATALOGUE_EXTRA": f'["{events}","{nodes}","{rule}"]'}
    code, output = _diff(env, "--format", "csv")
    verify = DATA / "catalogue" / "node_time_limits.csv"
    base_verify = verify.read_text(encoding="utf-8").splitlines()[_line(verify, "verify,") - 1].split(",")
    assert base_verify[:5] == ["verify", "核实", "1", "working_hours", "U"]
    assert code == 0 and output == HEADER + "".join(
        ",".join(r) + "\r\n"
        for r in [
            ["events", "修改 changed", "gbt47678 06010", "暴露垃圾", "default_dept", "990000000000000003",
             "990000000000000001", f"{events}:2"],
            ["limits", "修改 changed", "verify", "核实", "limit", "1", "2", f"{nodes}:2"],
            ["limits", "修改 changed", "verify", "核实", "evidence", "U", "L", f"{nodes}:2"],
            # the extra row gives no urgent limit: the node's own then applies to urgent cases too
            ["limits", "修改 changed", "verify", "核实", "urgent_limit", base_verify[5], "", f"{nodes}:2"],
            ["limits", "修改 changed", "verify", "核实", "urgent_unit", base_verify[6], "", f"{nodes}:2"],
            ["routing", "新增 added", "X01", "夜市", "", "",
             "priority=10; scheme=gbt47678; class_prefix=06010; area_prefix=419902001; department=990000000000000001",
             f"{rule}:2"],
        ]
    )  # fmt: skip
    code, output = _diff(env, "--kind", "limits")
    assert (code, output.splitlines()[0]) == (0, "# 时限 time limits: 新增 added 0, 修改 changed 1, 删除 removed 0")


def test_a_node_limit_s_evidence_is_compared(tmp_path: Path) -> None:
    """review59 F11: a node limit whose only change is its evidence (C/I/U/L) is a change, in an undated row and in a
    dated one; an extra row's empty evidence is L (as a class's); a row restating the base's is no change."""
    base = DATA / "catalogue" / "node_time_limits.csv"
    rows = {r.split(",")[0]: r.split(",") for r in base.read_text(encoding="utf-8").splitlines()[1:]}
    assert rows["accept"][:7] == ["accept", "受理", "0.25", "working_hours", "U", "0.25", "calendar_hours"]
    assert rows["dispatch"][:7] == ["dispatch", "派遣", "0.5", "working_hours", "U", "0.25", "calendar_hours"]
    assert rows["verify"][:5] == ["verify", "核实", "1", "working_hours", "U"]
    nodes = tmp_path / "节点时限.csv"
    nodes.write_text(
        "node,name,limit,unit,evidence,urgent_limit,urgent_unit,effective_from\n"
        + ",".join([*rows["verify"][:7], ""]) + "\n"  # the base's row as it is: no change
        + "dispatch,派遣,0.5,working_hours,C,0.25,calendar_hours,\n"  # only the evidence differs
        + "accept,受理,0.25,working_hours,,0.25,calendar_hours,\n"  # empty evidence: L
        + "verify,核实,1,working_hours,C,,,2099-01-01\n",  # a dated row keeps its evidence too
        encoding="utf-8",
    )  # fmt: skip
    code, output = _diff({"GISGRID_CATALOGUE_EXTRA": f'["{nodes}"]'}, "--kind", "limits", "--format", "csv")
    assert code == 0 and output == HEADER + "".join(
        ",".join(r) + "\r\n"
        for r in [
            ["limits", "新增 added", "verify 2099-01-01", "核实", "", "",
             "effective_from=2099-01-01; limit=1; unit=working_hours; evidence=C", f"{nodes}:5"],
            ["limits", "修改 changed", "accept", "受理", "evidence", "U", "L", f"{nodes}:4"],
            ["limits", "修改 changed", "dispatch", "派遣", "evidence", "U", "C", f"{nodes}:3"],
        ]
    )  # fmt: skip


def test_a_refused_catalogue_is_refused_as_catalogue_show_refuses_it(tmp_path: Path) -> None:
    bad = tmp_path / "时限.csv"
    bad.write_text(
        "scheme,code,disposal_type,limit,unit,urgent\ngbt47678,06010,默认,x,working_hours,false\n", encoding="utf-8"
    )
    env = {"GISGRID_DATABASE_URL": "", "GISGRID_CATALOGUE_EXTRA": f'["{bad}"]'}
    shown = runner.invoke(app, ["catalogue", "show"], env=env)
    diffed = runner.invoke(app, ["catalogue", "diff"], env=env)
    assert shown.exit_code == diffed.exit_code == 1
    assert str(diffed.exception) == str(shown.exception)
    assert f"{bad}: row 2, field 'limit': not a number" in str(diffed.exception)
    missing = {"GISGRID_DATABASE_URL": "", "GISGRID_CATALOGUE_DIR": str(tmp_path / "nowhere")}
    shown = runner.invoke(app, ["catalogue", "show"], env=missing)
    diffed = runner.invoke(app, ["catalogue", "diff"], env=missing)
    assert shown.exit_code == diffed.exit_code == 1 and str(diffed.exception) == str(shown.exception)
    assert str(diffed.exception).startswith(f"GISGRID_CATALOGUE_DIR: {tmp_path / 'nowhere'}: folder not found")


def test_a_department_an_extra_file_removes_is_listed_with_the_row_that_removed_it(tmp_path: Path) -> None:
    """review58 M3: a city's extra departments row of kind '-' removes a base department (here 区文化和旅游局,
    once every class naming it is given the city's department); the diff names that row, as for a removed rule."""
    gone = "990000000000000017"
    departments = (DATA / "catalogue" / "departments.csv").read_text(encoding="utf-8").splitlines()
    [base_row] = [x for x in departments if x.startswith(gone + ",")]
    dept = tmp_path / "部门.csv"
    dept.write_text(f"code,name,kind\n{CITY_DEPT},新密市城市管理局,government\n{gone},,-\n", encoding="utf-8")
    extra = [dept]
    for name in ("component_classes.csv", "event_classes.csv"):  # the classes naming it, now the city's department
        lines = (DATA / "catalogue" / name).read_text(encoding="utf-8").splitlines()
        moved = [x.replace(gone, CITY_DEPT) for x in lines[1:] if gone in x.split(",")]
        assert moved, name
        extra.append(tmp_path / name)
        extra[-1].write_text("\n".join([lines[0], *moved]) + "\n", encoding="utf-8")
    env = {"GISGRID_CATALOGUE_EXTRA": "[" + ",".join(f'"{p}"' for p in extra) + "]"}
    code, output = _diff(env, "--kind", "departments", "--format", "csv")
    name = base_row.split(",")[1]
    assert (code, output) == (
        0,
        HEADER
        + f"departments,新增 added,{CITY_DEPT},新密市城市管理局,,,kind=government,{dept}:2\r\n"
        + f"departments,删除 removed,{gone},{name},,kind=government,,{dept}:3\r\n",
    )
