"""The working hours each stored deadline is counted under (``cases.hours_counted``, migration 0024).

A node's deadline is counted on the working calendar — its working hours, GISGRID_WORKING_HOURS — when the node
opens, and stored. When the setting changes (e.g. to the seasonal form ``MM-DD..MM-DD=periods;…``) the open cases
keep deadlines counted under the old hours until ``gisgrid cases recompute-deadlines`` counts them again. So each
case holds, beside ``due_at``, the normalised setting (:func:`gisgrid.calendar.hours_setting`) it was counted under:
written in the same statement as ``due_at`` by the intake, the workflow actions, the history import and the demo
history, and the command — from :attr:`gisgrid.cases.CaseServices.hours_in_force`, computed once per process. What
the process counts under is what it writes, so a service still running under the old hours (its environment edited,
not yet restarted; another host not yet restarted) leaves cases that are found later, whatever was run meanwhile.

A *recount needed*: an open clock (:data:`OPEN_CLOCKS`) whose ``hours_counted`` differs from the hours in force.

* ``gisgrid db up`` and ``gisgrid serve`` (:func:`settle`, with the start checks) print one warning
  (:func:`warning_text`) naming how many open cases count under which hours, those in force and the command;
* ``/health`` says so in its calendar section (``working_hours``: a field, not a failure);
* ``recompute-deadlines`` without ``--year`` counts exactly those cases again under the hours in force and sets
  their ``hours_counted`` (every case it counts or confirms unchanged gets the hours in force); one it cannot count
  again keeps its old hours, so the warning stays until it is dealt with or closed.

Rows written before migration 0024 hold null. The first start after the upgrade (:func:`settle`) sets the open
clocks among them to the hours in force then (their deadlines are taken as counted under them, as before this
revision: change GISGRID_WORKING_HOURS after upgrading, not with it). Everywhere else a null — a case filed meanwhile
by a host still running code older than 0024 — counts as the hours in force.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

#: The command that counts the open deadlines again under the hours in force (without --year).
RECOMPUTE_ALL_COMMAND = "gisgrid cases recompute-deadlines"
#: The cases whose running clock has a stored deadline.
OPEN_CLOCKS = "state NOT IN ('closed', 'rejected', 'voided') AND due_at IS NOT NULL"
#: Those of them counted under other hours than ``:in_force`` (null: the hours in force, see the module).
RECOUNT_NEEDED = f"{OPEN_CLOCKS} AND coalesce(hours_counted, CAST(:in_force AS text)) <> CAST(:in_force AS text)"
#: How long a start waits for the rows a running ``recompute-deadlines`` holds before it warns instead.
START_LOCK_TIMEOUT = "10s"


@dataclass(frozen=True)
class HoursChange:
    """The open cases counted under other hours than those in force: (hours, count) each, and the hours in force."""

    counted: tuple[tuple[str, int], ...]
    in_force: str

    @property
    def cases(self) -> int:
        return sum(n for _, n in self.counted)

    def zh(self) -> str:
        return "、".join(f"{n} 件按 {h}" for h, n in self.counted)

    def en(self) -> str:
        return " and ".join(f"{n} open case(s) under {h}" for h, n in self.counted)


def recount_needed(conn: Connection, current: str) -> HoursChange | None:
    """The open clocks counted under other hours than ``current``, grouped by those hours (None: none)."""
    rows = conn.execute(
        text(f"SELECT hours_counted, count(*) FROM cases WHERE {RECOUNT_NEEDED} GROUP BY 1 ORDER BY 1"),
        {"in_force": current},
    ).all()
    return HoursChange(tuple((h, int(n)) for h, n in rows), current) if rows else None


def settle(engine: Engine, current: str) -> str | None:
    """At start (``db up``, ``serve``): the open clocks with no hours recorded are set to ``current``; then the
    cases counted under other hours: the start warning (None: nothing to say). A running ``recompute-deadlines``
    holding those rows: no wait past :data:`START_LOCK_TIMEOUT`, but a warning that nothing was checked."""
    try:
        with engine.begin() as conn:
            conn.execute(text(f"SET LOCAL lock_timeout = '{START_LOCK_TIMEOUT}'"))
            conn.execute(
                text(f"UPDATE cases SET hours_counted = :h WHERE hours_counted IS NULL AND {OPEN_CLOCKS}"),
                {"h": current},
            )
            found = recount_needed(conn, current)
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) == "55P03":  # lock_not_available (psycopg2)
            return BUSY_TEXT
        raise
    return None if found is None else warning_text(found)


def warning_text(found: HoursChange) -> str:
    """The start warning (zh-CN first, English beside): the cases and their hours, those in force, the command."""
    return (
        f"工作时间 GISGRID_WORKING_HOURS 已变更: 在办案件已保存的时限 {found.zh()} 计算, 现行为 {found.in_force}; "
        f"请运行 {RECOMPUTE_ALL_COMMAND}(不带 --year; 可先加 --dry-run 查看)按现行工作时间重算 / "
        f"working hours changed: open cases' stored deadlines were counted under other hours ({found.en()}), "
        f"GISGRID_WORKING_HOURS is now {found.in_force}; run `{RECOMPUTE_ALL_COMMAND}` (without "
        "--year; --dry-run first to see) to count them again under the hours in force"
    )


BUSY_TEXT = (
    f"另一个 {RECOMPUTE_ALL_COMMAND} 正在运行, 未检查工作时间 / another `{RECOMPUTE_ALL_COMMAND}` is running: the "
    "working hours were not checked"
)
