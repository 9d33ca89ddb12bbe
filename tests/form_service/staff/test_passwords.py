"""The rules a staff password must meet, and its Argon2id hash."""

from __future__ import annotations

import pytest

from form_service.staff.passwords import (
    common_passwords,
    hash_password,
    password_problem,
    verify_password,
)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short pass", "too_short"),
        ("x" * 257, "too_long"),
        ("qwerty123456", "too_common"),
        ("Password1234!", "too_common"),
        ("iloveyouiloveyou", "too_common"),
        ("ana.lopez1234", "too_common"),
        ("lantern orbit meadow 42", None),
    ],
)
def test_password_rules(password: str, problem: str | None) -> None:
    assert password_problem(password, "ana.lopez@example.org") == problem


def test_the_bundled_list_is_large() -> None:
    assert len(common_passwords()) >= 10_000
    assert "password" in common_passwords()


def test_hash_is_argon2id_and_verifies() -> None:
    hashed = hash_password("lantern orbit meadow 42")
    # RFC 9106's second recommended profile: 64 MiB, 3 passes, 4 lanes.
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert verify_password(hashed, "lantern orbit meadow 42")
    assert not verify_password(hashed, "lantern orbit meadow 43")
    assert not verify_password("not a hash", "lantern orbit meadow 42")
