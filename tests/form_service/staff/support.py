"""Staff accounts in tests: added as the command line adds them, enrolled and signed in
through the pages, with a clock for one-time codes that the test moves on."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

import pyotp
import pytest
from starlette.testclient import TestClient

from form_service.settings import Settings
from form_service.staff import commands, totp

PASSWORD = "lantern orbit meadow 42"


class CodeClock:
    """Stands in for totp.clock: every code the test asks for is from a new time step."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def next_code(self, secret: str) -> str:
        self.now += totp.STEP_SECONDS
        return pyotp.TOTP(secret, interval=totp.STEP_SECONDS).at(self.now)


@pytest.fixture
def code_clock(monkeypatch: pytest.MonkeyPatch) -> CodeClock:
    import time

    clock = CodeClock(time.time())
    monkeypatch.setattr(totp, "clock", clock)
    return clock


@pytest.fixture(autouse=True)
def quick_sign_in(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sign-in steps answer at once here (test_sign_in.py checks the equal delay itself),
    and Argon2 runs with small costs, except in the modules that test the real ones."""
    from argon2 import PasswordHasher

    from form_service.staff import accounts, keys, passwords

    monkeypatch.setattr(accounts, "SIGN_IN_SECONDS", 0.0)
    if request.module.__name__.rsplit(".", 1)[-1] in {"test_passwords", "test_keys"}:
        return
    monkeypatch.setattr(passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=64))
    monkeypatch.setattr(keys, "_KDF_TIME_COST", 1)
    monkeypatch.setattr(keys, "_KDF_MEMORY_KIB", 64)


@dataclass
class Staff:
    email: str
    totp_secret: str
    recovery: list[str] = field(default_factory=list)
    password: str = PASSWORD


def field_value(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"the page has no field {name}"
    return html.unescape(match.group(1))


def enrol(
    client: TestClient, settings: Settings, clock: CodeClock, email: str, role: str = "intake"
) -> Staff:
    _, link = commands.add(settings, email, role)
    path = link.split("://", 1)[1].split("/", 1)[1]
    page = client.get("/" + path)
    assert page.status_code == 200, page.text
    secret = field_value(page.text, "totp_secret")
    done = client.post(
        "/" + path,
        data={
            "password": PASSWORD,
            "again": PASSWORD,
            "totp_secret": secret,
            "code": clock.next_code(secret),
        },
    )
    assert done.status_code == 200, done.text
    recovery = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", done.text)
    return Staff(email, secret, recovery)


def sign_in(client: TestClient, clock: CodeClock, staff: Staff, code: str | None = None) -> Any:
    """Sign in (the client keeps the cookie); the answer to the code step, a redirect."""
    first = client.post("/staff/sign-in", data={"email": staff.email, "password": staff.password})
    assert first.status_code == 200, first.text
    answer = client.post(
        "/staff/sign-in/code",
        data={
            "step": field_value(first.text, "step"),
            "code": code or clock.next_code(staff.totp_secret),
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return answer


def csrf_of(page: str) -> str:
    return field_value(page, "csrf")
