"""What the service benchmarks share: starting `outreach serve` and driving reports at it.

The load generator speaks HTTP/1.1 over plain asyncio streams, one keep-alive connection
per client, so the client side costs little CPU on the machine it shares with the server.
Form tokens are signed here with the service's own secret, so each POST is a new report
without a form fetch first. A client may bind its socket to a loopback address of its own
(127.0.0.x), which the service sees as a different visitor.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
OUTREACH = str(Path(sys.executable).with_name("outreach"))
REPORT = {
    "description": "A student said he would bring a gun to school on Friday. " * 4,
    "area": "north",
    "area_detail": "North Harbor High",
    "setting": "school",
    "concern": "harm_others",
    "when": "This morning",
    "people": "A boy in 10th grade",
    "danger_now": "no",
}
_RECEIPT = b'id="receipt-code" class="code" value="'
UNLIMITED = {
    "OUTREACH_REPORT_CLIENT_BURST": "1000000",
    "OUTREACH_REPORT_GLOBAL_PER_MINUTE": "1000000",
    "OUTREACH_REPORT_SURGE_PER_MINUTE": "1000000",
    "OUTREACH_REPORT_CLIENT_SURGE": "0",
}
"""Flood control lifted, for a load that comes from one address on purpose: no 429, and
no report flagged (a flagged report would wait for its partner's digest)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Result:
    name: str = ""
    accepted: int = 0
    failed: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    """Seconds each accepted POST took."""
    receipts: list[tuple[str, float]] = field(default_factory=list)
    """(receipt code, wall-clock time the receipt arrived), for answers that showed one."""
    statuses: Counter[int] = field(default_factory=Counter)
    warmup: int = 0
    """Reports accepted during the warm-up, not counted above."""
    cpu: float = 0.0
    """CPU seconds the server process used during warm-up and run."""

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def cpu_per_report(self) -> float:
        """Milliseconds of server CPU per accepted report, warm-up included."""
        return self.cpu * 1000 / max(1, self.accepted + self.warmup)


def percentile(values: Iterable[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


def receipt_code(body: bytes) -> str | None:
    start = body.find(_RECEIPT)
    if start < 0:
        return None
    start += len(_RECEIPT)
    return body[start : body.index(b'"', start)].decode()


async def post_reports(
    port: int,
    body: Callable[[], bytes],
    until: float,
    result: Result,
    *,
    pace: float = 0.0,
    local_address: str | None = None,
    path: str = "/report",
) -> None:
    """One client: POST one report after another on one connection until *until*, each at
    least *pace* seconds after the one before."""
    local = (local_address, 0) if local_address else None
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=local)
    try:
        while time.monotonic() < until:
            payload = body()
            request = (
                f"POST {path} HTTP/1.1\r\nHost: localhost\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n"
            ).encode() + payload
            started = time.monotonic()
            writer.write(request)
            status, answer = await read_response(reader)
            result.statuses[status] += 1
            if status == 200:
                result.latencies.append(time.monotonic() - started)
                result.accepted += 1
                code = receipt_code(answer)
                if code:
                    result.receipts.append((code, time.time()))
            else:
                result.failed += 1
            if pace:
                await asyncio.sleep(max(0.0, pace - (time.monotonic() - started)))
    finally:
        writer.close()


async def drive(
    port: int,
    body: Callable[[], bytes],
    clients: int,
    seconds: float,
    *,
    pace: float = 0.0,
    warmup: float = 2.0,
    name: str = "",
) -> Result:
    """*clients* connections sending reports for *seconds*, after *warmup* seconds of the
    same load that is not counted."""
    warm = Result(name)
    if warmup:
        until = time.monotonic() + warmup
        await asyncio.gather(*(post_reports(port, body, until, warm) for _ in range(clients)))
    result = Result(name, warmup=warm.accepted)
    started = time.monotonic()
    until = started + seconds
    await asyncio.gather(
        *(post_reports(port, body, until, result, pace=pace) for _ in range(clients))
    )
    result.seconds = time.monotonic() - started
    return result


def report_body(secret: str, age: float = 0.0) -> Callable[[], bytes]:
    """A new report with a fresh form token each call; tokens look *age* seconds old, so a
    service with a minimum fill time takes them."""
    from form_service.tokens import FormTokens

    tokens = FormTokens((secret,), 0, 3600, clock=lambda: time.time() - age)
    plain = urlencode(REPORT).encode()
    return lambda: urlencode({"token": tokens.issue()}).encode() + b"&" + plain


def service_env(data: Path, secret: str, **settings: str) -> dict[str, str]:
    """The environment of `outreach serve`: no OUTREACH_* setting of the caller's leaks in."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")},
        "OUTREACH_DATA_DIR": str(data),
        "OUTREACH_SECRET_KEY": secret,
        "OUTREACH_LOG_LEVEL": "warning",
        **settings,
    }


def start_process(
    command: list[str], env: Mapping[str, str] | None, log: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)


def wait_until_listening(
    port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a server exited early: see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"a server did not start: see {log}")


def healthy(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_healthy(
    port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"outreach serve exited early: see {log}")
        if healthy(port):
            return
        time.sleep(0.2)
    raise SystemExit(f"outreach serve did not answer: see {log}")


def serve(
    site: Path, port: int, env: Mapping[str, str], log: Path, *args: str
) -> subprocess.Popen[bytes]:
    """`outreach serve` of the already built *site*, answering /healthz."""
    command = [OUTREACH, "serve", "--no-build", "--out", str(site), "--port", str(port), *args]
    process = start_process(command, env, log)
    wait_until_healthy(port, process, log)
    return process


def stop(processes: Iterable[subprocess.Popen[bytes]], signum: int = signal.SIGTERM) -> None:
    """Ask each process to stop, then wait for all; kill what does not stop in 30 s."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.send_signal(signum)
    for process in running:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
