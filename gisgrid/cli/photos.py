"""``gisgrid photos``: the photo store (``GISGRID_DATA_DIR/photos``) against the database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import typer

from gisgrid.cli.common import EXIT_REFUSED, echo, settings_of

app = typer.Typer(
    help="Photos 照片: check the photo store against the database; set aside what no row needs.", no_args_is_help=True
)


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


@app.command("prune")
def prune(
    ctx: typer.Context,
    older_than: float = typer.Option(
        24.0, "--older-than", min=1.0, help="Hours a file must have been untouched to be taken (at least 1)."
    ),
    to: Path | None = typer.Option(
        None, "--to", help="Folder to move them to (default GISGRID_DATA_DIR/photos-set-aside/<UTC time>)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be set aside; move nothing."),
    fmt: CheckFormat = typer.Option(CheckFormat.text, "--format", help="text or json."),
) -> None:
    """Set aside what no row needs: originals no case or component references, their thumbnails/print copies,
    copies whose original is gone unreferenced, and .tmp leftovers of a crash — each moved, with its path, into a
    folder outside the store (cp -a puts it back; rm -r frees the space). Only files untouched for --older-than
    hours; missing/damaged rows and other files are left (photos check lists them). Not for a GISGRID_DATA_DIR that
    several databases share: the others' photos look unreferenced here."""
    from gisgrid.photo_check import prune_photos
    from gisgrid.photos import PhotoStore
    from gisgrid.storage.database import make_engine, prepare_database

    settings = settings_of(ctx)
    store = PhotoStore.from_settings(settings)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = (to or store.root.parent / "photos-set-aside" / stamp).absolute()
    if target.resolve().is_relative_to(store.root.resolve()):
        typer.echo(
            f"error: --to {target} 在照片存储之内 is inside the photo store {store.root}: choose a folder "
            "outside it; nothing moved",
            err=True,
        )
        raise typer.Exit(EXIT_REFUSED)
    engine = make_engine(prepare_database(settings, lambda m: typer.echo(m, err=True), migrate=False))
    try:
        result = prune_photos(engine, store, target, older_than=timedelta(hours=older_than), dry_run=dry_run)
    finally:
        engine.dispose()
    echo(json.dumps(result.to_json(), ensure_ascii=False, indent=1) if fmt is CheckFormat.json else result.to_text())
