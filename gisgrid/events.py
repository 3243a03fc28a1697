"""Event class catalogue (管理事项 / 事件分类) with disposal and workflow-node time limits, from ``data/catalogue/``.

Files (see ``data/catalogue/EVENTS.md``):

* ``event_classes.csv`` — ``scheme,code,big_code,big_name,name,component_class,default_dept,filing_condition,
  closing_condition,evidence,duplicate_radius_m,duplicate_window_h``. Schemes as for components: ``gbt47678``
  (GB/T 47678.5-2026 管理事项, 5 digits; 大类 01–05 are "<部件>异常" tied to the component class with the same
  code) and ``cjt214`` (CJ/T 214 era events, 4 digits).
* ``event_time_limits.csv`` — ``scheme,code,disposal_type,limit,unit,urgent``: 处置时限 per class and disposal
  type (e.g. 私搭乱建 停工/处罚/拆除); ``unit`` is one of :data:`gisgrid.calendar.UNITS`.
* ``node_time_limits.csv`` — ``node,name,limit,unit,evidence[,urgent_limit,urgent_unit,effective_from]``: time
  limit of each workflow node (受理, 核实, …), and for an urgent case (a disposal type marked urgent) where it
  differs — an urgent case's nodes usually run round the clock (``calendar_hours``). A row with
  ``effective_from`` (YYYY-MM-DD) is a change of the node's limits from 00:00 China time of that day: a node opened
  earlier keeps the limits it opened under, in its deadline and in the evaluation (:meth:`EventCatalogue.
  node_limits_at`), so a city that shortens a limit does not judge last year's cases by it.

A city overrides or extends any row with extra CSV files (``load_event_catalogue(..., extra=[...])``), applied in
order after the base files and keyed like them. Each file's kind is decided by its header
(:func:`gisgrid.cityfiles.file_kind`; files of other kinds, such as departments, are left to their loaders): a
node file (key ``node``), a disposal-limit file (key scheme+code+disposal_type) or a classes file (key scheme+code;
an override replaces the whole row). All classes files are read before any limits file, so an extra limit may
refer to an extra class whatever the order of ``extra``.

Departments and component classes are checked against the component catalogue (:mod:`gisgrid.catalogue`); pass
the city's loaded ``Catalogue`` when it has extra departments. Every problem is reported at once in one
``InvalidInput`` whose ``detail`` lists ``{"file", "row", "field", "value", "reason"}`` items (as the component
catalogue does; rows are line numbers, the header is line 1).
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gisgrid import cityfiles
from gisgrid.calendar import (
    MAX_EXTENSION_DAYS,
    MAX_EXTENSION_WORKING_DAYS,
    UNITS,
    Unit,
    is_unit,
    load_city_calendar,
    longest,
)
from gisgrid.catalogue import (
    CODE_DIGITS,
    EVIDENCE,
    SCHEMES,
    Catalogue,
    CatalogueProblems,
    check_duplicates,
    check_scheme,
    load_catalogue,
    missing_department_reason,
    read_rows,
)
from gisgrid.errors import InvalidInput
from gisgrid.settings import Settings, catalogue_folder

CLASS_COLUMNS = (
    "scheme",
    "code",
    "big_code",
    "big_name",
    "name",
    "component_class",
    "default_dept",
    "filing_condition",
    "closing_condition",
    "evidence",
    "duplicate_radius_m",
    "duplicate_window_h",
)
#: Optional column of a classes file: ``hard`` (true/false) — a 难点问题 class (enforcement, confrontation: 私搭乱建,
#: 占道经营 …) that a selective patrol tends to leave out (:func:`gisgrid.risks.selective_reporting`). Empty: false for
#: a new class, the overridden row's value for a city's row that replaces one.
CLASS_OPTIONAL_COLUMNS = ("hard", "fallback_for")
LIMIT_COLUMNS = ("scheme", "code", "disposal_type", "limit", "unit", "urgent")
NODE_COLUMNS = ("node", "name", "limit", "unit", "evidence")
#: A node's limit for an urgent case (急要件, a disposal type marked urgent), when it differs: optional columns.
NODE_URGENT_COLUMNS = ("urgent_limit", "urgent_unit")
#: Optional columns of a node file: the urgent limit, and ``effective_from`` (YYYY-MM-DD) — a row with it changes
#: the node's limits from 00:00 (China time) of that day: a node opened earlier keeps the limits it opened under.
NODE_OPTIONAL_COLUMNS = (*NODE_URGENT_COLUMNS, "effective_from")

CLASSES_FILE = "event_classes.csv"
LIMITS_FILE = "event_time_limits.csv"
NODES_FILE = "node_time_limits.csv"

#: Workflow nodes with a time limit (the disposal node 处置 takes its limit from the event class instead).
NODES: dict[str, str] = {
    "accept": "受理",
    "verify": "核实",
    "file": "立案",
    "dispatch": "派遣",
    "check": "核查",
    "close": "结案",
}
#: The disposal node: its limit comes from the event class, its name is fixed.
DISPOSAL_NODE = ("disposal", "处置")
#: Disposal type used when the dispatcher names none.
DEFAULT_DISPOSAL = "默认"
#: GB/T 47678.5 big classes that mirror the component classes ("<部件>异常", same code).
COMPONENT_BIG_CODES = frozenset({"01", "02", "03", "04", "05"})

_TRUE = frozenset({"true", "1", "yes", "y", "是"})
_FALSE = frozenset({"false", "0", "no", "n", "否", ""})
_DISTRICT = re.compile(r"[0-9]{6}")


@dataclass(frozen=True)
class EventClass:
    scheme: str
    code: str
    big_code: str
    big_name: str
    name: str
    #: Component class code (same scheme) this event is about, or None for a pure event.
    component_class: str | None
    default_dept: str
    filing_condition: str  # 立案条件
    closing_condition: str  # 结案条件
    evidence: str
    #: A new report within this radius and window of an open case of the same class is a duplicate candidate.
    duplicate_radius_m: float
    duplicate_window_h: float
    #: 难点问题: a class a selective patrol tends to leave out (the ``hard`` column).
    hard: bool = False
    #: The generic word of a family of classes (井盖 for 供水/通信/不明井盖异常) when this is the family's class for an
    #: owner not known (不明井盖异常): the field page's search lists it first for a word that finds the family only
    #: through that word (污水井盖, 窨井, 井盖). "" for any other class (the ``fallback_for`` column).
    fallback_for: str = ""


@dataclass(frozen=True)
class DisposalLimit:
    disposal_type: str
    limit: float
    unit: Unit
    urgent: bool  # 急要件: the case is flagged urgent when dispatched with this type


@dataclass(frozen=True)
class NodeLimitChange:
    """A node's limits from a day on (a node file's row with ``effective_from``)."""

    effective_from: dt.date
    node: str
    limit: tuple[float, Unit]
    urgent: tuple[float, Unit] | None  # None: the node's own limit applies to urgent cases too
    evidence: str = ""  # the row's evidence (C/I/U/L): what ``catalogue diff`` compares, not what counts time


#: One set of node limits and the day it starts (None: from the beginning): node → limit, node → urgent limit.
LimitVersion = tuple[dt.date | None, dict[str, tuple[float, Unit]], dict[str, tuple[float, Unit]]]


@dataclass
class EventCatalogue:
    by_scheme: dict[str, dict[str, EventClass]]
    limits_by_class: dict[tuple[str, str], dict[str, DisposalLimit]]
    node_limits: dict[str, tuple[float, Unit]]  # before any dated change (node_limits_at: those of a day)
    node_names: dict[str, str] = field(default_factory=dict)
    #: Each node limit's evidence (C/I/U/L, as a class's): its last undated row's.
    node_evidence: dict[str, str] = field(default_factory=dict)
    urgent_node_limits: dict[str, tuple[float, Unit]] = field(default_factory=dict)
    sources: list[Path] = field(default_factory=list)
    node_limit_changes: list[NodeLimitChange] = field(default_factory=list)  # by day, in file order within one
    #: Where each class in force came from (file, line; the header is line 1): its last row.
    class_origins: dict[tuple[str, str], tuple[Path, int]] = field(default_factory=dict)
    #: Where each time limit in force came from, as ``class_origins``: disposal limits by (scheme, code,
    #: disposal_type), node limits by node, dated node changes by (node, effective_from).
    limit_origins: dict[tuple[str, str, str], tuple[Path, int]] = field(default_factory=dict)
    node_origins: dict[str, tuple[Path, int]] = field(default_factory=dict)
    node_change_origins: dict[tuple[str, dt.date], tuple[Path, int]] = field(default_factory=dict)
    #: gbt47678 component classes (code → name) of the component catalogue it was checked against, and the base
    #: event classes file: to say what a report under a component class with no event class lacks.
    component_class_names: dict[str, str] = field(default_factory=dict)
    classes_file: Path | None = None
    _by_component: dict[str, EventClass] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # Prefer the class whose code equals the component code (the standard's mirror) over a city's extra one.
        for cls in self.by_scheme.get("gbt47678", {}).values():
            if cls.component_class and (
                cls.component_class not in self._by_component or cls.code == cls.component_class
            ):
                self._by_component[cls.component_class] = cls

    def limit_versions(self) -> list[LimitVersion]:
        """The node limits from the beginning, then from each day a dated change starts (full sets)."""
        versions: list[LimitVersion] = [(None, dict(self.node_limits), dict(self.urgent_node_limits))]
        for change in sorted(self.node_limit_changes, key=lambda c: c.effective_from):
            if versions[-1][0] != change.effective_from:
                versions.append((change.effective_from, dict(versions[-1][1]), dict(versions[-1][2])))
            versions[-1][1][change.node] = change.limit
            if change.urgent is None:
                versions[-1][2].pop(change.node, None)
            else:
                versions[-1][2][change.node] = change.urgent
        return versions

    def node_limits_at(self, day: dt.date) -> tuple[dict[str, tuple[float, Unit]], dict[str, tuple[float, Unit]]]:
        """(node limits, urgent node limits) in force on ``day`` (a China-time date)."""
        if not self.node_limit_changes:  # the usual catalogue: no dated change, nothing to choose
            return self.node_limits, self.urgent_node_limits
        days, versions = self._dated_versions
        chosen = versions[bisect.bisect_right(days, day)]  # the last version from on or before ``day``
        return chosen[1], chosen[2]

    @functools.cached_property
    def _dated_versions(self) -> tuple[list[dt.date], list[LimitVersion]]:
        """:meth:`limit_versions` made once (the catalogue is read once, at start), with the days they start from
        (of the versions after the first): every node opened asks for its day's limits."""
        versions = self.limit_versions()
        return [v[0] for v in versions[1:] if v[0] is not None], versions

    def classes(self, scheme: str) -> dict[str, EventClass]:
        """Event classes of ``scheme`` keyed by code (InvalidInput for an unknown scheme)."""
        check_scheme(scheme)
        return self.by_scheme.get(scheme, {})

    def get(self, scheme: str, code: str) -> EventClass:
        """One class; InvalidInput when the scheme or code is unknown."""
        try:
            return self.classes(scheme)[code]
        except KeyError:
            raise InvalidInput(
                f"unknown {scheme} event class {code!r}", detail={"scheme": scheme, "code": code}
            ) from None

    def no_event_class_note(self, scheme: str, code: str) -> str:
        """For a gbt47678 ``code`` that is no event class but is a component class (e.g. a city's extension class
        21001 added to the component catalogue only): what reporting under it needs and where, to follow the
        refusal (review55 F9); "" otherwise. Not for cjt214, whose event codes are not its component codes."""
        name = self.component_class_names.get(code)
        if scheme != "gbt47678" or name is None or code in self.by_scheme.get(scheme, {}):
            return ""
        header = f"the header of {self.classes_file}" if self.classes_file else "the event classes header"
        return (
            f"; component class {code} ({name}) exists but has no event class, which a report needs: add a row "
            f"for it (code {code}, component_class {code}) to an event classes file, a GISGRID_CATALOGUE_EXTRA file "
            f"with {header}, and its 默认 time limit (data/catalogue/EVENTS.md) / 部件类别 {code} 存在,但无对应"
            "事项类别:请在事项类别文件中加一行"
        )

    def limits(self, scheme: str, code: str) -> list[DisposalLimit]:
        """Disposal limits of a class in file order (at least one for every class)."""
        self.get(scheme, code)
        return list(self.limits_by_class[(scheme, code)].values())

    def limit(self, scheme: str, code: str, disposal_type: str | None = None) -> DisposalLimit:
        """The named disposal limit; with no name the ``默认`` one, or the first listed when there is none."""
        self.get(scheme, code)
        limits = self.limits_by_class[(scheme, code)]
        if disposal_type is None:
            return limits.get(DEFAULT_DISPOSAL) or next(iter(limits.values()))
        try:
            return limits[disposal_type]
        except KeyError:
            raise InvalidInput(
                f"{scheme} event class {code} has no disposal type {disposal_type!r}; expected one of "
                + ", ".join(limits),
                detail={"scheme": scheme, "code": code, "disposal_type": disposal_type},
            ) from None

    @property
    def hard_classes(self) -> dict[tuple[str, str], str]:
        """(scheme, code) → name of every class marked ``hard`` (the 选择性上报 risk's 难点类别), in file order."""
        return {(c.scheme, c.code): c.name for classes in self.by_scheme.values() for c in classes.values() if c.hard}

    def for_component_class(self, gbt_code: str) -> EventClass | None:
        """The GB/T 47678.5 event class "<部件>异常" of a component class, or None."""
        return self._by_component.get(gbt_code)


#: The scheme whose class codes make the 11-digit 事项代码 (GB/T 47678.5). A CJ/T 214 event class has none.
MATTER_SCHEME = "gbt47678"


def matter_code_of(district: str, ev: EventClass) -> str | None:
    """事项代码 of a case of class ``ev`` in ``district``, None for a class of another scheme."""
    return matter_code(district, ev.code) if ev.scheme == MATTER_SCHEME else None


def matter_code(district: str, code: str) -> str:
    """事项代码 of a case: 6-digit 行政区划代码 + 5-digit GB/T 47678.5 event class code = 11 digits."""
    if not _DISTRICT.fullmatch(district):
        raise InvalidInput(f"district code {district!r} must be 6 digits", detail={"district": district})
    if not (code.isascii() and code.isdigit() and len(code) == CODE_DIGITS["gbt47678"]):
        raise InvalidInput(f"event class code {code!r} must be 5 digits (gbt47678)", detail={"code": code})
    return district + code


def split_matter_code(value: str) -> tuple[str, str]:
    """(district, event class code) of an 11-digit 事项代码."""
    if not (value.isascii() and value.isdigit() and len(value) == 11):
        raise InvalidInput(f"事项代码 {value!r} must be 11 digits", detail={"matter_code": value})
    return value[:6], value[6:]


def _number(
    path: Path, line: int, field_name: str, value: str, problems: CatalogueProblems, *, positive: bool
) -> float | None:
    try:
        number = float(value)
    except ValueError:
        problems.add(path, line, field_name, value, "not a number")
        return None
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        problems.add(path, line, field_name, value, "must be a positive number" if positive else "must be ≥ 0")
        return None
    return number


def _too_long(
    path: Path,
    line: int,
    column: str,
    row: dict[str, str],
    amount: float,
    unit: Unit,
    hours_per_day: float,
    problems: CatalogueProblems,
) -> bool:
    """A limit longer than the longest extension the service approves (MAX_EXTENSION_DAYS, in the limit's unit): a
    typing slip (minutes as hours) whose deadlines would fall years ahead, or past any year the calendar knows."""
    bound = longest(unit, hours_per_day)
    if amount <= bound:
        return False
    how = {
        "calendar_hours": f"{MAX_EXTENSION_DAYS} × 24",
        "working_days": f"the working days that fit in {MAX_EXTENSION_DAYS} days",
        "working_hours": f"{MAX_EXTENSION_WORKING_DAYS} working days × {hours_per_day:g} working hours a day",
    }[unit]
    problems.add(
        path,
        line,
        column,
        row[column],
        f"longer than the {MAX_EXTENSION_DAYS} days an extension may add: at most {bound:g} {unit} ({how})",
    )
    return True


def _unit(path: Path, line: int, value: str, problems: CatalogueProblems, *, column: str = "unit") -> Unit | None:
    if not is_unit(value):
        problems.add(path, line, column, value, f"unknown unit; expected one of {', '.join(UNITS)}")
        return None
    return value


def _load_classes(  # noqa: C901
    path: Path,
    by_scheme: dict[str, dict[str, EventClass]],
    components: Catalogue,
    problems: CatalogueProblems,
    *,
    local: bool,
) -> list[tuple[Path, int, EventClass]]:
    rows = read_rows(path, CLASS_COLUMNS, problems, optional=CLASS_OPTIONAL_COLUMNS)
    check_duplicates(path, ((line, (r["scheme"], r["code"]), "code") for line, r in rows), problems)
    loaded: list[tuple[Path, int, EventClass]] = []
    for line, r in rows:
        scheme, code = r["scheme"], r["code"]
        if scheme not in SCHEMES:
            problems.add(path, line, "scheme", scheme, f"unknown scheme; expected one of {', '.join(SCHEMES)}")
            continue
        digits = CODE_DIGITS[scheme]
        ok = True
        if not (code.isascii() and code.isdigit() and len(code) == digits):
            problems.add(path, line, "code", code, f"a {scheme} class code is {digits} digits")
            ok = False
        elif r["big_code"] != code[:2]:
            problems.add(path, line, "big_code", r["big_code"], f"big_code must be the first 2 digits ({code[:2]})")
            ok = False
        for name_field in ("name", "big_name", "filing_condition", "closing_condition"):
            if not r[name_field]:
                problems.add(path, line, name_field, "", f"{name_field} is empty")
                ok = False
        component = r["component_class"] or None
        if component is not None and component not in components.classes(scheme):
            problems.add(path, line, "component_class", component, f"not a {scheme} component class in the catalogue")
            ok = False
        elif scheme == "gbt47678" and code[:2] in COMPONENT_BIG_CODES and component != code:
            # The standard mirrors every component class as "<部件>异常" under the same code.
            problems.add(
                path, line, "component_class", r["component_class"], f"gbt47678 大类 01–05 events must name {code}"
            )
            ok = False
        if not r["default_dept"] and not local:
            problems.add(path, line, "default_dept", "", "default_dept is empty (allowed in extra files only)")
            ok = False
        evidence = r["evidence"] or ("L" if local else "")
        if evidence not in EVIDENCE:
            problems.add(path, line, "evidence", r["evidence"], f"evidence must be one of {', '.join(EVIDENCE)}")
            ok = False
        radius = _number(path, line, "duplicate_radius_m", r["duplicate_radius_m"], problems, positive=False)
        window = _number(path, line, "duplicate_window_h", r["duplicate_window_h"], problems, positive=False)
        hard_text, hard = r["hard"].lower(), False
        if hard_text not in _TRUE | _FALSE:
            problems.add(path, line, "hard", r["hard"], "hard must be true or false")
            ok = False
        elif hard_text:
            hard = hard_text in _TRUE
        else:  # a city's row replacing a class (e.g. renaming it) keeps its mark unless it says otherwise
            replaced = by_scheme[scheme].get(code)
            hard = replaced is not None and replaced.hard
        fallback = r["fallback_for"]
        replaced_class = by_scheme[scheme].get(code)
        if not fallback and replaced_class is not None and replaced_class.fallback_for in r["name"]:
            fallback = replaced_class.fallback_for  # a city's row replacing a class keeps its mark, as for hard
        if fallback and fallback not in r["name"]:
            problems.add(
                path, line, "fallback_for", fallback, f"fallback_for must be a word of the class's name ({r['name']})"
            )
            ok = False
        if ok and radius is not None and window is not None:
            cls = EventClass(
                scheme,
                code,
                r["big_code"],
                r["big_name"],
                r["name"],
                component,
                r["default_dept"],
                r["filing_condition"],
                r["closing_condition"],
                evidence,
                radius,
                window,
                hard,
                fallback,
            )
            by_scheme[scheme][code] = cls
            loaded.append((path, line, cls))
    return loaded


def _load_limits(
    path: Path,
    by_scheme: dict[str, dict[str, EventClass]],
    limits: dict[tuple[str, str], dict[str, DisposalLimit]],
    problems: CatalogueProblems,
    hours_per_day: float,
    origins: dict[tuple[str, str, str], tuple[Path, int]],
) -> None:
    rows = read_rows(path, LIMIT_COLUMNS, problems)
    keys = ((line, (r["scheme"], r["code"], r["disposal_type"]), "disposal_type") for line, r in rows)
    check_duplicates(path, keys, problems)
    for line, r in rows:
        scheme, code = r["scheme"], r["code"]
        ok = True
        if scheme not in SCHEMES:
            problems.add(path, line, "scheme", scheme, f"unknown scheme; expected one of {', '.join(SCHEMES)}")
            ok = False
        elif code not in by_scheme[scheme]:
            problems.add(path, line, "code", code, f"not a {scheme} event class (in any classes file)")
            ok = False
        if not r["disposal_type"]:
            problems.add(path, line, "disposal_type", "", "disposal_type is empty (use 默认 for the only one)")
            ok = False
        amount = _number(path, line, "limit", r["limit"], problems, positive=True)
        unit = _unit(path, line, r["unit"], problems)
        urgent_text = r["urgent"].lower()
        if urgent_text not in _TRUE | _FALSE:
            problems.add(path, line, "urgent", r["urgent"], "urgent must be true or false")
            ok = False
        if (
            amount is not None
            and unit is not None
            and _too_long(path, line, "limit", r, amount, unit, hours_per_day, problems)
        ):
            ok = False
        if ok and amount is not None and unit is not None:
            limit = DisposalLimit(r["disposal_type"], amount, unit, urgent_text in _TRUE)
            limits.setdefault((scheme, code), {})[limit.disposal_type] = limit
            origins[(scheme, code, limit.disposal_type)] = (path, line)


def _load_nodes(
    path: Path,
    nodes: dict[str, tuple[float, Unit]],
    names: dict[str, str],
    evidences: dict[str, str],
    urgent_nodes: dict[str, tuple[float, Unit]],
    changes: list[NodeLimitChange],
    problems: CatalogueProblems,
    hours_per_day: float,
    origins: dict[str, tuple[Path, int]],
    change_origins: dict[tuple[str, dt.date], tuple[Path, int]],
    *,
    local: bool,
) -> None:
    rows = read_rows(path, NODE_COLUMNS, problems, optional=NODE_OPTIONAL_COLUMNS)
    check_duplicates(path, ((line, (r["node"], r["effective_from"]), "node") for line, r in rows), problems)
    for line, r in rows:
        ok = True
        effective_from = None
        if r["effective_from"]:
            try:
                effective_from = dt.date.fromisoformat(r["effective_from"])
            except ValueError:
                problems.add(
                    path, line, "effective_from", r["effective_from"], "not a date (YYYY-MM-DD, e.g. 2027-01-01)"
                )
                ok = False
            else:
                if not 1900 <= effective_from.year <= 2100:
                    problems.add(path, line, "effective_from", r["effective_from"], "outside the years 1900–2100")
                    ok = False
        if r["node"] not in NODES:
            problems.add(path, line, "node", r["node"], f"unknown workflow node; expected one of {', '.join(NODES)}")
            ok = False
        evidence = r["evidence"] or ("L" if local else "")
        if evidence not in EVIDENCE:
            problems.add(path, line, "evidence", r["evidence"], f"evidence must be one of {', '.join(EVIDENCE)}")
            ok = False
        amount = _number(path, line, "limit", r["limit"], problems, positive=True)
        unit = _unit(path, line, r["unit"], problems)
        urgent: tuple[float, Unit] | None = None
        if r["urgent_limit"] or r["urgent_unit"]:
            u_amount = _number(path, line, "urgent_limit", r["urgent_limit"], problems, positive=True)
            u_unit = _unit(path, line, r["urgent_unit"], problems, column="urgent_unit")
            too_long = (
                u_amount is not None
                and u_unit is not None
                and _too_long(path, line, "urgent_limit", r, u_amount, u_unit, hours_per_day, problems)
            )
            if u_amount is None or u_unit is None or too_long:
                ok = False
            else:
                urgent = (u_amount, u_unit)
        if (
            amount is not None
            and unit is not None
            and _too_long(path, line, "limit", r, amount, unit, hours_per_day, problems)
        ):
            ok = False
        if ok and amount is not None and unit is not None and effective_from is not None:
            changes.append(NodeLimitChange(effective_from, r["node"], (amount, unit), urgent, evidence))
            change_origins[(r["node"], effective_from)] = (path, line)
        elif ok and amount is not None and unit is not None:
            nodes[r["node"]] = (amount, unit)
            origins[r["node"]] = (path, line)
            names[r["node"]] = r["name"] or NODES[r["node"]]
            evidences[r["node"]] = evidence
            if urgent is not None:
                urgent_nodes[r["node"]] = urgent
            else:
                urgent_nodes.pop(r["node"], None)  # an override without an urgent limit: the node's own applies


def _events_dir(settings_or_dir: Settings | Path | str) -> Path:
    return catalogue_folder(settings_or_dir, CLASSES_FILE)


def load_event_catalogue(
    settings_or_dir: Settings | Path | str,
    extra: Sequence[Path | str] = (),
    *,
    components: Catalogue | None = None,
    hours_per_day: float | None = None,
) -> EventCatalogue:
    """Read the base event files, then each ``extra`` CSV in order (see the module docstring).

    ``components`` is the component catalogue used to check departments and component classes; by default the
    base one in the same folder. ``hours_per_day`` (working hours of a working day) bounds the ``working_hours``
    limits; by default that of the settings' ``working_hours``, or of the default working hours.
    """
    if hours_per_day is None:
        hours = settings_or_dir.working_hours if isinstance(settings_or_dir, Settings) else None
        hours_per_day = load_city_calendar(None, hours).hours.hours_per_day
    base = _events_dir(settings_or_dir)
    if components is None:
        components = load_catalogue(base)
    node_files = [(base / NODES_FILE, False)] + [(p, True) for p in cityfiles.extra_files(extra, "node_time_limits")]
    limit_files = [base / LIMITS_FILE, *cityfiles.extra_files(extra, "event_time_limits")]
    class_files = [(base / CLASSES_FILE, False)] + [(p, True) for p in cityfiles.extra_files(extra, "event_classes")]

    problems = CatalogueProblems()
    by_scheme: dict[str, dict[str, EventClass]] = {s: {} for s in SCHEMES}
    loaded: list[tuple[Path, int, EventClass]] = []
    for path, local in class_files:
        loaded += _load_classes(path, by_scheme, components, problems, local=local)
    final_at: dict[tuple[str, str], tuple[Path, int]] = {}
    # Checked after all files: only the final (possibly overriding) row of a class counts.
    for path, line, cls in loaded:
        if by_scheme[cls.scheme].get(cls.code) is not cls:
            continue
        final_at[(cls.scheme, cls.code)] = (path, line)
        if cls.default_dept and cls.default_dept not in components.departments:
            reason = missing_department_reason(cls.default_dept, components.department_removed_by)
            problems.add(path, line, "default_dept", cls.default_dept, reason)

    limits: dict[tuple[str, str], dict[str, DisposalLimit]] = {}
    limit_origins: dict[tuple[str, str, str], tuple[Path, int]] = {}
    for path in limit_files:
        _load_limits(path, by_scheme, limits, problems, hours_per_day, limit_origins)
    for key, (path, line) in final_at.items():
        if not limits.get(key):
            # A case of this class could not be given a deadline.
            problems.add(path, line, "code", key[1], "no disposal time limit in any time-limits file (add 默认)")

    nodes: dict[str, tuple[float, Unit]] = {}
    names: dict[str, str] = {}
    evidences: dict[str, str] = {}
    urgent_nodes: dict[str, tuple[float, Unit]] = {}
    changes: list[NodeLimitChange] = []
    node_origins: dict[str, tuple[Path, int]] = {}
    change_origins: dict[tuple[str, dt.date], tuple[Path, int]] = {}
    for path, local in node_files:
        _load_nodes(
            path, nodes, names, evidences, urgent_nodes, changes, problems, hours_per_day, node_origins, change_origins,
            local=local,
        )  # fmt: skip
    missing = [n for n in NODES if n not in nodes]
    if missing and nodes:
        problems.add(base / NODES_FILE, None, "node", "", f"no time limit for node(s) {', '.join(missing)}")
    problems.raise_if_any()
    return EventCatalogue(
        by_scheme=by_scheme,
        limits_by_class=limits,
        node_limits=nodes,
        urgent_node_limits=urgent_nodes,
        node_names=names,
        node_evidence=evidences,
        node_limit_changes=changes,
        sources=[p for p, _ in class_files] + limit_files + [p for p, _ in node_files],
        class_origins=final_at,
        limit_origins=limit_origins,
        node_origins=node_origins,
        node_change_origins=change_origins,
        component_class_names={code: c.name for code, c in components.classes("gbt47678").items()},
        classes_file=base / CLASSES_FILE,
    )
