"""A client gone before its body arrived (it left, or the body deadline cut it)."""

from __future__ import annotations

from typing import Any

import pytest

from form_service.form_input import FORM_TYPE
from form_service.settings import Settings
from tests.form_service.conftest import start_client


@pytest.mark.parametrize("path", ["/report", "/status"])
def test_a_body_cut_short_is_no_error(
    settings: Settings, capsys: pytest.CaptureFixture[str], path: str
) -> None:
    parts = [
        {"type": "http.request", "body": b"description=half", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return parts.pop(0) if parts else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with start_client(settings) as client:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"localhost"),
                (b"content-type", FORM_TYPE.encode()),
                (b"content-length", b"1000"),
            ],
            "client": None,
            "server": ("localhost", 80),
            "state": dict(client.app_state),
        }
        capsys.readouterr()
        client.portal.call(client.app, scope, receive, send)  # type: ignore[union-attr]
        assert '"level": "error"' not in capsys.readouterr().err
