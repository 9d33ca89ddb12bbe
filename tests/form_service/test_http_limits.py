"""The HTTP server's limits: slow, silent and oversized requests cannot hold it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from form_service.connection_cap import ClientCapProtocol
from form_service.http_limits import (
    BACKLOG,
    HEAD_TIMEOUT,
    KEEP_ALIVE_TIMEOUT,
    MAX_CONCURRENCY,
    MAX_HEAD_BYTES,
    DeadlineH11Protocol,
)
from form_service.settings import Settings
from outreach import cli
from tests.conftest import REPO, free_port
from tests.live_server import LiveServer, outreach_serve

GET = b"GET / HTTP/1.1\r\nHost: localhost\r\n"


def test_serve_runs_uvicorn_with_the_limits(
    monkeypatch: pytest.MonkeyPatch, make_settings: Callable[..., Settings]
) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(options))
    cli._run_uvicorn(object(), "127.0.0.1", 8000, make_settings(connections_per_client=7))
    assert seen["http"].func is ClientCapProtocol
    assert issubclass(ClientCapProtocol, DeadlineH11Protocol)
    assert seen["http"].keywords["per_client"] == 7
    assert seen["h11_max_incomplete_event_size"] == MAX_HEAD_BYTES == 16 * 1024
    assert seen["timeout_keep_alive"] == KEEP_ALIVE_TIMEOUT <= 5
    assert seen["limit_concurrency"] == MAX_CONCURRENCY
    assert seen["backlog"] == BACKLOG
    assert seen["timeout_graceful_shutdown"] > 0
    # Anonymous by default: no access log, no proxy headers unless configured, no Server.
    assert seen["access_log"] is False
    assert seen["proxy_headers"] is False
    assert seen["server_header"] is False


@pytest.fixture(scope="module")
def server(demo_site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with outreach_serve(demo_site, tmp_path_factory.mktemp("limits-data")) as live:
        yield live


def closed(sock: socket.socket) -> bool:
    """Whether the server has closed *sock* (without waiting)."""
    sock.setblocking(False)
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True
    finally:
        sock.setblocking(True)


def get_status(server: LiveServer, path: str = "/") -> bytes:
    answer = server.raw(
        f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
    )
    return answer.split(b"\r\n", 1)[0]


@pytest.mark.server
def test_slow_and_silent_clients_are_disconnected_and_do_not_block_others(
    server: LiveServer,
) -> None:
    silent = socket.create_connection(server.address)
    slow = socket.create_connection(server.address)
    started = time.monotonic()
    slow.sendall(GET)
    closed_after: dict[str, float] = {}
    try:
        while len(closed_after) < 2 and time.monotonic() - started < HEAD_TIMEOUT + 5:
            if "slow" not in closed_after:
                try:
                    slow.sendall(b"X-Slow: still typing\r\n")  # never the blank line
                except OSError:
                    closed_after["slow"] = time.monotonic() - started
            for name, sock in (("silent", silent), ("slow", slow)):
                if name not in closed_after and closed(sock):
                    closed_after[name] = time.monotonic() - started
            # Everyone else is served meanwhile.
            assert get_status(server) == b"HTTP/1.1 200 OK"
            time.sleep(0.5)
    finally:
        silent.close()
        slow.close()
    assert set(closed_after) == {"silent", "slow"}, "a client held its connection past the limit"
    for name, after in closed_after.items():
        assert HEAD_TIMEOUT - 1 <= after <= HEAD_TIMEOUT + 3, f"{name} closed after {after:.1f}s"


@pytest.mark.server
def test_an_oversized_request_head_is_refused(server: LiveServer) -> None:
    huge = GET + b"X-Padding: " + b"a" * (MAX_HEAD_BYTES + 1024) + b"\r\n\r\n"
    status = server.raw(huge).split(b"\r\n", 1)[0]
    assert status.split(b" ")[1] in {b"400", b"431"}, status


@pytest.mark.server
def test_a_large_but_ordinary_request_head_is_served(server: LiveServer) -> None:
    big = GET + b"X-Padding: " + b"a" * (MAX_HEAD_BYTES // 2) + b"\r\nConnection: close\r\n\r\n"
    assert server.raw(big).split(b"\r\n", 1)[0] == b"HTTP/1.1 200 OK"


@pytest.mark.server
def test_a_body_framed_two_ways_is_refused_and_the_connection_closed(server: LiveServer) -> None:
    # Content-Length says the body is 5 bytes, chunked that it ends at the empty chunk: a
    # proxy in front and the server could each read a different request from these bytes.
    smuggled = (
        b"POST /report HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    with socket.create_connection(server.address, timeout=10) as sock:
        sock.sendall(smuggled)
        answer = b""
        started = time.monotonic()
        while chunk := sock.recv(65536):  # b"" once the server closes
            answer += chunk
        closed_after = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert answer.count(b"HTTP/1.1 ") == 1, "the request after it was served"
    assert closed_after < KEEP_ALIVE_TIMEOUT, "the connection was kept open"


# A short-deadline copy of the protocol around an app that reads the whole body, so the
# body deadline is seen in seconds rather than BODY_TIMEOUT.
_BODY_SERVER = """
import sys, uvicorn
from form_service.http_limits import CUT, DeadlineH11Protocol
from form_service.logs import setup_logging

setup_logging("debug")

class Quick(DeadlineH11Protocol):
    head_timeout = 2.0
    body_timeout = 2.0
    min_body_bytes_per_window = 1000

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        CUT.flush()
        await send({"type": "lifespan.shutdown.complete"})
        return
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            print("app saw the client go", flush=True)
            return
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), http=Quick, log_level="info",
            access_log=False, server_header=False)
"""


@pytest.fixture
def quick_server() -> Iterator[tuple[LiveServer, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_BODY_SERVER), str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    live = LiveServer(port, process)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(live.address, timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, "server did not start"
            time.sleep(0.1)
    try:
        yield live, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.communicate(timeout=20)


@pytest.mark.server
def test_a_body_sent_too_slowly_is_cut_off(
    quick_server: tuple[LiveServer, subprocess.Popen[str]],
) -> None:
    live, process = quick_server
    head = b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n"
    with socket.create_connection(live.address) as sock:
        started = time.monotonic()
        sock.sendall(head)
        after = None
        while time.monotonic() - started < 8:
            try:
                sock.sendall(b"x" * 10)
            except OSError:
                after = time.monotonic() - started
                break
            if closed(sock):
                after = time.monotonic() - started
                break
            time.sleep(0.25)
    assert after is not None and 1.5 <= after <= 4, f"closed after {after}"
    # A prompt client of the same server is served in full.
    answer = live.raw(
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    )
    assert answer.startswith(b"HTTP/1.1 200 OK")
    process.terminate()
    output = process.communicate(timeout=20)[0]
    assert "app saw the client go" in output
    # Counted per minute at debug level, not a line each.
    cut = [json.loads(line) for line in output.splitlines() if "connections_cut" in line]
    assert [(line["level"], line["body"]) for line in cut] == [("debug", 1)]
    assert "127.0.0.1" not in output.replace("http://127.0.0.1:", ""), "a client address was logged"


@pytest.mark.server
def test_a_large_body_arriving_at_a_fair_pace_gets_more_time(
    quick_server: tuple[LiveServer, subprocess.Popen[str]],
) -> None:
    """A video from a phone on a slow link takes longer than one body deadline: each
    deadline is extended while enough of the body came in since the last one."""
    live, _ = quick_server
    pieces, piece = 24, b"x" * 500  # 6 s at 2,000 bytes a second: 3 deadlines of 2 s
    head = b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % (
        pieces * len(piece)
    )
    with socket.create_connection(live.address, timeout=30) as sock:
        sock.sendall(head)
        for _ in range(pieces):
            sock.sendall(piece)
            time.sleep(0.25)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 OK") and b"\r\n12000\r\n" in answer, answer


def test_a_large_body_is_read_a_mebibyte_at_a_time_then_the_connection_reads_as_before() -> None:
    """While a body larger than one read arrives, each turn of the event loop reads
    BODY_READ_BYTES of it; once the answer is sent, the kept-alive connection reads as
    asyncio does."""
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState

    from form_service.http_limits import BODY_READ_BYTES

    seen: dict[str, int] = {}
    protocols: list[DeadlineH11Protocol] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        first = await receive()
        seen["during"] = protocols[0].transport.max_size  # type: ignore[attr-defined]
        more = first.get("more_body", False)
        while more:
            more = (await receive()).get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def run() -> None:
        config = uvicorn.Config(app, http=DeadlineH11Protocol, lifespan="off")
        config.load()
        state = ServerState()

        def made() -> DeadlineH11Protocol:
            protocol = DeadlineH11Protocol(config=config, server_state=state, app_state={})
            protocols.append(protocol)
            return protocol

        loop = asyncio.get_running_loop()
        server = await loop.create_server(made, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b"x" * (4 * BODY_READ_BYTES)
        writer.write(
            b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        writer.write(body[:1000])  # the head and the start of the body come first
        await writer.drain()
        writer.write(body[1000:])
        await writer.drain()
        answer = await reader.readuntil(b"ok")
        seen["after"] = protocols[0].transport.max_size  # type: ignore[attr-defined]
        writer.close()
        server.close()
        await server.wait_closed()
        assert answer.startswith(b"HTTP/1.1 200 ")

    asyncio.run(run())
    default = asyncio.selector_events._SelectorSocketTransport.max_size  # type: ignore[attr-defined]
    assert default < BODY_READ_BYTES
    assert seen == {"during": BODY_READ_BYTES, "after": default}
