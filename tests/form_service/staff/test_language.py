"""Staff pages speak the language the browser asks for, among the profile's languages."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from form_service.settings import Settings
from tests.form_service.conftest import start_client
from tests.form_service.staff.support import CodeClock, enrol, sign_in


@pytest.mark.parametrize(
    ("accept", "lang", "heading"),
    [
        ("es-ES,es;q=0.9,en;q=0.8", "es", "<h1>Iniciar sesión</h1>"),
        ("es-ES", "es", "<h1>Iniciar sesión</h1>"),  # a region alone counts as its language
        ("en-US,en;q=0.9", "en", "<h1>Sign in</h1>"),
        ("fr-FR,fr;q=0.9", "en", "<h1>Sign in</h1>"),  # not a profile language: the default
        ("", "en", "<h1>Sign in</h1>"),
    ],
)
def test_the_sign_in_page_follows_accept_language(
    client: TestClient, accept: str, lang: str, heading: str
) -> None:
    page = client.get("/staff/sign-in", headers={"Accept-Language": accept})
    assert page.status_code == 200
    assert f'<html lang="{lang}" dir="ltr">' in page.text
    assert heading in page.text


def test_a_signed_in_page_in_spanish(settings: Settings, code_clock: CodeClock) -> None:
    with start_client(settings, headers={"Accept-Language": "es"}) as client:
        staff = enrol(client, settings, code_clock, "ana@example.org")
        sign_in(client, code_clock, staff)
        inbox = client.get("/staff/")
    assert "<h1>Bandeja de entrada</h1>" in inbox.text
    assert ">Cerrar sesión</button>" in inbox.text
