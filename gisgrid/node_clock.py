"""A case's node clock: which time limit runs, until when, and how 延期/挂账/回退 move it — pure arithmetic.

The deadline rules the live service (:mod:`gisgrid.cases`), the deadline recompute (:mod:`gisgrid.deadlines`), the
history import and the evaluation's replay (:mod:`gisgrid.history`) share. Nothing here reads or writes the
database: it takes the catalogues and the working calendar (:class:`gisgrid.cases.CaseServices`) and a case's
stored row or recorded steps, and answers deadlines, or refuses with the client's message.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from gisgrid import workflow
from gisgrid.calendar import MAX_EXTENSION_DAYS, MIN_EXTENSION_MINUTES, WorkingCalendar, longest, shortest
from gisgrid.constants import LOCAL_TZ
from gisgrid.errors import InvalidInput, Reason
from gisgrid.evaluation import NODES
from gisgrid.events import DISPOSAL_NODE, EventClass
from gisgrid.texts import bilingual

if TYPE_CHECKING:  # cases holds the I/O and imports this module: its services are only a type here
    from gisgrid.cases import CaseServices


#: Which node's time limit runs in each state (the disposal limit runs while dispatched).
NODE_OF_STATE: dict[str, str | None] = {
    "reported": "verify",
    "verified": "file",
    "filed": "dispatch",
    "returned": "dispatch",
    "dispatched": "disposal",
    "handled": "check",
    "checked": "close",
    "suspended": None,
    "closed": None,
    "rejected": None,
    "voided": None,
}


def disposal_limit(services: CaseServices, ev: EventClass, disposal_type: str | None) -> Any:
    """The class's time limit of ``disposal_type`` (its default one with None); refused when the class has no such
    disposal type."""
    limits = services.events.limits(ev.scheme, ev.code)
    if disposal_type is None:
        return services.events.limit(ev.scheme, ev.code)
    for lim in limits:
        if lim.disposal_type == disposal_type:
            return lim
    names = "/".join(lim.disposal_type for lim in limits)
    raise InvalidInput(
        f"disposal_type: {disposal_type!r} is not a disposal type of {ev.name}; use one of {names}",
        detail=[{"field": "disposal_type", "reason": f"one of {names}"}],
        reason=Reason.UNKNOWN_DISPOSAL_TYPE,
    )


def extension_too_late(due_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether a 延期申请 at ``now`` comes after the running deadline (at it, still in time; none: never late)."""
    return due_at is not None and now > due_at


def refuse_late_extension_request(due_at: dt.datetime | None, now: dt.datetime) -> None:
    """延期 is asked for within the disposal time limit: a request once the running deadline ``due_at`` (the
    disposal node's, as 挂账恢复 moved it) has passed is refused (409, nothing written) — approved, it would turn an
    overdue case on time. At the deadline itself it is still in time, as 督办's ``overdue`` is judged. A case
    stored with no deadline (an older import) has nothing to judge it by. Live requests only: an imported record's
    late request is kept as the city recorded it (:mod:`gisgrid.history_import`)."""
    if not extension_too_late(due_at, now):
        return
    assert due_at is not None
    due = due_at.astimezone(LOCAL_TZ)
    why = f"the disposal deadline {due:%Y-%m-%d %H:%M} (China time) has passed"
    raise workflow.TransitionNotAllowed(
        bilingual(
            f"处置时限 {due:%Y-%m-%d %H:%M} 已过,不能再申请延期(延期须在处置时限内申请);本次未写入",
            f"request_extension is not allowed after the deadline: {why}; an extension is asked for within the "
            "time limit; nothing was written",
        ),
        detail=[
            workflow.refusal_item(
                None,
                why,
                Reason.EXTENSION_AFTER_DEADLINE,
                action="request_extension",
                state="dispatched",
                due_at=due.isoformat(),
            )
        ],
        reason=Reason.EXTENSION_AFTER_DEADLINE,
    )


#: How an approved 延期 moved the deadline, as its log entry says (``extended_by``): by a length (``amount`` ``unit``
#: from the deadline it moved — working time, so recomputed when the calendar learns a year) or to a date
#: (``new_due_at`` as given, whatever the calendar). An approval logged before this was recorded, with neither
#: ``extended_by`` nor ``amount``, cannot be told apart: its stored ``new_due_at`` is kept (review49 F4).
EXTENDED_BY_LENGTH = "length"
EXTENDED_BY_DATE = "date"


def extension_terms(action: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """What an approved extension's log entry records beside its new deadline: how it was given."""
    if action != "approve_extension":
        return {}
    return {"extended_by": EXTENDED_BY_LENGTH if payload.get("amount") is not None else EXTENDED_BY_DATE}


def one_length(payload: dict[str, Any], what: str) -> None:
    """An extension is by a length (amount, unit) or to a date (new_due_at), never both: which one would hold?"""
    if payload.get("amount") is not None and payload.get("new_due_at"):
        why = "give amount (with unit) or new_due_at, not both"
        raise InvalidInput(
            f"amount, new_due_at: {what} takes one or the other, not both: {why}",
            detail=[{"field": "amount", "reason": why}, {"field": "new_due_at", "reason": why}],
            reason=Reason.VALUE_ERROR,
        )


def extension_due(
    services: CaseServices, row: Any, payload: dict[str, Any], requested: dict[str, Any] | None
) -> tuple[dict[str, Any], bool]:
    """An approved extension moves the disposal deadline by ``amount`` ``unit`` (working time by default) or to
    ``new_due_at`` — one or the other; with neither, by what the pending request (``requested``: its log details)
    asked for. The payload to apply (the new deadline and what gave it, as the log records it) and whether it was
    taken from the request."""
    amount, due = payload.get("amount"), payload.get("new_due_at")
    one_length(payload, "an approved extension")
    as_requested = amount is None and not due and requested is not None
    if as_requested:
        assert requested is not None
        payload = {k: v for k, v in payload.items() if k != "unit"}  # a unit alone says nothing
        if requested.get("new_due_at"):  # the date the department named, when it named one
            payload["new_due_at"] = requested["new_due_at"]
        elif requested.get("amount") is not None:
            payload |= {"amount": requested["amount"], "unit": requested.get("unit") or "working_days"}
        else:
            as_requested = False  # the request said no length: the approver has to
    if payload.get("amount") is not None and not payload.get("unit"):  # the unit it is counted in, said in the log
        payload = {**payload, "unit": "working_days"}
    new_due, base = extended_due(services, row, payload)
    out = {**payload, "new_due_at": new_due.isoformat()}
    if base is not None:
        out["previous_due_at"] = base.astimezone(LOCAL_TZ).isoformat()
    return out, as_requested


def extended_due(services: CaseServices, row: Any, payload: dict[str, Any]) -> tuple[dt.datetime, dt.datetime | None]:
    """The disposal deadline an extension by ``new_due_at``, else ``amount`` ``unit``, gives, and the deadline it
    moves; refused when it is not later, or later by more than MAX_EXTENSION_DAYS — as asked (延期申请) and as
    approved (延期批准)."""
    base = row.disposal_due_at or row.due_at
    if payload.get("new_due_at"):
        new_due = _parse_due(payload["new_due_at"], services)
    else:
        given = payload.get("amount")
        try:
            if isinstance(given, bool):
                raise TypeError
            amount = float(given)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidInput(
                "amount: an approved extension needs amount (a number) and unit, or new_due_at",
                detail=[{"field": "amount"}],
                reason=Reason.MISSING if given is None else Reason.FLOAT_TYPE,
            ) from None
        if not (math.isfinite(amount) and amount > 0):
            raise InvalidInput(
                "amount: must be a positive number", detail=[{"field": "amount"}], reason=Reason.NOT_POSITIVE
            )
        unit = str(payload.get("unit") or "working_days")
        if amount > longest(unit, services.calendar.hours.hours_per_day):
            raise InvalidInput(
                _too_long(f"amount: {amount:g} {unit}"), detail=[{"field": "amount"}], reason=Reason.EXTENSION_TOO_LONG
            )
        if amount < shortest(unit, services.calendar.hours.hours_per_day):
            raise InvalidInput(
                bilingual(
                    f"延期至少 {MIN_EXTENSION_MINUTES} 分钟:{amount:g} {workflow.TIME_UNITS.get(unit, unit)}不足 "
                    f"{MIN_EXTENSION_MINUTES} 分钟",
                    f"amount: {amount:g} {unit} is less than the {MIN_EXTENSION_MINUTES} minute an extension must add",
                ),
                detail=[{"field": "amount"}],
                reason=Reason.EXTENSION_TOO_SHORT,
            )
        new_due = services.calendar.extend(base, amount, unit)
    field_ = "new_due_at" if payload.get("new_due_at") else "amount"
    refused = extension_refusal(base, new_due, field_)
    if refused is not None:
        # The newer refusal says it zh-CN first; the older ones keep their words (clients may show them).
        short = refused.reason is Reason.EXTENSION_TOO_SHORT
        message = bilingual(refused.zh, refused.message) if short else refused.message
        raise InvalidInput(message, detail=[{"field": field_}], reason=refused.reason)
    return new_due, base


class ExtensionRefusal(NamedTuple):
    """Why an extension cannot be: the live service's English message (the field first), its reason, and the same
    in zh-CN without the field (the history import's refusals are zh-CN first)."""

    message: str
    reason: Reason
    zh: str


def extension_refusal(base: dt.datetime | None, new_due: dt.datetime, field_: str) -> ExtensionRefusal | None:
    """Why an extension of a disposal deadline ``base`` to ``new_due`` cannot be, or None: it must move the
    deadline later, by MIN_EXTENSION_MINUTES at least and MAX_EXTENSION_DAYS at most — live (延期申请, 延期批准) and
    imported alike."""
    if base is None:
        return None
    was, asked = base.astimezone(LOCAL_TZ), new_due.astimezone(LOCAL_TZ)
    if new_due <= base:
        return ExtensionRefusal(
            f"{field_}: an extension must move the deadline later than {was:%Y-%m-%d %H:%M}, "
            f"not to {asked:%Y-%m-%d %H:%M}",
            Reason.DEADLINE_NOT_LATER,
            f"延期须使处置时限晚于 {was:%Y-%m-%d %H:%M},不能改为 {asked:%Y-%m-%d %H:%M}",
        )
    if new_due - base < dt.timedelta(minutes=MIN_EXTENSION_MINUTES):
        return ExtensionRefusal(
            f"{field_}: an extension must move the deadline by at least {MIN_EXTENSION_MINUTES} minute, "
            f"not from {was:%Y-%m-%d %H:%M:%S} to {asked:%Y-%m-%d %H:%M:%S}",
            Reason.EXTENSION_TOO_SHORT,
            f"延期至少 {MIN_EXTENSION_MINUTES} 分钟,不能由 {was:%Y-%m-%d %H:%M:%S} 改为 {asked:%Y-%m-%d %H:%M:%S}",
        )
    if new_due - base > dt.timedelta(days=MAX_EXTENSION_DAYS):
        return ExtensionRefusal(
            _too_long(f"{field_}: to {new_due:%Y-%m-%d}"),
            Reason.EXTENSION_TOO_LONG,
            f"新处置时限 {new_due:%Y-%m-%d} 超出延期最多可延长的 {MAX_EXTENSION_DAYS} 天(更长的等待请挂账)",
        )
    return None


def _parse_due(value: Any, services: CaseServices) -> dt.datetime:
    """A deadline as given (ISO 8601; China time without an offset); a date alone is the end of that day's
    working hours — what an approver writing 2026-12-31 means, not its midnight."""
    text_ = str(value).strip()
    try:
        if len(text_) == 10:
            day = dt.date.fromisoformat(text_)
            return dt.datetime.combine(day, services.calendar.hours_on(day).periods[-1][1], tzinfo=LOCAL_TZ)
        due = dt.datetime.fromisoformat(text_)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"new_due_at: {value!r} is not a date and time (ISO 8601, e.g. 2026-12-01T17:30)",
            detail=[{"field": "new_due_at"}],
            reason=Reason.DATETIME_PARSING,
        ) from None
    # Stored and answered in China time like every other time (2026-12-11T12:00Z is 20:00+08:00).
    return due.astimezone(LOCAL_TZ) if due.tzinfo is not None else due.replace(tzinfo=LOCAL_TZ)


def _too_long(what: str) -> str:
    return f"{what} is more than the {MAX_EXTENSION_DAYS} days an extension may add (a longer wait is 挂账)"


def deadlines_after(
    services: CaseServices, ev: EventClass, row: Any, tr: workflow.Transition, now: dt.datetime, disposal_type: str
) -> dict[str, Any]:
    """Which clock runs after this transition, and until when."""
    state = tr.case.state
    out: dict[str, Any] = {}
    if tr.action == "approve_extension":
        new_due = dt.datetime.fromisoformat(str(tr.details.get("new_due_at") or tr.details.get("new_due")))
        return {"disposal_due_at": new_due, "due_at": new_due}
    if tr.action == "suspend":
        return {"suspended_at": now, "node": None}
    if tr.action == "resume":
        # 挂账 stops the clock: the working time left when suspended is what is left now, and the time used
        # before it is what was used (the light's share), so the node restarts that much working time ago.
        columns = ("node_started_at", "due_at", "disposal_due_at")
        moved = clock_after_suspension(
            services.calendar,
            row.suspended_at or now,
            now,
            bool(row.node_calendar_time),
            *(getattr(row, c) for c in columns),
        )
        out.update({c: v for c, v in zip(columns, moved, strict=True) if v is not None})
        out.update(suspended_at=None, node=NODE_OF_STATE[state])
        if row.due_at is None and out["node"] is not None:  # stored with no clock (an older import): a new one
            out.update(node_started_at=now, **node_clock(services, out["node"], ev, disposal_type, now))
        return out
    node = NODE_OF_STATE[state]
    if tr.from_state == state:
        # 发核实/发核查 re-issue the task: its node restarts now, as the evaluation judges it (``NODES``: of several
        # openers the last counts); supervise, escalate, extension request/deny: no clock change.
        if node is not None and tr.action in NODES[node][0]:
            return {"node": node, "node_started_at": now, **node_clock(services, node, ev, disposal_type, now)}
        return out
    out["node"] = node
    out["node_started_at"] = now
    if node is None:
        out.update(due_at=None, node_calendar_time=False)
        if state in workflow.TERMINAL_STATES:
            out["closed_at"] = now
    elif node == "disposal":
        out.update(node_clock(services, node, ev, disposal_type, now))
        out.update(disposal_started_at=now, disposal_due_at=out["due_at"])
    else:
        out.update(node_clock(services, node, ev, disposal_type, now))
    return out


def clock_after_suspension(
    calendar: WorkingCalendar,
    suspended: dt.datetime,
    resumed: dt.datetime,
    calendar_time: bool,
    started: dt.datetime | None,
    *dues: dt.datetime | None,
) -> list[dt.datetime | None]:
    """A node's start and deadlines (None stays None) when 挂账恢复 at ``resumed`` ends a 挂账 begun at
    ``suspended``: 挂账 stops the clock, so the working time used before it is what was used (the light's share:
    the node restarts that much working time ago) and the time left — or overdue, negative — is what is left; a
    round-the-clock limit (``calendar_time``) moves by the time suspended."""
    if calendar_time:
        return [None if v is None else v + (resumed - suspended) for v in (started, *dues)]
    out: list[dt.datetime | None] = [
        None
        if started is None
        else calendar.rewind_working_us(resumed, calendar.working_us_between(started, suspended))
    ]
    for due in dues:
        left = None if due is None else calendar.working_us_between(suspended, due)
        out.append(
            None
            if left is None
            else calendar.add_working_time(resumed, left / 3_600_000_000, "working_hours")
            if left >= 0
            else calendar.rewind_working_us(resumed, -left)
        )
    return out


def node_limit(
    services: CaseServices, node: str, ev: EventClass, disposal_type: str | None, start: dt.datetime
) -> tuple[float, str]:
    """(amount, unit) of a node started at ``start``: the class's disposal limit (of its disposal type) for 处置,
    the node's own in force that day otherwise — its urgent limit for an urgent case (a disposal type marked
    urgent) where the catalogue has one."""
    limit = disposal_limit(services, ev, disposal_type)
    if node == DISPOSAL_NODE[0]:
        return limit.limit, limit.unit
    node_limits, urgent_limits = services.events.node_limits_at(start.astimezone(LOCAL_TZ).date())
    if limit.urgent and node in urgent_limits:
        return urgent_limits[node]
    return node_limits[node]


def node_due_at(
    services: CaseServices, node: str, ev: EventClass, disposal_type: str | None, start: dt.datetime
) -> dt.datetime:
    """When a node started at ``start`` is due (:func:`node_limit` on the working calendar)."""
    amount, unit = node_limit(services, node, ev, disposal_type, start)
    return services.calendar.add_working_time(start, amount, unit)


@dataclass(frozen=True)
class ReplayedClock:
    """A node's clock after its recorded steps (:func:`replay_node_clock`)."""

    started: dt.datetime
    due_at: dt.datetime
    node_calendar_time: bool
    suspended_at: dt.datetime | None  # a 挂账 not yet resumed
    refused: tuple[int, ExtensionRefusal] | None  # the first approval that cannot apply: step index, why
    #: With ``recompute_extensions``: the approvals logged with neither how they were given nor a length (before
    #: review49 F4), kept at their stored new deadline (step indexes).
    kept: tuple[int, ...] = ()


def replay_node_clock(
    services: CaseServices,
    node: str,
    ev: EventClass,
    disposal_type: str | None,
    steps: list[tuple[str, dt.datetime, Mapping[str, Any]]],
    *,
    recompute_extensions: bool = False,
) -> ReplayedClock:
    """The clock of ``node`` over recorded steps (action, at, details), as the live service would have kept it:
    each opener of the node (:data:`NODES`) starts it again, an approved extension (延期批准) moves the disposal
    deadline — one that is not later, or too long, is reported in ``refused`` and not applied (the evaluation reads
    it so too) — and 挂账…恢复 stops it (:func:`clock_after_suspension`).

    ``recompute_extensions``: an extension granted as a length (``amount`` ``unit``, :data:`EXTENDED_BY_LENGTH`) is
    counted again on the calendar from the deadline it moved, rather than taken at its stored new deadline — what
    ``cases recompute-deadlines`` needs once the calendar learns a year; one to a date stays that date, and one
    logged without saying which (before review49 F4) keeps its stored deadline and is named in ``kept``."""
    openers = NODES[node][0]
    started, clock = steps[0][1], node_clock(services, node, ev, disposal_type, steps[0][1])
    due: dt.datetime = clock["due_at"]
    suspended: dt.datetime | None = None
    refused: tuple[int, ExtensionRefusal] | None = None
    kept: list[int] = []
    for k, (action, at, details) in enumerate(steps[1:], start=1):
        if action in openers:
            started, clock, suspended = at, node_clock(services, node, ev, disposal_type, at), None
            due = clock["due_at"]
        elif action == "approve_extension" and node == DISPOSAL_NODE[0] and details.get("new_due_at"):
            new_due = dt.datetime.fromisoformat(str(details["new_due_at"]))
            if recompute_extensions:
                by = details.get("extended_by")
                if by != EXTENDED_BY_DATE and details.get("amount") is not None:
                    unit = str(details.get("unit") or "working_days")  # the default an approval counted in
                    new_due = services.calendar.extend(due, float(details["amount"]), unit)
                elif by is None:
                    kept.append(k)
            why = extension_refusal(due, new_due, "new_due_at")
            if why is None:
                due = new_due
            elif refused is None:
                refused = (k, why)
        elif action == "suspend":
            suspended = at
        elif action == "resume" and suspended is not None:
            moved = clock_after_suspension(services.calendar, suspended, at, clock["node_calendar_time"], started, due)
            started, due = moved[0] or started, moved[1] or due
            suspended = None
    return ReplayedClock(started, due, bool(clock["node_calendar_time"]), suspended, refused, tuple(kept))


def node_clock(
    services: CaseServices, node: str, ev: EventClass, disposal_type: str | None, start: dt.datetime
) -> dict[str, Any]:
    """The columns of a node's clock started at ``start``: its deadline, and whether it runs in calendar time
    (an urgent limit: round the clock) — which the traffic light must measure it in."""
    amount, unit = node_limit(services, node, ev, disposal_type, start)
    return {
        "due_at": services.calendar.add_working_time(start, amount, unit),
        "node_calendar_time": unit == "calendar_hours",
    }
