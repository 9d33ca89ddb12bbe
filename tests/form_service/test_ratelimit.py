"""Status look-up limits: per client and overall, slower after failures, nothing kept."""

from __future__ import annotations

import ipaddress

import pytest
from starlette.requests import Request

from form_service.ratelimit import (
    MAX_CLIENTS,
    LookupLimiter,
    ReportLimiter,
    client_address,
    client_key,
)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_per_client_limit_leaves_other_clients_alone() -> None:
    limiter = LookupLimiter(client_limit=3, window_seconds=60, clock=Clock())
    assert [limiter.admit("203.0.113.5").allowed for _ in range(4)] == [True, True, True, False]
    assert limiter.admit("198.51.100.7").allowed


def test_no_limit_for_everyone_together() -> None:
    """600 look-ups from 30 addresses once locked every tipster out for a window."""
    limiter = LookupLimiter(client_limit=20, window_seconds=600, clock=Clock())
    for n in range(30):
        for _ in range(20):
            limiter.admit(f"203.0.113.{n}")
    assert limiter.admit("198.51.100.7").allowed
    assert not limiter.admit("203.0.113.0").allowed


def test_window_resets_counts_and_rotates_the_key() -> None:
    clock = Clock()
    limiter = LookupLimiter(client_limit=1, window_seconds=60, clock=clock)
    first = limiter.admit("203.0.113.5")
    assert not limiter.admit("203.0.113.5").allowed
    clock.now += 60
    again = limiter.admit("203.0.113.5")
    assert again.allowed
    assert again.client != first.client  # a new in-memory key: old keys link to nothing


def test_delay_grows_with_failures() -> None:
    limiter = LookupLimiter(client_limit=100, window_seconds=60, clock=Clock())
    delays = []
    for _ in range(8):
        admission = limiter.admit("203.0.113.5")
        delays.append(admission.delay)
        limiter.record_failure(admission.client)
    assert delays[:4] == [0.0, 0.25, 0.5, 1.0]
    assert delays == sorted(delays) and delays[-1] == 8.0
    assert limiter.admit("198.51.100.7").delay == 0.0


def test_clients_are_known_only_by_a_keyed_hash() -> None:
    limiter = LookupLimiter(client_limit=5, window_seconds=60, clock=Clock())
    admission = limiter.admit("203.0.113.5")
    assert b"203.0.113.5" not in admission.client
    assert len(admission.client) == 16


def test_an_ipv6_client_is_its_64() -> None:
    limiter = LookupLimiter(client_limit=2, window_seconds=60, clock=Clock())
    assert limiter.admit("2001:db8:1:2::1").allowed
    assert limiter.admit("2001:db8:1:2:ffff:ffff:ffff:9").allowed
    assert not limiter.admit("2001:db8:1:2:a::b").allowed  # same /64: same client
    assert limiter.admit("2001:db8:1:3::1").allowed  # the next /64 is someone else
    assert client_key("::ffff:203.0.113.5") == client_key("203.0.113.5") == "203.0.113.5"


def test_one_ipv6_host_cannot_clear_the_limits() -> None:
    """Limiters once reset every count past 100,000 clients, refused ones included."""
    limiter = LookupLimiter(client_limit=1, window_seconds=600, clock=Clock())
    reports = ReportLimiter(1, 0, 1_000_000, 1_000_000, clock=Clock())
    assert limiter.admit("203.0.113.5").allowed
    assert reports.admit("203.0.113.5", "first").allowed
    for n in range(MAX_CLIENTS + 1):
        limiter.admit(f"2001:db8::{n:x}")
        reports.admit(f"2001:db8::{n:x}", f"form{n}")
    assert not limiter.admit("203.0.113.5").allowed
    assert not reports.admit("203.0.113.5", "second").allowed


def test_memory_is_bounded_by_forgetting_the_oldest_client() -> None:
    limiter = LookupLimiter(client_limit=1, window_seconds=600, clock=Clock(), max_clients=3)
    for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        assert limiter.admit(address).allowed
    assert limiter.admit("203.0.113.4").allowed  # 203.0.113.1 is forgotten, no one else
    assert not limiter.admit("203.0.113.2").allowed
    assert not limiter.admit("203.0.113.4").allowed
    assert limiter.admit("203.0.113.1").allowed
    reports = ReportLimiter(1, 0, 100, 100, clock=Clock(), max_clients=2)
    assert reports.admit("203.0.113.1", "a").allowed
    assert reports.admit("203.0.113.2", "b").allowed
    assert reports.admit("203.0.113.3", "c").allowed
    assert not reports.admit("203.0.113.3", "d").allowed
    assert not reports.admit("203.0.113.2", "e").allowed


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
