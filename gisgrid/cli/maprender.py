"""``gisgrid map``: static thematic maps (专题图) for analysts, written as a folder that opens offline.

    gisgrid map render --layer grids --tier 2 --color-by cases --out maps/out/社区案件.html
    gisgrid map render --layer cases --color-by state --out maps/out/cases.html

The HTML and its ``<name>_files/`` folder (Leaflet, copied from the vendored assets) go together; open the HTML
from the file system with no server and no network.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from gisgrid import workflow
from gisgrid.cli.common import echo, settings_of
from gisgrid.storage.database import make_engine, prepare_database
from maps import render as renderer

app = typer.Typer(
    help="Static maps 专题图: a choropleth of grids, components or cases, for offline use.", no_args_is_help=True
)


@app.callback()
def _group() -> None:
    """Static maps 专题图 (a group even with one command: ``gisgrid map render``)."""


class Layer(StrEnum):
    grids = "grids"
    components = "components"
    cases = "cases"


class Tier(StrEnum):
    unit = "unit"
    tier1 = "1"
    tier2 = "2"
    tier3 = "3"


class Scale(StrEnum):
    quantile = "quantile"
    linear = "linear"


def _bbox(value: str | None) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    try:
        parts = tuple(float(v) for v in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4 or not (parts[0] < parts[2] and parts[1] < parts[3]):
        raise typer.BadParameter("give minlon,minlat,maxlon,maxlat (CGCS2000 degrees)", param_hint="--bbox")
    return parts  # type: ignore[return-value]


def _labels(ctx: typer.Context, layer: Layer) -> dict[str, dict[str, str]]:
    """Names for codes in the legend: event/component classes, states, sources, departments."""
    from gisgrid import cases as svc

    services = svc.load_services(settings_of(ctx))
    departments = dict(services.departments)
    if layer is Layer.cases:
        classes = {
            code: c.name for scheme in ("gbt47678", "cjt214") for code, c in services.events.classes(scheme).items()
        }
        return {
            "class_code": classes,
            "state": dict(workflow.STATES),
            "source": dict(svc.SOURCES),
            "department_code": departments,
        }
    if layer is Layer.components:
        classes = {
            code: c.name for scheme in ("gbt47678", "cjt214") for code, c in services.components.classes(scheme).items()
        }
        return {"class_code": classes, "main_dept_code": departments, "maint_dept_code": departments}
    return {}


@app.command("render")
def render(
    ctx: typer.Context,
    layer: Layer = typer.Option(..., "--layer", help="What to draw."),
    out: Path = typer.Option(..., "--out", help="The HTML file; its assets go to <name>_files/ beside it."),
    tier: Tier | None = typer.Option(None, "--tier", help="Grids only: unit (default), 1, 2 or 3."),
    color_by: str | None = typer.Option(None, "--color-by", help="Column to colour by (an unknown one lists all)."),
    classes: int = typer.Option(5, "--classes", min=2, max=9, help="Quantile classes for a numeric column."),
    scale: Scale = typer.Option(Scale.quantile, "--scale", help="Numeric columns: quantile classes or linear."),
    limit: int = typer.Option(renderer.DEFAULT_LIMIT, "--limit", min=1, help="At most this many features."),
    bbox: str | None = typer.Option(None, "--bbox", help="minlon,minlat,maxlon,maxlat: only features there."),
    title: str | None = typer.Option(None, "--title", help="Legend title (default: layer · column)."),
) -> None:
    """Write a choropleth map with a legend as a self-contained folder (HTML + local Leaflet, relative links)."""
    if tier is not None and layer is not Layer.grids:
        raise typer.BadParameter("only --layer grids has tiers", param_hint="--tier")
    if out.suffix.lower() not in (".html", ".htm"):
        raise typer.BadParameter(f"{out} must name an .html file (its assets go beside it)", param_hint="--out")
    area = _bbox(bbox)
    settings = settings_of(ctx)
    engine = make_engine(prepare_database(settings, echo))
    try:
        with engine.connect() as conn:
            result = renderer.render(
                conn,
                layer=layer.value,
                out=out,
                tier=tier.value if tier else None,
                column=color_by,
                classes=classes,
                scale=scale.value,
                limit=limit,
                bbox=area,
                labels=_labels(ctx, layer) if color_by else None,
                title=title,
            )
    except renderer.UnknownColumn as exc:
        raise typer.BadParameter(exc.message, param_hint="--color-by") from None
    finally:
        engine.dispose()
    size = sum(p.stat().st_size for p in result.files) + result.html.stat().st_size
    echo(f"wrote {result.html} and {result.files_dir.name}/ ({len(result.files)} files, {size / 1e6:.1f} MB in all)")
    cut = f" of {result.total:,} (raise --limit or use --bbox)" if result.truncated else ""
    echo(f"{result.features:,} features{cut}")
    for entry in result.legend:
        echo(f"  {entry.colour}  {entry.label}  ({entry.count:,})")
    echo("open the HTML from the file system; copy it together with its _files folder")
