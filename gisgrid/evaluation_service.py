"""综合评价 over the stored record: reads the history a period needs and runs the pure ``gisgrid.evaluation``
functions on it, in the deployment's working calendar (the one deadlines were set in)."""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import pandas as pd
from openpyxl.styles import Font
from sqlalchemy import Engine

from gisgrid import history
from gisgrid.calendar import CalendarYearUnknown, unknown_years_warning
from gisgrid.cases import CaseServices
from gisgrid.constants import LOCAL_TZ_NAME
from gisgrid.documents import CSP, render_page, render_pdf  # the package's one way of making pages and PDFs
from gisgrid.errors import Busy, InvalidInput, Reason
from gisgrid.evaluation import (
    COUNT_COLUMNS,
    GRID_COUNT_SOURCES,
    INDICATOR_DEFINITIONS,
    LEVEL_LABELS,
    SUBJECTS,
    Period,
    check_as_of_after_start,
    check_subject,
    column_label,
    default_as_of,
    empty_table,
    evaluate,
    integer_counts,
    rank,
    region_sizes,
    with_every_unit,
)
from gisgrid.spreadsheet import to_csv, xlsx_text
from gisgrid.texts import bilingual
from gisgrid.workflow import ROLES

#: How a period is written (CLI help and API docs say it with these words).
PERIOD_HELP = "2026-10 (month), 2026-Q3, 2026-W40, 2026, 2026-10..2026-12 (through), or dates A..B (B excluded)"
_NAMED = re.compile(r"\d{4}(-(\d{1,2}|Q\d|W\d{1,2}))?")


def parse_period(text: str) -> Period:
    """``2026-10`` (month), ``2026-Q3``, ``2026-W40``, ``2026``, or a range: ``2026-10-01..2026-11-01`` between two
    dates (the end excluded) or ``2026-10..2026-12`` from the first named period through the last; within
    :data:`~gisgrid.evaluation.PERIOD_YEARS` (the API and the CLI read every period here).

    A refusal names the parameter as the API documents it, the one shape every route gives: ``detail`` a list of
    items ``{"field": "period", "value": text, …}`` (a bound adds ``limit``), so no caller re-wraps it."""
    given = text.strip()
    try:
        return replace(_parse_period(given), given=given).check_years()
    except InvalidInput as exc:
        raise InvalidInput(exc.message, detail=_period_items(text, exc.detail), reason=exc.reason) from None


def _period_items(value: str, detail: Any) -> list[dict[str, Any]]:
    """The refusal's items naming ``period`` and its ``value``, with what the domain said of each (a limit …)."""
    said = [i for i in detail if isinstance(i, dict)] if isinstance(detail, list) else []
    return [
        {"field": "period", "value": value, **{k: v for k, v in item.items() if k not in ("field", "value")}}
        for item in said or [{}]
    ]


def _parse_period(text: str) -> Period:
    try:
        if ".." in text:
            a, b = (side.strip() for side in text.split("..", 1))
            return Period.between(
                _parse_period(a).start if _NAMED.fullmatch(a) else a,
                _parse_period(b).end if _NAMED.fullmatch(b) else b,
            )
        if "-Q" in text:
            y, q = text.split("-Q")
            return Period.quarter(int(y), int(q))
        if "-W" in text:
            y, w = text.split("-W")
            return Period.week(int(y), int(w))
        if len(text) == 4:
            return Period.year(int(text))
        y, m = text.split("-")
        return Period.month(int(y), int(m))
    except (ValueError, TypeError):
        raise InvalidInput(
            f"period: {text!r} is not a month (2026-10), quarter (2026-Q3), week (2026-W40), year (2026) or "
            "range (2026-10-01..2026-11-01, the end excluded)",
            reason=Reason.PERIOD_UNREADABLE,
        ) from None


#: How an evaluation time is written (CLI help and API docs).
AS_OF_HELP = (
    "evaluation time: the period's cases reported before this moment are judged by their record up to it, ISO 8601 "
    "date or time (2026-11-15, 2026-11-15T18:00, +08:00 when no zone is given); after the period start and not "
    "later than now; default now. Before the period end the figures are provisional. Pass the period end for the "
    "figures as they stood when it ended"
)


def parse_as_of(value: Any, tz: str | None = None) -> pd.Timestamp | None:
    """An evaluation time from ISO 8601 text (a date is its midnight) or a timestamp; None/"" → None (the
    default). Naive times are in ``tz`` (the period's zone)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:  # ISO only: pandas would read "march" as a date
        ts = pd.Timestamp(datetime.fromisoformat(value.strip()) if isinstance(value, str) else value)
    except (TypeError, ValueError):
        ts = pd.NaT
    if pd.isna(ts):
        raise InvalidInput(
            f"as_of: {value!r} is not an ISO 8601 date or time (2026-11-15 or 2026-11-15T18:00+08:00)",
            detail=[{"field": "as_of", "value": str(value)}],
            reason=Reason.AS_OF_UNREADABLE,
        )
    zone = tz or LOCAL_TZ_NAME
    return ts.tz_localize(zone) if ts.tzinfo is None else ts.tz_convert(zone)


def _clock(tz: str) -> pd.Timestamp:
    """Now in ``tz``: the evaluation's one reading of the wall clock (a test sets its own here)."""
    return pd.Timestamp.now(tz=tz)


def resolve_as_of(period: Period, as_of: Any = None, now: Any = None) -> pd.Timestamp:
    """The evaluation time: ``as_of`` as given, else :func:`~gisgrid.evaluation.default_as_of` — now (``now``
    for a fixed clock), the library's default. Never a moment that has not come: a later ``as_of`` is refused
    (``as_of_in_future``), as the figures would state as late what has not happened; one at or before the period
    start too (``as_of_before_period_start``: nothing was reported yet), and a period that has not begun has no
    cases (``no_cases_in_period``). One inside the period gives provisional figures (:attr:`Facts.provisional`)."""
    tz = str(period.start.tz)
    clock = parse_as_of(now, tz) if now is not None else _clock(tz)
    current = default_as_of(period, clock)
    given = parse_as_of(as_of, tz)
    if given is None:
        if current <= period.start:
            raise InvalidInput(
                bilingual(
                    f"该评价期内没有上报的案件:{period.shown} 尚未开始(始于 {_words(period.start)})",
                    f"no cases were reported in {period.shown}: it begins {period.start.isoformat()}, after now "
                    f"({current.isoformat()})",
                ),
                reason=Reason.NO_CASES_IN_PERIOD,
            )
        return current
    if given > clock:
        raise InvalidInput(
            bilingual(
                f"评价时点不能晚于当前时间({_words(given)} 晚于 {_words(current)}):尚未到期的环节不能算作超时",
                f"as_of: {given.isoformat()} is later than now ({current.isoformat()}); the figures would count as "
                "late what has not happened yet",
            ),
            detail=[{"field": "as_of", "value": given.isoformat()}],
            reason=Reason.AS_OF_IN_FUTURE,
        )
    return check_as_of_after_start(period, given)


def _words(ts: pd.Timestamp) -> str:
    """A moment as a person reads it: ``2026-11-01 00:00`` (the period's zone; seconds only when not zero)."""
    return f"{ts:%Y-%m-%d %H:%M:%S}" if ts.second else f"{ts:%Y-%m-%d %H:%M}"


def calendar_warning(unknown_years: Any) -> str | None:
    """The evaluation's warning (zh-CN, then English) when the working time behind its figures ran through years
    the holiday calendar does not know; None when it did not."""
    parts = _calendar_warning_parts(unknown_years)
    return None if parts is None else " ".join(parts)


def calendar_warning_en(unknown_years: Any) -> str | None:
    """The English half of :func:`calendar_warning` (an HTTP header carries no Chinese)."""
    parts = _calendar_warning_parts(unknown_years)
    return None if parts is None else parts[1]


@contextmanager
def only_the_answers_calendar_warning() -> Iterator[None]:
    """Silence the calendar's own warning while an evaluation is computed: it warns once per year it looks at, and
    the clock looks a little around the cases too, so it can name a year the figures did not use; the answer's
    :func:`calendar_warning` names exactly the years its figures ran through (commands print that one)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalendarYearUnknown)
        yield


def _calendar_warning_parts(unknown_years: Any) -> tuple[str, str] | None:
    return unknown_years_warning(
        unknown_years, "评价中的环节用时", "the working time behind these figures (on time, late, scores)"
    )


def indicators(
    engine: Engine,
    services: CaseServices,
    period: Period,
    subject: str,
    level: str,
    as_of: Any = None,
    *,
    now: Any = None,
) -> pd.DataFrame:
    """Indicators for ``period`` ranked, with rank changes against the period before (``previous_rank``,
    ``rank_change``: always there, empty for a subject not ranked then or when the period before had no case), both
    judged as of the same evaluation time (:func:`resolve_as_of`; ``now`` for a fixed clock). ``table.attrs`` state
    ``as_of``, ``provisional`` (judged before the period ended) and ``unknown_years`` (years the calendar does not
    know that the working time behind the figures, the period's or the one before's, ran through)."""
    check_subject(subject)  # before reading a month of history
    when = resolve_as_of(period, as_of, now)
    limits = services.disposal_limits
    node_limits = services.events.node_limits
    with engine.connect() as conn:
        now_cases, now_steps = history.read_history(conn, period, limits)
        before = period.previous()
        old_cases, old_steps = history.read_history(conn, before, limits)
        # A region's size for 立案数分值 is all its unit grids, not only those that had a case.
        cells = history.region_cells(conn) if subject == "region" else None
        names = history.region_names(conn, level) if subject == "region" else None
        district = "、".join(history.region_names(conn, "district").astype(str))  # the XLSX's title row
    if when < period.end:  # provisional: only the cases reported before the evaluation time
        now_cases = now_cases[now_cases["created_at"] < when]
    calendar = services.calendar
    # The period before is judged at the same moment, so a rank change compares like with like.
    opts = {
        "level": level,
        "as_of": when,
        "cells": cells,
        "urgent_node_limits": services.events.urgent_node_limits,
        "limit_changes": services.events.limit_versions()[1:],
        "rules": services.evaluation_rules,  # the city's (GISGRID_CATALOGUE_DIR), not the package's
    }
    # A period without a case (an empty month, or none reported yet at as_of) is still a table: every unit 不参评.
    if now_cases.empty:
        table = empty_table(subject)
        table.attrs["unknown_years"] = ()
    else:
        table = evaluate(now_cases, now_steps, calendar, node_limits, period, subject, **opts)
    previous = (
        evaluate(old_cases, old_steps, calendar, node_limits, before, subject, **opts) if not old_cases.empty else None
    )
    # Every assessed unit is listed (review49 F5): the department catalogue, the stored regions of the level — a
    # unit without a case 不参评 (本期无案件), not missing from the officer's sheet. Posts list the people who
    # acted: the workflow's actors are the names an operator types (X-Actor), with no roster to list the others.
    if subject == "region" and names is not None and cells is not None:
        table = with_every_unit(
            table, subject, names.index, level=level, rules=services.evaluation_rules, sizes=region_sizes(cells, level)
        )
    elif subject == "department":
        table = with_every_unit(table, subject, services.departments, rules=services.evaluation_rules)
    # No case in the period before: nothing to compare with, but the same columns as any period (previous_rank
    # and rank_change empty), so a script reading monthly tables finds them in the first month too.
    ranked = rank(table, previous=previous if previous is not None else table.iloc[:0])
    ranked = integer_counts(ranked)
    if subject == "region":
        ranked.insert(1, "name", ranked["subject"].astype(str).map(names))
    elif subject == "department":
        ranked.insert(1, "name", ranked["subject"].astype(str).map(services.departments))
    ranked.attrs["as_of"] = when
    ranked.attrs["provisional"] = bool(when < period.end)
    met = set(table.attrs["unknown_years"]) | set(previous.attrs["unknown_years"] if previous is not None else ())
    ranked.attrs["unknown_years"] = tuple(sorted(met))
    ranked.attrs["period"] = period
    ranked.attrs["subject"] = subject
    ranked.attrs["level"] = level
    ranked.attrs["district"] = district
    return ranked


def answer_meta(period: Period, table: pd.DataFrame) -> dict[str, Any]:
    """What an evaluation answer states beside its rows: ``period``, ``as_of``, ``provisional`` and
    ``calendar_warning`` (None when the calendar knew every year met)."""
    return {
        "period": period.label,
        "as_of": table.attrs["as_of"].isoformat(),
        "provisional": table.attrs["provisional"],
        "calendar_warning": calendar_warning(table.attrs["unknown_years"]),
    }


def table_title(period: Period, subject: str, level: str = "tier3") -> str:
    """``2026-10 三级网格``, ``2026-Q3 专业部门``, ``2026-10 监督员``: what a table is (an XLSX sheet's name: at most
    31 characters, none of ``[]:*?/\\``)."""
    label = period.label if "/" not in period.label else f"{period.start:%Y-%m-%d}..{period.end:%Y-%m-%d}"
    what = LEVEL_LABELS.get(level, level) if subject == "region" else SUBJECTS.get(subject) or ROLES.get(subject)
    return re.sub(r"[\[\]:*?/\\]", "-", f"{label} {what or subject}")[:31]


#: What marks figures judged before their period ended (the XLSX's sheet name and 说明, the static map's legend).
PROVISIONAL_ZH = "暂定(评价期未结束)"


def _export_notes(table: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(zh-CN label, value, key) of what an evaluation file states beside its rows: the evaluation time, whether
    the figures are provisional and, only when there is one, the calendar warning; none for a table without
    :func:`indicators`' attrs."""
    if "as_of" not in table.attrs:
        return []
    notes = [
        ("评价时点", table.attrs["as_of"].isoformat(), "as_of"),
        ("暂定", f"是: {PROVISIONAL_ZH}" if table.attrs["provisional"] else "否", "provisional"),
    ]
    warning = calendar_warning(table.attrs["unknown_years"])
    if warning is not None:
        notes.append(("日历提示", warning, "calendar_warning"))
    return notes


#: The XLSX (for people) shows these columns' values in zh-CN, from where the project names them: the region
#: levels, the workflow's roles, the unit grid count's sources. The CSV and the API keep the keys (for scripts).
XLSX_VALUE_LABELS: dict[str, Mapping[str, str]] = {
    "level": LEVEL_LABELS,
    "role": ROLES,
    "unit_grids_from": GRID_COUNT_SOURCES,
}
#: The XLSX's number formats: rates (0–1, every ``*_rate``) and ``weight_present`` (a share of the weights, which
#: sum to 1) as percentages; the monthly averages and the score (综合指标值) with two decimals. Format only: each
#: cell keeps its exact value.
PERCENT_FORMAT = "0.0%"
AVERAGE_FORMAT = "0.00"
_AVERAGES = ("filed_per_grid_month", "filed_per_month", "accepted_per_month", "dispatches_per_month")


def xlsx_number_format(column: str) -> str | None:
    """The number format of ``column`` in the XLSX export (None: General)."""
    if column.endswith("_rate") or column == "weight_present":
        return PERCENT_FORMAT
    return AVERAGE_FORMAT if column in _AVERAGES or column == "score" else None  # score: 0–100, 83.33


def _xlsx_values(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` with the enumerated values of :data:`XLSX_VALUE_LABELS` in zh-CN (a value without a
    label, or empty, as it is)."""
    out = table.copy()
    for column, names in XLSX_VALUE_LABELS.items():
        if column in out.columns:
            out[column] = out[column].map(lambda v, names=names: names.get(v, v) if isinstance(v, str) else v)
    return out


def _value_key(column: str, values: pd.Series) -> str:
    """How the XLSX's zh-CN values of an enumerated ``column`` read as the CSV/API's keys, for the ones in
    ``values`` ("一级网格(街道) = tier1"; several joined by "; "), for the sheet 字段说明; "" for any other column
    (its values are the same in both)."""
    names = XLSX_VALUE_LABELS.get(column)
    if not names:
        return ""
    present = set(values.dropna())
    return "; ".join(f"{zh} = {key}" for key, zh in names.items() if key in present)


def _number_formats(sheet: Any, columns: list[str], first_row: int = 2) -> None:
    """Each column's :func:`xlsx_number_format` on its cells from ``first_row`` (below the header) down
    (openpyxl ``sheet``)."""
    for i, column in enumerate(columns, start=1):
        fmt = xlsx_number_format(column)
        if fmt is None:
            continue
        for (cell,) in sheet.iter_rows(min_row=first_row, min_col=i, max_col=i):
            cell.number_format = fmt


def write_table(table: pd.DataFrame, out: Path, title: str, subject: str = "region") -> None:
    """The table as ``.csv`` (the English column keys and values, as the API's CSV: machine-readable; UTF-8 with a
    BOM for Excel), ``.pdf`` (the printed 考核表, :func:`render_sheet_pdf`) or ``.xlsx`` for people (the sheet
    ``title`` with zh-CN headers, 有效上报率 …, the enumerated
    values in zh-CN, :data:`XLSX_VALUE_LABELS`, rates as percentages and averages with two decimals,
    :func:`xlsx_number_format`, a sheet 字段说明 giving each header's key and, for the enumerated ones, each zh-CN
    value's key, and a sheet 说明); text is never a
    formula (:mod:`gisgrid.spreadsheet`). Anything else is refused.

    What :func:`indicators` states beside the rows goes into the file too, without moving the table: the CSV gains
    the last columns ``as_of``, ``provisional`` (true/false) and ``calendar_warning`` (empty when none), the same
    on every row; the XLSX states them in 说明 and, for provisional figures, its first sheet's name ends in 暂定."""
    suffix = out.suffix.lower()
    notes = _export_notes(table)
    if suffix == ".csv":
        if notes:
            table = table.assign(
                as_of=table.attrs["as_of"].isoformat(),
                provisional=str(table.attrs["provisional"]).lower(),
                calendar_warning=calendar_warning(table.attrs["unknown_years"]) or "",
            )
        to_csv(table, out, index=False, encoding="utf-8-sig")
    elif suffix == ".xlsx":
        write_xlsx(table, out, title, subject)
    elif suffix == ".pdf":
        out.write_bytes(render_sheet_pdf(table, title, subject))
    else:
        raise InvalidInput(f"--out: {out.name}: use a .csv, .xlsx or .pdf file")


def period_words(period: Period) -> str:
    """A period as a leadership sheet says it: 2026年10月, 2026年第4季度, 2026年, 2026年第40周, 2026年10月至2026年12月,
    or 2026-10-01 至 2026-10-15 (a range of days: its last day, the end being excluded)."""
    s, e = period.start, period.end
    match period.kind:
        case "month":
            return f"{s.year}年{s.month}月"
        case "quarter":
            return f"{s.year}年第{(s.month - 1) // 3 + 1}季度"
        case "year":
            return f"{s.year}年"
        case "week":
            iso = s.isocalendar()
            return f"{iso[0]}年第{iso[1]}周"
    midnight = s == s.normalize() and e == e.normalize()
    if midnight and s.day == 1 and e.day == 1:  # whole months
        last = e - pd.DateOffset(months=1)
        if (last.year, last.month) == (s.year, s.month):
            return f"{s.year}年{s.month}月"
        return f"{s.year}年{s.month}月至{last.year}年{last.month}月"
    if midnight:
        return f"{s:%Y-%m-%d} 至 {e - pd.Timedelta(days=1):%Y-%m-%d}"
    return f"{_words(s)} 至 {_words(e)}"


def xlsx_heading(table: pd.DataFrame, subject: str, level: str = "tier3") -> str | None:
    """The title row above an XLSX table, for leadership: 「测试区 专业部门考核表 · 2026年10月 · 评价时点 2026-11-01
    00:00」 (· 暂定 when provisional); None for a table without :func:`indicators`' attrs."""
    period = table.attrs.get("period")
    if period is None or "as_of" not in table.attrs:
        return None
    what = LEVEL_LABELS.get(level, level) if subject == "region" else SUBJECTS.get(subject) or ROLES.get(subject)
    district = table.attrs.get("district") or ""
    parts = [f"{district} {what}考核表".strip(), period_words(period), f"评价时点 {_words(table.attrs['as_of'])}"]
    if table.attrs.get("provisional"):
        parts.append(PROVISIONAL_ZH)
    return " · ".join(parts)


#: Each rate's denominator among a table's counts — the first column less the others: the 合计 row's rate is
#: Σ numerators / Σ denominators, each unit's numerator being its rate × its denominator (a whole number), never an
#: average of the rates. 按时核实率, 按时核查率 and 按时派遣率 are over the counted nodes, which the region tables
#: carry as 应核实数, 应核查数 and 应派遣数 (beside 按时核实数 …).
RATE_DENOMINATORS: dict[str, tuple[str, ...]] = {
    "valid_report_rate": ("reports", "pending_reports"),  # a report pending at as_of is in neither (review49 #2)
    "filing_rate": ("reports", "pending_reports"),
    "public_report_rate": ("filed",),
    "on_time_verify_rate": ("to_verify",),
    "on_time_check_rate": ("to_check",),
    "on_time_dispatch_rate": ("to_dispatch",),
    "accurate_dispatch_rate": ("dispatched",),
    "on_time_disposal_rate": ("to_dispose",),
    "closure_rate": ("to_close",),
    "on_time_closure_rate": ("to_close",),
    "rework_rate": ("to_close",),
    "missed_report_rate": ("area_filed",),
}
TOTAL_LABEL = "全区合计"
#: What the 说明 sheet says of the departments' 合计 (review49 F10): why it is not the district's figures.
DEPARTMENT_TOTAL_NOTE = (
    "专业部门合计只含派遣到部门的案件:已立案未派遣、回退待重新派遣的案件不属于任何部门,故立案数、应结案数可能小于全区"
)


def totals_row(table: pd.DataFrame, subject: str, level: str = "tier3") -> dict[str, Any] | None:
    """The 全区合计 line of a level's regions or of the departments (None for the district itself and the posts):
    each count summed, each rate of :data:`RATE_DENOMINATORS` recomputed from the sums, the monthly averages from
    the summed counts; no score, grade or rank (the whole is not one of the units ranked)."""
    if subject not in ("region", "department") or (subject == "region" and level == "district"):
        return None
    row: dict[str, Any] = {c: None for c in table.columns}
    row["name" if "name" in table.columns else "subject"] = TOTAL_LABEL
    for column in COUNT_COLUMNS.intersection(table.columns):
        row[column] = int(pd.to_numeric(table[column], errors="coerce").fillna(0).sum())
    for rate, (den, *less) in RATE_DENOMINATORS.items():
        if rate in table.columns and den in table.columns:
            d = pd.to_numeric(table[den], errors="coerce").fillna(0)
            for column in (c for c in less if c in table.columns):
                d = d - pd.to_numeric(table[column], errors="coerce").fillna(0)
            num = (pd.to_numeric(table[rate], errors="coerce").fillna(0) * d).round().sum()
            row[rate] = float(num / d.sum()) if d.sum() > 0 else None
    period = table.attrs.get("period")
    months = period.months if period is not None else None
    if months and "filed_per_month" in table.columns:
        row["filed_per_month"] = row["filed"] / months
    if months and "filed_per_grid_month" in table.columns and row.get("unit_grids"):
        row["filed_per_grid_month"] = row["filed"] / row["unit_grids"] / months
    if "level" in table.columns:
        row["level"] = level
    return row


def write_xlsx(table: pd.DataFrame, out: Path | IO[bytes], title: str, subject: str = "region") -> None:
    """The XLSX of :func:`write_table` into a file or a binary stream (the API's ``format=xlsx`` download): for
    :func:`indicators`' tables a title row above the table (:func:`xlsx_heading`: district, period and 评价时点
    in words) and, for a level's regions and the departments, a 全区合计 line below it (:func:`totals_row`)."""
    notes = _export_notes(table)
    level = str(table.attrs.get("level") or "tier3")
    heading = xlsx_heading(table, subject, level)
    total = totals_row(table, subject, level) if heading is not None else None
    if total is not None and subject == "department":
        notes.append(("合计", DEPARTMENT_TOTAL_NOTE, "totals"))
    labels = [column_label(str(c), subject) for c in table.columns]
    keys = pd.DataFrame(
        {
            "列名": labels,
            "字段 key": [str(c) for c in table.columns],
            "取值 values": [_value_key(str(c), table[c]) for c in table.columns],
            "定义 definition": [INDICATOR_DEFINITIONS.get(str(c), "") for c in table.columns],
        }
    )
    if notes and table.attrs["provisional"]:
        title = f"{title[:28]} 暂定"  # a sheet name holds 31 characters
    top = 1 if heading is not None else 0  # the title row above the header
    rows = table if total is None else pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    with pd.ExcelWriter(out, engine="openpyxl") as xl:
        shown = _xlsx_values(rows).set_axis(labels, axis=1)
        shown.to_excel(xl, sheet_name=title, index=False, startrow=top, freeze_panes=(top + 1, 0))
        sheet = xl.sheets[title]
        _number_formats(sheet, [str(c) for c in table.columns], first_row=top + 2)
        if heading is not None:
            sheet.cell(row=1, column=1, value=heading).font = Font(bold=True, size=14)
            sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=max(len(labels), 1))
        if total is not None:
            for cell in sheet[top + 2 + len(table)]:
                cell.font = Font(bold=True)
        keys.to_excel(xl, sheet_name="字段说明", index=False)
        if notes:
            pd.DataFrame(notes, columns=["项目", "值", "字段 key"]).to_excel(xl, sheet_name="说明", index=False)
        xlsx_text(xl.book)  # a name such as =HYPERLINK(…) is text, not a formula


# --- PDF 考核表 ---------------------------------------------------------------------------------------------------

#: Columns the printed 考核表 leaves out: what its title row states already, the same on every row (the level, the
#: post), and the grading's bookkeeping (where a region's grid count came from, the weight present: 不参评原因 says
#: why a unit is not graded) — the XLSX has them. Every other column is printed, in its order, zh-CN headed.
PDF_OMITTED = ("level", "role", "unit_grids_from", "weight_present")
#: How the printed 考核表 sets a column's cells (its CSS classes): codes left-aligned on one line, names and reasons
#: left-aligned and wrapped (the long ones given room); every other column is a number, right-aligned on one line.
_PDF_CELL_CLASSES: dict[str, str] = {
    "subject": "code",
    "name": "text wide",
    "area": "text",
    "grade": "text",
    "score_group": "text",
    "unit_grids_from": "text",
    "ungraded_reason": "text wide",
}


def pdf_cell(column: str, value: Any) -> str:
    """How the printed 考核表 shows a value of ``column``: as the XLSX's number format reads (rates 66.7%, averages
    and the scores with two decimals, counts and ranks whole), the enumerated values in zh-CN; empty for none."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, str):
        names = XLSX_VALUE_LABELS.get(column)
        return names.get(value, value) if names else value
    fmt = xlsx_number_format(column)
    if fmt == PERCENT_FORMAT:
        return f"{float(value) * 100:.1f}%"
    if fmt == AVERAGE_FORMAT or column.endswith("_score"):
        return f"{float(value):.2f}"
    if column in COUNT_COLUMNS or column in ("rank", "previous_rank", "rank_change"):
        return str(int(value))
    return f"{float(value):.6g}" if isinstance(value, float) else str(value)


def _text_width(text: str) -> float:
    """About how wide ``text`` is set, in em: a CJK character 1, a digit, letter or sign about 0.55."""
    return sum(1.0 if ord(ch) > 0x2E7F else 0.55 for ch in text)


def _pdf_width(column: str, values: list[str], label: str) -> float:
    """A column's share of the printed table's width, in em: its widest value on one line (a name or a reason
    wraps past 6 em), and at least two characters of its header (which wraps, two or three to a line)."""
    widest = max((_text_width(v) for v in values), default=0.0)
    if "text" in _PDF_CELL_CLASSES.get(column, ""):
        widest = min(widest, 6.0)
    return max(widest, min(_text_width(label), 2.0)) + 0.6  # the cell's padding


def sheet_page(table: pd.DataFrame, title: str, subject: str = "region") -> str:
    """The HTML page of the printed 考核表 (:func:`render_sheet_pdf`): the XLSX's rows — the title row
    (:func:`xlsx_heading`, else ``title``), the zh-CN headers, the units, the 全区合计 line (:func:`totals_row`) —
    and below them what its 说明 sheet says (评价时点, 暂定, 日历提示, the departments' 合计)."""
    level = str(table.attrs.get("level") or "tier3")
    heading = xlsx_heading(table, subject, level)
    total = totals_row(table, subject, level) if heading is not None else None
    notes = [(label, value) for label, value, _ in _export_notes(table)]
    if total is not None and subject == "department":
        notes.append(("合计", DEPARTMENT_TOTAL_NOTE))
    columns = [str(c) for c in table.columns if c not in PDF_OMITTED]
    records = table[columns].to_dict("records")
    rows: list[dict[str, Any]] = [
        {
            "total": total is not None and i == len(records),
            "cells": [{"value": pdf_cell(c, record.get(c)), "cls": _PDF_CELL_CLASSES.get(c)} for c in columns],
        }
        for i, record in enumerate([*records, *([total] if total is not None else [])])
    ]
    font = 9 if len(columns) <= 16 else 7 if len(columns) <= 30 else 5.5 if len(columns) <= 38 else 4.8
    widths = [
        _pdf_width(c, [row["cells"][i]["value"] for row in rows], column_label(c, subject))
        for i, c in enumerate(columns)
    ]
    return render_page(
        "evaluation/sheet.html",
        csp=CSP,
        heading=heading or title,
        widths=[f"{100 * w / sum(widths):.3f}%" for w in widths],
        labels=[column_label(c, subject) for c in columns],
        rows=rows,
        notes=notes,
        font_pt=font,
    )


#: The most rows a 考核表 PDF made for an HTTP request may have: ~30 s of layout on one core, holding the one PDF
#: layout slot the 交办单/督办单 share. A longer table (a large district's unit grids) is the XLSX's, or the CLI's
#: (``gisgrid evaluate --out NAME.pdf``, its own process).
PDF_MAX_ROWS_HTTP = 300


def refuse_long_over_http(
    table: pd.DataFrame,
    fmt: str,
    cap: int,
    reason: Reason,
    *,
    name_zh: str,
    name_en: str,
    remedy_zh: str,
    remedy_en: str,
) -> None:
    """422 ``reason`` for a table of more than ``cap`` rows asked for as ``fmt`` over HTTP: the one shape of the
    row-cap refusals (how many rows, the cap, what to do instead), ``detail`` naming the format and the limit.
    ``name_zh``/``name_en`` name the download ("PDF"/"a PDF"); ``remedy_en`` starts with its own separator, so a
    reason may come before the remedy."""
    if len(table) > cap:
        rows = len(table)
        raise InvalidInput(
            f"考核表共 {rows} 行,网页下载的 {name_zh} 最多 {cap} 行:{remedy_zh} / the table has {rows} rows; "
            f"{name_en} over HTTP holds at most {cap}{remedy_en}",
            detail=[{"field": "format", "value": fmt, "code": reason, "limit": {"max_rows": cap}}],
            reason=reason,
        )


def refuse_long_pdf(table: pd.DataFrame) -> None:
    """422 ``pdf_too_many_rows`` for a table too long to lay out as a PDF within a request."""
    refuse_long_over_http(
        table,
        "pdf",
        PDF_MAX_ROWS_HTTP,
        Reason.PDF_TOO_MANY_ROWS,
        name_zh="PDF",
        name_en="a PDF",
        remedy_zh="请下载 Excel,选更高的层级,或在服务器上用 gisgrid evaluate --out NAME.pdf 生成",
        remedy_en=" (its layout holds the PDF slot the orders share): download the XLSX, choose a higher level, "
        "or run gisgrid evaluate --out NAME.pdf on the server",
    )


#: The most rows a 考核表 XLSX made for an HTTP request may have. openpyxl is pure Python and holds the GIL: a
#: district's 38,415 unit grids took 5–6 minutes, slowing every other request of that process, and the request
#: cannot be cancelled. A district's 社区/街道 tables, its departments and posts, and a street's unit grids stay well
#: under it; a longer table is the CLI's (``gisgrid evaluate --out NAME.xlsx``, its own process) or the CSV's.
XLSX_MAX_ROWS_HTTP = 5000


def refuse_long_xlsx(table: pd.DataFrame) -> None:
    """422 ``xlsx_too_many_rows`` for a table too long to write as a workbook within a request."""
    refuse_long_over_http(
        table,
        "xlsx",
        XLSX_MAX_ROWS_HTTP,
        Reason.XLSX_TOO_MANY_ROWS,
        name_zh="Excel",
        name_en="an XLSX",
        remedy_zh="请选更高的层级,下载 CSV,或在服务器上用 gisgrid evaluate --out NAME.xlsx 生成",
        remedy_en=": choose a higher level, download the CSV, or run gisgrid evaluate --out NAME.xlsx on the server",
    )


#: Heavy evaluation answers (a level's unit grids in any form, the map included; any workbook) this process makes
#: at once. Each holds a worker thread and a core for seconds (unit grids: 7–9 s and 36 MB of JSON), most of it
#: pure Python under the GIL: a third would only slow the two under way and every other request of the process.
HEAVY_EVALUATION_SLOTS = 2
#: What a request finding every slot taken is told to wait (``Retry-After``, seconds): about one heavy answer.
HEAVY_RETRY_AFTER_S = 10
_HEAVY = threading.BoundedSemaphore(HEAVY_EVALUATION_SLOTS)


def is_heavy(level: str, fmt: str = "json", subject: str = "region") -> bool:
    """Whether an evaluation answer takes one of the :data:`HEAVY_EVALUATION_SLOTS`: the regions of the level of
    unit grids, or any workbook (openpyxl)."""
    return (subject == "region" and level == "unit_grid") or fmt == "xlsx"


@contextmanager
def heavy_slot(heavy: bool = True) -> Iterator[None]:
    """One of the :data:`HEAVY_EVALUATION_SLOTS` for the work inside (nothing when not ``heavy``); none free:
    :class:`~gisgrid.errors.Busy` ``evaluation_busy`` at once, not a wait — a queue of them would hold the worker
    threads every other request needs."""
    if not heavy:
        yield
        return
    if not _HEAVY.acquire(blocking=False):
        raise Busy(
            f"the server is making {HEAVY_EVALUATION_SLOTS} large evaluation tables already (unit grids or XLSX); "
            f"try again in {HEAVY_RETRY_AFTER_S} s",
            reason=Reason.EVALUATION_BUSY,
            retry_after=HEAVY_RETRY_AFTER_S,
        )
    try:
        yield
    finally:
        _HEAVY.release()


def render_sheet_pdf(table: pd.DataFrame, title: str, subject: str = "region") -> bytes:
    """The 考核表 as a landscape A4 PDF (the API's ``format=pdf``, ``gisgrid evaluate --out NAME.pdf``): the rows of
    the XLSX with its title row and 全区合计 line, the table broken across pages with its header repeated, laid out
    by :func:`gisgrid.documents.render_pdf` as the 交办单 are (WeasyPrint; :class:`~gisgrid.errors.Unavailable`
    without it)."""
    return render_pdf(sheet_page(table, title, subject))
