"""Seasonal working hours (夏季/冬季作息, review55 F3): GISGRID_WORKING_HOURS may give each part of the year its own
periods; every day is counted with its own season's, so a deadline across the change and a past period keep the
hours they had. The single form is unchanged (tests/test_calendar.py)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from gisgrid import cases as svc
from gisgrid.calendar import (
    SeasonalHours,
    WorkingCalendar,
    WorkingHours,
    hours_setting,
    load_city_calendar,
    parse_working_hours,
    traffic_light,
)
from gisgrid.errors import InvalidInput
from gisgrid.evaluation import WorkClock
from gisgrid.settings import Settings
from tests.test_cases import get, report

SH = ZoneInfo("Asia/Shanghai")
SUMMER = "08:00-12:00,14:30-18:00"
WINTER = "08:30-12:00,13:30-17:30"
SEASONAL = f"05-01..09-30={SUMMER};10-01..04-30={WINTER}"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


@pytest.fixture
def cal() -> WorkingCalendar:
    return load_city_calendar(None, SEASONAL)


def test_calendar_facts_these_tests_rely_on() -> None:
    # 2026 National Day: 10-01..10-07 off, Wed 09-30 and Thu 10-08 worked; 2025: 10-01..10-08 off, Thu 10-09 worked.
    assert chinese_calendar.is_workday(date(2026, 9, 30)) and chinese_calendar.is_workday(date(2026, 10, 8))
    assert not any(chinese_calendar.is_workday(date(2026, 10, d)) for d in range(1, 8))
    assert not any(chinese_calendar.is_workday(date(2025, 10, d)) for d in range(1, 9))
    assert chinese_calendar.is_workday(date(2025, 9, 30)) and chinese_calendar.is_workday(date(2025, 10, 9))
    # Fri 2026-06-12 and Mon 06-15 are plain working days (端午 2026 is Fri 06-19).
    assert chinese_calendar.is_workday(date(2026, 6, 12)) and chinese_calendar.is_workday(date(2026, 6, 15))


def test_the_seasonal_form_parses_into_each_day_s_hours(cal: WorkingCalendar) -> None:
    hours = cal.hours
    assert isinstance(hours, SeasonalHours)
    assert [s.label for s in hours.seasons] == ["05-01..09-30", "10-01..04-30"]
    assert str(hours) == SEASONAL and hours.hours_per_day == 7.5
    assert cal.hours_on(date(2026, 5, 1)) == WorkingHours.parse(SUMMER)
    assert cal.hours_on(date(2026, 9, 30)) == WorkingHours.parse(SUMMER)
    assert cal.hours_on(date(2026, 10, 1)) == WorkingHours.parse(WINTER)
    assert cal.hours_on(date(2026, 12, 31)) == cal.hours_on(date(2027, 1, 1)) == WorkingHours.parse(WINTER)
    assert cal.hours_on(date(2028, 2, 29)) == WorkingHours.parse(WINTER)  # the wrapping season holds the leap day
    assert cal.hours_on(date(2026, 4, 30)) == WorkingHours.parse(WINTER)
    # A date-only extension deadline means the end of that day's hours (node_clock): 18:00 in summer, 17:30 after.
    assert cal.hours_on(date(2026, 7, 1)).periods[-1][1] == time(18, 0)
    assert cal.hours_on(date(2026, 12, 1)).periods[-1][1] == time(17, 30)
    assert cal.spans_us_on(date(2026, 7, 1)) == WorkingHours.parse(SUMMER).spans_us
    # Blanks around the parts, and a trailing ';', are fine.
    assert parse_working_hours(f" 05-01..09-30 = {SUMMER} ; 10-01..04-30={WINTER};") == hours


def test_a_deadline_across_the_autumn_change_counts_each_day_in_its_season(cal: WorkingCalendar) -> None:
    # Wed 2026-09-30 15:00 + 4 working hours: 3 h of summer afternoon (15:00–18:00), National Day 10-01..10-07,
    # then 1 h of Thu 10-08 under winter hours (08:30–09:30).
    assert cal.add_working_time(at(2026, 9, 30, 15, 0), 4) == at(2026, 10, 8, 9, 30)
    # The single form (winter hours all year) ends the afternoon at 17:30: 2.5 h, then 10-08 08:30 + 1.5 h.
    assert WorkingCalendar(WorkingHours.parse(WINTER)).add_working_time(at(2026, 9, 30, 15, 0), 4) == at(
        2026, 10, 8, 10, 0
    )
    # Tue 2025-09-30 17:00 + 1 h fills the summer day exactly: due 18:00 the same day (winter hours: 10-09 09:00).
    assert cal.add_working_time(at(2025, 9, 30, 17, 0), 1) == at(2025, 9, 30, 18, 0)
    # 2 working days = 15 working hours from Tue 2026-09-29 10:00: 5.5 h on 09-29, 7.5 h on 09-30, 2 h on 10-08
    # (08:30–10:30): across a change a working day is the same length, not the same clock time.
    assert cal.add_working_time(at(2026, 9, 29, 10, 0), 2, "working_days") == at(2026, 10, 8, 10, 30)
    # A start in the summer lunch break (12:30) counts from 14:30.
    assert cal.add_working_time(at(2026, 9, 30, 12, 30), 1) == at(2026, 9, 30, 15, 30)


def test_a_deadline_across_a_spring_change_on_a_plain_week() -> None:
    cal = load_city_calendar(None, f"06-15..09-30={SUMMER};10-01..06-14={WINTER}")
    # Fri 2026-06-12 16:00 + 3 h: 1.5 h of winter afternoon (to 17:30), Mon 06-15 08:00 (summer) + 1.5 h.
    assert cal.add_working_time(at(2026, 6, 12, 16, 0), 3) == at(2026, 6, 15, 9, 30)
    assert cal.working_time_between(at(2026, 6, 12, 16, 0), at(2026, 6, 15, 9, 30)) == 3.0
    assert cal.rewind_working_us(at(2026, 6, 15, 9, 30), 3 * 3_600_000_000) == at(2026, 6, 12, 16, 0)
    # 08:10 on Mon 06-15 is working time (summer); on Fri 06-12 it is before the day's start.
    assert cal.next_working_instant(at(2026, 6, 15, 8, 10)) == at(2026, 6, 15, 8, 10)
    assert cal.next_working_instant(at(2026, 6, 12, 8, 10)) == at(2026, 6, 12, 8, 30)
    assert cal.next_working_instant(at(2026, 6, 12, 17, 45)) == at(2026, 6, 15, 8, 0)


def test_elapsed_time_rewind_and_lights_use_each_day_s_hours(cal: WorkingCalendar) -> None:
    start, due = at(2026, 9, 30, 15, 0), at(2026, 10, 8, 9, 30)
    assert cal.working_time_between(start, due) == 4.0
    assert cal.working_time_between(due, start) == -4.0
    # 17:45 on 09-30 is summer working time (winter hours would have stopped the clock at 17:30).
    assert cal.working_time_between(start, at(2026, 9, 30, 17, 45)) == 2.75
    assert cal.working_time_between(at(2026, 10, 8, 8, 0), at(2026, 10, 8, 8, 45)) == 0.25  # winter starts 08:30
    assert cal.rewind_working_us(due, 4 * 3_600_000_000) == start
    # The latest start with 1 h before 09:30 on 10-08 is that morning's 08:30; with 1.5 h, 17:30 on 09-30 (summer).
    assert cal.rewind_working_us(due, 3_600_000_000) == at(2026, 10, 8, 8, 30)
    assert cal.rewind_working_us(due, 5_400_000_000) == at(2026, 9, 30, 17, 30)
    assert cal.next_working_instant(at(2026, 10, 8, 8, 0)) == at(2026, 10, 8, 8, 30)
    assert cal.next_working_instant(at(2026, 9, 30, 8, 0)) == at(2026, 9, 30, 8, 0)
    # 3 of 4 h used at 18:00 on 09-30 (75 %): green; 3.25 h at 08:45 on 10-08 (81 %): yellow.
    assert traffic_light(start, due, at(2026, 9, 30, 18, 0), cal) == "green"
    assert traffic_light(start, due, at(2026, 10, 8, 8, 45), cal) == "yellow"


def test_the_vectorised_clock_agrees_with_the_calendar_day_by_day(cal: WorkingCalendar) -> None:
    rng = np.random.default_rng(55)
    base = at(2026, 4, 20, 0, 0)
    starts = [base + timedelta(minutes=int(m)) for m in rng.integers(0, 200 * 24 * 60, 300)]
    amounts = rng.integers(1, 40 * 60, 300) / 60  # up to 40 working hours
    dues = [cal.add_working_time(s, float(a)) for s, a in zip(starts, amounts, strict=True)]
    clock = WorkClock.covering(cal, pd.DatetimeIndex(starts), pd.DatetimeIndex(dues))
    assert clock.day_us == 7.5 * 3_600_000_000 and len(clock.schedules) == 2
    between = clock.between(pd.DatetimeIndex(starts), pd.DatetimeIndex(dues))
    assert list(between) == [cal.working_us_between(s, d) for s, d in zip(starts, dues, strict=True)]
    back = clock.instant(clock.position(pd.DatetimeIndex(starts)) + np.round(amounts * 3_600_000_000))
    assert list(back) == dues


def test_seasonal_refusals_name_the_seasons() -> None:
    def refusal(text: str) -> str:
        with pytest.raises(InvalidInput) as caught:
            load_city_calendar(None, text)
        return caught.value.message

    assert refusal(f"05-01..09-30={SUMMER};10-01..04-29={WINTER}") == (
        "GISGRID_WORKING_HOURS: working hours: 季节未覆盖全年, 缺 04-30 / the seasons leave 04-30 without working "
        "hours; together they must cover the whole year (02-29 included) exactly once"
    )
    assert refusal(f"05-01..09-30={SUMMER};10-01..02-28={WINTER};03-01..04-30={WINTER}") == (
        "GISGRID_WORKING_HOURS: working hours: 季节未覆盖全年, 缺 02-29 / the seasons leave 02-29 without working "
        "hours; together they must cover the whole year (02-29 included) exactly once"
    )
    assert refusal(f"05-01..09-30={SUMMER}") == (
        "GISGRID_WORKING_HOURS: working hours: 季节未覆盖全年, 缺 01-01..04-30, 10-01..12-31 / the seasons leave "
        "01-01..04-30, 10-01..12-31 without working hours; together they must cover the whole year (02-29 included) "
        "exactly once (在 shell 中须给取值加引号,否则 ; 会结束命令 / in a shell, quote the value: ';' ends a command)"
    )
    assert refusal(f"05-01..09-30={SUMMER};09-30..04-30={WINTER}") == (
        "GISGRID_WORKING_HOURS: working hours: 季节 05-01..09-30 与 09-30..04-30 重叠(如 09-30)/ seasons "
        "05-01..09-30 and 09-30..04-30 overlap (e.g. on 09-30); each day of the year belongs to one season"
    )
    assert refusal(f"05-01..09-30={SUMMER};10-01..04-30=08:30-12:00,13:30-17:00") == (
        "GISGRID_WORKING_HOURS: working hours: 各季节每个工作日的工作时长须相同(05-01..09-30 08:00-12:00,14:30-18:00 "
        "= 7.5 h; 10-01..04-30 08:30-12:00,13:30-17:00 = 7 h)/ every season's working day must be as long, so that "
        "a working day (工作日) is one length all year: 05-01..09-30 08:00-12:00,14:30-18:00 = 7.5 h; 10-01..04-30 "
        "08:30-12:00,13:30-17:00 = 7 h"
    )
    assert refusal(f"05-01..09-31={SUMMER};10-01..04-30={WINTER}") == (
        f"GISGRID_WORKING_HOURS: working hours: 季节 '05-01..09-31={SUMMER}' 中 '09-31' 不是月-日(MM-DD)/ in "
        f"season '05-01..09-31={SUMMER}', '09-31' is not a month-day (MM-DD, e.g. 05-01)"
    )
    assert "'5-1' is not a month-day" in refusal(f"5-1..09-30={SUMMER};10-01..04-30={WINTER}")
    form = (
        "(seasonal form: MM-DD..MM-DD=HH:MM-HH:MM,…;MM-DD..MM-DD=…, "
        "e.g. 05-01..09-30=08:00-12:00,14:30-18:00;10-01..04-30=08:30-12:00,13:30-17:30)"
    )
    assert refusal(f"05-01-09-30={SUMMER};10-01..04-30={WINTER}") == (
        f"GISGRID_WORKING_HOURS: working hours: 季节 '05-01-09-30={SUMMER}' 格式不对 / season "
        f"'05-01-09-30={SUMMER}' is not MM-DD..MM-DD=periods {form}"
    )
    assert refusal(f"05-01..09-30={SUMMER},10-01..04-30={WINTER}") == (
        f"GISGRID_WORKING_HOURS: working hours: 季节之间用分号 ; 分隔 / seasons are separated by ';', not ',': "
        f"'05-01..09-30={SUMMER},10-01..04-30={WINTER}' {form}"
    )
    # The mark typed instead of ';' is named; a full-width ； is read as ;.
    assert refusal(f"05-01..09-30={SUMMER}、10-01..04-30={WINTER}") == (
        f"GISGRID_WORKING_HOURS: working hours: 季节之间用分号 ; 分隔 / seasons are separated by ';', not '、': "
        f"'05-01..09-30={SUMMER}、10-01..04-30={WINTER}' {form}"
    )
    assert str(parse_working_hours(f"05-01..09-30={SUMMER}；10-01..04-30={WINTER}")) == (
        f"05-01..09-30={SUMMER};10-01..04-30={WINTER}"
    )
    # A ';' between one season's periods is named as such, with the season it cut.
    assert refusal(f"05-01..09-30={SUMMER};10-01..04-30=08:30-12:00;13:30-17:30") == (
        "GISGRID_WORKING_HOURS: working hours: 季节 10-01..04-30 的时段之间用逗号 , 分隔,不用分号 ; :'13:30-17:30' / "
        f"season 10-01..04-30's periods are separated by ',', not ';': '13:30-17:30' {form}"
    )
    # A season's periods are refused as the single form's are, naming the season.
    bad_periods = refusal(f"05-01..09-30=08:00-25:00;10-01..04-30={WINTER}")
    assert bad_periods.startswith("GISGRID_WORKING_HOURS: working hours: season 05-01..09-30: ")
    assert "'25:00'" in bad_periods


def test_one_season_for_the_whole_year_is_the_single_form() -> None:
    single = load_city_calendar(None, WINTER)
    whole = load_city_calendar(None, f"01-01..12-31={WINTER}")
    assert single.hours == WorkingHours() and isinstance(whole.hours, SeasonalHours)
    for start in (at(2025, 9, 30, 16, 0), at(2026, 2, 13, 17, 0), at(2026, 6, 12, 12, 15)):
        for amount, unit in ((1, "working_hours"), (9.25, "working_hours"), (3, "working_days")):
            assert whole.add_working_time(start, amount, unit) == single.add_working_time(start, amount, unit)


def test_touching_periods_normalise_as_one() -> None:
    """Periods that touch are the same working time as one period (review59 F4): the same normalised setting, so
    writing the hours either way recorded raises no false 'hours changed' warning; periods with a gap stay apart."""

    def form(text: str) -> str:
        return hours_setting(parse_working_hours(text))

    # The premise: the calendars of both spellings give the same instants.
    split, whole = load_city_calendar(None, "08:00-12:00,12:00-16:00"), load_city_calendar(None, "08:00-16:00")
    for start in (at(2026, 6, 12, 11, 30), at(2026, 6, 12, 12, 0), at(2026, 6, 12, 15, 45), at(2026, 6, 13, 9, 0)):
        for amount, unit in (
            (0.5, "working_hours"),
            (4, "working_hours"),
            (9.25, "working_hours"),
            (1, "working_days"),
        ):
            assert split.add_working_time(start, amount, unit) == whole.add_working_time(start, amount, unit)
    assert form("08:00-12:00,12:00-16:00") == "08:00-16:00"
    assert form("8:00-10:00, 10:00-12:00,12:00-16:00") == "08:00-16:00"
    assert form("08:00-12:00,12:00-14:00,14:30-18:00") == "08:00-14:00,14:30-18:00"
    assert form("08:00-12:00,12:00:30-16:00") == "08:00-12:00,12:00:30-16:00"  # 30 s apart: not touching
    assert form("08:00-12:00,13:00-16:00") == "08:00-12:00,13:00-16:00"
    assert form("08:00-12:00,13:00-16:00") != form("08:00-16:00")
    # Within each season.
    assert form(f"05-01..09-30=08:00-10:00,10:00-12:00,14:30-18:00;10-01..04-30={WINTER}") == (
        f"05-01..09-30=08:00-12:00,14:30-18:00;10-01..04-30={WINTER}"
    )
    # Seasons whose periods, merged, are the same hours are one season: here the whole year, so the plain form.
    assert form("05-01..09-30=08:00-12:00,12:00-16:00;10-01..04-30=08:00-16:00") == "08:00-16:00"
    assert form("05-01..09-30=08:00-09:00,09:00-16:00;10-01..04-30=08:00-16:00") == form("08:00-16:00")
    # Seasons that still differ after the merge stay two, and their order is the calendar's.
    assert form("10-01..04-30=08:00-12:00,12:00-16:00;05-01..09-30=07:30-15:30") == (
        "05-01..09-30=07:30-15:30;10-01..04-30=08:00-16:00"
    )


def test_a_case_filed_before_the_change_is_due_in_the_winter_hours(
    loaded: Engine, settings: Settings, tmp_path: Path, spot: tuple[float, float]
) -> None:
    """核实 (1 working hour) of a case filed Tue 2025-09-30 17:30: 0.5 h of the summer day (to 18:00), National Day
    10-01..10-08, then 0.5 h of Thu 10-09 under winter hours: due 09:00 (winter hours all year: 17:30 is the end of
    the day, due 10-09 09:30)."""
    services = svc.load_services(settings.model_copy(update={"data_dir": tmp_path / "data", "working_hours": SEASONAL}))
    svc.sync_reference_data(loaded, services)
    x, y = spot
    cid = report(loaded, services, x, y, now=datetime.fromisoformat("2025-09-30T17:30:00").replace(tzinfo=SH))
    case = get(loaded, services, cid, "2025-09-30T17:30:00")
    assert case["node"] == "verify" and case["due_at"] == "2025-10-09T09:00:00+08:00"
