"""Synthetic case histories (gisgrid.simulate): determinism, realism against the state machine and the calendar,
planting, and the 100k-case benchmark (pure, no database)."""

from __future__ import annotations

import time
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gisgrid import routing, workflow
from gisgrid.calendar import WorkingCalendar
from gisgrid.case_documents import dispatch_basis
from gisgrid.cases import decision_from_json, decision_json
from gisgrid.errors import InvalidInput
from gisgrid.evaluation import (
    Period,
    WorkClock,
    evaluate_departments,
    evaluate_posts,
    evaluate_regions,
    prepare,
)
from gisgrid.events import load_event_catalogue
from gisgrid.settings import Settings
from gisgrid.simulate import (
    OVERRIDE_REASONS,
    Simulation,
    classes_from_catalogue,
    node_hours_from_catalogue,
    person_names,
    simulate,
    synthetic_cells,
)
from gisgrid.storage.models import Case, CaseTransition

CAL = WorkingCalendar()
#: The package's node limits in working hours, as a city's loaded catalogue gives them to the simulation.
NODE_HOURS = node_hours_from_catalogue(load_event_catalogue(Settings()), CAL.hours.hours_per_day)


@cache
def catalogue() -> tuple[pd.DataFrame, list[str], dict]:
    events = load_event_catalogue(Settings())
    classes = classes_from_catalogue(events)
    return classes, sorted(set(classes["department"])), dict(events.node_limits)


@cache
def small(seed: int = 5) -> Simulation:
    classes, deps, _ = catalogue()
    cells = synthetic_cells(streets=3, communities=2, tier3=3)
    plant = {"escalation": [cells["street_code"].iloc[0]], "paper_closure": list(cells["code"].iloc[:4])}
    # Over National Day 2025 (10-01..10-08 off, Sat 10-11 worked) to see the calendar at work.
    return simulate(cells, deps, classes, days=60, seed=seed, start="2025-09-15", plant=plant, rate=0.08,
                    node_hours=NODE_HOURS)  # fmt: skip


def test_same_seed_same_history_other_seed_another() -> None:
    a, b = small(5), small.__wrapped__(5)
    assert a is not b
    pd.testing.assert_frame_equal(a.cases, b.cases)
    pd.testing.assert_frame_equal(a.transitions, b.transitions)
    pd.testing.assert_frame_equal(a.staff, b.staff)
    assert a.truth == b.truth
    c = small(6)
    assert len(c.cases) != len(a.cases) or not c.cases["class_code"].equals(a.cases["class_code"])


def test_tables_are_shaped_like_the_storage_models() -> None:
    cases, transitions = small()
    case_columns = {c.name for c in Case.__table__.columns}
    extra = set(cases.columns) - case_columns
    assert extra == {"disposal_limit_h", "lon", "lat"}, extra  # the documented inputs the database lacks
    assert {"id", "case_no", "class_code", "source", "state", "tier3_code", "created_at", "closed_at"} <= set(cases)
    t_columns = {c.name for c in CaseTransition.__table__.columns}
    assert set(transitions.columns) <= t_columns
    assert cases["id"].is_unique and cases["case_no"].is_unique
    assert cases["created_at"].is_monotonic_increasing  # ids in report order
    assert set(transitions["case_id"]) == set(cases["id"])
    assert isinstance(transitions["details"].iloc[0], dict) and isinstance(transitions["effects"].iloc[0], list)


def test_each_case_carries_the_disposal_type_its_deadline_was_set_by() -> None:
    cases, _ = small()
    events = load_event_catalogue(Settings())
    for (scheme, code), dtype in cases.groupby(["scheme", "class_code"])["disposal_type"].unique().items():
        assert list(dtype) == [events.limit(scheme, code).disposal_type]
    assert (cases.loc[cases["class_code"] == "06001", "disposal_type"] == "停工").all()  # 私搭乱建 has no 默认


def test_every_case_replays_through_the_state_machine() -> None:
    cases, transitions = small()
    by_case = dict(tuple(transitions.groupby("case_id")))
    for cid in cases["id"]:
        log = by_case[cid]
        assert log.iloc[0]["action"] == "report" and log["at"].is_monotonic_increasing
        state = workflow.CaseState()
        for r in log.iloc[1:].itertuples():
            tr = workflow.apply(state, r.action, r.role, payload=dict(r.details), expected_version=state.version)
            assert (tr.from_state, tr.to_state, list(tr.effects)) == (r.from_state, r.to_state, r.effects)
            assert tr.case.department == (r.department_code if isinstance(r.department_code, str) else None)
            state = tr.case
        c = cases.loc[cases["id"] == cid].iloc[0]
        assert (c["state"], c["rework_count"], c["escalation_level"]) == (
            state.state,
            state.rework_count,
            state.escalation_level,
        )


def test_workflow_actions_happen_in_working_time_and_skip_the_holiday() -> None:
    sim = small()
    t = sim.transitions[sim.transitions["action"] != "report"]
    local = t["at"].dt.tz_convert("Asia/Shanghai")
    days = local.dt.date
    assert days.map(CAL.is_working_day).all()  # never on a weekend or a holiday, only on 调休 Saturdays
    minutes = local.dt.hour * 60 + local.dt.minute + local.dt.second / 60
    assert (((minutes >= 8.5 * 60) & (minutes <= 12 * 60)) | ((minutes >= 13.5 * 60) & (minutes <= 17.5 * 60))).all()
    assert not (days.between(pd.Timestamp("2025-10-01").date(), pd.Timestamp("2025-10-08").date())).any()
    assert (days == pd.Timestamp("2025-10-11").date()).any()  # the adjusted working Saturday is used
    # Reports arrive on any day, the public's also in the evening.
    reports = sim.transitions[sim.transitions["action"] == "report"]["at"].dt.date
    assert reports.between(pd.Timestamp("2025-10-01").date(), pd.Timestamp("2025-10-08").date()).any()


def test_history_is_cut_at_its_end_and_has_the_side_flows() -> None:
    sim = small()
    end = pd.Timestamp("2025-11-14", tz="Asia/Shanghai")
    assert (sim.transitions["at"] < end).all()
    states = set(sim.cases["state"])
    assert {"closed", "rejected", "voided", "dispatched", "suspended"} <= states
    actions = set(sim.transitions["action"])
    assert {"return", "rework", "approve_extension", "suspend", "resume", "escalate", "void", "reject"} <= actions
    approvals = sim.transitions.loc[sim.transitions["action"] == "approve_extension", "details"]
    assert {frozenset(d) for d in approvals} == {frozenset({"new_due_at", "extended_by"})}
    assert {d["extended_by"] for d in approvals} == {"date"}  # granted to a date: recounting keeps that date
    voided = sim.cases[sim.cases["state"] == "voided"]
    assert voided["duplicate_of"].notna().any()
    closed = sim.cases[sim.cases["state"] == "closed"]
    assert closed["closed_at"].notna().all() and (closed["closed_at"] > closed["created_at"]).all()
    assert (sim.staff["staff"] >= 1).all() and len(sim.components) == 18 * 20


def test_planted_escalation_and_truth() -> None:
    sim = small()
    street = sim.truth["escalation"][0]
    assert sim.truth["selective"] == [] and len(sim.truth["paper_closure"]) == 4
    share = (sim.cases["escalation_level"] == 1).groupby(sim.cases["street_code"] == street).mean()
    assert share[True] > 0.2 > 0.02 > share[False]
    with pytest.raises(InvalidInput):
        simulate(synthetic_cells(1, 1, 1), ["a", "b"], ["06010"], days=5, seed=1, start="2025-01-01",
                 plant={"floods": ["x"]}, node_hours=NODE_HOURS)  # fmt: skip


def test_simulated_history_evaluates() -> None:
    sim = small()
    _, _, limits = catalogue()
    period = Period.between("2025-09-15", "2025-11-14")
    facts = prepare(sim.cases, sim.transitions, CAL, limits, period, as_of=period.end)
    regions = evaluate_regions(facts, "street")
    assert len(regions) == 3 and regions["score"].between(0, 100).all()
    assert regions["closure_rate"].between(0.8, 1.0).all()
    departments = evaluate_departments(facts)
    assert departments["on_time_disposal_rate"].dropna().between(0.4, 1.0).all()
    # 超期处置数 is the counted disposal nodes 按期处置率 does not count on time, row by row (review26).
    for table in (regions, departments, evaluate_regions(facts, "unit_grid")):
        on_time = np.rint(table["on_time_disposal_rate"].fillna(0) * table["to_dispose"]).astype(int)
        assert (table["overdue_disposals"] == table["to_dispose"] - on_time).all()
        assert table["overdue_disposals"].sum() > 0
    for role in ("supervisor", "intake", "shift_lead", "dispatcher"):
        posts = evaluate_posts(facts, role)
        assert len(posts) > 0 and posts["grade"].notna().all()


@pytest.mark.slow
def test_benchmark_100k_cases() -> None:
    classes, deps, limits = catalogue()
    cells = synthetic_cells(streets=10, communities=4, tier3=5)  # 4000 unit grids
    # CPU time of this process (all of it single-threaded numpy/pandas): not stretched by the other worker or a
    # loaded machine as the wall time is (review57 F2); the wall times are printed beside it.
    t0, c0 = time.perf_counter(), time.process_time()
    sim = simulate(cells, deps, classes, days=365, seed=2025, start="2025-01-01", rate=0.073, node_hours=NODE_HOURS)
    t1, c1 = time.perf_counter(), time.process_time()
    facts = prepare(sim.cases, sim.transitions, CAL, limits, Period.year(2025), as_of="2026-01-01")
    tables = [evaluate_regions(facts, level) for level in ("unit_grid", "tier3", "street", "district")]
    tables.append(evaluate_departments(facts))
    tables += [evaluate_posts(facts, role) for role in ("supervisor", "intake", "shift_lead", "dispatcher")]
    t2, c2 = time.perf_counter(), time.process_time()
    print(
        f"\nbenchmark: {len(sim.cases):,} cases, {len(sim.transitions):,} transitions; simulate {t1 - t0:.2f} s "
        f"({c1 - c0:.2f} s CPU); indicators (prepare + 9 tables) {t2 - t1:.2f} s ({c2 - c1:.2f} s CPU)"
    )
    assert len(sim.cases) > 95_000
    assert c1 - c0 < 30 and c2 - c1 < 30, (c1 - c0, c2 - c1)  # ~3 s each: a guard against a per-row Python loop
    clock = WorkClock.covering(CAL, sim.transitions["at"])
    assert clock.working.sum() > 240  # a year of working days


def test_a_router_decides_where_each_case_goes_and_each_case_keeps_its_decision() -> None:
    """The router sees every report (the recurrences too) as intake would; its department is where the case is
    handled (人工派遣, None: the class's department); its decision and component are kept on the case."""
    classes, deps, _ = catalogue()
    cells = synthetic_cells(streets=3, communities=2, tier3=3)
    seen: list[pd.DataFrame] = []

    def route(asked: pd.DataFrame) -> pd.DataFrame:
        seen.append(asked)
        # Odd unit grids to the last department, even ones to 人工派遣 (None).
        odd = asked["unit_grid_code"].str[-1].astype(int) % 2 == 1
        dept = [deps[-1] if o else None for o in odd]
        return pd.DataFrame(
            {
                "department": dept,
                "routing": [{"decision": decision_json(_rule_or_manual(d, t)), "duplicates": []}
                            for d, t in zip(dept, asked["created_at"], strict=True)],
                "component_id": [f"C{g}" if o else None for g, o in zip(asked["unit_grid_code"], odd, strict=True)],
            },
            index=asked.index,
        )  # fmt: skip

    kw = {"days": 60, "seed": 5, "start": "2025-09-15", "rate": 0.08, "node_hours": NODE_HOURS}
    plain = simulate(cells, deps, classes, **kw)
    routed = simulate(cells, deps, classes, **kw, route=route)
    cases, steps = routed
    asked = pd.concat(seen)
    assert len(asked) == len(cases) and len(seen) >= 2  # reports and recurrences
    assert list(asked.columns) == [
        "unit_grid_code", "district_code", "street_code", "community_code", "tier3_code", "class_code",
        "created_at", "lon", "lat",
    ]  # fmt: skip
    # Each case keeps the decision made for its own report (same class, grid and time).
    own = [routing.own_decision(decision_from_json(r["decision"])) for r in cases["routing"]]
    assert [d.explanation.rsplit(" @ ", 1)[1] for d in own] == [str(t) for t in cases["created_at"]]
    odd = cases["unit_grid_code"].str[-1].astype(int) % 2 == 1
    assert (cases["component_id"] == "C" + cases["unit_grid_code"]).eq(odd).all()
    assert cases.loc[~odd, "component_id"].isna().all()
    # Handled where routed (a misdispatch was returned first): the last dispatch of every closed case, a manual one
    # where the class belongs.
    closed = cases.loc[cases["state"] == "closed", "id"]
    dispatches = steps[(steps["action"] == "dispatch") & steps["case_id"].isin(closed)]
    last = dispatches.groupby("case_id").tail(1).set_index("case_id")["department_code"]
    by_class = dict(zip(classes["code"], classes["department"], strict=True))
    want = pd.Series(
        [deps[-1] if o else by_class[c] for o, c in zip(odd, cases["class_code"], strict=True)], index=cases["id"]
    )
    assert (last == want.reindex(last.index)).all() and len(last) > 1000
    assert not {"routing", "component_id"} & set(plain.cases.columns)  # without a router: no decision


def _rule_or_manual(department: str | None, at: object) -> routing.RoutingDecision:
    """A decision as intake's routing makes it: a rule's department, or 人工派遣 (None); the report's time named."""
    if department is None:
        return routing.RoutingDecision(None, "manual", "none", None, f"无匹配规则, 转人工派遣 @ {at}")
    return routing.RoutingDecision(department, "auto", "rule", "R001", f"类别规则 R001 → {department} @ {at}")


def test_a_dispatch_against_the_routing_is_recorded_as_the_live_dispatch_records_a_dispatcher_s_choice() -> None:
    """Review D1: a simulated 派遣 to another department than the routing's (the misdispatch then returned) was
    logged without a dispatcher's choice, so its 交办单's 派遣依据 named the routing's department, not its own. Now
    each 派遣 is recorded by the live code (routing.dispatch_choice): a 改派 with its reason, who and when, 人工派遣
    of a case left to a person, the re-dispatch after 回退 on the routing's own basis."""
    classes, deps, _ = catalogue()
    cells = synthetic_cells(streets=3, communities=2, tier3=3)

    def route(asked: pd.DataFrame) -> pd.DataFrame:
        # Odd unit grids by a rule to the first department, even ones to 人工派遣.
        odd = asked["unit_grid_code"].str[-1].astype(int) % 2 == 1
        dept = [deps[0] if o else None for o in odd]
        docs = [{"decision": decision_json(_rule_or_manual(d, t)), "duplicates": []}
                for d, t in zip(dept, asked["created_at"], strict=True)]  # fmt: skip
        return pd.DataFrame({"department": dept, "routing": docs}, index=asked.index)

    cases, steps = simulate(cells, deps, classes, days=60, seed=5, start="2025-09-15", rate=0.08, route=route,
                            node_hours=NODE_HOURS)  # fmt: skip
    decisions = dict(zip(cases["id"], cases["routing"], strict=True))
    dispatches = steps[steps["action"] == "dispatch"]
    seen = {"override": 0, "dispatcher": 0, "after_return": 0}
    for step in dispatches.to_dict("records"):
        stored = decisions[step["case_id"]]["decision"]
        own = routing.own_decision(decision_from_json(stored))
        details, dept = step["details"], step["department_code"]
        assert details["department"] == dept
        if own.queue == "auto" and dept == own.department:
            assert details["routing_basis"] == "routing"
            assert dispatch_basis(stored, step) == own.explanation
            seen["after_return"] += "returned_by" in details
            continue
        # A dispatcher's choice: recorded on the case's decision, the step naming it.
        assert details["routing_basis"] == "override"
        choice = stored["overrides"][details["override_index"]]
        at = step["at"].to_pydatetime().astimezone(routing.LOCAL_TZ)
        if own.queue == "auto":  # 改派, with the reason written in the step
            assert details["reason"] in OVERRIDE_REASONS
            assert choice == {
                "source": "override", "department": dept, "by": step["actor"], "at": at.isoformat(),
                "reason": details["reason"],
                "explanation": f"派遣员改派: {dept}, 由 {step['actor']} 改派 ({at:%Y-%m-%d %H:%M}), "
                               f"原因: {details['reason']}; 原判断: {own.explanation}",
            }  # fmt: skip
        else:  # 人工派遣
            assert (choice["source"], choice["department"], choice["by"]) == ("dispatcher", dept, step["actor"])
            assert choice["explanation"].startswith(f"人工派遣: {dept}, 由 {step['actor']} 选定")
        seen[choice["source"]] += 1
        # What its 交办单 prints as 派遣依据: this dispatch's own choice, naming its own department.
        assert dispatch_basis(stored, step) == choice["explanation"]
    assert seen["override"] > 10 and seen["dispatcher"] > 100 and seen["after_return"] > 10
    # A 改派 returned and re-dispatched as suggested: the routing's own decision holds again, the 改派 still listed.
    returned = steps.loc[steps["action"] == "return", "case_id"]
    ruled = [decisions[c]["decision"] for c in returned if decisions[c]["decision"]["rule_id"] == "R001"]
    assert ruled and all(
        d["source"] == "rule" and d["department"] == deps[0] and len(d["overrides"]) == 1 for d in ruled
    )


def test_planted_codes_must_be_loaded_codes_of_their_kind_s_level() -> None:
    """review17 item 6: unknown or wrong-level codes planted nothing, silently; now each one is refused at once."""
    cells = synthetic_cells(1, 1, 1)
    plant = {"selective": ["99999999999999"], "escalation": ["41990100100101", "419901001"]}
    with pytest.raises(InvalidInput) as err:
        simulate(cells, ["a", "b"], ["06010"], days=5, seed=1, start="2025-01-01", plant=plant,
                 node_hours=NODE_HOURS)  # fmt: skip
    assert err.value.message == (
        "plant: selective=99999999999999: not a loaded tier-3 grid code; "
        "escalation=41990100100101: a tier-3 grid code, not a street code "
        "(selective takes tier-3 grid codes, overload takes tier-3 grid codes, escalation takes street codes, "
        "paper_closure takes unit grid codes)"
    )
    assert [(p["kind"], p["value"]) for p in err.value.detail] == [
        ("selective", "99999999999999"),
        ("escalation", "41990100100101"),
    ]


def test_a_kind_planted_twice_plants_the_codes_of_both() -> None:
    """review21 #5: ``--plant selective=A,selective=B`` planted only B, silently; now the codes are combined."""
    from gisgrid.cli.evaluation import parse_plant

    t1, t2 = "41990100100101", "41990100100102"
    plant = parse_plant(f" selective={t1} , overload={t2},selective={t2};{t1};{t2}")
    assert plant == {"selective": [t1, t2], "overload": [t2]}
    sim = simulate(synthetic_cells(1, 1, 2), ["a", "b"], ["06010"], days=5, seed=1, start="2025-01-01", plant=plant,
                 node_hours=NODE_HOURS)  # fmt: skip
    assert sim.truth == {"selective": [t1, t2], "overload": [t2], "escalation": [], "paper_closure": []}
    with pytest.raises(InvalidInput, match=r"^--plant: 'selective=' names no code \(KIND=CODE;CODE\)$"):
        parse_plant(f"selective={t1},selective=")


def test_simulated_people_read_as_people() -> None:
    """Demo timelines name people, not codes: 监督员 get distinct fictitious names (the evaluation tells them apart
    by name), a department's steps are signed by the department's name when the departments come with names."""
    names = person_names(100 * 50 * 50)
    assert len(set(names)) == len(names) and list(names[:2]) == ["萧峰刚", "任辉宁"]
    assert all(len(n) == 3 for n in names[:1000])
    with pytest.raises(InvalidInput, match="at most 250000 distinct names"):
        person_names(250_001)
    classes, deps, _ = catalogue()
    named = pd.DataFrame({"code": deps, "name": [f"部门{i}" for i in range(len(deps))]})
    sim = simulate(synthetic_cells(2, 2, 2), named, classes, days=20, seed=3, start="2025-09-15", rate=0.08,
                   node_hours=NODE_HOURS)  # fmt: skip
    t = sim.transitions
    by_department = t.loc[t["role"] == "department", "actor"]
    assert len(by_department) and set(by_department) <= set(named["name"])
    patrols = t.loc[(t["action"] == "report") & (t["role"] == "supervisor"), "actor"]
    assert len(patrols) and patrols.str.fullmatch(r"[\u4e00-\u9fff]{3}").all()
    by_codes = simulate(synthetic_cells(2, 2, 2), deps, classes, days=20, seed=3, start="2025-09-15", rate=0.08,
                   node_hours=NODE_HOURS)  # fmt: skip
    assert set(by_codes.transitions.loc[by_codes.transitions["role"] == "department", "actor"]) <= set(deps)


def test_extensions_are_requested_within_the_disposal_deadline() -> None:
    """The live service refuses a 延期申请 after the 处置 deadline (review40 D2): the simulation makes none, every
    request at or before the deadline the 派遣 before it set (the class's limit, working time from the 派遣)."""
    sim = small()
    events = load_event_catalogue(Settings())
    cases = sim.cases.set_index("id")
    t = sim.transitions.sort_values(["case_id", "at", "id"])
    requests = t[t["action"] == "request_extension"]
    assert len(requests) > 10
    for r in requests.itertuples():
        log = t[(t["case_id"] == r.case_id) & (t["at"] <= r.at)]
        dispatch_at = log.loc[log["action"] == "dispatch", "at"].iloc[-1].to_pydatetime()
        case = cases.loc[r.case_id]
        limit = events.limit(case["scheme"], case["class_code"], case["disposal_type"])
        due = CAL.add_working_time(dispatch_at, limit.limit, limit.unit)
        assert r.at.to_pydatetime() <= due, (r.case_id, r.at, due)


def _verify_hours(sim: Simulation) -> pd.Series:
    """Working hours from 发核实 to 核实 per case, keyed by its report (time and place: ids follow the order of
    reports, which a recurrence after another close time shifts)."""
    t = sim.transitions
    report = sim.cases.set_index("id")[["created_at", "lon", "lat"]]
    clock = WorkClock(CAL, pd.Timestamp("2025-09-01").date(), pd.Timestamp("2026-01-31").date())
    asked = t[t["action"] == "request_verify"].set_index("case_id")["at"]
    done = t[t["action"] == "verify"].set_index("case_id")["at"]
    both = asked.index.intersection(done.index)
    us = clock.position(pd.DatetimeIndex(done[both])) - clock.position(pd.DatetimeIndex(asked[both]))
    return pd.Series(us / 3_600_000_000, index=pd.MultiIndex.from_frame(report.loc[both])).sort_index()


def test_node_limits_come_from_the_loaded_catalogue(tmp_path: Path) -> None:
    """review42 D5: the simulation draws each node's time against the city's node file as loaded (no copy of it in
    code): a city's 核实 of 2 working hours (base 1) doubles every simulated 核实, on-time or late alike."""
    nodes = tmp_path / "city_nodes.csv"
    nodes.write_text(
        "node,name,limit,unit,evidence\nverify,核实,2,working_hours,L\ncheck,核查,1,working_days,L\n", encoding="utf-8"
    )
    city = node_hours_from_catalogue(load_event_catalogue(Settings(), [nodes]), CAL.hours.hours_per_day)
    assert city == {**NODE_HOURS, "verify": 2.0, "check": 7.5}
    assert NODE_HOURS == {"accept": 0.25, "verify": 1.0, "file": 0.5, "dispatch": 0.5, "check": 2.0, "close": 1.0}
    classes, deps, _ = catalogue()
    kw: dict = {"days": 30, "seed": 9, "start": "2025-09-15", "rate": 0.08}
    base = simulate(synthetic_cells(2, 2, 2), deps, classes, node_hours=NODE_HOURS, **kw)
    edited = simulate(synthetic_cells(2, 2, 2), deps, classes, node_hours=city, **kw)
    before, after = _verify_hours(base), _verify_hours(edited)
    same = before.index.intersection(after.index)  # all but the last days' cases (cut at the end) and recurrences
    assert len(same) > 0.95 * len(before) > 300
    before, after = before[same], after[same]
    assert np.abs(after - 2 * before).max() < 1e-6  # exactly twice (to the microsecond)
    assert ((before > 1.0) == (after > 2.0)).all()  # the same cases late against their limit
    with pytest.raises(InvalidInput, match=r"^simulate: node_hours lacks node\(s\) check, close$"):
        simulate(synthetic_cells(1, 1, 1), deps, classes, node_hours={"accept": 1, "verify": 1, "file": 1,
                 "dispatch": 1}, **kw)  # fmt: skip


def test_a_class_whose_default_type_is_urgent_is_not_simulated() -> None:
    """The simulated cases are not urgent: a class whose default type is (占用消防通道, round the clock) would be
    judged by the urgent limits and every one of its simulated cases come out late (review48 F1)."""
    events = load_event_catalogue(Settings())
    classes, _, _ = catalogue()
    urgent = {code for code in events.classes("gbt47678") if events.limit("gbt47678", code).urgent}
    assert urgent == {"09012"} and urgent.isdisjoint(classes["code"])
    assert len(classes) == len(events.classes("gbt47678")) - 1
