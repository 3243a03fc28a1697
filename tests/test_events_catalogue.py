"""Event class catalogue: base files, disposal and node limits, city overrides and every refusal."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from gisgrid.calendar import UNITS
from gisgrid.catalogue import SCHEMES, load_catalogue
from gisgrid.errors import InvalidInput
from gisgrid.events import (
    CLASS_COLUMNS,
    LIMIT_COLUMNS,
    NODE_COLUMNS,
    NODE_URGENT_COLUMNS,
    NODES,
    DisposalLimit,
    load_event_catalogue,
    matter_code,
    split_matter_code,
)
from gisgrid.settings import PROJECT_ROOT, Settings

DATA = PROJECT_ROOT / "data"
BASE = DATA / "catalogue"
STREET_OFFICE = "990000000000000013"


def write_csv(path: Path, header: tuple[str, ...], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def problems(exc: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[str, int | None, str | None]]:
    return [(Path(p["file"]).name, p["row"], p["field"]) for p in exc.value.detail["problems"]]


def event_row(**overrides: str) -> list[str]:
    row = {
        "scheme": "gbt47678",
        "code": "21001",
        "big_code": "21",
        "big_name": "扩展事项",
        "name": "共享单车堆积",
        "component_class": "",
        "default_dept": STREET_OFFICE,
        "filing_condition": "现场核实存在",
        "closing_condition": "现场核查已处置恢复",
        "evidence": "",
        "duplicate_radius_m": "30",
        "duplicate_window_h": "12",
    }
    row.update(overrides)
    return [row[c] for c in CLASS_COLUMNS]


def test_base_files() -> None:
    cat = load_event_catalogue(Settings())
    components = load_catalogue(Settings())
    gbt, cjt = cat.classes("gbt47678"), cat.classes("cjt214")
    assert (len(gbt), len(cjt)) == (55, 54)
    # One "<部件>异常" per gbt47678 component class, same code.
    for code, comp in components.classes("gbt47678").items():
        event = cat.for_component_class(code)
        assert event is not None and event.code == code and event.name == comp.name + "异常"
        assert event.default_dept == comp.default_dept
    assert cat.for_component_class("06001") is None
    assert {c.big_code for c in gbt.values()} == {"01", "02", "03", "04", "05", "06", "07", "08", "09", "10"}
    assert gbt["06001"].name == "私搭乱建" and gbt["10002"].name == "架空线缆脱落"
    assert gbt["06010"].filing_condition == "主次干道成堆成片" and gbt["06010"].closing_condition == "彻底清理"
    assert {c.big_code for c in cjt.values()} == {"01", "02", "03", "04", "05"}
    assert {"0199", "0399", "0499", "0599"} <= set(cjt) and "0299" not in cjt
    assert cjt["0406"].name == "道路积水"
    for scheme in ("gbt47678", "cjt214"):
        for code, cls in cat.classes(scheme).items():
            assert cls.default_dept in components.departments, code
            assert cls.filing_condition and cls.closing_condition
            limits = cat.limits(scheme, code)
            assert limits and all(lim.unit in UNITS and lim.limit > 0 for lim in limits)
    assert cat.node_limits == {
        "accept": (0.25, "working_hours"),
        "verify": (1.0, "working_hours"),
        "file": (0.5, "working_hours"),
        "dispatch": (0.5, "working_hours"),
        "check": (2.0, "working_hours"),
        "close": (1.0, "working_hours"),
    }
    assert cat.node_names["verify"] == "核实"


def test_limits_from_the_notes() -> None:
    cat = load_event_catalogue(DATA)
    demolish = [
        DisposalLimit("停工", 4, "working_hours", False),
        DisposalLimit("处罚", 7, "working_days", False),
        DisposalLimit("拆除", 20, "working_days", False),
    ]
    assert cat.limits("gbt47678", "06001") == demolish == cat.limits("cjt214", "0101")
    assert cat.limit("gbt47678", "06001", "拆除").limit == 20
    assert cat.limit("gbt47678", "06001").disposal_type == "停工"  # no 默认: the first listed
    assert cat.limit("gbt47678", "06010") == DisposalLimit("默认", 4, "working_hours", False)  # 暴露垃圾
    assert cat.limit("cjt214", "0104") == DisposalLimit("默认", 2, "working_hours", False)  # 道路不洁
    assert cat.limit("gbt47678", "06011") == DisposalLimit("默认", 2, "working_days", False)  # 积存垃圾渣土
    assert cat.limit("cjt214", "0406") == DisposalLimit("默认", 4, "working_hours", False)  # 道路积水
    assert cat.limit("gbt47678", "01001", "紧急").urgent
    with pytest.raises(InvalidInput, match="no disposal type"):
        cat.limit("gbt47678", "06010", "拆除")
    with pytest.raises(InvalidInput, match="unknown gbt47678 event class"):
        cat.get("gbt47678", "99999")
    with pytest.raises(InvalidInput, match="unknown scheme"):
        cat.classes("gbt30428")


def test_matter_code() -> None:
    assert matter_code("110101", "06010") == "11010106010"
    assert split_matter_code("11010106010") == ("110101", "06010")
    with pytest.raises(InvalidInput):
        matter_code("11010", "06010")
    with pytest.raises(InvalidInput):
        matter_code("110101", "0601")
    with pytest.raises(InvalidInput):
        split_matter_code("1101010601")


def test_city_overrides_and_extends(tmp_path: Path) -> None:
    classes = write_csv(
        tmp_path / "city_events.csv",
        CLASS_COLUMNS,
        [
            event_row(),  # a new local class, evidence defaults to L
            event_row(code="06010", big_code="06", big_name="市容环境类", name="暴露垃圾", filing_condition="任意道路"),
        ],
    )
    limits = write_csv(
        tmp_path / "city_time_limits.csv",
        LIMIT_COLUMNS,
        [
            ["gbt47678", "21001", "默认", "1", "working_days", "false"],
            ["gbt47678", "06010", "默认", "2", "working_hours", ""],  # stricter than the base 4 h
            ["gbt47678", "06001", "拆除", "15", "working_days", "否"],  # Jiyuan-style value
        ],
    )
    nodes = write_csv(
        tmp_path / "city_node_time_limits.csv", NODE_COLUMNS, [["dispatch", "派遣", "0.25", "working_hours", ""]]
    )
    # Limits first in ``extra``: still read after the classes.
    cat = load_event_catalogue(DATA, [limits, nodes, classes])
    local = cat.get("gbt47678", "21001")
    assert local.evidence == "L" and local.component_class is None
    assert cat.get("gbt47678", "06010").filing_condition == "任意道路"
    assert cat.limit("gbt47678", "06010").limit == 2
    assert [lim.limit for lim in cat.limits("gbt47678", "06001")] == [4, 7, 15]
    assert cat.limit("gbt47678", "21001").unit == "working_days"
    assert cat.node_limits["dispatch"] == (0.25, "working_hours") and cat.node_limits["verify"] == (
        1.0,
        "working_hours",
    )
    assert len(cat.classes("gbt47678")) == 56


def test_extra_department_via_component_catalogue(tmp_path: Path) -> None:
    depts = write_csv(
        tmp_path / "city_departments.csv",
        ("code", "name", "kind"),
        [["91110101AAAAAAAA0X", "共享单车企业", "enterprise"]],
    )
    classes = write_csv(tmp_path / "city_events.csv", CLASS_COLUMNS, [event_row(default_dept="91110101AAAAAAAA0X")])
    limits = write_csv(
        tmp_path / "city_time_limits.csv", LIMIT_COLUMNS, [["gbt47678", "21001", "默认", "2", "working_hours", "false"]]
    )
    with pytest.raises(InvalidInput) as exc:
        load_event_catalogue(DATA, [classes, limits])
    assert problems(exc) == [("city_events.csv", 2, "default_dept")]
    components = load_catalogue(DATA, [depts])
    cat = load_event_catalogue(DATA, [classes, limits], components=components)
    assert cat.get("gbt47678", "21001").default_dept == "91110101AAAAAAAA0X"


def test_hard_classes_are_the_catalogues_and_a_city_changes_them(tmp_path: Path) -> None:
    """review42 D2: the 选择性上报 risk's 难点类别 are the ``hard`` column of the classes files, by scheme and code."""
    base = load_event_catalogue(DATA)
    assert base.hard_classes == {
        ("gbt47678", "06001"): "私搭乱建",
        ("gbt47678", "06045"): "非法占绿毁绿",
        ("gbt47678", "08003"): "无证掘路",
        ("gbt47678", "08016"): "无证建设",
        ("gbt47678", "09001"): "无照经营游商",
        ("gbt47678", "09005"): "店外经营",
        ("gbt47678", "09006"): "占道经营",
        ("cjt214", "0101"): "私搭乱建",
        ("cjt214", "0305"): "无证掘路",
        ("cjt214", "0501"): "无照经营游商",
        ("cjt214", "0503"): "占道废品收购",
        ("cjt214", "0504"): "店外经营",
    }
    header = (*CLASS_COLUMNS, "hard")
    city = write_csv(
        tmp_path / "city_events.csv",
        header,
        [
            [*event_row(), "是"],  # a new local class marked hard
            [*event_row(code="06001", big_code="06", big_name="市容环境类", name="违法建设"), ""],  # keeps its mark
            [*event_row(code="09006", big_code="09", big_name="街面秩序类", name="占道经营"), "false"],  # unmarked
            [*event_row(scheme="cjt214", code="0502", big_code="05", big_name="街面秩序", name="流浪乞讨"), "true"],
        ],
    )
    old_header = write_csv(  # a city file from before the column: its row replacing 09005 keeps the mark
        tmp_path / "city_events_old.csv",
        CLASS_COLUMNS,
        [event_row(code="09005", big_code="09", big_name="街面秩序类", name="店外经营(跨门)")],
    )
    limits = write_csv(
        tmp_path / "city_time_limits.csv", LIMIT_COLUMNS, [["gbt47678", "21001", "默认", "2", "working_hours", ""]]
    )
    hard = load_event_catalogue(DATA, [city, old_header, limits]).hard_classes
    assert set(hard) == set(base.hard_classes) - {("gbt47678", "09006")} | {
        ("gbt47678", "21001"),
        ("cjt214", "0502"),
    }
    assert (hard[("gbt47678", "06001")], hard[("gbt47678", "09005")]) == ("违法建设", "店外经营(跨门)")


def test_a_bad_hard_value_is_refused_naming_row_and_field(tmp_path: Path) -> None:
    city = write_csv(
        tmp_path / "city_events.csv",
        (*CLASS_COLUMNS, "hard"),
        [[*event_row(), "true"], [*event_row(code="21002", name="别的"), "maybe"]],
    )
    limits = write_csv(
        tmp_path / "city_time_limits.csv",
        LIMIT_COLUMNS,
        [["gbt47678", code, "默认", "2", "working_hours", ""] for code in ("21001", "21002")],
    )
    with pytest.raises(InvalidInput) as exc:
        load_event_catalogue(DATA, [city, limits])
    # The refused class is not loaded, so its limit names an unknown class too.
    assert problems(exc) == [("city_events.csv", 3, "hard"), ("city_time_limits.csv", 3, "code")]
    assert exc.value.detail["problems"][0]["value"] == "maybe"
    assert exc.value.detail["problems"][0]["reason"] == "hard must be true or false"
    assert "city_events.csv: row 3, field 'hard'" in exc.value.message


def test_class_refusals_are_collected(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "bad_events.csv",
        CLASS_COLUMNS,
        [
            event_row(scheme="gbt30428"),  # 2
            event_row(code="2100"),  # 3
            event_row(code="21002", big_code="22"),  # 4
            event_row(code="21003", name=""),  # 5
            event_row(code="21004", filing_condition=""),  # 6
            event_row(code="21005", component_class="01999"),  # 7
            event_row(code="01037", big_code="01", component_class=""),  # 8: 01–05 must name their component
            event_row(code="21006", default_dept="990000000000000099"),  # 9
            event_row(code="21007", evidence="X"),  # 10
            event_row(code="21008", duplicate_radius_m="near"),  # 11
            event_row(code="21009", duplicate_window_h="-1"),  # 12
            event_row(code="21010"),  # 13
            event_row(code="21010"),  # 14 duplicate
        ],
    )
    limits = write_csv(
        tmp_path / "bad_time_limits.csv",
        LIMIT_COLUMNS,
        [["gbt47678", code, "默认", "1", "working_days", "false"] for code in ("21006", "21010")],
    )
    with pytest.raises(InvalidInput) as exc:
        load_event_catalogue(DATA, [path, limits])
    name = "bad_events.csv"
    assert sorted(problems(exc)) == [
        (name, 2, "scheme"),
        (name, 3, "code"),
        (name, 4, "big_code"),
        (name, 5, "name"),
        (name, 6, "filing_condition"),
        (name, 7, "component_class"),
        (name, 8, "component_class"),
        (name, 9, "default_dept"),
        (name, 10, "evidence"),
        (name, 11, "duplicate_radius_m"),
        (name, 12, "duplicate_window_h"),
        (name, 14, "code"),
    ]
    assert "bad_events.csv: row 2, field 'scheme'" in exc.value.message
    reasons = {(p["row"], p["field"]): p["reason"] for p in exc.value.detail["problems"]}
    assert "duplicate of row 13" in reasons[(14, "code")]
    assert "must name 01037" in reasons[(8, "component_class")]


def test_limit_and_node_refusals(tmp_path: Path) -> None:
    limits = write_csv(
        tmp_path / "bad_time_limits.csv",
        LIMIT_COLUMNS,
        [
            ["gbt47678", "99999", "默认", "1", "working_days", "false"],  # 2 unknown class
            ["gbt47678", "06010", "默认", "0", "working_hours", "false"],  # 3 zero
            ["gbt47678", "06010", "快速", "soon", "working_hours", "false"],  # 4 not a number
            ["gbt47678", "06010", "夜间", "2", "working_minutes", "false"],  # 5 unit
            ["gbt47678", "06010", "加急", "2", "working_hours", "maybe"],  # 6 urgent
            ["gbt47678", "06010", "", "2", "working_hours", "false"],  # 7 empty type
            ["xyz", "06010", "默认", "2", "working_hours", "false"],  # 8 scheme
            ["gbt47678", "06010", "加急", "1", "working_hours", "true"],  # 9 duplicate of 6
        ],
    )
    nodes = write_csv(
        tmp_path / "bad_node_time_limits.csv",
        NODE_COLUMNS,
        [["dispose", "处置", "1", "working_hours", ""], ["verify", "核实", "-1", "working_hours", ""]],
    )
    with pytest.raises(InvalidInput) as exc:
        load_event_catalogue(DATA, [limits, nodes])
    found = problems(exc)
    lim, nod = "bad_time_limits.csv", "bad_node_time_limits.csv"
    assert sorted(found) == sorted(
        [
            (lim, 2, "code"),
            (lim, 3, "limit"),
            (lim, 4, "limit"),
            (lim, 5, "unit"),
            (lim, 6, "urgent"),
            (lim, 7, "disposal_type"),
            (lim, 8, "scheme"),
            (lim, 9, "disposal_type"),
            (nod, 2, "node"),
            (nod, 3, "limit"),
        ]
    )


def test_limits_longer_than_the_longest_extension_are_refused(tmp_path: Path) -> None:
    # 1e12 working hours made every dispatch of the class fail ("no working time within 7320 days"); 30000 (minutes
    # typed as hours) gave due dates around 2042. The bound is the 366 days an extension may add, in the unit.
    limits = write_csv(
        tmp_path / "city_time_limits.csv",
        LIMIT_COLUMNS,
        [
            ["gbt47678", "06010", "默认", "1e12", "working_hours", "false"],  # 2
            ["gbt47678", "06010", "夜间", "30000", "working_hours", "false"],  # 3
            ["gbt47678", "06010", "全天", "8785", "calendar_hours", "true"],  # 4
            ["gbt47678", "06010", "长期", "271", "working_days", "false"],  # 5
            ["gbt47678", "06010", "最长", "2025", "working_hours", "false"],  # 6: 270 × 7.5, allowed
            ["gbt47678", "06010", "整年", "8784", "calendar_hours", "true"],  # 7: 366 × 24, allowed
            ["gbt47678", "06010", "工作日", "270", "working_days", "false"],  # 8: allowed
        ],
    )
    nodes = write_csv(
        tmp_path / "city_node_time_limits.csv",
        NODE_COLUMNS + NODE_URGENT_COLUMNS,
        [
            ["verify", "核实", "2025.5", "working_hours", "", "1", "calendar_hours"],  # 2
            ["check", "核查", "1", "working_hours", "", "9000", "calendar_hours"],  # 3
        ],
    )
    with pytest.raises(InvalidInput) as exc:
        load_event_catalogue(DATA, [limits, nodes])
    found = {
        (Path(p["file"]).name, p["row"], p["field"]): (p["value"], p["reason"]) for p in exc.value.detail["problems"]
    }
    hours = (
        "longer than the 366 days an extension may add: at most 2025 working_hours (270 working days × 7.5 working "
        "hours a day)"
    )
    assert found == {
        ("city_time_limits.csv", 2, "limit"): ("1e12", hours),
        ("city_time_limits.csv", 3, "limit"): ("30000", hours),
        ("city_time_limits.csv", 4, "limit"): (
            "8785",
            "longer than the 366 days an extension may add: at most 8784 calendar_hours (366 × 24)",
        ),
        ("city_time_limits.csv", 5, "limit"): (
            "271",
            "longer than the 366 days an extension may add: at most 270 working_days (the working days that fit in "
            "366 days)",
        ),
        ("city_node_time_limits.csv", 2, "limit"): ("2025.5", hours),
        ("city_node_time_limits.csv", 3, "urgent_limit"): (
            "9000",
            "longer than the 366 days an extension may add: at most 8784 calendar_hours (366 × 24)",
        ),
    }
    assert f"{limits}: row 2, field 'limit': longer than the 366 days" in exc.value.message
    # The working-hours bound follows the city's working day (GISGRID_WORKING_HOURS): 270 × 7.5 h here, 270 × 8 h
    # with 08:00-12:00,14:00-18:00, where 2025.5 and 2160 fit.
    ok = write_csv(
        tmp_path / "ok_time_limits.csv",
        LIMIT_COLUMNS,
        [["gbt47678", "06010", "默认", "2160", "working_hours", "false"]],
    )
    city = Settings(catalogue_dir=DATA, working_hours="08:00-12:00,14:00-18:00")
    assert load_event_catalogue(city, [ok]).limit("gbt47678", "06010").limit == 2160
    assert load_event_catalogue(DATA, [ok], hours_per_day=8).limit("gbt47678", "06010").limit == 2160
    with pytest.raises(InvalidInput, match=r"row 2, field 'limit': longer than .* at most 2025 working_hours"):
        load_event_catalogue(DATA, [ok])


def test_missing_limits_columns_and_files(tmp_path: Path) -> None:
    # A class with no disposal limit at all is refused (a case of it could not get a deadline).
    classes = write_csv(tmp_path / "city_events.csv", CLASS_COLUMNS, [event_row()])
    with pytest.raises(InvalidInput) as exc:
        load_event_catalogue(DATA, [classes])
    assert problems(exc) == [("city_events.csv", 2, "code")]
    # Missing columns.
    short = write_csv(tmp_path / "short_events.csv", ("scheme", "code"), [["gbt47678", "21001"]])
    with pytest.raises(InvalidInput, match="missing column"):
        load_event_catalogue(DATA, [short])
    # Missing file.
    with pytest.raises(InvalidInput, match="not found"):
        load_event_catalogue(DATA, [tmp_path / "nope_events.csv"])
    # A base folder whose node file lacks a node.
    base = tmp_path / "catalogue"
    shutil.copytree(BASE, base)
    rows = [r for r in csv.reader((base / "node_time_limits.csv").open(encoding="utf-8")) if r[0] != "close"]
    write_csv(base / "node_time_limits.csv", tuple(rows[0]), rows[1:])
    with pytest.raises(InvalidInput, match="close"):
        load_event_catalogue(base)
    assert set(NODES) == {"accept", "verify", "file", "dispatch", "check", "close"}


def test_the_fallback_class_of_a_family_is_the_catalogues_and_must_name_a_word_of_it(tmp_path: Path) -> None:
    """review45 U1: ``fallback_for`` marks a family's class for an owner not known (不明井盖异常 for 井盖); a city's
    word not in the class's name is refused naming row and field."""
    base = load_event_catalogue(DATA)
    marked = {(c.scheme, c.code): c.fallback_for for s in SCHEMES for c in base.classes(s).values() if c.fallback_for}
    assert marked == {("gbt47678", "01023"): "井盖"}
    header = (*CLASS_COLUMNS, "hard", "fallback_for")
    city = write_csv(
        tmp_path / "city_events.csv",
        header,
        [[*event_row(name="不明路灯异常"), "", "路灯"], [*event_row(code="21002", name="别的"), "", "井盖"]],
    )
    limits = write_csv(
        tmp_path / "city_time_limits.csv",
        LIMIT_COLUMNS,
        [["gbt47678", code, "默认", "2", "working_hours", ""] for code in ("21001",)],
    )
    with pytest.raises(InvalidInput) as exc:
        load_event_catalogue(DATA, [city, limits])
    assert problems(exc) == [("city_events.csv", 3, "fallback_for")]
    assert exc.value.detail["problems"][0]["reason"] == "fallback_for must be a word of the class's name (别的)"
    ok = write_csv(tmp_path / "ok_events.csv", header, [[*event_row(name="不明路灯异常"), "", "路灯"]])
    assert load_event_catalogue(DATA, [ok, limits]).classes("gbt47678")["21001"].fallback_for == "路灯"
