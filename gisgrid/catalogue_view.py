"""The merged catalogue as it is in force — departments, event classes, component classes and routing rules, each
row with the file and line it came from (``gisgrid catalogue show``) — and the rows that still send work to a
placeholder department of the shipped data (the warning of ``gisgrid db up`` and ``gisgrid serve``).

The shipped departments (``data/catalogue/departments.csv``) are fictitious placeholders ``9900000000000000NN``;
the shipped routing rules and event and component classes name them. For the demo district that is the point; a
city whose own district is loaded that still has rows naming them would send its cases (and its components'
主管部门) to a department that does not exist (review55 F2). *Not the demo* is decided on the stored boundaries:
some district is stored and it is not the demo's code ``419901`` (:data:`gisgrid.demo.DEMO_DISTRICT_CODE`) — the
one thing ``gisgrid demo load`` always stores and a city's boundaries never are (a fictitious GB/T 2260 code).
Pure: the caller reads the stored district codes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gisgrid.catalogue import Catalogue
from gisgrid.demo import DEMO_DISTRICT_CODE
from gisgrid.events import EventCatalogue
from gisgrid.routing import RoutingRule, RoutingRules

#: The shipped placeholder department codes: 18 characters, ``9900000000000000`` + 2 digits.
PLACEHOLDER_PREFIX = "9900000000000000"
#: What ``gisgrid catalogue show --kind`` takes, in the order a show of every kind prints them.
KINDS = ("departments", "events", "components", "routing")
#: The columns of each kind, ``source`` (file:line) last.
COLUMNS: dict[str, tuple[str, ...]] = {
    "departments": ("code", "name", "kind", "score_group", "placeholder", "source"),
    "events": ("scheme", "code", "name", "component_class", "default_dept", "dept_name", "placeholder", "source"),
    "components": ("scheme", "code", "name", "default_dept", "dept_name", "placeholder", "source"),
    "routing": (
        "rule_id", "priority", "scheme", "class_prefix", "area_prefix", "tier_grid", "time_from", "time_to",
        "weekdays", "department", "dept_name", "placeholder", "note", "source",
    ),
}  # fmt: skip
#: The kinds' headings in a table of every kind.
HEADINGS = {
    "departments": "部门 departments",
    "events": "事项类别 event classes",
    "components": "部件类别 component classes",
    "routing": "派遣规则 routing rules",
}


def is_placeholder(code: str) -> bool:
    """Whether a department code is one of the shipped fictitious ones (``9900000000000000NN``)."""
    return len(code) == 18 and code.startswith(PLACEHOLDER_PREFIX)


def _origin(origin: tuple[Path, int] | None) -> str:
    return f"{origin[0]}:{origin[1]}" if origin else ""


def catalogue_rows(
    kind: str, components: Catalogue, events: EventCatalogue, rules: RoutingRules
) -> list[dict[str, str]]:
    """The rows in force of one kind (:data:`COLUMNS`), each with its ``source`` (file:line), in code order (rules
    in the order they are tried: most specific first)."""
    names = components.departments
    mark = {True: "yes", False: ""}
    if kind == "departments":
        return [
            {
                "code": code,
                "name": name,
                "kind": components.department_kinds.get(code, ""),
                "score_group": components.department_groups.get(code, ""),
                "placeholder": mark[is_placeholder(code)],
                "source": _origin(components.department_origins.get(code)),
            }
            for code, name in sorted(names.items())
        ]
    if kind == "events":
        return [
            {
                "scheme": scheme,
                "code": cls.code,
                "name": cls.name,
                "component_class": cls.component_class or "",
                "default_dept": cls.default_dept,
                "dept_name": names.get(cls.default_dept, ""),
                "placeholder": mark[is_placeholder(cls.default_dept)],
                "source": _origin(events.class_origins.get((scheme, cls.code))),
            }
            for scheme, classes in events.by_scheme.items()
            for cls in sorted(classes.values(), key=lambda c: c.code)
        ]
    if kind == "components":
        return [
            {
                "scheme": scheme,
                "code": cls.code,
                "name": cls.name,
                "default_dept": cls.default_dept,
                "dept_name": names.get(cls.default_dept, ""),
                "placeholder": mark[is_placeholder(cls.default_dept)],
                "source": _origin(components.class_origins.get((scheme, cls.code))),
            }
            for scheme, classes in components.by_scheme.items()
            for cls in sorted(classes.values(), key=lambda c: c.code)
        ]
    if kind == "routing":
        return [
            {
                "rule_id": r.rule_id,
                **rule_fields(r),
                "dept_name": names.get(r.department, ""),
                "placeholder": mark[is_placeholder(r.department)],
                "note": r.note,
                "source": r.source,
            }
            for r in rules.rules
        ]
    raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")


def rule_fields(r: RoutingRule) -> dict[str, str]:
    """A routing rule's fields as its file writes them (priority … department), for `catalogue show` and `diff`."""
    return {
        "priority": str(r.priority),
        "scheme": r.scheme,
        "class_prefix": r.class_prefix,
        "area_prefix": r.area_prefix,
        "tier_grid": r.tier_grid,
        "time_from": r.time_from.strftime("%H:%M") if r.time_from else "",
        "time_to": r.time_to.strftime("%H:%M") if r.time_to else "",
        "weekdays": "".join(str(d) for d in sorted(r.weekdays)),
        "department": r.department,
    }


def _width(text: str) -> int:
    """Columns a terminal gives ``text``: 2 for a wide (CJK) character."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def table_text(columns: Sequence[str], rows: Iterable[dict[str, str]]) -> str:
    """Rows as an aligned text table (two spaces between columns; CJK characters count two), header first."""
    rows = list(rows)
    widths = [max([_width(c), *(_width(r[c]) for r in rows)]) for c in columns]
    lines = [
        "  ".join(value + " " * (w - _width(value)) for value, w in zip(values, widths, strict=True)).rstrip()
        for values in [list(columns), *([r[c] for c in columns] for r in rows)]
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class PlaceholderUse:
    """A row in force that names a placeholder department: its file, line, what it is (``routing rule R001``)."""

    path: str
    line: int
    what: str


def placeholder_uses(components: Catalogue, events: EventCatalogue, rules: RoutingRules) -> list[PlaceholderUse]:
    """Every routing rule, event class and component class in force whose department is a placeholder."""
    uses: list[PlaceholderUse] = []
    for r in rules.rules:
        if is_placeholder(r.department):
            uses.append(PlaceholderUse(str(r.path), r.line, f"routing rule {r.rule_id}"))
    for label, catalogue in (("event", events), ("component", components)):
        for scheme, classes in catalogue.by_scheme.items():
            for cls in classes.values():
                if is_placeholder(cls.default_dept):
                    path, line = catalogue.class_origins.get((scheme, cls.code), (Path(""), 0))
                    uses.append(PlaceholderUse(str(path), line, f"{label} class {cls.code}"))
    return uses


def _line_ranges(lines: Iterable[int]) -> str:
    """``2-18, 21, 23-24``: the sorted lines, runs joined."""
    runs: list[list[int]] = []
    for n in sorted(set(lines)):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def placeholder_warning(districts: Sequence[str], uses: Sequence[PlaceholderUse]) -> str | None:
    """The one warning about rows naming placeholder departments while a city's own district is loaded (some
    district stored, none of them the demo's); None for the demo, with nothing stored or nothing to say. Each
    file is named once with its lines."""
    if not uses or not districts or all(d == DEMO_DISTRICT_CODE for d in districts):
        return None
    by_file: dict[str, list[PlaceholderUse]] = {}
    for use in uses:
        by_file.setdefault(use.path, []).append(use)
    listed = "\n".join(
        f"  {path}: line {_line_ranges(u.line for u in found)} ({len(found)} row(s))" for path, found in by_file.items()
    )
    return (
        f"占位部门:已载入辖区 {', '.join(districts)}(不是演示辖区 {DEMO_DISTRICT_CODE}),但 {len(uses)} 行目录仍指向"
        f"虚构的占位部门(9900000000000000NN),案件会派往不存在的部门 / the loaded district "
        f"{', '.join(districts)} is not the demo's ({DEMO_DISTRICT_CODE}), yet {len(uses)} routing rule(s) and "
        "event/component class default(s) in force name a fictitious placeholder department "
        "(9900000000000000NN): cases would be sent to it. Override them with the city's departments "
        "(GISGRID_CATALOGUE_EXTRA; an event class 01-05 has its own default_dept beside its component class'); "
        "`gisgrid catalogue show --kind routing|events|components` lists each row with its file:line:\n" + listed
    )
