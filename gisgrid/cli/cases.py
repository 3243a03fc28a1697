"""``gisgrid cases``: report, list, show, work, merge and print cases (案件) from the command line.

A thin layer over ``gisgrid.cases`` — the same service functions the API routers call. Every refusal of bad
input is an :class:`InvalidInput` (``error: …`` and exit 1 from ``gisgrid.cli.main``), raised before anything is
written."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine

from gisgrid import case_actions, case_documents, case_intake, case_queries, deadlines, geodesy, history, workflow
from gisgrid import cases as svc
from gisgrid.cli.boundary_options import SrcDatum
from gisgrid.cli.common import EXIT_FAILED, EXIT_REFUSED, check_option_point, echo, settings_of, stage_progress
from gisgrid.documents import DOCUMENT_LABELS
from gisgrid.errors import InvalidInput, NotFound
from gisgrid.evaluation_service import PERIOD_HELP, parse_period
from gisgrid.paging import MAX_LIMIT, MAX_OFFSET
from gisgrid.photos import MAX_BYTES as MAX_PHOTO_BYTES
from gisgrid.storage.database import make_engine, prepare_database

app = typer.Typer(
    help="Cases 案件: report, list, show, act, merge, print orders, import a history.", no_args_is_help=True
)

#: What the API accepts (``api/routers/cases.py`` CaseIn, ``api/dependencies.py`` page_query).
ROLE_HELP = ", ".join(f"{r} ({label})" for r, label in workflow.ROLES.items())


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    geojson = "geojson"


class ReportFormat(StrEnum):
    """What a command printing a report, not cases, takes (``recompute-deadlines``): no geojson."""

    text = "text"
    json = "json"


class DocumentKind(StrEnum):
    dispatch = "dispatch"
    supervision = "supervision"


def _open(ctx: typer.Context) -> tuple[Engine, svc.CaseServices]:
    settings = settings_of(ctx)
    engine = make_engine(prepare_database(settings, echo))
    services = svc.load_services(settings)
    svc.sync_reference_data(engine, services)
    return engine, services


def _print(data: object) -> None:
    echo(json.dumps(data, ensure_ascii=False, indent=1, default=str))


def _check_lengths(**values: str | None) -> None:
    """Refuse text longer than a case takes (``svc.TEXT_LIMITS``), named by its option (``key``: the key's)."""
    fields = {("idempotency_key" if k == "key" else k): v for k, v in values.items()}
    options = {f: "--" + k.replace("_", "-") for f, k in zip(fields, values, strict=True)}
    svc.check_texts(fields, labels=options)


def _read_photos(paths: list[Path]) -> list[tuple[str, bytes]]:
    """(file name, bytes) of each ``--photo``; the picture itself is checked by the domain (``photos[i]: …``)."""
    photos: list[tuple[str, bytes]] = []
    for p in paths:
        if not p.is_file():
            raise InvalidInput(f"--photo: {p} is not a file")
        try:
            size = p.stat().st_size
            if size > MAX_PHOTO_BYTES:
                raise InvalidInput(f"--photo: {p} is larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB")
            photos.append((p.name, p.read_bytes()))
        except OSError as exc:
            raise InvalidInput(f"--photo: cannot read {p}: {exc.strerror or exc}") from None
    return photos


def _when(option: str, value: str | None) -> dt.datetime | None:
    """An ISO date or date-time, parsed as the API parses ``since``/``until`` (without a zone: Beijing time, as
    ``gisgrid.cases`` reads it)."""
    if value is None:
        return None
    try:
        parsed = TypeAdapter(dt.datetime).validate_python(value.strip())
    except ValidationError:
        raise InvalidInput(f"{option}: {value!r} is not a date or date-time (2026-10-01 or 2026-10-01T08:30)") from None
    return parsed


def _window(since: str | None, until: str | None, period: str | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    if period is not None:
        if since is not None or until is not None:
            raise InvalidInput("--period: give either --period or --since/--until, not both")
        p = parse_period(period)
        return p.start.to_pydatetime(), p.end.to_pydatetime()
    return _when("--since", since), _when("--until", until)  # the order is checked with the other filters


def _bbox(value: str | None) -> geodesy.BBox | None:
    """``minlon,minlat,maxlon,maxlat``, parsed as the API parses its bbox."""
    return None if value is None else geodesy.parse_bbox(value, "--bbox")


def _case(engine: Engine, ref: str) -> int:
    """The id of the case a CASE argument names (its id or its case number: svc.CASE_REF_HELP)."""
    with engine.connect() as conn:
        return svc.resolve_case_ref(conn, ref)


def _case_line(case: dict[str, Any]) -> str:
    return f"case {case['case_no']}: {case['state_label']} ({case['state']}), version {case['version']}"


@app.command()
def report(
    ctx: typer.Context,
    class_code: str = typer.Option(..., "--class", help="Event class, e.g. 06010 (暴露垃圾)."),
    lon: float | None = typer.Option(None, "--lon", help="Longitude; leave out to use a photo's EXIF GPS."),
    lat: float | None = typer.Option(None, "--lat"),
    datum: SrcDatum = typer.Option(SrcDatum.wgs84, "--datum", help="Datum of lon/lat (gcj02: AMap, bd09: Baidu)."),
    scheme: str = typer.Option("gbt47678", "--scheme", help="gbt47678 or cjt214."),
    description: str | None = typer.Option(None, "--description", help="问题描述."),
    address: str | None = typer.Option(None, "--address", help="事发地址, e.g. 中原路12号."),
    source: str | None = typer.Option(
        None,
        "--source",
        help=", ".join(f"{k} ({v})" for k, v in svc.SOURCES.items())
        + "; default the role's own channel (intake: hotline, supervisor: patrol).",
    ),
    reporter: str | None = typer.Option(None, "--reporter", help="Who reports (上报人)."),
    role: str = typer.Option(
        "intake",
        "--role",
        help=f"The reporter's role: {ROLE_HELP}. Default intake (受理员): the operator at the command line "
        "registers the report, of any channel.",
    ),
    disposal_type: str | None = typer.Option(
        None, "--disposal-type", help="处置类型 of the class, e.g. 紧急 (its time limit); default 默认."
    ),
    photo: list[Path] = typer.Option([], "--photo", help="Photo file (repeatable); EXIF GPS used when no lon/lat."),
    idempotency_key: str | None = typer.Option(None, "--key", help="Client key: a retry creates no second case."),
    external_ref: str | None = typer.Option(
        None, "--external-ref", help="The sending system's own number (12345 工单号), kept with the case."
    ),
) -> None:
    """Report a case (上报): located, numbered, routed; prints the case."""
    _check_lengths(
        description=description, address=address, reporter=reporter, key=idempotency_key, external_ref=external_ref
    )
    svc.check_idempotency_key(idempotency_key, "--key")
    case_intake.check_role(role, "--role")
    check_option_point(lon, lat)
    item = case_intake.Intake(
        class_code=class_code,
        scheme=scheme,
        lon=lon,
        lat=lat,
        datum=datum.value,
        description=description,
        address=address,
        source=source,
        reporter=reporter,
        reporter_role=role,
        disposal_type=disposal_type,
        idempotency_key=idempotency_key,
        external_ref=external_ref,
        photos=_read_photos(photo),
    )
    engine, services = _open(ctx)
    case_id, created = case_intake.intake(engine, services, item)
    with engine.connect() as conn:
        case = svc.get_case(conn, services, case_id, role=role)
    echo(("created" if created else "already reported (same key)") + f": case {case['case_no']} (id {case_id})")
    shown = ("id", "case_no", "state", "unit_grid_code", "tier3_code", "disposal_type", "due_at", "routing")
    extra = {"external_ref": case["external_ref"]} if case.get("external_ref") else {}  # the sender's number kept
    _print({k: case[k] for k in shown} | extra | {"photos": len(case["photos"])})


@app.command("list")
def list_(
    ctx: typer.Context,
    state: str | None = typer.Option(None, "--state", help="Comma-separated states, e.g. dispatched,returned."),
    light: str | None = typer.Option(None, "--light", help="green, yellow or red (红黄绿灯)."),
    class_code: str | None = typer.Option(None, "--class", help="Event class code."),
    department: str | None = typer.Option(None, "--department", help="Department code (处置部门)."),
    grid: str | None = typer.Option(None, "--grid", help="Unit grid (15 digits) or tier grid (9/12/14) code."),
    source: str | None = typer.Option(None, "--source", help=", ".join(f"{k} ({v})" for k, v in svc.SOURCES.items())),
    since: str | None = typer.Option(None, "--since", help="Reported at or after (2026-10-01[T08:30], Beijing time)."),
    until: str | None = typer.Option(None, "--until", help="Reported before."),
    period: str | None = typer.Option(None, "--period", help=f"Instead of --since/--until: {PERIOD_HELP}."),
    bbox: str | None = typer.Option(None, "--bbox", help="minlon,minlat,maxlon,maxlat (degrees)."),
    escalation_level: int | None = typer.Option(
        None, "--escalation-level", min=1, max=3, help="提级 level: 2 二级网格(社区), 1 一级网格(街道)."
    ),
    case_no: str | None = typer.Option(None, "--case-no", help="Case number (案件编号), exact."),
    pending_extension: bool | None = typer.Option(
        None,
        "--pending-extension/--no-pending-extension",
        help="Cases whose 延期申请 waits for approval (延期待批), or the others.",
        show_default=False,
    ),
    queue: str | None = typer.Option(
        None, "--queue", help="manual (人工派遣: no department decided yet, a 派遣 still ahead) or routed (one is)."
    ),
    changed_since: str | None = typer.Option(
        None, "--changed-since", help="The record changed (reported, any step) at or after (Beijing time)."
    ),
    external_ref: str | None = typer.Option(None, "--external-ref", help="The sending system's own number, exact."),
    sort: str = typer.Option(
        "newest",
        "--sort",
        help="newest (last reported first), updated (least recently changed) "
        "or due (running deadline first, then 挂账).",
    ),
    limit: int = typer.Option(20, "--limit", help=f"Cases per page, 1–{MAX_LIMIT}."),
    offset: int = typer.Option(0, "--offset", help=f"Cases to skip, 0–{MAX_OFFSET}."),
    after: str | None = typer.Option(
        None, "--after", help="Page cursor: start after the case it names (the 'next page' line of the last listing)."
    ),
    output: OutputFormat = typer.Option(
        OutputFormat.text, "--format", help="text (one line per case), json or geojson (as the API answers)."
    ),
) -> None:
    """List cases, newest first unless --sort updated or due (the filters and orders of GET /cases)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"--limit: must be between 1 and {MAX_LIMIT}, got {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(f"--offset: must be between 0 and {MAX_OFFSET}, got {offset}")
    start, end = _window(since, until, period)
    f = case_queries.CaseFilter(
        state=[s for s in state.split(",") if s] if state else None,
        light=light,
        class_code=class_code,
        department=department,
        grid=grid,
        source=source,
        since=start,
        until=end,
        bbox=_bbox(bbox),
        escalation_level=escalation_level,
        case_no=case_no,
        pending_extension=pending_extension,
        queue=queue,
        changed_since=_when("--changed-since", changed_since),
        external_ref=external_ref,
        sort=sort,
        limit=limit,
        offset=offset,
        after=after,
    )
    engine, services = _open(ctx)
    with engine.connect() as conn:
        items, matched, next_after = case_queries.case_page(conn, services, f)
    if output is OutputFormat.json:
        _print({"data": items, "count": matched, "next_after": next_after})
        return
    if output is OutputFormat.geojson:
        features = [case_queries.as_feature(c) for c in items]
        _print(
            {
                "type": "FeatureCollection",
                "features": features,
                "numberMatched": matched,
                "numberReturned": len(items),
                "next_after": next_after,
            }
        )
        return
    echo(f"{matched} case(s)")
    for c in items:
        echo(
            f"{c['id']:>6} {c['case_no']} {c['state_label']:<4} {c['light'] or '-':<6} {c['class_name']} "
            f"{c['unit_grid_code']} due {c['due_at'] or '-'}"
        )
    if next_after is not None:
        echo(f"next page: --after {next_after}")


@app.command()
def show(
    ctx: typer.Context,
    case: str = typer.Argument(..., help=svc.CASE_REF_HELP),
    role: str | None = typer.Option(None, "--role", help=f"List the actions this role may take: {ROLE_HELP}."),
) -> None:
    """One case with its timeline, photos and orders (and the actions ROLE may take)."""
    engine, services = _open(ctx)
    case_id = _case(engine, case)
    with engine.connect() as conn:
        _print(svc.get_case(conn, services, case_id, role=role))


@app.command()
def act(
    ctx: typer.Context,
    case: str = typer.Argument(..., help=svc.CASE_REF_HELP),
    action: str = typer.Argument(..., help="verify, file, dispatch, handle, check, close, return, suspend …"),
    role: str = typer.Option(..., "--role", help=f"Who acts: {ROLE_HELP}."),
    actor: str = typer.Option(..., "--actor", help="Who acts (name)."),
    department: str | None = typer.Option(
        None,
        "--department",
        help="With --role department: the department acting (its code); it acts only on the cases dispatched to "
        "it. Left out, the command line acts for any.",
    ),
    version: int = typer.Option(..., "--version", help="The case version you acted on."),
    note: str | None = typer.Option(None, "--note", help="备注."),
    result: str | None = typer.Option(None, "--result", help="处置结果 (handle), as the API's action form takes it."),
    reason: str | None = typer.Option(None, "--reason", help="原因 (return, rework, suspend, void …)."),
    payload: str = typer.Option("{}", "--payload", help='JSON object, e.g. {"department": "…", "reason": "…"}'),
    photo: list[Path] = typer.Option(
        [], "--photo", help="Photo taken with the action (repeatable): 处置 after-photo, evidence for the others."
    ),
    idempotency_key: str | None = typer.Option(
        None, "--key", help="Client key: run again with it, the step already taken is shown, not taken twice."
    ),
) -> None:
    """Apply a workflow action (one transaction; a stale version is refused)."""
    svc.check_idempotency_key(idempotency_key, "--key", per="action")
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--payload is not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise InvalidInput("--payload must be a JSON object")
    for key, value in (("result", result), ("reason", reason)):
        if value:
            if data.get(key) not in (None, value):
                raise InvalidInput(f"--{key}: {key} is in --payload too, with another value; give it once")
            data[key] = value
    _check_lengths(note=note, result=result, reason=reason, key=idempotency_key)
    photos = _read_photos(photo)
    engine, services = _open(ctx)
    req = case_actions.ActionRequest(
        action=action,
        role=role,
        actor=actor,
        version=version,
        note=note,
        payload=data,
        photos=photos,
        idempotency_key=idempotency_key,
        department=department,
    )
    case_id = _case(engine, case)
    acted = case_actions.act(engine, services, case_id, req)
    with engine.connect() as conn:
        done = svc.get_case(conn, services, case_id, role=role, department=department)
    replayed = " (already taken with this --key: nothing done again)" if acted.replayed else ""
    echo(f"{_case_line(done)}, due {done['due_at']}{replayed}")


@app.command()
def merge(
    ctx: typer.Context,
    case: str = typer.Argument(..., help="The duplicate (voided). " + svc.CASE_REF_HELP),
    into_ref: str = typer.Option(..., "--into", help="The case to keep, by id or case number as CASE."),
    version: int = typer.Option(..., "--version", help="The duplicate's version you acted on."),
    actor: str = typer.Option(..., "--actor", help="Who merges (name)."),
    role: str = typer.Option(..., "--role", help="Who merges: shift_lead (值班长) voids cases."),
) -> None:
    """合并重复案件: void a duplicate report and point it at the case kept (POST /cases/{id}/merge)."""
    engine, services = _open(ctx)
    case_id, into = _case(engine, case), _case(engine, into_ref)
    case_actions.merge_duplicate(engine, services, case_id, into, actor=actor, role=role, version=version)
    with engine.connect() as conn:
        merged = svc.get_case(conn, services, case_id, role=role, full=False)
        kept = svc.get_case(conn, services, into, full=False)
    echo(f"{_case_line(merged)}, duplicate of case {kept['case_no']} (id {into})")


@app.command()
def document(
    ctx: typer.Context,
    case: str = typer.Argument(..., help=svc.CASE_REF_HELP),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="File to write, e.g. JB2026000001.html; a name ending in .pdf writes the PDF. Default: the order's "
        "number in the current folder (JB2026000001-01.html, or .pdf with --pdf).",
    ),
    kind: DocumentKind = typer.Option(
        DocumentKind.dispatch, "--kind", help="dispatch (交办单, issued on 派遣) or supervision (督办单, on 督办)."
    ),
    number: str | None = typer.Option(
        None, "--number", help="Which order when there are several, e.g. JB2026000001-02; default the latest."
    ),
    pdf: bool = typer.Option(
        False, "--pdf", help="Write the A4 PDF (GET /cases/{id}/documents/{doc}.pdf) instead of the HTML page."
    ),
) -> None:
    """交办单 / 督办单: write a case's printable order (the page GET /cases/{id}/documents/{doc} serves, with its
    photos inside the file), or its PDF with --pdf or an --out ending in .pdf. Without --out the file is the order's
    number in the current folder (JB2026000001-01.html, or .pdf with --pdf); the line printed names it."""
    if out is not None:
        folder = out.parent if str(out.parent) else Path(".")
        if not folder.is_dir():
            raise InvalidInput(f"--out: folder {folder} does not exist")
        if out.is_dir():
            raise InvalidInput(f"--out: {out} is a folder")
        suffix = out.suffix.lower()
        if pdf and suffix in (".html", ".htm"):  # a PDF under an .html name opens as garbage
            raise InvalidInput(f"--out: {out} names an HTML file; with --pdf name it .pdf")
        pdf = pdf or suffix == ".pdf"
    engine, services = _open(ctx)
    case_id = _case(engine, case)
    with engine.connect() as conn:
        shown = svc.get_case(conn, services, case_id)
        docs = [d for d in shown["documents"] if d["kind"] == kind.value]
        label = f"{DOCUMENT_LABELS[kind]} ({kind.value} order)"
        if not docs:
            raise NotFound(f"case {shown['case_no']} has no {label} yet")
        if number is None:
            doc = docs[-1]
        else:
            doc = next((d for d in docs if d["number"] == number), None)
            if doc is None:
                raise NotFound(
                    f"case {shown['case_no']} has no {label} {number}; it has {', '.join(d['number'] for d in docs)}"
                )
    if out is None:  # the order's number (letters, digits and '-'): a safe name in the current folder
        out = Path(f"{doc['number']}.{'pdf' if pdf else 'html'}")
        if out.is_dir():
            raise InvalidInput(f"{out} is a folder in the current folder: name the file with --out")
    content: str | bytes
    center = settings_of(ctx).center_name  # the order's issuer (GISGRID_CENTER_NAME)
    if pdf:  # the photos are read from the photo store into the PDF
        content = case_documents.render_document_pdf(engine, services, case_id, doc["id"], issuing_body=center)[0]
    else:  # a file opened or printed away from the service: its photos inline, not the service's URLs
        with engine.connect() as conn:
            content = case_documents.render_document(
                conn, services, case_id, doc["id"], embed_photos=True, issuing_body=center
            )
    _write_atomically(out, content)
    echo(f"wrote {out} ({DOCUMENT_LABELS[kind]} {doc['number']}{', PDF' if pdf else ''})")


def _write_atomically(path: Path, content: str | bytes) -> None:
    """The whole file or none: written beside ``path`` and renamed over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content.encode("utf-8") if isinstance(content, str) else content)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InvalidInput(f"--out: cannot write {path}: {exc.strerror or exc}") from None


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
    workflow; accepted cases are written whole with their own numbers, refused ones listed with row/field/reason.
    Exit 0: every case imported; 2: some refused, the others imported; 1: nothing imported."""
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
    # As components import: 1 when nothing was imported (every row refused, or any under --all-or-nothing); 3 when
    # some cases were refused and the others imported, so that a script tells a partial import from a clean one.
    if summary.everything_refused or (all_or_nothing and summary.refused_rows):
        raise typer.Exit(EXIT_FAILED)
    if summary.refused_rows:
        raise typer.Exit(EXIT_REFUSED)


@app.command("recompute-deadlines")
def recompute_deadlines(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Count and list the changes; write nothing."),
    year: int | None = typer.Option(
        None,
        "--year",
        min=1900,
        max=2100,
        help="Only the clocks that run through this year (e.g. 2027), counted under the hours in force.",
    ),
    output: ReportFormat = typer.Option(ReportFormat.text, "--format", help="text or json."),
) -> None:
    """重算时限: once the calendar knows a year it did not (chinesecalendar upgraded, or the year listed in
    GISGRID_CALENDAR_FILE), or GISGRID_WORKING_HOURS changed, count the running deadline of every open case again
    from its log — the node's start and limit, extensions granted by a length, 挂账 — and store the ones that
    change, in one transaction, each with a log entry (重算时限, actor system, old → new). Without --year: the open
    cases whose deadline was counted under other working hours than those in force (which they then carry), and
    the years GISGRID_CALENDAR_FILE describes. Exit 0: done; 3: some cases could not be recomputed (an
    extension approved before its length was recorded): listed, left as stored, the others written."""
    engine, services = _open(ctx)
    try:
        report = deadlines.recompute_deadlines(engine, services, dry_run=dry_run, year=year)
    finally:
        engine.dispose()
    if output is ReportFormat.json:
        _print(deadlines.as_json(report))
    else:
        for line in deadlines.summary_lines(report):
            echo(line)
    if report.not_recomputable:
        raise typer.Exit(EXIT_REFUSED)
