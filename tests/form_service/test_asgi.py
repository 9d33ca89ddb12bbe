"""The ASGI factory builds the whole service from the public OUTREACH_* settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from form_service.asgi import app_from_environment
from outreach.loader import LoadedProfile


def test_the_factory_needs_only_the_settings(
    demo: LoadedProfile, tiny_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTREACH_PROFILE", str(demo.path))
    monkeypatch.setenv("OUTREACH_SITE_DIR", str(tiny_site))
    monkeypatch.setenv("OUTREACH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OUTREACH_DELIVERY_WORKER", "0")
    with TestClient(app_from_environment(), base_url="http://localhost") as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert "outreach site" in client.get("/").text
        assert 'name="token"' in client.get("/report").text
