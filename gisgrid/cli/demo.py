"""``gisgrid demo``: the synthetic demo district Z区 (no licensed data needed)."""

from __future__ import annotations

import typer

from gisgrid.cli.common import echo, settings_of
from gisgrid.demo_loader import DEMO_HISTORY_DAYS, demo_folder, load_demo
from gisgrid.storage.database import make_engine, prepare_database

app = typer.Typer(help="Demo data 演示数据 (synthetic district Z区).", no_args_is_help=True)


@app.command()
def load(
    ctx: typer.Context,
    seed: int = typer.Option(2004, "--seed", help="Seed of the synthetic district."),
    force: bool = typer.Option(False, "--force", help="Reload even if the demo district is already loaded."),
    components: int = typer.Option(20_000, "--components", min=0, help="Synthetic components to register (0: none)."),
    history_days: int = typer.Option(
        DEMO_HISTORY_DAYS,
        "--history-days",
        min=0,
        help="Days of simulated cases to write, up to today (about 150 reports a working day; 0: none).",
    ),
) -> None:
    """Load Z区: boundaries, unit grids, three tiers and grid staff, a synthetic component registry (--components,
    default 20,000) and a simulated case record of the last 60 days (--history-days; about 8,600 cases with their
    timelines and the 交办单/督办单 they issued, no photos), which the evaluation counts like real cases.
    Fast no-op when already loaded (--force reloads). Its files (boundaries, staff, components) are written to
    $GISGRID_DATA_DIR/demo/<database name>/."""
    settings = settings_of(ctx)
    engine = make_engine(prepare_database(settings, echo, migrate=True, create=True))
    try:
        summary = load_demo(
            engine,
            # Per database: demos in several databases of one data folder keep their own files (review38 U15).
            demo_folder(settings.data_path, engine.url.database or settings.db_name),
            seed=seed,
            force=force,
            echo=echo,
            components=components,
            history_days=history_days,
            settings=settings,
        )
    finally:
        engine.dispose()
    echo(summary)
