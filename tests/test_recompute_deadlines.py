"""``gisgrid cases recompute-deadlines`` (review49 F4): deadlines counted Monday–Friday in a year the calendar did
not know are counted again once the year is known (here: the city's calendar file lists 2099), from the case's log —
the node's start and limit, an extension granted by a length; an extension logged without its length is reported
and left; closed cases are not touched; a dry run writes nothing; a second run changes nothing. And after a change
of GISGRID_WORKING_HOURS (to the seasonal form), the clocks counted under other hours (``cases.hours_counted``)
are counted again without --year, the new hours set on them and the start warning gone (review59 F1–F3).

2099 is a year chinesecalendar will not know for decades; its days in June are well clear of the January and
February rest days listed with them. Each case runs 4 working hours of 处置 (暴露垃圾) or 1 of 核实 from Monday
2099-06-08; the file makes Tue 06-09 and Wed 06-10 rest days and Sat 06-13 a working day."""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import Engine, text

from gisgrid import case_actions, case_intake, deadlines
from gisgrid import cases as svc
from gisgrid.calendar import hours_setting, load_city_calendar, parse_working_hours
from gisgrid.cli import main
from gisgrid.cli.common import EXIT_REFUSED
from gisgrid.settings import Settings
from gisgrid.start_checks import check_stored_data

pytestmark = pytest.mark.filterwarnings("ignore::gisgrid.calendar.CalendarYearUnknown")

TZ = ZoneInfo("Asia/Shanghai")
GARBAGE = "06010"  # 暴露垃圾: 处置 4 working hours

#: 13 weekday rest days of 2099 (the statutory count: the file describes the year) and one adjusted working Saturday.
REST_2099 = ["01-01", "01-02", "02-02", "02-03", "02-04", "02-05", "02-06", "02-09", "02-10", "02-11", "02-12"]
CALENDAR_2099 = (
    "date,kind\n"
    + "".join(f"2099-{d},休息日\n" for d in REST_2099)
    + "2099-06-09,休息日\n2099-06-10,休息日\n2099-06-13,上班日\n"
)


def at(text_: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text_).replace(tzinfo=TZ)


def report(engine: Engine, services: svc.CaseServices, spot: tuple[float, float], now: str) -> int:
    item = case_intake.Intake(class_code=GARBAGE, lon=spot[0], lat=spot[1], datum="cgcs2000")
    case_id, created = case_intake.intake(engine, services, item, now=at(now))
    assert created
    return case_id


def act(engine: Engine, services: svc.CaseServices, case_id: int, action: str, role: str, version: int, now: str,
        photos: list[tuple[str, bytes]] | None = None, **payload: Any) -> None:  # fmt: skip
    req = case_actions.ActionRequest(action=action, role=role, actor="测试员", version=version, payload=payload)
    case_actions.act(engine, services, case_id, replace(req, photos=photos or []), now=at(now))


def dispatched(engine: Engine, services: svc.CaseServices, spot: tuple[float, float]) -> int:
    """A case dispatched Mon 2099-06-08 16:30: 4 working hours → Tue 11:30 counted Mon–Fri (version 4)."""
    cid = report(engine, services, spot, "2099-06-08T09:00:00")
    act(engine, services, cid, "verify", "supervisor", 1, "2099-06-08T09:30:00")
    act(engine, services, cid, "file", "shift_lead", 2, "2099-06-08T10:00:00")
    act(engine, services, cid, "dispatch", "dispatcher", 3, "2099-06-08T16:30:00")
    return cid


def extended(engine: Engine, services: svc.CaseServices, spot: tuple[float, float], **granted: Any) -> int:
    cid = dispatched(engine, services, spot)
    act(engine, services, cid, "request_extension", "department", 4, "2099-06-08T16:45:00", reason="需调大型机械")
    act(engine, services, cid, "approve_extension", "dispatcher", 5, "2099-06-08T17:00:00", **granted)
    return cid


def jpeg(shade: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (shade, 90, 60)).save(buf, "JPEG")
    return buf.getvalue()


@dataclass
class Stored:
    case_no: str
    state: str
    version: int
    due_at: str | None
    disposal_due_at: str | None
    node_started_at: str | None


def stored(engine: Engine, case_id: int) -> Stored:
    with engine.connect() as conn:
        r = conn.execute(
            text("SELECT case_no, state, version, due_at, disposal_due_at, node_started_at FROM cases WHERE id = :i"),
            {"i": case_id},
        ).one()
    iso = [None if t is None else t.astimezone(TZ).isoformat() for t in r[3:]]
    return Stored(r.case_no, r.state, r.version, *iso)


def log(engine: Engine) -> list[tuple[int, str, str, str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT case_id, action, actor, role, details FROM case_transitions ORDER BY id")
        ).all()
    return [tuple(r) for r in rows]


@pytest.fixture
def calendar_file(tmp_path: Path) -> Path:
    path = tmp_path / "calendar-2099.csv"
    path.write_text(CALENDAR_2099, encoding="utf-8")
    return path


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], settings: Settings,
            data_dir: Path, calendar_file: Path, *args: str) -> tuple[int, str]:  # fmt: skip
    monkeypatch.setenv("GISGRID_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("GISGRID_DATA_DIR", str(data_dir))
    monkeypatch.setenv("GISGRID_CALENDAR_FILE", str(calendar_file))
    monkeypatch.setattr(sys, "argv", ["gisgrid", "cases", "recompute-deadlines", *args])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out


def test_deadlines_counted_in_an_unknown_year_are_recomputed_once_the_year_is_known(  # noqa: PLR0915
    loaded: Engine,
    services: svc.CaseServices,
    spot: tuple[float, float],
    calendar_file: Path,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert not services.calendar.knows_year(2099)
    plain = dispatched(loaded, services, spot)
    by_length = extended(loaded, services, spot, amount=2, unit="working_days")
    old_style = extended(loaded, services, spot, amount=2, unit="working_days")
    to_date = extended(loaded, services, spot, new_due_at="2099-06-19T17:30:00")
    verifying = report(loaded, services, spot, "2099-06-08T17:00:00")  # 核实 1 working hour → Tue 09:00
    held = dispatched(loaded, services, spot)  # 挂账 keeps the clock as it stood: due Tue 11:30
    act(loaded, services, held, "suspend", "dispatcher", 4, "2099-06-08T17:00:00", reason="待产权单位")
    closed = dispatched(loaded, services, spot)
    act(
        loaded,
        services,
        closed,
        "handle",
        "department",
        4,
        "2099-06-08T17:00:00",
        [("a.jpg", jpeg(40))],
        result="已清理",
    )
    act(loaded, services, closed, "check", "supervisor", 5, "2099-06-08T17:10:00")
    act(loaded, services, closed, "close", "shift_lead", 6, "2099-06-08T17:20:00")
    # Counted Monday–Friday: 16:30–17:30 Monday, then Tuesday 08:30–11:30; two working days more → Thursday.
    assert stored(loaded, plain).due_at == "2099-06-09T11:30:00+08:00"
    assert stored(loaded, by_length).due_at == stored(loaded, by_length).disposal_due_at == "2099-06-11T11:30:00+08:00"
    assert stored(loaded, to_date).due_at == "2099-06-19T17:30:00+08:00"
    assert stored(loaded, verifying).due_at == "2099-06-09T09:00:00+08:00"
    with loaded.begin() as conn:  # what an approval logged before its length was recorded holds: the new deadline
        logged = conn.execute(
            text("SELECT details FROM case_transitions WHERE case_id = :c AND action = 'approve_extension'"),
            {"c": by_length},
        ).scalar_one()
        assert (logged["amount"], logged["unit"], logged["extended_by"]) == (2, "working_days", "length")
        conn.execute(
            text(
                "UPDATE case_transitions SET details = details - 'amount' - 'unit' - 'extended_by' "
                "WHERE case_id = :c AND action = 'approve_extension'"
            ),
            {"c": old_style},
        )
    with loaded.connect() as conn:
        dated = conn.execute(
            text("SELECT details FROM case_transitions WHERE case_id = :c AND action = 'approve_extension'"),
            {"c": to_date},
        ).scalar_one()
    assert dated["extended_by"] == "date" and "amount" not in dated
    before = {cid: stored(loaded, cid) for cid in (plain, by_length, old_style, to_date, verifying, held, closed)}
    steps = log(loaded)
    no = {cid: s.case_no for cid, s in before.items()}

    # The year becomes known: the city's calendar file lists 2099 (Tue 06-09, Wed 06-10 off; Sat 06-13 on).
    known = replace(services, calendar=load_city_calendar(calendar_file))
    assert known.calendar.knows_year(2099)

    data_dir = tmp_path / "data"
    code, out = run_cli(monkeypatch, capsys, settings, data_dir, calendar_file, "--dry-run")
    assert code == EXIT_REFUSED  # one case could not be recomputed
    lines = out.splitlines()
    assert lines[0] == (
        "检查 6 件在办案件, 将变更 4 件, 无法重算 1 件 / 6 open case(s) checked, 4 would change, 1 not recomputable "
        "(试运行, 未写入) / (dry run: nothing written)"
    )
    assert lines[1:5] == [
        f"  {no[plain]}  2099-06-09 11:30 → 2099-06-11 11:30  (disposal)",
        f"  {no[by_length]}  2099-06-11 11:30 → 2099-06-13 11:30  (disposal)",
        f"  {no[verifying]}  2099-06-09 09:00 → 2099-06-11 09:00  (verify)",
        f"  {no[held]}  2099-06-09 11:30 → 2099-06-11 11:30  (disposal)",
    ]
    assert lines[5] == (
        f"  {no[old_style]}  无法重算 / not recomputable: 2099-06-08 17:00 批准的延期只记录了新的时限, "
        "未记录延长的时间和单位, 无法重算, 保留原时限 / the extension approved 2099-06-08 17:00 recorded only its "
        "new deadline, not the length and unit granted: it cannot be recomputed; the stored deadline is kept"
    )
    assert len(lines) == 6
    assert {cid: stored(loaded, cid) for cid in before} == before and log(loaded) == steps  # nothing written

    now = at("2099-06-08T18:00:00")
    done = deadlines.recompute_deadlines(loaded, known, now=now)
    assert done.written and [o.case_no for o in done.not_recomputable] == [no[old_style]]
    after = {cid: stored(loaded, cid) for cid in before}
    # 4 working hours from Mon 16:30 skip the two rest days: Thursday 11:30; two working days more run through the
    # working Saturday; 核实's hour from Mon 17:00 ends Thursday 09:00.
    assert (after[plain].due_at, after[plain].disposal_due_at) == ("2099-06-11T11:30:00+08:00",) * 2
    assert (after[by_length].due_at, after[by_length].disposal_due_at) == ("2099-06-13T11:30:00+08:00",) * 2
    assert after[verifying].due_at == "2099-06-11T09:00:00+08:00"
    assert (after[held].state, after[held].due_at) == ("suspended", "2099-06-11T11:30:00+08:00")
    for cid in (plain, by_length, verifying, held):
        assert after[cid].version == before[cid].version + 1
        assert after[cid].node_started_at == before[cid].node_started_at
    for cid in (old_style, to_date, closed):  # left as stored: not recomputable, a date, closed
        assert after[cid] == before[cid]
    new_steps = log(loaded)[len(steps) :]
    assert [(c, a, actor, role) for c, a, actor, role, _ in new_steps] == [
        (cid, "recompute_due", "system", "system") for cid in (plain, by_length, verifying, held)
    ]
    details = new_steps[1][4]
    assert details["due_at"] == {"from": "2099-06-11T11:30:00+08:00", "to": "2099-06-13T11:30:00+08:00"}
    assert details["node"] == "disposal" and details["reason"].startswith("工作日历已更新")
    with loaded.connect() as conn:
        shown = svc.get_case(conn, known, by_length, role="dispatcher", now=now)
    last = shown["timeline"][-1]
    assert (last["action"], last["action_label"], last["actor"]) == ("recompute_due", "重算时限", "system")
    assert last["note"].endswith(": 2099-06-11 11:30 → 2099-06-13 11:30")
    assert shown["due_at"] == "2099-06-13T11:30:00+08:00" and shown["calendar_warning"] is None

    # A second run finds nothing to change (the old extension is still reported), through the command too.
    again = deadlines.recompute_deadlines(loaded, known, now=now)
    assert (again.changed, again.written, len(again.not_recomputable)) == ([], False, 1)
    code, out = run_cli(monkeypatch, capsys, settings, data_dir, calendar_file, "--format", "json")
    assert code == EXIT_REFUSED
    answer = json.loads(out)
    assert (answer["checked"], answer["changed"], answer["written"]) == (6, [], False)
    assert [r["case_no"] for r in answer["not_recomputable"]] == [no[old_style]]
    assert log(loaded) == steps + new_steps
    # --year: only the clocks that run through that year.
    assert deadlines.recompute_deadlines(loaded, known, year=2098, dry_run=True).outcomes == ()


def test_with_every_extension_recomputable_the_command_exits_0_and_a_year_still_unknown_is_said(
    loaded: Engine,
    services: svc.CaseServices,
    spot: tuple[float, float],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cid = extended(loaded, services, spot, amount=3, unit="working_hours")
    assert stored(loaded, cid).due_at == "2099-06-09T16:00:00+08:00"  # Tue 11:30 + 3 h: 0.5 h, lunch, 2.5 h
    empty = tmp_path / "empty.csv"
    empty.write_text("date,kind\n", encoding="utf-8")
    code, out = run_cli(monkeypatch, capsys, settings, tmp_path / "data", empty)
    assert code == 0  # no year named, none the file describes: nothing to count again
    assert out.splitlines() == [
        "未检查: 日历文件 GISGRID_CALENDAR_FILE 未完整列出任何年份; 升级 chinesecalendar 后请用 --year "
        "指定它新知道的年份 / nothing checked: GISGRID_CALENDAR_FILE describes no year in full; "
        "after upgrading chinesecalendar name the year it added with --year"
    ]
    code, out = run_cli(monkeypatch, capsys, settings, tmp_path / "data", empty, "--year", "2099")
    assert code == 0
    assert out.splitlines() == [
        "检查 1 件在办案件, 变更 0 件, 无法重算 0 件 / 1 open case(s) checked, 0 changed, 0 not recomputable",
        "注意: 日历仍不知道 2099 年的节假日安排, 这些时限仍按周一至周五计算 / note: the calendar still does not know "
        "2099: those deadlines still count Mon–Fri",
    ]


#: The default working hours (GISGRID_WORKING_HOURS unset) and the seasonal form: June works 08:00-12:00,14:30-18:00.
DEFAULT_HOURS = "08:30-12:00,13:30-17:30"
SEASONAL = "05-01..09-30=08:00-12:00,14:30-18:00;10-01..04-30=08:30-12:00,13:30-17:30"


def hours_counted(engine: Engine, case_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text("SELECT hours_counted FROM cases WHERE id = :i"), {"i": case_id}).scalar_one()


def warning_for(*counted: tuple[str, int], in_force: str = SEASONAL) -> str:
    """The start warning for open cases counted under other hours (``counted``: hours, number of cases)."""
    zh = "、".join(f"{n} 件按 {h}" for h, n in counted)
    en = " and ".join(f"{n} open case(s) under {h}" for h, n in counted)
    return (
        f"工作时间 GISGRID_WORKING_HOURS 已变更: 在办案件已保存的时限 {zh} 计算, 现行为 {in_force}; "
        "请运行 gisgrid cases recompute-deadlines(不带 --year; 可先加 --dry-run 查看)按现行工作时间重算 / "
        f"working hours changed: open cases' stored deadlines were counted under other hours ({en}), "
        f"GISGRID_WORKING_HOURS is now {in_force}; run `gisgrid cases recompute-deadlines` (without --year; "
        "--dry-run first to see) to count them again under the hours in force"
    )


def why_line(*counted: tuple[str, int], in_force: str = SEASONAL) -> str:
    """The command's first line after an hours change (no --year)."""
    zh = "、".join(f"{n} 件按 {h}" for h, n in counted)
    en = " and ".join(f"{n} open case(s) under {h}" for h, n in counted)
    return (
        f"工作时间已变更: 在办案件已保存的时限 {zh} 计算, 现行为 {in_force}; 重算这些案件的时限 / working hours "
        f"changed: open cases' stored deadlines were counted under other hours ({en}), the hours in force are "
        f"{in_force}: those deadlines are counted again"
    )


UNKNOWN_2099 = (
    "注意: 日历仍不知道 2099 年的节假日安排, 这些时限仍按周一至周五计算 / note: the calendar still does not know "
    "2099: those deadlines still count Mon–Fri"
)


def empty_calendar(tmp_path: Path) -> Path:
    path = tmp_path / "empty.csv"
    path.write_text("date,kind\n", encoding="utf-8")
    return path


def test_after_a_working_hours_change_the_clocks_counted_under_other_hours_are_counted_again_without_year(
    loaded: Engine,
    services: svc.CaseServices,
    spot: tuple[float, float],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """docs/operations.md, "When the working hours change": GISGRID_WORKING_HOURS changed to the seasonal form while
    a case's deadline was stored under the default hours (its ``hours_counted``). The start checks warn;
    ``recompute-deadlines`` without --year — no calendar file describing any year — counts that clock again under the
    new hours and sets them on the case; a dry run writes nothing; a second run is the command's old self (nothing to
    check)."""
    assert check_stored_data(loaded, services, settings).hours is None  # db up before anything is filed
    cid = dispatched(loaded, services, spot)
    assert stored(loaded, cid).due_at == "2099-06-09T11:30:00+08:00"  # 08:30-12:00,13:30-17:30: Mon 1 h, Tue 3 h
    assert hours_counted(loaded, cid) == DEFAULT_HOURS
    before, steps = stored(loaded, cid), log(loaded)

    monkeypatch.setenv("GISGRID_WORKING_HOURS", SEASONAL)
    seasonal = replace(services, calendar=load_city_calendar(None, SEASONAL))
    warning = warning_for((DEFAULT_HOURS, 1))
    assert check_stored_data(loaded, seasonal, settings).hours == warning
    assert hours_counted(loaded, cid) == DEFAULT_HOURS  # a start writes no case's hours
    why = why_line((DEFAULT_HOURS, 1))
    empty = empty_calendar(tmp_path)
    code, out = run_cli(monkeypatch, capsys, settings, tmp_path / "data", empty, "--dry-run")
    no = before.case_no
    assert (code, out.splitlines()) == (
        0,
        [
            why,
            "检查 1 件在办案件, 将变更 1 件, 无法重算 0 件 / 1 open case(s) checked, 1 would change, 0 not "
            "recomputable (试运行, 未写入) / (dry run: nothing written)",
            f"  {no}  2099-06-09 11:30 → 2099-06-09 10:30  (disposal)",
            UNKNOWN_2099,
            "(试运行: 未记录新的工作时间, 启动时的警告仍在) / (dry run: the new hours are not recorded, the start "
            "warning stays)",
        ],
    )
    assert (stored(loaded, cid), log(loaded), hours_counted(loaded, cid)) == (before, steps, DEFAULT_HOURS)
    assert check_stored_data(loaded, seasonal, settings).hours == warning  # the warning stays

    code, out = run_cli(monkeypatch, capsys, settings, tmp_path / "data", empty)
    assert (code, out.splitlines()) == (
        0,
        [
            why,
            "检查 1 件在办案件, 变更 1 件, 无法重算 0 件 / 1 open case(s) checked, 1 changed, 0 not recomputable",
            f"  {no}  2099-06-09 11:30 → 2099-06-09 10:30  (disposal)",
            UNKNOWN_2099,
            f"已记录: 重算的时限现按 {SEASONAL} 计算 / recorded: the deadlines counted again now count under "
            f"{SEASONAL}",
        ],
    )
    # Mon 16:30-18:00 (1.5 h), Tue 08:00-10:30 (2.5 h) of the summer hours
    after = stored(loaded, cid)
    assert (after.due_at, after.disposal_due_at, after.node_started_at, after.version) == (
        "2099-06-09T10:30:00+08:00",
        "2099-06-09T10:30:00+08:00",
        before.node_started_at,
        5,
    )
    new_steps = log(loaded)[len(steps) :]
    assert [(c, a, actor, role) for c, a, actor, role, _ in new_steps] == [(cid, "recompute_due", "system", "system")]
    details = new_steps[0][4]
    assert details["reason"] == (
        f"工作时间已变更({DEFAULT_HOURS} → {SEASONAL}),按现行工作时间重算时限 / working hours changed "
        f"({DEFAULT_HOURS} → {SEASONAL}): deadline recomputed"
    )
    assert details["working_hours"] == {"from": DEFAULT_HOURS, "to": SEASONAL}
    assert details["due_at"] == {"from": "2099-06-09T11:30:00+08:00", "to": "2099-06-09T10:30:00+08:00"}
    assert hours_counted(loaded, cid) == SEASONAL
    assert check_stored_data(loaded, seasonal, settings).hours is None  # no warning any more

    # A second run: every clock counts under the hours in force — no year to check, nothing changed.
    code, out = run_cli(monkeypatch, capsys, settings, tmp_path / "data", empty)
    assert (code, out.splitlines()) == (
        0,
        [
            "未检查: 日历文件 GISGRID_CALENDAR_FILE 未完整列出任何年份; 升级 chinesecalendar 后请用 --year "
            "指定它新知道的年份 / nothing checked: GISGRID_CALENDAR_FILE describes no year in full; "
            "after upgrading chinesecalendar name the year it added with --year"
        ],
    )
    assert stored(loaded, cid) == after and log(loaded) == steps + new_steps
    again = deadlines.recompute_deadlines(loaded, seasonal, year=2099, now=at("2099-06-08T18:00:00"))
    assert (again.changed, again.written, again.hours_change) == ([], False, None)


def test_with_a_year_named_after_an_hours_change_that_year_is_counted_and_the_others_are_said(
    loaded: Engine,
    services: svc.CaseServices,
    spot: tuple[float, float],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--year after an hours change counts that year's clocks (under the new hours, the reason naming both) and sets
    the new hours on them; the cases counted under the old hours outside that year are said, and keep the warning."""
    check_stored_data(loaded, services, settings)
    cid = dispatched(loaded, services, spot)
    monkeypatch.setenv("GISGRID_WORKING_HOURS", SEASONAL)
    empty = empty_calendar(tmp_path)
    code, out = run_cli(monkeypatch, capsys, settings, tmp_path / "data", empty, "--year", "2098")
    assert (code, out.splitlines()) == (
        0,
        [
            "检查 0 件在办案件, 变更 0 件, 无法重算 0 件 / 0 open case(s) checked, 0 changed, 0 not recomputable",
            f"注意: 工作时间已变更, 另有在办案件的时限 1 件按 {DEFAULT_HOURS} 计算 (现行 {SEASONAL}), 本次只检查 2098 "
            f"年; 不带 --year 运行以按现行工作时间重算 / note: the working hours changed: other open cases' deadlines "
            f"were counted under other hours (1 open case(s) under {DEFAULT_HOURS}; in force: {SEASONAL}); this run "
            "checked 2098 only: run without --year to count them again",
        ],
    )
    assert (stored(loaded, cid).due_at, hours_counted(loaded, cid)) == ("2099-06-09T11:30:00+08:00", DEFAULT_HOURS)
    code, out = run_cli(monkeypatch, capsys, settings, tmp_path / "data", empty, "--year", "2099")
    no = stored(loaded, cid).case_no
    assert (code, out.splitlines()) == (
        0,
        [
            "检查 1 件在办案件, 变更 1 件, 无法重算 0 件 / 1 open case(s) checked, 1 changed, 0 not recomputable",
            f"  {no}  2099-06-09 11:30 → 2099-06-09 10:30  (disposal)",
            UNKNOWN_2099,
        ],
    )
    assert (stored(loaded, cid).due_at, hours_counted(loaded, cid)) == ("2099-06-09T10:30:00+08:00", SEASONAL)
    reason = log(loaded)[-1][4]["reason"]
    assert reason.startswith(
        f"工作时间已变更({DEFAULT_HOURS} → {SEASONAL}),按现行工作时间重算时限;工作日历已更新(2099 年"
    )
    seasonal = replace(services, calendar=load_city_calendar(None, SEASONAL))
    assert check_stored_data(loaded, seasonal, settings).hours is None


def test_unchanged_hours_however_written_keep_the_old_behaviour_and_no_warning(
    loaded: Engine,
    services: svc.CaseServices,
    spot: tuple[float, float],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same hours written otherwise (a one-season year, ``8:30``) are the same setting: no warning, and without
    --year the command checks only the years the calendar file describes (none here: nothing)."""
    reordered = (
        "10-01..04-30=8:30-12:00,13:30-17:30；05-01..07-31=08:00-12:00,14:30-18:00;08-01..09-30=08:00-12:00,14:30-18:00"
    )
    assert hours_setting(parse_working_hours(reordered)) == SEASONAL  # the seasons in order, the same ones as one
    check_stored_data(loaded, services, settings)
    cid = dispatched(loaded, services, spot)
    before, steps = stored(loaded, cid), log(loaded)
    same = "01-01..12-31=8:30-12:00,13:30-17:30"
    monkeypatch.setenv("GISGRID_WORKING_HOURS", same)
    spelled = replace(services, calendar=load_city_calendar(None, same))
    assert spelled.hours_in_force == DEFAULT_HOURS
    assert check_stored_data(loaded, spelled, settings).hours is None
    code, out = run_cli(monkeypatch, capsys, settings, tmp_path / "data", empty_calendar(tmp_path))
    assert code == 0 and out.startswith("未检查: ")
    assert (stored(loaded, cid), log(loaded), hours_counted(loaded, cid)) == (before, steps, DEFAULT_HOURS)


def test_a_start_takes_the_open_cases_from_before_0024_as_counted_under_the_hours_in_force(
    loaded: Engine,
    services: svc.CaseServices,
    spot: tuple[float, float],
    settings: Settings,
) -> None:
    """Closed cases count for nothing; open clocks with no hours (written before migration 0024) are set to the
    hours in force at the first start, and only they: the next start under other hours warns about them."""
    seasonal = replace(services, calendar=load_city_calendar(None, SEASONAL))
    old, closed = dispatched(loaded, services, spot), dispatched(loaded, seasonal, spot)
    with loaded.begin() as conn:
        conn.execute(text("UPDATE cases SET state = 'closed' WHERE id = :i"), {"i": closed})
        conn.execute(text("UPDATE cases SET hours_counted = NULL WHERE id = :i"), {"i": old})
    assert check_stored_data(loaded, services, settings).hours is None
    assert (hours_counted(loaded, old), hours_counted(loaded, closed)) == (DEFAULT_HOURS, SEASONAL)
    assert check_stored_data(loaded, seasonal, settings).hours == warning_for((DEFAULT_HOURS, 1))
    assert hours_counted(loaded, old) == DEFAULT_HOURS


def test_a_start_does_not_wait_on_a_running_recompute_but_says_it_did_not_check(
    loaded: Engine,
    services: svc.CaseServices,
    spot: tuple[float, float],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """review59 F6: a transaction holding the open cases' rows (as ``recompute-deadlines`` does while it writes)
    makes a start wait no longer than its lock timeout (here shortened), then warn that nothing was checked."""
    from gisgrid import deadline_hours

    cid = dispatched(loaded, services, spot)
    with loaded.begin() as conn:
        conn.execute(text("UPDATE cases SET hours_counted = NULL WHERE id = :i"), {"i": cid})
    monkeypatch.setattr(deadline_hours, "START_LOCK_TIMEOUT", "200ms")
    with loaded.connect() as holder, holder.begin():
        holder.execute(text(f"SELECT id FROM cases WHERE {deadline_hours.OPEN_CLOCKS} FOR UPDATE"))
        assert check_stored_data(loaded, services, settings).hours == (
            "另一个 gisgrid cases recompute-deadlines 正在运行, 未检查工作时间 / another `gisgrid cases "
            "recompute-deadlines` is running: the working hours were not checked"
        )
    assert check_stored_data(loaded, services, settings).hours is None  # released: checked, the hours set
    assert hours_counted(loaded, cid) == DEFAULT_HOURS


def test_the_intake_stores_the_hours_its_first_deadline_was_counted_under(
    loaded: Engine, services: svc.CaseServices, spot: tuple[float, float]
) -> None:
    """The intake's one write sets ``hours_counted`` beside ``due_at`` (核实: 1 working hour from Mon 17:00)."""
    seasonal = replace(services, calendar=load_city_calendar(None, SEASONAL))
    under_a, under_b = (
        report(loaded, services, spot, "2099-06-08T17:00:00"),
        report(loaded, seasonal, spot, "2099-06-08T17:00:00"),
    )
    assert (stored(loaded, under_a).due_at, hours_counted(loaded, under_a)) == (
        "2099-06-09T09:00:00+08:00",
        DEFAULT_HOURS,
    )
    assert (stored(loaded, under_b).due_at, hours_counted(loaded, under_b)) == ("2099-06-08T18:00:00+08:00", SEASONAL)


def test_hours_changed_back_still_warn_about_and_recount_the_cases_filed_under_the_hours_in_between(
    loaded: Engine,
    services: svc.CaseServices,
    spot: tuple[float, float],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """review59 F1: the default hours (A), then the seasonal ones (B) for a while — a case filed then is counted
    under B — then A again. The start under A warns about that case; the command counts exactly it again (the case
    filed under A keeps its deadline and is not checked)."""
    seasonal = replace(services, calendar=load_city_calendar(None, SEASONAL))
    under_a = dispatched(loaded, services, spot)
    assert check_stored_data(loaded, seasonal, settings).hours == warning_for((DEFAULT_HOURS, 1))
    under_b = dispatched(loaded, seasonal, spot)  # the service running under B
    assert (stored(loaded, under_a).due_at, stored(loaded, under_b).due_at) == (
        "2099-06-09T11:30:00+08:00",
        "2099-06-09T10:30:00+08:00",
    )
    assert hours_counted(loaded, under_b) == SEASONAL
    assert check_stored_data(loaded, seasonal, settings).hours == warning_for((DEFAULT_HOURS, 1))
    # back to A
    back = warning_for((SEASONAL, 1), in_force=DEFAULT_HOURS)
    assert check_stored_data(loaded, services, settings).hours == back
    a_before = stored(loaded, under_a)
    code, out = run_cli(monkeypatch, capsys, settings, tmp_path / "data", empty_calendar(tmp_path))
    no = stored(loaded, under_b).case_no
    assert (code, out.splitlines()) == (
        0,
        [
            why_line((SEASONAL, 1), in_force=DEFAULT_HOURS),
            "检查 1 件在办案件, 变更 1 件, 无法重算 0 件 / 1 open case(s) checked, 1 changed, 0 not recomputable",
            f"  {no}  2099-06-09 10:30 → 2099-06-09 11:30  (disposal)",
            UNKNOWN_2099,
            f"已记录: 重算的时限现按 {DEFAULT_HOURS} 计算 / recorded: the deadlines counted again now count under "
            f"{DEFAULT_HOURS}",
        ],
    )
    assert stored(loaded, under_a) == a_before
    assert (hours_counted(loaded, under_a), hours_counted(loaded, under_b)) == (DEFAULT_HOURS, DEFAULT_HOURS)
    assert check_stored_data(loaded, services, settings).hours is None


def test_a_recount_run_before_the_service_restarts_leaves_its_later_cases_found_at_the_restart(
    loaded: Engine,
    services: svc.CaseServices,
    spot: tuple[float, float],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """review59 F2 case 1: the environment file says B, the command is run (under B) while the service still runs
    under A; the service files one more case under A before it restarts. The restart under B warns about that case,
    and the command counts it again."""
    early = dispatched(loaded, services, spot)
    monkeypatch.setenv("GISGRID_WORKING_HOURS", SEASONAL)
    empty = empty_calendar(tmp_path)
    code, _ = run_cli(monkeypatch, capsys, settings, tmp_path / "data", empty)
    assert code == 0 and (stored(loaded, early).due_at, hours_counted(loaded, early)) == (
        "2099-06-09T10:30:00+08:00",
        SEASONAL,
    )
    late = dispatched(loaded, services, spot)  # the old service, still under A
    assert (stored(loaded, late).due_at, hours_counted(loaded, late)) == ("2099-06-09T11:30:00+08:00", DEFAULT_HOURS)
    seasonal = replace(services, calendar=load_city_calendar(None, SEASONAL))  # restarted under B
    assert check_stored_data(loaded, seasonal, settings).hours == warning_for((DEFAULT_HOURS, 1))
    code, out = run_cli(monkeypatch, capsys, settings, tmp_path / "data", empty)
    no = stored(loaded, late).case_no
    assert (code, out.splitlines()[:3]) == (
        0,
        [
            why_line((DEFAULT_HOURS, 1)),
            "检查 1 件在办案件, 变更 1 件, 无法重算 0 件 / 1 open case(s) checked, 1 changed, 0 not recomputable",
            f"  {no}  2099-06-09 11:30 → 2099-06-09 10:30  (disposal)",
        ],
    )
    assert (stored(loaded, late).due_at, hours_counted(loaded, late)) == ("2099-06-09T10:30:00+08:00", SEASONAL)
    assert check_stored_data(loaded, seasonal, settings).hours is None


def test_a_case_that_cannot_be_counted_again_keeps_its_hours_and_the_warning(
    loaded: Engine,
    services: svc.CaseServices,
    spot: tuple[float, float],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """review59 F3: an approval logged without how it was given (as before c8c26bb) cannot be counted again. The
    command exits 3 and says so; the case keeps the old hours, so the start warning, /health's field and the next run
    still name it — until it is dealt with."""
    old_style = extended(loaded, services, spot, amount=2, unit="working_days")
    plain = dispatched(loaded, services, spot)
    with loaded.begin() as conn:
        conn.execute(
            text(
                "UPDATE case_transitions SET details = details - 'amount' - 'unit' - 'extended_by' "
                "WHERE case_id = :c AND action = 'approve_extension'"
            ),
            {"c": old_style},
        )
    monkeypatch.setenv("GISGRID_WORKING_HOURS", SEASONAL)
    empty = empty_calendar(tmp_path)
    no = {cid: stored(loaded, cid).case_no for cid in (old_style, plain)}
    refused = (
        f"  {no[old_style]}  无法重算 / not recomputable: 2099-06-08 17:00 批准的延期只记录了新的时限, "
        "未记录延长的时间和单位, 无法重算, 保留原时限 / the extension approved 2099-06-08 17:00 recorded only its "
        "new deadline, not the length and unit granted: it cannot be recomputed; the stored deadline is kept"
    )
    code, out = run_cli(monkeypatch, capsys, settings, tmp_path / "data", empty)
    assert (code, out.splitlines()) == (
        EXIT_REFUSED,
        [
            why_line((DEFAULT_HOURS, 2)),
            "检查 2 件在办案件, 变更 1 件, 无法重算 1 件 / 2 open case(s) checked, 1 changed, 1 not recomputable",
            f"  {no[plain]}  2099-06-09 11:30 → 2099-06-09 10:30  (disposal)",
            refused,
            UNKNOWN_2099,
            f"已记录: 重算的时限现按 {SEASONAL} 计算(无法重算的 1 件按 {DEFAULT_HOURS} 计算, 启动时的警告仍在) / "
            f"recorded: the deadlines counted again now count under {SEASONAL} (1 open case(s) under {DEFAULT_HOURS}: "
            "not recomputable, the start warning stays)",
        ],
    )
    assert (hours_counted(loaded, old_style), hours_counted(loaded, plain)) == (DEFAULT_HOURS, SEASONAL)
    seasonal = replace(services, calendar=load_city_calendar(None, SEASONAL))
    assert check_stored_data(loaded, seasonal, settings).hours == warning_for((DEFAULT_HOURS, 1))
    code, out = run_cli(monkeypatch, capsys, settings, tmp_path / "data", empty)  # run again: still there
    assert (code, out.splitlines()[:2]) == (
        EXIT_REFUSED,
        [
            why_line((DEFAULT_HOURS, 1)),
            "检查 1 件在办案件, 变更 0 件, 无法重算 1 件 / 1 open case(s) checked, 0 changed, 1 not recomputable",
        ],
    )
    with loaded.begin() as conn:  # dealt with (here: closed): nothing to say any more
        conn.execute(text("UPDATE cases SET state = 'closed' WHERE id = :i"), {"i": old_style})
    assert check_stored_data(loaded, seasonal, settings).hours is None
