"""Hardening headers (review24 #7): ``X-Content-Type-Options: nosniff`` on every answer of the app — JSON, pages,
photos, printed orders, tiles from the fast path, errors of every layer — and the order pages' own
Content-Security-Policy as a header, as /console sends its policy. No answer may be framed by another site
(``X-Frame-Options``, CSP ``frame-ancestors``), and a browser's write sent by another site's page is refused
(``api.http.CrossSiteGuard``, review D1: the gateway's login cookie goes with a cross-site form post)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from starlette.datastructures import Headers

from api.http import FRAME_ANCESTORS, CrossSiteGuard, with_frame_ancestors
from api.main import create_app
from gisgrid import documents
from gisgrid.settings import Settings
from maps import console
from tests.test_api_components import lamp_with_photo
from tests.test_cases import dispatched_with_photo as dispatched_with_photo  # the fixture, used by name

NOSNIFF = "nosniff"
FRAMED_BY_SELF = "frame-ancestors 'self'"


def test_every_answer_says_nosniff(
    installed_assets: None, dispatched_with_photo: Any, spot: tuple[float, float]
) -> None:
    client, case = dispatched_with_photo
    cid, (doc,) = case["id"], case["documents"]
    [photo] = client.get(f"/cases/{cid}").json()["photos"]
    _, _, attached = lamp_with_photo(client, spot, (32, 24))
    [comp_photo] = attached.json()["properties"]["photos"]
    script = re.search(r'<script src="(/static/vendor/[^"]+)"', client.get("/console").text)
    assert script is not None
    answers = {
        "json": client.get(f"/cases/{cid}"),
        "list": client.get("/cases", params={"limit": 1}),
        "photo": client.get(photo["url"]),
        "thumb": client.get(photo["thumb_url"]),
        "component photo": client.get(comp_photo["url"]),
        "order": client.get(doc["url"]),
        "order pdf": client.get(doc["pdf_url"]),
        "console": client.get("/console"),
        "field": client.get("/field"),
        "docs": client.get("/docs"),
        "openapi": client.get("/openapi.json"),
        "vendored asset": client.get(script.group(1)),
        "tile (fast path)": client.get("/tiles/unit_grids/14/13361/6486.mvt"),
        "unknown tile (fast path)": client.get("/tiles/nope/14/1/1.mvt"),
        "unknown path": client.get("/nope"),
        "unknown photo": client.get(f"/cases/{cid}/photos/{'0' * 64}"),
        "refused query": client.get("/cases", params={"limit": 99999}),
        "refused action": client.post(f"/cases/{cid}/actions/close", json={"version": 1}, headers={"X-Role": "x"}),
        "health HEAD": client.head("/health"),
        "too large": client.post(
            "/cases", content=b"{}", headers={"Content-Type": "application/json", "Content-Length": str(1 << 30)}
        ),
    }
    statuses = {name: r.status_code for name, r in answers.items()}
    ok = ["json", "list", "photo", "thumb", "component photo", "order", "order pdf", "console", "field", "docs",
          "openapi", "vendored asset", "tile (fast path)", "health HEAD"]  # fmt: skip
    assert statuses == {
        **dict.fromkeys(ok, 200),
        "unknown tile (fast path)": 404,
        "unknown path": 404,
        "unknown photo": 404,
        "refused query": 422,
        "refused action": 422,
        "too large": 413,
    }
    missing = {
        name: dict(r.headers) for name, r in answers.items() if r.headers.get("x-content-type-options") != NOSNIFF
    }
    assert missing == {}
    # sent once, whatever the route set
    assert all(len(r.headers.get_list("x-content-type-options")) == 1 for r in answers.values())
    assert answers["photo"].headers["content-type"] == "image/jpeg"
    # framed by this origin's pages only: both headers once on every answer, the policy naming frame-ancestors
    framing = {
        name: (r.headers.get_list("x-frame-options"), r.headers.get_list("content-security-policy"))
        for name, r in answers.items()
    }
    unframed = {
        name: seen
        for name, seen in framing.items()
        if seen[0] != ["SAMEORIGIN"] or len(seen[1]) != 1 or FRAMED_BY_SELF not in seen[1][0]
    }
    assert unframed == {}
    # where the app set no policy, the answer's policy is that directive alone (it restricts nothing else)
    for name in ("json", "photo", "tile (fast path)", "unknown path", "too large"):
        assert answers[name].headers["content-security-policy"] == FRAMED_BY_SELF, name
    # review54 F7: no Referer to other sites, camera and GPS for this origin only, no microphone — once each
    policies = {
        name: (r.headers.get_list("referrer-policy"), r.headers.get_list("permissions-policy"))
        for name, r in answers.items()
    }
    expected = (["same-origin"], ["camera=(self), geolocation=(self), microphone=()"])
    assert {name: seen for name, seen in policies.items() if seen != expected} == {}


def test_an_unexpected_fault_answers_500_with_nosniff(settings: Settings) -> None:
    """A 500 is answered by Starlette's outermost error layer, outside every middleware the app adds."""
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a fault of ours")

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/boom")
    assert r.status_code == 500 and r.json()["error"] == "internal_error"
    assert r.headers["x-content-type-options"] == NOSNIFF
    assert r.headers["x-frame-options"] == "SAMEORIGIN"
    assert r.headers["content-security-policy"] == FRAMED_BY_SELF


def test_the_pages_run_only_their_own_inline_scripts_by_a_nonce_of_each_request(
    installed_assets: None, page_client: TestClient
) -> None:
    """review54 F7: /console, /field and /docs send ``script-src 'self' 'nonce-…'`` — no 'unsafe-inline' — with a
    new nonce per request, carried by each of the page's script tags; no inline event handler (a nonce cannot
    cover one) and no javascript: URL anywhere in the page. Scripts with ``src`` come from this origin."""
    seen: dict[str, list[str]] = {}
    for path in ("/console", "/field", "/docs", "/console", "/field", "/docs"):
        r = page_client.get(path)
        assert r.status_code == 200, (path, r.text)
        [policy] = r.headers.get_list("content-security-policy")
        [script_src] = [d.strip() for d in policy.split(";") if d.strip().startswith("script-src ")]
        found = re.fullmatch(r"script-src 'self' 'nonce-([A-Za-z0-9_-]{24})'", script_src)
        assert found is not None, (path, script_src)
        nonce = found.group(1)
        tags = re.findall(r"<script\b[^>]*>", r.text)
        assert len(re.findall(r"<script\b", r.text)) == len(tags), path
        inline = [tag for tag in tags if " src=" not in tag]
        assert inline and all(tag.startswith(f'<script nonce="{nonce}"') for tag in inline), (path, inline)
        assert all("nonce" not in tag for tag in tags if " src=" in tag), path
        assert re.search(r"<[a-zA-Z][^>]*\son[a-z]+\s*=", r.text) is None, path
        assert "javascript:" not in r.text.lower(), path
        seen.setdefault(path, []).append(nonce)
    assert {path: len(set(nonces)) for path, nonces in seen.items()} == {"/console": 2, "/field": 2, "/docs": 2}


def test_a_failed_statement_is_logged_without_the_values_it_bound(
    settings: Settings, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """review54 F6: a statement failing with a value in it (psycopg2 binds on the client, so PostgreSQL's message
    quotes it) is a 500 whose log line names the SQL, the error's class and SQLSTATE and the frames — not the
    value (a reporter's name, an address: personal data)."""
    app = create_app(settings)
    personal = "2026-01-01 " + "".join(["张", "三 河", "南路 12 号"])  # not on a line the traceback shows

    @app.get("/boom-sql")
    def boom_sql() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT CAST(:when AS timestamptz)"), {"when": personal})

    with caplog.at_level("ERROR", logger="gisgrid.api"), TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/boom-sql")
    assert (r.status_code, r.json()["error"]) == (500, "internal_error")
    [record] = [rec for rec in caplog.records if "500 internal error" in rec.getMessage()]
    said = record.getMessage()
    assert record.exc_info is None  # no exception text: the traceback's frames are in the message
    assert "张三" not in said and "河南路" not in said
    ref = r.json()["detail"].split("reference ")[1].split(")")[0]
    assert said.startswith(
        f"GET /boom-sql: 500 internal error ref={ref}: InvalidDatetimeFormat (SQLSTATE 22007; PostgreSQL's message "
        "left out: it may quote bound values)\n[SQL: SELECT CAST(%(when)s AS timestamptz)]\nTraceback"
    )
    assert "in boom_sql" in said


def _nonce(page: Any) -> str:
    found = re.search(r"'nonce-([^']+)'", page.headers["content-security-policy"])
    assert found is not None
    return found.group(1)


def test_the_order_pages_send_their_content_security_policy(dispatched_with_photo: Any) -> None:
    client, case = dispatched_with_photo
    cid = case["id"]
    body = {"version": case["version"], "payload": {"reason": "重点督办", "flagged": True}}
    supervised = client.post(f"/cases/{cid}/actions/supervise", json=body, headers={"X-Role": "leader"})
    assert supervised.status_code == 200, supervised.text
    docs = supervised.json()["documents"]
    assert [d["kind"] for d in docs] == ["dispatch", "supervision"]
    for doc in docs:
        page = client.get(doc["url"])
        assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
        # the page's own policy with frame-ancestors merged in (one policy: a second header would be one more)
        assert page.headers.get_list("content-security-policy") == [f"{documents.CSP}; {FRAMED_BY_SELF}"]
        # the same policy as the page's <meta> (kept by a saved file), which allows its own photos and inline map;
        # a <meta> policy cannot say frame-ancestors (browsers ignore it there), so only the header has it
        meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page.text)
        assert meta is not None and html.unescape(meta.group(1)) == documents.CSP
        assert "img-src 'self' data:" in documents.CSP and "<svg" in page.text
        assert f'src="/cases/{cid}/photos/' in page.text
    console_page = client.get("/console")
    # the console's policy leaves frame-ancestors to the middleware (GISGRID_FRAME_ANCESTORS): merged in once
    assert console_page.headers.get_list("content-security-policy") == [
        f"{console.csp(client.app.state.basemap, _nonce(console_page))}; {FRAMED_BY_SELF}"
    ]
    assert console_page.headers["x-frame-options"] == "SAMEORIGIN"


CSP = "content-security-policy"
REPORT_ONLY = "content-security-policy-report-only"


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ([], [(CSP, FRAMED_BY_SELF)]),
        ([(CSP, "default-src 'none';")], [(CSP, f"default-src 'none'; {FRAMED_BY_SELF}")]),
        ([(CSP, "  ")], [(CSP, FRAMED_BY_SELF)]),
        # a policy that names frame-ancestors (any case) is the page's choice, kept as it is
        ([("Content-Security-Policy", "img-src *; Frame-Ancestors 'none'")],) * 2,
        # several policies are each enforced: the directive goes into the first
        (
            [(CSP, "default-src 'self'"), (CSP, "img-src 'self'")],
            [(CSP, f"default-src 'self'; {FRAMED_BY_SELF}"), (CSP, "img-src 'self'")],
        ),
        ([(CSP, "img-src 'self'"), (CSP, "frame-ancestors 'none'")],) * 2,
        # a report-only policy enforces nothing
        ([(REPORT_ONLY, "frame-ancestors 'none'")], [(REPORT_ONLY, "frame-ancestors 'none'"), (CSP, FRAMED_BY_SELF)]),
    ],
)
def test_frame_ancestors_is_merged_into_a_policy_never_clobbering_it(
    given: list[tuple[str, str]], sent: list[tuple[str, str]]
) -> None:
    raw = [(k.encode(), v.encode()) for k, v in given]
    assert [(k.decode(), v.decode()) for k, v in with_frame_ancestors(raw)] == sent
    assert FRAME_ANCESTORS.decode() == FRAMED_BY_SELF


# -- cross-site writes (CSRF) ------------------------------------------------------------------------------------

APP_ORIGIN = "https://app.example.cn"  # a web app of another origin, listed in GISGRID_CORS_ORIGINS
EVIL = "https://evil.example"


def _refused(origins: list[str], **headers: str) -> str | None:
    return CrossSiteGuard(app=None, allowed_origins=origins).refused(Headers(headers=headers))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "seen"),
    [
        ({"sec-fetch-site": "same-origin"}, None),
        ({"sec-fetch-site": "same-origin", "origin": EVIL}, None),  # the browser's own verdict wins
        ({"sec-fetch-site": "none"}, None),  # typed or bookmarked by the user
        ({"sec-fetch-site": "cross-site", "origin": APP_ORIGIN}, None),
        ({"sec-fetch-site": "same-site", "origin": "HTTPS://APP.example.cn/"}, None),
        ({"sec-fetch-site": "cross-site", "origin": EVIL}, f"Sec-Fetch-Site: cross-site, Origin: {EVIL}"),
        (
            {"sec-fetch-site": "same-site", "origin": "https://other.city.cn"},
            "Sec-Fetch-Site: same-site, Origin: https://other.city.cn",
        ),
        ({"sec-fetch-site": "cross-site"}, "Sec-Fetch-Site: cross-site, no Origin"),
        # the Sec-Fetch-Site verdict is not overruled by an Origin that looks like this server's
        (
            {"sec-fetch-site": "cross-site", "origin": "https://gw.city", "host": "gw.city"},
            "Sec-Fetch-Site: cross-site, Origin: https://gw.city",
        ),
        ({}, None),  # not a browser
        ({"host": "gw.city"}, None),
        ({"origin": "https://gw.city", "host": "gw.city"}, None),  # plain HTTP or an older browser: Origin and Host
        ({"origin": "https://gw.city", "host": "gw.city:443"}, None),
        ({"origin": "http://10.0.0.5:8080", "host": "10.0.0.5:8080"}, None),
        ({"origin": "http://[::1]:8000", "host": "[::1]:8000"}, None),
        ({"origin": "https://gw.city", "host": "127.0.0.1:8000", "x-forwarded-host": "gw.city"}, None),
        ({"origin": "https://gw.city", "host": "127.0.0.1:8000", "x-forwarded-host": "gw.city:443, 10.0.0.2"}, None),
        ({"origin": APP_ORIGIN, "host": "gw.city"}, None),
        ({"origin": EVIL, "host": "gw.city"}, f"Origin: {EVIL}"),
        ({"origin": "https://gw.city.evil.example", "host": "gw.city"}, "Origin: https://gw.city.evil.example"),
        ({"origin": "http://10.0.0.5:8081", "host": "10.0.0.5:8080"}, "Origin: http://10.0.0.5:8081"),
        ({"origin": "null", "host": "gw.city"}, "Origin: null"),
        ({"origin": "ftp://gw.city", "host": "gw.city"}, "Origin: ftp://gw.city"),
        ({"origin": "http://[::1", "host": "[::1"}, "Origin: http://[::1"),
        ({"origin": "https://gw.city"}, "Origin: https://gw.city"),  # no Host to be
        # neither Sec-Fetch-Site nor Origin (an old browser, IE mode): the Referer's origin, judged as Origin is
        ({"referer": "https://gw.city/console?x=1", "host": "gw.city"}, None),
        ({"referer": "https://gw.city:443/console", "host": "gw.city"}, None),
        ({"referer": "https://gw.city/console", "host": "127.0.0.1:8000", "x-forwarded-host": "gw.city"}, None),
        ({"referer": f"{APP_ORIGIN}/page", "host": "gw.city"}, None),  # listed in GISGRID_CORS_ORIGINS
        ({"referer": "  ", "host": "gw.city"}, None),  # empty: no page sends that
        ({"referer": f"{EVIL}/gw.city", "host": "gw.city"}, f"Referer: {EVIL}/gw.city"),
        ({"referer": "https://gw.city.evil.example/", "host": "gw.city"}, "Referer: https://gw.city.evil.example/"),
        ({"referer": "http://gw.city:8080/", "host": "gw.city"}, "Referer: http://gw.city:8080/"),
        ({"referer": "https://evil.example@gw.city/", "host": "gw.city"}, "Referer: https://evil.example@gw.city/"),
        # malformed: no browser sends it
        ({"referer": "gw.city/console", "host": "gw.city"}, "Referer: gw.city/console"),
        ({"referer": "/console", "host": "gw.city"}, "Referer: /console"),
        ({"referer": "null", "host": "gw.city"}, "Referer: null"),
        ({"referer": "ftp://gw.city/", "host": "gw.city"}, "Referer: ftp://gw.city/"),
        ({"referer": "http://[::1/", "host": "[::1]"}, "Referer: http://[::1/"),
        ({"referer": "https://gw.city/"}, "Referer: https://gw.city/"),  # no Host to be
        # an Origin or Sec-Fetch-Site decides: the Referer is not looked at
        ({"origin": "https://gw.city", "referer": f"{EVIL}/", "host": "gw.city"}, None),
        ({"sec-fetch-site": "same-origin", "referer": f"{EVIL}/"}, None),
        ({"origin": EVIL, "referer": "https://gw.city/", "host": "gw.city"}, f"Origin: {EVIL}"),
    ],
)  # fmt: skip
def test_which_requests_count_as_another_sites(headers: dict[str, str], seen: str | None) -> None:
    assert _refused([APP_ORIGIN], **headers) == seen


def test_cors_origins_star_lets_every_site_but_a_null_origin_post() -> None:
    assert _refused(["*"], origin=EVIL, **{"sec-fetch-site": "cross-site"}) is None
    assert _refused(["*"], origin=EVIL) is None
    assert _refused(["*"], origin="null") == "Origin: null"
    assert _refused(["*", "null"], origin="null", **{"sec-fetch-site": "cross-site"}) is not None
    assert _refused([], origin=APP_ORIGIN) == f"Origin: {APP_ORIGIN}"


@pytest.fixture
def guarded(loaded: Engine, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    """The app with one other web app allowed (GISGRID_CORS_ORIGINS); the test client's Host is ``testserver``."""
    configured = settings.model_copy(update={"data_dir": tmp_path / "d", "cors_origins": [APP_ORIGIN]})
    with TestClient(create_app(configured)) as client:
        yield client


def _cases(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM cases")).scalar_one())


def _report(spot: tuple[float, float]) -> dict[str, str]:
    return {"class_code": "06010", "lon": str(spot[0]), "lat": str(spot[1]), "datum": "cgcs2000"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
        {"Origin": EVIL},  # an older browser, or plain HTTP: no Sec-Fetch-Site
        {"Origin": "null"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://testserver.evil.example"},
    ],
)
def test_a_cross_site_form_post_is_refused_and_writes_nothing(
    guarded: TestClient, loaded: Engine, spot: tuple[float, float], headers: dict[str, str]
) -> None:
    before = _cases(loaded)
    r = guarded.post("/cases/form", data=_report(spot), headers={**headers, "X-Role": "shift_lead"})
    assert r.status_code == 403, r.text
    seen = ", ".join(f"{k}: {v}" for k, v in reversed(headers.items()))
    assert r.json() == {
        "error": "forbidden",
        "reason": "cross_site_request",
        "detail": f"POST refused: a browser sent it from a page of another site ({seen}). Another site's page may "
        "not act with the identity this browser has here; a web app of another origin that should call this API "
        "is listed in GISGRID_CORS_ORIGINS",
    }
    assert r.headers["x-content-type-options"] == NOSNIFF  # an answer of the app like any other
    assert _cases(loaded) == before == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},  # not a browser: curl, the CLI, the hotline's system
        {"Origin": "http://testserver"},  # this server's own page, Origin matching Host
        {"Origin": "http://testserver:80"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"},  # Chromium's same-origin fetch
        {"Sec-Fetch-Site": "same-origin"},
        {"Origin": APP_ORIGIN},  # a configured CORS origin
        {"Origin": APP_ORIGIN, "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://gw.city", "Host": "127.0.0.1:8000", "X-Forwarded-Host": "gw.city"},  # behind a proxy
    ],
)
def test_a_form_post_of_this_site_or_an_allowed_one_or_no_browser_is_taken(
    guarded: TestClient, loaded: Engine, spot: tuple[float, float], headers: dict[str, str]
) -> None:
    r = guarded.post("/cases/form", data=_report(spot), headers={**headers, "X-Role": "shift_lead"})
    assert r.status_code == 201, r.text
    assert _cases(loaded) == 1


def test_without_origin_and_sec_fetch_site_the_referer_decides(
    guarded: TestClient, loaded: Engine, spot: tuple[float, float]
) -> None:
    """An old browser (IE mode) sends neither header on a form post, but says the page it came from."""
    sent = {
        "this server's page": "http://testserver/field?x=1",
        "a CORS origin's page": f"{APP_ORIGIN}/report",
        "another site's page": f"{EVIL}/page",
        "malformed": "not a URL",
        "none": None,  # curl, the CLI: no browser
    }
    answers = {
        name: guarded.post(
            "/cases/form", data=_report(spot), headers={"X-Role": "shift_lead", **({"Referer": r} if r else {})}
        )
        for name, r in sent.items()
    }
    assert {name: r.status_code for name, r in answers.items()} == {
        "this server's page": 201,
        "a CORS origin's page": 201,
        "another site's page": 403,
        "malformed": 403,
        "none": 201,
    }
    for name in ("another site's page", "malformed"):
        assert answers[name].json() == {
            "error": "forbidden",
            "reason": "cross_site_request",
            "detail": f"POST refused: a browser sent it from a page of another site (Referer: {sent[name]}). "
            "Another site's page may not act with the identity this browser has here; a web app of another origin "
            "that should call this API is listed in GISGRID_CORS_ORIGINS",
        }
    assert _cases(loaded) == 3


def test_every_write_route_is_guarded_and_reads_are_not(
    guarded: TestClient, loaded: Engine, spot: tuple[float, float]
) -> None:
    filed = guarded.post("/cases/form", data=_report(spot), headers={"X-Role": "shift_lead"})
    assert filed.status_code == 201, filed.text
    cid = filed.json()["id"]
    evil = {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}
    refused = {
        "action form": guarded.post(
            f"/cases/{cid}/actions/verify/form", data={"version": "1"}, headers={**evil, "X-Role": "supervisor"}
        ),
        "action JSON": guarded.post(
            f"/cases/{cid}/actions/verify", json={"version": 1}, headers={**evil, "X-Role": "supervisor"}
        ),
        "component photos": guarded.post(
            "/components/1/photos",
            files={"photos": ("a.jpg", b"\xff\xd8", "image/jpeg")},
            headers={**evil, "X-Role": "data_admin"},
        ),
        "report JSON": guarded.post("/cases", json={"class_code": "06010"}, headers=evil),
        "patch": guarded.patch("/components/1", json={"name": "x"}, headers={**evil, "X-Role": "data_admin"}),
        "delete": guarded.delete(f"/cases/{cid}", headers=evil),  # no such route: refused before routing
    }
    assert {k: (r.status_code, r.json().get("reason")) for k, r in refused.items()} == dict.fromkeys(
        refused, (403, "cross_site_request")
    )
    # nothing was done: the case is where it was filed
    case = guarded.get(f"/cases/{cid}", headers=evil)
    assert case.status_code == 200 and case.json()["version"] == 1
    assert _cases(loaded) == 1
    # reads from anywhere are answered (CORS decides whether that page may read them)
    assert guarded.get("/cases", headers=evil).status_code == 200
    assert guarded.head("/health", headers={"Origin": "null"}).status_code == 200
    # a preflight of the allowed app still gets its answer (OPTIONS is not a write)
    preflight = {"Origin": APP_ORIGIN, "Access-Control-Request-Method": "POST", "Sec-Fetch-Site": "cross-site"}
    assert guarded.options("/cases/form", headers=preflight).status_code == 200
