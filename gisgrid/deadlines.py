"""Recomputing the stored deadlines of open cases once the calendar knows a year, or the working hours changed
(``cases recompute-deadlines``).

A node's deadline (``cases.due_at``) is counted on the working calendar when the node opens, an extension granted
and 挂账恢复 move it — and stored. A year chinesecalendar did not know was counted Monday–Friday (with a warning);
when the year becomes known (the package upgraded, the city's GISGRID_CALENDAR_FILE now lists it) the stored
deadlines stay as counted. This module counts them again from what the case's log holds (review49 F4):

* the node's start: the last step that opened it (``evaluation.NODES``), its limit from the catalogue (a node's
  limit in force that day, ``node_time_limits.csv``; the 处置 limit of the case's class and disposal type);
* every step after it that moved the clock (:func:`gisgrid.node_clock.replay_node_clock`): an approved 延期 by a length
  (``amount`` ``unit``) counted again from the deadline it moved, one to a date kept as that date, 挂账 … 挂账恢复
  carrying the time used and the time left over the suspension.

Which clocks are counted again: those that run through the year named (``--year``); else those counted under other
working hours than those in force (``cases.hours_counted``, :mod:`gisgrid.deadline_hours`), whatever their years,
and those that run through the years the city's GISGRID_CALENDAR_FILE describes in full. Every case counted again
(changed or confirmed) gets the hours in force as its ``hours_counted``; one that cannot be counted keeps its own.

An approved 延期 logged before it recorded how it was given (neither ``extended_by`` nor ``amount``) cannot be
counted again: the case is left as stored and reported. :func:`plan` is pure (rows and steps in, outcomes out);
:func:`recompute_deadlines` reads, locks and writes in one transaction, one log entry a changed case.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from sqlalchemy import Engine, text

from gisgrid import deadline_hours, workflow
from gisgrid.calendar import CHINESECALENDAR_VERSION
from gisgrid.cases import CaseServices, case_state, event_class, log_transition
from gisgrid.evaluation import NODES
from gisgrid.events import DISPOSAL_NODE
from gisgrid.grids import store as grid_store
from gisgrid.node_clock import LOCAL_TZ, NODE_OF_STATE, replay_node_clock

#: The log entry of a recomputed deadline (a step nobody takes: the command writes it, actor and role "system").
RECOMPUTE_ACTION = "recompute_due"
RECOMPUTE_LABEL = workflow.SYSTEM_ACTIONS[RECOMPUTE_ACTION]
SYSTEM_ACTOR = "system"

Status = Literal["changed", "unchanged", "not_recomputable"]


@dataclass(frozen=True)
class Outcome:
    """One open case checked: its running node's clock as stored and as counted now."""

    case_id: int
    case_no: str
    state: str
    node: str
    status: Status
    due_at: dt.datetime
    new_due_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    new_started_at: dt.datetime | None = None
    why: str | None = None  # not recomputable: why (zh-CN / English)
    version: int = 0


@dataclass(frozen=True)
class Report:
    """What a run checked and did (``written``: False for a dry run, or when nothing changed)."""

    outcomes: tuple[Outcome, ...]
    written: bool
    dry_run: bool
    years: tuple[int, ...]  # the years whose clocks were checked (--year, else the years the city's file describes)
    unknown_years: tuple[int, ...]  # years the calendar still does not know, met while counting
    #: The open cases counted under other working hours than those in force, as found (None: none).
    hours_change: deadline_hours.HoursChange | None = None
    #: Every clock counted under other hours was checked (no year was named), whatever ``years`` says.
    every_year: bool = False
    #: Those counted again now hold the hours in force (a written count without --year).
    hours_recorded: bool = False
    #: The open cases still counted under other hours after this run (or, for a dry run, after it if written).
    hours_left: deadline_hours.HoursChange | None = None

    @property
    def changed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "changed"]

    @property
    def not_recomputable(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "not_recomputable"]


def _local(at: dt.datetime) -> dt.datetime:
    return at.astimezone(LOCAL_TZ)


def _touches(years: frozenset[int] | None, *instants: dt.datetime | None) -> bool:
    """Whether the span from the first to the last instant (China time) runs through one of ``years`` (None: any)."""
    if years is None:
        return True
    span = [_local(t).year for t in instants if t is not None]
    return any(min(span) <= y <= max(span) for y in years)


def plan(
    services: CaseServices,
    cases: Iterable[Mapping[str, Any]],
    steps: Mapping[int, Sequence[tuple[str, dt.datetime, Mapping[str, Any]]]],
    *,
    years: frozenset[int] | None,
) -> list[Outcome]:
    """Each open case's running clock counted again on ``services.calendar`` (pure: no I/O). ``cases``: rows of
    ``cases`` (id, case_no, state, previous_state, scheme, class_code, disposal_type, node_started_at, due_at,
    version); ``steps``: each case's log (action, at, details) in order. ``years``: only the cases whose clock —
    from the step that opened the node to its deadline, stored or new — runs through one of them (the years the
    calendar has newly learnt: a clock wholly in other years was counted on the same days, and counting it again
    would only apply a catalogue limit edited since, which is not this command's business). ``years`` None: every
    case (the working hours changed: every clock was counted under the old ones)."""
    out: list[Outcome] = []
    for row in cases:
        held = row["state"] == "suspended"
        state = row["previous_state"] if held else row["state"]
        node = NODE_OF_STATE.get(state) if isinstance(state, str) else None
        due: dt.datetime | None = row["due_at"]
        if node is None or due is None:
            continue
        base = Outcome(
            row["id"], row["case_no"], row["state"], node, "unchanged", due, version=row["version"],
            started_at=row["node_started_at"],
        )  # fmt: skip
        own = list(steps.get(row["id"], ()))
        if held:  # the clock as it stood at the last 挂账 (the stored one, kept while suspended)
            suspensions = [k for k, s in enumerate(own) if s[0] == "suspend"]
            own = own[: suspensions[-1]] if suspensions else []
        opened = [k for k, s in enumerate(own) if s[0] in NODES[node][0]]
        if not opened:
            if _touches(years, row["node_started_at"], due):
                out.append(
                    replace(
                        base,
                        status="not_recomputable",
                        why="日志中没有开启当前环节的步骤 / no step in the log opened the running node",
                    )
                )
            continue
        first = opened[-1]
        ev = event_class(services, row["scheme"], row["class_code"])
        walked = replay_node_clock(
            services, node, ev, row["disposal_type"] or None, own[first:], recompute_extensions=True
        )
        if not _touches(years, own[first][1], due, walked.due_at):
            continue
        if walked.kept:
            at = _local(own[first + walked.kept[0]][1])
            out.append(
                replace(
                    base,
                    status="not_recomputable",
                    why=(
                        f"{at:%Y-%m-%d %H:%M} 批准的延期只记录了新的时限, 未记录延长的时间和单位, "
                        "无法重算, 保留原时限 / "
                        f"the extension approved {at:%Y-%m-%d %H:%M} recorded only its new deadline, not the length "
                        "and unit granted: it cannot be recomputed; the stored deadline is kept"
                    ),
                )
            )
            continue
        # An approval to a date the recounted deadline has passed is not applied (``refused``), as the live service
        # and the evaluation refuse an extension that is not later: the later deadline stands.
        started = walked.started
        if walked.due_at == due and started == row["node_started_at"]:
            out.append(replace(base, new_due_at=due, new_started_at=started))
            continue
        out.append(replace(base, status="changed", new_due_at=walked.due_at, new_started_at=started))
    return out


def _reason(years: Iterable[int], hours: tuple[str, str] | None = None) -> str:
    """Why a recomputed deadline moved, as its log entry says: the working hours changed (``hours``: those it was
    counted under → those in force), the calendar changed (a year became known: the year named, or those the city's
    file describes), or both."""
    parts: list[tuple[str, str]] = []
    if hours is not None:
        parts.append(
            (
                f"工作时间已变更({hours[0]} → {hours[1]}),按现行工作时间重算时限",
                f"working hours changed ({hours[0]} → {hours[1]}): deadline recomputed",
            )
        )
    listed = "、".join(map(str, sorted(years)))
    if listed:
        zh_year, en_year = f"{listed} 年", f"{listed.replace('、', ', ')} now known"
        parts.append(
            (
                f"工作日历已更新({zh_year}节假日安排已知: chinesecalendar {CHINESECALENDAR_VERSION} 及 "
                "GISGRID_CALENDAR_FILE),按新日历重算时限",
                f"working calendar changed ({en_year}: chinesecalendar {CHINESECALENDAR_VERSION} and "
                "GISGRID_CALENDAR_FILE): deadline recomputed",
            )
        )
    return f"{';'.join(zh for zh, _ in parts)} / {'; '.join(en for _, en in parts)}"


def _unknown_met(unknown: Iterable[int], outcomes: Iterable[Outcome]) -> list[int]:
    """The years the calendar does not know that a checked clock runs through."""
    spans = [
        (_local(min(t for t in (o.started_at, o.due_at) if t is not None)).year,
         _local(max(t for t in (o.due_at, o.new_due_at) if t is not None)).year)
        for o in outcomes
    ]  # fmt: skip
    return sorted(y for y in set(unknown) if any(lo <= y <= hi for lo, hi in spans))


_CASES_SQL = (
    "SELECT id, case_no, state, previous_state, scheme, class_code, disposal_type, node, node_started_at, due_at, "
    "disposal_due_at, version, department_code, rework_count, escalation_level, pending_extension, hours_counted "
    f"FROM cases WHERE {deadline_hours.OPEN_CLOCKS} "
    "ORDER BY id"
)


def _left(stale: Sequence[Any], outcomes: Iterable[Outcome], current: str) -> deadline_hours.HoursChange | None:
    """The cases of ``stale`` that ``outcomes`` did not count again under ``current``, grouped by their hours."""
    counted = {o.case_id for o in outcomes if o.status != "not_recomputable"}
    left: dict[str, int] = {}
    for r in stale:
        if r.id not in counted:
            left[r.hours_counted] = left.get(r.hours_counted, 0) + 1
    return deadline_hours.HoursChange(tuple(sorted(left.items())), current) if left else None


def recompute_deadlines(
    engine: Engine,
    services: CaseServices,
    *,
    dry_run: bool = False,
    year: int | None = None,
    now: dt.datetime | None = None,
) -> Report:
    """Count the open cases' deadlines again (:func:`plan`) and, unless ``dry_run``, store them in one
    transaction — a changed one's ``due_at`` (and the 处置 deadline ``disposal_due_at`` while dispatched; the node's
    start when a 挂账恢复 moved it), the case's version bumped, and a log entry each (``recompute_due``, actor
    ``system``, the old and new deadline; the hours change when it was counted under other working hours); every
    case counted again, changed or not, gets the hours in force (``hours_counted``). Without ``year`` the cases
    counted under other hours are all counted (a case that cannot be recomputed is reported and keeps its hours, so
    the start warning stays). A dry run reads only."""
    now = now or dt.datetime.now(LOCAL_TZ)
    covered = frozenset(services.calendar.covered_years)
    current = services.hours_in_force
    with engine.connect() as conn, conn.begin():
        if not dry_run:
            grid_store.read_grids_first(conn)  # before any case row lock, as every step that locks them
        found = deadline_hours.recount_needed(conn, current)
        # The years the calendar has learnt: the one named, else those the city's file describes in full. A package
        # upgrade leaves no trace of what it added: its new year is named (--year). Without --year the clocks
        # counted under other hours are counted whatever their years.
        years = frozenset({year}) if year is not None else covered
        if not years and found is None:
            return Report((), False, dry_run, (), (), found)
        rows = conn.execute(text(_CASES_SQL + ("" if dry_run else " FOR UPDATE"))).all()
        stale = [r for r in rows if (r.hours_counted or current) != current]  # null: counted under the hours in force
        change = _left(stale, (), current)  # as locked (a start or another run may have moved since the look)
        every_year = change is not None and year is None
        ids = [r.id for r in rows]
        logs: dict[int, list[tuple[str, dt.datetime, Mapping[str, Any]]]] = {}
        if ids:
            for cid, action, at, logged in conn.execute(
                text(
                    "SELECT case_id, action, at, details FROM case_transitions WHERE case_id = ANY(:ids) "
                    "ORDER BY case_id, at, id"
                ),
                {"ids": ids},
            ):
                logs.setdefault(cid, []).append((action, at, logged or {}))
        if every_year:
            stale_ids = {r.id for r in stale}
            others = [dict(r._mapping) for r in rows if r.id not in stale_ids]
            outcomes = plan(services, [dict(r._mapping) for r in stale], logs, years=None)
            if years:
                outcomes += plan(services, others, logs, years=years)
            outcomes.sort(key=lambda o: o.case_id)
        else:
            outcomes = plan(services, [dict(r._mapping) for r in rows], logs, years=years)
        unknown = _unknown_met(services.calendar.unknown_years, outcomes)
        changed = [o for o in outcomes if o.status == "changed"]
        result = Report(
            tuple(outcomes),
            False,
            dry_run,
            tuple(sorted(years)),
            tuple(unknown),
            change,
            every_year,
            every_year and not dry_run,
            _left(stale, outcomes, current),
        )
        if dry_run:
            return result
        by_id = {r.id: r for r in rows}
        confirmed = [
            o.case_id for o in outcomes if o.status == "unchanged" and by_id[o.case_id].hours_counted != current
        ]
        if confirmed:  # counted again to the same deadline: now counted under the hours in force
            conn.execute(
                text("UPDATE cases SET hours_counted = :h WHERE id = ANY(:ids)"), {"h": current, "ids": confirmed}
            )
        for o in changed:
            row = by_id[o.case_id]
            assert o.new_due_at is not None
            sets: dict[str, Any] = {"due_at": o.new_due_at, "hours_counted": current}
            if o.node == DISPOSAL_NODE[0] and row.disposal_due_at is not None:
                sets["disposal_due_at"] = o.new_due_at
            if o.new_started_at is not None and o.new_started_at != row.node_started_at:
                sets["node_started_at"] = o.new_started_at
            assigned = ", ".join(f"{k} = :{k}" for k in sets)
            conn.execute(
                text(f"UPDATE cases SET {assigned}, version = version + 1, updated_at = :now WHERE id = :id"),
                {**sets, "now": now, "id": o.case_id},
            )
            hours = (row.hours_counted, current) if (row.hours_counted or current) != current else None
            # An hours-only recount (no year named) says the hours changed, not the calendar (review59 F12).
            reason = _reason(years if hours is None or year is not None else (), hours)
            details: dict[str, Any] = {
                "reason": reason,
                "node": o.node,
                "due_at": {"from": _local(o.due_at).isoformat(), "to": _local(o.new_due_at).isoformat()},
                "chinesecalendar": CHINESECALENDAR_VERSION,
            }
            if hours is not None:
                details["working_hours"] = {"from": hours[0], "to": hours[1]}
            if "node_started_at" in sets and o.started_at is not None:
                details["node_started_at"] = {
                    "from": _local(o.started_at).isoformat(),
                    "to": _local(sets["node_started_at"]).isoformat(),
                }
            snapshot = case_state(row)
            tr = workflow.Transition(
                action=RECOMPUTE_ACTION,
                from_state=row.state,
                to_state=row.state,
                role=SYSTEM_ACTOR,
                case=replace(snapshot, version=snapshot.version + 1),
                details=details,
            )
            note = f"{reason}: {_local(o.due_at):%Y-%m-%d %H:%M} → {_local(o.new_due_at):%Y-%m-%d %H:%M}"
            log_transition(
                conn, o.case_id, tr, actor=SYSTEM_ACTOR, role=SYSTEM_ACTOR, at=now, note=note, details=details
            )
        return replace(result, written=bool(changed))


def summary_lines(report: Report) -> list[str]:
    """The command's summary, zh-CN first: why the cases counted under other hours were counted (the working hours
    changed), checked, changed (case number, old → new), not recomputable and why, and the hours those counted now
    carry (those left under other hours: not recomputable, or, after --year, outside that year)."""
    fmt = "%Y-%m-%d %H:%M"
    head = "(试运行, 未写入) / (dry run: nothing written)" if report.dry_run else ""
    checked, changed, refused = len(report.outcomes), report.changed, report.not_recomputable
    hours = report.hours_change
    lines: list[str] = []
    if report.every_year and hours is not None:
        lines.append(
            f"工作时间已变更: 在办案件已保存的时限 {hours.zh()} 计算, 现行为 {hours.in_force}; 重算这些案件的时限 / "
            f"working hours changed: open cases' stored deadlines were counted under other hours ({hours.en()}), "
            f"the hours in force are {hours.in_force}: those deadlines are counted again"
        )
    elif not report.years:
        return [
            "未检查: 日历文件 GISGRID_CALENDAR_FILE 未完整列出任何年份; 升级 chinesecalendar 后请用 --year "
            "指定它新知道的年份 / nothing checked: GISGRID_CALENDAR_FILE describes no year in full; "
            "after upgrading chinesecalendar name the year it added with --year"
        ]
    lines += [
        f"检查 {checked} 件在办案件, {'将' if report.dry_run else ''}变更 {len(changed)} 件, 无法重算 "
        f"{len(refused)} 件 / {checked} open case(s) checked, {len(changed)} "
        f"{'would change' if report.dry_run else 'changed'}, {len(refused)} not recomputable {head}".rstrip()
    ]
    for o in changed:
        assert o.new_due_at is not None
        lines.append(f"  {o.case_no}  {_local(o.due_at):{fmt}} → {_local(o.new_due_at):{fmt}}  ({o.node})")
    for o in refused:
        lines.append(f"  {o.case_no}  无法重算 / not recomputable: {o.why}")
    if report.unknown_years:
        years = ", ".join(map(str, report.unknown_years))
        lines.append(
            f"注意: 日历仍不知道 {years} 年的节假日安排, 这些时限仍按周一至周五计算 / "
            f"note: the calendar still does not know {years}: those deadlines still count Mon–Fri"
        )
    left = report.hours_left
    if hours is not None and report.every_year:
        kept = f"(无法重算的 {left.zh()} 计算, 启动时的警告仍在)" if left else ""
        kept_en = f" ({left.en()}: not recomputable, the start warning stays)" if left else ""
        lines.append(
            f"已记录: 重算的时限现按 {hours.in_force} 计算{kept} / recorded: the deadlines counted again now count "
            f"under {hours.in_force}{kept_en}"
            if report.hours_recorded
            else "(试运行: 未记录新的工作时间, 启动时的警告仍在) / (dry run: the new hours are not recorded, the "
            "start warning stays)"
        )
    elif left is not None:
        named = ", ".join(map(str, report.years))
        lines.append(
            f"注意: 工作时间已变更, 另有在办案件的时限 {left.zh()} 计算 (现行 {left.in_force}), 本次只检查 {named} 年; "
            f"不带 --year 运行以按现行工作时间重算 / note: the working hours changed: other open cases' deadlines "
            f"were counted under other hours ({left.en()}; in force: {left.in_force}); this run checked "
            f"{named} only: run without --year to count them again"
        )
    return lines


def as_json(report: Report) -> dict[str, Any]:
    def when(t: dt.datetime | None) -> str | None:
        return None if t is None else _local(t).isoformat()

    return {
        "dry_run": report.dry_run,
        "written": report.written,
        "years": list(report.years),
        "checked": len(report.outcomes),
        "changed": [
            {"case_no": o.case_no, "node": o.node, "due_at": when(o.due_at), "new_due_at": when(o.new_due_at)}
            for o in report.changed
        ],
        "not_recomputable": [
            {"case_no": o.case_no, "node": o.node, "due_at": when(o.due_at), "why": o.why}
            for o in report.not_recomputable
        ],
        "unknown_years": list(report.unknown_years),
        "every_year": report.every_year,
        "working_hours": None
        if report.hours_change is None
        else {
            "counted_under": _groups(report.hours_change),
            "in_force": report.hours_change.in_force,
            "recorded": report.hours_recorded,
            "left": _groups(report.hours_left),
        },
    }


def _groups(found: deadline_hours.HoursChange | None) -> list[dict[str, Any]]:
    return [] if found is None else [{"hours": h, "open_cases": n} for h, n in found.counted]
