"""Routing rules and decisions (gisgrid.routing): pure, plus reading small CSV files."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gisgrid.demo_loader import DEMO_ROUTING_FILE
from gisgrid.errors import InvalidInput
from gisgrid.routing import (
    RULE_COLUMNS,
    ComponentOwner,
    RoutingDecision,
    RoutingInput,
    RoutingRules,
    Suggestion,
    as_suggested,
    load_routing_rules,
    manual_choice,
    override,
    own_decision,
    route,
    suggestion,
)
from gisgrid.settings import PROJECT_ROOT, Settings

SH = ZoneInfo("Asia/Shanghai")
DATA = PROJECT_ROOT / "data"
#: The demo's rules: the base file and the demo district's area rules (R012–R015), as `demo load` and `make demo`.
DEMO = load_routing_rules(DATA, [DEMO_ROUTING_FILE])
BASE = load_routing_rules(DATA)

CGW = "990000000000000001"  # 区城市管理委员会
SZ = "990000000000000002"  # 区市政市容管理委员会
HW = "990000000000000003"  # 区环境卫生服务中心
JD = "990000000000000013"  # 街道办事处
ZJ = "990000000000000014"  # 区住房和城乡建设委员会
WL = "990000000000000017"  # 区文化和旅游局
LIGHT = "990000000000000012"  # 城市照明管理处
DEPTS = {f"9900000000000000{n:02d}" for n in range(1, 20)}

HEADER = ",".join(RULE_COLUMNS)
GRID = "419901001003007"  # a unit grid in street 001, community 003
FRIDAY = datetime(2026, 3, 6, 10, 0, tzinfo=SH)  # a Friday
SATURDAY = datetime(2026, 3, 7, 10, 0, tzinfo=SH)


def at(hour: int, minute: int = 0, day: datetime = FRIDAY) -> datetime:
    return day.replace(hour=hour, minute=minute)


def case(class_code: str = "06010", grid: str = GRID, when: datetime = FRIDAY, **kw: Any) -> RoutingInput:
    tiers = {"tier1_code": grid[:9], "tier2_code": grid[:12], "tier3_code": grid[:12] + "01"}
    return RoutingInput(class_code=class_code, scheme=kw.pop("scheme", "gbt47678"), unit_grid_code=grid,
                        reported_at=when, **{**tiers, **kw})  # fmt: skip


def rules_file(tmp_path: Path, *rows: str, name: str = "routing.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def load(tmp_path: Path, *rows: str) -> RoutingRules:
    return load_routing_rules(rules_file(tmp_path, *rows), departments=DEPTS)


# --------------------------------------------------------------------------------------- the demo file


def test_demo_rules_load_with_the_catalogue_departments() -> None:
    assert len(DEMO.rules) == 17
    assert DEMO.departments[CGW] == "区城市管理委员会"
    assert {r.department for r in DEMO.rules} <= set(DEMO.departments)
    assert load_routing_rules(Settings(catalogue_dir=DATA), [DEMO_ROUTING_FILE]).rules == DEMO.rules
    assert load_routing_rules(DATA / "rules" / "routing.csv", [DEMO_ROUTING_FILE]).rules == DEMO.rules
    assert DEMO.sources == (DATA / "rules" / "routing.csv", DEMO_ROUTING_FILE)


def test_the_base_rules_name_no_area_so_another_city_runs_no_demo_rule() -> None:
    # review55 F1: the demo district's area rules ran in every city and were stored in each case's routing record.
    assert [r.rule_id for r in BASE.rules if r.is_area_rule] == []
    assert sorted(r.rule_id for r in BASE.rules) == [f"R{n:03d}" for n in (*range(1, 12), 16, 17)]
    assert sorted(r.rule_id for r in DEMO.rules if r.is_area_rule) == ["R012", "R013", "R014", "R015"]
    # A 06 case in a second city's grid lists class rules only, no demo area rule.
    city = route(case("06010", grid="410183001001028", tier3_code="41018300100102"), BASE)
    assert [(c.rule_id, c.matched, c.why) for c in city.candidates] == [("R001", True, "符合(类别规则), 采用")]
    assert city.department == HW


def test_night_rule_at_22_vs_10() -> None:
    night = route(case("08001", when=at(22)), DEMO)
    assert (night.department, night.rule_id, night.source, night.queue) == (CGW, "R007", "rule", "auto")
    assert night.explanation == (  # a class rule decides only when no area rule matched (事件先属地、后属主)
        "事件先属地后属主: 无匹配的区域规则, 按类别规则 R007 (类别 施工扰民(08001), 22:00–06:00) → "
        "区城市管理委员会(990000000000000001)"
    )
    day = route(case("08001", when=at(10)), DEMO)
    assert (day.department, day.rule_id) == (ZJ, "R006")
    assert [(c.rule_id, c.matched, c.why) for c in day.candidates] == [
        ("R007", False, "不符合(类别规则): 上报时间 10:00 不在 22:00–06:00 内"),
        ("R006", True, "符合(类别规则), 采用"),
    ]
    # Window edges: from inclusive, to exclusive; after midnight still inside.
    assert route(case("08001", when=at(21, 59)), DEMO).rule_id == "R006"
    assert route(case("08001", when=at(3)), DEMO).rule_id == "R007"
    assert route(case("08001", when=at(5, 59)), DEMO).rule_id == "R007"
    assert route(case("08001", when=at(6)), DEMO).rule_id == "R006"
    # Local time is Asia/Shanghai whatever zone the caller used: 14:00 UTC = 22:00.
    assert route(case("08001", when=datetime(2026, 3, 6, 14, 0, tzinfo=UTC)), DEMO).rule_id == "R007"


def test_weekend_rule() -> None:
    weekend = route(case("09001", when=SATURDAY), DEMO)
    assert (weekend.department, weekend.rule_id) == (JD, "R014")
    assert weekend.explanation.startswith("事件先属地: 区域规则 R014 (区域 419901001003, 类别 街面秩序类(09), 周六日)")
    weekday = route(case("09001", when=FRIDAY), DEMO)
    assert (weekday.department, weekday.rule_id) == (CGW, "R009")
    assert ("R014", JD, False, "不符合(区域规则): 上报日 周五 不在 周六日 内") in weekday.candidates
    # Same class, another community: the weekend rule does not apply.
    assert route(case("09001", grid="419901001004001", when=SATURDAY), DEMO).rule_id == "R009"


def test_demo_area_rules_beat_class_rules() -> None:
    town = route(case("06001", grid="419901009002011"), DEMO)
    assert (town.rule_id, town.department) == ("R012", JD)
    assert ("R002", CGW, True, "符合(类别规则), 次于规则 R012") in town.candidates
    assert route(case("06001"), DEMO).rule_id == "R002"  # in the city, 私搭乱建 → 城管委
    assert route(case("06010"), DEMO).department == HW
    scenic = route(case("06010", grid="419901002001005", tier3_code="41990100200101"), DEMO)
    assert (scenic.rule_id, scenic.department) == ("R015", WL)
    assert route(case("0301", scheme="cjt214", when=at(23)), DEMO).rule_id == "R016"
    assert route(case("0301", scheme="cjt214", when=at(10)), DEMO).department is None  # no day rule: manual
    assert route(case("0505", scheme="cjt214"), DEMO).department == "990000000000000006"
    assert route(case("0101", scheme="cjt214"), DEMO).candidates == []  # gbt47678 rules never match cjt214


def test_no_rule_goes_to_the_manual_queue_or_the_class_default() -> None:
    manual = route(case("10001", when=at(9, 30)), DEMO)
    assert manual == RoutingDecision(
        department=None,
        queue="manual",
        source="none",
        rule_id=None,
        explanation="无匹配规则, 转人工派遣 (类别 道路积雪、结冰(10001), 单元网格 419901001003007, "
        "上报于 2026-03-06 09:30)",
        candidates=[],
    )
    default = route(case("10001"), DEMO, class_default=SZ)
    assert (default.department, default.queue, default.source) == (SZ, "auto", "class_default")
    assert default.explanation == (
        "事件先属地后属主: 无匹配规则, 按类别 道路积雪、结冰(10001) 的默认主管部门 "
        "区市政市容管理委员会(990000000000000002)"
    )
    # A matching rule beats the class default.
    assert route(case("06010"), DEMO, class_default=SZ).source == "rule"


# --------------------------------------------------------------------------------------- precedence


@pytest.fixture
def owner_rules(tmp_path: Path) -> RoutingRules:
    return load_routing_rules(
        rules_file(
            tmp_path,
            f"A1,50,gbt47678,01037,419901001,,,,,{JD},street rule for 路灯",
            f"C1,50,gbt47678,01,,,,,,{SZ},class rule",
        ),
        departments={JD: "街道办事处", SZ: "区市政市容管理委员会", LIGHT: "城市照明管理处", CGW: "区城市管理委员会"},
    )


def test_component_owner_beats_area_rules(owner_rules: RoutingRules) -> None:
    linked = case("01037", component_linked=True)
    owner = ComponentOwner(maint_dept=LIGHT, main_dept=SZ, owner_dept=CGW, component_id="41990101037000012")
    d = route(linked, owner_rules, component=owner)
    assert (d.department, d.source, d.rule_id, d.queue) == (LIGHT, "component_owner", None, "auto")
    assert d.explanation == "部件先属主: 部件 41990101037000012 的养护单位 城市照明管理处(990000000000000012)"
    assert [(c.rule_id, c.matched) for c in d.candidates] == [("A1", True), ("C1", True)]
    assert all("部件先属主" in c.why for c in d.candidates)

    no_maint = route(linked, owner_rules, component=ComponentOwner(main_dept=SZ, owner_dept=CGW))
    assert no_maint.explanation == "部件先属主: 主管部门 区市政市容管理委员会(990000000000000002)"
    only_owner = route(linked, owner_rules, component=ComponentOwner(owner_dept=CGW, component_id="X"))
    assert only_owner.explanation == "部件先属主: 部件 X 的权属单位 区城市管理委员会(990000000000000001)"


def test_component_without_owner_or_event_falls_back_to_the_area(owner_rules: RoutingRules) -> None:
    empty = route(case("01037", component_linked=True), owner_rules, component=ComponentOwner(maint_dept=" "))
    assert empty.explanation == (
        "部件无责任单位信息, 按属地: 事件先属地: 区域规则 A1 (区域 419901001, 类别 路灯异常(01037)) → "
        "街道办事处(990000000000000013)"
    )
    missing = route(case("01037", component_linked=True), owner_rules)
    assert missing.explanation.startswith("未提供部件信息, 按属地: 事件先属地: 区域规则 A1")
    event = route(case("01037"), owner_rules)
    assert (event.rule_id, event.department) == ("A1", JD)
    elsewhere = route(case("01037", grid="419901002001001"), owner_rules)
    assert (elsewhere.rule_id, elsewhere.source) == ("C1", "rule")
    assert elsewhere.explanation == (
        "事件先属地后属主: 无匹配的区域规则, 按类别规则 C1 (类别 市政公用设施类(01)) → "
        "区市政市容管理委员会(990000000000000002)"
    )
    with pytest.raises(InvalidInput, match="not component-linked"):
        route(case("01037"), owner_rules, component=ComponentOwner(maint_dept=LIGHT))


def test_most_specific_area_wins(tmp_path: Path) -> None:
    rows = [
        f"D6,1,gbt47678,06,419901,,,,,{CGW},district",
        f"S9,1,gbt47678,06,419901001,,,,,{SZ},street",
        f"C12,1,gbt47678,06,419901001003,,,,,{HW},community",
        f"T14,1,gbt47678,06,,41990100100301,,,,{WL},tier-3 grid",
        f"U15,1,gbt47678,06,419901001003007,,,,,{JD},unit grid",
        f'K,1,gbt47678,06010,,,,,,{ZJ},"class only (longest class, smallest priority)"',
    ]
    expected = ["U15", "T14", "C12", "S9", "D6", "K"]
    for i, winner in enumerate(expected):
        # Drop the previous winners: the next most specific rule takes over.
        rules = load(tmp_path, *(r for r in rows if r.split(",")[0] not in expected[:i]))
        assert route(case("06010"), rules).rule_id == winner
    d = route(case("06010"), load(tmp_path, *rows))
    assert [c.rule_id for c in d.candidates] == expected
    assert [c.why for c in d.candidates][:2] == ["符合(区域规则), 采用", "符合(区域规则), 次于规则 U15"]


def test_ties_break_by_class_length_time_limit_priority_then_rule_id(tmp_path: Path) -> None:
    base = f"B,10,gbt47678,06,419901001,,,,,{CGW},"
    longer_class = f"L,90,gbt47678,060,419901001,,,,,{SZ},"
    timed = f"Z,90,gbt47678,06,419901001,,,,1-7,{HW},"
    better_priority = f"Y,5,gbt47678,06,419901001,,,,,{JD},"
    assert route(case(), load(tmp_path, base, longer_class)).rule_id == "L"
    assert route(case(), load(tmp_path, base, timed)).rule_id == "Z"
    assert route(case(), load(tmp_path, base, better_priority)).rule_id == "Y"
    # Equal but for the rule_id: refused at load (test_equal_rank_rules_that_can_meet_are_refused).


def _tie_problems(tmp_path: Path, *rows: str) -> list[tuple[int, str, str]]:
    with pytest.raises(InvalidInput) as err:
        load(tmp_path, *rows)
    return [(p["row"], p["field"], p["reason"]) for p in err.value.detail["problems"]]


def _tie(other: str, row: int, when: str) -> str:
    return (
        f"can match the same report as rule {other} (ROUTING:{row}), {when}, with the same priority and specificity: "
        "the choice would hang on the rule_id; make one more specific (area, class, time), change a priority, or "
        "narrow the time windows or weekdays apart"
    )


def test_equal_rank_rules_that_can_meet_are_refused(tmp_path: Path) -> None:
    # review27 D9: route ranks by specificity, then priority, then rule_id; two rules equal but for the rule_id that
    # can match one report are refused, naming both rows.
    path = str(tmp_path / "routing.csv")
    evening = f"C001,50,gbt47678,06010,419901001,,18:00,23:00,,{JD},晚间"
    late = f"C002,50,gbt47678,06010,419901001,,20:00,23:30,,{CGW},晚间2"
    found = _tie_problems(tmp_path, evening, late)
    assert [(r, f, why.replace(path, "ROUTING")) for r, f, why in found] == [
        (3, "rule_id", _tie("C001", 2, "e.g. 周一 20:00"))
    ]
    # An area_prefix and a tier_grid naming the same street, always on.
    area = f"C001,50,gbt47678,06010,419901001,,,,,{JD},a"
    tier = f"C002,50,gbt47678,06010,,419901001,,,,{CGW},b"
    found = _tie_problems(tmp_path, area, tier)
    assert [(r, f, why.replace(path, "ROUTING")) for r, f, why in found] == [
        (3, "rule_id", _tie("C001", 2, "at any time"))
    ]
    # Weekdays that meet only on Friday; a Friday-night window reaching into Saturday against a Saturday rule.
    weekdays = [f"W1,50,gbt47678,06,419901001,,,,1-5,{JD},", f"W2,50,gbt47678,06,419901001,,,,5-7,{CGW},"]
    assert [(r, why.replace(path, "ROUTING")) for r, _f, why in _tie_problems(tmp_path, *weekdays)] == [
        (3, _tie("W1", 2, "e.g. 周五 00:00"))
    ]
    night = [f"N1,50,gbt47678,06,419901001,,22:00,06:00,5,{JD},", f"N2,50,gbt47678,06,419901001,,01:00,02:00,6,{CGW},"]
    assert [(r, why.replace(path, "ROUTING")) for r, _f, why in _tie_problems(tmp_path, *night)] == [
        (3, _tie("N1", 2, "e.g. 周六 01:00"))
    ]
    # An area rule for any class against one for a class, in the same community (areas nest: street ⊃ community,
    # both 12 digits via tier_grid).
    any_class = [f"P1,50,,,419901001003,,,,,{JD},", f"P2,50,,,,419901001003,,,,{CGW},"]
    assert [r for r, _f, _w in _tie_problems(tmp_path, *any_class)] == [3]


def test_equal_rank_rules_that_cannot_meet_or_rank_apart_load(tmp_path: Path) -> None:
    ok = [
        # windows that touch but do not overlap (time_to is exclusive)
        (f"A,50,gbt47678,06010,419901001,,18:00,20:00,,{JD},", f"B,50,gbt47678,06010,419901001,,20:00,23:00,,{CGW},"),
        # weekdays apart; an overnight Friday window against a Saturday-evening one
        (f"A,50,gbt47678,06,419901001,,,,1-5,{JD},", f"B,50,gbt47678,06,419901001,,,,6-7,{CGW},"),
        (f"A,50,gbt47678,06,,,22:00,06:00,5,{JD},", f"B,50,gbt47678,06,,,07:00,21:00,6,{CGW},"),
        # other streets; other classes (same length); other schemes
        (f"A,50,gbt47678,06,419901001,,,,,{JD},", f"B,50,gbt47678,06,419901002,,,,,{CGW},"),
        (f"A,50,gbt47678,06,419901001,,,,,{JD},", f"B,50,gbt47678,07,,419901001,,,,{CGW},"),
        (f"A,50,gbt47678,01,,,,,,{JD},", f"B,50,cjt214,01,,,,,,{CGW},"),
        # one strictly more specific (route ranks it first): area, class length, time limit; or another priority
        (f"A,50,gbt47678,06,419901001,,,,,{JD},", f"B,50,gbt47678,06,419901001003,,,,,{CGW},"),
        (f"A,50,gbt47678,06,419901001,,,,,{JD},", f"B,50,gbt47678,06010,419901001,,,,,{CGW},"),
        (f"A,50,gbt47678,06,419901001,,,,,{JD},", f"B,50,gbt47678,06,419901001,,18:00,20:00,,{CGW},"),
        (f"A,50,gbt47678,06,419901001,,,,,{JD},", f"B,40,gbt47678,06,419901001,,,,,{CGW},"),
    ]
    for a, b in ok:
        assert len(load(tmp_path, a, b).rules) == 2, (a, b)


def test_a_class_prefix_no_class_has_is_refused(tmp_path: Path) -> None:
    # review27 D9: 29999 and 99 load silently and can never match; a cjt214 prefix is an event code's prefix.
    path = rules_file(
        tmp_path,
        f"C1,50,gbt47678,29999,,,,,,{JD},",
        f"C2,50,gbt47678,99,,,,,,{JD},",
        f"C3,50,cjt214,09,,,,,,{JD},",
        f"C4,50,cjt214,03,,,,,,{JD},",
        f"C5,50,gbt47678,0100,,,,,,{JD},",
    )
    with pytest.raises(InvalidInput) as err:
        load_routing_rules(path, departments=DEPTS)
    never = "(event classes files): the rule could never match"
    assert [(p["row"], p["field"], p["value"], p["reason"]) for p in err.value.detail["problems"]] == [
        (2, "class_prefix", "29999", f"no gbt47678 event class starts with 29999 {never}"),
        (3, "class_prefix", "99", f"no gbt47678 event class starts with 99 {never}"),
        (4, "class_prefix", "09", f"no cjt214 event class starts with 09 {never}"),
    ]
    assert f"{path}: row 2, field 'class_prefix': no gbt47678 event class starts with 29999" in err.value.message
    # The classes given (the city's extra ones included) decide: 21001 is a city class.
    city = rules_file(tmp_path, f"C1,50,gbt47678,21001,,,,,,{JD},", name="city.csv")
    with pytest.raises(InvalidInput, match="no gbt47678 event class starts with 21001"):
        load_routing_rules(city, departments=DEPTS)
    rules = load_routing_rules(city, departments=DEPTS, classes={"gbt47678": {"21001"}, "cjt214": set()})
    assert [r.rule_id for r in rules.rules] == ["C1"]
    # A city's rule replacing a base rule that names a class it dropped is the one checked.
    base = rules_file(tmp_path, f"R1,50,gbt47678,06,,,,,,{JD},", name="base.csv")
    over = rules_file(tmp_path, f"R1,50,gbt47678,21,,,,,,{JD},", name="over.csv")
    assert (
        load_routing_rules(base, [over], departments=DEPTS, classes={"gbt47678": {"21001"}}).rules[0].class_prefix
        == "21"
    )


def test_overnight_window_counts_as_the_previous_weekday(tmp_path: Path) -> None:
    rules = load(tmp_path, f"FRI,1,gbt47678,08001,,,22:00,06:00,5,{CGW},Friday night only")
    assert route(case("08001", when=at(23)), rules).rule_id == "FRI"  # Friday 23:00
    assert route(case("08001", when=at(2, day=SATURDAY)), rules).rule_id == "FRI"  # Saturday 02:00
    assert route(case("08001", when=at(2)), rules).department is None  # Friday 02:00 = Thursday night
    assert route(case("08001", when=at(23, day=SATURDAY)), rules).department is None


def test_a_same_day_window_ends_before_its_time_to(tmp_path: Path) -> None:
    # review25 R4: time_to is exclusive for a window within one day too, not only over midnight.
    rules = load(tmp_path, f"DAY,1,gbt47678,08001,419901,,08:00,18:00,,{CGW},daytime")
    assert route(case("08001", when=at(8)), rules).rule_id == "DAY"
    assert route(case("08001", when=at(17, 59)), rules).rule_id == "DAY"
    late = route(case("08001", when=at(18)), rules)
    assert (late.department, late.queue, late.source) == (None, "manual", "none")
    assert late.candidates == [
        ("DAY", CGW, False, "不符合(区域规则): 上报时间 18:00 不在 08:00–18:00 内"),
    ]
    assert route(case("08001", when=at(7, 59)), rules).department is None


def test_a_class_rule_matches_cases_of_its_own_scheme_only(tmp_path: Path) -> None:
    # review25 R8: a cjt214 class 0101 starts with a gbt47678 rule's prefix 01, yet that rule is not about it.
    rules = load(tmp_path, f"G01,50,gbt47678,01,,,,,,{SZ},gbt47678 部件 01")
    cjt = route(case("0101", scheme="cjt214"), rules, class_default=CGW)
    assert (cjt.department, cjt.source, cjt.rule_id, cjt.candidates) == (CGW, "class_default", None, [])
    gbt = route(case("01037"), rules, class_default=CGW)
    assert (gbt.department, gbt.source, gbt.rule_id) == (SZ, "rule", "G01")


def test_tier_rule_needs_the_tier_code(tmp_path: Path) -> None:
    rules = load(tmp_path, f"T,1,gbt47678,06,,419901001003,,,,{HW},tier 2")
    d = route(case(tier2_code=None), rules)
    assert d.candidates[0].why == "不符合(区域规则): 案件无二级网格编码"
    assert route(case(), rules).rule_id == "T"


# --------------------------------------------------------------------------------------- override


def test_override_is_recorded_with_the_original() -> None:
    original = route(case("08001", when=at(10)), DEMO)
    new = override(original, CGW, "派遣员 李四", "夜间执法队已在现场", departments=DEMO.departments)
    assert (new.department, new.source, new.queue, new.rule_id) == (CGW, "override", "auto", None)
    assert (new.overridden_by, new.override_reason, new.original) == ("派遣员 李四", "夜间执法队已在现场", original)
    assert new.original_explanation == original.explanation
    assert new.explanation == (
        "派遣员改派: 区城市管理委员会(990000000000000001), 由 派遣员 李四 改派, 原因: 夜间执法队已在现场; 原判断: "
        + original.explanation
    )
    assert new.candidates == original.candidates
    manual = route(case("10001"), DEMO)
    assert override(manual, SZ, "p", "r").department == SZ


@pytest.mark.parametrize(
    ("department", "actor", "reason", "message"),
    [
        ("", "p", "r", "department is empty"),
        ("990000000000000099", "p", "r", "unknown department"),
        (
            ZJ,
            "p",
            "r",
            "^routing override refused: 990000000000000014 is the routing's own department: a dispatch "
            "as suggested, not an override$",
        ),
        (CGW, " ", "r", "actor is empty"),
        (CGW, "p", "", "reason is empty"),
    ],
)
def test_override_refusals(department: str, actor: str, reason: str, message: str) -> None:
    original = route(case("08001", when=at(10)), DEMO)
    with pytest.raises(InvalidInput, match=message):
        override(original, department, actor, reason, departments=DEPTS)


# --------------------------------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"when": datetime(2026, 3, 6, 10, 0)}, "timezone-aware"),
        ({"class_code": "0601"}, "gbt47678 class code is 5 digits"),
        ({"scheme": "cjt214"}, "cjt214 class code is 4 digits"),
        ({"scheme": "gb"}, "scheme must be one of"),
        ({"grid": "41990100100300"}, "unit_grid_code must be 15 digits"),
        ({"tier3_code": "419901001003"}, "tier3_code must be 14 digits"),
    ],
)
def test_invalid_routing_input(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        case(**changes)


# --------------------------------------------------------------------------------------- rules file refusals

GOOD = f"R1,10,gbt47678,06,419901001,,22:00,06:00,1-5,{CGW},ok"


def _row(**changes: str) -> str:
    values = dict(zip(RULE_COLUMNS, GOOD.split(","), strict=True))
    values.update(changes)
    return ",".join(values[c] for c in RULE_COLUMNS)


def _backwards(given: str, forwards: str, over_sunday: str) -> str:
    return (
        f"weekdays range {given} runs backwards; write the smaller day first ({forwards}), or a range over Sunday as "
        f"two parts ({over_sunday})"
    )


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"rule_id": ""}, "rule_id", "rule_id must be"),
        ({"rule_id": "R 1"}, "rule_id", "rule_id must be"),
        ({"priority": "high"}, "priority", "priority must be an integer"),
        ({"scheme": "gb2260"}, "scheme", "unknown scheme"),
        ({"scheme": ""}, "scheme", "needs its scheme"),
        ({"class_prefix": ""}, "scheme", "scheme without a class_prefix"),
        ({"class_prefix": "0"}, "class_prefix", "2–5 digits"),
        ({"class_prefix": "060011"}, "class_prefix", "2–5 digits"),
        ({"scheme": "cjt214", "class_prefix": "03011"}, "class_prefix", "2–4 digits"),
        ({"class_prefix": "0a"}, "class_prefix", "2–5 digits"),
        ({"area_prefix": "41990"}, "area_prefix", "6, 9, 12 or 15 digits"),
        ({"area_prefix": "41990100A"}, "area_prefix", "6, 9, 12 or 15 digits"),
        ({"tier_grid": "4199010010"}, "tier_grid", "9, 12 or 14 digits"),
        ({"time_from": "24:00"}, "time_from", "HH:MM"),
        ({"time_to": "6:00"}, "time_to", "HH:MM"),
        ({"time_to": ""}, "time_to", "both time_from and time_to"),
        ({"time_from": ""}, "time_from", "both time_from and time_to"),
        ({"time_to": "22:00"}, "time_to", "empty window"),
        ({"weekdays": "8"}, "weekdays", "ISO days 1–7"),
        ({"weekdays": "5-1"}, "weekdays", _backwards("5-1", "1-5", "5-7,1")),
        ({"weekdays": "2-1"}, "weekdays", _backwards("2-1", "1-2", "2-7,1")),  # review25 R13: not every day
        ({"weekdays": "7-3"}, "weekdays", _backwards("7-3", "3-7", "7,1-3")),
        ({"weekdays": "mon"}, "weekdays", "ISO days 1–7"),
        ({"department": ""}, "department", "department is empty"),
        ({"department": "990000000000000099"}, "department", "unknown department"),
    ],
)
def test_rules_file_refusals(tmp_path: Path, changes: dict[str, str], field: str, reason: str) -> None:
    path = rules_file(tmp_path, _row(**changes))
    with pytest.raises(InvalidInput) as err:
        load_routing_rules(path, departments=DEPTS)
    problems = err.value.detail["problems"]
    assert [(p["file"], p["row"], p["field"]) for p in problems] == [(str(path), 2, field)]
    assert reason in problems[0]["reason"]
    assert f"{path}: row 2, field {field!r}: " in err.value.message


def test_rule_without_class_area_or_tier_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no catch-all rules"):
        load(tmp_path, _row(scheme="", class_prefix="", area_prefix=""))
    # Area-only (any class) is fine.
    assert load(tmp_path, _row(scheme="", class_prefix="")).rules[0].class_prefix == ""


def test_duplicates_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        load(tmp_path, GOOD, _row(note="again"))
    assert err.value.detail["problems"] == [
        {"file": str(tmp_path / "routing.csv"), "row": 3, "field": "rule_id", "value": "R1",
         "reason": "duplicate of row 2"},
    ]  # fmt: skip
    with pytest.raises(InvalidInput, match="row 3, field 'rule_id': same conditions and priority as rule R1"):
        load(tmp_path, GOOD, _row(rule_id="R2", department=SZ))
    # Another priority makes the order explicit.
    assert len(load(tmp_path, GOOD, _row(rule_id="R2", priority="20")).rules) == 2


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        load(tmp_path, _row(priority="x"), _row(rule_id="R2", weekdays="9", department="1"))
    assert [(p["row"], p["field"]) for p in err.value.detail["problems"]] == [
        (2, "priority"),
        (3, "weekdays"),
        (3, "department"),
    ]
    assert err.value.message.startswith("routing rules: 3 problem(s):")


def test_missing_columns_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "routing.csv"
    path.write_text("rule_id,priority,department\nR1,1," + CGW + "\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"missing column\(s\) scheme, class_prefix"):
        load_routing_rules(path, departments=DEPTS)
    with pytest.raises(InvalidInput, match="routing rules file not found"):
        load_routing_rules(tmp_path / "nope.csv", departments=DEPTS)


def test_extra_files_add_and_replace_rules(tmp_path: Path) -> None:
    base = rules_file(tmp_path, GOOD, _row(rule_id="R2", priority="20"))
    extra = rules_file(tmp_path, _row(rule_id="R2", priority="20", department=SZ), _row(rule_id="R3", priority="30"),
                       name="city_routing.csv")  # fmt: skip
    rules = load_routing_rules(base, [extra], departments={CGW: "城管委", SZ: "市政市容委"})
    assert {r.rule_id: r.department for r in rules.rules} == {"R1": CGW, "R2": SZ, "R3": CGW}
    assert rules.department_text(SZ) == "市政市容委(990000000000000002)"
    assert rules.sources == (base, extra)
    # An extra file may not repeat an id within itself.
    bad = rules_file(tmp_path, _row(rule_id="R9"), _row(rule_id="R9"), name="bad.csv")
    with pytest.raises(InvalidInput, match=r"bad\.csv: row 3, field 'rule_id': duplicate of row 2"):
        load_routing_rules(base, [bad], departments=DEPTS)


def test_an_extra_row_with_department_dash_removes_the_earlier_rule(tmp_path: Path) -> None:
    # review55 F1: an extra file could add or replace a rule, never remove one.
    city = rules_file(tmp_path, "R015,,,,,,,,,-,本市无景区规则", "R009,,,,,,,,,-", name="city_routing.csv")
    rules = load_routing_rules(DATA, [DEMO_ROUTING_FILE, city])
    assert rules.removed == ("R015", "R009")
    assert sorted(r.rule_id for r in rules.rules) == sorted(
        r.rule_id for r in DEMO.rules if r.rule_id not in ("R015", "R009")
    )
    # Neither evaluated nor listed as a candidate: the scenic grid's 06 case goes by the class rule.
    scenic = route(case("06010", grid="419901002001005", tier3_code="41990100200101"), rules)
    assert (scenic.rule_id, scenic.department) == ("R001", HW)
    assert [c.rule_id for c in scenic.candidates] == ["R012", "R013", "R001"]  # no R015
    street = route(case("09001", when=FRIDAY), rules)
    assert (street.department, street.queue, [c.rule_id for c in street.candidates]) == (None, "manual", ["R014"])
    # A later file may add the id again.
    again = rules_file(tmp_path, "R009,50,gbt47678,09,,,,,," + SZ + ",", name="again.csv")
    readded = load_routing_rules(DATA, [DEMO_ROUTING_FILE, city, again])
    assert route(case("09001"), readded).department == SZ
    assert readded.removed == ("R015",)  # R009 is in force again, so no longer removed (review56 F3)


def test_removing_a_rule_no_earlier_file_has_or_in_the_base_file_is_refused(tmp_path: Path) -> None:
    typo = rules_file(tmp_path, "R0155,,,,,,,,,-", name="city_routing.csv")
    with pytest.raises(InvalidInput) as err:
        load_routing_rules(DATA, [typo])
    assert err.value.message == (
        f"routing rules: 1 problem(s):\n{typo}: row 2, field 'rule_id': department '-' removes an earlier rule, but "
        "no earlier routing file has rule R0155"
    )
    # Removed twice: the second removal names the first (review56 F4), not "no earlier file".
    twice = rules_file(tmp_path, "R009,,,,,,,,,-", name="twice.csv")
    with pytest.raises(InvalidInput) as err:
        load_routing_rules(DATA, [twice, twice])
    assert err.value.message == (
        f"routing rules: 1 problem(s):\n{twice}: row 2, field 'rule_id': department '-' removes an earlier rule, but "
        f"rule R009 was already removed by {twice}:2"
    )
    base = rules_file(tmp_path, GOOD, "R2,,,,,,,,,-")
    with pytest.raises(InvalidInput) as err:
        load_routing_rules(base, departments=DEPTS)
    assert err.value.message == (
        f"routing rules: 1 problem(s):\n{base}: row 3, field 'department': department '-' removes a rule of an "
        "earlier file, so it is for a city's extra routing file (GISGRID_CATALOGUE_EXTRA); in this file delete "
        "the row"
    )


def test_gb18030_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "routing.csv"
    path.write_bytes(("\n".join([HEADER, _row(note="夜间施工扰民")]) + "\n").encode("gb18030"))
    assert load_routing_rules(path, departments=DEPTS).rules[0].note == "夜间施工扰民"


def test_a_manual_choice_is_recorded_as_an_override_is_and_only_for_the_manual_queue() -> None:
    manual = route(case("10001", when=at(9, 30)), DEMO)
    chosen = manual_choice(manual, SZ, "派遣员 李四", at(10, 5), " ", departments=DEMO.departments)
    assert (chosen.department, chosen.queue, chosen.source, chosen.rule_id) == (SZ, "auto", "dispatcher", None)
    assert (chosen.overridden_by, chosen.override_reason, chosen.original) == ("派遣员 李四", None, manual)
    assert chosen.overridden_at == "2026-03-06T10:05:00+08:00"
    assert chosen.explanation == (
        "人工派遣: 区市政市容管理委员会(990000000000000002), 由 派遣员 李四 选定 (2026-03-06 10:05); 原判断: "
        + manual.explanation
    )
    with pytest.raises(InvalidInput, match=r"^manual choice: unknown department '990000000000000099'$"):
        manual_choice(manual, "990000000000000099", "p", at(10), departments=DEMO.departments)
    routed = route(case("10001"), DEMO, class_default=SZ)
    with pytest.raises(InvalidInput, match=r"^manual choice: the case is routed already \(990000000000000002\)$"):
        manual_choice(routed, SZ, "p", at(10), departments=DEMO.departments)


# --------------------------------------------------------------------------------------- zh texts, flat overrides


def test_every_text_for_the_reader_is_zh(tmp_path: Path) -> None:
    """review30 D3: the 其他规则 lines and the 派遣依据 are zh-CN; classes by name and code, not scheme:code."""
    rules = load_routing_rules(
        rules_file(
            tmp_path,
            f"T3,10,gbt47678,06,,41990100200101,,,,{WL},tier-3 grid",
            f"AR,20,gbt47678,06,419901009,,,,,{JD},street",
            f"NT,30,gbt47678,06,,,22:00,06:00,,{CGW},night",
            f"WD,40,gbt47678,06,,,,,6-7,{SZ},weekend",
            f"CL,50,gbt47678,06010,,,,,,{HW},class",
        ),
        departments=DEMO.departments,
    )
    d = route(case("06010", grid="419901001003007", tier3_code="41990100100301"), rules)
    assert (d.rule_id, d.explanation) == (
        "CL",
        "事件先属地后属主: 无匹配的区域规则, 按类别规则 CL (类别 暴露垃圾(06010)) → "
        "区环境卫生服务中心(990000000000000003)",
    )
    assert [(c.rule_id, c.matched, c.why) for c in d.candidates] == [
        ("T3", False, "不符合(区域规则): 三级网格 41990100100301 不是 41990100200101"),
        ("AR", False, "不符合(区域规则): 单元网格 419901001003007 不在区域 419901009 内"),
        ("CL", True, "符合(类别规则), 采用"),  # the longer class prefix ranks first
        ("NT", False, "不符合(类别规则): 上报时间 10:00 不在 22:00–06:00 内"),
        ("WD", False, "不符合(类别规则): 上报日 周五 不在 周六日 内"),
    ]
    area = route(case("06010", grid="419901009002011"), rules)
    assert (area.rule_id, area.explanation) == (
        "AR",
        "事件先属地: 区域规则 AR (区域 419901009, 类别 市容环境类(06)) → 街道办事处(990000000000000013)",
    )
    assert [c.why for c in area.candidates if c.matched] == ["符合(区域规则), 采用", "符合(类别规则), 次于规则 AR"]
    owned = route(case("06010", component_linked=True), rules, component=ComponentOwner(main_dept=SZ))
    assert owned.explanation == "部件先属主: 主管部门 区市政市容管理委员会(990000000000000002)"
    assert [c.why for c in owned.candidates if c.matched] == ["符合(类别规则), 未采用: 部件先属主"]
    # No English word left in what a reader sees (codes and rule ids aside).
    decisions = (d, area, owned)
    texts = [x.explanation for x in decisions] + [c.why for x in decisions for c in x.candidates]
    assert not [t for t in texts if re.search(r"\b(by|not|matched|chosen|rule|is|of|at|no)\b", t)], texts


def test_overrides_are_flat_and_the_routing_keeps_its_own_decision() -> None:
    """review30 D1: a second 改派 is listed beside the first, explained against the routing's own decision (no
    `原判断: 派遣员改派: …` nesting); a 派遣 back to the routing's department restores its decision."""
    own = route(case("06010"), DEMO)
    assert (own.department, own.rule_id) == (HW, "R001")
    police = "990000000000000016"
    first = override(own, police, "派遣员钱", "试派公安", departments=DEMO.departments, at=at(10, 30))
    second = override(first, CGW, "派遣员孙", "改派责任部门", departments=DEMO.departments, at=at(11, 5))
    assert (second.department, second.source, second.original) == (CGW, "override", own)
    assert second.explanation == (
        "派遣员改派: 区城市管理委员会(990000000000000001), 由 派遣员孙 改派 (2026-03-06 11:05), 原因: 改派责任部门; "
        "原判断: 事件先属地后属主: 无匹配的区域规则, 按类别规则 R001 (类别 市容环境类(06)) → "
        "区环境卫生服务中心(990000000000000003)"
    )
    assert second.explanation.count("原判断") == 1
    assert [(o.source, o.department, o.by, o.at, o.reason) for o in second.overrides] == [
        ("override", police, "派遣员钱", "2026-03-06T10:30:00+08:00", "试派公安"),
        ("override", CGW, "派遣员孙", "2026-03-06T11:05:00+08:00", "改派责任部门"),
    ]
    assert [o.explanation for o in second.overrides] == [first.explanation, second.explanation]
    assert own_decision(second) == own
    back = as_suggested(second)
    assert (back.department, back.source, back.rule_id, back.explanation) == (HW, "rule", "R001", own.explanation)
    assert back.original is None and back.overrides == second.overrides
    # Going back to the routing's department is not an override.
    with pytest.raises(InvalidInput, match="is the routing's own department"):
        override(second, HW, "p", "r", departments=DEMO.departments)


def test_the_suggestion_is_the_routings_own_and_never_a_department_that_returned_the_case() -> None:
    own = route(case("06010"), DEMO)
    police = "990000000000000016"
    moved = override(own, police, "派遣员钱", "试派公安", departments=DEMO.departments, at=at(10, 30))
    # Returned by the department of the override: the routing's own department is suggested again.
    assert suggestion(moved, {police}, DEMO.departments) == Suggestion(HW, own.explanation)
    # Returned by the routing's own department: nothing preselected, and the form says why.
    assert suggestion(own, {HW}, DEMO.departments) == Suggestion(
        None, None, HW, "建议部门 区环境卫生服务中心(990000000000000003) 已回退本案,请人工选择"
    )
    assert suggestion(moved, {police, HW}, DEMO.departments).department is None
    assert suggestion(own, set()) == Suggestion(HW, own.explanation)
    manual = route(case("10001"), DEMO)
    chosen = manual_choice(manual, SZ, "派遣员 李四", at(10, 5), departments=DEMO.departments)
    assert suggestion(chosen, {SZ}) == suggestion(chosen, set()) == Suggestion(None, None)
    # A second choice for the manual case (after 回退) is listed beside the first, not nested in it.
    again = manual_choice(chosen, CGW, "派遣员 王五", at(11), "市政不管", departments=DEMO.departments)
    assert again.original == manual and [o.department for o in again.overrides] == [SZ, CGW]
    assert again.explanation == (
        "人工派遣: 区城市管理委员会(990000000000000001), 由 派遣员 王五 选定 (2026-03-06 11:00), 说明: 市政不管; "
        "原判断: " + manual.explanation
    )
