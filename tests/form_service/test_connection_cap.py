"""The per-client connection cap and the busy page: one address cannot take every slot."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from form_service.app import create_app
from form_service.busy_page import BUSY
from form_service.connection_cap import OpenConnections
from form_service.http_limits import HEAD_TIMEOUT, MAX_CONCURRENCY
from form_service.settings import Settings
from tests.live_server import LiveServer, outreach_serve

PER_CLIENT = 128  # OUTREACH_CONNECTIONS_PER_CLIENT's default


def test_a_client_holds_at_most_its_cap_and_only_while_connected() -> None:
    open_ = OpenConnections()
    held = [open_.open("203.0.113.5", 2) for _ in range(3)]
    assert held[2] is None and None not in held[:2]
    assert open_.open("198.51.100.7", 2) is not None  # another client is not affected
    assert open_.open("2001:db8:1:2::1", 1) is not None
    assert open_.open("2001:db8:1:2::99", 1) is None  # the same /64
    assert open_.counted == 4
    assert all(b"203.0.113.5" not in client for client in held if client)
    for client in held[:2]:
        assert client is not None
        open_.close(client)
    assert open_.counted == 2 and open_.clients() == 2
    assert open_.open("203.0.113.5", 2) is not None
    assert open_.open("203.0.113.5", 0) is not None  # 0: no cap (trusted proxies)


def test_a_request_marked_busy_gets_the_localized_503_page(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings())

    async def marked(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, "extensions": {BUSY: {}}}, receive, send)

    with TestClient(marked, base_url="http://localhost") as client:
        page = client.get("/es/report")
        assert page.status_code == 503
        assert page.headers["retry-after"] == "60"
        assert page.headers["connection"] == "close"
        assert "No podemos responder en este momento" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        english = client.post("/report", data={"a": "b"})
        assert english.status_code == 503 and "We cannot answer just now" in english.text


def connect(live: LiveServer, source: str) -> socket.socket:
    sock = socket.create_connection(live.address, timeout=10, source_address=(source, 0))
    return sock


def get(live: LiveServer, source: str, path: str = "/report") -> tuple[bytes, bytes]:
    """The status line and the rest of the answer to GET *path* from *source*."""
    with connect(live, source) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
        )
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    status, _, rest = b"".join(chunks).partition(b"\r\n")
    return status, rest


def hold(stack: ExitStack, live: LiveServer, source: str, count: int) -> None:
    """Open *count* idle connections from *source*, kept until *stack* closes."""
    for _ in range(count):
        stack.enter_context(connect(live, source))


@pytest.fixture(scope="module")
def live(demo_site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with outreach_serve(demo_site, tmp_path_factory.mktemp("cap-data")) as server:
        yield server


def settle() -> float:
    """Give the server a moment to accept what was opened; the time it started idling."""
    time.sleep(0.5)
    return time.monotonic()


@pytest.mark.server
def test_idle_connections_from_one_address_turn_no_one_else_away(live: LiveServer) -> None:
    """513 idle connections from one address made the form answer 503 to everyone."""
    with ExitStack() as stack:
        started = time.monotonic()
        hold(stack, live, "127.0.0.2", MAX_CONCURRENCY + 1)
        settle()
        status, body = get(live, "127.0.0.3")
        assert status == b"HTTP/1.1 200 OK", body[:300]
        # The address that holds them gets the service's own busy page, in its language.
        status, body = get(live, "127.0.0.2", "/es/report")
        assert status == b"HTTP/1.1 503 Service Unavailable"
        assert b"No podemos responder en este momento" in body
        assert b"retry-after: 60" in body.lower()
        assert time.monotonic() - started < HEAD_TIMEOUT  # all while they were still open


@pytest.mark.server
def test_a_full_server_answers_with_its_own_page(live: LiveServer) -> None:
    """Past the server's limit a request gets the localized page, not uvicorn's text."""
    sources = [f"127.0.0.{10 + n}" for n in range(MAX_CONCURRENCY // PER_CLIENT)]
    with ExitStack() as stack:
        started = time.monotonic()
        for source in sources:
            hold(stack, live, source, PER_CLIENT)
        settle()
        status, body = get(live, "127.0.0.30")
        assert status == b"HTTP/1.1 503 Service Unavailable", body[:300]
        assert b"We cannot answer just now" in body
        assert b'<html lang="en"' in body
        assert time.monotonic() - started < HEAD_TIMEOUT
    time.sleep(0.5)  # the server sees them close
    assert get(live, "127.0.0.30")[0] == b"HTTP/1.1 200 OK"
