"""``gisgrid simulate`` and ``gisgrid evaluate``: a case history for the loaded district, and its indicators."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import typer

from gisgrid import cases as case_svc
from gisgrid import history
from gisgrid.cli.common import echo, settings_of
from gisgrid.errors import InvalidInput
from gisgrid.evaluation import EVALUATED, check_subject
from gisgrid.evaluation_service import (
    AS_OF_HELP,
    PERIOD_HELP,
    calendar_warning,
    indicators,
    only_the_answers_calendar_warning,
    parse_period,
    table_title,
    write_table,
)
from gisgrid.simulate import classes_from_catalogue, node_hours_from_catalogue, simulate
from gisgrid.storage.database import make_engine, prepare_database


def parse_plant(spec: str | None) -> dict[str, list[str]]:
    """``selective=CODE;CODE,overload=CODE`` → {"selective": [...], "overload": [...]}; a kind named twice
    (``selective=A,selective=B``) gets the codes of both, each once."""
    if not spec:
        return {}
    out: dict[str, list[str]] = {}
    for part in spec.split(","):
        if "=" not in part:
            raise InvalidInput(
                f"--plant: {part!r} is not KIND=CODE;CODE (kinds: selective, overload, escalation, paper_closure)"
            )
        kind, codes = part.split("=", 1)
        named = [c.strip() for c in codes.split(";") if c.strip()]
        if not named:
            raise InvalidInput(f"--plant: {part!r} names no code (KIND=CODE;CODE)")
        have = out.setdefault(kind.strip(), [])
        have.extend(c for c in dict.fromkeys(named) if c not in have)
    return out


def simulate_cmd(
    ctx: typer.Context,
    days: int = typer.Option(30, "--days", help="Length of the history in days."),
    seed: int = typer.Option(1, "--seed", help="Random seed (the same seed gives the same history)."),
    start: str = typer.Option(None, "--start", help="First day, YYYY-MM-DD (default: DAYS days ago)."),
    rate: float = typer.Option(0.05, "--rate", help="Problems per unit grid per working day."),
    plant: str | None = typer.Option(
        None, "--plant", help="Planted anomalies, e.g. selective=41990100100101;41990100100102,escalation=419901003"
    ),
    district: str | None = typer.Option(None, "--district"),
) -> None:
    """Write a realistic case history over the loaded district (demo, tests, trying the evaluation)."""
    settings = settings_of(ctx)
    engine = make_engine(prepare_database(settings, echo))
    services = case_svc.load_services(settings)
    case_svc.sync_reference_data(engine, services)
    first = dt.date.fromisoformat(start) if start else dt.date.today() - dt.timedelta(days=days)
    with engine.connect() as conn:
        cells = history.cells_for_simulation(conn, district)
    hours_per_day = services.calendar.hours.hours_per_day
    classes = classes_from_catalogue(services.events, hours_per_day=hours_per_day)
    sim = simulate(
        cells,
        list(services.departments),
        classes,
        node_hours=node_hours_from_catalogue(services.events, hours_per_day),  # the city's node limits
        days=days,
        seed=seed,
        start=first,
        plant=parse_plant(plant),
        rate=rate,
        calendar=services.calendar,
    )
    written = history.write_history(engine, sim.cases, sim.transitions, services)
    engine.dispose()
    echo(f"wrote {written.cases} cases (ids {written.first_id}–{written.last_id}) and {written.transitions} steps")
    for kind, codes in sim.truth.items():
        if codes:
            echo(f"planted {kind}: {', '.join(codes)}")


def evaluate_cmd(
    ctx: typer.Context,
    period: str = typer.Option(
        ...,
        "--period",
        help=f"{PERIOD_HELP}.",
    ),
    subject: str = typer.Option("region", "--subject", help=f"{', '.join(EVALUATED)}."),
    level: str = typer.Option("tier3", "--level", help="For regions: unit_grid, tier3, tier2, tier1, district."),
    out: Path | None = typer.Option(None, "--out", help="Write the table: .csv, .xlsx or .pdf (the printed 考核表)."),
    top: int = typer.Option(15, "--top", min=0, help="Rows to print (0: none, e.g. with --out)."),
    as_of: str | None = typer.Option(None, "--as-of", help=f"{AS_OF_HELP}."),
) -> None:
    """综合评价: indicators, score and grade per subject for a period, ranked (with change vs the period before),
    the period's cases judged by their record up to --as-of (default now; provisional before the period end)."""
    check_subject(subject)
    p = parse_period(period)
    settings = settings_of(ctx)
    services = case_svc.load_services(settings)  # the city's files first: a bad one is refused before the database
    engine = make_engine(prepare_database(settings, echo))
    try:
        with only_the_answers_calendar_warning():  # its own warning is printed below
            table = indicators(engine, services, p, subject, level, as_of=as_of)
    finally:
        engine.dispose()
    provisional = " — provisional (暂定): the period had not ended then" if table.attrs["provisional"] else ""
    echo(f"{p.label}: cases reported in the period, judged as of {table.attrs['as_of'].isoformat()}{provisional}")
    warning = calendar_warning(table.attrs["unknown_years"])
    if warning is not None:
        typer.echo(f"warning: {warning}", err=True)
    if out is not None:
        write_table(table, out, table_title(p, subject, level), subject)
        echo(f"wrote {out}")
    if top == 0:  # the file only: a line, not pandas' "Empty DataFrame" of no rows
        echo(f"{len(table)} rows; none printed (--top 0)")
        return
    if table.empty:  # a post's table of a period in which no one of the post acted (regions, departments: all listed)
        echo("0 rows: no one of this post acted in the period")
        return
    shown = [c for c in ("rank", "rank_change", "subject", "name", "score", "grade") if c in table.columns]
    with pd.option_context("display.width", 160, "display.max_columns", 12):
        echo(table[shown + [c for c in table.columns if c not in shown][:6]].head(top).to_string(index=False))
