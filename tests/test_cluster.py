"""The embedded cluster through the ``gisgrid db`` commands, as an operator runs them."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import text

from gisgrid.errors import ConfigError
from gisgrid.settings import Settings
from gisgrid.storage import cluster as cluster_module
from gisgrid.storage import database as database_module
from gisgrid.storage import migrate
from gisgrid.storage.cluster import APP_ROLE, TRUST_WARNING, Cluster, is_root
from gisgrid.storage.database import make_engine, prepare_database
from tests.fixtures import reserved_port

GISGRID = [sys.executable, "-m", "gisgrid"]


def run_cli(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GISGRID_")}
    environ.update(GISGRID_DATA_DIR=str(data_dir), **env)
    return subprocess.run([*GISGRID, *args], capture_output=True, text=True, env=environ, timeout=180)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data folder the postgres OS user can reach (pytest's own tmp is 0700 when root)."""
    d = Path(tempfile.mkdtemp(prefix="gisgrid-cluster-"))
    d.chmod(0o755)
    yield d
    Cluster(Settings(data_dir=d)).destroy()
    shutil.rmtree(d, ignore_errors=True)


def test_db_up_twice_is_idempotent_then_down_and_status(data_dir: Path) -> None:
    first = run_cli("db", "up", data_dir=data_dir)
    assert first.returncode == 0, first.stderr
    assert "initialising PostgreSQL" in first.stdout
    assert "database ready" in first.stdout
    cluster = Cluster(Settings(data_dir=data_dir))
    port = cluster.port()
    assert (data_dir / "pg" / "PG_VERSION").exists()

    second = run_cli("db", "up", data_dir=data_dir)
    assert second.returncode == 0, second.stderr
    assert "initialising" not in second.stdout  # reused, not re-made
    assert cluster.port() == port

    status = run_cli("db", "status", data_dir=data_dir)
    assert status.stdout.startswith("running:") and f"port {port}" in status.stdout
    # A new cluster asks for a password (made at initdb, kept 0600 beside pg/); people see it masked.
    password = (data_dir / "pg.password").read_text().strip()
    assert len(password) >= 32 and (data_dir / "pg.password").stat().st_mode & 0o777 == 0o600
    # The web service's own role (review54 F1), made with the cluster: its password 0600 beside.
    assert f"created the service's database role {APP_ROLE}" in first.stdout
    assert (data_dir / "pg_app.password").stat().st_mode & 0o777 == 0o600
    head = migrate.head()
    first, migration = status.stdout.splitlines()
    assert first.endswith(f"→ postgresql+psycopg2://gisgrid:***@127.0.0.1:{port}/gisgrid")
    assert migration == f"结构版本 {head},为最新 / migration {head}: up to date"  # against this code's (review50 F6)
    assert password not in status.stdout and status.stderr == ""  # and no trust warning
    url = run_cli("db", "url", data_dir=data_dir)
    assert url.stdout.strip() == f"postgresql+psycopg2://gisgrid:{password}@127.0.0.1:{port}/gisgrid"
    assert not _lets_in_without_the_password(port)
    engine = make_engine(cluster.url())  # the project's URL (tests/conftest.py connects this way too)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_user").scalar_one() == "gisgrid"
    finally:
        engine.dispose()

    assert run_cli("db", "down", data_dir=data_dir).stdout.strip() == "stopped"
    assert run_cli("db", "status", data_dir=data_dir).stdout.startswith("stopped:")
    assert run_cli("db", "down", data_dir=data_dir).stdout.strip() == "not running"
    # Stopped for a backup or a restore: a command that only uses the cluster leaves it stopped and says so.
    for command in (["cases", "list", "--limit", "1"], ["grids", "export", "--out", str(data_dir / "g.gpkg")]):
        refused = run_cli(*command, data_dir=data_dir)
        assert (refused.returncode, refused.stdout, refused.stderr) == (
            1,
            "",
            f"error: 嵌入式数据库集群已停止 / the embedded cluster in {cluster.datadir} is stopped: start it with "
            "gisgrid db up (only db up, serve and demo load start it — it may have been stopped for a backup or "
            "a restore); nothing started\n",
        ), refused
    assert not cluster.running() and not (data_dir / "g.gpkg").exists()

    with socket.socket() as taken:  # its port taken while it was down: it moves (GISGRID_DB_PORT unset)
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the old connections' TIME_WAIT
        taken.bind(("127.0.0.1", port))
        taken.listen()
        again = run_cli("db", "up", data_dir=data_dir)  # restart keeps the data
    assert again.returncode == 0 and "initialising" not in again.stdout
    moved = cluster.port()
    assert moved != port and f"the cluster's previous port is taken; moving it to {moved}" in again.stdout
    conf = (cluster.datadir / "postgresql.conf").read_text()
    assert re.findall(r"^port\s*=.*$", conf, flags=re.M) == [f"port = {moved}"]  # one line, not one per move


def test_a_command_that_only_uses_the_database_makes_no_cluster(data_dir: Path) -> None:
    refused = run_cli("cases", "list", data_dir=data_dir)
    assert (refused.returncode, refused.stderr) == (
        1,
        f"error: 没有嵌入式数据库集群 / there is no embedded cluster in {data_dir} (GISGRID_DATA_DIR; "
        "GISGRID_DATABASE_URL is not set): make one with gisgrid db up; nothing started\n",
    )
    assert list(data_dir.iterdir()) == []


def _lets_in_without_the_password(port: int) -> bool:
    """A local user who does not know the password (a wrong one: libpq would otherwise look for ~/.pgpass)."""
    try:
        psycopg2.connect(host="127.0.0.1", port=port, user="gisgrid", password="wrong", dbname="postgres").close()
    except psycopg2.OperationalError as exc:
        assert "password authentication failed" in str(exc)
        return False
    return True


def test_db_secure_gives_a_trust_cluster_a_password(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cluster made before passwords (trust) keeps working, is warned about, and `gisgrid db secure` fixes it."""
    settings = Settings(data_dir=data_dir)
    with monkeypatch.context() as m:
        m.setattr(cluster_module, "AUTH_METHOD", "trust")  # initdb as earlier versions ran it
        prepare_database(settings, echo=lambda _m: None, check=False, create=True)
    (data_dir / "pg.password").unlink()
    cluster = Cluster(settings)
    port = cluster.port()
    assert port is not None and cluster.trusts_local_users() and _lets_in_without_the_password(port)

    status = run_cli("db", "status", data_dir=data_dir)
    assert status.returncode == 0 and status.stdout.startswith("running:")
    assert status.stdout.splitlines()[0].endswith(f"→ postgresql+psycopg2://gisgrid@127.0.0.1:{port}/gisgrid")
    assert status.stderr == f"warning: {TRUST_WARNING}\n"

    secured = run_cli("db", "secure", data_dir=data_dir)
    assert secured.returncode == 0, secured.stderr
    password = (data_dir / "pg.password").read_text().strip()
    assert (data_dir / "pg.password").stat().st_mode & 0o777 == 0o600
    assert secured.stdout.splitlines() == [
        f"password set (kept in {data_dir / 'pg.password'}); pg_hba.conf now asks for it (scram-sha-256)",
        f"secured: postgresql+psycopg2://gisgrid:***@127.0.0.1:{port}/gisgrid",
    ]
    assert not cluster.trusts_local_users() and not _lets_in_without_the_password(port)
    assert cluster.url() == f"postgresql+psycopg2://gisgrid:{password}@127.0.0.1:{port}/gisgrid"
    engine = make_engine(cluster.url())
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        engine.dispose()
    assert run_cli("db", "status", data_dir=data_dir).stderr == ""  # no warning any more
    again = run_cli("db", "secure", data_dir=data_dir)
    assert again.stdout.strip() == "already password-protected: nothing to do"
    # After a restart it still asks for the password (pg_hba.conf itself changed, not just the running server).
    assert run_cli("db", "down", data_dir=data_dir).returncode == 0
    assert run_cli("db", "up", data_dir=data_dir).returncode == 0
    assert not _lets_in_without_the_password(port)


def test_db_up_gives_an_earlier_versions_cluster_the_runtime_role(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review54 F1: a cluster (and database) made before the runtime role gets it on its next `db up`: the role, its
    password file (0600), its grants, the SECURITY DEFINER case-number function; the next `db up` keeps them."""
    settings = Settings(data_dir=data_dir)
    with monkeypatch.context() as m:  # db up as earlier versions ran it: no runtime role, no grants
        m.setattr(Cluster, "ensure_app_role", lambda self, echo=print: False)
        m.setattr(database_module, "grant_runtime", lambda settings, url, echo=print: None)
        prepare_database(settings, echo=lambda _m: None, migrate=True, create=True)
    cluster = Cluster(settings)
    owner = make_engine(cluster.url())

    def state() -> tuple[object, ...]:
        with owner.connect() as conn:
            return tuple(
                conn.execute(
                    text(
                        "SELECT (SELECT (rolsuper, rolcreatedb, rolcreaterole, rolcanlogin)::text FROM pg_roles "
                        "WHERE rolname = :role), "
                        "(SELECT prosecdef FROM pg_proc WHERE proname = 'make_case_no_sequence'), "
                        "(SELECT count(*) FROM pg_class WHERE relname IN ('cases', 'alembic_version') "
                        "AND relacl::text LIKE :granted)"
                    ),
                    {"role": APP_ROLE, "granted": f"%{APP_ROLE}=%"},
                ).one()
            )

    try:
        assert state() == (None, False, 0) and not cluster.app_password_file.exists()
        with pytest.raises(ConfigError, match=f"the embedded cluster has no runtime role {APP_ROLE} yet"):
            cluster.app_url()  # serve would say so (serve itself runs db up's steps first)

        up = run_cli("db", "up", data_dir=data_dir)
        assert up.returncode == 0, up.stderr
        assert (
            f"created the service's database role {APP_ROLE} (password kept in {cluster.app_password_file})"
            in up.stdout.splitlines()
        )
        assert cluster.app_password_file.stat().st_mode & 0o777 == 0o600
        password = cluster.app_password()
        assert password is not None and len(password) >= 32 and password != cluster.password()
        assert state() == ("(f,f,f,t)", True, 2)
        service = make_engine(cluster.app_url())
        try:
            with service.connect() as conn:
                assert conn.exec_driver_sql("SELECT current_user, count(*) FROM cases").one() == (APP_ROLE, 0)
        finally:
            service.dispose()

        again = run_cli("db", "up", data_dir=data_dir)
        assert again.returncode == 0, again.stderr
        assert "created the service's database role" not in again.stdout and cluster.app_password() == password
        assert state() == ("(f,f,f,t)", True, 2)
    finally:
        owner.dispose()


def test_port_in_use_is_refused_and_nothing_is_created(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run_cli("db", "up", data_dir=data_dir, GISGRID_DB_PORT=str(port))
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 is in use by another program: set GISGRID_DB_PORT to a free port or stop it"
    )
    assert not (data_dir / "pg").exists()


def test_data_folder_owned_by_someone_else_is_refused(data_dir: Path) -> None:
    # /etc belongs to root: neither the postgres user (when root) nor an ordinary user owns it.
    (data_dir / "pg").symlink_to("/etc")
    r = run_cli("db", "up", data_dir=data_dir)
    assert r.returncode == 1
    expected_owner = "postgres" if is_root() else pwd.getpwuid(os.geteuid()).pw_name
    assert r.stderr.strip() == (
        f"error: data folder {data_dir / 'pg'} is owned by root, not {expected_owner}: "
        "remove it or set GISGRID_DATA_DIR to a folder of your own"
    )
    (data_dir / "pg").unlink()


def test_data_folder_that_is_not_a_cluster_is_refused(data_dir: Path) -> None:
    pg = data_dir / "pg"
    pg.mkdir()
    if is_root():
        shutil.chown(pg, "postgres", "postgres")
    (pg / "notes.txt").write_text("mine")
    r = run_cli("db", "up", data_dir=data_dir)
    assert r.returncode == 1
    assert "exists and is not a PostgreSQL cluster" in r.stderr
    assert (pg / "notes.txt").read_text() == "mine"  # nothing touched


def test_bad_settings_value_is_one_line(data_dir: Path) -> None:
    r = run_cli("db", "status", data_dir=data_dir, GISGRID_DB_PORT="seventy")
    assert r.returncode == 1
    assert r.stderr.startswith("error: GISGRID_DB_PORT:") and r.stderr.count("\n") == 1


def test_unreachable_database_url_via_cli(data_dir: Path) -> None:
    with reserved_port() as s:  # held, bound but not listening: refused, and no other program can take the port
        port = s.getsockname()[1]
        r = run_cli("db", "up", data_dir=data_dir, GISGRID_DATABASE_URL=f"postgresql://x@127.0.0.1:{port}/db")
    assert r.returncode == 1
    assert r.stderr.startswith(f"error: cannot reach PostgreSQL at 127.0.0.1:{port}")
    assert not (data_dir / "pg").exists()


def test_cluster_in_a_folder_the_postgres_user_cannot_reach() -> None:
    """A checkout under a private folder (e.g. /root): as root the cluster moves to /var/lib/gisgrid."""
    private = Path(tempfile.mkdtemp(prefix="gisgrid-private-"))  # mode 0700
    data_dir = private / "data"
    cluster = Cluster(Settings(data_dir=data_dir))
    try:
        url = prepare_database(Settings(data_dir=data_dir), echo=lambda _m: None, migrate=True, create=True)
        assert url.port == cluster.port()
        if is_root():
            assert (data_dir / "pg").is_file()
            assert cluster.datadir.parent == Path("/var/lib/gisgrid/clusters")
        else:
            assert (data_dir / "pg" / "PG_VERSION").exists()
        assert cluster.running()
    finally:
        cluster.destroy()
        shutil.rmtree(private, ignore_errors=True)
    assert not cluster.datadir.exists()


def test_ordinary_user_runs_the_cluster_without_runuser() -> None:
    """As an ordinary (non-root) user initdb and pg_ctl run directly. When the suite runs as root,
    a forked child drops to ``nobody`` to prove it."""
    d = Path(tempfile.mkdtemp(prefix="gisgrid-user-"))
    d.chmod(0o755)
    settings = Settings(data_dir=d / "data")
    if not is_root():
        try:
            prepare_database(settings, echo=lambda _m: None, migrate=True, create=True)
            assert Cluster(settings).running()
        finally:
            Cluster(settings).destroy()
            shutil.rmtree(d, ignore_errors=True)
        return
    nobody = pwd.getpwnam("nobody")
    os.chown(d, nobody.pw_uid, nobody.pw_gid)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: become nobody and bring the cluster up
        code = 1
        try:
            os.close(read_fd)
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            os.environ["HOME"] = str(d)
            prepare_database(settings, echo=lambda _m: None, migrate=True, create=True)
            ok = Cluster(settings).running()
            Cluster(settings).stop()
            os.write(write_fd, b"ok" if ok else b"not running")
            code = 0
        except BaseException as exc:
            os.write(write_fd, repr(exc).encode()[:2000])
        finally:
            os._exit(code)
    os.close(write_fd)
    _, status = os.waitpid(pid, 0)
    message = os.read(read_fd, 4096).decode()
    os.close(read_fd)
    try:
        assert os.waitstatus_to_exitcode(status) == 0, message
        assert message == "ok"
        assert (d / "data" / "pg").stat().st_uid == nobody.pw_uid  # the cluster belongs to the user
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _fake_cluster(tmp_path: Path, hba: str | None) -> Settings:
    """A data folder holding what an initialised cluster holds for these checks: PG_VERSION and, unless None,
    pg_hba.conf with ``hba`` ("<dir>": a folder of that name, which no user — root neither — can read as a file)."""
    pg = tmp_path / "pg"
    pg.mkdir()
    (pg / "PG_VERSION").write_text("16\n")
    if hba == "<dir>":
        (pg / "pg_hba.conf").mkdir()
    elif hba is not None:
        (pg / "pg_hba.conf").write_text(hba)
    return Settings(data_dir=tmp_path, database_url=None)


@pytest.mark.parametrize(
    ("hba", "why"), [(None, "No such file or directory"), ("<dir>", "Is a directory")], ids=["missing", "unreadable"]
)
def test_an_unreadable_pg_hba_conf_is_warned_about_not_taken_as_secure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], hba: str | None, why: str
) -> None:
    from gisgrid.cli.db import warn_if_trusting
    from gisgrid.errors import ConfigError
    from gisgrid.storage.cluster import HBA_UNREADABLE_WARNING

    settings = _fake_cluster(tmp_path, hba)
    cluster = Cluster(settings)
    expected = HBA_UNREADABLE_WARNING.format(path=tmp_path / "pg" / "pg_hba.conf", why=why)
    assert expected.startswith(f"cannot read {tmp_path / 'pg' / 'pg_hba.conf'} ({why}), so whether")
    with pytest.raises(ConfigError) as err:
        cluster.trusts_local_users()
    assert err.value.message == expected
    assert cluster.auth_warning() == expected
    warn_if_trusting(settings)
    assert capsys.readouterr().err == f"warning: {expected}\n"


def test_the_auth_warning_names_trust_and_is_silent_for_a_password_cluster_or_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gisgrid.cli.db import warn_if_trusting

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    trusting = _fake_cluster(tmp_path / "a", "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
    assert Cluster(trusting).auth_warning() == TRUST_WARNING
    warn_if_trusting(trusting)
    assert capsys.readouterr().err == f"warning: {TRUST_WARNING}\n"
    secured = _fake_cluster(
        tmp_path / "b", "# trust\nlocal all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n"
    )
    none_yet = Settings(data_dir=tmp_path / "c", database_url=None)
    for settings in (secured, none_yet):
        assert Cluster(settings).auth_warning() is None
        warn_if_trusting(settings)
    assert capsys.readouterr().err == ""


def test_two_processes_bringing_the_cluster_up_at_once_take_turns(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two ``up`` at once on one data folder (the suite's workers, serve beside demo load) must not both run
    apt-get, initdb or pg_ctl start: the second waits for the first (a lock file per data folder)."""
    import threading
    import time

    inside: list[str] = []
    overlaps: list[str] = []

    def step(name: str) -> None:
        if inside:
            overlaps.append(f"{name} while {inside[0]}")
        inside.append(name)
        time.sleep(0.2)
        inside.remove(name)

    monkeypatch.setattr(cluster_module, "ensure_postgis_installed", lambda _s, _e: step("install"))
    monkeypatch.setattr(Cluster, "init", lambda self, _i, _e: step("init"))
    monkeypatch.setattr(Cluster, "start", lambda self, _i, _e: step("start"))
    monkeypatch.setattr(Cluster, "ensure_app_role", lambda self, _e: step("runtime role"))
    monkeypatch.setattr(Cluster, "running", lambda self: True)
    monkeypatch.setattr(Cluster, "url", lambda self: "postgresql://x")
    settings = Settings(data_dir=data_dir)
    runs = [threading.Thread(target=Cluster(settings).up, kwargs={"echo": lambda _m: None}) for _ in range(2)]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    assert overlaps == []
    lock = Cluster(settings)._lock_path  # in the temp folder, gone with the cluster
    assert lock.parent == Path(tempfile.gettempdir()) and lock.exists()
    Cluster(settings).destroy()
    assert not lock.exists()
