"""Fixtures for the report service: settings built by a factory, a client, a filled form."""

from __future__ import annotations

import re
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pyrage
import pytest
from starlette.testclient import TestClient

from form_service import attachment_intake
from form_service.app import create_app
from form_service.settings import Settings
from outreach.loader import LoadedProfile
from outreach.profile import Archive
from tests.databases import database, postgres  # noqa: F401 (fixtures: both databases)
from tests.form_service.samples import VALID_FORM


@pytest.fixture(scope="session")
def archive_identity() -> Any:
    return pyrage.x25519.Identity.generate()


@pytest.fixture(scope="session")
def keyed_demo(demo: LoadedProfile, archive_identity: Any) -> LoadedProfile:
    """The demo profile, archived to a key whose private half this test run holds."""
    archive = Archive(age_recipients=[str(archive_identity.to_public())])
    profile = demo.profile.model_copy(update={"archive": archive})
    return LoadedProfile(profile=profile, folder=demo.folder, path=demo.path)


@pytest.fixture
def tiny_site(tmp_path: Path) -> Path:
    """A stand-in for the built site: enough to see what the static mount serves."""
    site = tmp_path / "site"
    (site / "report").mkdir(parents=True)
    (site / "index.html").write_text("<h1>outreach site</h1>", encoding="utf-8")
    (site / "404.html").write_text("<h1>site 404</h1>", encoding="utf-8")
    (site / "report" / "index.html").write_text("static report page", encoding="utf-8")
    return site


@pytest.fixture
def make_settings(
    tmp_path: Path, tiny_site: Path, keyed_demo: LoadedProfile
) -> Callable[..., Settings]:
    """Settings with a random secret and a data dir of their own; keywords override."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "profile": keyed_demo,
            "site_dir": tiny_site,
            "data_dir": tmp_path / f"data-{secrets.token_hex(4)}",
            "secret_keys": (secrets.token_hex(32),),
            "min_fill_seconds": 0.0,
            "status_min_seconds": 0.0,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


def start_client(settings: Settings, **kwargs: Any) -> TestClient:
    kwargs.setdefault("base_url", "http://localhost")
    return TestClient(create_app(settings), **kwargs)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with start_client(settings) as test_client:
        yield test_client


def token_of(html: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', html)
    assert match, "the page has no form token"
    return match.group(1)


def code_of(html: str) -> str:
    match = re.search(r'id="receipt-code" class="code" value="([0-9A-Z-]+)"', html)
    assert match, "the page shows no receipt code"
    return match.group(1)


def submit(client: TestClient, path: str = "/report", **fields: str) -> Any:
    """Load the form at *path*, then send a valid report changed by *fields*."""
    token = token_of(client.get(path).text)
    data = {"token": token, **VALID_FORM, **fields}
    return client.post(path, data={k: v for k, v in data.items() if v is not None})


def rows(settings: Settings, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(settings.data_dir / "reports.sqlite3")) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.fixture
def left_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the process stopped right after each answer: no photo is cleaned by the
    request that took it, only by the worker's sweep (form_service/waiting_files.py)."""

    async def stopped(service: Any, file_ids: Any) -> None:
        return None

    monkeypatch.setattr(attachment_intake, "clean_after", stopped)
