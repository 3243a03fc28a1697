"""The working hours the stored deadlines are counted under (``deadline_hours``, migration 0024).

A node's deadline is counted on the working calendar — its working hours, GISGRID_WORKING_HOURS — when the node
opens, and stored. When the setting changes (e.g. to the seasonal form ``MM-DD..MM-DD=periods;…``) the open cases
keep deadlines counted under the old hours until ``gisgrid cases recompute-deadlines`` counts them again. The one
row of ``deadline_hours`` holds the normalised setting (:func:`gisgrid.calendar.hours_setting`) they are counted
under, so that a change is said instead of found in a missed deadline:

* ``gisgrid db up`` and ``gisgrid serve`` (:func:`settle`, with the start checks) record the hours in force when
  nothing is recorded (a fresh database, or the first start after migration 0024: the stored deadlines are taken as
  counted under the hours in force) or when no open case has a running deadline (nothing is counted under the old
  hours); else, when the hours differ, they print one warning (:func:`warning_text`) naming both and the command;
* ``/health`` says so in its calendar section (``working_hours``: a field, not a failure);
* ``recompute-deadlines`` without ``--year`` then counts every open clock again under the hours in force and
  records them (:func:`record`, in its own transaction; a dry run records nothing).

Case intake reads and writes nothing here: the record is kept at start and by the command only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

from gisgrid.calendar import WorkingCalendar, hours_setting

#: The command that counts the open deadlines again under the hours in force (without --year).
RECOMPUTE_ALL_COMMAND = "gisgrid cases recompute-deadlines"
#: The cases whose running clock has a stored deadline (what the command counts again).
OPEN_CLOCKS = "state NOT IN ('closed', 'rejected', 'voided') AND due_at IS NOT NULL"


@dataclass(frozen=True)
class HoursChange:
    """The hours the stored deadlines are counted under (``recorded``) and those in force, when they differ."""

    recorded: str
    in_force: str


def in_force(calendar: WorkingCalendar) -> str:
    """The normalised working hours of ``calendar`` (the deployment's GISGRID_WORKING_HOURS)."""
    return hours_setting(calendar.hours)


def recorded(conn: Connection, *, lock: bool = False) -> str | None:
    """The hours recorded (None: nothing yet); ``lock``: the row held until the transaction ends."""
    sql = "SELECT hours FROM deadline_hours" + (" FOR UPDATE" if lock else "")
    return conn.execute(text(sql)).scalar_one_or_none()


def change(conn: Connection, calendar: WorkingCalendar) -> HoursChange | None:
    """The change when hours are recorded and differ from those in force (read only)."""
    old, new = recorded(conn), in_force(calendar)
    return HoursChange(old, new) if old is not None and old != new else None


def record(conn: Connection, hours: str, *, by: str, now: dt.datetime | None = None) -> None:
    """Record ``hours`` as those the stored deadlines are counted under (``by``: what recorded them)."""
    conn.execute(
        text(
            "INSERT INTO deadline_hours (id, hours, recorded_at, recorded_by) VALUES (true, :h, :at, :by) "
            "ON CONFLICT (id) DO UPDATE SET hours = EXCLUDED.hours, recorded_at = EXCLUDED.recorded_at, "
            "recorded_by = EXCLUDED.recorded_by"
        ),
        {"h": hours, "at": now or dt.datetime.now(dt.UTC), "by": by},
    )


def settle(engine: Engine, calendar: WorkingCalendar, *, by: str) -> HoursChange | None:
    """At start (``db up``, ``serve``): record the hours in force when nothing is recorded or no open case has a
    running deadline; else the change when the recorded hours differ (nothing written)."""
    current = in_force(calendar)
    with engine.begin() as conn:
        old = recorded(conn, lock=True)
        if old == current:
            return None
        if old is not None and conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM cases WHERE {OPEN_CLOCKS})")).scalar():
            return HoursChange(old, current)
        record(conn, current, by=by)
        return None


def warning_text(found: HoursChange) -> str:
    """The start warning (zh-CN first, English beside): both settings and the command to run."""
    return (
        f"工作时间 GISGRID_WORKING_HOURS 已变更: 在办案件已保存的时限按 {found.recorded} 计算, 现行为 "
        f"{found.in_force}; 请运行 {RECOMPUTE_ALL_COMMAND}(不带 --year; 可先加 --dry-run 查看)按现行工作时间重算 / "
        f"working hours changed: the open cases' stored deadlines were counted under {found.recorded}, "
        f"GISGRID_WORKING_HOURS is now {found.in_force}; run `{RECOMPUTE_ALL_COMMAND}` (without --year; --dry-run "
        "first to see) to count them again under the hours in force"
    )
