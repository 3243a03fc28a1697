"""Component class catalogue: base files, CJ/T 214 ↔ GB/T 47678.5 mapping, city extensions and refusals."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from gisgrid import export_fields
from gisgrid.catalogue import (
    CODE_DIGITS,
    SCHEMES,
    ComponentClass,
    load_catalogue,
)
from gisgrid.errors import ConfigError, InvalidInput
from gisgrid.settings import PROJECT_ROOT, Settings

DATA = PROJECT_ROOT / "data"
BASE = DATA / "catalogue"
STREET_OFFICE = "990000000000000013"  # 街道办事处 in the base departments


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


CLASS_HEADER = ["scheme", "code", "big_code", "big_name", "name", "default_dept", "evidence"]


def problems(exc: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[str, int | None, str | None]]:
    return [(Path(p["file"]).name, p["row"], p["field"]) for p in exc.value.detail["problems"]]


def test_base_files_counts_and_consistency() -> None:
    cat = load_catalogue(Settings())
    gbt, cjt = cat.classes("gbt47678"), cat.classes("cjt214")
    assert len(gbt) == 25
    assert len(cjt) == 80
    assert len(cat.departments) == 19
    assert len(cat.cjt_to_gbt) == 16
    for scheme in SCHEMES:
        for code, cls in cat.classes(scheme).items():
            assert cls.code == code and len(code) == CODE_DIGITS[scheme] and code.isdigit()
            assert cls.big_code == code[:2]
            assert cls.default_dept in cat.departments
            assert cls.evidence == "I"
    assert all(len(code) == 18 and code.startswith("99") for code in cat.departments)
    # The big classes the notes list, and nothing invented beyond them.
    assert {c.big_code for c in cjt.values()} == {"01", "02", "03", "04", "05", "06"}
    assert {c.big_code for c in gbt.values()} == {"01", "02", "03", "04", "05"}
    assert gbt["01001"].name == "供水井盖" and gbt["05009"].name == "文物古迹" and gbt["01077"].name == "综合杆"
    assert cjt["0118"].name == "路灯" and cjt["0606"].name == "防洪墙" and "0110" not in cjt
    assert cat.departments[gbt["01037"].default_dept] == "城市照明管理处"
    assert cat.departments[gbt["03005"].default_dept] == "区环境卫生服务中心"
    assert cat.departments[cjt["0401"].default_dept] == "区园林绿化局"
    assert cat.departments[gbt["02014"].default_dept] == "公安交通管理支队"


def test_mapping_both_ways() -> None:
    cat = load_catalogue(DATA)
    assert cat.to_gbt("0118") == "01037"
    assert cat.to_gbt("0305") == "03005"
    assert cat.to_gbt("0501") == "03008"
    assert cat.to_cjt("01001") == "0101"
    assert cat.to_cjt("02014") == "0210"
    assert cat.to_gbt("0307") is None  # 广告牌匾 splits into 户外广告 + 牌匾标识: no one-to-one match
    assert cat.to_cjt("01054") is None
    # The base map covers only names both sides give.
    for cjt, gbt in cat.cjt_to_gbt.items():
        assert cjt in cat.classes("cjt214") and gbt in cat.classes("gbt47678")


def test_load_accepts_settings_data_dir_or_catalogue_dir() -> None:
    a, b, c = load_catalogue(Settings(catalogue_dir=DATA)), load_catalogue(DATA), load_catalogue(BASE)
    assert a.classes("gbt47678") == b.classes("gbt47678") == c.classes("gbt47678")


def test_unknown_scheme_in_lookup() -> None:
    with pytest.raises(InvalidInput, match="unknown scheme"):
        load_catalogue(DATA).classes("gb30428")


def test_city_extension_adds_class_21_and_overrides(tmp_path: Path) -> None:
    depts = write_csv(
        tmp_path / "city_departments.csv",
        ["code", "name", "kind"],
        [
            ["99110105MA0000001X", "区共享单车管理办公室", "government"],
            ["990000000000000013", "某某街道办事处", "subdistrict"],
        ],
    )
    classes = write_csv(
        tmp_path / "city_classes.csv",
        CLASS_HEADER,
        [
            ["gbt47678", "21001", "21", "扩展部件", "共享单车停放点", "99110105MA0000001X", ""],
            ["gbt47678", "01037", "01", "市政公用设施", "路灯(含庭院灯)", STREET_OFFICE, "L"],
            ["cjt214", "2101", "21", "扩展部件", "材质", "", "L"],
        ],
    )
    # Departments are read before classes whatever the order of ``extra``.
    cat = load_catalogue(DATA, extra=[classes, depts])
    gbt = cat.classes("gbt47678")
    assert gbt["21001"] == ComponentClass(
        "gbt47678", "21001", "21", "扩展部件", "共享单车停放点", "99110105MA0000001X", "L"
    )
    assert gbt["01037"].name == "路灯(含庭院灯)" and gbt["01037"].default_dept == STREET_OFFICE
    assert len(gbt) == 26 and len(cat.classes("cjt214")) == 81
    assert cat.classes("cjt214")["2101"].default_dept == ""
    assert cat.departments["990000000000000013"] == "某某街道办事处"
    assert cat.departments["99110105MA0000001X"] == "区共享单车管理办公室"
    assert len(cat.departments) == 20
    # The base catalogue is untouched.
    assert load_catalogue(DATA).classes("gbt47678")["01037"].name == "路灯"


def test_extension_in_gbk_is_read(tmp_path: Path) -> None:
    extra = write_csv(
        tmp_path / "local.csv",
        CLASS_HEADER,
        [["gbt47678", "21002", "21", "扩展部件", "电子围栏", STREET_OFFICE, "L"]],
        "gbk",
    )
    assert load_catalogue(DATA, extra=[extra]).classes("gbt47678")["21002"].name == "电子围栏"


def test_broken_extension_is_refused_naming_file_row_field(tmp_path: Path) -> None:
    extra = write_csv(
        tmp_path / "broken.csv",
        CLASS_HEADER,
        [
            ["gb30428", "01001", "01", "x", "x", STREET_OFFICE, "L"],  # line 2: unknown scheme
            ["gbt47678", "2101", "21", "扩展部件", "x", STREET_OFFICE, "L"],  # line 3: 4 digits in gbt
            ["gbt47678", "21003", "22", "扩展部件", "x", STREET_OFFICE, "L"],  # line 4: big_code ≠ code[:2]
            ["gbt47678", "21004", "21", "扩展部件", "x", "99NOPE", "L"],  # line 5: unknown department
            ["gbt47678", "21004", "21", "扩展部件", "y", STREET_OFFICE, "L"],  # line 6: duplicate of line 5
            ["cjt214", "21a1", "21", "扩展部件", "x", STREET_OFFICE, "L"],  # line 7: non-digits
            ["cjt214", "2105", "21", "扩展部件", "", STREET_OFFICE, "X"],  # line 8: empty name, bad evidence
        ],
    )
    with pytest.raises(InvalidInput) as exc:
        load_catalogue(DATA, extra=[extra])
    assert sorted(problems(exc), key=lambda p: (p[1], p[2])) == [
        ("broken.csv", 2, "scheme"),
        ("broken.csv", 3, "code"),
        ("broken.csv", 4, "big_code"),
        ("broken.csv", 6, "code"),
        ("broken.csv", 7, "code"),
        ("broken.csv", 8, "evidence"),
        ("broken.csv", 8, "name"),
    ]
    # Line 6 overrides line 5 within the file, so only the duplicate (not 99NOPE) is reported for 21004.
    assert "broken.csv: row 2, field 'scheme'" in exc.value.message
    assert "duplicate of row 5" in str(exc.value.detail["problems"])


def test_unknown_default_department_is_refused(tmp_path: Path) -> None:
    extra = write_csv(tmp_path / "c.csv", CLASS_HEADER, [["gbt47678", "21001", "21", "扩展部件", "x", "99NOPE", "L"]])
    with pytest.raises(InvalidInput) as exc:
        load_catalogue(DATA, extra=[extra])
    assert problems(exc) == [("c.csv", 2, "default_dept")]


def test_missing_columns_and_missing_file(tmp_path: Path) -> None:
    extra = write_csv(tmp_path / "c.csv", ["scheme", "code", "name"], [["gbt47678", "21001", "x"]])
    with pytest.raises(InvalidInput, match="missing column"):
        load_catalogue(DATA, extra=[extra])
    with pytest.raises(InvalidInput, match="not found"):
        load_catalogue(DATA, extra=[tmp_path / "nope.csv"])


def test_broken_departments_file(tmp_path: Path) -> None:
    depts = write_csv(
        tmp_path / "my_departments.csv",
        ["code", "name", "kind"],
        [
            ["99 BAD", "x", "government"],
            ["990000000000000099", "", "government"],
            ["990000000000000098", "a", "enterprise"],
            ["990000000000000098", "b", "enterprise"],
            ["990000000000000097", "c", "政府"],  # review27 D12: kind is one of the four
            ["990000000000000096", "d", "govt"],
            ["990000000000000095", "e", ""],
        ],
    )
    with pytest.raises(InvalidInput) as exc:
        load_catalogue(DATA, extra=[depts])
    assert problems(exc) == [
        ("my_departments.csv", 5, "code"),
        ("my_departments.csv", 2, "code"),
        ("my_departments.csv", 3, "name"),
        ("my_departments.csv", 6, "kind"),
        ("my_departments.csv", 7, "kind"),
        ("my_departments.csv", 8, "kind"),
    ]
    assert f"{depts}: row 6, field 'kind': kind must be one of government, public_institution, enterprise, " in (
        exc.value.message
    )
    assert exc.value.detail["problems"][3] == {
        "file": str(depts),
        "row": 6,
        "field": "kind",
        "value": "政府",
        "reason": "kind must be one of government, public_institution, enterprise, subdistrict (or '-' in an extra "
        "file: removes the department)",
    }


DEPT_HEADER = ["code", "name", "kind"]
TOILETS = "990000000000000003"  # 区环境卫生服务中心: default_dept of 公共厕所 03001 (component_classes.csv:16) …


def test_an_extra_departments_row_of_kind_dash_removes_a_department(tmp_path: Path) -> None:
    """As a routing row's department '-' removes a rule (review58 M3): gone from the catalogue in force, with the
    file:line that removed it; a later file may give it again."""
    added = write_csv(tmp_path / "a.csv", DEPT_HEADER, [["12410100MB0000001X", "区园林中心", "government"]])
    removal = write_csv(tmp_path / "b.csv", DEPT_HEADER, [["12410100MB0000001X", "区园林中心", "-"]])
    catalogue = load_catalogue(DATA, extra=[added, removal])
    assert "12410100MB0000001X" not in catalogue.departments
    assert "12410100MB0000001X" not in catalogue.department_kinds
    assert "12410100MB0000001X" not in catalogue.department_origins
    assert catalogue.department_removed_by == {"12410100MB0000001X": (removal, 2)}
    assert len(catalogue.departments) == 19

    again = write_csv(tmp_path / "c.csv", DEPT_HEADER, [["12410100MB0000001X", "区园林绿化中心", "enterprise"]])
    catalogue = load_catalogue(DATA, extra=[added, removal, again])
    assert catalogue.departments["12410100MB0000001X"] == "区园林绿化中心"
    assert catalogue.department_removed_by == {}


def test_a_removal_is_refused_in_the_base_file_for_an_unknown_code_and_twice(tmp_path: Path) -> None:
    base = tmp_path / "data"
    (base / "catalogue").mkdir(parents=True)
    for name in ("component_classes.csv", "component_class_map.csv"):
        (base / "catalogue" / name).write_bytes((BASE / name).read_bytes())
    rows = (BASE / "departments.csv").read_text(encoding="utf-8") + "990000000000000099,某部门,-\n"
    (base / "catalogue" / "departments.csv").write_text(rows, encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        load_catalogue(base)
    assert exc.value.detail["problems"] == [
        {
            "file": str(base / "catalogue" / "departments.csv"),
            "row": 21,
            "field": "kind",
            "value": "-",
            "reason": "kind 为 - 表示删除前一文件的部门,只用于城市的附加部门文件(GISGRID_CATALOGUE_EXTRA);"
            "本文件中请直接删除该行 / kind '-' removes a department of an earlier file, so it is for a city's extra "
            "departments file (GISGRID_CATALOGUE_EXTRA); in this file delete the row",
        }
    ]

    first = write_csv(tmp_path / "x.csv", DEPT_HEADER, [["12410100MB0000001X", "区园林中心", "government"],
                                                         ["12410100MB0000001X", "", "-"]])  # fmt: skip
    again = write_csv(tmp_path / "y.csv", DEPT_HEADER, [["12410100MB0000001X", "", "-"], ["99TYPO", "", "-"]])
    with pytest.raises(InvalidInput) as exc:
        load_catalogue(DATA, extra=[first, again])
    reasons = [(Path(p["file"]).name, p["row"], p["field"], p["reason"]) for p in exc.value.detail["problems"]]
    assert reasons == [
        ("x.csv", 3, "code", "duplicate of row 2 in the same file"),
        ("y.csv", 2, "code", f"kind 为 - 删除部门 12410100MB0000001X,但它已被 {first}:3 删除 / kind '-' removes "
         f"department 12410100MB0000001X, but it was already removed by {first}:3"),
        ("y.csv", 3, "code", "kind 为 - 删除部门 99TYPO,但前面的部门文件中没有它 / kind '-' removes department 99TYPO, "
         "but no earlier departments file has it"),
    ]  # fmt: skip


def test_removing_a_department_a_class_in_force_names_is_refused_naming_both_rows(tmp_path: Path) -> None:
    """A class whose default_dept is removed would send components nowhere: refused at the class's file:line,
    naming the row that removed it; once the city's class rows name another department, it is accepted."""
    new = "12410100MB1234567X"
    depts = write_csv(tmp_path / "部门.csv", DEPT_HEADER, [[new, "区环境卫生服务中心", "public_institution"],
                                                           [TOILETS, "区环境卫生服务中心", "-"]])  # fmt: skip
    with pytest.raises(InvalidInput) as exc:
        load_catalogue(DATA, extra=[depts])
    named = [(Path(p["file"]).name, p["row"]) for p in exc.value.detail["problems"]]
    shipped = [
        line
        for line, text in enumerate((BASE / "component_classes.csv").read_text(encoding="utf-8").splitlines(), 1)
        if f",{TOILETS}," in text
    ]
    assert named == [("component_classes.csv", line) for line in shipped]
    assert exc.value.detail["problems"][0] == {
        "file": str(BASE / "component_classes.csv"),
        "row": 16,
        "field": "default_dept",
        "value": TOILETS,
        "reason": f"部门 {TOILETS} 已被 {depts}:3 删除(kind 为 -),此行仍指向它:改为接替它的部门 / department "
        f"{TOILETS} is removed by {depts}:3 (kind '-') but this row still names it: name the department that "
        "replaces it",
    }

    lines = (BASE / "component_classes.csv").read_text(encoding="utf-8").splitlines()
    classes = tmp_path / "部件类别.csv"
    classes.write_text(
        "\n".join([lines[0], *(lines[n - 1].replace(TOILETS, new) for n in shipped)]) + "\n", encoding="utf-8"
    )
    catalogue = load_catalogue(DATA, extra=[depts, classes])
    assert TOILETS not in catalogue.departments
    assert catalogue.classes("gbt47678")["03001"].default_dept == new
    assert catalogue.department_removed_by == {TOILETS: (depts, 3)}


def test_class_map_extension(tmp_path: Path) -> None:
    ok = write_csv(tmp_path / "city_class_map.csv", ["cjt214_code", "gbt47678_code", "note"], [["0302", "03001", "x"]])
    with pytest.raises(InvalidInput) as exc:  # 03001 is already the match of 0301: to_cjt would be ambiguous
        load_catalogue(DATA, extra=[ok])
    assert [p[2] for p in problems(exc)] == ["gbt47678_code"]
    override = write_csv(
        tmp_path / "b_class_map.csv", ["cjt214_code", "gbt47678_code", "note"], [["0117", "01077", "by meaning"]]
    )
    cat = load_catalogue(DATA, extra=[override])
    assert cat.to_gbt("0117") == "01077" and cat.to_cjt("01077") == "0117"
    bad = write_csv(tmp_path / "c_class_map.csv", ["cjt214_code", "gbt47678_code", "note"], [["0199", "01999", ""]])
    with pytest.raises(InvalidInput) as exc:
        load_catalogue(DATA, extra=[bad])
    assert problems(exc) == [("c_class_map.csv", 2, "cjt214_code"), ("c_class_map.csv", 2, "gbt47678_code")]


def test_export_fields_file_is_checked(tmp_path: Path) -> None:
    """data/catalogue/export_fields.csv (review23 D5): a bad row is a ConfigError naming the line and column."""
    assert export_fields.text_lengths("components")["GLBJMC"] == 30
    assert export_fields.date_fields("components") == ("CSRQ", "BGRQ")
    assert export_fields.text_lengths("unit_grids")["code"] == 15
    assert export_fields.text_lengths("unit_grids")["tier3_code"] == 14
    assert export_fields.text_lengths("tier3_grids") == {"code": 14, "parent_code": 12, "admin_code": 12}
    assert export_fields.text_lengths("tier9_grids") == {}
    head = "layer,field,type,length,name_zh,source\n"
    for body, message in [
        ("components,GLBJMC,text,thirty,管理部件名称,x\n", "line 2, column length: 'thirty' is not a positive"),
        ("components,GLBJMC,char,30,管理部件名称,x\n", "line 2, column type: 'char' is not one of"),
        ("components,A,text,3,,x\ncomponents,A,text,4,,x\n", "line 3: field 'A' of 'components' listed twice"),
    ]:
        bad = tmp_path / "export_fields.csv"
        bad.write_text(head + body, encoding="utf-8")
        with pytest.raises(ConfigError, match=re.escape(f"{bad}: {message}")):
            export_fields.load_export_fields(bad)
