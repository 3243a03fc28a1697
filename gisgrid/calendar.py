"""Working-time arithmetic on the Chinese calendar (工作时 / 工作日) for case deadlines and the traffic light.

Working days come from the ``chinesecalendar`` package (import ``chinese_calendar``): statutory holidays are off,
adjusted working weekends (调休上班的周六/周日) are on. A city adds its own with ``extra_holidays`` /
``extra_workdays`` (they win over the package). For a year the package does not know (it covers 2004–2026 in
1.11.0) the calendar does not guess silently: it treats Mon–Fri as working days, records the year in
``WorkingCalendar.unknown_years`` and emits a :class:`CalendarYearUnknown` warning (once per year and calendar).

Units (:data:`UNITS`):

* ``working_hours`` — time that only runs inside the working periods of working days (default 08:30–12:00 and
  13:30–17:30, 7.5 h a day). A deadline that fills a period exactly is the END of that period (11:00 + 1 h is
  12:00, not 13:30): the earliest instant at which the time has run.
* ``working_days`` — N working days = N × (working hours per day) working hours. Because every working day has the
  same periods, a start inside working time is due N working days later at the same clock time (Tue 10:00 + 2 →
  Thu 10:00) — within a season: seasonal hours (:class:`SeasonalHours`, 夏季/冬季作息) give each day its season's
  periods, all seasons equally long a day, so across a change the same working time ends at another clock time.
  A start outside working time counts from the next period start, so it is due at the end of the N-th
  working day (Tue 18:00 + 2 → Thu 17:30, i.e. Wed and Thu are the two days). Fractions are allowed (0.5 day).
* ``calendar_hours`` — plain elapsed time (emergencies handled round the clock); holidays do not matter.

Arithmetic is on wall-clock time in the calendar's zone (``Asia/Shanghai`` has no DST); every datetime passed in
must be timezone-aware, and results are in the calendar's zone. Durations are counted in whole microseconds so
that thresholds compare exactly.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Literal, TypeGuard, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar

from gisgrid import cityfiles
from gisgrid.constants import LOCAL_TZ_NAME
from gisgrid.errors import InvalidInput, ProblemList

Unit = Literal["working_hours", "working_days", "calendar_hours"]
UNITS: tuple[str, ...] = get_args(Unit)
Light = Literal["green", "yellow", "red"]

#: Percentage of the working time of a node at which the light turns yellow (standards notes §4: 0–80 % green).
YELLOW_AT_PERCENT = 80
#: Years with holiday data in the installed chinesecalendar (its own check uses the same min/max).
KNOWN_YEARS: range = range(min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year + 1)
CHINESECALENDAR_VERSION: str = getattr(chinese_calendar, "__version__", "unknown")
#: What an operator does about a year the package does not know: the one remedy the library's warning, /health and
#: a case's calendar_warning give (a deployment sets GISGRID_CALENDAR_FILE, not this module's arguments).
#: Deadlines already stored stay as computed until the command recomputes them (review49 F4): the remedy names it.
RECOMPUTE_COMMAND = "gisgrid cases recompute-deadlines --year YYYY"
UNKNOWN_YEAR_REMEDY = (
    "upgrade chinesecalendar or list the year's days in GISGRID_CALENDAR_FILE, "
    f"then run `{RECOMPUTE_COMMAND}` to recompute the deadlines already stored"
)
UNKNOWN_YEAR_REMEDY_ZH = (
    "请升级 chinesecalendar,或在 GISGRID_CALENDAR_FILE 中列出该年的放假和调休上班日期,"
    f"然后运行 {RECOMPUTE_COMMAND} 重算已保存的时限"
)
#: Statutory holiday days a year (全国年节及纪念日放假办法, 2024 revision: 元旦 1, 春节 4, 清明 1, 劳动节 2, 端午 1,
#: 中秋 1, 国庆 3). The State Council's arrangement moves one that falls on a weekend onto a weekday, so a year's full
#: arrangement always holds at least this many rest days on Monday–Friday: a city file listing fewer for a year the
#: package does not know has listed local days, not the year — that year stays unknown and keeps its warning.
STATUTORY_HOLIDAY_DAYS = 13


def unknown_year_text(year: int, listed: int | None = None) -> str:
    """The warning for a year whose holidays and adjusted working days are unknown (the warning and /health);
    ``listed``: the weekday rest days the city's calendar file gives for that year, too few to be the year."""
    partial = (
        f" (GISGRID_CALENDAR_FILE lists {listed} weekday rest day(s) of {year}, not the year's arrangement: "
        f"it holds at least {STATUTORY_HOLIDAY_DAYS})"
        if listed is not None
        else ""
    )
    return (
        f"chinesecalendar {CHINESECALENDAR_VERSION} does not know {year} (it knows {KNOWN_YEARS.start}–"
        f"{KNOWN_YEARS.stop - 1}){partial}: deadlines in {year} count Monday–Friday as working days without "
        f"statutory holidays; {UNKNOWN_YEAR_REMEDY}"
    )


def unknown_years_warning(years: Iterable[int], zh: str, en: str) -> tuple[str, str] | None:
    """The warning (zh-CN, English) an answer carries when its working-time arithmetic ran through years the
    calendar does not know — a case's deadline or nodes, an evaluation's figures: ``zh``/``en`` say what was
    counted Mon–Fri (``时限``, ``the deadline``); None when there is no such year."""
    shown = sorted(set(years))
    if not shown:
        return None
    return (
        f"{'、'.join(map(str, shown))} 年节假日安排未知(chinesecalendar 未收录): {zh}按周一至周五计算, 可能有误;"
        f"{UNKNOWN_YEAR_REMEDY_ZH}。",
        f"Holidays of {', '.join(map(str, shown))} are unknown: {en} counts Mon–Fri; {UNKNOWN_YEAR_REMEDY}.",
    )


#: The longest extension approved in one step, and the longest time limit a catalogue may set: a longer one is a
#: typing slip (minutes typed as hours), or a case to suspend (挂账).
MAX_EXTENSION_DAYS = 366
#: Working days that cannot fit in MAX_EXTENSION_DAYS (a year holds ~250): refused before walking the calendar, so
#: a refused length does not wander through years the calendar does not know.
MAX_EXTENSION_WORKING_DAYS = 270


#: The shortest extension: less is a slip (1e-12 hours, minutes typed as days) that moves the deadline by nothing a
#: deadline shows (it is kept to the minute), and was refused as "not later" than itself.
MIN_EXTENSION_MINUTES = 1


def shortest(unit: str, hours_per_day: float) -> float:
    """The shortest length in ``unit`` an extension may be: MIN_EXTENSION_MINUTES of (working) time —
    1/60 calendar or working hour, 1/(60 × ``hours_per_day``) working day."""
    hours = MIN_EXTENSION_MINUTES / 60
    return hours / hours_per_day if unit == "working_days" else hours


def longest(unit: str, hours_per_day: float) -> float:
    """The longest length in ``unit`` that fits MAX_EXTENSION_DAYS (``hours_per_day``: working hours of a working
    day): 366 × 24 calendar hours, 270 working days, 270 × hours_per_day working hours."""
    if unit == "calendar_hours":
        return MAX_EXTENSION_DAYS * 24
    if unit == "working_hours":
        return MAX_EXTENSION_WORKING_DAYS * hours_per_day
    return MAX_EXTENSION_WORKING_DAYS


_US_PER_SECOND = 1_000_000
_US_PER_HOUR = 3600 * _US_PER_SECOND
_US_PER_DAY = 24 * _US_PER_HOUR
# No real deadline runs this far; stops a loop when a city's extra holidays leave no working day.
_MAX_DAYS = 366 * 20


class CalendarYearUnknown(UserWarning):
    """The holiday package has no data for a year; Mon–Fri were used as working days."""


def _time_us(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * _US_PER_SECOND + t.microsecond


#: What GISGRID_WORKING_HOURS looks like, said by every refusal of it (review55 F7).
HOURS_FORM = "expected periods HH:MM-HH:MM separated by commas, e.g. 08:30-12:00,13:30-17:30"
#: A time of day in working hours: H:MM or HH:MM (an hour without its leading zero is read, 8:00 = 08:00), seconds
#: optional.
_CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?")
#: Separators a hand-written list may use instead of ','.
_OTHER_SEPARATORS = (";", "；", "，", "、", "/")


def _parse_time(text: str) -> time:
    m = _CLOCK.fullmatch(text.strip())
    if m is None:
        raise InvalidInput(
            f"working hours: {text.strip()!r} is not a time (HH:MM); {HOURS_FORM}", detail={"value": text}
        )
    return time(int(m[1]), int(m[2]), int(m[3] or 0))


@dataclass(frozen=True)
class WorkingHours:
    """Working periods of a working day, local wall-clock, sorted and not overlapping."""

    periods: tuple[tuple[time, time], ...] = ((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))

    def __post_init__(self) -> None:
        if not self.periods:
            raise InvalidInput("working hours: at least one period is needed", detail={"periods": []})
        previous_end: time | None = None
        for start, end in self.periods:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise InvalidInput("working hours: periods are local times without a zone", detail={})
            if start >= end:
                raise InvalidInput(f"working hours: period {start}–{end} ends before it starts", detail={})
            if previous_end is not None and start < previous_end:
                raise InvalidInput(f"working hours: period {start}–{end} overlaps or is out of order", detail={})
            previous_end = end

    @classmethod
    def parse(cls, text: str) -> WorkingHours:
        """``"08:30-12:00,13:30-17:30"`` (e.g. from a setting; ``8:30`` is read as ``08:30``). Every refusal says
        the expected form, and names a separator other than ``,`` (``;``, ``；``, ``，`` …) if one is used."""
        other = next((sep for sep in _OTHER_SEPARATORS if sep in text), None)
        if other is not None:
            raise InvalidInput(
                f"working hours: {text!r} separates its periods with {other!r}: use ',' ({HOURS_FORM})",
                detail={"value": text},
            )
        periods = []
        for part in text.split(","):
            start, sep, end = part.partition("-")
            if not sep:
                raise InvalidInput(
                    f"working hours: {part.strip()!r} is not START-END; {HOURS_FORM}", detail={"value": text}
                )
            periods.append((_parse_time(start), _parse_time(end)))
        try:
            return cls(tuple(periods))
        except InvalidInput as exc:
            raise InvalidInput(f"{exc.message}; {HOURS_FORM}", detail={"value": text}) from None

    @property
    def spans_us(self) -> tuple[tuple[int, int], ...]:
        """Periods as microseconds since midnight."""
        return tuple((_time_us(s), _time_us(e)) for s, e in self.periods)

    @property
    def hours_per_day(self) -> float:
        return sum(e - s for s, e in self.spans_us) / _US_PER_HOUR


#: The working day of the default working hours (08:30–12:00 and 13:30–17:30, ``GISGRID_WORKING_HOURS``' default):
#: 7.5 h. Only the default of code given no calendar (a printed order's, the simulation's): a deployment's working
#: day is its calendar's, ``WorkingCalendar.hours.hours_per_day``, which its callers pass on.
DEFAULT_HOURS_PER_DAY = WorkingHours().hours_per_day


#: A seasonal schedule's ranges are month-day pairs; a leap year numbers them so that 02-29 is a day to cover.
_LEAP_YEAR = 2000
#: A period's start (``08:00-``): a part of the seasonal form that is a period, not a season.
_PERIOD_START = re.compile(r"\d{1,2}:\d{2}\s*-")
#: The mark before the next season's ``MM-DD..`` inside a season's periods: what was typed instead of ``;``.
_NEXT_SEASON = re.compile(r"([^\w:])\s*\d{1,2}-\d{1,2}\.\.")
SEASONAL_FORM = (
    "MM-DD..MM-DD=HH:MM-HH:MM,…;MM-DD..MM-DD=…, "
    "e.g. 05-01..09-30=08:00-12:00,14:30-18:00;10-01..04-30=08:30-12:00,13:30-17:30"
)


def _md_text(md: tuple[int, int]) -> str:
    return f"{md[0]:02d}-{md[1]:02d}"


def _md_index(md: tuple[int, int]) -> int:
    """0 (01-01) … 365 (12-31) of a leap year."""
    return date(_LEAP_YEAR, *md).timetuple().tm_yday - 1


def _clock_text(t: time) -> str:
    return f"{t:%H:%M:%S}" if t.second else f"{t:%H:%M}"


def _hours_text(hours: WorkingHours) -> str:
    return ",".join(f"{_clock_text(s)}-{_clock_text(e)}" for s, e in hours.periods)


@dataclass(frozen=True)
class Season:
    """The working hours from month-day ``first`` to ``last`` (both included; ``last`` before ``first`` wraps the
    year end: 10-01..04-30)."""

    first: tuple[int, int]
    last: tuple[int, int]
    hours: WorkingHours

    @property
    def label(self) -> str:
        return f"{_md_text(self.first)}..{_md_text(self.last)}"

    def indexes(self) -> list[int]:
        """The leap-year day indexes the season covers."""
        a, b = _md_index(self.first), _md_index(self.last)
        return list(range(a, b + 1)) if a <= b else [*range(a, 366), *range(0, b + 1)]


@dataclass(frozen=True)
class SeasonalHours:
    """Working hours that change with the season (夏季/冬季作息): each day of the year has the hours of the one
    season whose month-day range holds it. The seasons cover the year (02-29 too) exactly once, and every season's
    working day is equally long, so that a working day (``hours_per_day``) stays one length all year."""

    seasons: tuple[Season, ...]
    #: Leap-year day index (0 = 01-01) → index in ``seasons``.
    _by_index: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.seasons:
            raise InvalidInput("working hours: at least one season is needed", detail={"seasons": []})
        owner: list[Season | None] = [None] * 366
        for season in self.seasons:
            for i in season.indexes():
                other = owner[i]
                if other is not None:
                    day = _md_text(_md_of_index(i))
                    raise InvalidInput(
                        f"working hours: 季节 {other.label} 与 {season.label} 重叠(如 {day})/ seasons {other.label} "
                        f"and {season.label} overlap (e.g. on {day}); each day of the year belongs to one season",
                        detail={"seasons": [other.label, season.label], "day": day},
                    )
                owner[i] = season
        missing = [i for i, season in enumerate(owner) if season is None]
        if missing:
            gaps = _index_ranges(missing)
            raise InvalidInput(
                f"working hours: 季节未覆盖全年, 缺 {', '.join(gaps)} / the seasons leave {', '.join(gaps)} "
                "without working hours; together they must cover the whole year (02-29 included) exactly once",
                detail={"missing": gaps},
            )
        lengths = {sum(e - b for b, e in s.hours.spans_us) for s in self.seasons}
        if len(lengths) > 1:
            listed = "; ".join(f"{s.label} {_hours_text(s.hours)} = {s.hours.hours_per_day:g} h" for s in self.seasons)
            raise InvalidInput(
                f"working hours: 各季节每个工作日的工作时长须相同({listed})/ every season's working day must be "
                f"as long, so that a working day (工作日) is one length all year: {listed}",
                detail={"seasons": {s.label: s.hours.hours_per_day for s in self.seasons}},
            )
        by_index = tuple(self.seasons.index(season) for season in owner if season is not None)
        object.__setattr__(self, "_by_index", by_index)

    @classmethod
    def parse(cls, text: str) -> SeasonalHours:
        """``"05-01..09-30=08:00-12:00,14:30-18:00;10-01..04-30=08:30-12:00,13:30-17:30"``; each season's
        periods as :meth:`WorkingHours.parse` reads them."""
        seasons: list[Season] = []
        # A full-width ； between seasons is unambiguous here (review56 F1): read as ;.
        for part in (p.strip() for p in text.replace("；", ";").split(";")):
            if not part:
                continue
            span, sep, periods = part.partition("=")
            first, dots, last = span.partition("..")
            if not sep and not dots and seasons and _PERIOD_START.match(part):
                previous = seasons[-1].label
                raise InvalidInput(
                    f"working hours: 季节 {previous} 的时段之间用逗号 , 分隔,不用分号 ; :{part!r} / season "
                    f"{previous}'s periods are separated by ',', not ';': {part!r} (seasonal form: {SEASONAL_FORM})",
                    detail={"value": part, "season": previous},
                )
            if not sep or not dots:
                raise InvalidInput(
                    f"working hours: 季节 {part!r} 格式不对 / season {part!r} is not "
                    f"MM-DD..MM-DD=periods (seasonal form: {SEASONAL_FORM})",
                    detail={"value": part},
                )
            if "=" in periods:
                used = _NEXT_SEASON.search(periods)
                mark = used.group(1) if used else ","
                raise InvalidInput(
                    f"working hours: 季节之间用分号 ; 分隔 / seasons are separated by ';', not {mark!r}: {part!r} "
                    f"(seasonal form: {SEASONAL_FORM})",
                    detail={"value": part},
                )
            label = f"{first.strip()}..{last.strip()}"
            try:
                hours = WorkingHours.parse(periods)
            except InvalidInput as exc:
                what = exc.message.removeprefix("working hours: ")
                raise InvalidInput(f"working hours: season {label}: {what}", detail=exc.detail) from None
            seasons.append(Season(_parse_md(first, part), _parse_md(last, part), hours))
        try:
            return cls(tuple(seasons))
        except InvalidInput as exc:
            if len(seasons) != 1 or "missing" not in (exc.detail or {}):
                raise
            # One season short of the year: most often a shell that ended the command at the first ';'.
            raise InvalidInput(
                f"{exc.message} (在 shell 中须给取值加引号,否则 ; 会结束命令 / in a shell, quote the value: ';' ends "
                "a command)",
                detail=exc.detail,
            ) from None

    def index_of(self, day: date) -> int:
        """The index in ``seasons`` of the season holding ``day``."""
        return self._by_index[_md_index((day.month, day.day))]

    def on(self, day: date) -> WorkingHours:
        return self.seasons[self.index_of(day)].hours

    @property
    def hours_per_day(self) -> float:
        return self.seasons[0].hours.hours_per_day

    def __str__(self) -> str:
        return ";".join(f"{s.label}={_hours_text(s.hours)}" for s in self.seasons)


def _md_of_index(i: int) -> tuple[int, int]:
    day = date(_LEAP_YEAR, 1, 1) + timedelta(days=i)
    return day.month, day.day


def _index_ranges(indexes: list[int]) -> list[str]:
    """Leap-year day indexes as ranges: ["02-29", "07-01..07-31"]."""
    out: list[str] = []
    run_start = previous = indexes[0]
    for i in [*indexes[1:], None]:
        if i is not None and i == previous + 1:
            previous = i
            continue
        a, b = _md_text(_md_of_index(run_start)), _md_text(_md_of_index(previous))
        out.append(a if a == b else f"{a}..{b}")
        if i is not None:
            run_start = previous = i
    return out


def _parse_md(text: str, part: str) -> tuple[int, int]:
    value = text.strip()
    month, sep, day = value.partition("-")
    try:
        if not sep or len(month) != 2 or len(day) != 2:
            raise ValueError
        md = (int(month), int(day))
        date(_LEAP_YEAR, *md)
    except ValueError:
        raise InvalidInput(
            f"working hours: 季节 {part!r} 中 {value!r} 不是月-日(MM-DD)/ in season {part!r}, {value!r} is not a "
            "month-day (MM-DD, e.g. 05-01)",
            detail={"value": value},
        ) from None
    return md


#: Working hours of a deployment: one set of periods for every working day, or seasonal.
Hours = WorkingHours | SeasonalHours


def parse_working_hours(text: str) -> Hours:
    """``GISGRID_WORKING_HOURS``: ``"08:30-12:00,13:30-17:30"`` (every day) or seasonal (:data:`SEASONAL_FORM`,
    told apart by its ``=``)."""
    if "=" in text or ".." in text:
        return SeasonalHours.parse(text)
    return WorkingHours.parse(text)


def _merged_text(hours: WorkingHours) -> str:
    """The periods as text with touching ones as one (``08:00-12:00,12:00-16:00`` is ``08:00-16:00``): the same
    working time, so the same form."""
    merged: list[tuple[time, time]] = []
    for start, end in hours.periods:
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return _hours_text(WorkingHours(tuple(merged)))


def hours_setting(hours: Hours) -> str:
    """The normalised form of a GISGRID_WORKING_HOURS setting: two settings that give every day of the year the
    same working time have the same form (``8:30`` is ``08:30``; periods that touch as one; seasons in calendar
    order from the first day a change of hours starts, the neighbouring seasons with the same hours as one;
    seasonal hours the same all year are the plain form). What ``deadline_hours`` records and compares
    (``gisgrid.deadline_hours``)."""
    if isinstance(hours, WorkingHours):
        return _merged_text(hours)
    per_day = [_merged_text(hours.on(date(_LEAP_YEAR, *_md_of_index(i)))) for i in range(366)]
    if len(set(per_day)) == 1:
        return per_day[0]
    # A season starts where the hours differ from the day before (index -1: 12-31, across the year end).
    starts = [i for i in range(366) if per_day[i] != per_day[i - 1]]
    seasons = []
    for k, first in enumerate(starts):
        last = (starts[(k + 1) % len(starts)] - 1) % 366
        seasons.append(f"{_md_text(_md_of_index(first))}..{_md_text(_md_of_index(last))}={per_day[first]}")
    return ";".join(seasons)


def _zone(tz: str | tzinfo) -> tzinfo:
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {tz!r}", detail={"tz": tz}) from None


def is_unit(value: object) -> TypeGuard[Unit]:
    return value in UNITS


def _check_unit(unit: str) -> Unit:
    if not is_unit(unit):
        raise InvalidInput(f"unknown time unit {unit!r}: expected one of {', '.join(UNITS)}", detail={"unit": unit})
    return unit


class WorkingCalendar:
    """Working days (Chinese statutory calendar + local changes) and working hours in one time zone."""

    def __init__(
        self,
        hours: Hours | None = None,
        tz: str | tzinfo = LOCAL_TZ_NAME,
        extra_holidays: Iterable[date] = (),
        extra_workdays: Iterable[date] = (),
        *,
        covered_years: Iterable[int] = (),
        partial_years: Mapping[int, int] | None = None,
    ) -> None:
        """``covered_years``: years the city's own extra lists fully describe (e.g. the 2027 holidays published
        before the package is updated); they are treated as known, without a warning. ``partial_years``: years
        the package does not know for which the lists hold some days only (year → weekday rest days listed): still
        unknown, and their warning says so."""
        self.hours: Hours = hours or WorkingHours()
        self.tz = _zone(tz)
        self.extra_holidays = frozenset(extra_holidays)
        self.extra_workdays = frozenset(extra_workdays)
        both = sorted(self.extra_holidays & self.extra_workdays)
        if both:
            raise InvalidInput(
                f"dates both extra holidays and extra working days: {', '.join(map(str, both))}",
                detail={"dates": [d.isoformat() for d in both]},
            )
        self.covered_years = frozenset(covered_years)
        self.partial_years: dict[int, int] = dict(partial_years or {})
        #: Years met so far that the holiday package does not know (Mon–Fri was assumed).
        self.unknown_years: set[int] = set()
        # One set of periods: self._spans for every day. Seasonal: each day's own, looked up once per day.
        self._seasonal = isinstance(self.hours, SeasonalHours)
        first_hours = self.hours.seasons[0].hours if isinstance(self.hours, SeasonalHours) else self.hours
        self._spans = first_hours.spans_us
        self._season_spans = (
            tuple(s.hours.spans_us for s in self.hours.seasons) if isinstance(self.hours, SeasonalHours) else ()
        )
        self._day_spans: dict[int, tuple[tuple[int, int], ...]] = {}  # date ordinal → spans (seasonal only)
        self._day_us = sum(e - s for s, e in self._spans)  # the same in every season
        self._working: dict[int, bool] = {}  # date ordinal → working day; the package call costs ~35 µs

    # -- days -----------------------------------------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        if isinstance(day, datetime):
            day = day.date()
        return self._is_working_ordinal(day.toordinal())

    def _is_working_ordinal(self, ordinal: int) -> bool:
        cached = self._working.get(ordinal)
        if cached is not None:
            return cached
        day = date.fromordinal(ordinal)
        if day in self.extra_holidays:
            result = False
        elif day in self.extra_workdays:
            result = True
        elif day.year in self.covered_years:
            result = day.weekday() < 5
        else:
            try:
                result = chinese_calendar.is_workday(day)
            except NotImplementedError:
                result = day.weekday() < 5
                self._unknown_year(day.year)
        self._working[ordinal] = result
        return result

    def _spans_on(self, ordinal: int) -> tuple[tuple[int, int], ...]:
        """The working periods (µs since midnight) of the day ``ordinal`` (callers test ``self._seasonal`` first,
        so that one set of periods costs nothing per day)."""
        spans = self._day_spans.get(ordinal)
        if spans is None:
            assert isinstance(self.hours, SeasonalHours)
            spans = self._season_spans[self.hours.index_of(date.fromordinal(ordinal))]
            self._day_spans[ordinal] = spans
        return spans

    def spans_us_on(self, day: date) -> tuple[tuple[int, int], ...]:
        """The working periods of ``day`` (its season's), as microseconds since midnight."""
        return self._spans_on(day.toordinal()) if self._seasonal else self._spans

    def hours_on(self, day: date) -> WorkingHours:
        """The working hours of ``day`` (its season's when the hours are seasonal)."""
        return self.hours.on(day) if isinstance(self.hours, SeasonalHours) else self.hours

    def knows_year(self, year: int) -> bool:
        """Whether the year's holidays and adjusted working days are known (the package or the city's lists)."""
        return year in KNOWN_YEARS or year in self.covered_years

    def _unknown_year(self, year: int) -> None:
        if year in self.unknown_years:
            return
        self.unknown_years.add(year)
        warnings.warn(unknown_year_text(year, self.partial_years.get(year)), CalendarYearUnknown, stacklevel=4)

    # -- instants -------------------------------------------------------------------------------------------------

    def _local(self, at: datetime, name: str) -> tuple[int, int]:
        """(date ordinal, microseconds since local midnight)."""
        if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
            raise InvalidInput(f"{name} must be a timezone-aware datetime", detail={name: str(at)})
        local = at.astimezone(self.tz)
        return local.toordinal(), _time_us(local.time())

    def _instant(self, ordinal: int, us: int) -> datetime:
        naive = datetime.combine(date.fromordinal(ordinal), time()) + timedelta(microseconds=us)
        return naive.replace(tzinfo=self.tz)

    def next_working_instant(self, at: datetime) -> datetime:
        """``at`` itself when it is working time, else the start of the next working period."""
        ordinal, us = self._local(at, "at")
        spans = self._spans_on(ordinal) if self._seasonal else self._spans
        if self._is_working_ordinal(ordinal) and any(s <= us < e for s, e in spans):
            return at.astimezone(self.tz)
        return self._add_us(ordinal, us, 0, strict=True)

    def _add_us(self, ordinal: int, pos: int, remaining: int, *, strict: bool = False) -> datetime:
        """Walk working periods from (ordinal, pos). A period filled exactly ends the walk at its end, except
        when ``strict`` (amount 0: the next instant that IS working time)."""
        first = ordinal
        while ordinal - first <= _MAX_DAYS:
            if self._is_working_ordinal(ordinal):
                if pos == 0 and remaining > self._day_us:
                    remaining -= self._day_us  # a whole day; the common case for long limits
                else:
                    for start, end in self._spans_on(ordinal) if self._seasonal else self._spans:
                        if pos >= end:
                            continue
                        begin = max(start, pos)
                        available = end - begin
                        if remaining < available or (remaining == available and not strict):
                            return self._instant(ordinal, begin + remaining)
                        remaining -= available
            ordinal += 1
            pos = 0
        raise InvalidInput(f"no working time within {_MAX_DAYS} days: check the extra holidays", detail={})

    def rewind_working_us(self, end: datetime, amount_us: int) -> datetime:
        """The latest instant with ``amount_us`` microseconds of working time between it and ``end`` (the inverse
        of :meth:`add_working_time`, walking back): where a clock that has used that much must have started."""
        if amount_us <= 0:
            return end.astimezone(self.tz)
        ordinal, pos = self._local(end, "end")
        remaining, last = amount_us, ordinal
        while last - ordinal <= _MAX_DAYS:
            if self._is_working_ordinal(ordinal):
                for start, stop in reversed(self._spans_on(ordinal) if self._seasonal else self._spans):
                    top = min(stop, pos)
                    if top <= start:
                        continue
                    if remaining <= top - start:
                        return self._instant(ordinal, top - remaining)
                    remaining -= top - start
            ordinal -= 1
            pos = _US_PER_DAY
        raise InvalidInput(f"no working time within {_MAX_DAYS} days: check the extra holidays", detail={})

    def _amount_us(self, amount: float, unit: Unit) -> int:
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount) or amount < 0:
            raise InvalidInput(f"time amount must be a finite number ≥ 0, not {amount!r}", detail={"amount": amount})
        per_unit = self._day_us if unit == "working_days" else _US_PER_HOUR
        return round(amount * per_unit)

    def add_working_time(self, start: datetime, amount: float, unit: Unit | str = "working_hours") -> datetime:
        """The instant ``amount`` ``unit`` after ``start`` (see the module docstring; amount 0 returns start)."""
        unit = _check_unit(unit)
        amount_us = self._amount_us(amount, unit)
        ordinal, pos = self._local(start, "start")
        if amount_us == 0:
            return start.astimezone(self.tz)
        if unit == "calendar_hours":
            # Through UTC: aware arithmetic in one zone object is wall-clock arithmetic.
            return (start.astimezone(UTC) + timedelta(microseconds=amount_us)).astimezone(self.tz)
        return self._add_us(ordinal, pos, amount_us)

    def extend(self, due_at: datetime, amount: float, unit: Unit | str = "working_hours") -> datetime:
        """A deadline extension (延时): ``amount`` more from the current ``due_at``."""
        return self.add_working_time(due_at, amount, unit)

    def working_us_between(self, a: datetime, b: datetime) -> int:
        """Working microseconds from ``a`` to ``b`` (negative when ``b`` is before ``a``)."""
        a_ord, a_us = self._local(a, "a")
        b_ord, b_us = self._local(b, "b")
        if (b_ord, b_us) < (a_ord, a_us):
            return -self.working_us_between(b, a)
        total = 0
        for ordinal in range(a_ord, b_ord + 1):
            if not self._is_working_ordinal(ordinal):
                continue
            lo = a_us if ordinal == a_ord else 0
            hi = b_us if ordinal == b_ord else _US_PER_DAY
            if lo == 0 and hi == _US_PER_DAY:
                total += self._day_us
                continue
            for start, end in self._spans_on(ordinal) if self._seasonal else self._spans:
                total += max(0, min(end, hi) - max(start, lo))
        return total

    def working_time_between(self, a: datetime, b: datetime, unit: Unit | str = "working_hours") -> float:
        """Elapsed time from ``a`` to ``b`` in ``unit`` (negative when ``b`` is before ``a``); the inverse of
        :meth:`add_working_time` for a start in working time."""
        unit = _check_unit(unit)
        if unit == "calendar_hours":
            self._local(a, "a")
            self._local(b, "b")
            return (b.astimezone(UTC) - a.astimezone(UTC)) / timedelta(hours=1)
        us = self.working_us_between(a, b)
        return us / (self._day_us if unit == "working_days" else _US_PER_HOUR)


def traffic_light(
    started_at: datetime, due_at: datetime, now: datetime, calendar: WorkingCalendar, *, calendar_time: bool = False
) -> Light:
    """红黄绿灯 of a node or case by the share of its time used: < 80 % green, 80–100 % yellow, past ``due_at``
    red (standards notes §4). The time is WORKING time, or plain clock time for a limit in calendar hours
    (``calendar_time``: an urgent case runs round the clock, so a night or a holiday uses it up too).

    ``now`` after ``due_at`` is red even when no working time has passed since (due Thu 17:30, now 18:00): the
    deadline was missed. A limit with no working time in it (due ≤ start) is yellow until due, then red.
    """
    if now > due_at:
        return "red"
    if calendar_time:
        total, elapsed = _us(due_at - started_at), _us(now - started_at)
    else:
        total = calendar.working_us_between(started_at, due_at)
        elapsed = calendar.working_us_between(started_at, now)
    if total <= 0:
        return "yellow"
    # Integer comparison: exactly 80 % is yellow, whatever float rounding would say.
    return "green" if elapsed * 100 < total * YELLOW_AT_PERCENT else "yellow"


def _us(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


class _CalendarProblems(ProblemList):
    label = "calendar file"


#: Day kinds of a city's calendar file (zh-CN or English).
CALENDAR_COLUMNS = ("date", "kind")
DAY_KINDS = {"休息日": "holiday", "holiday": "holiday", "上班日": "workday", "workday": "workday"}


def load_city_calendar(
    path: Path | None, hours: str | Hours | None = None, *, setting: str | None = None
) -> WorkingCalendar:
    """The working calendar of a deployment: its working hours (``"08:30-12:00,13:30-17:30"``) and, from a CSV
    file (``date,kind[,note]``; kind 休息日/holiday or 上班日/workday), the city's own days — for instance next
    year's holidays before chinesecalendar has them. Over a year the package knows, the rows change only their
    days; a year it does not know is taken as fully described by the rows given for it (known: no warning).
    Every bad row is named; nothing is used from a file with one. ``setting``: the setting that named the file,
    leading every refusal of it (``GISGRID_CALENDAR_FILE: /x.csv: calendar file not found``, review44 D6)."""
    if isinstance(hours, str):
        try:
            hours = parse_working_hours(hours)
        except InvalidInput as exc:
            raise InvalidInput(f"GISGRID_WORKING_HOURS: {exc.message}", detail=exc.detail) from None
    if path is None:
        return WorkingCalendar(hours)
    try:
        return _with_city_days(path, hours)
    except InvalidInput as exc:
        if setting is None:
            raise
        raise InvalidInput(f"{setting}: {exc.message}", detail=exc.detail, reason=exc.reason) from None


def _with_city_days(path: Path, hours: Hours | None) -> WorkingCalendar:
    problems = _CalendarProblems()
    holidays: set[date] = set()
    workdays: set[date] = set()
    # UTF-8 (BOM or not) or GB18030, as every city file; anything else refused naming the file.
    table = cityfiles.read_csv(path, "calendar file")
    if not set(CALENDAR_COLUMNS) <= set(table.header):
        raise InvalidInput(f"calendar file {path}: needs the columns date,kind", detail={"file": str(path)})
    for line, row in table.rows:
        raw_date, raw_kind = row["date"], row["kind"]
        try:
            day = date.fromisoformat(raw_date)
        except ValueError:
            problems.add(path, line, "date", raw_date, "not a date (YYYY-MM-DD)")
            continue
        kind = DAY_KINDS.get(raw_kind)
        if kind is None:
            problems.add(path, line, "kind", raw_kind, f"one of {', '.join(DAY_KINDS)}")
            continue
        (holidays if kind == "holiday" else workdays).add(day)
    for day in sorted(holidays & workdays):
        problems.add(path, None, None, str(day), f"{day} is listed both as a holiday and as a working day")
    problems.raise_if_any()
    # A year the package does not know is the file's to describe only when the file holds its arrangement.
    weekday_rest = Counter(d.year for d in holidays if d.weekday() < 5)
    listed = {d.year for d in holidays | workdays} - set(KNOWN_YEARS)
    covered = {y for y in listed if weekday_rest[y] >= STATUTORY_HOLIDAY_DAYS}
    return WorkingCalendar(
        hours,
        extra_holidays=holidays,
        extra_workdays=workdays,
        covered_years=covered,
        partial_years={y: weekday_rest[y] for y in listed - covered},
    )
