"""``gisgrid cases``: report, list, show and work cases (案件) from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from sqlalchemy import Engine

from gisgrid import cases as svc
from gisgrid import history
from gisgrid.cli.boundary_options import SrcDatum
from gisgrid.cli.common import echo, settings_of, stage_progress
from gisgrid.errors import InvalidInput
from gisgrid.storage.database import make_engine, prepare_database

app = typer.Typer(help="Cases 案件: report, list, show, act, import a history.", no_args_is_help=True)


def _open(ctx: typer.Context) -> tuple[Engine, svc.CaseServices]:
    settings = settings_of(ctx)
    engine = make_engine(prepare_database(settings, echo))
    services = svc.load_services(settings)
    svc.sync_reference_data(engine, services)
    return engine, services


def _print(data: object) -> None:
    echo(json.dumps(data, ensure_ascii=False, indent=1, default=str))


@app.command()
def report(
    ctx: typer.Context,
    class_code: str = typer.Option(..., "--class", help="Event class, e.g. 06010 (暴露垃圾)."),
    lon: float | None = typer.Option(None, "--lon"),
    lat: float | None = typer.Option(None, "--lat"),
    datum: SrcDatum = typer.Option(SrcDatum.wgs84, "--datum"),
    scheme: str = typer.Option("gbt47678", "--scheme", help="gbt47678 or cjt214."),
    description: str | None = typer.Option(None, "--description"),
    source: str = typer.Option("patrol", "--source", help=", ".join(svc.SOURCES)),
    reporter: str | None = typer.Option(None, "--reporter"),
    photo: list[Path] = typer.Option([], "--photo", help="Photo file(s); EXIF GPS used when no lon/lat."),
    idempotency_key: str | None = typer.Option(None, "--key", help="Client key: a retry creates no second case."),
) -> None:
    """Report a case (上报): located, numbered, routed; prints the case."""
    photos = []
    for p in photo:
        if not p.exists():
            raise InvalidInput(f"--photo: {p} does not exist")
        photos.append((p.name, p.read_bytes()))
    engine, services = _open(ctx)
    item = svc.Intake(
        class_code=class_code,
        scheme=scheme,
        lon=lon,
        lat=lat,
        datum=datum.value,
        description=description,
        source=source,
        reporter=reporter,
        idempotency_key=idempotency_key,
        photos=photos,
    )
    case_id, created = svc.intake(engine, services, item)
    with engine.connect() as conn:
        case = svc.get_case(conn, services, case_id)
    echo(("created" if created else "already reported (same key)") + f": case {case['case_no']} (id {case_id})")
    _print({k: case[k] for k in ("id", "case_no", "state", "unit_grid_code", "tier3_code", "due_at", "routing")})


@app.command("list")
def list_(
    ctx: typer.Context,
    state: str | None = typer.Option(None, "--state", help="Comma-separated states."),
    light: str | None = typer.Option(None, "--light", help="green, yellow or red."),
    class_code: str | None = typer.Option(None, "--class"),
    department: str | None = typer.Option(None, "--department"),
    grid: str | None = typer.Option(None, "--grid", help="Unit or tier grid code."),
    limit: int = typer.Option(20, "--limit"),
    offset: int = typer.Option(0, "--offset"),
) -> None:
    """List cases, newest first."""
    engine, services = _open(ctx)
    f = svc.CaseFilter(
        state=state.split(",") if state else None,
        light=light,
        class_code=class_code,
        department=department,
        grid=grid,
        limit=limit,
        offset=offset,
    )
    with engine.connect() as conn:
        items, matched = svc.list_cases(conn, services, f)
    echo(f"{matched} case(s)")
    for c in items:
        echo(
            f"{c['id']:>6} {c['case_no']} {c['state_label']:<4} {c['light'] or '-':<6} {c['class_name']} "
            f"{c['unit_grid_code']} due {c['due_at'] or '-'}"
        )


@app.command()
def show(
    ctx: typer.Context, case_id: int = typer.Argument(...), role: str | None = typer.Option(None, "--role")
) -> None:
    """One case with its timeline (and the actions ROLE may take)."""
    engine, services = _open(ctx)
    with engine.connect() as conn:
        _print(svc.get_case(conn, services, case_id, role=role))


@app.command()
def act(
    ctx: typer.Context,
    case_id: int = typer.Argument(...),
    action: str = typer.Argument(..., help="verify, file, dispatch, handle, check, close, return, suspend …"),
    role: str = typer.Option(..., "--role", help="supervisor, grid_worker, intake, shift_lead, dispatcher, …"),
    actor: str = typer.Option(..., "--actor", help="Who acts."),
    version: int = typer.Option(..., "--version", help="The case version you acted on."),
    note: str | None = typer.Option(None, "--note"),
    payload: str = typer.Option("{}", "--payload", help='JSON, e.g. {"department": "…", "reason": "…"}'),
) -> None:
    """Apply a workflow action (one transaction; a stale version is refused)."""
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--payload is not JSON: {exc.msg}") from None
    engine, services = _open(ctx)
    req = svc.ActionRequest(action=action, role=role, actor=actor, version=version, note=note, payload=data)
    svc.act(engine, services, case_id, req)
    with engine.connect() as conn:
        case = svc.get_case(conn, services, case_id, role=role)
    echo(
        f"case {case['case_no']}: {case['state_label']} ({case['state']}), version {case['version']}, "
        f"due {case['due_at']}"
    )


@app.command("import-history")
def import_history(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV, one row per transition (see docs/history-import.md)."),
    errors: Path | None = typer.Option(
        None, "--errors", help="Refusals CSV (row, case_no, field, value, reason); default FILE.errors.csv."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row and case; write nothing."),
    all_or_nothing: bool = typer.Option(False, "--all-or-nothing", help="Write nothing if any row is refused."),
) -> None:
    """历史案件导入: load a city's past cases (one row per transition), checked row by row and through the
    workflow; accepted cases are written whole with their own numbers, refused ones listed with row/field/reason."""
    if not file.is_file():
        raise InvalidInput(f"{file}: file not found")
    errors_path = errors or file.with_name(f"{file.stem}.errors.csv")
    engine, services = _open(ctx)
    opts = history.HistoryImportOptions(errors_path=errors_path, dry_run=dry_run, all_or_nothing=all_or_nothing)
    with stage_progress() as progress:
        try:
            summary = history.import_history(engine, file, services, opts, progress=progress)
        finally:
            engine.dispose()
    echo(summary.to_text())
    if summary.everything_refused or (all_or_nothing and summary.refused_rows):
        raise typer.Exit(1)
