"""The catalogue and rules against the stored data at start (gisgrid.start_checks; `serve` and `db up`)."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gisgrid import case_intake
from gisgrid import cases as svc
from gisgrid.cli import app
from gisgrid.demo_loader import DEMO_ROUTING_FILE
from gisgrid.errors import ConfigError
from gisgrid.routing import RULE_COLUMNS, load_routing_rules
from gisgrid.settings import PROJECT_ROOT, Settings
from gisgrid.start_checks import check_stored_data

runner = CliRunner()
DATA = PROJECT_ROOT / "data"
NOW = dt.datetime(2025, 9, 26, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def _report(engine: Engine, services: svc.CaseServices, spot: tuple[float, float], class_code: str) -> int:
    item = case_intake.Intake(class_code=class_code, lon=spot[0], lat=spot[1], datum="cgcs2000")
    case_id, created = case_intake.intake(engine, services, item, now=NOW)
    assert created
    return case_id


def _without(tmp_path: Path, *prefixes: str) -> Path:
    """A city copy of data/ whose event classes and limits files lack the rows starting with ``prefixes``."""
    city = tmp_path / "city"
    shutil.copytree(DATA, city)
    for name in ("event_classes.csv", "event_time_limits.csv"):
        path = city / "catalogue" / name
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(x for x in lines if not x.startswith(prefixes)), encoding="utf-8")
    return city


def test_open_cases_whose_class_or_disposal_type_the_catalogue_lost_are_found(
    loaded: Engine,
    services: svc.CaseServices,
    settings: Settings,
    spot: tuple[float, float],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # review27 D4: a city dropped 06010 while 41 open cases used it: every action then failed with unknown_class.
    engine = loaded
    _open_a, _open_b, closed = (_report(engine, services, spot, "06010") for _ in range(3))
    typed = _report(engine, services, spot, "06011")
    with engine.begin() as conn:
        conn.execute(text("UPDATE cases SET state = 'closed' WHERE id = :i"), {"i": closed})
        conn.execute(text("UPDATE cases SET disposal_type = '夜间清运' WHERE id = :i"), {"i": typed})
    city = settings.model_copy(update={"catalogue_dir": _without(tmp_path, "gbt47678,06010,")})
    found = check_stored_data(engine, svc.load_services(city), city)
    folder = tmp_path / "city" / "catalogue"
    assert found.refusals == [
        "gbt47678 event class 06010 is used by 2 open case(s) but is in no event classes file: every action on "
        f"them would be refused (unknown_class); keep its row in {folder / 'event_classes.csv'} (or a "
        "GISGRID_CATALOGUE_EXTRA classes file), with its time limits, until those cases are closed",
        "disposal type 夜间清运 of gbt47678 event class 06011 is used by 1 open case(s) but is in no time-limits "
        f"file: their actions would be refused; keep its row in {folder / 'event_time_limits.csv'} (or a "
        "GISGRID_CATALOGUE_EXTRA time-limits file) until those cases are closed",
    ]
    # With the catalogue the cases were made with, only the disposal type no limits file has is left.
    assert check_stored_data(engine, services, settings).refusals == [
        "disposal type 夜间清运 of gbt47678 event class 06011 is used by 1 open case(s) but is in no time-limits "
        f"file: their actions would be refused; keep its row in {DATA / 'catalogue' / 'event_time_limits.csv'} "
        "(or a GISGRID_CATALOGUE_EXTRA time-limits file) until those cases are closed"
    ]
    with engine.begin() as conn:
        conn.execute(text("UPDATE cases SET disposal_type = NULL WHERE id = :i"), {"i": typed})
    assert check_stored_data(engine, services, settings).refusals == []

    # `gisgrid serve` refuses before opening its socket; `gisgrid db up` warns.
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "data"),
           "GISGRID_CATALOGUE_DIR": str(tmp_path / "city")}  # fmt: skip
    loads: list[Path] = []
    load = svc.load_services

    def counted(settings: Settings) -> svc.CaseServices:
        loads.append(settings.catalogue_dir)
        return load(settings)

    with monkeypatch.context() as patch:  # review28 D6: serve read every city file twice (start data, the check)
        patch.setattr("api.main.load_services", counted)
        patch.setattr("gisgrid.cases.load_services", counted)
        served = runner.invoke(app, ["serve", "--port", "1"], env=env)
    assert loads == [tmp_path / "city"]
    assert served.exit_code == 1 and isinstance(served.exception, ConfigError), served.output
    assert served.exception.message == (
        "open cases use event classes or disposal types the catalogue no longer has; not starting (see "
        "data/catalogue/README.md, 'Dropping a class'):\n  gbt47678 event class 06010 is used by 2 open case(s) "
        f"but is in no event classes file: every action on them would be refused (unknown_class); keep its row "
        f"in {folder / 'event_classes.csv'} (or a GISGRID_CATALOGUE_EXTRA classes file), with its time limits, "
        "until those cases are closed"
    )
    assert "gisgrid on http" not in served.output
    up = runner.invoke(app, ["db", "up"], env=env)
    assert up.exit_code == 0, up.output
    assert (
        "warning: gbt47678 event class 06010 is used by 2 open case(s) but is in no event classes file: every "
        f"action on them would be refused (unknown_class); keep its row in {folder / 'event_classes.csv'} (or a "
        "GISGRID_CATALOGUE_EXTRA classes file), with its time limits, until those cases are closed (gisgrid "
        "serve refuses to start until then)\n"
    ) in up.output


def test_rules_naming_areas_no_stored_grid_has_are_warned_about(
    loaded: Engine, services: svc.CaseServices, settings: Settings, tmp_path: Path
) -> None:
    # review27 D9: the small district is 419902; the demo rules' areas are in 419901.
    extra = tmp_path / "city_routing.csv"
    extra.write_text(
        ",".join(RULE_COLUMNS) + "\n"
        "C1,50,gbt47678,06,419902001,,,,,990000000000000013,in the stored district\n"
        "C2,50,gbt47678,07,,419902001,,,,990000000000000013,tier 1 = the stored street\n",
        encoding="utf-8",
    )
    rules = load_routing_rules(DATA, [DEMO_ROUTING_FILE, extra])
    found = check_stored_data(loaded, replace(services, rules=rules), settings)
    never = "the rule never matches"
    area = "matches no stored unit grid (a code outside the loaded boundaries)"
    demo = DEMO_ROUTING_FILE
    assert found.warnings == [
        f"routing rule R014 ({demo}:4): area_prefix 419901001003 {area}: {never}",
        f"routing rule R012 ({demo}:2): area_prefix 419901009 {area}: {never}",
        f"routing rule R013 ({demo}:3): area_prefix 419901010 {area}: {never}",
        f"routing rule R015 ({demo}:5): tier_grid 41990100200101 is not a stored management grid: {never}",
    ]
    assert found.refusals == []
    # review55 F1: the base rules name no area, so a city's start has nothing to warn about.
    city = replace(services, rules=load_routing_rules(DATA, [extra]))
    assert check_stored_data(loaded, city, settings).warnings == []


def test_db_up_and_serve_warn_once_when_the_working_hours_differ_from_those_of_the_stored_deadlines(
    loaded: Engine,
    services: svc.CaseServices,
    settings: Settings,
    spot: tuple[float, float],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A case is filed under the default hours; GISGRID_WORKING_HOURS then changes to the seasonal form: ``db up``
    and ``serve`` print one warning naming how many cases count under which hours, those in force and the command."""
    from gisgrid.calendar import load_city_calendar
    from gisgrid.cli.db import report_stored_data_checks

    seasonal = "05-01..09-30=08:00-12:00,14:30-18:00;10-01..04-30=08:30-12:00,13:30-17:30"
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "data")}
    up = runner.invoke(app, ["db", "up"], env=env)
    assert up.exit_code == 0 and "GISGRID_WORKING_HOURS" not in up.output, up.output

    def said(output: str) -> list[str]:  # the hours' lines (the small district also draws the placeholder warning)
        return [line for line in output.splitlines(keepends=True) if "GISGRID_WORKING_HOURS" in line]

    _report(loaded, services, spot, "06010")
    warning = (
        "warning: 工作时间 GISGRID_WORKING_HOURS 已变更: 在办案件已保存的时限 1 件按 08:30-12:00,13:30-17:30 计算, "
        f"现行为 {seasonal}; 请运行 gisgrid cases recompute-deadlines(不带 --year; 可先加 --dry-run 查看)按现行工作时间"
        "重算 / working hours changed: open cases' stored deadlines were counted under other hours (1 open case(s) "
        f"under 08:30-12:00,13:30-17:30), GISGRID_WORKING_HOURS is now {seasonal}; run `gisgrid cases "
        "recompute-deadlines` (without --year; --dry-run first to see) to count them again under the hours in force\n"
    )
    up = runner.invoke(app, ["db", "up"], env={**env, "GISGRID_WORKING_HOURS": seasonal})
    assert up.exit_code == 0, up.output
    assert said(up.output) == [warning]
    # serve's check (the same function, refusing), with the city's files it has loaded
    city = settings.model_copy(update={"working_hours": seasonal, "data_dir": tmp_path / "data"})
    capsys.readouterr()
    report_stored_data_checks(
        city, refuse=True, services=replace(services, calendar=load_city_calendar(None, seasonal))
    )
    assert said(capsys.readouterr().err) == [warning]
    # the hours back as the case was counted under: nothing said
    report_stored_data_checks(settings, refuse=True, services=services)
    assert said(capsys.readouterr().err) == []
