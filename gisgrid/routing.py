"""Routing (派遣路由): which department a case goes to. Pure, except for reading the rules file.

Rules are data (``data/rules/routing.csv``, documented in ``data/rules/README.md``); ``route`` decides.

Precedence (standards notes §2: 部件 "先属主、后属地", 事件 "先属地、后属主"):

1. **Component-linked case (部件先属主)**: the component's 养护单位 (``maint_dept``), else 主管部门
   (``main_dept``), else 权属单位 (``owner_dept``). This beats every rule.
2. **Area rule (事件先属地)**: rules with an ``area_prefix`` and/or ``tier_grid`` that match the case's place,
   class, time window and weekday. The most specific wins, by this key:
   a. the longer of ``area_prefix``/``tier_grid`` (15 unit grid > 14 tier-3 > 12 community > 9 street > 6);
   b. the longer ``class_prefix`` (a rule for 08001 beats one for 08);
   c. a rule limited in time (window or weekdays) beats an always-on one;
   d. the smaller ``priority`` number; e. the smaller ``rule_id``.
3. **Class-only rule (后属主)**: rules with neither area nor tier grid (the class's 主管 department), ranked by
   b–e.
4. **Class default**: the ``class_default`` department the caller passes (e.g. the event class's
   ``default_dept``).
5. **None**: department None, queue ``manual`` (人工派遣): a dispatcher must choose.

Time windows use Asia/Shanghai local time. ``time_from`` is inclusive, ``time_to`` exclusive; a window with
``time_from > time_to`` runs over midnight, and its after-midnight part belongs to the previous day's weekday
(a Friday-night rule still applies at Saturday 02:00).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, NamedTuple

from gisgrid import cityfiles
from gisgrid.catalogue import CODE_DIGITS, SCHEMES, load_catalogue, missing_department_reason
from gisgrid.constants import LOCAL_TZ
from gisgrid.errors import InvalidInput, ProblemList
from gisgrid.events import EventCatalogue, load_event_catalogue
from gisgrid.settings import PROJECT_ROOT, Settings

RULE_COLUMNS = (
    "rule_id",
    "priority",
    "scheme",
    "class_prefix",
    "area_prefix",
    "tier_grid",
    "time_from",
    "time_to",
    "weekdays",
    "department",
    "note",
)
RULES_FILE = "routing.csv"
#: ``department`` of a city's extra routing row that removes the rule with its ``rule_id`` (an earlier file's,
#: e.g. a base rule that does not fit the city): the rule is then neither evaluated nor listed as a candidate.
REMOVE = "-"
#: 6 district, 9 street, 12 community, 15 unit grid (GB/T 2260 + 3 + 3 + 3).
AREA_LENGTHS = (6, 9, 12, 15)
#: Management grids: 9 tier 1 (street), 12 tier 2 (community), 14 tier 3 (community + 2).
TIER_LENGTHS = {9: 1, 12: 2, 14: 3}
TIER_NAMES = {1: "一", 2: "二", 3: "三"}
WEEKDAY_NAMES = ("一", "二", "三", "四", "五", "六", "日")

#: Every text routing writes for a reader (explanations, why a rule matched or not, the dispatch suggestion), in
#: one table: zh-CN, as the console and the printed orders show them. Departments are ``名称(代码)``
#: (:func:`department_label`), classes ``名称(代码)`` (:meth:`RoutingRules.class_text`).
TEXTS_ZH: dict[str, str] = {
    "area_rule": "区域规则",
    "class_rule": "类别规则",
    "not_matched": "不符合({kind}): {why}",
    "matched_chosen": "符合({kind}), 采用",
    "matched_owner_first": "符合({kind}), 未采用: 部件先属主",
    "matched_outranked": "符合({kind}), 次于规则 {best}",
    "outside_window": "上报时间 {time} 不在 {window} 内",
    "outside_weekdays": "上报日 周{day} 不在 周{days} 内",
    "outside_area": "单元网格 {grid} 不在区域 {area} 内",
    "no_tier_code": "案件无{tier}级网格编码",
    "other_tier_grid": "{tier}级网格 {code} 不是 {grid}",
    "rule_area": "区域 {area}",
    "rule_grid": "网格 {grid}",
    "rule_class": "类别 {label}",
    "rule_any_class": "类别 任意",
    "owner": "部件先属主: {of}{role} {department}",
    "owner_of": "部件 {component} 的",
    "no_owner_info": "部件无责任单位信息, 按属地: ",
    "no_component": "未提供部件信息, 按属地: ",
    "rule": "{lead}{label}: {kind} {rule_id} ({rule}) → {department}",
    "area_first": "事件先属地",
    # 事件先属地、后属主: a class rule (or the class default) decides only when no area rule matched; said so.
    "owner_after": "事件先属地后属主: 无匹配的区域规则",
    "rule_owner_after": "{lead}{label}, 按{kind} {rule_id} ({rule}) → {department}",
    "class_default": "{lead}事件先属地后属主: 无匹配规则, 按类别 {label} 的默认主管部门 {department}",
    "manual": "{lead}无匹配规则, 转人工派遣 (类别 {label}, 单元网格 {grid}, 上报于 {time})",
    "override": "派遣员改派: {department}, 由 {actor} 改派{when}, 原因: {reason}; 原判断: {original}",
    "manual_choice": "人工派遣: {department}, 由 {actor} 选定{when}{note}; 原判断: {original}",
    "when": " ({time})",
    "note": ", 说明: {note}",
    "withheld": "建议部门 {department} 已回退本案,请人工选择",
}

_RULE_ID = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_RULE_ID_REASON = "rule_id must be 1–40 letters, digits, '_', '-' or '.'"
_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_WEEKDAYS = re.compile(r"[1-7](-[1-7])?(,[1-7](-[1-7])?)*")
_MAX_LISTED_PROBLEMS = 10

Queue = Literal["auto", "manual"]
Source = Literal["component_owner", "rule", "class_default", "none", "override", "dispatcher"]


# --------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class RoutingRule:
    rule_id: str
    priority: int
    scheme: str  # "" only when class_prefix is empty (any class)
    class_prefix: str
    area_prefix: str
    tier_grid: str
    time_from: time | None
    time_to: time | None
    weekdays: frozenset[int]  # ISO 1 = Monday … 7 = Sunday; empty = every day
    department: str
    note: str = ""
    #: Where the rule in force came from (the header is line 1), as the classes' ``class_origins``; line 0: nowhere.
    path: Path = field(default_factory=Path)
    line: int = 0

    @property
    def source(self) -> str:
        """``file:line``, for messages ("" for a rule read from no file)."""
        return f"{self.path}:{self.line}" if self.line else ""

    @property
    def is_area_rule(self) -> bool:
        return bool(self.area_prefix or self.tier_grid)

    @property
    def area_specificity(self) -> int:
        return max(len(self.area_prefix), len(self.tier_grid))

    @property
    def time_limited(self) -> bool:
        return self.time_from is not None or bool(self.weekdays)

    def rank_key(self) -> tuple[int, int, int, int, str]:
        """Sort key: most specific first (see the module docstring)."""
        return (-self.area_specificity, -len(self.class_prefix), 0 if self.time_limited else 1, self.priority,
                self.rule_id)  # fmt: skip

    def describe(self, class_names: Mapping[tuple[str, str], str] | None = None) -> str:
        """The rule's conditions in zh (``class_names``: (scheme, code or 大类 code) → name, to name the class)."""
        parts = []
        if self.area_prefix:
            parts.append(TEXTS_ZH["rule_area"].format(area=self.area_prefix))
        if self.tier_grid:
            parts.append(TEXTS_ZH["rule_grid"].format(grid=self.tier_grid))
        if self.class_prefix:
            label = class_label(self.class_prefix, (class_names or {}).get((self.scheme, self.class_prefix)))
            parts.append(TEXTS_ZH["rule_class"].format(label=label))
        else:
            parts.append(TEXTS_ZH["rule_any_class"])
        if self.time_from is not None and self.time_to is not None:
            parts.append(f"{self.time_from:%H:%M}–{self.time_to:%H:%M}")
        if self.weekdays:
            parts.append("周" + "".join(WEEKDAY_NAMES[d - 1] for d in sorted(self.weekdays)))
        return ", ".join(parts)


def department_label(code: str, name: str | None) -> str:
    """A department in an explanation: its name first (what a reader looks for), then its code."""
    return f"{name}({code})" if name else code


def class_label(code: str, name: str | None) -> str:
    """An event class (or 大类) in an explanation, as a department is: its name, then its code."""
    return f"{name}({code})" if name else code


@dataclass(frozen=True)
class RoutingRules:
    rules: tuple[RoutingRule, ...]
    departments: Mapping[str, str]  # code → name ("" when only codes were given)
    sources: tuple[Path, ...] = ()
    #: (scheme, class code or 大类 code) → zh name, to name classes in explanations (empty: codes only).
    class_names: Mapping[tuple[str, str], str] = field(default_factory=dict)
    #: rule_ids an extra file removed (department ``-``, :data:`REMOVE`), in the order removed.
    removed: tuple[str, ...] = ()
    #: rule_id → the file and line of the row that removed it.
    removed_by: Mapping[str, tuple[Path, int]] = field(default_factory=dict)

    def department_text(self, code: str) -> str:
        return department_label(code, self.departments.get(code))

    def class_text(self, scheme: str, code: str) -> str:
        return class_label(code, self.class_names.get((scheme, code)))

    def naming_area(self, prefix: str) -> list[RoutingRule]:
        """Rules whose area or tier grid lies in the area of code ``prefix`` (a recode leaves them naming a code
        that no longer exists: rules are data files, edited by people)."""
        return [r for r in self.rules if r.area_prefix.startswith(prefix) or r.tier_grid.startswith(prefix)]


@dataclass(frozen=True)
class RoutingInput:
    """What routing needs to know about a case."""

    class_code: str
    scheme: str
    unit_grid_code: str  # 15 digits
    reported_at: datetime  # timezone-aware
    tier1_code: str | None = None  # 9 digits (street)
    tier2_code: str | None = None  # 12 digits (community)
    tier3_code: str | None = None  # 14 digits
    component_linked: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.scheme not in SCHEMES:
            problems.append(f"scheme must be one of {', '.join(SCHEMES)}, not {self.scheme!r}")
        elif not _digits(self.class_code, CODE_DIGITS[self.scheme]):
            problems.append(f"a {self.scheme} class code is {CODE_DIGITS[self.scheme]} digits, not {self.class_code!r}")
        if not _digits(self.unit_grid_code, 15):
            problems.append(f"unit_grid_code must be 15 digits, not {self.unit_grid_code!r}")
        for name, length in (("tier1_code", 9), ("tier2_code", 12), ("tier3_code", 14)):
            value = getattr(self, name)
            if value is not None and not _digits(value, length):
                problems.append(f"{name} must be {length} digits, not {value!r}")
        if self.reported_at.tzinfo is None or self.reported_at.utcoffset() is None:
            problems.append("reported_at must be timezone-aware (local windows are Asia/Shanghai time)")
        if problems:
            raise InvalidInput("invalid routing input: " + "; ".join(problems), detail={"problems": problems})

    def tier_code(self, tier: int) -> str | None:
        return {1: self.tier1_code, 2: self.tier2_code, 3: self.tier3_code}[tier]


@dataclass(frozen=True)
class ComponentOwner:
    """The responsible units of the component a case is linked to (GB/T 47678.5 YHDWDM/ZGBMDM/QSDWDM)."""

    maint_dept: str | None = None  # 养护单位
    main_dept: str | None = None  # 主管部门
    owner_dept: str | None = None  # 权属单位
    component_id: str | None = None  # 管理部件标识码, for the explanation


class Candidate(NamedTuple):
    rule_id: str
    department: str
    matched: bool
    why: str  # zh, for the reader (the other fields are for machines)


@dataclass(frozen=True)
class Override:
    """One dispatcher's choice against the routing: a 改派 (``source`` override) or the choice for a case the
    routing left to a person (``dispatcher``, 人工派遣). ``explanation`` is that dispatch's 派遣依据."""

    source: Literal["override", "dispatcher"]
    department: str
    by: str | None
    at: str | None  # ISO 8601
    reason: str | None
    explanation: str


@dataclass(frozen=True)
class RoutingDecision:
    department: str | None
    queue: Queue  # auto: a department is decided; manual: 人工派遣, a dispatcher must choose
    source: Source
    rule_id: str | None
    explanation: str
    candidates: list[Candidate] = field(default_factory=list)
    overridden_by: str | None = None  # who replaced the decision (改派) or chose for a manual one (人工派遣)
    override_reason: str | None = None
    #: The routing's own decision (never an override: overrides do not nest) that an override replaced, or the
    #: manual one a dispatcher chose for; None while the routing's own decision holds.
    original: RoutingDecision | None = None
    overridden_at: str | None = None  # when (ISO 8601), as the dispatch's log entry has it
    #: Every dispatcher's choice on this case, oldest first (flat; the last is this decision when it is one).
    overrides: tuple[Override, ...] = ()

    @property
    def original_explanation(self) -> str | None:
        return self.original.explanation if self.original else None


# --------------------------------------------------------------------------------------- loading


def _digits(value: Any, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and value.isascii() and value.isdigit()


class _Problems(ProblemList):
    label = "routing rules"
    max_listed = _MAX_LISTED_PROBLEMS


def _rules_path(path_or_settings: Settings | Path | str) -> Path:
    if isinstance(path_or_settings, Settings):
        return Path(path_or_settings.catalogue_dir) / "rules" / RULES_FILE
    path = Path(path_or_settings)
    if path.is_dir():
        # Accept data/ (Settings.catalogue_dir), data/rules/, or a file path.
        return path / RULES_FILE if (path / RULES_FILE).exists() else path / "rules" / RULES_FILE
    return path


def _default_departments(path_or_settings: Settings | Path | str, rules_path: Path) -> dict[str, str]:
    if isinstance(path_or_settings, Settings):
        return load_catalogue(path_or_settings).departments
    # A rules file inside a data tree uses that tree's catalogue; otherwise the project's.
    data_dir = rules_path.parent.parent
    if (data_dir / "catalogue" / "departments.csv").exists():
        return load_catalogue(data_dir).departments
    return load_catalogue(PROJECT_ROOT / "data").departments


def _default_events(path_or_settings: Settings | Path | str, rules_path: Path) -> EventCatalogue:
    """The event catalogue beside the rules (as :func:`_default_departments`)."""
    if isinstance(path_or_settings, Settings):
        return load_event_catalogue(path_or_settings)
    data_dir = rules_path.parent.parent
    return load_event_catalogue(data_dir if (data_dir / "catalogue").is_dir() else PROJECT_ROOT / "data")


def event_class_names(events: EventCatalogue) -> dict[tuple[str, str], str]:
    """(scheme, code) → zh name of every event class and of its 大类 (by the 大类 code), for explanations."""
    names: dict[tuple[str, str], str] = {}
    for scheme in events.by_scheme:
        for code, ev in events.classes(scheme).items():
            names.setdefault((scheme, ev.big_code), ev.big_name)
            names[(scheme, code)] = ev.name
    return names


def _day_range(a: int, b: int) -> str:
    return str(a) if a == b else f"{a}-{b}"


def _parse_weekdays(text: str) -> frozenset[int] | str:
    """The ISO days ``text`` lists, or the reason it is refused."""
    if not _WEEKDAYS.fullmatch(text):
        return "weekdays must be ISO days 1–7 as a list or ranges, e.g. 1-5 or 6,7"
    days: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi or lo)
        if a > b:
            # Not read as a range over Sunday: "2-1" would be every day, and a typo looks the same as a choice.
            over_sunday = ",".join(_day_range(x, y) for x, y in ((a, 7), (1, b)))
            return (
                f"weekdays range {part} runs backwards; write the smaller day first ({b}-{a}), or a range over "
                f"Sunday as two parts ({over_sunday})"
            )
        days.update(range(a, b + 1))
    return frozenset(days)


def _parse_row(  # noqa: C901
    path: Path, line: int, r: dict[str, str], departments: Collection[str], problems: _Problems
) -> RoutingRule | None:
    """A RoutingRule, or None after recording the row's problems."""
    n_before = len(problems.items)

    def bad(field_name: str, reason: str) -> None:
        problems.add(path, line, field_name, r[field_name], reason)

    if not _RULE_ID.fullmatch(r["rule_id"]):
        bad("rule_id", _RULE_ID_REASON)
    priority = 0
    try:
        priority = int(r["priority"]) if r["priority"] else 100
    except ValueError:
        bad("priority", "priority must be an integer (smaller = first), or empty for 100")
    scheme, class_prefix = r["scheme"], r["class_prefix"]
    if scheme and scheme not in SCHEMES:
        bad("scheme", f"unknown scheme; expected one of {', '.join(SCHEMES)} (or empty with an empty class_prefix)")
    elif class_prefix:
        if not scheme:
            bad("scheme", "a class_prefix needs its scheme (gbt47678 or cjt214)")
        elif not (class_prefix.isascii() and class_prefix.isdigit() and 2 <= len(class_prefix) <= CODE_DIGITS[scheme]):
            bad("class_prefix", f"a {scheme} class prefix is 2–{CODE_DIGITS[scheme]} digits")
    elif scheme:
        bad("scheme", "scheme without a class_prefix: leave both empty for any class")
    area = r["area_prefix"]
    if area and not (area.isascii() and area.isdigit() and len(area) in AREA_LENGTHS):
        bad("area_prefix", "area_prefix must be 6, 9, 12 or 15 digits (district/street/community/unit grid)")
    tier = r["tier_grid"]
    if tier and not (tier.isascii() and tier.isdigit() and len(tier) in TIER_LENGTHS):
        bad("tier_grid", "tier_grid must be 9, 12 or 14 digits (tier 1/2/3 management grid)")
    if not (class_prefix or area or tier):
        bad("class_prefix", "a rule must name a class_prefix, an area_prefix or a tier_grid (no catch-all rules)")
    times: dict[str, time | None] = {}
    for name in ("time_from", "time_to"):
        m = _HHMM.fullmatch(r[name])
        times[name] = time(int(m[1]), int(m[2])) if m else None
        if r[name] and not m:
            bad(name, "time must be HH:MM, 00:00–23:59")
    if bool(r["time_from"]) != bool(r["time_to"]):
        bad("time_to" if r["time_from"] else "time_from", "give both time_from and time_to, or neither")
    elif times["time_from"] is not None and times["time_from"] == times["time_to"]:
        bad("time_to", "time_from equals time_to: an empty window; leave both empty for all day")
    parsed = _parse_weekdays(r["weekdays"]) if r["weekdays"] else frozenset()
    weekdays: frozenset[int] = frozenset()
    if isinstance(parsed, str):
        bad("weekdays", parsed)
    else:
        weekdays = parsed
    if not r["department"]:
        bad("department", "department is empty")
    elif r["department"] not in departments:
        bad("department", "unknown department (not in the departments catalogue)")
    if len(problems.items) > n_before:
        return None
    return RoutingRule(
        rule_id=r["rule_id"],
        priority=priority,
        scheme=scheme,
        class_prefix=class_prefix,
        area_prefix=area,
        tier_grid=tier,
        time_from=times["time_from"],
        time_to=times["time_to"],
        weekdays=weekdays,
        department=r["department"],
        note=r["note"],
        path=path,
        line=line,
    )


def _load_file(
    path: Path, departments: Collection[str], problems: _Problems, *, base: bool
) -> list[tuple[int, RoutingRule | str]]:
    """(line, rule) per row, in file order; a row whose department is :data:`REMOVE` gives (line, its rule_id)
    instead: the removal of an earlier file's rule (refused in the base file, ``base``, which just deletes a row)."""
    table = cityfiles.read_csv(path, "routing rules file")  # UTF-8 (BOM or not) or GB18030, as every city file
    missing = [c for c in RULE_COLUMNS if c not in table.header]
    if missing:
        problems.add(path, None, None, "", f"missing column(s) {', '.join(missing)}; expected {','.join(RULE_COLUMNS)}")
        return []
    loaded: list[tuple[int, RoutingRule | str]] = []
    first_row: dict[str, int] = {}
    for line, record in table.rows:
        r = {c: record.get(c, "") for c in RULE_COLUMNS}
        if not any(r.values()):
            continue
        if r["rule_id"] in first_row:
            problems.add(path, line, "rule_id", r["rule_id"], f"duplicate of row {first_row[r['rule_id']]}")
            continue
        first_row[r["rule_id"]] = line
        if r["department"] == REMOVE:
            if base:
                problems.add(
                    path,
                    line,
                    "department",
                    REMOVE,
                    f"department '{REMOVE}' removes a rule of an earlier file, so it is for a city's extra routing "
                    "file (GISGRID_CATALOGUE_EXTRA); in this file delete the row",
                )
            elif not _RULE_ID.fullmatch(r["rule_id"]):
                problems.add(path, line, "rule_id", r["rule_id"], _RULE_ID_REASON)
            else:
                loaded.append((line, r["rule_id"]))
            continue
        rule = _parse_row(path, line, r, departments, problems)
        if rule is not None:
            loaded.append((line, rule))
    return loaded


def load_routing_rules(
    path_or_settings: Settings | Path | str,
    extra: Sequence[Path | str] = (),
    *,
    departments: Mapping[str, str] | Iterable[str] | None = None,
    classes: Mapping[str, Collection[str]] | None = None,
    class_names: Mapping[tuple[str, str], str] | None = None,
    removed_departments: Mapping[str, tuple[Path, int]] | None = None,
) -> RoutingRules:
    """Read the routing rules file, then each ``extra`` file in order.

    A rule_id repeated in one file is an error; in a later file it replaces the earlier rule (a city's
    override), or removes it when the later row's department is ``-`` (:data:`REMOVE`; an id no earlier file has
    is an error). Departments are checked against ``departments`` (codes, or code → name), by default the
    catalogue's; class prefixes against ``classes`` (scheme → event class codes, the city's extra classes
    included), by default the event catalogue's: a prefix no class has could never match. Two rules that can
    match the same report and that :func:`route` ranks equal but for the rule_id (same priority and specificity)
    are an error: the result would hang on the rule_id. Every problem is reported at once in one InvalidInput
    naming file, row and field. ``class_names`` ((scheme, code) → zh name, :func:`event_class_names`) name the
    classes in explanations, by default the event catalogue's. ``removed_departments`` (code → the extra departments
    row that removed it, :attr:`gisgrid.catalogue.Catalogue.department_removed_by`): a rule naming one is refused
    only when it is in force (a city may replace or remove the base rule that names it), with that row's file:line.
    """
    base = _rules_path(path_or_settings)
    if departments is None:
        names: dict[str, str] = _default_departments(path_or_settings, base)
    elif isinstance(departments, Mapping):
        names = dict(departments)
    else:
        names = dict.fromkeys(departments, "")
    problems = _Problems()
    gone = removed_departments or {}
    known = set(names) | set(gone)  # a removed department is checked on the rules in force only (below)
    files = [base, *(Path(p) for p in extra)]
    by_id: dict[str, RoutingRule] = {}
    removed: dict[str, tuple[Path, int]] = {}  # rule_id → the row that removed it (gone if a later file re-adds it)
    for index, path in enumerate(files):
        for line, rule in _load_file(path, known, problems, base=index == 0):
            if isinstance(rule, RoutingRule):
                by_id[rule.rule_id] = rule
                removed.pop(rule.rule_id, None)
            elif by_id.pop(rule, None) is not None:
                removed[rule] = (path, line)
            else:  # a typo would otherwise leave the rule it meant running
                why = (
                    f"rule {rule} was already removed by {removed[rule][0]}:{removed[rule][1]}"
                    if rule in removed
                    else f"no earlier routing file has rule {rule}"
                )
                problems.add(path, line, "rule_id", rule, f"department '{REMOVE}' removes an earlier rule, but {why}")
    if classes is None or class_names is None:
        events = _default_events(path_or_settings, base)
        if classes is None:
            classes = {scheme: set(events.classes(scheme)) for scheme in SCHEMES}
        if class_names is None:
            class_names = event_class_names(events)
    for rule in by_id.values():  # the final rules only: a city may replace a base rule naming a class it dropped
        if rule.department in gone:
            _add(problems, rule, "department", rule.department, missing_department_reason(rule.department, gone))
        if rule.class_prefix and not any(c.startswith(rule.class_prefix) for c in classes.get(rule.scheme, ())):
            _add(
                problems,
                rule,
                "class_prefix",
                rule.class_prefix,
                f"no {rule.scheme} event class starts with {rule.class_prefix} (event classes files): the rule "
                "could never match",
            )
    conditions: dict[tuple[Any, ...], RoutingRule] = {}
    for rule in by_id.values():
        key = (rule.scheme, rule.class_prefix, rule.area_prefix, rule.tier_grid, rule.time_from, rule.time_to,
               rule.weekdays, rule.priority)  # fmt: skip
        if key in conditions:
            other = conditions[key]
            _add(
                problems,
                rule,
                "rule_id",
                rule.rule_id,
                f"same conditions and priority as rule {other.rule_id} ({other.source}); make one more specific, "
                "change a priority, or delete one",
            )
        else:
            conditions[key] = rule
    _check_ties(list(conditions.values()), problems)
    problems.raise_if_any()
    ordered = tuple(sorted(by_id.values(), key=RoutingRule.rank_key))
    return RoutingRules(
        rules=ordered,
        departments=names,
        sources=tuple(files),
        class_names=class_names,
        removed=tuple(removed),
        removed_by=removed,
    )


def _add(problems: _Problems, rule: RoutingRule, field_name: str, value: str, reason: str) -> None:
    problems.add(rule.path, rule.line, field_name, value, reason)


_WEEK_MINUTES = 7 * 24 * 60


def _week_minutes(rule: RoutingRule) -> int:
    """The minutes of the week (bit i: minute i from Monday 00:00) at which the rule's window and weekdays hold,
    as :func:`_in_window` judges them (after midnight, a window running over midnight counts as the day before)."""
    mask = 0

    def span(day: int, start: int, end: int) -> None:  # ISO day (8 = the next Monday), minutes of that day
        nonlocal mask
        mask |= ((1 << (end - start)) - 1) << ((day - 1) % 7 * 1440 + start)

    for day in sorted(rule.weekdays) or range(1, 8):
        if rule.time_from is None or rule.time_to is None:
            span(day, 0, 1440)
            continue
        lo = rule.time_from.hour * 60 + rule.time_from.minute
        hi = rule.time_to.hour * 60 + rule.time_to.minute
        if lo < hi:
            span(day, lo, hi)
        else:
            span(day, lo, 1440)
            if hi:
                span(day + 1, 0, hi)
    return mask


def _classes_meet(a: RoutingRule, b: RoutingRule) -> bool:
    if not (a.class_prefix and b.class_prefix):
        return True
    return a.scheme == b.scheme and (
        a.class_prefix.startswith(b.class_prefix) or b.class_prefix.startswith(a.class_prefix)
    )


def _places_meet(a: RoutingRule, b: RoutingRule) -> bool:
    """Whether one case can lie in both rules' areas and tier grids (codes nest: a tier-1 grid is its street's
    code, a tier-3 grid starts with its community's)."""
    codes = [c for c in (a.area_prefix, a.tier_grid, b.area_prefix, b.tier_grid) if c]
    return all(x.startswith(y) or y.startswith(x) for x, y in itertools.combinations(codes, 2))


def _check_ties(rules: Sequence[RoutingRule], problems: _Problems) -> None:
    """Two rules :func:`route` would rank equal but for the rule_id (same specificity and priority) that can match
    one report: which one decides would hang on the rule_id. A more specific rule beside a broader one is fine."""
    groups: dict[tuple[int, int, int, int], list[RoutingRule]] = {}
    for rule in rules:
        groups.setdefault(rule.rank_key()[:4], []).append(rule)
    for group in groups.values():
        weeks = {r.rule_id: _week_minutes(r) for r in group}
        for a, b in itertools.combinations(group, 2):
            both = weeks[a.rule_id] & weeks[b.rule_id]
            if not (both and _classes_meet(a, b) and _places_meet(a, b)):
                continue
            if both == (1 << _WEEK_MINUTES) - 1:
                when = "at any time"
            else:
                first = (both & -both).bit_length() - 1
                day, minute = divmod(first, 1440)
                when = f"e.g. 周{WEEKDAY_NAMES[day]} {minute // 60:02d}:{minute % 60:02d}"
            _add(
                problems,
                b,
                "rule_id",
                b.rule_id,
                f"can match the same report as rule {a.rule_id} ({a.source}), {when}, with the same priority and "
                "specificity: the choice would hang on the rule_id; make one more specific (area, class, time), "
                "change a priority, or narrow the time windows or weekdays apart",
            )


# --------------------------------------------------------------------------------------- routing


def _in_window(rule: RoutingRule, local: datetime) -> tuple[bool, str]:
    """Whether ``local`` falls in the rule's time window and weekdays; the reason when not."""
    weekday = local.isoweekday()
    now = local.time().replace(second=0, microsecond=0)
    if rule.time_from is not None and rule.time_to is not None:
        lo, hi = rule.time_from, rule.time_to
        window = f"{lo:%H:%M}–{hi:%H:%M}"
        if lo < hi:
            inside = lo <= now < hi
        else:
            inside = now >= lo or now < hi
            if now < hi:
                weekday = (local - timedelta(days=1)).isoweekday()  # after midnight: the evening's day
        if not inside:
            return False, TEXTS_ZH["outside_window"].format(time=f"{local:%H:%M}", window=window)
    if rule.weekdays and weekday not in rule.weekdays:
        days = "".join(WEEKDAY_NAMES[d - 1] for d in sorted(rule.weekdays))
        return False, TEXTS_ZH["outside_weekdays"].format(day=WEEKDAY_NAMES[weekday - 1], days=days)
    return True, ""


def _place_match(rule: RoutingRule, case: RoutingInput) -> tuple[bool, str]:
    if rule.area_prefix and not case.unit_grid_code.startswith(rule.area_prefix):
        return False, TEXTS_ZH["outside_area"].format(grid=case.unit_grid_code, area=rule.area_prefix)
    if rule.tier_grid:
        tier = TIER_LENGTHS[len(rule.tier_grid)]
        code = case.tier_code(tier)
        if code is None:
            return False, TEXTS_ZH["no_tier_code"].format(tier=TIER_NAMES[tier])
        if code != rule.tier_grid:
            return False, TEXTS_ZH["other_tier_grid"].format(tier=TIER_NAMES[tier], code=code, grid=rule.tier_grid)
    return True, ""


def _class_match(rule: RoutingRule, case: RoutingInput) -> bool:
    if not rule.class_prefix:
        return True
    return rule.scheme == case.scheme and case.class_code.startswith(rule.class_prefix)


def route(
    case: RoutingInput,
    rules: RoutingRules,
    *,
    component: ComponentOwner | None = None,
    class_default: str | None = None,
) -> RoutingDecision:
    """Decide the department for ``case`` (precedence in the module docstring).

    ``candidates`` lists every rule whose class fits the case (rules for other classes are left out), in rank
    order, each saying why it matched or not and whether it was chosen.
    """
    if component is not None and not case.component_linked:
        raise InvalidInput("a component owner was given for a case that is not component-linked (事件)")
    local = case.reported_at.astimezone(LOCAL_TZ)

    matched: list[RoutingRule] = []
    checks: list[tuple[RoutingRule, bool, str]] = []
    for rule in rules.rules:  # already in rank order
        if not _class_match(rule, case):
            continue
        ok, why = _place_match(rule, case)
        if ok:
            ok, why = _in_window(rule, local)
        checks.append((rule, ok, why))
        if ok:
            matched.append(rule)

    owner = _owner_department(component)
    best = matched[0] if matched else None
    candidates = []
    for rule, ok, why in checks:
        kind = TEXTS_ZH["area_rule" if rule.is_area_rule else "class_rule"]
        if not ok:
            text = TEXTS_ZH["not_matched"].format(kind=kind, why=why)
        elif owner is not None:
            text = TEXTS_ZH["matched_owner_first"].format(kind=kind)
        elif rule is best:
            text = TEXTS_ZH["matched_chosen"].format(kind=kind)
        else:
            text = TEXTS_ZH["matched_outranked"].format(kind=kind, best=best.rule_id if best else "?")
        candidates.append(Candidate(rule.rule_id, rule.department, ok, text))

    if owner is not None:
        role, dept, component_id = owner
        of = TEXTS_ZH["owner_of"].format(component=component_id) if component_id else ""
        return RoutingDecision(
            department=dept,
            queue="auto",
            source="component_owner",
            rule_id=None,
            explanation=TEXTS_ZH["owner"].format(of=of, role=role, department=rules.department_text(dept)),
            candidates=candidates,
        )
    lead = ""
    if case.component_linked:
        lead = TEXTS_ZH["no_owner_info" if component is not None else "no_component"]
    class_text = rules.class_text(case.scheme, case.class_code)
    if best is not None:
        return RoutingDecision(
            department=best.department,
            queue="auto",
            source="rule",
            rule_id=best.rule_id,
            explanation=TEXTS_ZH["rule" if best.is_area_rule else "rule_owner_after"].format(
                lead=lead,
                label=TEXTS_ZH["area_first" if best.is_area_rule else "owner_after"],
                kind=TEXTS_ZH["area_rule" if best.is_area_rule else "class_rule"],
                rule_id=best.rule_id,
                rule=best.describe(rules.class_names),
                department=rules.department_text(best.department),
            ),
            candidates=candidates,
        )
    if class_default:
        return RoutingDecision(
            department=class_default,
            queue="auto",
            source="class_default",
            rule_id=None,
            explanation=TEXTS_ZH["class_default"].format(
                lead=lead, label=class_text, department=rules.department_text(class_default)
            ),
            candidates=candidates,
        )
    return RoutingDecision(
        department=None,
        queue="manual",
        source="none",
        rule_id=None,
        explanation=TEXTS_ZH["manual"].format(
            lead=lead, label=class_text, grid=case.unit_grid_code, time=f"{local:%Y-%m-%d %H:%M}"
        ),
        candidates=candidates,
    )


def _owner_department(component: ComponentOwner | None) -> tuple[str, str, str | None] | None:
    """(Chinese role, department, component id) by 养护单位 → 主管部门 → 权属单位, or None."""
    if component is None:
        return None
    for role, dept in (("养护单位", component.maint_dept), ("主管部门", component.main_dept),
                       ("权属单位", component.owner_dept)):  # fmt: skip
        if dept and dept.strip():
            return role, dept.strip(), component.component_id
    return None


def own_decision(decision: RoutingDecision) -> RoutingDecision:
    """The routing's own decision behind any dispatcher's choice (a decision stored before overrides were kept
    flat nests them: the innermost is the routing's)."""
    own = decision
    while own.original is not None:
        own = own.original
    return replace(own, overrides=(), original=None)


def own_lost(own: RoutingDecision) -> bool:
    """Whether :func:`own_decision` found a dispatcher's choice, not the routing's own: a decision stored with two
    choices nested (before overrides were kept flat) lost the routing's own under them."""
    return own.source in ("override", "dispatcher")


def past_overrides(decision: RoutingDecision) -> tuple[Override, ...]:
    """Every dispatcher's choice recorded on ``decision``, oldest first; from the nesting of an older stored one."""
    if decision.overrides:
        return decision.overrides
    found: list[Override] = []
    d: RoutingDecision | None = decision
    while d is not None:
        if d.source in ("override", "dispatcher") and d.department:
            source: Literal["override", "dispatcher"] = "override" if d.source == "override" else "dispatcher"
            found.append(Override(source, d.department, d.overridden_by, d.overridden_at, d.override_reason,
                                  d.explanation))  # fmt: skip
        d = d.original
    return tuple(reversed(found))


def as_suggested(decision: RoutingDecision) -> RoutingDecision:
    """A 派遣 to the routing's own department: its own decision holds again, the earlier overrides still listed."""
    return replace(own_decision(decision), overrides=past_overrides(decision))


@dataclass(frozen=True)
class Suggestion:
    """The department a 派遣 form offers (派遣建议): the routing's own, unless it has returned the case (回退)."""

    department: str | None
    explanation: str | None  # the routing's own explanation of it
    withheld: str | None = None  # the routing's department, not offered because it returned the case
    hint: str | None = None  # zh, when nothing is offered for that reason


def suggestion(
    decision: RoutingDecision, returned_by: Collection[str], departments: Mapping[str, str] | None = None
) -> Suggestion:
    """派遣建议 of a case whose stored decision is ``decision`` and whose 回退 came from ``returned_by``: the
    routing's own decision (never a dispatcher's earlier choice), and nothing when that department has returned
    the case — a dispatcher accepting the default must not send it back to the department that refused it."""
    own = own_decision(decision)
    if own.department is None or own_lost(own):  # a manual case; or the routing's own lost under two choices
        return Suggestion(None, None)
    if own.department in returned_by:
        shown = department_label(own.department, (departments or {}).get(own.department))
        return Suggestion(None, None, own.department, TEXTS_ZH["withheld"].format(department=shown))
    return Suggestion(own.department, own.explanation)


def _when(at: datetime | None) -> str:
    return TEXTS_ZH["when"].format(time=f"{at:%Y-%m-%d %H:%M}") if at else ""


def manual_choice(
    decision: RoutingDecision,
    department: str,
    actor: str,
    at: datetime,
    note: str | None = None,
    *,
    departments: Mapping[str, str] | Collection[str] | None = None,
) -> RoutingDecision:
    """人工派遣: the dispatcher's choice for a case the routing left to a person (queue ``manual``), recorded as an
    override is — who chose and when, the manual decision kept as ``original``, the choice added to ``overrides``
    — so that the 交办单's 派遣依据 names who chose the department instead of "无匹配规则". The decision leaves the
    manual queue (``auto``). ``decision`` may hold an earlier choice (a re-dispatch after 回退): it is not nested."""
    department, actor = (department or "").strip(), (actor or "").strip()
    own = own_decision(decision)
    if own.queue != "manual" and not own_lost(own):
        raise InvalidInput(f"manual choice: the case is routed already ({own.department})")
    if not department or (departments is not None and department not in departments):
        raise InvalidInput(f"manual choice: unknown department {department!r}")
    shown = department_label(department, departments.get(department) if isinstance(departments, Mapping) else None)
    said = note.strip() if note and note.strip() else None
    explanation = TEXTS_ZH["manual_choice"].format(
        department=shown,
        actor=actor or "?",
        when=_when(at),
        note=TEXTS_ZH["note"].format(note=said) if said else "",
        original=own.explanation,
    )
    entry = Override("dispatcher", department, actor or None, at.isoformat(), said, explanation)
    return replace(
        own,
        department=department,
        queue="auto",
        source="dispatcher",
        rule_id=None,
        explanation=explanation,
        overridden_by=actor or None,
        override_reason=said,
        original=own,
        overridden_at=at.isoformat(),
        overrides=(*past_overrides(decision), entry),
    )


def override(
    decision: RoutingDecision,
    department: str,
    actor: str,
    reason: str,
    *,
    departments: Mapping[str, str] | Collection[str] | None = None,
    at: datetime | None = None,
) -> RoutingDecision:
    """The dispatcher's choice (改派) replacing the routing's own decision, which is kept as ``original``; the
    choice is added to ``overrides``. ``decision`` may already be an override (a re-dispatch after 回退): the new
    one replaces it beside it in that flat list, never nested in it, and is explained against the routing's own.

    With ``departments`` (codes, or code → name) the new department is checked and named.
    """
    department = (department or "").strip()
    own = own_decision(decision)
    problems = []
    if not department:
        problems.append("department is empty")
    elif departments is not None and department not in departments:
        problems.append(f"unknown department {department!r}")
    elif department == own.department:
        problems.append(f"{department} is the routing's own department: a dispatch as suggested, not an override")
    if not (actor or "").strip():
        problems.append("actor is empty")
    if not (reason or "").strip():
        problems.append("reason is empty (改派 needs a written reason)")
    if problems:
        raise InvalidInput("routing override refused: " + "; ".join(problems), detail={"problems": problems})
    shown = department_label(department, departments.get(department) if isinstance(departments, Mapping) else None)
    explanation = TEXTS_ZH["override"].format(
        department=shown, actor=actor.strip(), when=_when(at), reason=reason.strip(), original=own.explanation
    )
    at_text = at.isoformat() if at else None
    entry = Override("override", department, actor.strip(), at_text, reason.strip(), explanation)
    return replace(
        own,
        department=department,
        queue="auto",
        source="override",
        rule_id=None,
        explanation=explanation,
        overridden_by=actor.strip(),
        override_reason=reason.strip(),
        original=own,
        overridden_at=at_text,
        overrides=(*past_overrides(decision), entry),
    )


#: What a dispatcher's 改派 without a written reason is recorded with.
DEFAULT_OVERRIDE_REASON = "调度员改派"


def dispatch_choice(
    decided: RoutingDecision,
    department: str,
    actor: str,
    at: datetime,
    reason: str | None = None,
    *,
    departments: Mapping[str, str] | Collection[str] | None = None,
) -> tuple[RoutingDecision, dict[str, Any]]:
    """One 派遣 of a case whose stored decision is ``decided``, by ``actor`` at ``at`` (local time) to
    ``department``: the decision to store and the step's basis for its log entry (``routing_basis``: ``routing``
    for a dispatch as suggested, ``override`` with the ``override_index`` of this dispatcher's choice otherwise),
    from which its 交办单 prints that dispatch's own 派遣依据. The routing's own decision stays the suggestion; a
    choice against it is a 改派 (``reason``, :data:`DEFAULT_OVERRIDE_REASON` without one), or 人工派遣 of a case the
    routing left to a person. The live 派遣 and the simulated history (:mod:`gisgrid.simulate`) both record it so."""
    own = own_decision(decided)
    if own.queue == "manual" or own_lost(own):
        # Left to a person, or stored (before overrides were kept flat) with two choices nested, the routing's own
        # lost with them: every dispatch is this dispatcher's choice.
        dispatched = manual_choice(decided, department, actor, at, reason, departments=departments)
    elif department != own.department:
        dispatched = override(
            decided, department, actor, reason or DEFAULT_OVERRIDE_REASON, departments=departments, at=at
        )
    else:
        dispatched = as_suggested(decided)
    if dispatched.overrides and dispatched.source in ("override", "dispatcher"):
        return dispatched, {"routing_basis": "override", "override_index": len(dispatched.overrides) - 1}
    return dispatched, {"routing_basis": "routing"}
