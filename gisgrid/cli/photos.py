"""``gisgrid photos``: the photo store (``GISGRID_DATA_DIR/photos``) against the database."""

from __future__ import annotations

import json
from enum import StrEnum

import typer

from gisgrid.cli.common import EXIT_REFUSED, echo, settings_of

app = typer.Typer(help="Photos 照片: check the photo store against the database.", no_args_is_help=True)


class CheckFormat(StrEnum):
    text = "text"
    json = "json"


@app.command("check")
def check(
    ctx: typer.Context,
    fmt: CheckFormat = typer.Option(CheckFormat.text, "--format", help="text (one line per finding) or json."),
) -> None:
    """Read-only: list the case and component photo rows whose file is missing or whose SHA-256 no longer matches,
    the originals in the store that no row references and foreign files in it, and the store's size (originals,
    thumbnails/print copies). Reads every referenced file once. Several databases sharing one GISGRID_DATA_DIR:
    the others' files show as unreferenced. Exit 0: clean; 2: problems found; 1: could not check."""
    from gisgrid.photo_check import check_photos
    from gisgrid.photos import PhotoStore
    from gisgrid.storage.database import make_engine, prepare_database

    settings = settings_of(ctx)
    # No migration (a check writes nothing); the cluster's start lines go to stderr, so that --format json's
    # stdout is the JSON alone.
    engine = make_engine(prepare_database(settings, lambda m: typer.echo(m, err=True), migrate=False))
    try:
        result = check_photos(engine, PhotoStore.from_settings(settings))
    finally:
        engine.dispose()
    if fmt is CheckFormat.json:
        echo(json.dumps(result.to_json(), ensure_ascii=False, indent=1))
    else:
        echo(result.to_text())
    if result.problems:
        raise typer.Exit(EXIT_REFUSED)  # ran and found problems
