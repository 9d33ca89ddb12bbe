"""Forwarded headers: the scheme from a trusted proxy only; without one, a warning per process."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable

import pytest

from form_service.settings import Settings

from .conftest import start_client

FORWARDED = "198.51.100.44"


def warnings(err: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in err.splitlines() if line]
    return [line for line in lines if line["event"] == "forwarded_headers_ignored"]


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
def test_forwarded_headers_without_a_trusted_proxy_warn_once(
    settings: Settings, capsys: pytest.CaptureFixture[str], header: str
) -> None:
    with start_client(settings) as client:
        client.get("/report")
        assert warnings(capsys.readouterr().err) == [], "no header, no warning"
        for _ in range(3):
            client.get("/report", headers={header: FORWARDED})
            client.get("/", headers={header: f"for={FORWARDED}"})
        err = capsys.readouterr().err
    (line,) = warnings(err)
    assert line["level"] == "warning"
    assert "OUTREACH_TRUSTED_PROXIES" in str(line["hint"])
    assert FORWARDED not in err and "testclient" not in err


def test_no_warning_with_a_trusted_proxy(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(trusted_proxies=(ipaddress.ip_network("10.0.0.1/32"),))
    with start_client(settings) as client:
        client.get("/report", headers={"X-Forwarded-For": FORWARDED})
    assert warnings(capsys.readouterr().err) == []


def folder_redirect(settings: Settings, peer: str, proto: str | None) -> str:
    """Where the site sends /about (a folder) from *peer*, with its X-Forwarded-Proto."""
    (settings.site_dir / "about").mkdir()
    (settings.site_dir / "about" / "index.html").write_text("about", encoding="utf-8")
    headers = {"X-Forwarded-Proto": proto} if proto else {}
    with start_client(settings, client=(peer, 40000), follow_redirects=False) as client:
        answer = client.get("/about", headers=headers)
    assert answer.status_code in (301, 307, 308)
    return answer.headers["location"]


@pytest.mark.parametrize(
    ("peer", "proto", "scheme"),
    [
        ("10.0.0.1", "https", "https"),  # the trusted proxy
        ("10.0.0.1", "http, https", "https"),  # the proxy's own value is the last
        ("10.0.0.1", None, "http"),
        ("10.0.0.1", "gopher", "http"),
        ("203.0.113.9", "https", "http"),  # anyone else may not choose
    ],
)
def test_the_scheme_comes_from_a_trusted_proxy_only(
    make_settings: Callable[..., Settings], peer: str, proto: str | None, scheme: str
) -> None:
    settings = make_settings(trusted_proxies=(ipaddress.ip_network("10.0.0.1/32"),))
    assert folder_redirect(settings, peer, proto) == f"{scheme}://localhost/about/"


def test_no_scheme_is_believed_without_a_trusted_proxy(settings: Settings) -> None:
    assert folder_redirect(settings, "127.0.0.1", "https") == "http://localhost/about/"
