"""Forwarded-for headers with no trusted proxy: one warning per process, no address."""

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
