"""The HTTP layer's deployment settings: the host names the server answers to (GISGRID_ALLOWED_HOSTS, DNS
rebinding: Starlette's TrustedHostMiddleware with the API's JSON refusal, ``api.http.AllowedHosts``) and who may
frame its pages (GISGRID_FRAME_ANCESTORS: a city portal framing the console). The Referer fallback of the
cross-site check is in ``tests/test_hardening_headers.py`` with the rest of that check."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.main import create_app
from gisgrid.cli.common import build_settings
from gisgrid.errors import ConfigError
from gisgrid.settings import Settings
from maps import console

GATEWAY = "gw.city.gov.cn"
PORTAL = "https://portal.city.gov.cn"
FRAMED_BY_SELF = "frame-ancestors 'self'"


def _client(settings: Settings, tmp_path: Path, **update: object) -> TestClient:
    return TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "d", **update})))


# -- GISGRID_ALLOWED_HOSTS ---------------------------------------------------------------------------------------


@pytest.fixture
def host_checked(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    with _client(settings, tmp_path, allowed_hosts=[GATEWAY, "*.example.gov.cn"]) as client:
        yield client


def _refusal(host: str) -> dict[str, str]:
    return {
        "error": "bad_request",
        "reason": "host_not_allowed",
        "detail": f"主机名「{host}」不在 GISGRID_ALLOWED_HOSTS 中 / Host not allowed: {host!r} is not listed in "
        "GISGRID_ALLOWED_HOSTS, the host names this server answers to",
    }


@pytest.mark.parametrize(
    "host", [GATEWAY, "GW.City.gov.cn", f"{GATEWAY}:8443", "a.example.gov.cn", "b.a.example.gov.cn:8000"]
)
def test_a_listed_host_or_one_under_a_wildcard_is_answered(host_checked: TestClient, host: str) -> None:
    r = host_checked.get("/health/live", headers={"Host": host})  # readiness needs grids: not this test's matter
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "alive"
    # by the same app that refuses another name
    other = host_checked.get("/health", headers={"Host": "evil.example"})
    assert (other.status_code, other.json()) == (400, _refusal("evil.example"))


@pytest.mark.parametrize(
    ("host", "named"),
    [
        ("evil.example", "evil.example"),
        ("Evil.Example:8000", "evil.example"),  # named as the setting would list it: lower case, no port
        ("testserver", "testserver"),  # the test client's own name, not listed
        ("example.gov.cn", "example.gov.cn"),  # *.example.gov.cn is its subdomains only
        (f"{GATEWAY}.evil.example", f"{GATEWAY}.evil.example"),
        ("127.0.0.1:8000", "127.0.0.1"),
    ],
)
def test_an_unlisted_host_gets_the_json_400_with_the_hardening_headers(
    host_checked: TestClient, host: str, named: str
) -> None:
    r = host_checked.get("/health", headers={"Host": host})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/json"
    assert r.json() == _refusal(named)
    # HardeningHeaders is outside the host check: the refusal is framed by nobody either
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "SAMEORIGIN"
    assert r.headers["content-security-policy"] == FRAMED_BY_SELF


def test_the_host_is_checked_before_every_other_layer(host_checked: TestClient) -> None:
    evil = {"Host": "evil.example"}
    answers = {
        # the tile fast path and CORS are inside it too
        "tile": host_checked.get("/tiles/unit_grids/14/13361/6486.mvt", headers=evil),
        # a cross-site write is refused for its host before its Origin is looked at
        "write": host_checked.post("/cases", json={}, headers={**evil, "Origin": "https://evil.example"}),
        "unknown path": host_checked.get("/nope", headers=evil),
        "HEAD": host_checked.head("/health", headers=evil),
    }
    assert {k: r.status_code for k, r in answers.items()} == dict.fromkeys(answers, 400)
    assert answers["write"].json() == answers["tile"].json() == _refusal("evil.example")
    assert answers["HEAD"].content == b""


def test_without_the_setting_every_host_is_answered(settings: Settings, tmp_path: Path) -> None:
    assert Settings().allowed_hosts == []
    with _client(settings, tmp_path) as client:
        assert client.get("/health/live").status_code == 200  # Host: testserver
        assert client.get("/health/live", headers={"Host": "evil.example"}).status_code == 200
        assert client.get("/health/live", headers={"Host": "127.0.0.1:8000"}).status_code == 200  # gisgrid serve


def test_allowed_hosts_are_read_as_cors_origins_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GISGRID_ALLOWED_HOSTS", f" {GATEWAY}, *.Example.gov.cn,127.0.0.1 ,")
    assert Settings().allowed_hosts == [GATEWAY, "*.example.gov.cn", "127.0.0.1"]
    monkeypatch.setenv("GISGRID_ALLOWED_HOSTS", f'["{GATEWAY}", "[::1]"]')
    assert Settings().allowed_hosts == [GATEWAY, "[::1]"]


@pytest.mark.parametrize("bad", [f"{GATEWAY}:443", f"https://{GATEWAY}", "gw.*.gov.cn", "*example.gov.cn", "a b"])
def test_an_allowed_host_with_a_port_scheme_or_inner_wildcard_is_refused_at_load(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("GISGRID_ALLOWED_HOSTS", f"{GATEWAY},{bad}")
    with pytest.raises(ConfigError) as refused:
        build_settings()
    assert str(refused.value) == (
        f"GISGRID_ALLOWED_HOSTS: allowed host {bad!r} must be a host name without scheme or port, e.g. "
        "gw.city.gov.cn, *.example.gov.cn (a wildcard as the first label only) or 127.0.0.1"
    )


# -- GISGRID_FRAME_ANCESTORS -------------------------------------------------------------------------------------


def test_by_default_only_this_origin_frames_a_page(installed_assets: None, page_client: TestClient) -> None:
    assert Settings().frame_ancestors == ["'self'"]
    for path in ("/health", "/nope"):
        r = page_client.get(path)
        assert r.headers.get_list("x-frame-options") == ["SAMEORIGIN"], path
        assert r.headers.get_list("content-security-policy") == [FRAMED_BY_SELF], path
    page = page_client.get("/console")
    assert page.status_code == 200
    assert page.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    # the page's own policy with the directive merged in, once
    nonce = _nonce(page.headers["content-security-policy"])
    assert page.headers.get_list("content-security-policy") == [
        f"{console.csp(page_client.app.state.basemap, nonce)}; {FRAMED_BY_SELF}"  # type: ignore[attr-defined]
    ]


def _nonce(policy: str) -> str:
    found = re.search(r"'nonce-([^']+)'", policy)
    assert found is not None, policy
    return found.group(1)


def test_a_listed_portal_may_frame_the_console(
    installed_assets: None, loaded: object, settings: Settings, tmp_path: Path
) -> None:
    with _client(settings, tmp_path, frame_ancestors=["'self'", PORTAL]) as client:
        answers = {path: client.get(path) for path in ("/console", "/field", "/docs", "/health", "/nope")}
    assert {p: r.status_code for p, r in answers.items()} == {
        "/console": 200,
        "/field": 200,
        "/docs": 200,
        "/health": 200,
        "/nope": 404,
    }
    policy = f"frame-ancestors 'self' {PORTAL}"
    for path, r in answers.items():
        # X-Frame-Options cannot name the portal, and SAMEORIGIN would keep it out: not sent
        assert "x-frame-options" not in r.headers, path
        [csp] = r.headers.get_list("content-security-policy")
        assert csp.endswith(policy) and csp.count("frame-ancestors") == 1, (path, csp)
    assert answers["/health"].headers["content-security-policy"] == policy
    nonce = _nonce(answers["/console"].headers["content-security-policy"])
    assert answers["/console"].headers["content-security-policy"] == (
        f"{console.csp(client.app.state.basemap, nonce)}; {policy}"  # type: ignore[attr-defined]
    )


def test_frame_ancestors_none_is_deny(settings: Settings, tmp_path: Path) -> None:
    with _client(settings, tmp_path, frame_ancestors=["'none'"]) as client:
        r = client.get("/health")
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["content-security-policy"] == "frame-ancestors 'none'"


def test_frame_ancestors_are_read_as_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GISGRID_FRAME_ANCESTORS", f"'self', {PORTAL}/, https://*.city.gov.cn:8443")
    assert Settings().frame_ancestors == ["'self'", PORTAL, "https://*.city.gov.cn:8443"]
    monkeypatch.setenv("GISGRID_FRAME_ANCESTORS", f'["{PORTAL}", "\'SELF\'"]')
    assert Settings().frame_ancestors == [PORTAL, "'self'"]
    monkeypatch.setenv("GISGRID_FRAME_ANCESTORS", "")
    assert Settings().frame_ancestors == ["'self'"]


ORIGIN_ONLY = (
    "must be 'self', 'none' or an origin like https://portal.city.gov.cn (scheme://host[:port], a host may start "
    "with *.; no path, spaces, ; or ,)"
)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (f'["{PORTAL}; script-src *"]', f"frame ancestor '{PORTAL}; script-src *' {ORIGIN_ONLY}"),
        (f"[\"'self' {PORTAL}\"]", f"frame ancestor \"'self' {PORTAL}\" {ORIGIN_ONLY}"),
        (f"{PORTAL}/console", f"frame ancestor '{PORTAL}/console' {ORIGIN_ONLY}"),
        ("portal.city.gov.cn", f"frame ancestor 'portal.city.gov.cn' {ORIGIN_ONLY}"),
        ("https://portal.*.gov.cn", f"frame ancestor 'https://portal.*.gov.cn' {ORIGIN_ONLY}"),
        ("self", "frame ancestor 'self': a keyword is written quoted, 'self'"),
        (f"'none',{PORTAL}", "frame ancestor 'none' cannot be listed with other sources"),
    ],
)
def test_a_malformed_frame_ancestor_is_refused_at_load(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("GISGRID_FRAME_ANCESTORS", value)
    with pytest.raises(ConfigError) as refused:
        build_settings()
    assert str(refused.value) == f"GISGRID_FRAME_ANCESTORS: {message}"
    with pytest.raises(ValidationError):
        Settings()
