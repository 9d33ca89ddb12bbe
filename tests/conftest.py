"""Fixtures shared by every suite."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from outreach.loader import DEMO_PROFILE, LoadedProfile, load_profile
from outreach.scaffold import scaffold_agency
from outreach.site.sitegen import build_site

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_tool(path: str, why: str) -> str:
    """Skip a suite when a system tool is missing, except in CI, where that is a failure."""
    found = shutil.which(path) or (path if os.path.exists(path) else None)
    if found is None:
        message = f"{path} is needed for {why}; .ci/run must install it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def delivering_at_once(loaded: LoadedProfile) -> LoadedProfile:
    """*loaded* with no rule held for review: every partner a rule chooses receives the
    report as soon as it is stored. The delivery and sharing suites test that path; the
    demo's own choice (review for all but danger now) is tested with ``reviewed_demo``."""
    rules = [rule.model_copy(update={"review": False}) for rule in loaded.profile.routing.rules]
    routing = loaded.profile.routing.model_copy(update={"rules": rules})
    profile = loaded.profile.model_copy(update={"routing": routing})
    return LoadedProfile(profile=profile, folder=loaded.folder, path=loaded.path)


@pytest.fixture(scope="session")
def demo() -> LoadedProfile:
    return delivering_at_once(load_profile(DEMO_PROFILE))


@pytest.fixture(scope="session")
def reviewed_demo() -> LoadedProfile:
    """The demo agency exactly as shipped: partners after review, danger now at once."""
    return load_profile(DEMO_PROFILE)


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory: pytest.TempPathFactory, demo: LoadedProfile) -> Path:
    """The demo agency's site, built once per test session."""
    out = tmp_path_factory.mktemp("demo") / "site"
    build_site(demo, out)
    return out


def edit_yaml(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def email_delivery(partner_id: str, smtp_port: int) -> dict[str, Any]:
    """A partner's delivery section (profile YAML) for a local SMTP server with STARTTLS."""
    return {
        "channel": "email",
        "email": {
            "to": [f"{partner_id}@partners.example.org"],
            "sender": "reports@harbor-county.example.org",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
            "security": "starttls",
        },
    }


# What a new agency writes over the placeholders `outreach new` leaves (the guide's values).
FILLED_IN = {
    "CHANGE-ME office address for reporting in person": "200 Main Street, Suite 4",
    "CHANGE-ME liaison name": "Dana Reyes",
}


def fill_placeholders(folder: Path) -> None:
    """Replace the CHANGE-ME values of a scaffolded agency.yml, as its agency would."""
    path = folder / "agency.yml"
    text = path.read_text(encoding="utf-8")
    for placeholder, value in FILLED_IN.items():
        text = text.replace(placeholder, value)
    left = "CHANGE-ME" in str(yaml.safe_load(text))
    assert not left, "the scaffold has a placeholder FILLED_IN does not know"
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def new_agency(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., Path]:
    """A scaffolded agency under tmp_path with its placeholders filled in (unless
    *placeholders*), optionally changed; returns its folder."""

    def make(
        agency_id: str = "riverside",
        change: Callable[[dict[str, Any]], None] | None = None,
        *,
        placeholders: bool = False,
    ) -> Path:
        folder = scaffold_agency(tmp_path, agency_id)
        capsys.readouterr()  # the printed private key is not part of any test's output
        if not placeholders:
            fill_placeholders(folder)
        if change is not None:
            edit_yaml(folder / "agency.yml", change)
        return folder

    return make


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    """A copy of the demo agency folder that a test may change, with every routing rule
    delivering at once (as ``demo``): the suites that run the real service check delivery."""
    target = tmp_path / "agencies" / "demo"
    shutil.copytree(DEMO_PROFILE, target)

    def deliver_at_once(data: dict[str, Any]) -> None:
        for rule in data["routing"]["rules"]:
            rule.pop("review", None)

    edit_yaml(target / "agency.yml", deliver_at_once)
    return target
