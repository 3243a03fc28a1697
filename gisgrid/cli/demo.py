"""``gisgrid demo``: the synthetic demo district Z区 (no licensed data needed)."""

from __future__ import annotations

import typer

from gisgrid.cli.common import echo, settings_of
from gisgrid.demo_loader import load_demo
from gisgrid.storage.database import make_engine, prepare_database

app = typer.Typer(help="Demo data 演示数据 (synthetic district Z区).", no_args_is_help=True)


@app.command()
def load(
    ctx: typer.Context,
    seed: int = typer.Option(2004, "--seed", help="Seed of the synthetic district."),
    force: bool = typer.Option(False, "--force", help="Reload even if the demo district is already loaded."),
    components: int = typer.Option(20_000, "--components", help="Synthetic components to register (0: none)."),
) -> None:
    """Load Z区: boundaries, unit grids, three tiers and grid staff. Fast no-op when already loaded."""
    settings = settings_of(ctx)
    engine = make_engine(prepare_database(settings, echo))
    try:
        summary = load_demo(
            engine,
            settings.data_path / "demo",
            seed=seed,
            force=force,
            echo=echo,
            components=components,
            settings=settings,
        )
    finally:
        engine.dispose()
    echo(summary)
