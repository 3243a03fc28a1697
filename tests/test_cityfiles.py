"""A city's files: one way of reading every one (UTF-8 with or without a BOM, else GB18030; anything else refused in
one line), and an extra file's kind decided by its header, never by its name (review27 D3, D6)."""

from __future__ import annotations

import codecs
import shutil
from datetime import date
from pathlib import Path

import pytest

from gisgrid import cityfiles, export_fields
from gisgrid.calendar import load_city_calendar
from gisgrid.cases import load_rules
from gisgrid.catalogue import load_catalogue
from gisgrid.components_store import catalogue_for
from gisgrid.errors import ConfigError, InvalidInput
from gisgrid.evaluation import RULES_FILE, load_evaluation_rules
from gisgrid.events import load_event_catalogue
from gisgrid.grids import workflows
from gisgrid.routing import load_routing_rules
from gisgrid.settings import PROJECT_ROOT, Settings
from maps.field import load_search_terms
from maps.pagejs import load_reason_texts

DATA = PROJECT_ROOT / "data"
SAVE = 'save it as "CSV UTF-8(逗号分隔)" (or CSV in GBK)'
UTF16 = f'UTF-16 text (Excel\'s "Unicode 文本"), not UTF-8 or GB18030: {SAVE}'
EVENT_HEADER = (
    "scheme,code,big_code,big_name,name,component_class,default_dept,filing_condition,closing_condition,evidence,"
    "duplicate_radius_m,duplicate_window_h"
)
CITY_DEPT = "990000000000000099"
EXTRA_KINDS = (
    "departments (code,name,kind); component classes (scheme,code,big_code,big_name,name,default_dept,evidence); "
    "component class map (cjt214_code,gbt47678_code,note); event classes (scheme,code,big_code,big_name,name,"
    "component_class,default_dept,filing_condition,closing_condition,evidence,duplicate_radius_m,duplicate_window_h); "
    "event time limits (scheme,code,disposal_type,limit,unit,urgent); "
    "node time limits (node,name,limit,unit,evidence); "
    "routing rules (rule_id,priority,scheme,class_prefix,area_prefix,tier_grid,time_from,time_to,weekdays,department,"
    "note)"
)


def put(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def refused(exc: pytest.ExceptionInfo[Exception]) -> str:
    return exc.value.message  # type: ignore[attr-defined,no-any-return]


# -- reading ----------------------------------------------------------------------------------------------------------


def test_utf8_with_bom_crlf_trailing_empty_columns_and_blank_rows(tmp_path: Path) -> None:
    path = put(
        tmp_path / "d.csv",
        "\ufeffcode , name,kind,,\r\n9901,区城管局 ,government,,\r\n,,,,\r\n\r\n9902,b,enterprise\r\n",
    )
    table = cityfiles.read_csv(path)
    assert table.header == ["code", "name", "kind"]  # no BOM in the first name, no empty trailing names
    assert table.rows == [
        (2, {"code": "9901", "name": "区城管局", "kind": "government"}),
        (5, {"code": "9902", "name": "b", "kind": "enterprise"}),
    ]
    assert table.encoding == "UTF-8"


def test_gb18030_is_read_and_said(tmp_path: Path) -> None:
    path = put(tmp_path / "d.csv", "code,name,kind\n9901,区共享单车管理办公室,government\n", "gbk")
    table = cityfiles.read_csv(path)
    assert table.rows == [(2, {"code": "9901", "name": "区共享单车管理办公室", "kind": "government"})]
    assert table.encoding == "GB18030"


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        (codecs.BOM_UTF16_LE + "code,name\n".encode("utf-16-le"), UTF16),
        (codecs.BOM_UTF16_BE + "code,name\n".encode("utf-16-be"), UTF16),
        (codecs.BOM_UTF32_LE + "code\n".encode("utf-32-le"), UTF16.replace("UTF-16", "UTF-32")),
        ("code,name\n".encode("utf-16-le"), f"holds NUL bytes (UTF-16 without a BOM, or not text): {SAVE}"),
        (b"PK\x03\x04rest", f"an Excel workbook (.xlsx) or another zip file, not CSV text: {SAVE}"),
        (b"\xd0\xcf\x11\xe0rest", f"an Excel 97–2003 workbook (.xls), not CSV text: {SAVE}"),
        (b"code\n\xff\xfe\xff\n", f"neither UTF-8 nor GB18030 text (byte 0xFF at offset 5 is not UTF-8): {SAVE}"),
    ],
)
def test_what_is_neither_utf8_nor_gb18030_is_refused_in_one_line(tmp_path: Path, raw: bytes, what: str) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(raw)
    with pytest.raises(InvalidInput) as exc:
        cityfiles.read_csv(path)
    assert refused(exc) == f"{path}: {what}"
    assert exc.value.detail == {"file": str(path)}
    with pytest.raises(ConfigError):  # a loader may ask for its own error class
        cityfiles.read_text(path, error=ConfigError)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as exc:
        cityfiles.read_text(tmp_path / "nope.csv", "calendar file")
    assert refused(exc) == f"{tmp_path / 'nope.csv'}: calendar file not found"


def utf16(path: Path, text: str) -> Path:
    path.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    return path


def test_every_catalogue_and_rules_loader_refuses_utf16_in_one_line(tmp_path: Path) -> None:
    """review27 D6: a departments or routing file saved as Excel's Unicode 文本 gave a UnicodeDecodeError traceback."""
    depts = utf16(tmp_path / "city_departments.csv", "code,name,kind\n990000000000000099,x,government\n")
    with pytest.raises(InvalidInput) as exc:
        load_catalogue(DATA, [depts])
    assert refused(exc) == f"{depts}: {UTF16}"
    rules = utf16(tmp_path / "city_routing.csv", "rule_id\n")
    with pytest.raises(InvalidInput) as exc:
        load_routing_rules(DATA, [rules])
    assert refused(exc) == f"{rules}: {UTF16}"
    calendar = utf16(tmp_path / "calendar.csv", "date,kind\n2099-01-01,休息日\n")
    with pytest.raises(InvalidInput) as exc:
        load_city_calendar(calendar)
    assert refused(exc) == f"{calendar}: {UTF16}"
    evaluation = utf16(tmp_path / "evaluation.csv", "kind\n")
    with pytest.raises(InvalidInput) as exc:
        load_evaluation_rules(evaluation)
    assert refused(exc) == f"evaluation rules: 1 problem(s):\n{evaluation}: {UTF16}"  # one of its list
    staff = utf16(tmp_path / "staff.csv", "grid_code,role,name,phone\n")
    with pytest.raises(InvalidInput) as exc:
        workflows.import_staff(None, staff)  # type: ignore[arg-type]  # refused before the database is asked
    assert refused(exc) == f"{staff}: {UTF16}"
    shutil.copytree(DATA, tmp_path / "city")
    terms = utf16(tmp_path / "city" / "catalogue" / "search_terms.csv", "term,finds\n")
    with pytest.raises(ConfigError) as exc:
        load_search_terms.__wrapped__(tmp_path / "city")
    assert refused(exc) == f"{terms}: {UTF16}"


def test_calendar_and_evaluation_rules_in_gbk_are_read_as_in_utf8(tmp_path: Path) -> None:
    """review27 D6: a GBK calendar was refused ('utf-8' codec can't decode); a GBK evaluation.csv gave a 500."""
    calendar = put(
        tmp_path / "calendar.csv", "date,kind,note\r\n2099-01-01,休息日,元旦,,\r\n2099-01-03,上班日,调休\r\n", "gbk"
    )
    cal = load_city_calendar(calendar)
    assert not cal.is_working_day(date(2099, 1, 1))
    assert cal.is_working_day(date(2099, 1, 3))
    gbk_rules = put(tmp_path / "evaluation.csv", RULES_FILE.read_text(encoding="utf-8"), "gb18030")
    assert load_evaluation_rules(gbk_rules).weights == load_evaluation_rules(RULES_FILE).weights
    assert load_evaluation_rules(gbk_rules).grades == load_evaluation_rules(RULES_FILE).grades


def test_search_terms_and_reason_texts_with_bom_gbk_or_missing(tmp_path: Path) -> None:
    """review27 D6: a BOM was refused as a wrong header ('\\ufeffterm'), GBK and a missing file were tracebacks."""
    city = tmp_path / "city"
    shutil.copytree(DATA, city)
    terms = city / "catalogue" / "search_terms.csv"
    base_terms = load_search_terms(DATA)
    put(terms, "\ufeff" + terms.read_text(encoding="utf-8") + "小黄车,共享单车\n")
    assert load_search_terms.__wrapped__(city) == {**base_terms, "小黄车": ("共享单车",)}
    put(terms, "term,finds\r\n窨井,井盖\r\n", "gbk")
    assert load_search_terms.__wrapped__(city) == {"窨井": ("井盖",)}
    terms.unlink()
    with pytest.raises(ConfigError) as exc:
        load_search_terms.__wrapped__(city)
    # where the app looks for it: the copy's, else the package's (review55 F6), not "a copy holds every file"
    assert refused(exc) == (
        f"{terms}: not found; search_terms.csv is read from GISGRID_CATALOGUE_DIR's catalogue/ when it holds one, "
        f"else from the package's data/catalogue ({DATA / 'catalogue'}), which must hold it (reinstall gisgrid if it "
        "is gone)"
    )
    messages = city / "catalogue" / "messages_zh.csv"
    put(messages, messages.read_text(encoding="utf-8"), "gb18030")
    assert load_reason_texts.__wrapped__(city) == load_reason_texts.__wrapped__(DATA)
    messages.unlink()
    with pytest.raises(ConfigError) as exc:
        load_reason_texts.__wrapped__(city)
    assert refused(exc) == (
        f"{messages}: not found; messages_zh.csv is always the package's (a GISGRID_CATALOGUE_DIR copy's is not "
        f"read): its data/catalogue ({DATA / 'catalogue'}) must hold it (reinstall gisgrid if it is gone)"
    )


def test_a_city_copy_need_not_hold_the_product_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """review55 F6: a GISGRID_CATALOGUE_DIR copy had to hold messages_zh.csv and search_terms.csv, freezing the
    product's texts at the version copied. Without them the package's are read; a copy's search words (a city may
    add local ones) are used when it has them; the reason texts are always the package's."""
    from api.main import load_start_data
    from gisgrid.cli import said_in_chinese_first
    from gisgrid.errors import Reason

    city = tmp_path / "city"
    shutil.copytree(DATA, city)
    (city / "catalogue" / "search_terms.csv").unlink()
    (city / "catalogue" / "messages_zh.csv").unlink()
    settings = Settings(catalogue_dir=city, data_dir=tmp_path / "d")
    start = load_start_data(settings)
    assert start.search_terms == load_search_terms(DATA)
    assert start.reason_texts == load_reason_texts(DATA)
    # A stale copy of the reason texts is not read; the city's own search words are.
    put(city / "catalogue" / "messages_zh.csv", "code,zh\nfinite_number,旧文本\n")
    put(city / "catalogue" / "search_terms.csv", "term,finds\n小黄车,共享单车\n")
    start = load_start_data(settings)
    assert start.search_terms == {"小黄车": ("共享单车",)}
    assert start.reason_texts == load_reason_texts(DATA)
    # The command line's zh-CN of a refusal's reason too.
    (city / "catalogue" / "messages_zh.csv").unlink()
    monkeypatch.setenv("GISGRID_CATALOGUE_DIR", str(city))
    refusal = InvalidInput("lon must be a finite number", reason=Reason.FINITE_NUMBER)
    assert said_in_chinese_first(refusal) == f"{load_reason_texts(DATA)['finite_number']} / lon must be a finite number"


def test_export_fields_read_through_the_shared_reader(tmp_path: Path) -> None:
    bad = utf16(tmp_path / "export_fields.csv", "layer\n")
    with pytest.raises(ConfigError) as exc:
        export_fields.load_export_fields(bad)
    assert refused(exc) == f"{bad}: {UTF16}"


# -- kinds ------------------------------------------------------------------------------------------------------------


def city_settings(*extra: Path) -> Settings:
    return Settings(catalogue_dir=DATA, catalogue_extra=list(extra))


def test_an_event_override_with_a_chinese_name_is_an_event_override(tmp_path: Path) -> None:
    """review27 D3: 城市事项.csv (event classes header) was loaded as a component class file: a bogus component class
    06010, the override ignored, nothing said."""
    depts = put(tmp_path / "部门.csv", f"code,name,kind\n{CITY_DEPT},区共享单车管理办公室,government\n")
    events = put(
        tmp_path / "城市事项.csv",
        f"{EVENT_HEADER}\ngbt47678,06010,06,市容环境类,暴露垃圾,,{CITY_DEPT},主次干道成堆成片,彻底清理,I,100,48\n",
    )
    rules = put(
        tmp_path / "派遣规则.csv",
        "rule_id,priority,scheme,class_prefix,area_prefix,tier_grid,time_from,time_to,weekdays,department,note\n"
        f"C001,50,gbt47678,06010,419901001,,18:00,23:00,,{CITY_DEPT},晚间\n",
    )
    settings = city_settings(depts, events, rules)
    components = catalogue_for(settings)
    assert "06010" not in components.classes("gbt47678")
    assert components.departments[CITY_DEPT] == "区共享单车管理办公室"
    ev = load_event_catalogue(settings, settings.catalogue_extra, components=components).get("gbt47678", "06010")
    assert (ev.default_dept, ev.duplicate_radius_m, ev.duplicate_window_h) == (CITY_DEPT, 100.0, 48.0)
    routing = load_rules(settings, components)
    assert [r.rule_id for r in routing.rules if r.rule_id == "C001"] == ["C001"]
    assert routing.sources[-1] == rules


def test_kinds_of_the_package_files() -> None:
    """Every catalogue and rules file of the package is recognised as its kind (the kinds' columns are the loaders')."""
    found = {}
    for path in sorted([*(DATA / "catalogue").glob("*.csv"), *(DATA / "rules").glob("*.csv")]):
        try:
            found[path.name] = cityfiles.file_kind(path).name
        except InvalidInput as exc:
            found[path.name] = exc.message.split(": ", 1)[1].split(",")[0]
    assert found == {
        "component_class_map.csv": "class_map",
        "component_classes.csv": "component_classes",
        "departments.csv": "departments",
        "event_classes.csv": "event_classes",
        "event_time_limits.csv": "event_time_limits",
        "node_time_limits.csv": "node_time_limits",
        "routing.csv": "routing_rules",
        "evaluation.csv": "a file of evaluation rules (kind",
        "export_fields.csv": "a file of export fields (layer",
        "messages_zh.csv": "a file of reason texts (code",
        "search_terms.csv": "a file of search terms (term",
    }


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "code,部门名称,kind",
            f"the header code,部门名称,kind fits no kind of catalogue file (nearest: departments, missing column(s) "
            f"name); the kinds and their columns: {EXTRA_KINDS}",
        ),
        (  # an event file short of a column is not taken for a component-classes file, whose columns it has
            EVENT_HEADER.removesuffix(",duplicate_window_h"),
            "the header has the columns of component classes (scheme,code,big_code,big_name,name,default_dept,"
            "evidence) and also component_class, filing_condition, closing_condition, duplicate_radius_m of event "
            "classes (missing column(s) duplicate_window_h); a file holds one kind",
        ),
        (
            "scheme,code,big_code,big_name,name,default_dept,evidence,disposal_type",
            "the header has the columns of component classes (scheme,code,big_code,big_name,name,default_dept,"
            "evidence) and also disposal_type of event time limits (missing column(s) limit, unit, urgent); a file "
            "holds one kind",
        ),
        (
            "a,b",
            f"the header a,b fits no kind of catalogue file; the kinds and their columns: {EXTRA_KINDS}",
        ),
        (
            "code,name,kind,scheme,big_code,big_name,default_dept,evidence",
            "the header fits more than one kind of catalogue file: departments (code,name,kind); component classes "
            "(scheme,code,big_code,big_name,name,default_dept,evidence); give each its own file",
        ),
        (
            "date,kind,note",
            "a file of working calendar (date,kind), which GISGRID_CATALOGUE_EXTRA does not take: name it in "
            "GISGRID_CALENDAR_FILE",
        ),
        (
            "term,finds",
            "a file of search terms (term,finds), which GISGRID_CATALOGUE_EXTRA does not take: edit "
            "catalogue/search_terms.csv in the GISGRID_CATALOGUE_DIR copy",
        ),
        ("", f"empty (no header row); an extra catalogue file is one of: {EXTRA_KINDS}"),
        (
            "code,name,kind,priority",
            "the header has the columns of departments (code,name,kind) and also priority of routing rules (missing "
            "column(s) rule_id, scheme, class_prefix, area_prefix, tier_grid, time_from, time_to, weekdays, "
            "department, note); a file holds one kind",
        ),
    ],
)
def test_a_header_of_no_kind_or_several_is_refused_naming_file_kinds_and_columns(
    tmp_path: Path, header: str, message: str
) -> None:
    path = put(tmp_path / "city_departments.csv", f"{header}\n" if header else "")
    with pytest.raises(InvalidInput) as exc:
        catalogue_for(city_settings(path))
    assert refused(exc) == f"{path}: {message}"
    assert "\n" not in refused(exc)
    # Whichever loader meets it first says the same.
    with pytest.raises(InvalidInput) as again:
        load_event_catalogue(DATA, [path])
    assert refused(again) == refused(exc)


def test_extra_columns_of_no_kind_are_left_alone(tmp_path: Path) -> None:
    """A city's own column (备注, type …) does not change a file's kind."""
    path = put(tmp_path / "x.csv", f"code,name,kind,备注,type\n{CITY_DEPT},区共享单车管理办公室,government,新设,局\n")
    assert cityfiles.file_kind(path).name == "departments"
    assert load_catalogue(DATA, [path]).departments[CITY_DEPT] == "区共享单车管理办公室"
    nodes = put(
        tmp_path / "y.csv", "node,name,limit,unit,evidence,urgent_limit,urgent_unit\nverify,核实,2,working_hours,,,\n"
    )
    assert cityfiles.file_kind(nodes).name == "node_time_limits"


def test_the_components_and_history_imports_decode_as_every_city_file(tmp_path: Path) -> None:
    """review53 F10: the imports' CSV reader (cityfiles.read_table_csv) decodes with cityfiles.decode — one
    implementation: GB18030 read with a note, UTF-16 and undecodable bytes refused in its words; a NUL byte is
    text there (its row is refused by the import, naming it), not taken for UTF-16."""
    from gisgrid.history_import import read_history_csv

    save = 'save it as "CSV UTF-8(逗号分隔)" (or CSV in GBK)'
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("class_code,lon,lat,name\r\n01037,113.7,34.75,井盖\r\n".encode("gb18030"))
    table, notes = cityfiles.read_table_csv(gbk)
    assert table.to_dict("records") == [
        {"_row": 2, "class_code": "01037", "lon": "113.7", "lat": "34.75", "name": "井盖"}
    ]
    assert notes == ["gbk.csv: not UTF-8, read as GBK (GB18030)"]
    utf16 = tmp_path / "u16.csv"
    utf16.write_text("class_code,lon,lat\n01037,113.7,34.75\n", encoding="utf-16")
    with pytest.raises(InvalidInput) as exc:
        cityfiles.read_table_csv(utf16)
    assert refused(exc) == f'{utf16}: UTF-16 text (Excel\'s "Unicode 文本"), not UTF-8 or GB18030: {save}'
    neither = tmp_path / "h.csv"
    neither.write_bytes(b"case_no,class_code,lon,lat,source,state,at\nX1,\xff\n")
    with pytest.raises(InvalidInput) as exc:
        read_history_csv(neither)
    assert refused(exc) == (f"{neither}: neither UTF-8 nor GB18030 text (byte 0xFF at offset 46 is not UTF-8): {save}")
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"class_code,lon,lat,name\n01037,113.7,34.75,a\x00b\n")
    table, notes = cityfiles.read_table_csv(nul)
    assert (table["name"].tolist(), notes) == (["a\x00b"], [])


def test_a_row_with_a_cell_too_many_is_refused_in_one_line_by_every_csv_reader(tmp_path: Path) -> None:
    """review42 U2: pandas' 'Error tokenizing data. C error: Expected 5 fields in line 6, saw 6\\n' (or, in the first
    row, nothing at all: the columns shifted) — now the row refusal's words, zh-CN first, in one line, from the
    components and history imports, the staff import and every catalogue/rules file (which dropped the cell)."""
    from gisgrid.history_import import read_history_csv

    def line(path: Path, row: int, cells: int, header: int) -> str:
        zh = f"第 {row} 行有 {cells} 列,表头只有 {header} 列"
        return f"{path}: {zh} / line {row} has {cells} cells, the header {header}"

    comp = tmp_path / "c1.csv"
    comp.write_text("class_code,lon,lat,name,note\n" + "01037,113.7,34.75,a,b\n" * 4 + "01037,113.7,34.75,a,b,c\n")
    with pytest.raises(InvalidInput) as exc:
        cityfiles.read_table_csv(comp)
    assert refused(exc) == line(comp, 6, 6, 5)
    assert exc.value.detail == {"file": str(comp), "row": 6, "cells": 6, "header": 5}
    first = tmp_path / "c2.csv"  # in the first row pandas took the extra cell for the row labels
    first.write_text("class_code,lon,lat,name,note\n01037,113.7,34.75,a,b,c\n01037,113.7,34.75,a,b\n")
    with pytest.raises(InvalidInput) as exc:
        cityfiles.read_table_csv(first)
    assert refused(exc) == line(first, 2, 6, 5)
    hist = tmp_path / "h.csv"
    hist.write_text("case_no,class_code,lon,lat,source,state,at\nX1,06010,113.7,34.75,patrol,reported,2025-09-01,9\n")
    with pytest.raises(InvalidInput) as exc:
        read_history_csv(hist)
    assert refused(exc) == line(hist, 2, 8, 7)
    staff = tmp_path / "staff.csv"
    staff.write_text(
        "grid_code,role,name,phone\n41990100100101,网格长,张三,13800000000\n41990100100102,网格员,李,四,1\n"
    )
    with pytest.raises(InvalidInput) as exc:
        workflows.import_staff(None, staff)  # type: ignore[arg-type]  # refused before the database is asked
    assert refused(exc) == line(staff, 3, 5, 4)
    depts = tmp_path / "city_departments.csv"  # the csv module's reader dropped the cell: 其他 was read as the kind
    depts.write_text("code,name,kind\n990000000000000099,城管,执法,government\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        load_catalogue(DATA, [depts])
    assert refused(exc) == line(depts, 2, 4, 3)
    # Excel's empty cells after the last column are not a cell too many.
    depts.write_text("code,name,kind\n990000000000000099,城管执法,government,,\n", encoding="utf-8")
    assert load_catalogue(DATA, [depts]).departments["990000000000000099"] == "城管执法"
    other = tmp_path / "c3.csv"  # another parse error: one line too
    other.write_text('class_code,lon,lat\n01037,"113.7,34.75\n')
    with pytest.raises(InvalidInput) as exc:
        cityfiles.read_table_csv(other)
    assert refused(exc) == (
        f"{other}: 无法读取的 CSV / not a readable CSV (Error tokenizing data. C error: EOF inside string starting at "
        "row 1)"
    )


def test_a_header_naming_a_column_twice_is_refused_in_one_line(tmp_path: Path) -> None:
    """review43 D5: ``lon`` twice was read silently — the first as the longitude, the second renamed ``lon.1`` by
    pandas and stored as a custom attribute. Now refused naming the column, zh-CN first, by the components reader
    (CSV and sheet), the history reader and the staff import; also two names the readers take for one column
    (case) or one field (aliases). A genuine ``lon.1`` header stays a custom column."""
    import openpyxl

    from gisgrid.components import read_component_file
    from gisgrid.history_import import read_history_csv

    def twice(path: Path, name: str, i: int, j: int) -> str:
        zh = f"列 {name} 出现了两次(第 {i} 列和第 {j} 列),请只保留一列"
        return f"{path}: {zh} / column {name} appears twice (columns {i} and {j}); keep one"

    def one_field(path: Path, a: str, b: str, i: int, j: int, field: str) -> str:
        return (
            f"{path}: 列 {a} 和 {b}(第 {i} 列和第 {j} 列)是同一字段 {field},请只保留一列 / columns {a} and {b} "
            f"(columns {i} and {j}) are both the field {field}; keep one"
        )

    comp = tmp_path / "twice.csv"
    comp.write_text("GLBJMC,ZGBMDM,class_code,lon,lat,lon\na,x,01007,113.7181,34.7741,113.7191\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        read_component_file(comp)
    assert refused(exc) == twice(comp, "lon", 4, 6)
    assert exc.value.detail == {"file": str(comp), "columns": ["lon", "lon"], "positions": [4, 6], "field": None}
    cased = tmp_path / "cased.csv"
    cased.write_text("class_code,Lon,lat, LON\n01007,113.7181,34.7741,113.7191\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        read_component_file(cased)
    assert refused(exc) == (
        f"{cased}: 列 Lon 和 LON(第 2 列和第 4 列)是同一列(不区分大小写),请只保留一列 / columns Lon and LON "
        "(columns 2 and 4) are one column (case is ignored); keep one"
    )
    alias = tmp_path / "alias.csv"
    alias.write_text("class_code,lon,lat,lng\n01007,113.7181,34.7741,113.7191\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        read_component_file(alias)
    assert refused(exc) == one_field(alias, "lon", "lng", 2, 4, "lon")
    names = tmp_path / "names.csv"
    names.write_text("GLBJMC,class_code,lon,lat,name\na,01007,113.7181,34.7741,b\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        read_component_file(names)
    assert refused(exc) == one_field(names, "GLBJMC", "name", 1, 5, "name")
    sheet = tmp_path / "twice.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["GLBJMC", "class_code", "lon", "lat", "lon"])
    book.active.append(["a", "01007", "113.7181", "34.7741", "113.7191"])
    book.save(sheet)
    with pytest.raises(InvalidInput) as exc:
        read_component_file(sheet)
    assert refused(exc) == twice(sheet, "lon", 3, 5)
    genuine = tmp_path / "genuine.csv"  # a column named lon.1 by the city is a column of its own
    genuine.write_text("class_code,lon,lat,lon.1\n01007,113.7181,34.7741,113.7191\n", encoding="utf-8")
    assert read_component_file(genuine)["attrs"].tolist() == [{"lon.1": "113.7191"}]

    hist = tmp_path / "h.csv"
    hist.write_text(
        "case_no,class_code,lon,lat,source,state,at,at\nX1,06010,113.7,34.75,patrol,reported,2025-09-01,2025-09-02\n"
    )
    with pytest.raises(InvalidInput) as exc:
        read_history_csv(hist)
    assert refused(exc) == twice(hist, "at", 7, 8)
    notes = tmp_path / "h2.csv"
    notes.write_text(
        "case_no,class_code,lon,lat,source,state,at,备注,说明\nX1,06010,113.7,34.75,patrol,reported,2025-09-01,a,b\n"
    )
    with pytest.raises(InvalidInput) as exc:
        read_history_csv(notes)
    assert refused(exc) == one_field(notes, "备注", "说明", 8, 9, "note")
    staff = tmp_path / "staff.csv"
    staff.write_text("grid_code,role,name,phone,phone\n41990100100101,网格长,张三,13800000000,13900000000\n")
    with pytest.raises(InvalidInput) as exc:
        workflows.import_staff(None, staff)  # type: ignore[arg-type]  # refused before the database is asked
    assert refused(exc) == twice(staff, "phone", 4, 5)
