"""Browser tests: the real pages in headless Debian Chromium driven by Playwright, against a live app.

The app (``api.main.create_app`` on the session's throwaway database, with the console, tiles and field routers)
runs under uvicorn in a background thread on a free port for the whole session; each test gets the small
district loaded afresh (``clean_db``) and a fresh browser context whose every request is recorded.

Chromium is the distribution's (``/usr/bin/chromium``, or ``GISGRID_CHROMIUM``), never a Playwright download.
Without it or the ``playwright`` package the tests are skipped, unless ``GISGRID_REQUIRE_BROWSER=1`` (then they
fail). Screenshots go to ``test-artifacts/browser/`` (git-ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from api.main import create_app
from gisgrid.cases import sync_reference_data
from gisgrid.settings import PROJECT_ROOT, Settings
from maps import assets
from tests.fixtures import load_small_district

CHROMIUM = os.environ.get("GISGRID_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "browser"
DESK_VIEWPORT = {"width": 1366, "height": 800}
#: A phone-sized touch browser context.
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "zh-CN",
}


def _unavailable(reason: str) -> None:
    if os.environ.get("GISGRID_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


class LiveServer:
    """uvicorn serving ``app`` in a daemon thread on an already-bound socket (no port race); ``root_path``: the
    prefix a proxy in front serves it under (``gisgrid serve --root-path``)."""

    def __init__(self, app: FastAPI, root_path: str = "") -> None:
        import uvicorn

        self.app = app
        # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and with
        # proto 0 every small answer waits ~40 ms for a delayed ACK (Nagle).
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False, root_path=root_path)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live app did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install playwright; no browser download)")
    if not Path(CHROMIUM).is_file():
        _unavailable(f"no Chromium at {CHROMIUM} (Debian: apt-get install -y chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def live_server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    assets.install_assets()
    app = create_app(settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("browser-data")}))
    server = LiveServer(app)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live(browser: Any, live_server: LiveServer, clean_db: Engine, tmp_path: Path) -> LiveServer:
    """The live app over a freshly loaded small district (departments synced again after the wipe)."""
    load_small_district(clean_db, tmp_path)
    sync_reference_data(clean_db, live_server.app.state.cases)
    return live_server


@pytest.fixture
def api(live: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client on the live app (what another user's phone or desk would do)."""
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


@dataclass
class Watch:
    """Every request a page makes, the failed ones and the answers ≥ 400."""

    origin: str
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        page.on("response", self._response)
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        text = message.text
        if text.startswith(CSP_VIOLATION) or (message.type == "error" and "Content Security Policy" in text):
            self.csp_violations.append(text)

    def _response(self, r: Any) -> None:
        self.responses.append(r)
        if r.status >= 400:
            self.bad.append(f"{r.status} {r.url}")

    def off_origin(self) -> list[str]:
        """Requests to anything but this app (data: and blob: URLs never leave the browser)."""
        out = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob"):
                continue
            if f"{parts.scheme}://{parts.netloc}" != self.origin:
                out.append(url)
        return out


@dataclass
class Tab:
    page: Any
    context: Any
    watch: Watch
    name: str

    def shot(self, label: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


#: What a page of a tab says on its console for each ``securitypolicyviolation`` event (review54 F7: the pages run
#: their inline scripts by a nonce; one the policy blocked is a fault of the page).
CSP_VIOLATION = "gisgrid-test CSP violation:"
_CSP_LISTENER = """document.addEventListener("securitypolicyviolation", (e) => {
  console.error(PREFIX + " " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " +
    e.sourceFile + ":" + e.lineNumber);
});""".replace("PREFIX", json.dumps(CSP_VIOLATION))


def open_tab(browser: Any, origin: str, name: str, **context_options: Any) -> Iterator[Tab]:
    """A fresh context and page whose requests are watched; ``origin``: the only one it may ask. A tab whose page
    reported a Content-Security-Policy violation fails its test at teardown."""
    context = browser.new_context(**context_options)
    context.set_default_timeout(15_000)
    context.add_init_script(_CSP_LISTENER)
    page = context.new_page()
    watch = Watch(origin)
    watch.attach(page)
    tab = Tab(page, context, watch, name)
    try:
        yield tab
    finally:
        with contextlib.suppress(Exception):
            tab.shot("end")
        context.close()
    assert watch.csp_violations == [], watch.csp_violations


#: The console takes no step without the operator's name (操作人): a desk tab has typed this one before its first
#: page, kept as the console keeps it (localStorage) — once a tab, so a test may clear it. A test marked
#: ``unnamed_operator`` starts with none.
OPERATOR = "测试值班员"
_NAMED_ONCE = """try {
  if (!sessionStorage.getItem("gisgrid.test.named")) {
    sessionStorage.setItem("gisgrid.test.named", "1");
    if (!localStorage.getItem("gisgrid.console.actor")) { localStorage.setItem("gisgrid.console.actor", NAME); }
  }
} catch (e) {}""".replace("NAME", json.dumps(OPERATOR))


def console_tab(browser: Any, origin: str, request: pytest.FixtureRequest, viewport: dict[str, int]) -> Iterator[Tab]:
    """A console tab, its operator named :data:`OPERATOR` unless the test is marked ``unnamed_operator``."""
    for tab in open_tab(browser, origin, request.node.name, viewport=viewport, locale="zh-CN"):
        if request.node.get_closest_marker("unnamed_operator") is None:
            tab.context.add_init_script(_NAMED_ONCE)
        yield tab


@pytest.fixture
def desk(browser: Any, live: LiveServer, request: pytest.FixtureRequest) -> Iterator[Tab]:
    """A desktop browser tab (the operator console)."""
    yield from console_tab(browser, live.url, request, DESK_VIEWPORT)


@pytest.fixture
def phone(browser: Any, live: LiveServer, request: pytest.FixtureRequest) -> Iterator[Tab]:
    """A phone-sized touch browser tab (the field page)."""
    yield from open_tab(browser, live.url, request.node.name, **PHONE)
