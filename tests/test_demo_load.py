"""`make demo` loads Z区: boundaries, ~38,000 unit grids, ~680 tier-3 grids with staff; a second load is a no-op."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from gisgrid import case_documents, case_intake, routing
from gisgrid import cases as svc
from gisgrid.demo import DEMO_DISTRICT_CODE
from gisgrid.demo_loader import DEMO_ROUTING_FILE, demo_settings, load_demo
from gisgrid.settings import Settings
from gisgrid.start_checks import check_stored_data
from gisgrid.storage import migrate
from gisgrid.storage.database import drop_database, ensure_postgis, make_engine
from tests.conftest import new_database


def test_demo_load_fills_the_district_and_is_idempotent(server_url: URL, tmp_path: Path) -> None:
    url = new_database(server_url, "gisgrid_demo")
    engine = make_engine(url)
    try:
        ensure_postgis(engine)
        migrate.upgrade(url)
        summary = load_demo(engine, tmp_path, echo=lambda _m: None, components=5_000, history_days=20)
        assert summary.startswith("demo district Z区 loaded: 137 units") and ", 5000 components, " in summary
        with engine.connect() as conn:
            levels = dict(conn.execute(text("SELECT level, count(*) FROM admin_units GROUP BY level")).all())
            cells = conn.execute(text("SELECT count(*), sum(area_m2) FROM unit_grids")).one()
            tiers = dict(conn.execute(text("SELECT tier, count(*) FROM management_grids GROUP BY tier")).all())
            unassigned = conn.execute(text("SELECT count(*) FROM unit_grids WHERE tier3_code IS NULL")).scalar()
            led = conn.execute(
                text("SELECT count(*) FROM management_grids WHERE tier = 3 AND leader_name IS NOT NULL")
            ).scalar()
            led_above = conn.execute(  # streets and communities have their 网格长: a 提级 names who takes it
                text("SELECT count(*) FROM management_grids WHERE tier < 3 AND leader_name IS NOT NULL")
            ).scalar()
            district_area = conn.execute(
                text("SELECT area_m2 FROM admin_units WHERE code = :c"), {"c": DEMO_DISTRICT_CODE}
            ).scalar()
        assert levels == {"district": 1, "street": 12, "community": 124}
        assert 37_000 <= cells[0] <= 40_000
        assert abs(cells[1] - district_area) / district_area < 1e-4  # the cells cover the district
        assert abs(district_area / 1e6 - 370) < 370 * 0.03
        assert tiers[1] == 12 and tiers[2] == 124 and 640 <= tiers[3] <= 720
        assert unassigned == 0 and led == tiers[3] and led_above == tiers[1] + tiers[2]
        with engine.connect() as conn:
            located = conn.execute(text("SELECT count(*) FROM components WHERE unit_grid_code IS NOT NULL")).scalar()
        assert located == 5_000  # every demo component sits in a unit grid
        with engine.connect() as conn:
            n_cases, open_with_clock, open_cases = conn.execute(
                text(
                    "SELECT count(*), count(*) FILTER (WHERE due_at IS NOT NULL AND state NOT IN "
                    "('closed','rejected','voided','suspended')), count(*) FILTER (WHERE state NOT IN "
                    "('closed','rejected','voided','suspended')) FROM cases"
                )
            ).one()
        assert n_cases > 500 and open_with_clock == open_cases > 0  # open cases show a traffic light
        _assert_history_is_routed_and_has_its_orders(engine)

        assert load_demo(engine, tmp_path, echo=lambda _m: None).startswith("demo district Z区 already loaded")
        # serve/db up without the demo's routing rules say so; with them (make demo) nothing is said.
        plain = Settings(database_url=engine.url.render_as_string(hide_password=False))
        assert check_stored_data(engine, svc.load_services(plain), plain).warnings == [
            f"the demo district Z区 (419901) is loaded but not its routing rules (R012–R015 in {DEMO_ROUTING_FILE}): "
            "its new cases go by the class rules only; add that file to GISGRID_CATALOGUE_EXTRA, as make demo does"
        ]
        demo = demo_settings(plain)
        assert check_stored_data(engine, svc.load_services(demo), demo).warnings == []
    finally:
        engine.dispose()
        drop_database(server_url, url.database or "")


def _assert_history_is_routed_and_has_its_orders(engine: Engine) -> None:
    """Every simulated case has the routing decision intake makes (派遣依据), and each 派遣/返工 its 交办单."""
    # The demo's own settings: its area rules (data/demo/routing_demo.csv) routed the history, as they route intake.
    settings = demo_settings(Settings(database_url=engine.url.render_as_string(hide_password=False)))
    services = svc.load_services(settings)
    with engine.connect() as conn:
        unrouted = conn.execute(
            text("SELECT count(*) FROM cases WHERE routing IS NULL OR routing->'duplicates' <> '[]'::jsonb")
        ).scalar()
        assert unrouted == 0
        # A closed case was handled where intake's routing sent it (a misdispatch was returned and re-dispatched).
        closed, astray = conn.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE department_code <> routing->'decision'->>'department') "
                "FROM cases WHERE state = 'closed' AND routing->'decision'->>'department' IS NOT NULL"
            )
        ).one()
        assert closed > 500 and astray == 0
        # The demo district's area rules (not in the base rules, review55 F1) routed its cases there.
        area_rules = (
            conn.execute(
                text(
                    "SELECT DISTINCT routing->'decision'->>'rule_id' FROM cases WHERE routing->'decision'->>'rule_id' "
                    "IN ('R012', 'R013', 'R014', 'R015') ORDER BY 1"
                )
            )
            .scalars()
            .all()
        )
        assert area_rules == ["R012", "R013", "R014", "R015"]
        # The decision is the one intake makes for the same report (class, point, time, nearest component): one
        # case of each source (a component owner only where a demo component happens to lie within 30 m).
        sample = conn.execute(
            text(
                "SELECT DISTINCT ON (routing->'decision'->>'source') id, class_code, ST_X(geom), ST_Y(geom), "
                "created_at, routing, component_id FROM cases ORDER BY routing->'decision'->>'source', id"
            )
        ).all()
    assert {r[5]["decision"]["source"] for r in sample} >= {"rule", "class_default"}
    for _id, cls, lon, lat, created, routing_, component in sample:
        item = case_intake.Intake(
            class_code=cls, lon=lon, lat=lat, datum="cgcs2000", source="patrol", reporter_role="supervisor"
        )
        new_id, _ = case_intake.intake(engine, services, item, now=created)
        with engine.connect() as conn:
            again = conn.execute(text("SELECT routing, component_id FROM cases WHERE id = :i"), {"i": new_id}).one()
            conn.execute(text("DELETE FROM case_transitions WHERE case_id = :i"), {"i": new_id})
        # (the routing's own decision: a 改派 of the simulated dispatcher is kept beside it, as the live 派遣 keeps it)
        own = routing.own_decision(svc.decision_from_json(routing_["decision"]))
        assert again[0]["decision"] == svc.decision_json(own) and again[1] == component
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM cases WHERE id > (SELECT max(case_id) FROM case_documents)"))
    with engine.connect() as conn:
        # One 交办单 per 派遣/返工 and one 督办单 per 督办, in log order, numbered and signed as the service does.
        steps = conn.execute(
            text(
                """
                SELECT t.case_id, c.case_no, t.action, t.at, t.actor, t.department_code, t.details->>'reason',
                       row_number() OVER (PARTITION BY t.case_id, t.action = 'supervise' ORDER BY t.at, t.id)
                FROM case_transitions t JOIN cases c ON c.id = t.case_id
                WHERE t.action IN ('dispatch', 'rework', 'supervise') ORDER BY t.case_id, t.at, t.id
                """
            )
        ).all()
        docs = conn.execute(
            text(
                "SELECT case_id, kind, number, issued_at, issued_by, department_code, reason, due_at "
                "FROM case_documents ORDER BY case_id, issued_at, id"
            )
        ).all()
        # each order names the step that issued it (of its case, at its time, of its kind)
        unlinked = conn.execute(
            text(
                "SELECT count(*) FROM case_documents d LEFT JOIN case_transitions t ON t.id = d.transition_id "
                "WHERE t.id IS NULL OR t.case_id <> d.case_id OR t.at <> d.issued_at "
                "OR (t.action = 'supervise') <> (d.kind = 'supervision')"
            )
        ).scalar_one()
        open_dispatched = conn.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM case_documents d "
                "WHERE d.case_id = c.id AND d.kind = 'dispatch')) FROM cases c WHERE state = 'dispatched'"
            )
        ).one()
    expected, dispatcher = [], {}
    for case_id, case_no, action, at_, actor, dept, reason, n in steps:
        if action == "dispatch":
            dispatcher[case_id] = actor
        # a 返工's 交办单 is signed by the case's last dispatcher (the 指挥中心), not the supervisor
        issuer = dispatcher.get(case_id, actor) if action == "rework" else actor
        kind = "supervision" if action == "supervise" else "dispatch"
        expected.append((case_id, kind, f"{'DB' if kind == 'supervision' else 'JB'}{case_no}-{n:02d}", at_, issuer,
                         dept, reason))  # fmt: skip
    assert any(a == "rework" for _, _, a, *_ in steps)  # the record has rework orders to check
    assert [tuple(d[:7]) for d in docs] == expected
    assert any(d[2].endswith("-02") and d[6] == "核查未通过" for d in docs)  # a 返工 order with its reason
    assert all(d[7] is not None and d[7] > d[3] for d in docs)  # the deadline the order states
    assert open_dispatched[0] > 0 and open_dispatched[1] == open_dispatched[0]
    assert unlinked == 0
    _assert_dispatches_against_the_routing_are_dispatchers_choices(engine, services)


def _assert_dispatches_against_the_routing_are_dispatchers_choices(engine: Engine, services: svc.CaseServices) -> None:
    """Review D1: a simulated 派遣 to another department than the routing's (a misdispatch, later returned) was not
    recorded as a dispatcher's 改派, so its 交办单 named one department as 承办部门 and the routing's as 派遣依据."""
    with engine.connect() as conn:
        # Every 派遣 names its basis; one against the routing names a recorded choice for its own department.
        steps = conn.execute(
            text(
                """
                SELECT t.case_id, t.department_code, t.actor, t.details, c.routing->'decision'
                FROM case_transitions t JOIN cases c ON c.id = t.case_id WHERE t.action = 'dispatch'
                ORDER BY t.case_id, t.at, t.id
                """
            )
        ).all()
        chosen: dict[int, str] = {}
        for case_id, dept, actor, details, decision in steps:
            own = routing.own_decision(svc.decision_from_json(decision))
            if own.queue == "auto" and dept == own.department:
                assert details["routing_basis"] == "routing"
                continue
            assert details["routing_basis"] == "override"
            choice = decision["overrides"][details["override_index"]]
            assert (choice["department"], choice["by"]) == (dept, actor)
            if choice["source"] == "override":
                assert choice["reason"] == details["reason"] and choice["explanation"].startswith("派遣员改派: ")
                chosen.setdefault(case_id, dept)
        assert len(chosen) >= 3  # the history has 改派 to look at
        # The first 交办单 of such a case prints that 改派 as its 派遣依据, naming its own 承办部门.
        case_id, dept = next(iter(chosen.items()))
        doc_id = conn.execute(
            text("SELECT min(id) FROM case_documents WHERE case_id = :c AND kind = 'dispatch'"), {"c": case_id}
        ).scalar_one()
        page = case_documents.render_document(conn, services, case_id, doc_id)
    name = services.departments[dept]
    assert f"<td>{dept} {name}</td>" in page  # 承办部门
    assert f"派遣员改派: {routing.department_label(dept, name)}, 由 " in page
