"""The embedded PostGIS cluster: a private PostgreSQL server in ``<data_dir>/pg``.

Why a private cluster: a command center or an analyst's laptop must run gisgrid without a DBA. The cluster
listens on 127.0.0.1 only (no unix socket, so deep folder paths are fine). Its superuser ``gisgrid`` logs in with
a password (scram-sha-256) made at ``initdb`` and kept in ``<data_dir>/pg.password`` (mode 0600): with trust,
every local OS account could connect as superuser and run programs as the cluster's OS user. Clusters made
before that (trust) keep working; ``gisgrid db secure`` gives them the password.

As root, ``initdb``/``pg_ctl`` refuse to run, so they are run as the ``postgres`` OS user through
``runuser`` (as Debian's own ``pg_ctlcluster`` does) and the cluster folder is owned by ``postgres``.
If that user cannot reach the data folder (for example a checkout under a 0700 ``/root``), the cluster
lives under ``/var/lib/gisgrid/clusters/<hash>`` and ``<data_dir>/pg`` is a pointer file to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from gisgrid.errors import ConfigError, DatabaseError
from gisgrid.settings import Settings, ensure_data_dir

SUPERUSER = "gisgrid"
#: The role the web service logs in as (review54 F1): no superuser, owns nothing, reads and writes rows only
#: (gisgrid.storage.roles). ``db up`` makes it (an earlier version's cluster gets it on its next ``db up``).
APP_ROLE = "gisgrid_app"
PG_OS_USER = "postgres"
_CONF_MARK = "# gisgrid settings"
FALLBACK_ROOT = Path("/var/lib/gisgrid/clusters")
PASSWORD_FILE = "pg.password"
APP_PASSWORD_FILE = "pg_app.password"
AUTH_METHOD = "scram-sha-256"
TRUST_WARNING = (
    "the embedded cluster trusts every local user (any OS account may connect as its superuser without a "
    "password): run gisgrid db secure to give it a password (docs/operations.md)"
)
HBA_UNREADABLE_WARNING = (
    "cannot read {path} ({why}), so whether the embedded cluster lets local users in without a password is "
    "unknown: run gisgrid as the user that owns the cluster (or root), or check the file (docs/operations.md)"
)


def is_root() -> bool:
    return os.geteuid() == 0


@dataclass(frozen=True)
class PgInstall:
    bindir: Path
    major: int
    sharedir: Path

    @property
    def has_postgis(self) -> bool:
        return (self.sharedir / "extension" / "postgis.control").exists()


def _bindir_major(bindir: Path) -> int | None:
    try:
        out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    m = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    return int(m.group(1)) if m else None


def _sharedir(bindir: Path, major: int) -> Path:
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True, check=True)
            return Path(out.stdout.strip())
    debian = Path(f"/usr/share/postgresql/{major}")
    return debian if debian.exists() else bindir.parent / "share" / "postgresql"


def find_postgres(settings: Settings) -> PgInstall | None:
    """The newest PostgreSQL server install (Debian layout first), or the configured one."""
    candidates: list[Path] = []
    if settings.pg_bindir:
        candidates.append(settings.pg_bindir)
    else:
        debian = sorted(
            glob.glob("/usr/lib/postgresql/*/bin"),
            key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
            reverse=True,
        )
        candidates += [Path(p) for p in debian]
        on_path = shutil.which("postgres")
        if on_path:
            candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if (bindir / "postgres").exists() and (bindir / "initdb").exists():
            major = _bindir_major(bindir)
            if major:
                return PgInstall(bindir=bindir, major=major, sharedir=_sharedir(bindir, major))
    return None


def _apt_install(packages: list[str], echo) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    echo(f"installing {' '.join(packages)} with apt-get …")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def ensure_postgis_installed(settings: Settings, echo=print) -> PgInstall:
    """Find PostgreSQL + PostGIS; on Debian/Ubuntu as root install what is missing, else say what to run."""
    install = find_postgres(settings)
    can_apt = is_root() and shutil.which("apt-get") is not None and settings.pg_bindir is None
    if install is None:
        if not can_apt:
            raise ConfigError(
                "PostgreSQL server not found. Install it: "
                "sudo apt-get install postgresql postgresql-15-postgis-3 "
                "(use the postgis package matching the installed major version), "
                "or set GISGRID_PG_BINDIR, or point GISGRID_DATABASE_URL at an existing PostGIS server."
            )
        _apt_install(["postgresql"], echo)
        install = find_postgres(settings)
        if install is None:
            raise ConfigError("apt-get installed postgresql but no server binaries were found in /usr/lib/postgresql")
    if not install.has_postgis:
        pkg = f"postgresql-{install.major}-postgis-3"
        if not can_apt:
            raise ConfigError(
                f"PostGIS is not installed for PostgreSQL {install.major}: run sudo apt-get install {pkg}"
            )
        _apt_install([pkg], echo)
        if not install.has_postgis:
            raise ConfigError(f"apt-get installed {pkg} but postgis.control is still missing in {install.sharedir}")
    return install


def _port_taken(port: int) -> str:
    return f"port {port} on 127.0.0.1 is in use by another program: set GISGRID_DB_PORT to a free port or stop it"


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class ClusterStatus:
    initialised: bool
    running: bool
    port: int | None
    datadir: Path
    url: str | None

    def to_text(self) -> str:
        if not self.initialised:
            return f"not initialised ({self.datadir}); run: gisgrid db up"
        state = "running" if self.running else "stopped"
        return f"{state}: {self.datadir} port {self.port} → {self.url}"  # url: password masked


class Cluster:
    """A private PostgreSQL + PostGIS cluster under ``settings.data_dir``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pointer = settings.data_path / "pg"

    # -- locations -----------------------------------------------------------------------------
    @property
    def datadir(self) -> Path:
        if self.pointer.is_file():
            return Path(self.pointer.read_text().strip())
        return self.pointer

    def _os_user(self) -> str:
        return PG_OS_USER if is_root() else pwd.getpwuid(os.geteuid()).pw_name

    def _run_as(self, argv: list[str], **kw) -> subprocess.CompletedProcess[str]:
        if is_root():
            argv = ["runuser", "-u", PG_OS_USER, "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, **kw)

    def _postgres_can_reach(self, path: Path) -> bool:
        probe = path if path.exists() else path.parent
        r = subprocess.run(["runuser", "-u", PG_OS_USER, "--", "test", "-x", str(probe)], capture_output=True)
        return r.returncode == 0

    @property
    def initialised(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def port(self) -> int | None:
        conf = self.datadir / "postgresql.conf"
        if not conf.exists():
            return None
        ports = re.findall(r"^port\s*=\s*(\d+)", conf.read_text(), flags=re.M)
        return int(ports[-1]) if ports else None

    @property
    def password_file(self) -> Path:
        # Beside pg/, owned by the user running gisgrid (pg/ itself belongs to postgres when run as root).
        return self.settings.data_path / PASSWORD_FILE

    @property
    def app_password_file(self) -> Path:
        """The runtime role's password (:data:`APP_ROLE`), beside the superuser's, 0600 too."""
        return self.settings.data_path / APP_PASSWORD_FILE

    def password(self) -> str | None:
        """The superuser's password; None for a cluster made before passwords (trust)."""
        return _read_password(self.password_file)

    def app_password(self) -> str | None:
        """The runtime role's password; None before the cluster's first ``db up`` by this version."""
        return _read_password(self.app_password_file)

    def _write_password(self, password: str, path: Path | None = None) -> None:
        path = path or self.password_file
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        path.chmod(0o600)  # O_CREAT's mode does not apply to a file that was there already

    def url(self, dbname: str | None = None) -> str:
        """The URL with the password (from the password file): for code that connects; mask it for people."""
        port = self.port()
        if port is None:
            raise ConfigError(f"the embedded cluster is not initialised ({self.datadir}); run: gisgrid db up")
        url = URL.create(
            "postgresql+psycopg2",
            username=SUPERUSER,
            password=self.password(),
            host="127.0.0.1",
            port=port,
            database=dbname or self.settings.db_name,
        )
        return url.render_as_string(hide_password=False)

    def app_url(self, dbname: str | None = None) -> str:
        """The web service's URL: the runtime role (:data:`APP_ROLE`) with its password. A cluster whose runtime
        role was never made (an earlier version's, not yet brought up by this one) is a ConfigError naming
        ``gisgrid db up``, which makes it."""
        password = self.app_password()
        if password is None:
            raise ConfigError(
                f"嵌入式数据库集群还没有服务角色 {APP_ROLE} / the embedded cluster has no runtime role {APP_ROLE} yet "
                f"(no {self.app_password_file}): run gisgrid db up, which makes it"
            )
        url = make_url(self.url(dbname)).set(username=APP_ROLE, password=password)
        return url.render_as_string(hide_password=False)

    def ensure_app_role(self, echo=print) -> bool:
        """Make the runtime role (:data:`APP_ROLE`) if missing, with its password kept in
        :attr:`app_password_file` (0600), or bring an existing one back to a plain login with that password.
        Idempotent; True when the role was made. The cluster must be running."""
        from sqlalchemy.exc import DBAPIError

        from gisgrid.storage.database import describe_connect_error, make_engine  # database imports this module
        from gisgrid.storage.roles import ensure_login_role

        engine = make_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            try:
                conn = engine.connect()
            except DBAPIError as exc:
                raise DatabaseError(describe_connect_error(engine.url, exc)) from None
            with conn:
                # A password file left by an interrupted run is reused: the role may already have it.
                password = self.app_password()
                if password is None:
                    password = secrets.token_urlsafe(24)
                    self._write_password(password, self.app_password_file)  # kept before the role has it
                made = ensure_login_role(conn, APP_ROLE, password)
        finally:
            engine.dispose()
        if made:
            echo(f"created the service's database role {APP_ROLE} (password kept in {self.app_password_file})")
        return made

    def trusts_local_users(self) -> bool:
        """pg_hba.conf lets some connection in without a password (a cluster made before passwords). A pg_hba.conf
        that cannot be read (missing, or the cluster's folder is another user's) is a ConfigError naming it: not
        knowing is not the same as asking for a password."""
        hba = self.datadir / "pg_hba.conf"
        try:
            lines = hba.read_text().splitlines()
        except OSError as exc:
            raise ConfigError(HBA_UNREADABLE_WARNING.format(path=hba, why=exc.strerror or exc)) from None
        return any(_hba_method(line) == "trust" for line in lines)

    def auth_warning(self) -> str | None:
        """The warning to show about how an initialised cluster lets local users in: ``TRUST_WARNING``, or that
        pg_hba.conf cannot be read so nobody can tell; None when every record asks for a password, or when there
        is no cluster yet."""
        try:
            if not self.pointer.exists() or not self.initialised:
                return None
            return TRUST_WARNING if self.trusts_local_users() else None
        except ConfigError as exc:
            return exc.message
        except OSError as exc:  # the cluster's folder itself cannot be looked into
            return HBA_UNREADABLE_WARNING.format(path=self.datadir / "pg_hba.conf", why=exc.strerror or exc)

    # -- state ---------------------------------------------------------------------------------
    def running(self) -> bool:
        if not self.initialised:
            return False
        install = find_postgres(self.settings)
        if install is None:
            return False
        r = self._run_as([str(install.bindir / "pg_ctl"), "status", "-D", str(self.datadir)])
        return r.returncode == 0

    def status(self) -> ClusterStatus:
        init = self.initialised
        return ClusterStatus(
            initialised=init,
            running=self.running() if init else False,
            port=self.port(),
            datadir=self.datadir,
            url=make_url(self.url()).render_as_string(hide_password=True) if init else None,
        )

    # -- lifecycle -----------------------------------------------------------------------------
    def _check_owner(self, datadir: Path) -> None:
        if not datadir.exists():
            return
        owner_uid = datadir.stat().st_uid
        expected = pwd.getpwnam(self._os_user()).pw_uid
        if owner_uid != expected:
            try:
                owner = pwd.getpwuid(owner_uid).pw_name
            except KeyError:
                owner = str(owner_uid)
            raise ConfigError(
                f"data folder {datadir} is owned by {owner}, not {self._os_user()}: "
                f"remove it or set GISGRID_DATA_DIR to a folder of your own"
            )
        if any(datadir.iterdir()) and not (datadir / "PG_VERSION").exists():
            raise ConfigError(
                f"data folder {datadir} exists and is not a PostgreSQL cluster: "
                f"remove it or set GISGRID_DATA_DIR to another folder"
            )

    def _choose_location(self) -> Path:
        if self.pointer.is_file() or self.pointer.exists():
            return self.datadir
        if is_root() and not self._postgres_can_reach(self.settings.data_path):
            digest = hashlib.sha1(str(self.settings.data_path).encode()).hexdigest()[:12]
            return FALLBACK_ROOT / digest
        return self.pointer

    def init(self, install: PgInstall, echo=print) -> bool:
        """initdb if needed. Returns True when a new cluster was made; removes it again on failure."""
        datadir = self._choose_location()
        self._check_owner(datadir)
        if (datadir / "PG_VERSION").exists():
            return False
        # Refuse before creating anything, so a refused start leaves no half-made cluster behind.
        if self.settings.db_port is not None and port_in_use(self.settings.db_port):
            raise ConfigError(_port_taken(self.settings.db_port))
        ensure_data_dir(self.settings)
        created = not datadir.exists()
        datadir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            if is_root():
                shutil.chown(datadir, PG_OS_USER, PG_OS_USER)
                if datadir.parent != self.settings.data_path:
                    shutil.chown(datadir.parent, PG_OS_USER, PG_OS_USER)
            echo(f"initialising PostgreSQL {install.major} cluster in {datadir} …")
            password = secrets.token_urlsafe(24)  # URL-safe: goes into the URL as is
            self._write_password(password)
            with self._pwfile(password) as pwfile:
                r = self._run_as(
                    [
                        str(install.bindir / "initdb"),
                        "-D",
                        str(datadir),
                        "-U",
                        SUPERUSER,
                        f"--auth-host={AUTH_METHOD}",
                        f"--auth-local={AUTH_METHOD}",
                        f"--pwfile={pwfile}",
                        "--encoding=UTF8",
                        "--locale=C.UTF-8",
                    ]
                )
            if r.returncode != 0:
                raise DatabaseError(f"initdb failed in {datadir}: {r.stderr.strip().splitlines()[-1:]}")
            port = self.settings.db_port or free_port()
            with (datadir / "postgresql.conf").open("a") as conf:
                conf.write(
                    f"\n{_CONF_MARK}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                    f"port = {port}\nfsync = on\nshared_buffers = 256MB\nmax_connections = 200\n"
                    f"logging_collector = off\n"
                )
            if datadir != self.pointer:
                self.pointer.write_text(str(datadir) + "\n")
        except BaseException:
            if created:
                shutil.rmtree(datadir, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                self.password_file.unlink()
            with contextlib.suppress(FileNotFoundError):
                self.app_password_file.unlink()
            with contextlib.suppress(FileNotFoundError):
                if self.pointer.is_file():
                    self.pointer.unlink()
            raise
        return True

    @contextlib.contextmanager
    def _pwfile(self, password: str):
        """A short-lived file holding the password for ``initdb --pwfile``, readable by the user initdb runs as."""
        fd, name = tempfile.mkstemp(prefix="gisgrid-pw-")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(password + "\n")
            if is_root():
                shutil.chown(name, PG_OS_USER, PG_OS_USER)
            yield name
        finally:
            os.unlink(name)

    def secure(self, echo=print) -> bool:
        """Give a trust cluster (made before passwords) the password auth new clusters have: set the superuser's
        password, keep it in the password file, switch pg_hba.conf to scram-sha-256 and reload. False when there
        was nothing to do. The cluster is started if it was stopped."""
        if not self.initialised:
            raise ConfigError(f"the embedded cluster is not initialised ({self.datadir}); gisgrid db up makes one")
        if not self.trusts_local_users() and self.password():
            return False
        install = ensure_postgis_installed(self.settings, echo)
        self.start(install, echo)
        # A password file left by an interrupted run is reused: the role may already have it.
        password = self.password() or secrets.token_urlsafe(24)
        from sqlalchemy.exc import DBAPIError

        from gisgrid.storage.database import describe_connect_error, make_engine  # database imports this module

        engine = make_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            try:
                conn = engine.connect()
            except DBAPIError as exc:  # e.g. a password cluster whose pg.password is gone
                raise DatabaseError(describe_connect_error(engine.url, exc)) from None
            with conn:
                self._write_password(password)  # kept before the role has it: an interrupted run can go on
                conn.exec_driver_sql(f"SET password_encryption = '{AUTH_METHOD}'")
                # psycopg2 quotes the parameter client-side (ALTER ROLE takes no server-side parameters).
                conn.exec_driver_sql(f"ALTER ROLE {SUPERUSER} WITH PASSWORD %(pw)s", {"pw": password})
                hba = self.datadir / "pg_hba.conf"
                # Written in place: the file keeps its owner (postgres when run as root) and mode.
                hba.write_text(_hba_without_trust(hba.read_text()))
                conn.exec_driver_sql("SELECT pg_reload_conf()")
        finally:
            engine.dispose()
        self._wait_for_password_auth()
        echo(f"password set (kept in {self.password_file}); pg_hba.conf now asks for it ({AUTH_METHOD})")
        return True

    def _wait_for_password_auth(self, timeout: float = 10.0) -> None:
        """Until a connection with a wrong password is refused (trust lets it in): the reload is a signal the server
        handles shortly after, and the command must not report success before it has."""
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg2.connect(
                    host="127.0.0.1",
                    port=self.port(),
                    user=SUPERUSER,
                    password="not-" + secrets.token_hex(8),
                    dbname="postgres",
                    connect_timeout=5,
                ).close()
            except psycopg2.OperationalError as exc:
                if "password" in str(exc):
                    return
                raise DatabaseError(f"the cluster did not come back after the reload: {exc}") from None
            if time.monotonic() > deadline:
                raise DatabaseError("the cluster still lets users in without a password after the reload")
            time.sleep(0.1)

    def _set_port(self, port: int) -> None:
        conf = self.datadir / "postgresql.conf"
        # One port line: the earlier ones go (initdb's own is commented out), not one more line per move.
        kept = re.sub(r"^port\s*=.*\n?", "", conf.read_text(), flags=re.M)
        conf.write_text(kept.rstrip("\n") + f"\nport = {port}\n")

    def start(self, install: PgInstall, echo=print) -> None:
        if self.running():
            return
        port = self.port()
        wanted = self.settings.db_port
        if wanted is not None and wanted != port:
            self._set_port(wanted)
            port = wanted
        assert port is not None
        if port_in_use(port):
            if wanted is not None:
                raise ConfigError(_port_taken(port))
            port = free_port()
            echo(f"the cluster's previous port is taken; moving it to {port}")
            self._set_port(port)
        log = self.datadir / "server.log"
        r = self._run_as(
            [
                str(install.bindir / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.datadir),
                "-l",
                str(log),
            ]
        )
        if r.returncode != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            raise DatabaseError(f"the embedded PostgreSQL did not start: {' | '.join(tail) or r.stderr.strip()}")

    def stop(self) -> bool:
        if not self.running():
            return False
        install = find_postgres(self.settings)
        assert install is not None
        r = self._run_as([str(install.bindir / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.datadir)])
        if r.returncode != 0:
            raise DatabaseError(f"pg_ctl stop failed: {r.stderr.strip()}")
        return True

    @property
    def _lock_path(self) -> Path:
        key = hashlib.sha256(str(self.settings.data_path.resolve()).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"gisgrid-cluster-{key}.lock"

    @contextlib.contextmanager
    def _up_lock(self) -> Iterator[None]:
        """One ``up`` at a time per data folder: two processes starting at once (the test suite's workers,
        ``gisgrid serve`` beside ``gisgrid demo load``) must not both run apt-get, initdb or pg_ctl start. The lock
        file lives in the temp folder, so a refused start still leaves the data folder untouched."""
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            yield

    def up(self, echo=print) -> str:
        """Install if needed, init, start; return the server URL (database not yet created)."""
        with self._up_lock():
            install = ensure_postgis_installed(self.settings, echo)
            self.init(install, echo)
            self.start(install, echo)
            self.ensure_app_role(echo)
        # pg_ctl -w returns when connections are accepted; a tiny grace for slow disks.
        for _ in range(50):
            if self.running():
                break
            time.sleep(0.1)
        return self.url()

    def destroy(self) -> None:
        """Stop and delete the cluster (used by tests on throwaway data folders)."""
        with contextlib.suppress(Exception):
            self.stop()
        datadir = self.datadir
        shutil.rmtree(datadir, ignore_errors=True)
        if self.pointer.is_file():
            self.pointer.unlink()
        self._lock_path.unlink(missing_ok=True)


def _read_password(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the cluster password {path}: {exc.strerror}") from None


def _hba_method_span(line: str) -> tuple[int, int] | None:
    """Where the auth method of a pg_hba.conf record stands (``local db user method`` / ``host db user address
    method``); None for a comment or blank line."""
    fields = list(re.finditer(r"\S+", line.split("#", 1)[0]))
    if not fields:
        return None
    n = 4 if fields[0].group() == "local" else 5
    return fields[n - 1].span() if len(fields) >= n else None


def _hba_method(line: str) -> str | None:
    span = _hba_method_span(line)
    return line[span[0] : span[1]] if span else None


def _hba_without_trust(text: str) -> str:
    """pg_hba.conf with every ``trust`` record asking for a scram-sha-256 password instead."""
    out = []
    for line in text.splitlines(keepends=True):
        span = _hba_method_span(line)
        if span and line[span[0] : span[1]] == "trust":
            line = line[: span[0]] + AUTH_METHOD + line[span[1] :]
        out.append(line)
    return "".join(out)
