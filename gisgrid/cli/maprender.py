"""``gisgrid map``: static thematic maps (专题图) for analysts, written as a folder that opens offline.

    gisgrid map render --layer grids --tier 2 --color-by cases --out maps/out/社区案件.html
    gisgrid map render --layer cases --color-by state --out maps/out/cases.html
    gisgrid map render --layer cases --state open --period 2026-10 --color-by light --out maps/out/在办.html
    gisgrid map render --layer evaluation --indicator on_time_disposal_rate --period 2026-10 --level tier3 \
        --scheme natural_breaks --out maps/out/按期处置率.html

The HTML and its ``<name>_files/`` folder (Leaflet, copied from the vendored assets) go together; open the HTML
from the file system with no server and no network.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from gisgrid import workflow
from gisgrid.cli.common import echo, settings_of
from gisgrid.errors import InvalidInput
from gisgrid.evaluation_service import AS_OF_HELP, PERIOD_HELP, only_the_answers_calendar_warning
from gisgrid.storage.database import make_engine, prepare_database
from maps import choropleth
from maps import render as renderer

app = typer.Typer(
    help="Static maps 专题图: a choropleth of grids, components, cases or an evaluation indicator, for offline use.",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    """Static maps 专题图 (a group even with one command: ``gisgrid map render``)."""


class Layer(StrEnum):
    grids = "grids"
    components = "components"
    cases = "cases"
    evaluation = "evaluation"


class Tier(StrEnum):
    unit = "unit"
    tier1 = "1"
    tier2 = "2"
    tier3 = "3"


class Level(StrEnum):
    unit_grid = "unit_grid"
    tier3 = "tier3"
    tier2 = "tier2"
    tier1 = "tier1"
    district = "district"


def _scheme(value: str) -> str:
    """quantiles, natural_breaks, equal_interval or linear; aliases (quantile, jenks, fisher_jenks, equal) too."""
    try:
        return renderer.scheme_name(value)
    except InvalidInput as exc:
        raise typer.BadParameter(exc.message) from None


def _say_why_empty(
    conn: Any,
    layer: Layer,
    tier: Any,
    area: tuple[float, float, float, float],
    bbox: str,
    period: str | None,
    state: str | None,
) -> None:
    """A map left empty with --bbox: the bbox missed the layer (its extent named), or the filters left nothing."""
    extent = renderer.layer_extent(conn, layer.value, tier.value if tier else None)
    if extent is None:
        why = "the layer holds nothing"
    elif area[0] > extent[2] or area[2] < extent[0] or area[1] > extent[3] or area[3] < extent[1]:
        why = "--bbox lies outside the layer, which lies within " + ",".join(f"{v:.4f}" for v in extent)
    else:
        given = [f"--{n} {v}" for n, v in (("period", period), ("state", state)) if v]
        why = "no feature in --bbox matches " + " ".join(given) if given else "no feature of the layer in --bbox"
    typer.echo(f"warning: the map is empty: {why}", err=True)


def _bbox(value: str | None) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    try:
        parts = tuple(float(v) for v in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4 or not (parts[0] < parts[2] and parts[1] < parts[3]):
        raise typer.BadParameter("give minlon,minlat,maxlon,maxlat (CGCS2000 degrees)", param_hint="--bbox")
    return parts


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
def render(  # noqa: C901
    ctx: typer.Context,
    layer: Layer = typer.Option(..., "--layer", help="What to draw."),
    out: Path = typer.Option(..., "--out", help="The HTML file; its assets go to <name>_files/ beside it."),
    tier: Tier | None = typer.Option(None, "--tier", help="Grids only: unit (default), 1, 2 or 3."),
    color_by: str | None = typer.Option(
        None,
        "--color-by",
        help="Column to colour by (an unknown one lists all); components also by the export's GB/T 47678.5 "
        "field names, e.g. GLBJZT (status), ZGBMDM (main_dept_code).",
    ),
    classes: int = typer.Option(5, "--classes", "-k", min=2, max=9, help="Classes for a numeric column."),
    scheme: str = typer.Option(
        choropleth.DEFAULT_SCHEME,
        "--scheme",
        "--scale",
        callback=_scheme,
        help="Numeric columns: quantiles, natural_breaks, equal_interval (mapclassify) or linear (a ramp). "
        "--scale quantile|linear is the old spelling.",
    ),
    limit: int = typer.Option(renderer.DEFAULT_LIMIT, "--limit", min=1, help="At most this many features."),
    bbox: str | None = typer.Option(None, "--bbox", help="minlon,minlat,maxlon,maxlat: only features there."),
    title: str | None = typer.Option(
        None,
        "--title",
        help="Legend title (default: layer · column), after the city's 监督指挥中心 (GISGRID_CENTER_NAME) as on the "
        "console: <name> · <title>; the page's title is <name> · 专题图 · <title>.",
    ),
    indicator: str | None = typer.Option(
        None, "--indicator", help="Evaluation only: the indicator column, e.g. on_time_disposal_rate, score, grade."
    ),
    period: str | None = typer.Option(
        None,
        "--period",
        help=f"Evaluation: the period evaluated; cases: reported in it; grids: the cases counted (cases, "
        f"open_cases, cases_per_km2) reported in it (default: every case stored). {PERIOD_HELP}.",
    ),
    state: str | None = typer.Option(
        None,
        "--state",
        help="Cases only: open (在办, drawn above the closed), all (default) or states, e.g. dispatched,returned. "
        "Cases can be coloured by light (红黄绿灯).",
    ),
    level: Level | None = typer.Option(None, "--level", help="Evaluation only: the regions (default tier3)."),
    as_of: str | None = typer.Option(None, "--as-of", help=f"Evaluation only: {AS_OF_HELP}."),
) -> None:
    """Write a choropleth map with a legend as a self-contained folder (HTML + local Leaflet, relative links)."""
    if tier is not None and layer is not Layer.grids:
        raise typer.BadParameter("only --layer grids has tiers (evaluation: --level)", param_hint="--tier")
    if layer is not Layer.evaluation:
        for given, name in ((indicator, "--indicator"), (level, "--level"), (as_of, "--as-of")):
            if given is not None:
                raise typer.BadParameter("only --layer evaluation takes it", param_hint=name)
    if period is not None and layer is Layer.components:
        raise typer.BadParameter("only --layer evaluation, cases and grids take it", param_hint="--period")
    if state is not None and layer is not Layer.cases:
        raise typer.BadParameter("only --layer cases takes it", param_hint="--state")
    if out.suffix.lower() not in (".html", ".htm"):
        raise typer.BadParameter(f"{out} must name an .html file (its assets go beside it)", param_hint="--out")
    area = _bbox(bbox)
    if layer is Layer.evaluation:
        result = _render_evaluation(
            ctx,
            indicator=indicator or color_by,
            period=period,
            level=level or Level.tier3,
            out=out,
            classes=classes,
            scheme=scheme,
            title=title,
            bbox=area,
            as_of=as_of,
        )
    else:
        settings = settings_of(ctx)
        services = None
        if layer is Layer.cases:
            from gisgrid import cases as svc

            services = svc.load_services(settings)  # the lights of the cases
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
                    scheme=scheme,
                    limit=limit,
                    bbox=area,
                    labels=_labels(ctx, layer) if color_by else None,
                    title=title,
                    states=state,
                    period=period,
                    services=services,
                    center_name=settings.center_name,  # GISGRID_CENTER_NAME heads the map, as the console
                )
                if area is not None and result.features == 0:
                    _say_why_empty(conn, layer, tier, area, bbox or "", period, state)
        except renderer.UnknownColumn as exc:
            raise typer.BadParameter(exc.message, param_hint="--color-by") from None
        except InvalidInput as exc:
            field = next((d.get("field") for d in exc.detail or [] if isinstance(d, dict)), None)
            if field in ("state", "period"):
                raise typer.BadParameter(exc.message, param_hint=f"--{field}") from None
            raise
        finally:
            engine.dispose()
    size = sum(p.stat().st_size for p in result.files) + result.html.stat().st_size
    echo(f"wrote {result.html} and {result.files_dir.name}/ ({len(result.files)} files, {size / 1e6:.1f} MB in all)")
    cut = f" of {result.total:,} (raise --limit or use --bbox)" if result.truncated else ""
    echo(f"{result.features:,} features{cut}")
    if result.features > renderer.HEAVY_FEATURES:
        typer.echo(
            f"warning: 页面内嵌 {result.features:,} 个要素({size / 1e6:.1f} MB),浏览器打开会很慢,可用 --tier、--bbox "
            f"或 --limit 缩小范围 / the page holds {result.features:,} features inline ({size / 1e6:.1f} MB), more "
            f"than the ~{renderer.HEAVY_FEATURES:,} a browser draws at ease: narrow it with --tier, --bbox or --limit "
            "(the console serves unit grids as vector tiles)",
            err=True,
        )
    if result.as_of is not None:
        provisional = " — provisional (暂定): the period had not ended then" if result.provisional else ""
        echo(f"cases judged as of {result.as_of.isoformat()}{provisional}")
    if result.calendar_warning is not None:
        typer.echo(f"warning: {result.calendar_warning}", err=True)
    for entry in result.legend:
        echo(f"  {entry.colour}  {entry.label}  ({entry.count:,})")
    echo("open the HTML from the file system; copy it together with its _files folder")


def _render_evaluation(
    ctx: typer.Context,
    *,
    indicator: str | None,
    period: str | None,
    level: Level,
    out: Path,
    classes: int,
    scheme: str,
    title: str | None,
    bbox: tuple[float, float, float, float] | None,
    as_of: str | None = None,
) -> renderer.Rendered:
    from gisgrid import cases as svc

    if indicator is None:
        choices = ", ".join(choropleth.INDICATOR_COLUMNS)
        raise typer.BadParameter(f"name the indicator to map, one of: {choices}", param_hint="--indicator")
    if period is None:
        raise typer.BadParameter("name the period, e.g. 2026-10 or 2026-Q3", param_hint="--period")
    if bbox is not None:
        raise typer.BadParameter("the evaluation layer maps every region of the level", param_hint="--bbox")
    if scheme == "linear":
        raise typer.BadParameter(
            f"the evaluation layer is classed: one of {', '.join(choropleth.SCHEMES)}", param_hint="--scheme"
        )
    settings = settings_of(ctx)
    engine = make_engine(prepare_database(settings, echo))
    try:
        with only_the_answers_calendar_warning():  # its own warning is printed by the command
            return renderer.render_evaluation(
                engine,
                svc.load_services(settings),
                period=period,
                indicator=indicator,
                level=level.value,
                out=out,
                classes=classes,
                scheme=scheme,
                title=title,
                as_of=as_of,
                center_name=settings.center_name,
            )
    except InvalidInput as exc:
        field = next((d.get("field") for d in exc.detail or [] if isinstance(d, dict)), None)
        hints = {
            "indicator": "--indicator",
            "period": "--period",
            "level": "--level",
            "scheme": "--scheme",
            "as_of": "--as-of",
        }
        if field in hints:
            raise typer.BadParameter(exc.message, param_hint=hints[field]) from None
        raise
    finally:
        engine.dispose()
