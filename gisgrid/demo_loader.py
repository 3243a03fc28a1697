"""Load the synthetic demo district into the database: boundaries → unit grids → tiers → staff."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from gisgrid.boundaries import BoundaryOptions
from gisgrid.components_store import ImportOptions, catalogue_for, import_components
from gisgrid.demo import DEMO_DISTRICT_CODE, demo_components_points, make_demo_district, write_demo_district
from gisgrid.grids import workflows
from gisgrid.settings import Settings, default_catalogue_dir

#: Days of simulated case record the demo writes by default (``gisgrid demo load --history-days``).
DEMO_HISTORY_DAYS = 60
#: The demo district's own routing rules (R012–R015: its towns, pedestrian street and scenic grid, 先属地). Not in the
#: base ``rules/routing.csv``, which every city runs (review55 F1): ``demo load`` adds it to its settings
#: (:func:`demo_settings`), and ``make demo`` to the server's GISGRID_CATALOGUE_EXTRA.
DEMO_ROUTING_FILE = default_catalogue_dir() / "demo" / "routing_demo.csv"
#: Tier-3 size for the demo: ~38,400 unit grids / 56 ≈ 680 tier-3 grids, as in the seed district.
DEMO_TIER3_SIZE = 56


def demo_staff(grid_codes: list[str], seed: int, leader_codes: Sequence[str] = ()) -> pd.DataFrame:
    """Deterministic fictitious staff: one 网格长 and two 网格员 per tier-3 grid, and a 网格长 for each of
    ``leader_codes`` (the streets and communities a case is escalated to, 提级)."""
    from gisgrid.simulate import GIVEN_NAME_CHARS, SURNAMES

    rng = np.random.default_rng(seed)
    rows = []
    crews = [*((c, ("网格长", "网格员", "网格员")) for c in grid_codes), *((c, ("网格长",)) for c in leader_codes)]
    for code, roles in crews:
        for role in roles:
            surname = rng.choice(list(SURNAMES))
            name = surname + "".join(rng.choice(list(GIVEN_NAME_CHARS), size=int(rng.integers(1, 3))))
            phone = "1" + str(rng.choice([38, 39, 58, 59, 86, 87])) + f"{int(rng.integers(0, 10**8)):08d}"
            rows.append({"grid_code": code, "role": role, "name": name, "phone": phone})
    return pd.DataFrame(rows)


def demo_loaded(engine: Engine) -> bool:
    with engine.connect() as conn:
        t3 = conn.execute(
            text("SELECT count(*) FROM management_grids WHERE tier = 3 AND code LIKE :p"),
            {"p": DEMO_DISTRICT_CODE + "%"},
        ).scalar_one()
    return bool(t3)


#: Component classes of the demo registry, with their share: lamps, manholes, bins, signs, trees, toilets.
DEMO_COMPONENT_MIX = {
    "01037": 0.25,
    "01001": 0.12,
    "01004": 0.10,
    "01007": 0.08,
    "03005": 0.20,
    "02014": 0.05,
    "04002": 0.17,
    "03001": 0.03,
}


def demo_components_csv(path: Path, n: int, seed: int) -> Path:
    """A synthetic component registry over Z区 as an analyst would import it (class, lon, lat, status)."""
    lon, lat = demo_components_points(n, seed, make_demo_district(seed))
    rng = np.random.default_rng(seed)
    classes = rng.choice(list(DEMO_COMPONENT_MIX), n, p=list(DEMO_COMPONENT_MIX.values()))
    status = rng.choice(["完好", "破损", "丢失"], n, p=[0.93, 0.05, 0.02])
    pd.DataFrame(
        {"class_code": classes, "lon": lon.round(7), "lat": lat.round(7), "status": status, "data_source": "实测"}
    ).to_csv(path, index=False)
    return path


def demo_folder(data_path: Path, database: str) -> Path:
    """Where ``demo load`` writes its files for ``database``: ``<data dir>/demo/<database>/`` (review38 U15: one
    ``demo/`` for every database, so demos loaded into several databases of one data folder overwrote each other's
    boundary file). A name that is no plain file name (``/``, ``..``) has its other characters replaced by ``_``."""
    name = re.sub(r"[^\w.-]", "_", database)
    return data_path / "demo" / (name if name.strip(".") else "_" * max(len(name), 1))


def demo_settings(settings: Settings) -> Settings:
    """``settings`` with the demo's routing rules (:data:`DEMO_ROUTING_FILE`) first among the extra files, once:
    the demo's cases are routed by them, as ``make demo``'s server routes new ones."""
    extra = [p for p in settings.catalogue_extra if Path(p).resolve() != DEMO_ROUTING_FILE.resolve()]
    return settings.model_copy(update={"catalogue_extra": [DEMO_ROUTING_FILE, *extra]})


def load_demo(
    engine: Engine,
    folder: Path,
    *,
    seed: int = 2004,
    force: bool = False,
    echo: Callable = print,
    components: int = 20_000,
    history_days: int = DEMO_HISTORY_DAYS,
    settings: Settings | None = None,
) -> str:
    if demo_loaded(engine) and not force:
        return "demo district Z区 already loaded (use --force to reload)"
    settings = demo_settings(settings or Settings())
    folder.mkdir(parents=True, exist_ok=True)
    path = write_demo_district(folder / "z_district.gpkg", seed=seed)
    echo(f"demo boundaries written to {path}")
    imported = workflows.import_boundaries(engine, path, BoundaryOptions(layer="boundaries"))
    echo(f"boundaries: {len(imported.boundaries.units)} units (EPSG:{imported.metric_epsg})")
    generated = workflows.generate_grids(engine, district=DEMO_DISTRICT_CODE, replace_tiers=True)
    echo(f"unit grids: {generated.cells}")
    # The demo's staff are written again just below, so a reload may replace the old ones.
    tiers = workflows.build_tiers(engine, target_size=DEMO_TIER3_SIZE, district=DEMO_DISTRICT_CODE, replace_tiers=True)
    echo(f"tiers: {tiers.tier1} / {tiers.tier2} / {tiers.tier3}")
    with engine.connect() as conn:
        codes = list(conn.execute(text("SELECT code FROM management_grids WHERE tier = 3 ORDER BY code")).scalars())
        upper = list(conn.execute(text("SELECT code FROM management_grids WHERE tier < 3 ORDER BY code")).scalars())
    staff_csv = folder / "z_district_staff.csv"
    demo_staff(codes, seed, upper).to_csv(staff_csv, index=False, encoding="utf-8")
    n = workflows.import_staff(engine, staff_csv, replace=True)  # the demo's own grids: a reload replaces them
    registry = ""
    if components:
        csv = demo_components_csv(folder / "z_district_components.csv", components, seed)
        summary = import_components(
            engine, csv, catalogue_for(settings), ImportOptions(actor="demo", district=DEMO_DISTRICT_CODE)
        )
        registry = f", {summary.inserted + summary.updated + summary.unchanged} components"
        echo(f"components: {summary.to_text().splitlines()[0]}")
    record = ""
    if history_days:
        written = demo_history(engine, settings, days=history_days, seed=seed)
        record = f", {written} cases over {history_days} days"
        echo(f"case history: {written} cases")
    return (
        f"demo district Z区 loaded: {len(imported.boundaries.units)} units, {generated.cells} unit grids, "
        f"{tiers.tier3} tier-3 grids, staff for {n} grids (with the streets' and communities' 网格长)"
        f"{registry}{record}"
    )


def demo_history(engine: Engine, settings: Settings, *, days: int, seed: int) -> int:
    """A simulated case record up to today (about 150 reports a working day), so the console, evaluation and
    risk pages have something to show: each case with the routing decision intake would make, each 派遣/返工
    with its 交办单."""
    import datetime as dt

    from gisgrid import cases as case_svc
    from gisgrid import history
    from gisgrid.simulate import classes_from_catalogue, node_hours_from_catalogue, simulate

    services = case_svc.load_services(settings)
    case_svc.sync_reference_data(engine, services)
    with engine.connect() as conn:
        cells = history.cells_for_simulation(conn, DEMO_DISTRICT_CODE)
        # Every report routed as intake would route it (its 派遣依据), and dispatched there.
        hours_per_day = services.calendar.hours.hours_per_day
        sim = simulate(
            cells,
            pd.DataFrame({"code": list(services.departments), "name": list(services.departments.values())}),
            classes_from_catalogue(services.events, hours_per_day=hours_per_day),
            node_hours=node_hours_from_catalogue(services.events, hours_per_day),  # the city's node limits
            days=days,
            seed=seed,
            start=dt.date.today() - dt.timedelta(days=days),
            rate=0.004,
            calendar=services.calendar,
            route=history.intake_routing(conn, services),
        )
    return history.write_history(engine, sim.cases, sim.transitions, services).cases
