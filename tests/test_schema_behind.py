"""``gisgrid db downgrade`` under a running server (review43 D6): the downgrade names the other sessions and
counts what it drops before it asks; the server's requests on the older schema answer the 503 family
(``database_error``, reason ``schema_behind``, naming ``gisgrid db upgrade``), not 500."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from typer.testing import CliRunner

from api.main import create_app
from gisgrid import case_intake
from gisgrid import cases as svc
from gisgrid.cli import app
from gisgrid.settings import Settings
from gisgrid.storage import migrate
from gisgrid.storage.database import drop_database, ensure_postgis, make_engine
from tests.conftest import new_database
from tests.fixtures import load_small_district
from tests.test_cases import GARBAGE
from tests.test_components_store import inside_points

runner = CliRunner()
INTAKE = {"X-Role": "intake", "X-Actor": "behind-test"}


@pytest.fixture
def own_db(server_url: URL, tmp_path: Path) -> Iterator[tuple[URL, Settings]]:
    """A database of its own, at head, with the small district and one case (downgraded by the test)."""
    url = new_database(server_url, "gisgrid_behind")
    engine = make_engine(url)
    try:
        ensure_postgis(engine)
        migrate.upgrade(url)
        load_small_district(engine, tmp_path)
        settings = Settings(database_url=url.render_as_string(hide_password=False), data_dir=tmp_path / "data")
        services = svc.load_services(settings)
        svc.sync_reference_data(engine, services)
        xs, ys = inside_points(1, seed=43)
        item = case_intake.Intake(
            class_code=GARBAGE,
            lon=float(xs[0]),
            lat=float(ys[0]),
            datum="cgcs2000",
            external_ref="12345-0001",
            idempotency_key="K-1",
        )
        case_intake.intake(engine, services, item)
        engine.dispose()
        yield url, settings
    finally:
        engine.dispose()
        drop_database(server_url, url.database or "")


def _connected(url: URL, n: int) -> tuple[Engine, list[object]]:
    """``n`` idle sessions on the database, as a running server holds."""
    engine = make_engine(url)
    conns = [engine.connect() for _ in range(n)]
    for c in conns:
        c.execute(text("SELECT 1"))  # type: ignore[attr-defined]
        c.commit()  # type: ignore[attr-defined]
    return engine, conns


def test_db_downgrade_names_the_other_sessions_and_counts_what_it_drops(own_db: tuple[URL, Settings]) -> None:
    url, _ = own_db
    env = {"GISGRID_DATABASE_URL": url.render_as_string(hide_password=False)}
    lines = [
        f"warning: 2 other session(s) connected to database {url.database} (a running gisgrid serve? it answers "
        "503 schema_behind until gisgrid db upgrade)",
        "reverting 0024 drops cases.hours_counted: 1 values",  # the fixture's one case, filed by the intake
        "reverting 0022 drops retired_unit_grids: 0 rows",
        "reverting 0021 drops admin_units.grid_seq_issued: 6 values",  # the small district's units with grids
        "reverting 0020 drops component_history.reason: 0 values",
        "reverting 0019 drops cases.accuracy_m: 0 values",
        "reverting 0018 drops case_documents.transition_id: 0 values",
        "reverting 0017 drops case_transitions.idempotency_fingerprint: 0 values, "
        "case_transitions.idempotency_key: 0 values",
        "reverting 0016 drops cases.external_ref: 1 values",
    ]
    engine, conns = _connected(url, 2)
    try:
        refused = runner.invoke(app, ["db", "downgrade", "0015"], env=env, input="n\n")
        assert refused.exit_code == 1
        assert refused.output == "\n".join(
            [
                *lines,
                "downgrading to 0015 drops tables or columns and the data in them (reverting migrations 0024, 0022, "
                "0021, 0020, 0019, 0018, 0017, 0016). Continue? [y/N]: n",
                "Aborted.",
                "",
            ]
        )
        assert migrate.current(url) == migrate.head()
        done = runner.invoke(app, ["db", "downgrade", "0015", "--yes"], env=env)
        assert (done.exit_code, done.output) == (0, "\n".join([*lines, "at revision 0015", ""]))
    finally:
        for c in conns:
            c.close()  # type: ignore[attr-defined]
        engine.dispose()
    # alone on the database, down past columns of other migrations: no warning, each counted
    step = runner.invoke(app, ["db", "downgrade", "0011", "--yes"], env=env)
    assert (step.exit_code, step.output) == (
        0,
        "reverting 0012 drops cases.idempotency_fingerprint: 1 values\nat revision 0011\n",
    )


def test_requests_on_a_downgraded_schema_answer_503_schema_behind(
    own_db: tuple[URL, Settings], caplog: pytest.LogCaptureFixture
) -> None:
    url, settings = own_db
    xs, ys = inside_points(1, seed=44)
    with TestClient(create_app(settings)) as client, caplog.at_level(logging.WARNING, logger="gisgrid.api"):
        assert client.get("/cases", headers=INTAKE).status_code == 200
        migrate.downgrade(url, "0015")  # under the running server, as gisgrid db downgrade 0015 -y
        answers = {
            "GET /cases": client.get("/cases", headers=INTAKE),  # the sync engine (psycopg2)
            "POST /cases": client.post(  # intake (asyncpg)
                "/cases", json={"class_code": GARBAGE, "lon": float(xs[0]), "lat": float(ys[0])}, headers=INTAKE
            ),
        }
        for where, r in answers.items():
            assert r.status_code == 503, (where, r.text)
            body = r.json()
            ref = body["ref"]
            assert body == {
                "error": "database_error",
                "reason": "schema_behind",
                "detail": "the database schema is behind this version of gisgrid (a column or table it uses is "
                f"missing): run `gisgrid db upgrade` (reference {ref})",
                "ref": ref,
            }
            logged = [rec.getMessage() for rec in caplog.records if ref in rec.getMessage()]
            assert len(logged) == 1 and logged[0].startswith(f"{where}: 503 database_error (schema_behind) ref={ref}: ")
            assert "UndefinedColumn" in logged[0] and "external_ref" in logged[0]
