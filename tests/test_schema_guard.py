"""Which commands migrate, and a schema this code cannot use (review46 F4, F5): only ``db up``, ``db upgrade``,
``serve`` and ``demo load`` migrate; every other command refuses a schema behind this code (a ``git pull``
followed by a clerk's ``cases list`` migrated production with no backup). A schema ahead of this code (migrated by
a newer gisgrid, then the code rolled back) is said in words, zh-CN first, not as alembic's "Can't locate
revision", and ``/health`` reports it as ``schema_ahead``, still ready."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import URL

from api.main import create_app
from gisgrid.settings import Settings
from gisgrid.storage import migrate
from gisgrid.storage.database import make_engine
from tests.fixtures import load_small_district
from tests.test_ops_settings import run_main

#: A revision no gisgrid has made yet: the schema of a newer version.
NEWER = "9921"


def _env(url: URL, tmp_path: Path) -> dict[str, str]:
    return {"GISGRID_DATABASE_URL": url.render_as_string(hide_password=False), "GISGRID_DATA_DIR": str(tmp_path)}


def _previous() -> str:
    down = migrate._script().get_revision(migrate.head()).down_revision
    assert isinstance(down, str)
    return down


def _set_revision(url: URL, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()


READ_COMMANDS = [
    ["cases", "list", "--limit", "1"],
    ["grids", "export", "--out", "/tmp/rev46f-never.gpkg"],
    ["boundaries", "list"],
]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_read_command_refuses_a_schema_behind_and_does_not_migrate_it(
    own_db: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    before, head = _previous(), migrate.head()
    migrate.downgrade(own_db, before)
    assert run_main(monkeypatch, capsys, *command, **_env(own_db, tmp_path)) == (
        1,
        f"error: 数据库结构落后(版本 {before},本程序需要 {head}):请先备份,再运行 gisgrid db up / the database schema "
        f"is behind (revision {before}, this code needs {head}) [schema_behind]: run gisgrid db up after a backup "
        "(docs/operations.md, Upgrades)\n",
    )
    assert migrate.current(own_db) == before  # left as it was: no silent migration
    assert not Path("/tmp/rev46f-never.gpkg").exists()


def test_db_up_migrates_a_schema_behind(
    own_db: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gisgrid.cli import main

    migrate.downgrade(own_db, _previous())
    with monkeypatch.context() as m:
        for key, value in _env(own_db, tmp_path).items():
            m.setenv(key, value)
        m.setattr(sys, "argv", ["gisgrid", "db", "up"])
        main()  # returns: exit 0
    assert migrate.current(own_db) == migrate.head()


def _ahead_message() -> str:
    head = migrate.head()
    return (
        f"error: 数据库结构比本程序新(版本 {NEWER},本程序只认识到 {head}):请安装生成该结构的 gisgrid 版本,"
        f"或恢复升级前的备份 / the database schema is newer than this code (revision {NEWER}, this gisgrid knows "
        f"up to {head}) "
        "[schema_ahead]: install the gisgrid version that migrated it, or restore the backup taken before that "
        "upgrade\n"
    )


@pytest.mark.parametrize(
    "command",
    [["cases", "list", "--limit", "1"], ["db", "up"], ["db", "upgrade"], ["db", "downgrade", "0019", "--yes"]],
    ids=lambda c: " ".join(c[:2]),
)
def test_a_schema_ahead_of_this_code_is_refused_in_words(
    own_db: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    _set_revision(own_db, NEWER)
    assert run_main(monkeypatch, capsys, *command, **_env(own_db, tmp_path)) == (1, _ahead_message())
    assert migrate.current(own_db) == NEWER


def test_serve_refuses_to_start_on_a_schema_ahead(
    own_db: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _set_revision(own_db, NEWER)
    env = _env(own_db, tmp_path)
    assert run_main(monkeypatch, capsys, "serve", "--port", "1", **env) == (1, _ahead_message())


def test_health_says_schema_ahead_and_stays_ready(own_db: URL, tmp_path: Path) -> None:
    """An old host during a rolling upgrade keeps serving: its readiness does not fail (a load balancer would take
    every old host out at once), and the warning says what happened."""
    settings = Settings(database_url=own_db.render_as_string(hide_password=False), data_dir=tmp_path)
    head = migrate.head()
    engine = make_engine(own_db)
    try:
        load_small_district(engine, tmp_path)  # ready but for the schema: grids to file reports in
    finally:
        engine.dispose()
    with TestClient(create_app(settings)) as c:
        assert c.get("/health").json()["status"] == "ok"
        _set_revision(own_db, NEWER)
        answer = c.get("/health")
        body = answer.json()
        assert (answer.status_code, body["status"], body["migration"]) == (
            200,
            "schema_ahead",
            {"current": NEWER, "head": head, "up_to_date": False},
        )
        assert body["warnings"] == [
            f"数据库结构比本程序新(版本 {NEWER},本程序只认识到 {head}):请升级本主机的 gisgrid,或恢复升级前的备份;"
            f"本进程继续服务,但重启将被拒绝 / the database schema is newer than this code (revision {NEWER}, this "
            f"gisgrid knows up to {head}): install the gisgrid version that migrated it on this host, or restore the "
            "backup; this process keeps serving, a restart of this version is refused"
        ]
        _set_revision(own_db, _previous())
        behind = c.get("/health")
        assert (behind.status_code, behind.json()["status"]) == (503, "migration_pending")
