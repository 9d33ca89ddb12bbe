"""The app: service routes beside the site, localized pages, strict headers, no cookies."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from starlette.testclient import TestClient

from form_service.settings import Settings
from outreach.loader import LoadedProfile
from outreach.profile import Area

from .conftest import start_client, submit, token_of
from .samples import VALID_FORM

PAGES = ["/report", "/es/report", "/status", "/es/status"]


def test_the_form_in_english(client: TestClient) -> None:
    page = client.get("/report")
    assert page.status_code == 200
    assert '<html lang="en" dir="ltr">' in page.text
    assert "What happened, or what did you notice?" in page.text
    for area in ("North Harbor", "Southport", "Eastwood Valley", 'value="unknown"'):
        assert area in page.text
    for value in (
        "school",
        "college",
        "workplace",
        "public_place",
        "critical_infrastructure",
        "online",
        "home",
        "other",
        "harm_others",
        "self_harm",
        "both",
        "not_sure",
    ):
        assert f'value="{value}"' in page.text
    assert 'action="/report"' in page.text


def test_the_form_in_spanish(client: TestClient) -> None:
    page = client.get("/es/report")
    assert '<html lang="es" dir="ltr">' in page.text
    assert "¿Qué pasó o qué notó?" in page.text
    assert "Valle de Eastwood" in page.text
    assert 'action="/es/report"' in page.text
    assert "What happened" not in page.text


def test_a_permanent_emergency_notice(client: TestClient) -> None:
    for path in PAGES:
        text = re.sub(r"<[^>]+>", "", client.get(path).text).lower()
        assert "call 911" in text or "llame al 911" in text
        assert 'href="tel:911"' in client.get(path).text


def test_right_to_left_language(
    make_settings: Callable[..., Settings], keyed_demo: LoadedProfile
) -> None:
    profile = keyed_demo.profile.model_copy(update={"languages": ["en", "ar"]})
    loaded = LoadedProfile(profile=profile, folder=keyed_demo.folder, path=keyed_demo.path)
    with start_client(make_settings(profile=loaded)) as client:
        page = client.get("/ar/report")
    assert page.status_code == 200
    assert '<html lang="ar" dir="rtl">' in page.text


def test_accessible_labels(client: TestClient) -> None:
    page = client.get("/report").text
    for field_id in re.findall(r'<(?:input|textarea)[^>]* id="(f-[^"]+)"', page):
        assert f'for="{field_id}"' in page, field_id
    assert "<legend>Is anyone in danger right now?</legend>" in page


def test_service_routes_win_over_the_site(client: TestClient) -> None:
    assert "static report page" not in client.get("/report").text
    assert client.get("/").text == "<h1>outreach site</h1>"
    assert client.get("/no-such-page").status_code == 404


def test_stylesheet_is_served(client: TestClient) -> None:
    css = client.get("/assets-form/form.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]


def test_no_script_and_no_inline_style(client: TestClient) -> None:
    pages = [client.get(path).text for path in PAGES]
    pages.append(submit(client, danger_now="yes").text)
    for html in pages:
        assert "<script" not in html.lower()
        assert "style=" not in html.lower() and "<style" not in html.lower()
        assert re.findall(r'(?:href|src)="(https?:)?//', html) == []


def test_security_headers(client: TestClient) -> None:
    for path in PAGES:
        headers = client.get(path).headers
        assert headers["content-security-policy"].startswith("default-src 'none'; style-src 'self'")
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"
        assert headers["cross-origin-opener-policy"] == "same-origin"


def test_hsts_over_https(settings: Settings) -> None:
    with start_client(settings, base_url="https://localhost") as client:
        assert "max-age" in client.get("/report").headers["strict-transport-security"]


def test_no_cookies_anywhere(client: TestClient) -> None:
    responses = [
        client.get(path)
        for path in [*PAGES, "/", "/healthz", "/xx/report", "/assets-form/form.css", "/missing"]
    ]
    responses.append(submit(client))
    responses.append(client.post("/status", data={"code": "nothing"}))
    responses.append(
        client.post("/report", content=b"{}", headers={"content-type": "application/json"})
    )
    for response in responses:
        assert "set-cookie" not in response.headers, response.url
    assert not client.cookies


def test_healthz(client: TestClient) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


def test_healthz_when_the_database_is_gone(client: TestClient) -> None:
    service = client.app_state["service"]
    client.portal.call(service.store.close)
    answer = client.get("/healthz")
    assert answer.status_code == 503 and answer.json() == {"status": "unavailable"}


@pytest.mark.parametrize(
    ("accept", "text"),
    [
        ("es-MX,es;q=0.9", "No se encontró la página"),
        ("en-US", "Page not found"),
        ("", "Page not found"),
    ],
)
def test_unknown_language_prefix_is_a_localized_404(
    client: TestClient, accept: str, text: str
) -> None:
    for path in ("/xx/report", "/fr/status"):
        page = client.get(path, headers={"accept-language": accept})
        assert page.status_code == 404 and text in page.text
        assert client.post(path, data={"a": "b"}).status_code == 404


def test_unknown_host_is_refused(settings: Settings) -> None:
    with start_client(settings, base_url="http://evil.example.com") as client:
        assert client.get("/report").status_code == 400


def test_method_not_allowed_is_a_page(client: TestClient) -> None:
    answer = client.put("/report")
    assert answer.status_code == 405 and "Please go back and try again." in answer.text


def test_an_unexpected_error_is_a_localized_500(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from form_service import report_views

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(report_views, "validate_report", explode)
    with start_client(settings, raise_server_exceptions=False) as client:
        answer = submit(client, path="/es/report")
    assert answer.status_code == 500
    assert "Algo salió mal de nuestro lado" in answer.text


def test_background_tasks_get_the_service_and_stop_with_the_app(settings: Settings) -> None:
    from form_service.app import create_app

    seen: list[str] = []

    async def worker(service: Any) -> None:
        seen.append("started")
        try:
            await service.wakeup.wait()
            seen.append("woken")
            await anyio.sleep_forever()
        finally:
            seen.append("stopped")

    with TestClient(
        create_app(settings, background=[worker]), base_url="http://localhost"
    ) as client:
        token = token_of(client.get("/report").text)
        client.post("/report", data={"token": token, **VALID_FORM})
        client.portal.call(anyio.sleep, 0.05)
    assert seen == ["started", "woken", "stopped"]


def test_profile_areas_are_offered(
    make_settings: Callable[..., Settings], keyed_demo: LoadedProfile
) -> None:
    areas = [*keyed_demo.profile.areas, Area(id="west", name={"en": "West End", "es": "Oeste"})]
    profile = keyed_demo.profile.model_copy(update={"areas": areas})
    loaded = LoadedProfile(profile=profile, folder=keyed_demo.folder, path=keyed_demo.path)
    with start_client(make_settings(profile=loaded)) as client:
        assert "West End" in client.get("/report").text
        assert submit(client, area="west").status_code == 200


def test_site_pages_are_compressed_but_form_pages_are_not(
    client: TestClient, tiny_site: Any
) -> None:
    (tiny_site / "guide.html").write_text("<p>Plain words.</p>" * 100, encoding="utf-8")
    gzip = {"accept-encoding": "gzip"}
    site = client.get("/guide.html", headers=gzip)
    assert site.status_code == 200 and site.headers.get("content-encoding") == "gzip"
    # The form carries a secret token next to echoed input: never compressed.
    form = client.get("/report", headers=gzip)
    assert form.status_code == 200 and "content-encoding" not in form.headers
