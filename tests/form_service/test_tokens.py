"""Form tokens: signed, timestamped, with a rotating key list."""

from __future__ import annotations

import pytest

from form_service.tokens import FormTokens, TokenProblem


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def tokens(clock: Clock, keys: tuple[str, ...] = ("current",)) -> FormTokens:
    return FormTokens(keys, min_fill_seconds=3, max_age_seconds=4 * 3600, clock=clock)


def test_a_token_filled_at_human_speed_is_accepted(clock: Clock) -> None:
    issuer = tokens(clock)
    token = issuer.issue()
    clock.now += 3
    check = issuer.check(token)
    assert check.problem is None
    assert check.token_id is not None and len(check.token_id) == 32


def test_each_form_gets_its_own_id(clock: Clock) -> None:
    issuer = tokens(clock)
    clock.now += 10
    first, second = issuer.issue(), issuer.issue()
    clock.now += 10
    assert issuer.check(first).token_id != issuer.check(second).token_id


def test_too_fast(clock: Clock) -> None:
    issuer = tokens(clock)
    token = issuer.issue()
    clock.now += 2.9
    assert issuer.check(token).problem is TokenProblem.too_fast


def test_expired(clock: Clock) -> None:
    issuer = tokens(clock)
    token = issuer.issue()
    clock.now += 4 * 3600 + 1
    assert issuer.check(token).problem is TokenProblem.expired


def test_still_valid_just_before_the_limit(clock: Clock) -> None:
    issuer = tokens(clock)
    token = issuer.issue()
    clock.now += 4 * 3600 - 1
    assert issuer.check(token).problem is None


@pytest.mark.parametrize("token", ["", None])
def test_missing(clock: Clock, token: str | None) -> None:
    assert tokens(clock).check(token).problem is TokenProblem.missing


def test_forged_signature(clock: Clock) -> None:
    issuer = tokens(clock)
    token = issuer.issue()
    clock.now += 10
    payload, stamp, signature = token.split(".")
    tampered = f"{payload}.{stamp}.{'A' * len(signature)}"
    assert issuer.check(tampered).problem is TokenProblem.forged
    assert issuer.check("not-a-token").problem is TokenProblem.forged


def test_token_signed_with_another_key_is_forged(clock: Clock) -> None:
    foreign = tokens(clock, ("someone-elses-key",)).issue()
    clock.now += 10
    assert tokens(clock).check(foreign).problem is TokenProblem.forged


def test_rotation_first_key_signs_all_keys_verify(clock: Clock) -> None:
    old_token = tokens(clock, ("old",)).issue()
    rotated = tokens(clock, ("new", "old"))
    new_token = rotated.issue()
    clock.now += 10
    assert rotated.check(old_token).problem is None
    assert rotated.check(new_token).problem is None
    # The new token was signed with the first key: a service that only knows "old" refuses it.
    assert tokens(clock, ("old",)).check(new_token).problem is TokenProblem.forged
