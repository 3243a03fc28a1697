"""Schema by Alembic: up and down, GiST indexes made once, models in step with the migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from geoalchemy2 import alembic_helpers
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL

from gisgrid.errors import ConfigError
from gisgrid.storage import migrate
from gisgrid.storage.database import drop_database, ensure_postgis, make_engine
from gisgrid.storage.models import Base
from tests.conftest import new_database

TABLES = {
    "admin_units",
    "unit_grids",
    "management_grids",
    "departments",
    "components",
    "cases",
    "case_transitions",
    "component_history",
    "component_serials",
    "case_photos",
    "case_documents",
    "retired_unit_grids",
}


def test_upgrade_downgrade_upgrade(server_url: URL) -> None:
    url = new_database(server_url, "gisgrid_migr")
    engine = make_engine(url)
    try:
        ensure_postgis(engine)
        migrate.upgrade(url)
        assert migrate.current(url) == migrate.head()
        assert set(inspect(engine).get_table_names()) >= TABLES

        migrate.downgrade(url, "base")
        assert migrate.current(url) is None
        engine.dispose()
        assert not (TABLES & set(inspect(engine).get_table_names()))

        migrate.upgrade(url)
        assert migrate.current(url) == migrate.head()
    finally:
        engine.dispose()
        drop_database(server_url, url.database or "")


def test_each_geometry_column_has_exactly_one_gist_index(engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT tablename, count(*) FROM pg_indexes WHERE schemaname='public' "
                "AND indexdef LIKE '%USING gist (geom)%' GROUP BY tablename"
            )
        ).all()
    assert dict(rows) == {
        "admin_units": 1,
        "unit_grids": 1,
        "management_grids": 1,
        "components": 1,
        "component_cells": 1,
        "cases": 1,
        "retired_unit_grids": 1,
    }


def test_storage_srid_is_cgcs2000(engine) -> None:
    with engine.connect() as conn:
        srids = set(
            conn.execute(text("SELECT DISTINCT srid FROM geometry_columns WHERE f_table_schema='public'")).scalars()
        )
    assert srids == {4490}


def test_models_match_the_migrations(engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"include_object": alembic_helpers.include_object, "compare_type": True}
        )
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_case_numbers_move_to_yearly_sequences_and_back(server_url: URL) -> None:
    """0006: each year's counter carries over — the next number follows the last one handed out, both ways."""
    url = new_database(server_url, "gisgrid_migr_numbers")
    engine = make_engine(url)
    try:
        ensure_postgis(engine)
        migrate.upgrade(url, "0005")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO case_numbers (year, last) VALUES (2025, 41), (2026, 999999)"))
        migrate.upgrade(url)
        with engine.begin() as conn:
            taken = conn.execute(text("SELECT next_case_no(2025), next_case_no(2026), next_case_no(2027)")).one()
        assert tuple(taken) == ("2025000042", "20261000000", "2027000001")  # 7 digits past 999999, never cut
        migrate.downgrade(url, "0005")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT year, last FROM case_numbers ORDER BY year")).all()
        assert [tuple(r) for r in rows] == [(2025, 42), (2026, 1000000), (2027, 1)]
    finally:
        engine.dispose()
        drop_database(server_url, url.database or "")


def test_urgent_disposal_clocks_become_calendar_time_even_while_suspended(server_url: URL) -> None:
    """0009: an urgent case's running 处置 clock — or one paused by 挂账 while dispatched — is calendar time; the
    other clocks keep the working time they were given."""
    url = new_database(server_url, "gisgrid_migr_clock")
    engine = make_engine(url)
    try:
        ensure_postgis(engine)
        migrate.upgrade(url, "0008")
        rows = [  # (case_no, urgent, state, previous_state, node)
            ("2025000001", True, "dispatched", None, "disposal"),
            ("2025000002", True, "suspended", "dispatched", None),
            ("2025000003", True, "suspended", "filed", None),
            ("2025000004", True, "reported", None, "verify"),
            ("2025000005", False, "dispatched", None, "disposal"),
        ]
        with engine.begin() as conn:
            for no, urgent, state, previous, node in rows:
                conn.execute(
                    text(
                        "INSERT INTO cases (case_no, scheme, class_code, urgent, state, previous_state, node, source, "
                        "geom) VALUES (:n, 'gbt47678', '06013', :u, :s, :p, :node, 'patrol', "
                        "ST_SetSRID(ST_MakePoint(113.7, 34.75), 4490))"
                    ),
                    {"n": no, "u": urgent, "s": state, "p": previous, "node": node},
                )
        migrate.upgrade(url)
        with engine.connect() as conn:
            got = dict(conn.execute(text("SELECT case_no, node_calendar_time FROM cases")).all())
        assert got == {
            "2025000001": True,
            "2025000002": True,
            "2025000003": False,
            "2025000004": False,
            "2025000005": False,
        }
    finally:
        engine.dispose()
        drop_database(server_url, url.database or "")


def test_code_assigned_added_false_for_stored_units_and_dropped_on_downgrade(server_url: URL) -> None:
    """0011: units stored before it were not recorded as numbered (false); the column is NOT NULL DEFAULT false,
    and the downgrade removes it."""
    url = new_database(server_url, "gisgrid_migr_assigned")
    engine = make_engine(url)
    unit = (
        "INSERT INTO admin_units (code, name, level, geom) VALUES (:c, '测试区', 'district', "
        "ST_Multi(ST_MakeEnvelope(113.7, 34.7, 113.8, 34.8, 4490)))"
    )
    try:
        ensure_postgis(engine)
        migrate.upgrade(url, "0010")
        with engine.begin() as conn:
            conn.execute(text(unit), {"c": "419902"})
        migrate.upgrade(url, "0011")
        with engine.begin() as conn:
            conn.execute(text(unit), {"c": "419903"})  # a writer that does not name the column
            got = dict(conn.execute(text("SELECT code, code_assigned FROM admin_units")).all())
        assert got == {"419902": False, "419903": False}
        column = next(c for c in inspect(engine).get_columns("admin_units") if c["name"] == "code_assigned")
        assert (column["nullable"], column["default"]) == (False, "false")
        migrate.downgrade(url, "0010")
        engine.dispose()
        assert "code_assigned" not in {c["name"] for c in inspect(engine).get_columns("admin_units")}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM admin_units")).scalar_one() == 2
    finally:
        engine.dispose()
        drop_database(server_url, url.database or "")


def test_db_downgrade_asks_before_dropping_tables(server_url: URL) -> None:
    """`gisgrid db downgrade` that would drop tables or columns asks (or takes --yes); one losing nothing does not."""
    from typer.testing import CliRunner

    from gisgrid.cli import app

    runner = CliRunner()
    url = new_database(server_url, "gisgrid_down")
    engine = make_engine(url)
    env = {"GISGRID_DATABASE_URL": url.render_as_string(hide_password=False)}
    try:
        ensure_postgis(engine)
        migrate.upgrade(url)
        engine.dispose()  # no other session: no warning (test_schema_behind has one)

        refused = runner.invoke(app, ["db", "downgrade", "base"], env=env, input="n\n")
        assert refused.exit_code == 1
        assert refused.output == (
            "reverting 0024 drops cases.hours_counted: 0 values\n"
            "reverting 0022 drops retired_unit_grids: 0 rows\n"
            "reverting 0021 drops admin_units.grid_seq_issued: 0 values\n"
            "reverting 0020 drops component_history.reason: 0 values\n"
            "reverting 0019 drops cases.accuracy_m: 0 values\n"
            "reverting 0018 drops case_documents.transition_id: 0 values\n"
            "reverting 0017 drops case_transitions.idempotency_fingerprint: 0 values, "
            "case_transitions.idempotency_key: 0 values\n"
            "reverting 0016 drops cases.external_ref: 0 values\n"
            "reverting 0012 drops cases.idempotency_fingerprint: 0 values\n"
            "reverting 0011 drops admin_units.code_assigned: 0 values\n"
            "reverting 0010 drops case_photos.transition_id: 0 values\n"
            "reverting 0009 drops cases.node_calendar_time: 0 values\n"
            "reverting 0006 drops tables, columns or sequences (not counted)\n"
            "reverting 0004 drops component_cells: 0 rows\n"
            "reverting 0003 drops case_documents: 0 rows, case_photos: 0 rows, and more tables, columns or sequences "
            "(not counted)\n"
            "reverting 0002 drops component_serials: 0 rows, component_history: 0 rows, and more tables, columns or "
            "sequences (not counted)\n"
            "reverting 0001 drops admin_units: 0 rows, and more tables, columns or sequences (not counted)\n"
            "downgrading to base drops tables or columns and the data in them (reverting migrations 0024, 0022, 0021, "
            "0020, 0019, 0018, 0017, 0016, 0012, 0011, 0010, 0009, 0006, 0004, 0003, 0002, 0001). Continue? [y/N]: n\n"
            "Aborted.\n"
        )
        assert migrate.current(url) == migrate.head() and set(inspect(engine).get_table_names()) >= TABLES

        for command, target in (("downgrade", "9999"), ("upgrade", "9999"), ("downgrade", "abc")):
            unknown = runner.invoke(
                app, ["db", command, target, "--yes"] if command == "downgrade" else ["db", command, target], env=env
            )
            assert isinstance(unknown.exception, ConfigError), unknown.output  # main() prints it as one line
            assert unknown.exception.message.startswith(f"cannot {command} to {target!r}: "), unknown.exception.message
        assert migrate.current(url) == migrate.head()
        engine.dispose()
        step = runner.invoke(app, ["db", "downgrade", "0008", "--yes"], env=env)  # 0022 table, 0024, 0021…0009 columns
        assert (step.exit_code, step.output) == (
            0,
            "reverting 0024 drops cases.hours_counted: 0 values\n"
            "reverting 0022 drops retired_unit_grids: 0 rows\n"
            "reverting 0021 drops admin_units.grid_seq_issued: 0 values\n"
            "reverting 0020 drops component_history.reason: 0 values\n"
            "reverting 0019 drops cases.accuracy_m: 0 values\n"
            "reverting 0018 drops case_documents.transition_id: 0 values\n"
            "reverting 0017 drops case_transitions.idempotency_fingerprint: 0 values, "
            "case_transitions.idempotency_key: 0 values\n"
            "reverting 0016 drops cases.external_ref: 0 values\n"
            "reverting 0012 drops cases.idempotency_fingerprint: 0 values\n"
            "reverting 0011 drops admin_units.code_assigned: 0 values\n"
            "reverting 0010 drops case_photos.transition_id: 0 values\n"
            "reverting 0009 drops cases.node_calendar_time: 0 values\n"
            "at revision 0008\n",
        )
        quiet = runner.invoke(app, ["db", "downgrade", "0006"], env=env)  # 0008, 0007 drop no data: not asked
        assert (quiet.exit_code, quiet.output) == (0, "at revision 0006\n")

        agreed = runner.invoke(app, ["db", "downgrade", "base"], env=env, input="y\n")
        assert agreed.exit_code == 0 and agreed.output.endswith("Continue? [y/N]: y\nat revision base\n")
        engine.dispose()
        assert not (TABLES & set(inspect(engine).get_table_names()))
    finally:
        engine.dispose()
        drop_database(server_url, url.database or "")


def test_rework_orders_are_signed_by_the_last_dispatcher_and_back_on_downgrade(server_url: URL) -> None:
    """0014: a 返工's 交办单 stored with the supervisor who failed 核查 as issuer is signed by the actor of the
    case's last 派遣 before it; the first order and a 督办单 keep theirs; the downgrade puts the supervisor back."""
    url = new_database(server_url, "gisgrid_migr_issuer")
    engine = make_engine(url)
    try:
        ensure_postgis(engine)
        migrate.upgrade(url, "0013")
        with engine.begin() as conn:
            cid = conn.execute(
                text(
                    "INSERT INTO cases (case_no, scheme, class_code, state, source, geom) VALUES ('2026000001', "
                    "'gbt47678', '06010', 'dispatched', 'patrol', ST_SetSRID(ST_MakePoint(113.7, 34.75), 4490)) "
                    "RETURNING id"
                )
            ).scalar_one()
            steps = [  # (action, actor, role, at)
                ("dispatch", "派遣员钱七", "dispatcher", "2026-11-28 09:00+08"),
                ("return", "孙八", "department", "2026-11-28 09:30+08"),
                ("dispatch", "派遣员周九", "dispatcher", "2026-11-28 10:00+08"),
                ("rework", "监督员李四", "supervisor", "2026-11-28 11:00+08"),
                ("supervise", "领导吴一", "leader", "2026-11-28 12:00+08"),
            ]
            for action, actor, role, at in steps:
                conn.execute(
                    text(
                        "INSERT INTO case_transitions (case_id, action, to_state, actor, role, at) "
                        "VALUES (:c, :a, 'dispatched', :actor, :role, :at)"
                    ),
                    {"c": cid, "a": action, "actor": actor, "role": role, "at": at},
                )
            for kind, number, actor, at in [
                ("dispatch", "JB2026000001-01", "派遣员钱七", "2026-11-28 09:00+08"),
                ("dispatch", "JB2026000001-02", "派遣员周九", "2026-11-28 10:00+08"),
                ("dispatch", "JB2026000001-03", "监督员李四", "2026-11-28 11:00+08"),
                ("supervision", "DB2026000001-01", "领导吴一", "2026-11-28 12:00+08"),
            ]:
                conn.execute(
                    text(
                        "INSERT INTO case_documents (case_id, kind, number, issued_at, issued_by) "
                        "VALUES (:c, :k, :n, :at, :by)"
                    ),
                    {"c": cid, "k": kind, "n": number, "at": at, "by": actor},
                )

        def issuers() -> dict[str, str]:
            with engine.connect() as conn:
                return dict(conn.execute(text("SELECT number, issued_by FROM case_documents")).all())

        migrate.upgrade(url, "0014")
        assert issuers() == {
            "JB2026000001-01": "派遣员钱七",
            "JB2026000001-02": "派遣员周九",
            "JB2026000001-03": "派遣员周九",
            "DB2026000001-01": "领导吴一",
        }
        migrate.downgrade(url, "0013")
        assert issuers()["JB2026000001-03"] == "监督员李四"
    finally:
        engine.dispose()
        drop_database(server_url, url.database or "")


def test_orders_are_linked_to_the_log_steps_that_issued_them_and_unlinked_on_downgrade(server_url: URL) -> None:
    """0018: each stored 交办单/督办单 gets the issuing step of its kind and rank in the case's log (at, id) — the
    pairing the printed order used to make on every view; a step that issues nothing (回退) takes no order."""
    url = new_database(server_url, "gisgrid_migr_docstep")
    engine = make_engine(url)
    try:
        ensure_postgis(engine)
        migrate.upgrade(url, "0017")
        with engine.begin() as conn:
            cid = conn.execute(
                text(
                    "INSERT INTO cases (case_no, scheme, class_code, state, source, geom) VALUES ('2026000001', "
                    "'gbt47678', '06010', 'dispatched', 'patrol', ST_SetSRID(ST_MakePoint(113.7, 34.75), 4490)) "
                    "RETURNING id"
                )
            ).scalar_one()
            steps = [  # (action, effects, at) — the 督办 and the second 派遣 at the same second: log order is id
                ("dispatch", '["issue_dispatch_order"]', "2026-11-28 09:00+08"),
                ("return", "[]", "2026-11-28 09:30+08"),
                ("supervise", '["issue_supervision_order"]', "2026-11-28 10:00+08"),
                ("dispatch", '["issue_dispatch_order"]', "2026-11-28 10:00+08"),
                ("rework", '["record_rework", "issue_dispatch_order"]', "2026-11-28 11:00+08"),
            ]
            ids = [
                conn.execute(
                    text(
                        "INSERT INTO case_transitions (case_id, action, to_state, actor, role, at, effects) "
                        "VALUES (:c, :a, 'dispatched', '甲', 'dispatcher', :at, CAST(:e AS jsonb)) RETURNING id"
                    ),
                    {"c": cid, "a": action, "at": at, "e": effects},
                ).scalar_one()
                for action, effects, at in steps
            ]
            for kind, number in [
                ("dispatch", "JB2026000001-01"),
                ("supervision", "DB2026000001-01"),
                ("dispatch", "JB2026000001-02"),
                ("dispatch", "JB2026000001-03"),
            ]:
                conn.execute(
                    text("INSERT INTO case_documents (case_id, kind, number) VALUES (:c, :k, :n)"),
                    {"c": cid, "k": kind, "n": number},
                )
        migrate.upgrade(url, "0018")
        with engine.connect() as conn:
            linked = dict(conn.execute(text("SELECT number, transition_id FROM case_documents")).all())
        assert linked == {
            "JB2026000001-01": ids[0],
            "DB2026000001-01": ids[2],
            "JB2026000001-02": ids[3],
            "JB2026000001-03": ids[4],
        }
        migrate.downgrade(url, "0017")
        columns = {c["name"] for c in inspect(engine).get_columns("case_documents")}
        assert "transition_id" not in columns
    finally:
        engine.dispose()
        drop_database(server_url, url.database or "")


def test_retire_reasons_move_from_source_to_their_own_column_and_back_on_downgrade(server_url: URL) -> None:
    """0020 (review44 U5): a retirement's reason was stored as the history entry's source, a status out of 移除's
    appended to it (``api (…)#1``); they move to ``reason``, the source becoming ``api`` (``api#1``)."""
    before = ScriptDirectory.from_config(migrate.alembic_config("postgresql://x/y")).get_revision("0020").down_revision
    assert isinstance(before, str)
    url = new_database(server_url, "gisgrid_migr_reason")
    engine = make_engine(url)
    try:
        ensure_postgis(engine)
        migrate.upgrade(url, before)
        old = [
            ("create", "api"),
            ("retire", "道路改造拆除"),
            ("update", "api (修复后重新启用)#1"),
            ("update", "api#1"),
            ("update", "lamps.csv#7"),
        ]
        with engine.begin() as conn:
            for action, source in old:
                conn.execute(
                    text(
                        "INSERT INTO component_history (component_id, actor, action, source) "
                        "VALUES ('41990101037000001', '李娜', :a, :s)"
                    ),
                    {"a": action, "s": source},
                )

        def entries() -> list[tuple[str, ...]]:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT * FROM component_history ORDER BY id")).mappings().all()
            return [(r["action"], r["source"], *([r["reason"]] if "reason" in r else [])) for r in rows]

        migrate.upgrade(url, "0020")
        assert entries() == [
            ("create", "api", None),
            ("retire", "api", "道路改造拆除"),
            ("update", "api#1", "修复后重新启用"),
            ("update", "api#1", None),
            ("update", "lamps.csv#7", None),
        ]
        migrate.downgrade(url, before)
        assert entries() == old
    finally:
        engine.dispose()
        drop_database(server_url, url.database or "")


def test_units_remember_the_highest_unit_grid_number_issued_and_forget_it_on_downgrade(server_url: URL) -> None:
    """0021 (review47 F1): ``admin_units.grid_seq_issued`` starts at the highest seq of each unit's stored unit
    grids (0 for a unit without any); NOT NULL DEFAULT 0; the downgrade drops it, the units and cells stay."""
    url = new_database(server_url, "gisgrid_migr_seq")
    engine = make_engine(url)
    unit = (
        "INSERT INTO admin_units (code, name, level, parent_code, geom) VALUES (:c, :n, :l, :p, "
        "ST_Multi(ST_MakeEnvelope(113.7, 34.7, 113.8, 34.8, 4490)))"
    )
    cell = (
        "INSERT INTO unit_grids (code, unit_code, district_code, street_code, community_code, seq, row, col, "
        "area_m2, geom) VALUES (:c || lpad(CAST(:s AS text), 3, '0'), :c, '419902', '419902001', :c, :s, 0, :s, "
        "10000, ST_Multi(ST_MakeEnvelope(113.7, 34.7, 113.71, 34.71, 4490)))"
    )
    try:
        ensure_postgis(engine)
        migrate.upgrade(url, "0020")
        with engine.begin() as conn:
            for code, name, level, parent in (
                ("419902", "测试区", "district", None),
                ("419902001", "西城街道", "street", "419902"),
                ("419902001001", "桃园社区", "community", "419902001"),
                ("419902001002", "紫荆社区", "community", "419902001"),
            ):
                conn.execute(text(unit), {"c": code, "n": name, "l": level, "p": parent})
            for seq in (1, 2, 7):  # 003…006 removed by hand: the highest stored seq is what is known
                conn.execute(text(cell), {"c": "419902001001", "s": seq})
        migrate.upgrade(url, "0021")
        with engine.begin() as conn:
            conn.execute(text(unit), {"c": "419902002", "n": "东关街道", "l": "street", "p": "419902"})
            got = dict(conn.execute(text("SELECT code, grid_seq_issued FROM admin_units")).all())
        assert got == {"419902": 0, "419902001": 0, "419902001001": 7, "419902001002": 0, "419902002": 0}
        column = next(c for c in inspect(engine).get_columns("admin_units") if c["name"] == "grid_seq_issued")
        assert (column["nullable"], column["default"]) == (False, "0")
        migrate.downgrade(url, "0020")
        engine.dispose()
        assert "grid_seq_issued" not in {c["name"] for c in inspect(engine).get_columns("admin_units")}
        with engine.connect() as conn:
            counts = conn.execute(text("SELECT (SELECT count(*) FROM admin_units), (SELECT count(*) FROM unit_grids)"))
            assert tuple(counts.one()) == (5, 3)
    finally:
        engine.dispose()
        drop_database(server_url, url.database or "")


def test_retired_unit_grids_start_empty_go_with_their_unit_and_are_dropped_on_downgrade(server_url: URL) -> None:
    """0022: ``retired_unit_grids`` (code, unit, seq, row, col, boundary, when retired) starts empty — nothing was
    remembered before — and a row goes with its unit (ON DELETE CASCADE); the downgrade drops the table, counting
    its rows, the units and cells stay."""
    url = new_database(server_url, "gisgrid_migr_retired")
    engine = make_engine(url)
    box = "ST_Multi(ST_MakeEnvelope(113.7, 34.7, 113.71, 34.71, 4490))"
    unit = f"INSERT INTO admin_units (code, name, level, parent_code, geom) VALUES (:c, :n, :l, :p, {box})"
    try:
        ensure_postgis(engine)
        migrate.upgrade(url, "0021")
        with engine.begin() as conn:
            for code, name, level, parent in (
                ("419902", "测试区", "district", None),
                ("419902001", "西城街道", "street", "419902"),
                ("419902001001", "桃园社区", "community", "419902001"),
                ("419902001002", "紫荆社区", "community", "419902001"),
            ):
                conn.execute(text(unit), {"c": code, "n": name, "l": level, "p": parent})
            conn.execute(
                text(
                    "INSERT INTO unit_grids (code, unit_code, district_code, street_code, community_code, seq, row, "
                    "col, area_m2, geom) VALUES ('419902001001002', '419902001001', '419902', '419902001', "
                    f"'419902001001', 2, 0, 1, 10000, {box})"
                )
            )
        migrate.upgrade(url, "0022")
        columns = {c["name"]: c for c in inspect(engine).get_columns("retired_unit_grids")}
        assert list(columns) == ["code", "unit_code", "seq", "row", "col", "geom", "retired_at"]
        assert not any(c["nullable"] for c in columns.values())
        retire = (
            "INSERT INTO retired_unit_grids (code, unit_code, seq, row, col, geom) "
            f"VALUES (:c || '001', :c, 1, 0, 0, {box})"
        )
        with engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM retired_unit_grids")).scalar_one() == 0
            for code in ("419902001001", "419902001002"):
                conn.execute(text(retire), {"c": code})
            conn.execute(text("DELETE FROM admin_units WHERE code = '419902001002'"))
            rows = conn.execute(text("SELECT code, retired_at IS NOT NULL FROM retired_unit_grids")).all()
        assert [tuple(r) for r in rows] == [("419902001001001", True)]  # the removed unit's went with it

        assert migrate.downgrade_losses(url, "0021") == ["reverting 0022 drops retired_unit_grids: 1 rows"]
        migrate.downgrade(url, "0021")
        engine.dispose()
        assert "retired_unit_grids" not in inspect(engine).get_table_names()
        with engine.connect() as conn:
            counts = conn.execute(text("SELECT (SELECT count(*) FROM admin_units), (SELECT count(*) FROM unit_grids)"))
            assert tuple(counts.one()) == (3, 1)
    finally:
        engine.dispose()
        drop_database(server_url, url.database or "")
