"""What the catalogue and rules files cannot tell alone: checked against the stored data when the service starts
(``gisgrid serve``) and when the database is readied (``gisgrid db up``).

* An event class, or a disposal type, that open cases use and the catalogue no longer has: every action on those
  cases would be refused (``unknown_class``) and the evaluation would find no limit for them. ``gisgrid serve``
  refuses to start (the record of open cases is kept workable); ``gisgrid db up`` warns.
* A routing rule whose ``area_prefix`` no stored unit grid starts with, or whose ``tier_grid`` is no stored
  management grid: it never matches. A warning only, since rules may be written before the boundaries are
  imported (and nothing is said while no boundaries are stored).
* Routing rules and event/component class defaults that name a placeholder department of the shipped data while a
  city's own district (not the demo's) is loaded: one warning naming the files and lines
  (:func:`gisgrid.catalogue_view.placeholder_warning`).
* The demo district stored without its own routing rules (``data/demo/routing_demo.csv``): a warning.
* Open cases whose stored deadline was counted under other working hours than GISGRID_WORKING_HOURS
  (``cases.hours_counted``): one warning naming how many under which hours, those in force and
  ``gisgrid cases recompute-deadlines`` (:func:`gisgrid.deadline_hours.settle`, which first takes the open cases
  from before migration 0024 as counted under the hours in force, and warns instead of waiting on a running
  recompute).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from gisgrid import deadline_hours
from gisgrid.cases import OPEN_STATES, CaseServices
from gisgrid.catalogue_view import placeholder_uses, placeholder_warning
from gisgrid.events import CLASSES_FILE, LIMITS_FILE
from gisgrid.routing import RoutingRules
from gisgrid.settings import Settings, catalogue_folder


@dataclass(frozen=True)
class StartCheck:
    #: Problems that stop ``gisgrid serve``.
    refusals: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The one warning about rows naming placeholder departments in a city's own district (None: nothing to say).
    placeholders: str | None = None
    #: The one warning about open cases counted under other working hours than those in force (None: none).
    hours: str | None = None


def open_cases_outside_catalogue(conn: Connection, services: CaseServices, settings: Settings) -> list[str]:
    """One line per event class, and per disposal type, that open cases use and the loaded catalogue lacks."""
    rows = conn.execute(
        text(
            "SELECT scheme, class_code, disposal_type, count(*) AS n FROM cases WHERE state = ANY(:states) "
            "GROUP BY scheme, class_code, disposal_type ORDER BY scheme, class_code, disposal_type NULLS FIRST"
        ),
        {"states": list(OPEN_STATES)},
    ).all()
    folder = catalogue_folder(settings, CLASSES_FILE)
    lost_classes: dict[tuple[str, str], int] = defaultdict(int)
    lost_types: dict[tuple[str, str, str], int] = {}
    for scheme, code, disposal_type, n in rows:
        if code not in services.events.by_scheme.get(scheme, {}):
            lost_classes[(scheme, code)] += n
        elif disposal_type is not None and disposal_type not in services.events.limits_by_class[(scheme, code)]:
            lost_types[(scheme, code, disposal_type)] = n
    lines = [
        f"{scheme} event class {code} is used by {n} open case(s) but is in no event classes file: every action "
        f"on them would be refused (unknown_class); keep its row in {folder / CLASSES_FILE} (or a "
        f"GISGRID_CATALOGUE_EXTRA classes file), with its time limits, until those cases are closed"
        for (scheme, code), n in lost_classes.items()
    ]
    lines += [
        f"disposal type {disposal_type} of {scheme} event class {code} is used by {n} open case(s) but is in no "
        f"time-limits file: their actions would be refused; keep its row in {folder / LIMITS_FILE} (or a "
        f"GISGRID_CATALOGUE_EXTRA time-limits file) until those cases are closed"
        for (scheme, code, disposal_type), n in lost_types.items()
    ]
    return lines


def rules_outside_boundaries(conn: Connection, rules: RoutingRules) -> list[str]:
    """One line per routing rule naming an area or tier grid that no stored unit grid or management grid has."""
    lines: list[str] = []
    areas = sorted({r.area_prefix for r in rules.rules if r.area_prefix})
    if areas and conn.execute(text("SELECT EXISTS (SELECT 1 FROM unit_grids)")).scalar():
        known = set(
            conn.scalars(
                text(
                    "SELECT p FROM unnest(CAST(:areas AS text[])) AS p "
                    "WHERE EXISTS (SELECT 1 FROM unit_grids WHERE code LIKE p || '%')"
                ),
                {"areas": areas},
            )
        )
        lines += [
            f"routing rule {r.rule_id} ({r.source}): area_prefix {r.area_prefix} matches no stored unit grid (a "
            "code outside the loaded boundaries): the rule never matches"
            for r in rules.rules
            if r.area_prefix and r.area_prefix not in known
        ]
    tiers = sorted({r.tier_grid for r in rules.rules if r.tier_grid})
    if tiers and conn.execute(text("SELECT EXISTS (SELECT 1 FROM management_grids)")).scalar():
        known = set(conn.scalars(text("SELECT code FROM management_grids WHERE code = ANY(:tiers)"), {"tiers": tiers}))
        lines += [
            f"routing rule {r.rule_id} ({r.source}): tier_grid {r.tier_grid} is not a stored management grid: the "
            "rule never matches"
            for r in rules.rules
            if r.tier_grid and r.tier_grid not in known
        ]
    return lines


def placeholders_in_force(conn: Connection, services: CaseServices) -> str | None:
    """The warning about rows naming a placeholder department, when the stored district is not the demo's."""
    districts = list(conn.scalars(text("SELECT code FROM admin_units WHERE level = 'district' ORDER BY code")))
    return placeholder_warning(districts, placeholder_uses(services.components, services.events, services.rules))


def demo_without_its_rules(conn: Connection, rules: RoutingRules) -> list[str]:
    """One line when the demo district is stored but its own routing rules (``data/demo/routing_demo.csv``, not in
    the base rules since review55 F1) are not loaded: ``gisgrid serve`` run without ``make demo``'s setting."""
    from gisgrid.demo import DEMO_DISTRICT_CODE, DEMO_DISTRICT_NAME
    from gisgrid.demo_loader import DEMO_ROUTING_FILE

    if any(Path(p).resolve() == DEMO_ROUTING_FILE.resolve() for p in rules.sources):
        return []
    if conn.execute(text("SELECT 1 FROM admin_units WHERE code = :c"), {"c": DEMO_DISTRICT_CODE}).first() is None:
        return []
    return [
        f"the demo district {DEMO_DISTRICT_NAME} ({DEMO_DISTRICT_CODE}) is loaded but not its routing rules "
        f"(R012–R015 in {DEMO_ROUTING_FILE}): its new cases go by the class rules only; add that file to "
        "GISGRID_CATALOGUE_EXTRA, as make demo does"
    ]


def check_stored_data(engine: Engine, services: CaseServices, settings: Settings) -> StartCheck:
    """The checks above."""
    hours = deadline_hours.settle(engine, services.hours_in_force)
    with engine.connect() as conn:
        return StartCheck(
            refusals=open_cases_outside_catalogue(conn, services, settings),
            warnings=rules_outside_boundaries(conn, services.rules) + demo_without_its_rules(conn, services.rules),
            placeholders=placeholders_in_force(conn, services),
            hours=hours,
        )
