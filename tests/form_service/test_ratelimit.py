"""Status look-up limits: per client and overall, slower after failures, nothing kept."""

from __future__ import annotations

import ipaddress

import pytest
from starlette.requests import Request

from form_service.ratelimit import LookupLimiter, client_address


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_per_client_limit_leaves_other_clients_alone() -> None:
    limiter = LookupLimiter(client_limit=3, global_limit=100, window_seconds=60, clock=Clock())
    assert [limiter.admit("203.0.113.5").allowed for _ in range(4)] == [True, True, True, False]
    assert limiter.admit("198.51.100.7").allowed


def test_global_limit() -> None:
    limiter = LookupLimiter(client_limit=10, global_limit=5, window_seconds=60, clock=Clock())
    allowed = [limiter.admit(f"203.0.113.{n}").allowed for n in range(7)]
    assert allowed == [True] * 5 + [False] * 2


def test_window_resets_counts_and_rotates_the_key() -> None:
    clock = Clock()
    limiter = LookupLimiter(client_limit=1, global_limit=100, window_seconds=60, clock=clock)
    first = limiter.admit("203.0.113.5")
    assert not limiter.admit("203.0.113.5").allowed
    clock.now += 60
    again = limiter.admit("203.0.113.5")
    assert again.allowed
    assert again.client != first.client  # a new in-memory key: old keys link to nothing


def test_delay_grows_with_failures() -> None:
    limiter = LookupLimiter(client_limit=100, global_limit=100, window_seconds=60, clock=Clock())
    delays = []
    for _ in range(8):
        admission = limiter.admit("203.0.113.5")
        delays.append(admission.delay)
        limiter.record_failure(admission.client)
    assert delays[:4] == [0.0, 0.25, 0.5, 1.0]
    assert delays == sorted(delays) and delays[-1] == 8.0
    assert limiter.admit("198.51.100.7").delay == 0.0


def test_clients_are_known_only_by_a_keyed_hash() -> None:
    limiter = LookupLimiter(client_limit=5, global_limit=100, window_seconds=60, clock=Clock())
    admission = limiter.admit("203.0.113.5")
    assert b"203.0.113.5" not in admission.client
    assert len(admission.client) == 16


def request(peer: str, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "client": (peer, 5000), "headers": headers})


TRUSTED = (ipaddress.ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.5", "198.51.100.1", (), "203.0.113.5"),  # no proxy configured
        ("203.0.113.5", "198.51.100.1", TRUSTED, "203.0.113.5"),  # header from a stranger
        ("10.0.0.2", "198.51.100.1", TRUSTED, "198.51.100.1"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.3", TRUSTED, "198.51.100.1"),
        ("10.0.0.2", None, TRUSTED, "10.0.0.2"),
    ],
)
def test_client_address(peer: str, forwarded: str | None, trusted: tuple, expected: str) -> None:
    assert client_address(request(peer, forwarded), trusted) == expected
