"""``gisgrid catalogue``: the merged catalogue in force (the project's files with the city's), row by row."""

from __future__ import annotations

import csv
import io
from enum import StrEnum

import typer

from gisgrid.cli.common import echo, settings_of

app = typer.Typer(
    help="Catalogue 目录: departments, event and component classes, time limits, routing rules.", no_args_is_help=True
)


class Kind(StrEnum):
    departments = "departments"
    events = "events"
    components = "components"
    routing = "routing"


class DiffKind(StrEnum):
    departments = "departments"
    events = "events"
    limits = "limits"
    components = "components"
    routing = "routing"


class ShowFormat(StrEnum):
    table = "table"
    csv = "csv"


@app.command("show")
def show(
    ctx: typer.Context,
    kind: Kind | None = typer.Option(
        None, "--kind", help="departments, events, components or routing (default: every kind, as tables)."
    ),
    fmt: ShowFormat = typer.Option(ShowFormat.table, "--format", help="table (aligned text) or csv (one kind)."),
) -> None:
    """Print the catalogue in force — GISGRID_CATALOGUE_DIR (or the project's data/) merged with the
    GISGRID_CATALOGUE_EXTRA files — each row with the file:line it came from (the last file that gave it), and
    `placeholder` marking the rows that name a fictitious 9900000000000000NN department of the shipped data; under
    the departments table, the departments an extra file removed (kind '-') and where; under the routing table, the
    rules an extra file removed (department '-') and where. No database is read."""
    from gisgrid.cases import load_events, load_rules
    from gisgrid.catalogue_view import COLUMNS, HEADINGS, KINDS, catalogue_rows, table_text
    from gisgrid.components_store import catalogue_for
    from gisgrid.errors import InvalidInput
    from gisgrid.spreadsheet import csv_text

    if fmt is ShowFormat.csv and kind is None:
        raise InvalidInput("--format csv prints one kind: add --kind departments, events, components or routing")
    settings = settings_of(ctx)
    components = catalogue_for(settings)
    events = load_events(settings, components)
    rules = load_rules(settings, components, events)
    kinds = [kind.value] if kind else list(KINDS)
    if fmt is ShowFormat.csv:
        buffer = io.StringIO()
        # as every CSV gisgrid writes: CRLF, a formula-like text quoted (README, "Exports a spreadsheet opens")
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS[kinds[0]], lineterminator="\r\n")
        writer.writeheader()
        for row in catalogue_rows(kinds[0], components, events, rules):
            writer.writerow({k: csv_text(v) for k, v in row.items()})
        typer.echo(buffer.getvalue(), nl=False)
        return
    for n, name in enumerate(kinds):
        rows = catalogue_rows(name, components, events, rules)
        if kind is None:
            echo(("\n" if n else "") + f"# {HEADINGS[name]} ({len(rows)})")
        echo(table_text(COLUMNS[name], rows))
        # not in force, so not rows: said under the table
        removed_by = {"routing": rules.removed_by, "departments": components.department_removed_by}.get(name)
        if removed_by:
            echo("已删除 removed: " + ", ".join(f"{key} ({path}:{line})" for key, (path, line) in removed_by.items()))


@app.command("diff")
def diff(
    ctx: typer.Context,
    kind: DiffKind | None = typer.Option(
        None, "--kind", help="departments, events, limits, components or routing (default: every kind)."
    ),
    fmt: ShowFormat = typer.Option(
        ShowFormat.table, "--format", help="table (aligned text) or csv (with a kind column)."
    ),
) -> None:
    """What the catalogue in force — GISGRID_CATALOGUE_DIR merged with the GISGRID_CATALOGUE_EXTRA files, as the
    service reads it — changes against the package's own data/: per kind the rows added, the fields changed (old →
    new) and the rows removed, each with the file:line that did it (a row the city's copy lacks: that copy's file).
    Exit 0 with or without differences; a catalogue `catalogue show` refuses is refused alike. No database is read."""
    from gisgrid.cases import load_events, load_rules
    from gisgrid.catalogue_diff import (
        COLUMNS,
        CSV_COLUMNS,
        KINDS,
        Catalogues,
        diff_rows,
        heading,
        load_package_catalogue,
        no_difference,
    )
    from gisgrid.catalogue_view import table_text
    from gisgrid.components_store import catalogue_for
    from gisgrid.settings import check_catalogue_dir
    from gisgrid.spreadsheet import csv_text

    settings = settings_of(ctx)
    components = catalogue_for(settings)  # read first, as `catalogue show` reads it: the same refusals
    events = load_events(settings, components)
    rules = load_rules(settings, components, events)
    city = Catalogues(components, events, rules, check_catalogue_dir(settings))
    package = load_package_catalogue()
    found = diff_rows(package, city, [kind.value] if kind else KINDS)
    if fmt is ShowFormat.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        for name, rows in found.items():
            for row in rows:
                writer.writerow({k: csv_text(v) for k, v in {"kind": name, **row}.items()})
        typer.echo(buffer.getvalue(), nl=False)
        return
    if not any(found.values()):
        echo(no_difference(package.root, kind.value if kind else None))
        return
    for n, (name, rows) in enumerate(found.items()):
        echo(("\n" if n else "") + heading(name, rows))
        if rows:
            echo(table_text(COLUMNS, rows))
