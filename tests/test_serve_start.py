"""``gisgrid serve`` reads and checks the city's files and settings before it listens (review27 D2): a bad file is
one error and exit 1, with one worker or several, before the URL is printed or the port is taken. (Found first in
the workers, it was a traceback per worker, restarted for ever, while the parent held the port.)"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

import pytest

from api.main import load_start_data
from gisgrid.cli.serve import allowed_hosts_warning, uvicorn_options
from gisgrid.errors import GisgridError
from gisgrid.settings import PROJECT_ROOT, Settings
from tests.fixtures import reserved_port

EVENTS_HEADER = (PROJECT_ROOT / "data" / "catalogue" / "event_classes.csv").read_text(encoding="utf-8").splitlines()[0]
BIKES = "gbt47678,21001,21,扩展事项,共享单车堆积{n},,990000000000000001,现场核实存在,现场核查已处置恢复,,30,12"


def serve(tmp_path: Path, workers: int, **env: str) -> tuple[subprocess.CompletedProcess[str], bool]:
    """``gisgrid serve --workers N`` on a reserved port; by default with a database that is not there (the check
    comes first). Also answers whether the port was left untaken (nor kept by a lingering parent)."""
    with reserved_port(shared=True) as held, reserved_port() as nowhere:
        port = int(held.getsockname()[1])
        environ = {k: v for k, v in os.environ.items() if not k.startswith("GISGRID_")}
        environ.update(
            PYTHONPATH=os.pathsep.join([str(PROJECT_ROOT), environ.get("PYTHONPATH", "")]),
            GISGRID_DATA_DIR=str(tmp_path / "data"),
            GISGRID_DATABASE_URL=f"postgresql://gisgrid@127.0.0.1:{nowhere.getsockname()[1]}/nowhere",
        )
        environ.update(env)
        args = [sys.executable, "-m", "gisgrid", "serve", "--port", str(port), "--workers", str(workers)]
        proc = subprocess.Popen(args, stdout=PIPE, stderr=PIPE, text=True, env=environ, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # the old behaviour: workers restarted for ever, the parent kept the port
            os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers
            out, err = proc.communicate()
            pytest.fail(f"serve --workers {workers} did not exit; its output ended: {err[-1500:]}")
        try:
            held.listen(1)
        except OSError:
            untaken = False
        else:
            untaken = True
    return subprocess.CompletedProcess(args, proc.returncode, out, err), untaken


def refusal(**settings: object) -> str:
    with pytest.raises(GisgridError) as err:
        load_start_data(Settings(_env_file=None, **settings))  # type: ignore[call-arg]
    return err.value.message


@pytest.fixture
def bad_events(tmp_path: Path) -> Path:
    path = tmp_path / "city_events.csv"
    path.write_text("\n".join([EVENTS_HEADER, BIKES.format(n=""), BIKES.format(n="2")]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def city_with_a_grade_gap(tmp_path: Path) -> Path:
    city = tmp_path / "city"
    shutil.copytree(PROJECT_ROOT / "data", city, ignore=shutil.ignore_patterns("*.md"))
    rules = city / "rules" / "evaluation.csv"
    rules.write_text(rules.read_text(encoding="utf-8").replace("grade,,A,,90,", "grade,,A,,95,"), encoding="utf-8")
    return city


def test_a_bad_city_file_stops_serve_before_it_listens(
    tmp_path: Path, bad_events: Path, city_with_a_grade_gap: Path, settings: Settings
) -> None:
    extra = json.dumps([str(bad_events)])
    events_message = refusal(catalogue_extra=[bad_events])
    assert events_message == (
        f"catalogue: 2 problem(s):\n{bad_events}: row 3, field 'code': duplicate of row 2 in the same file\n"
        f"{bad_events}: row 3, field 'code': no disposal time limit in any time-limits file (add 默认)"
    )
    rules = city_with_a_grade_gap / "rules" / "evaluation.csv"
    gap = (
        f"evaluation rules: 1 problem(s):\n{rules}: row 48, field 'lower': grade bands leave a gap: scores from 90 "
        "to 95 get no grade (B in row 49 ends at 90, A in row 48 starts at 95)"
    )
    assert refusal(catalogue_dir=city_with_a_grade_gap) == gap
    hours = refusal(working_hours="08:00-25:00")
    assert hours == (
        "GISGRID_WORKING_HOURS: working hours: '25:00' is not a time (HH:MM); expected periods HH:MM-HH:MM "
        "separated by commas, e.g. 08:30-12:00,13:30-17:30"
    )
    database = {"GISGRID_DATABASE_URL": settings.database_url or ""}  # a real one: nothing stops serve earlier
    for workers, env, message in (
        (2, {"GISGRID_CATALOGUE_EXTRA": extra, **database}, events_message),  # the systemd unit's --workers 2
        (1, {"GISGRID_CATALOGUE_EXTRA": extra}, events_message),
        (2, {"GISGRID_CATALOGUE_DIR": str(city_with_a_grade_gap)}, gap),
        (2, {"GISGRID_WORKING_HOURS": "08:00-25:00"}, hours),
    ):
        done, untaken = serve(tmp_path, workers, **env)
        assert (done.returncode, done.stdout, done.stderr) == (1, "", f"error: {message}\n"), (workers, env)
        assert untaken, (workers, env)  # the port was never taken (nor kept by a lingering parent)
    assert not (tmp_path / "data").exists()  # nothing was made either


def test_serve_warns_when_no_host_names_are_listed(tmp_path: Path, settings: Settings) -> None:
    """review54 F8: without GISGRID_ALLOWED_HOSTS every Host is answered; serve says so on stderr, zh-CN first,
    once the database is ready, as the trust warning (here it then stops: its address is not this machine's); with
    it listed, nothing."""
    warning = allowed_hosts_warning([])
    assert warning == (
        "warning: 未设置 GISGRID_ALLOWED_HOSTS:服务器应答任何 Host(DNS 重绑定:其他网站的网页可借本机地址提交请求);"
        "请设为用户访问所用的主机名,如 GISGRID_ALLOWED_HOSTS=127.0.0.1,localhost 或网关域名 / "
        "GISGRID_ALLOWED_HOSTS is not set: every Host is answered (DNS rebinding: another site's page may send "
        "requests here under its own name); set it to the names clients use, e.g. "
        "GISGRID_ALLOWED_HOSTS=127.0.0.1,localhost or the gateway's name (docs/operations.md)"
    )
    assert allowed_hosts_warning(["127.0.0.1", "localhost"]) is None
    # a real database, and an address of no machine (TEST-NET-1): serve stops at the bind
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_HOST": "192.0.2.1"}
    unset, _ = serve(tmp_path, 1, **env)
    listed, _ = serve(tmp_path, 1, **env, GISGRID_ALLOWED_HOSTS="127.0.0.1,localhost")
    assert (unset.returncode, listed.returncode) == (1, 1)
    assert "the host cannot be bound" in listed.stderr, listed.stderr
    assert unset.stderr.startswith(f"{warning}\nerror: ")
    assert "GISGRID_ALLOWED_HOSTS" not in listed.stderr and listed.stderr.startswith("error: ")
    assert unset.stderr.count("\n") == listed.stderr.count("\n") + 1  # the warning's one line, then the same


def test_serve_s_uvicorn_sends_no_server_header(settings: Settings) -> None:
    """review54 F9: the answers of ``serve``'s uvicorn name no server (``server: uvicorn``); its date stays."""
    import threading
    import time

    import httpx2 as httpx
    import uvicorn

    from api.main import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))  # bound before the server runs on it: no port race
    options = uvicorn_options("warning", "")
    assert options["server_header"] is False
    server = uvicorn.Server(uvicorn.Config(create_app(settings), **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:  # waiting for the state, not a fixed time
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        r = httpx.get(f"http://127.0.0.1:{sock.getsockname()[1]}/health/live")
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
    assert (r.status_code, r.json()) == (200, {"status": "alive"})
    assert "server" not in r.headers and "date" in r.headers
