"""Operating the service: bad settings are one line naming the setting, typos are named, the data folder is the
checkout's, the access log has times and durations."""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from pydantic import ValidationError

from gisgrid.settings import PROJECT_ROOT, Settings, unknown_dotenv_settings, unknown_env_settings
from gisgrid.storage.database import mask_password
from tests.fixtures import reserved_port

GISGRID = [sys.executable, "-m", "gisgrid"]


def run_cli(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GISGRID_")}
    environ.update(env)
    environ["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), environ.get("PYTHONPATH", "")])
    return subprocess.run([*GISGRID, *args], capture_output=True, text=True, env=environ, cwd=cwd, timeout=120)


def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str, **env: str
) -> tuple[object, str]:
    """``gisgrid ARGS`` in this process (a subprocess costs seconds of imports): (exit code, stderr)."""
    import warnings

    from gisgrid.cli import main

    with monkeypatch.context() as m:
        for key in [k for k in os.environ if k.startswith("GISGRID_")]:
            m.delenv(key)
        for key, value in env.items():
            m.setenv(key, value)
        m.setattr(sys, "argv", ["gisgrid", *args])
        m.setattr(warnings, "showwarning", warnings.showwarning)  # main() installs its own
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_:
            main()
    return exit_.value.code, capsys.readouterr().err


def _free_port() -> int:
    """A port number for a URL that is never dialled (checked after the settings, or a host not this machine's); a
    port the test connects to is held with ``tests.fixtures.reserved_port`` instead."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    f = tmp_path / "afile"
    f.write_text("")
    return f


def test_bad_settings_are_one_line_naming_the_setting(
    tmp_path: Path, a_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = f"postgresql://gisgrid@127.0.0.1:{_free_port()}/gisgrid"  # checked after the settings: never reached
    cases = [
        (
            ["db", "status"],
            {"GISGRID_CATALOGUE_EXTRA": "notjson"},
            """error: GISGRID_CATALOGUE_EXTRA: not valid JSON (a list is written e.g. '["local.csv"]')""",
        ),
        (
            ["db", "up"],
            {"GISGRID_DATABASE_URL": "postgresql://u:SECRETPW@host:notaport/db"},
            "error: GISGRID_DATABASE_URL has a port that is not a number: 'postgresql://u:***@host:notaport/db'; "
            "expected e.g. postgresql://user:password@host:5432/dbname",
        ),
        (
            ["db", "up"],
            {"GISGRID_DATABASE_URL": "postgresql//gisgrid:SECRETPW@127.0.0.1:45430/review12"},
            "error: GISGRID_DATABASE_URL is not a database URL: 'postgresql//gisgrid:***@127.0.0.1:45430/review12'; "
            "expected e.g. postgresql://user:password@host:5432/dbname",
        ),
        (
            ["serve"],
            {"GISGRID_DATA_DIR": str(a_file / "sub"), "GISGRID_DATABASE_URL": nowhere},
            f"error: GISGRID_DATA_DIR: cannot create {a_file / 'sub'}: Not a directory",
        ),
        (
            ["serve"],
            {"GISGRID_DATA_DIR": "/proc/gisgrid-test", "GISGRID_DATABASE_URL": nowhere},
            "error: GISGRID_DATA_DIR: cannot create /proc/gisgrid-test: No such file or directory",
        ),
        (  # review55 F5: reported as its first missing file, and `db up` went on and exited 0
            ["db", "up"],
            {"GISGRID_CATALOGUE_DIR": str(tmp_path / "data2")},
            f"error: GISGRID_CATALOGUE_DIR: {tmp_path / 'data2'}: folder not found (a copy of the project's data/, "
            "the folder holding catalogue/ and rules/)",
        ),
        (
            ["serve"],
            {"GISGRID_CATALOGUE_DIR": str(PROJECT_ROOT / "data" / "catalogue"), "GISGRID_DATABASE_URL": nowhere},
            f"error: GISGRID_CATALOGUE_DIR: {PROJECT_ROOT / 'data' / 'catalogue'}: has no catalogue/ and no rules/ "
            "folder (a copy of the project's data/, the folder holding catalogue/ and rules/)",
        ),
        (["serve", "--port", "70000"], {}, "error: --port must be between 1 and 65535, not 70000"),
        (["serve", "--port", "0"], {}, "error: --port must be between 1 and 65535, not 0"),
        (
            ["serve", "--log-level", "loud"],
            {},
            "error: --log-level must be one of critical, error, warning, info, debug, not 'loud'",
        ),
        (
            ["db", "status"],
            {"GISGRID_LOG_LEVEL": "loud"},
            "error: GISGRID_LOG_LEVEL: Input should be 'critical', 'error', 'warning', 'info' or 'debug'",
        ),
        (
            ["db", "status"],
            {"GISGRID_BASEMAP_URL": "ftp://x/{z}"},
            "error: GISGRID_BASEMAP_URL: must be an http(s) URL or a path starting with /, not ftp://",
        ),
        (
            ["db", "status"],
            {"GISGRID_BASEMAP_URL": "http://tiles.example/no-placeholders.png"},
            "error: GISGRID_BASEMAP_URL: an XYZ tile template needs {z}, {x} and {y} (missing {z}, {x}, {y})",
        ),
        (
            ["db", "status"],
            {"GISGRID_CENTER_NAME": "  "},
            "error: GISGRID_CENTER_NAME: must name the issuing centre, e.g. 新密市数字化城市管理监督指挥中心 "
            "(unset: the default)",
        ),
        (
            ["db", "status"],
            {"GISGRID_CENTER_NAME": "新密市\n监督指挥中心"},
            "error: GISGRID_CENTER_NAME: must be one line of text, not holding the control character U+000A",
        ),
        (
            ["db", "status"],
            {"GISGRID_CENTER_NAME": "中" * 41},
            "error: GISGRID_CENTER_NAME: at most 40 characters (it heads the printed orders), not 41",
        ),
    ]
    env = {"GISGRID_DATA_DIR": str(tmp_path / "data")}
    for args, extra, message in cases:
        assert run_main(monkeypatch, capsys, *args, **{**env, **extra}) == (1, message + "\n"), (args, extra)
    # The real command, once: the same line from a fresh process.
    r = run_cli("db", "up", GISGRID_DATABASE_URL="postgresql://u:SECRETPW@host:notaport/db")
    assert (r.returncode, r.stdout) == (1, "") and "SECRETPW" not in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "data").exists()  # nothing was started or made


def test_a_misspelt_variable_is_named_with_the_nearest_setting(tmp_path: Path) -> None:
    url = f"postgresql://gisgrid@127.0.0.1:{_free_port()}/gisgrid"
    r = run_cli("db", "status", GISGRID_DATABSE_URL=url, GISGRID_DATA_DIR=str(tmp_path))
    assert r.stderr.splitlines()[0] == (
        "warning: GISGRID_DATABSE_URL is not a gisgrid setting and is ignored (did you mean GISGRID_DATABASE_URL?)"
    )
    env = {"GISGRID_PORTT": "1", "GISGRID_REQUIRE_BROWSER": "1", "GISGRID_PORT": "1", "GISGRID_ZZZZZZZZ": "", "X": ""}
    assert unknown_env_settings(env) == [
        "GISGRID_PORTT is not a gisgrid setting and is ignored (did you mean GISGRID_PORT?)",
        "GISGRID_ZZZZZZZZ is not a gisgrid setting and is ignored",
    ]


def test_a_misspelt_key_in_a_dotenv_file_gets_the_same_warning_naming_the_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# the city's settings\n"
        f"GISGRID_DATA_DIR={tmp_path / 'data'}\n"
        "export GISGRID_DATABSE_URL='postgresql://gisgrid@127.0.0.1:1/gisgrid'\n"
        'gisgrid_portt="8001"  # lower case: Settings reads keys in any case\n'
        "GISGRID_ZZZZZZZZ=\n"
        "OTHER=1\n",
        encoding="utf-8",
    )
    near = "GISGRID_DATABASE_URL?"
    assert unknown_dotenv_settings([env_file, tmp_path / "missing.env", env_file]) == [
        f"GISGRID_DATABSE_URL in {env_file} is not a gisgrid setting and is ignored (did you mean {near})",
        f"GISGRID_ZZZZZZZZ in {env_file} is not a gisgrid setting and is ignored",
        f"gisgrid_portt in {env_file} is not a gisgrid setting and is ignored (did you mean GISGRID_PORT?)",
    ]
    # The CLI run in that folder reads its .env (the current directory's) and warns as for a variable.
    r = run_cli("db", "status", cwd=tmp_path)
    warning = (
        f"warning: GISGRID_DATABSE_URL in {env_file} is not a gisgrid setting and is ignored (did you mean {near})"
    )
    assert warning in r.stderr.splitlines()
    assert unknown_dotenv_settings([tmp_path / "missing.env"]) == []


def test_mask_password() -> None:
    assert mask_password("postgresql://u:p@ss/w:rd@h:5/db") == "postgresql://u:***@h:5/db"
    assert mask_password("postgresql://u@h/db") == "postgresql://u@h/db"
    assert mask_password("u:secret@h/db") == "***@h/db"  # no "//": all of the user part goes


def test_basemap_url_is_an_xyz_template() -> None:
    assert Settings(basemap_url="/basemap/{z}/{x}/{y}.png").basemap_url == "/basemap/{z}/{x}/{y}.png"
    assert Settings(basemap_url="https://{s}.tiles.example/{z}/{x}/{y}.png").basemap_url
    refused = [  # each for its own reason
        ("ftp://x/{z}/{x}/{y}", "must be an http(s) URL or a path starting with /, not ftp://"),
        ("tiles/{z}/{x}/{y}.png", "must be an http(s) URL or a path starting with / "),
        ("http://tiles.example/{z}/{x}.png", "an XYZ tile template needs {z}, {x} and {y} (missing {y})"),
    ]
    for bad, message in refused:
        with pytest.raises(ValidationError, match=re.escape(f"basemap_url\n  Value error, {message}")):
            Settings(basemap_url=bad)


def test_data_dir_defaults_to_the_checkout_whatever_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GISGRID_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert Settings().data_path == PROJECT_ROOT / ".gisgrid"
    assert Settings().catalogue_dir == PROJECT_ROOT / "data"
    # An installed package (no pyproject.toml beside it): the user's data folder.
    monkeypatch.setattr("gisgrid.settings.in_checkout", lambda: False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert Settings().data_path == tmp_path / "xdg" / "gisgrid"
    # From another directory, `db status` names the checkout's cluster, and makes nothing in the cwd.
    r = run_cli("db", "status", cwd=tmp_path)
    assert str(PROJECT_ROOT / ".gisgrid") in r.stdout and not (tmp_path / ".gisgrid").exists()


def test_access_log_has_the_duration_and_the_log_lines_a_timestamp(caplog: pytest.LogCaptureFixture) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from api.access_log import ACCESS_LOGGER, AccessLog, log_config

    app = FastAPI()

    @app.get("/x")
    def x() -> dict[str, int]:
        return {"a": 1}

    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER), TestClient(AccessLog(app)) as client:
        assert client.get("/x?b=2").status_code == 200
        assert client.get("/missing").status_code == 404
    lines = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
    assert re.fullmatch(r'testclient:\d+ "GET /x\?b=2 HTTP/1.1" 200 \d+\.\dms actor=- role=-', lines[0]), lines
    assert re.fullmatch(r'testclient:\d+ "GET /missing HTTP/1.1" 404 \d+\.\dms actor=- role=-', lines[1]), lines

    import uvicorn.logging

    cfg = log_config("warning")
    assert cfg["loggers"][ACCESS_LOGGER]["level"] == "WARNING"
    for name in ("default", "access"):
        f = cfg["formatters"][name]
        formatter = uvicorn.logging.DefaultFormatter(fmt=f["fmt"], datefmt=f["datefmt"], use_colors=False)
        record = logging.LogRecord("gisgrid.access", logging.INFO, __file__, 1, "hello", None, None)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} INFO:     hello", formatter.format(record))


def test_the_access_line_names_who_acted_and_a_header_cannot_forge_a_line(caplog: pytest.LogCaptureFixture) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from api.access_log import ACCESS_LOGGER, AccessLog

    app = FastAPI()

    @app.get("/x")
    def x() -> dict[str, int]:
        return {"a": 1}

    forged = '李娜\n2026-11-27T10:59:42+0800 INFO: 1.2.3.4:1 "GET /admin" 200'
    sent = [
        {"X-Actor": quote("李娜"), "X-Role": "dispatcher"},  # percent-encoded, as the API takes it
        {"X-Actor": quote(forged)},  # a line break, percent-encoded: escaped, the line stays one line
        {"X-Actor": "a%0D%0Ab\\%22%E2%80%AE%00", "X-Role": "x" * 100},  # CR LF, \\, ", an RTL override, NUL; long
        {"X-Actor": "李娜".encode()},  # raw UTF-8 bytes
        {"X-Actor": quote("孙八"), "X-Role": "department", "X-Department": "990000000000000003"},
    ]
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER), TestClient(AccessLog(app)) as client:
        for headers in sent:
            assert client.get("/x", headers=headers).status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
    tails = [line.split("ms ", 1)[1] for line in lines]
    assert tails[0] == 'actor="李娜" role="dispatcher"'
    assert tails[1] == ('actor="李娜\\n2026-11-27T10:59:42+0800 INFO: 1.2.3.4:1 \\"GET /admin\\" 200" role=-')
    assert tails[2] == 'actor="a\\r\\nb\\\\\\"\\u202e\\x00" role="' + "x" * 64 + '…"'
    assert tails[3] == 'actor="李娜" role=-'
    assert tails[4] == 'actor="孙八" role="department" department="990000000000000003"'  # only when sent
    assert all("\n" not in line and "\r" not in line for line in lines)


def test_serve_says_when_the_pages_assets_are_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from gisgrid.cli import serve
    from maps import assets

    assert serve.assets_warning() is None  # installed here (the suite's setup)
    monkeypatch.setattr(assets, "stale_reason", lambda: "maps/node_modules is missing")
    assert serve.assets_warning() == (
        "warning: the console, field page and /docs need their JS/CSS (maps/node_modules is missing): "
        "run make setup or python -m maps.assets install"
    )


def test_a_missing_calendar_file_is_refused_naming_its_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """review44 D6: the refusal said '/x.csv: calendar file not found' without naming GISGRID_CALENDAR_FILE."""
    missing = tmp_path / "nonexistent.csv"
    env = {"GISGRID_CALENDAR_FILE": str(missing), "GISGRID_DATA_DIR": str(tmp_path / "data")}
    assert run_main(monkeypatch, capsys, "evaluate", "--period", "2025-10", **env) == (
        1,
        f"error: GISGRID_CALENDAR_FILE: {missing}: calendar file not found\n",
    )
    missing.write_text("date,kind\n2099-02-30,休息日\n", encoding="utf-8")
    assert run_main(monkeypatch, capsys, "evaluate", "--period", "2025-10", **env) == (
        1,
        f"error: GISGRID_CALENDAR_FILE: calendar file: 1 problem(s):\n{missing}: row 2, field 'date': not a date "
        "(YYYY-MM-DD)\n",
    )


def test_serve_refuses_a_near_miss_of_a_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """review46 F2: a mistyped GISGRID_DATABASE_URL served an empty embedded cluster, healthy. ``--port 70000``
    would stop serve further on (exit 1 too): the refusal must come first, before any option is looked at.
    Variables of the tests and scripts (GISGRID_REQUIRE_BROWSER, GISGRID_BENCH_*) and far names stay warnings."""
    url = "postgresql://gisgrid:pw@db.example:5432/gisgrid"
    env = {"GISGRID_DATA_DIR": str(tmp_path / "data"), "GISGRID_DATABSE_URL": url, "GISGRID_ZZZZZZZZ": ""}
    code, err = run_main(monkeypatch, capsys, "serve", "--port", "70000", **env)
    assert (code, err.splitlines()) == (
        1,
        [
            "warning: GISGRID_DATABSE_URL is not a gisgrid setting and is ignored (did you mean GISGRID_DATABASE_URL?)",
            "warning: GISGRID_ZZZZZZZZ is not a gisgrid setting and is ignored",
            "error: 环境变量名疑似拼写错误,服务未启动 / not a gisgrid setting, and too close to one to be ignored: "
            "GISGRID_DATABSE_URL (did you mean GISGRID_DATABASE_URL?); correct or unset it",
        ],
    )
    assert not (tmp_path / "data").exists()  # nothing made, no cluster started
    ours = {"GISGRID_REQUIRE_BROWSER": "1", "GISGRID_CHROMIUM": "x", "GISGRID_BENCH_REUSE": "1", "GISGRID_BENCH_N": "3"}
    code, err = run_main(monkeypatch, capsys, "serve", "--port", "70000", **ours, GISGRID_ZZZZZZZZ="")
    assert (code, err) == (
        1,
        "warning: GISGRID_ZZZZZZZZ is not a gisgrid setting and is ignored\n"
        "error: --port must be between 1 and 65535, not 70000\n",
    )


@pytest.mark.parametrize("command", [["db", "up"], ["db", "status"], ["demo", "load"]], ids=" ".join)
def test_db_and_demo_refuse_a_near_miss_of_a_setting_before_making_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """As serve: a mistyped GISGRID_DATABASE_URL would make (db up, demo load) or describe (db status) the
    embedded cluster instead of the server meant; nothing is made."""
    env = {"GISGRID_DATA_DIR": str(tmp_path / "data"), "GISGRID_DATABSE_URL": "postgresql://db.example/gisgrid"}
    code, err = run_main(monkeypatch, capsys, *command, **env)
    assert (code, err.splitlines()[-1]) == (
        1,
        "error: 环境变量名疑似拼写错误,命令未执行 / not a gisgrid setting, and too close to one to be ignored: "
        "GISGRID_DATABSE_URL (did you mean GISGRID_DATABASE_URL?); correct or unset it",
    )
    assert not (tmp_path / "data").exists()


def test_a_host_that_cannot_be_bound_is_not_told_to_change_the_port() -> None:
    """review46 F7: GISGRID_HOST=0.0.0.0x got "another server there? use --port"."""
    from gisgrid.cli.serve import listen
    from gisgrid.errors import ConfigError

    for host in ("0.0.0.0x", "192.0.2.1"):  # not resolved; not this machine's (TEST-NET-1)
        with pytest.raises(ConfigError) as err:
            listen(host, _free_port())
        assert "无法绑定该地址 / the host cannot be bound: not an address of this machine (check GISGRID_HOST" in str(
            err.value
        )
        assert "--port" not in str(err.value)


def test_every_logger_of_serve_has_a_time_and_a_level_and_asyncpg_one_line() -> None:
    """review46 F7: asyncpg's pool retries (and any logger but gisgrid's and uvicorn's) went through Python's
    last-resort handler — no time, no level, a traceback each."""
    script = (
        "import logging, logging.config\n"
        "from api.access_log import log_config\n"
        "logging.config.dictConfig(log_config('info'))\n"
        "try:\n"
        "    raise ConnectionRefusedError(111, 'Connection refused')\n"
        "except OSError:\n"
        "    logging.getLogger('asyncpg.pool').warning('Failed to restore the pool connection floor; retrying',"
        " exc_info=True)\n"
        "logging.getLogger('sqlalchemy.pool.impl.QueuePool').warning('connection %s invalidated', 7)\n"
        "logging.getLogger('somelib').info('not shown: below WARNING')\n"
    )
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environ, timeout=60)
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} WARNING:  "
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr
    assert re.fullmatch(
        stamp + r"Failed to restore the pool connection floor; retrying: ConnectionRefusedError: \[Errno 111\] "
        "Connection refused",
        lines[0],
    ), lines
    assert re.fullmatch(stamp + "connection 7 invalidated", lines[1]), lines


def test_serve_warns_at_start_of_a_photo_store_it_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """review46 F2: serve started on a read-only photo store without a word. ``photos`` a file (root ignores
    chmod); the database unreachable stops it right after the warning."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "photos").write_bytes(b"not a folder")
    with reserved_port() as nowhere:  # dialled: held, so it stays refused
        url = f"postgresql://gisgrid@127.0.0.1:{nowhere.getsockname()[1]}/gisgrid"
        code, err = run_main(monkeypatch, capsys, "serve", GISGRID_DATA_DIR=str(data), GISGRID_DATABASE_URL=url)
    assert code == 1 and err.splitlines()[0] == (
        "warning: 照片存储不可写,带照片的上报和办理将被拒绝(photo_store_unavailable)/ the photo store "
        "(GISGRID_DATA_DIR/photos) cannot be written: Not a directory (ENOTDIR)"
    ), err


def test_a_missing_catalogue_folder_is_refused_naming_the_setting_by_a_command_reading_it(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # review55 F5: "error: /…/data2/catalogue/departments.csv: catalogue file not found", not naming the setting.
    missing = tmp_path / "data2"
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_CATALOGUE_DIR": str(missing)}
    refusal = (
        f"error: GISGRID_CATALOGUE_DIR: {missing}: folder not found (a copy of the project's data/, the folder "
        "holding catalogue/ and rules/)"
    )
    assert run_main(monkeypatch, capsys, "cases", "list", **env) == (1, refusal + "\n")
    # db up refuses it before it migrates anything (exit 1), as a service manager's ExecStartPre needs.
    assert run_main(monkeypatch, capsys, "db", "up", **env) == (1, refusal + "\n")
