"""What a city's catalogue in force changes against the package's own (``gisgrid catalogue diff``).

The city's catalogue is its copy of ``data/`` (``GISGRID_CATALOGUE_DIR``) with the ``GISGRID_CATALOGUE_EXTRA``
files merged over it, read as the service reads it; the package's is the ``data/`` shipped with gisgrid
(:func:`gisgrid.settings.default_catalogue_dir`). Per kind, rows are compared by their key (a department's code, a
class's scheme and code, a time limit's class and disposal type or its node, a rule's rule_id):

* added — in force, not in the package's: with its values and the file:line that gave it;
* changed — in both, some values differ: one row per field, old → new, with the file:line that set the new one;
* removed — in the package's, not in force: a routing rule with the file:line of the extra row that removed it
  (department ``-``), a row the city's copy lacks with that copy's file.

Pure: :func:`diff_rows` takes both catalogues loaded; :func:`load_package_catalogue` reads the package's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gisgrid.catalogue import Catalogue, load_catalogue
from gisgrid.catalogue_view import rule_fields
from gisgrid.events import NODES, EventCatalogue, load_event_catalogue
from gisgrid.routing import RoutingRules, event_class_names, load_routing_rules
from gisgrid.settings import default_catalogue_dir

#: What ``gisgrid catalogue diff --kind`` takes, in the order a diff of every kind prints them.
KINDS = ("departments", "events", "limits", "components", "routing")
#: The kinds' headings, zh-CN first (as ``gisgrid catalogue show``'s).
HEADINGS = {
    "departments": ("部门", "departments"),
    "events": ("事项类别", "event classes"),
    "limits": ("时限", "time limits"),
    "components": ("部件类别", "component classes"),
    "routing": ("派遣规则", "routing rules"),
}
#: The columns of a diff table; a CSV has ``kind`` first.
COLUMNS = ("change", "key", "name", "field", "old", "new", "source")
CSV_COLUMNS = ("kind", *COLUMNS)
ADDED, CHANGED, REMOVED = "新增 added", "修改 changed", "删除 removed"


@dataclass(frozen=True)
class Entry:
    """One row of a kind as compared: its key, a name to read it by, its values (text) and where it came from."""

    key: str
    name: str
    values: dict[str, str]
    origin: tuple[Path, int] | None
    #: The value shown in the name column (left out of an added or removed row's summary); "" for none.
    name_field: str = "name"


@dataclass(frozen=True)
class Catalogues:
    """The three loaded parts of a catalogue and the ``data/`` folder they were read from."""

    components: Catalogue
    events: EventCatalogue
    rules: RoutingRules
    root: Path


def _number(x: float) -> str:
    return f"{x:g}"


def _flag(b: bool) -> str:
    return "true" if b else "false"


def entries(kind: str, cat: Catalogues) -> dict[str, Entry]:  # noqa: C901
    """The rows of one kind keyed as compared, in the catalogue's order."""
    found: list[Entry] = []
    if kind == "departments":
        c = cat.components
        for code, name in sorted(c.departments.items()):
            values = {
                "name": name,
                "kind": c.department_kinds.get(code, ""),
                "score_group": c.department_groups.get(code, ""),
            }
            found.append(Entry(code, name, values, c.department_origins.get(code)))
    elif kind == "events":
        e = cat.events
        for scheme, classes in e.by_scheme.items():
            for ev in sorted(classes.values(), key=lambda x: x.code):
                values = {
                    "big_code": ev.big_code,
                    "big_name": ev.big_name,
                    "name": ev.name,
                    "component_class": ev.component_class or "",
                    "default_dept": ev.default_dept,
                    "filing_condition": ev.filing_condition,
                    "closing_condition": ev.closing_condition,
                    "evidence": ev.evidence,
                    "duplicate_radius_m": _number(ev.duplicate_radius_m),
                    "duplicate_window_h": _number(ev.duplicate_window_h),
                    "hard": _flag(ev.hard),
                    "fallback_for": ev.fallback_for,
                }
                found.append(Entry(f"{scheme} {ev.code}", ev.name, values, e.class_origins.get((scheme, ev.code))))
    elif kind == "components":
        c = cat.components
        for scheme, component_classes in c.by_scheme.items():
            for cls in sorted(component_classes.values(), key=lambda x: x.code):
                values = {
                    "big_code": cls.big_code,
                    "big_name": cls.big_name,
                    "name": cls.name,
                    "default_dept": cls.default_dept,
                    "evidence": cls.evidence,
                }
                origin = c.class_origins.get((scheme, cls.code))
                found.append(Entry(f"{scheme} {cls.code}", cls.name, values, origin))
    elif kind == "limits":
        e = cat.events
        for (scheme, code), limits in sorted(e.limits_by_class.items()):
            of = e.by_scheme.get(scheme, {}).get(code)
            for limit in limits.values():
                values = {"limit": _number(limit.limit), "unit": limit.unit, "urgent": _flag(limit.urgent)}
                origin = e.limit_origins.get((scheme, code, limit.disposal_type))
                key = f"{scheme} {code} {limit.disposal_type}"
                found.append(Entry(key, of.name if of else "", values, origin, name_field=""))
        for node in NODES:
            if node in e.node_limits:
                amount, unit = e.node_limits[node]
                u_amount, u_unit = e.urgent_node_limits.get(node, (None, ""))
                values = {
                    "name": e.node_names.get(node, NODES[node]),
                    "limit": _number(amount),
                    "unit": unit,
                    "evidence": e.node_evidence.get(node, ""),
                    "urgent_limit": "" if u_amount is None else _number(u_amount),
                    "urgent_unit": u_unit,
                }
                found.append(Entry(node, values["name"], values, e.node_origins.get(node)))
        changes = {(ch.node, ch.effective_from): ch for ch in e.node_limit_changes}  # a later row replaces one
        for (node, day), ch in sorted(changes.items(), key=lambda x: (x[0][1], list(NODES).index(x[0][0]))):
            values = {
                "effective_from": day.isoformat(),
                "limit": _number(ch.limit[0]),
                "unit": ch.limit[1],
                "evidence": ch.evidence,
                "urgent_limit": _number(ch.urgent[0]) if ch.urgent else "",
                "urgent_unit": ch.urgent[1] if ch.urgent else "",
            }
            origin = e.node_change_origins.get((node, day))
            found.append(Entry(f"{node} {day.isoformat()}", NODES[node], values, origin, name_field=""))
    elif kind == "routing":
        for r in cat.rules.rules:
            values = {**rule_fields(r), "note": r.note}
            found.append(Entry(r.rule_id, r.note, values, (r.path, r.line) if r.line else None, name_field="note"))
    else:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    return {entry.key: entry for entry in found}


def _at(origin: tuple[Path, int] | None) -> str:
    return f"{origin[0]}:{origin[1]}" if origin else ""


def _summary(entry: Entry) -> str:
    """An added or removed row's values: ``field=value`` for each one set, but the name column's."""
    return "; ".join(f"{k}={v}" for k, v in entry.values.items() if v and k != entry.name_field)


def _dropped_at(entry: Entry, package_root: Path, city_root: Path) -> str:
    """The city's copy of the package file that held ``entry`` (a row it lacks has no line)."""
    if entry.origin is None:
        return ""
    try:
        return str(city_root / entry.origin[0].relative_to(package_root))
    except ValueError:
        return ""


def kind_diff(kind: str, package: Catalogues, city: Catalogues) -> list[dict[str, str]]:
    """The differences of one kind (:data:`COLUMNS`): added rows, then changed fields, then removed rows."""
    old, new = entries(kind, package), entries(kind, city)
    removed_by = {"routing": city.rules.removed_by, "departments": city.components.department_removed_by}.get(kind, {})

    def removed_at(e: Entry) -> str:  # the extra row that removed it (a rule, a department), or the copy lacking it
        return _at(removed_by[e.key]) if e.key in removed_by else _dropped_at(e, package.root, city.root)

    def row(
        change: str, e: Entry, name: str = "", old_v: str = "", new_v: str = "", source: str = ""
    ) -> dict[str, str]:
        return {"change": change, "key": e.key, "name": e.name, "field": name, "old": old_v, "new": new_v,
                "source": source}  # fmt: skip

    rows = [row(ADDED, e, new_v=_summary(e), source=_at(e.origin)) for key, e in new.items() if key not in old]
    for key, e in new.items():
        before = old.get(key)
        if before is None:
            continue
        for name, value in e.values.items():
            if before.values.get(name, "") != value:
                rows.append(row(CHANGED, e, name, before.values.get(name, ""), value, _at(e.origin)))
    rows += [row(REMOVED, e, old_v=_summary(e), source=removed_at(e)) for key, e in old.items() if key not in new]
    return rows


def diff_rows(package: Catalogues, city: Catalogues, kinds: Iterable[str] = KINDS) -> dict[str, list[dict[str, str]]]:
    """The differences of each kind (empty lists where there are none)."""
    return {kind: kind_diff(kind, package, city) for kind in kinds}


def counts(rows: Iterable[dict[str, str]]) -> dict[str, int]:
    """Rows added, changed (a row with several fields changed counts once) and removed."""
    seen: dict[str, set[str]] = {ADDED: set(), CHANGED: set(), REMOVED: set()}
    for r in rows:
        seen[r["change"]].add(r["key"])
    return {change: len(keys) for change, keys in seen.items()}


def heading(kind: str, rows: list[dict[str, str]]) -> str:
    """``# 时限 time limits: 新增 added 0, 修改 changed 1, 删除 removed 0`` (or 无差异 no differences)."""
    zh, en = HEADINGS[kind]
    if not rows:
        return f"# {zh} {en}: 无差异 no differences"
    return f"# {zh} {en}: " + ", ".join(f"{change} {n}" for change, n in counts(rows).items())


def no_difference(package_root: Path, kind: str | None = None) -> str:
    """What a diff without differences says (of one kind, or of every kind)."""
    if kind is None:
        return (
            f"无差异:现行目录与软件包自带目录 {package_root} 相同 / no differences: the catalogue in force is the "
            f"package's own ({package_root})"
        )
    zh, en = HEADINGS[kind]
    return (
        f"无差异:现行{zh}与软件包自带目录 {package_root} 相同 / no differences: the {en} in force are the "
        f"package's own ({package_root})"
    )


def load_package_catalogue() -> Catalogues:
    """The catalogue shipped with the package (``data/`` of the checkout or the wheel), no extra files."""
    root = default_catalogue_dir()
    components = load_catalogue(root)
    events = load_event_catalogue(root, components=components)
    rules = load_routing_rules(
        root,
        departments=components.departments,
        classes={scheme: set(events.by_scheme[scheme]) for scheme in events.by_scheme},
        class_names=event_class_names(events),
    )
    return Catalogues(components, events, rules, root)
