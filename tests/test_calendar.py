"""Working-time arithmetic on the Chinese calendar: holidays, adjusted working weekends, units, traffic light."""

from __future__ import annotations

import time as clock
import warnings
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import numpy as np
import pandas as pd
import pytest

from gisgrid.calendar import (
    CHINESECALENDAR_VERSION,
    KNOWN_YEARS,
    UNITS,
    CalendarYearUnknown,
    WorkingCalendar,
    WorkingHours,
    load_city_calendar,
    traffic_light,
)
from gisgrid.errors import InvalidInput
from gisgrid.evaluation import traffic_lights

SH = ZoneInfo("Asia/Shanghai")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


@pytest.fixture
def cal() -> WorkingCalendar:
    return WorkingCalendar()


def test_package_facts_this_module_relies_on() -> None:
    # 2025 National Day + Mid-Autumn: 10-01..10-08 off, Sun 09-28 and Sat 10-11 worked (调休).
    assert not any(chinese_calendar.is_workday(date(2025, 10, d)) for d in range(1, 9))
    assert chinese_calendar.is_workday(date(2025, 9, 28)) and date(2025, 9, 28).weekday() == 6
    assert chinese_calendar.is_workday(date(2025, 10, 11)) and date(2025, 10, 11).weekday() == 5
    # 2026 Spring Festival: 02-15..02-23 off, Sat 02-14 and Sat 02-28 worked.
    assert not any(chinese_calendar.is_workday(date(2026, 2, d)) for d in range(15, 24))
    assert chinese_calendar.is_workday(date(2026, 2, 14)) and chinese_calendar.is_workday(date(2026, 2, 28))
    assert 2025 in KNOWN_YEARS and 2026 in KNOWN_YEARS and 2099 not in KNOWN_YEARS
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2099, 1, 5))


def test_working_hours_across_a_weekend(cal: WorkingCalendar) -> None:
    # Fri 2025-06-13 16:00 + 3 h: 1.5 h on Friday, 1.5 h on Monday morning.
    assert cal.add_working_time(at(2025, 6, 13, 16, 0), 3) == at(2025, 6, 16, 10, 0)


def test_working_hours_across_national_day_2025(cal: WorkingCalendar) -> None:
    # Tue 09-30 16:00 + 2 h: 1.5 h on Tuesday, the holiday 10-01..10-08, then 0.5 h on Thu 10-09.
    assert cal.add_working_time(at(2025, 9, 30, 16, 0), 2) == at(2025, 10, 9, 9, 0)
    # Whole holiday: 4 working days from 09-30 10:00 → 10-09, 10-10, 10-11 (Sat, worked), 10-13 (Mon).
    assert cal.add_working_time(at(2025, 9, 30, 10, 0), 4, "working_days") == at(2025, 10, 13, 10, 0)


def test_adjusted_working_weekends_count(cal: WorkingCalendar) -> None:
    # Fri 09-26 17:00 + 1 h → Sun 09-28 09:00 (a 调休 working Sunday).
    assert cal.add_working_time(at(2025, 9, 26, 17, 0), 1) == at(2025, 9, 28, 9, 0)
    # Fri 10-10 17:00 + 1 h → Sat 10-11 09:00 (a 调休 working Saturday).
    assert cal.add_working_time(at(2025, 10, 10, 17, 0), 1) == at(2025, 10, 11, 9, 0)
    assert cal.is_working_day(date(2025, 10, 11)) and not cal.is_working_day(date(2025, 10, 12))


def test_lunch_break(cal: WorkingCalendar) -> None:
    # Default lunch 12:00–13:30: 0.5 h before it, 0.5 h after.
    assert cal.add_working_time(at(2025, 6, 10, 11, 30), 1) == at(2025, 6, 10, 14, 0)
    # With a 30-minute lunch (12:00–12:30) the same hour ends at 13:00.
    short = WorkingCalendar(WorkingHours.parse("08:30-12:00,12:30-17:30"))
    assert short.add_working_time(at(2025, 6, 10, 11, 30), 1) == at(2025, 6, 10, 13, 0)
    # Filling the morning exactly ends at 12:00, not at 13:30.
    assert cal.add_working_time(at(2025, 6, 10, 11, 0), 1) == at(2025, 6, 10, 12, 0)


def test_end_of_day(cal: WorkingCalendar) -> None:
    assert cal.add_working_time(at(2025, 6, 10, 17, 0), 1) == at(2025, 6, 11, 9, 0)
    assert cal.add_working_time(at(2025, 6, 10, 17, 0), 0.5) == at(2025, 6, 10, 17, 30)


def test_start_outside_working_hours(cal: WorkingCalendar) -> None:
    assert cal.add_working_time(at(2025, 6, 10, 20, 0), 1) == at(2025, 6, 11, 9, 30)  # evening
    assert cal.add_working_time(at(2025, 6, 10, 6, 0), 1) == at(2025, 6, 10, 9, 30)  # early morning
    assert cal.add_working_time(at(2025, 6, 10, 12, 45), 1) == at(2025, 6, 10, 14, 30)  # lunch
    assert cal.add_working_time(at(2025, 6, 14, 10, 0), 1) == at(2025, 6, 16, 9, 30)  # Saturday
    assert cal.add_working_time(at(2025, 10, 3, 10, 0), 1) == at(2025, 10, 9, 9, 30)  # holiday
    assert cal.next_working_instant(at(2025, 6, 10, 12, 0)) == at(2025, 6, 10, 13, 30)
    assert cal.next_working_instant(at(2025, 6, 10, 9, 0)) == at(2025, 6, 10, 9, 0)
    # A period's start is working time, its end is not.
    assert cal.next_working_instant(at(2025, 6, 10, 8, 30)) == at(2025, 6, 10, 8, 30)
    assert cal.next_working_instant(at(2025, 6, 10, 13, 30)) == at(2025, 6, 10, 13, 30)
    assert cal.next_working_instant(at(2025, 6, 10, 17, 30)) == at(2025, 6, 11, 8, 30)


def test_working_days_definition(cal: WorkingCalendar) -> None:
    # Inside working time: same clock time N working days later.
    assert cal.add_working_time(at(2025, 6, 10, 10, 0), 2, "working_days") == at(2025, 6, 12, 10, 0)
    assert cal.add_working_time(at(2025, 6, 10, 15, 0), 1, "working_days") == at(2025, 6, 11, 15, 0)
    # Outside working time: counted from the next period start, due at the end of the N-th working day.
    assert cal.add_working_time(at(2025, 6, 10, 18, 0), 2, "working_days") == at(2025, 6, 12, 17, 30)
    assert cal.add_working_time(at(2025, 6, 10, 8, 30), 1, "working_days") == at(2025, 6, 10, 17, 30)
    # Fractions: half a day is 3.75 working hours.
    assert cal.add_working_time(at(2025, 6, 10, 8, 30), 0.5, "working_days") == at(2025, 6, 10, 13, 45)


def test_working_days_across_spring_festival_2026(cal: WorkingCalendar) -> None:
    # Fri 02-13 10:00 + 2: Sat 02-14 is worked (调休), 02-15..02-23 off → Tue 02-24 10:00.
    assert cal.add_working_time(at(2026, 2, 13, 10, 0), 2, "working_days") == at(2026, 2, 24, 10, 0)
    # 私搭乱建 拆除 20 working days from Wed 02-11 09:00, counted by hand from the package's days.
    days = []
    day = date(2026, 2, 11)
    while len(days) < 20:
        day += timedelta(days=1)
        if chinese_calendar.is_workday(day):
            days.append(day)
    expected = datetime.combine(days[-1], time(9, 0), tzinfo=SH)
    assert cal.add_working_time(at(2026, 2, 11, 9, 0), 20, "working_days") == expected == at(2026, 3, 17, 9, 0)


def test_calendar_hours_ignore_holidays(cal: WorkingCalendar) -> None:
    assert cal.add_working_time(at(2025, 10, 1, 10, 0), 2, "calendar_hours") == at(2025, 10, 1, 12, 0)
    assert cal.add_working_time(at(2025, 9, 30, 23, 0), 26, "calendar_hours") == at(2025, 10, 2, 1, 0)
    assert cal.working_time_between(at(2025, 10, 1, 0, 0), at(2025, 10, 8, 0, 0), "calendar_hours") == 168


def test_result_in_calendar_zone_for_any_input_zone(cal: WorkingCalendar) -> None:
    start_utc = datetime(2025, 6, 10, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    due = cal.add_working_time(start_utc, 1)
    assert due == at(2025, 6, 10, 11, 0) and due.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(
    "start",
    [at(2025, 6, 10, 10, 0), at(2025, 9, 30, 16, 15), at(2026, 2, 13, 11, 59), at(2025, 10, 11, 13, 30)],
)
@pytest.mark.parametrize("amount", [0.25, 1, 3.5, 7.5, 10, 40, 150])
def test_between_is_the_inverse_of_add(cal: WorkingCalendar, start: datetime, amount: float) -> None:
    due = cal.add_working_time(start, amount)
    assert cal.working_time_between(start, due) == pytest.approx(amount, abs=1e-9)
    assert cal.working_time_between(due, start) == pytest.approx(-amount, abs=1e-9)
    assert cal.working_time_between(start, due, "working_days") == pytest.approx(amount / 7.5)
    days_due = cal.add_working_time(start, amount / 7.5, "working_days")
    assert days_due == due


def test_rewind_walks_back_over_lunch_weekends_and_holidays(cal: WorkingCalendar) -> None:
    hour = 3_600_000_000
    assert cal.rewind_working_us(at(2025, 6, 10, 14, 0), hour) == at(2025, 6, 10, 11, 30)  # half before lunch
    assert cal.rewind_working_us(at(2025, 6, 16, 9, 0), hour) == at(2025, 6, 13, 17, 0)  # Mon 09:00 → Fri
    # Thu 2025-10-09 after the National Day week: back to the adjusted working Sunday 2025-09-28.
    assert cal.rewind_working_us(at(2025, 10, 9, 9, 30), 2 * hour) == at(2025, 9, 30, 16, 30)
    assert cal.rewind_working_us(at(2025, 6, 14, 10, 0), 0) == at(2025, 6, 14, 10, 0)
    assert cal.rewind_working_us(at(2025, 6, 14, 10, 0), hour) == at(2025, 6, 13, 16, 30)  # from a Saturday
    # review25 C14: time that fills a period back to its start ends there, not at the end of the period before
    # (the latest such instant; Mon 17:30 and Tue 08:30 have no working time between them).
    assert cal.rewind_working_us(at(2025, 6, 10, 12, 0), round(3.5 * hour)) == at(2025, 6, 10, 8, 30)
    assert cal.rewind_working_us(at(2025, 6, 10, 14, 30), hour) == at(2025, 6, 10, 13, 30)
    assert cal.rewind_working_us(at(2025, 6, 10, 17, 30), round(7.5 * hour)) == at(2025, 6, 10, 8, 30)


@pytest.mark.parametrize("end", [at(2025, 6, 10, 10, 0), at(2025, 10, 9, 8, 45), at(2026, 2, 24, 13, 0)])
@pytest.mark.parametrize("amount", [0.25, 3.5, 7.5, 40])
def test_rewind_is_the_inverse_of_between(cal: WorkingCalendar, end: datetime, amount: float) -> None:
    start = cal.rewind_working_us(end, round(amount * 3_600_000_000))
    assert cal.working_time_between(start, end) == pytest.approx(amount, abs=1e-9)


def test_between_counts_only_working_time(cal: WorkingCalendar) -> None:
    assert cal.working_time_between(at(2025, 9, 30, 17, 30), at(2025, 10, 9, 8, 30)) == 0
    assert cal.working_time_between(at(2025, 6, 13, 12, 0), at(2025, 6, 16, 9, 30)) == 5  # Fri pm 4 + Mon 1


def test_traffic_light_thresholds(cal: WorkingCalendar) -> None:
    start = at(2025, 6, 9, 8, 30)  # Monday
    due = cal.add_working_time(start, 10)  # Tue 11:00
    assert due == at(2025, 6, 10, 11, 0)

    def light(share: float) -> str:
        return traffic_light(start, due, cal.add_working_time(start, 10 * share), cal)

    assert light(0) == "green"
    assert light(0.799) == "green"
    assert light(0.8) == "yellow"
    assert light(1.0) == "yellow"
    assert traffic_light(start, due, due, cal) == "yellow"
    assert traffic_light(start, due, due + timedelta(microseconds=1), cal) == "red"
    assert light(1.001) == "red"
    # Past due, even with no working time since (due at 17:30, now 18:00) → red.
    late_due = cal.add_working_time(start, 7.5)
    assert late_due == at(2025, 6, 9, 17, 30)
    assert traffic_light(start, late_due, at(2025, 6, 9, 18, 0), cal) == "red"
    # The share is of WORKING time: Fri 13:30 + 5 h is due Mon 09:30; on Sunday evening 4 of the 5 h have run
    # (80 %, yellow) although almost all of the clock time has; on Friday 16:30, 3 of 5 h (60 %, green).
    weekend_due = cal.add_working_time(at(2025, 6, 13, 13, 30), 5)  # Fri 13:30 + 5 h → Mon 09:30
    assert traffic_light(at(2025, 6, 13, 13, 30), weekend_due, at(2025, 6, 15, 20, 0), cal) == "yellow"
    assert traffic_light(at(2025, 6, 13, 13, 30), weekend_due, at(2025, 6, 13, 16, 30), cal) == "green"


def test_extend_adds_from_the_due_time(cal: WorkingCalendar) -> None:
    due = at(2025, 9, 30, 17, 0)
    assert cal.extend(due, 1) == at(2025, 10, 9, 9, 0)
    assert cal.extend(due, 1, "working_days") == at(2025, 10, 9, 17, 0)
    assert cal.extend(due, 0) == due


#: A full year's arrangement as the State Council publishes it, for a year the package does not know: 17 rest days
#: on Monday–Friday (元旦, 春节, 清明, 劳动节, 端午, 中秋, 国庆) and an adjusted working Saturday.
ARRANGEMENT_2099 = "date,kind,note\n" + "".join(
    f"2099-{md},{kind},{note}\n"
    for md, kind, note in [
        ("01-01", "休息日", "元旦"), ("01-02", "holiday", "元旦"), ("01-03", "上班日", "调休"),
        *((f"02-{d}", "休息日", "春节") for d in range(16, 21)),
        ("04-06", "休息日", "清明"), ("05-01", "休息日", "劳动节"), ("05-04", "休息日", "劳动节"),
        ("06-15", "休息日", "端午"), ("09-21", "休息日", "中秋"),
        *((f"10-0{d}", "休息日", "国庆") for d in (1, 2, 5, 6, 7)),
    ]
)  # fmt: skip


def test_a_city_calendar_file_and_working_hours_from_the_settings(tmp_path: Path) -> None:
    city = tmp_path / "calendar.csv"
    city.write_text(ARRANGEMENT_2099, encoding="utf-8")
    cal = load_city_calendar(city, "09:00-12:00,14:00-18:00")
    assert cal.hours.hours_per_day == 7 and cal.knows_year(2099) and not cal.knows_year(2098)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a year the file lists is known: no warning
        assert [cal.is_working_day(date(2099, 1, d)) for d in (1, 2, 3, 4, 5)] == [False, False, True, False, True]
        # Sat 2099-01-03 (worked) 17:00 + 2 h: 17:00–18:00, Sunday off, Mon 09:00–10:00
        assert cal.add_working_time(at(2099, 1, 3, 17, 0), 2) == at(2099, 1, 5, 10, 0)
    assert load_city_calendar(None).hours == WorkingHours()
    # A row in a year the package knows changes that day only: 国庆 and the other holidays of 2025 stay.
    known = tmp_path / "known.csv"
    known.write_text("date,kind\n2025-12-31,休息日\n", encoding="utf-8")
    cal = load_city_calendar(known)
    assert not cal.is_working_day(date(2025, 12, 31)) and not cal.is_working_day(date(2025, 10, 1))
    assert cal.is_working_day(date(2025, 9, 28))  # an adjusted working Sunday of the package
    bad = tmp_path / "bad.csv"
    bad.write_text("date,kind\n2099-02-30,休息日\n2099-03-01,放假\n2099-03-02,holiday\n2099-03-02,workday\n")
    with pytest.raises(InvalidInput) as refused:
        load_city_calendar(bad)
    message = refused.value.message
    assert "row 2, field 'date': not a date" in message and "row 3, field 'kind': one of" in message
    assert "2099-03-02 is listed both as a holiday and as a working day" in message
    with pytest.raises(InvalidInput, match="needs the columns date,kind"):
        (tmp_path / "empty.csv").write_text("day,type\n")
        load_city_calendar(tmp_path / "empty.csv")
    with pytest.raises(InvalidInput, match="GISGRID_WORKING_HOURS: working hours"):
        load_city_calendar(None, "9-17")


def test_a_few_local_days_of_an_unknown_year_do_not_make_it_known(tmp_path: Path) -> None:
    """review49 F3: one local closure day for 2027 silenced the unknown-year warning and counted 元旦, 春节 and 国庆
    2027 as working days. A year's arrangement holds at least the 13 statutory days on weekdays; fewer rows are
    local days over a year that stays unknown — used, and the warning still given, naming what the file lists."""
    city = tmp_path / "calendar.csv"
    city.write_text("date,kind,note\n2099-03-16,休息日,城市日\n2099-03-21,上班日,调休\n", encoding="utf-8")
    cal = load_city_calendar(city)
    assert not cal.knows_year(2099) and cal.partial_years == {2099: 1}
    assert not cal.is_working_day(date(2099, 3, 16)) and cal.is_working_day(date(2099, 3, 21))  # its rows apply
    with pytest.warns(CalendarYearUnknown) as caught:
        assert cal.is_working_day(date(2099, 1, 1))  # 元旦 unknown: Mon–Fri assumed, and said
    assert str(caught[0].message) == (
        f"chinesecalendar {CHINESECALENDAR_VERSION} does not know 2099 (it knows {KNOWN_YEARS.start}–"
        f"{KNOWN_YEARS.stop - 1}) (GISGRID_CALENDAR_FILE lists 1 weekday rest day(s) of 2099, not the year's "
        "arrangement: it holds at least 13): deadlines in 2099 count Monday–Friday as working days without "
        "statutory holidays; upgrade chinesecalendar or list the year's days in GISGRID_CALENDAR_FILE"
        ", then run `gisgrid cases recompute-deadlines --year YYYY` to recompute the deadlines already stored"
    )
    # Twelve weekday rest days are still short of the statutory thirteen; the thirteenth makes the year known.
    rows = [f"2099-{m:02d}-0{d},休息日" for m in range(1, 10) for d in (1, 2, 5) if date(2099, m, d).weekday() < 5]
    assert len(rows) >= 13
    city.write_text("date,kind\n" + "\n".join(rows[:12]) + "\n", encoding="utf-8")
    assert not load_city_calendar(city).knows_year(2099)
    city.write_text("date,kind\n" + "\n".join(rows[:13]) + "\n", encoding="utf-8")
    assert load_city_calendar(city).knows_year(2099)


def test_unknown_year_warns_and_assumes_monday_to_friday() -> None:
    cal = WorkingCalendar()
    with pytest.warns(CalendarYearUnknown, match="2099") as caught:
        # Fri 2099-01-02 17:00 + 1 h → Mon 2099-01-05 09:00 (Mon–Fri; 01-01 might be a holiday, unknown).
        due = cal.add_working_time(at(2099, 1, 2, 17, 0), 1)
    # The remedy an operator can apply (the deployment's calendar file), as /health says it — not the class's
    # constructor arguments.
    assert str(caught[0].message) == (
        f"chinesecalendar {CHINESECALENDAR_VERSION} does not know 2099 (it knows {KNOWN_YEARS.start}–"
        f"{KNOWN_YEARS.stop - 1}): deadlines in 2099 count Monday–Friday as working days without statutory "
        "holidays; upgrade chinesecalendar or list the year's days in GISGRID_CALENDAR_FILE"
        ", then run `gisgrid cases recompute-deadlines --year YYYY` to recompute the deadlines already stored"
    )
    assert due == at(2099, 1, 5, 9, 0)
    assert cal.unknown_years == {2099}
    # Recorded once per calendar: no second warning for the same year.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cal.add_working_time(at(2099, 1, 5, 17, 0), 1) == at(2099, 1, 6, 9, 0)
    # A known year never warns.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        WorkingCalendar().add_working_time(at(2025, 9, 30, 16, 0), 40)


def test_city_overrides_and_covered_years() -> None:
    # A local extra holiday and a local make-up working day.
    cal = WorkingCalendar(extra_holidays=[date(2025, 6, 11)], extra_workdays=[date(2025, 6, 14)])
    assert cal.add_working_time(at(2025, 6, 10, 17, 0), 1) == at(2025, 6, 12, 9, 0)
    assert cal.add_working_time(at(2025, 6, 13, 17, 0), 1) == at(2025, 6, 14, 9, 0)
    # A city that publishes a year's holidays itself: no warning, its dates used (Thu 01-01 and Fri 01-02 off).
    city = WorkingCalendar(extra_holidays=[date(2099, 1, 1), date(2099, 1, 2)], covered_years=[2099])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert city.add_working_time(at(2099, 1, 1, 10, 0), 1) == at(2099, 1, 5, 9, 30)
    assert city.unknown_years == set()


def test_refusals(cal: WorkingCalendar) -> None:
    naive = datetime(2025, 6, 10, 10, 0)
    with pytest.raises(InvalidInput, match="timezone-aware"):
        cal.add_working_time(naive, 1)
    with pytest.raises(InvalidInput, match="timezone-aware"):
        cal.working_time_between(naive, at(2025, 6, 10, 11, 0))
    with pytest.raises(InvalidInput, match="unknown time unit"):
        cal.add_working_time(at(2025, 6, 10, 10, 0), 1, "working_minutes")
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(InvalidInput, match="finite number"):
            cal.add_working_time(at(2025, 6, 10, 10, 0), bad)
    with pytest.raises(InvalidInput, match="both"):
        WorkingCalendar(extra_holidays=[date(2025, 6, 11)], extra_workdays=[date(2025, 6, 11)])
    with pytest.raises(InvalidInput, match="time zone"):
        WorkingCalendar(tz="Mars/Olympus")
    with pytest.raises(InvalidInput, match="overlaps"):
        WorkingHours.parse("08:30-12:00,11:30-17:30")
    with pytest.raises(InvalidInput, match="ends before"):
        WorkingHours.parse("12:00-08:30")
    with pytest.raises(InvalidInput, match="not a time"):
        WorkingHours.parse("8h-12h")
    assert set(UNITS) == {"working_hours", "working_days", "calendar_hours"}


def test_working_hours_refusals_show_the_form_and_name_the_wrong_separator() -> None:
    # review55 F7: '08:00-12:00;14:30-18:00' was refused as "'12:00;14:30-18:00' is not a time (HH:MM)".
    form = "expected periods HH:MM-HH:MM separated by commas, e.g. 08:30-12:00,13:30-17:30"
    refusals = {
        "08:00-12:00;14:30-18:00": f"'08:00-12:00;14:30-18:00' separates its periods with ';': use ',' ({form})",
        "08:00-12:00；14:30-18:00": f"'08:00-12:00；14:30-18:00' separates its periods with '；': use ',' ({form})",
        "08:00-12:00，14:30-18:00": f"'08:00-12:00，14:30-18:00' separates its periods with '，': use ',' ({form})",
        "08:00-25:00": f"'25:00' is not a time (HH:MM); {form}",
        "8h-12h": f"'8h' is not a time (HH:MM); {form}",
        "08:00": f"'08:00' is not START-END; {form}",
        "12:00-08:30": f"period 12:00:00–08:30:00 ends before it starts; {form}",
        "08:30-12:00,11:30-17:30": f"period 11:30:00–17:30:00 overlaps or is out of order; {form}",
    }
    for setting, message in refusals.items():
        with pytest.raises(InvalidInput) as err:
            WorkingHours.parse(setting)
        assert err.value.message == f"working hours: {message}", setting
    with pytest.raises(InvalidInput) as err:
        load_city_calendar(None, "08:00-12:00;14:30-18:00")
    assert err.value.message.startswith("GISGRID_WORKING_HOURS: working hours: '08:00-12:00;14:30-18:00' separates")
    # An hour without its leading zero is read (as the reviewer's 8:00-12:00 was refused).
    assert WorkingHours.parse("8:00-12:00, 14:30-18:00") == WorkingHours.parse("08:00-12:00,14:30-18:00")
    assert WorkingHours.parse("8:00-12:00,14:30-18:00").periods[0] == (time(8, 0), time(12, 0))


def test_working_hours_defaults() -> None:
    hours = WorkingHours()
    assert hours.hours_per_day == 7.5
    assert WorkingHours.parse("08:30-12:00,13:30-17:30") == hours


def test_add_is_fast(cal: WorkingCalendar) -> None:
    start = at(2026, 2, 11, 9, 0)
    cal.add_working_time(start, 20, "working_days")  # warm the day cache
    t0 = clock.perf_counter()
    for _ in range(200):
        cal.add_working_time(start, 20, "working_days")
    assert (clock.perf_counter() - t0) / 200 < 1e-3


def test_traffic_lights_for_a_column_agree_with_one_by_one() -> None:
    import numpy as np
    import pandas as pd

    from gisgrid.evaluation import traffic_lights

    cal = WorkingCalendar()
    tz = cal.tz
    rng = np.random.default_rng(3)
    base = pd.Timestamp("2025-09-26 08:00", tz=tz)  # across the National Day week and its adjusted Saturdays
    started = [base + pd.Timedelta(minutes=int(m)) for m in rng.integers(0, 20 * 24 * 60, 400)]
    due = [s + pd.Timedelta(minutes=int(m)) for s, m in zip(started, rng.integers(-60, 6 * 24 * 60, 400), strict=True)]
    for now in (pd.Timestamp("2025-10-03 10:00", tz=tz), pd.Timestamp("2025-10-11 09:15", tz=tz)):
        got = traffic_lights(pd.Series(started), pd.Series(due), now.to_pydatetime(), cal)
        want = [
            traffic_light(s.to_pydatetime(), d.to_pydatetime(), now.to_pydatetime(), cal)
            for s, d in zip(started, due, strict=True)
        ]
        assert list(got) == want
        assert {"green", "yellow", "red"} <= set(want)


def test_a_calendar_hours_limit_is_lit_by_clock_time_not_working_time() -> None:
    cal = WorkingCalendar()
    tz = cal.tz
    start = datetime(2025, 10, 3, 10, 30, tzinfo=tz)  # National Day: no working time at all
    due = start + timedelta(hours=2)
    assert traffic_light(start, due, start + timedelta(minutes=5), cal, calendar_time=True) == "green"
    assert traffic_light(start, due, start + timedelta(minutes=96), cal, calendar_time=True) == "yellow"  # 80 %
    assert traffic_light(start, due, start + timedelta(minutes=95), cal, calendar_time=True) == "green"
    assert traffic_light(start, due, start + timedelta(minutes=5), cal) == "yellow"  # no working time in it
    started = pd.Series([start, start])
    dues = pd.Series([due, due])
    lights = traffic_lights(started, dues, start + timedelta(minutes=5), cal, calendar_time=np.array([True, False]))
    assert list(lights) == ["green", "yellow"]
