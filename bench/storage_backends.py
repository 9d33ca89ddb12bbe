"""Benchmark: the report path on SQLite and on PostgreSQL, in the same run.

    .venv/bin/python bench/storage_backends.py [--seconds 10] [--clients 32] [--rate 20]

Part 1, the report path: `outreach serve --no-worker` with 1 and with 2 service processes
(`--workers 2`) on each database, driven by 32 concurrent keep-alive clients, each sending
one report after another for --seconds (after 2 s of warm-up). Printed: reports accepted
per second, and p50/p99 of the POST's latency. Form tokens are signed here with the
service's secret, so each POST is a new report; OUTREACH_MIN_FILL_SECONDS=0.

Part 2, time to contact: one service process and two `outreach worker` processes on each
database (the worker flags of the deployment guides), a steady --rate of reports per second
for --seconds; for each delivery, the time from the receipt reaching the client to the
message being in the partner's maildir. On SQLite a worker in another process finds new
reports by polling (every 0.5 s here); on PostgreSQL the commit's NOTIFY wakes it.

PostgreSQL is a throwaway server started from the system's binaries, as in the tests
(fsync on). The load average is printed: on a shared machine other work takes CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from form_service.receipts import receipt_hash  # noqa: E402
from form_service.tokens import FormTokens  # noqa: E402
from tests.databases import Database, sqlite_database  # noqa: E402
from tests.pg import PostgresServer, pg_bin  # noqa: E402

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


@dataclass
class Result:
    accepted: int = 0
    failed: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    receipts: list[tuple[str, float]] = field(default_factory=list)
    """(receipt code, wall-clock time the receipt arrived)."""

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


async def _read(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


def _code(body: bytes) -> str | None:
    marker = b'id="receipt-code" class="code" value="'
    start = body.find(marker)
    if start < 0:
        return None
    start += len(marker)
    return body[start : body.index(b'"', start)].decode()


async def _client(
    port: int, body: Callable[[], bytes], until: float, result: Result, pace: float = 0.0
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < until:
            payload = body()
            request = (
                "POST /report HTTP/1.1\r\nHost: localhost\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n"
            ).encode() + payload
            started = time.monotonic()
            writer.write(request)
            status, answer = await _read(reader)
            code = _code(answer) if status == 200 else None
            if code:
                result.latencies.append(time.monotonic() - started)
                result.receipts.append((code, time.time()))
                result.accepted += 1
            else:
                result.failed += 1
            if pace:
                await asyncio.sleep(max(0.0, pace - (time.monotonic() - started)))
    finally:
        writer.close()


async def drive(
    port: int, body: Callable[[], bytes], clients: int, seconds: float, pace: float = 0.0
) -> Result:
    if not pace:  # warm-up, not counted
        warm = Result()
        until = time.monotonic() + 2
        await asyncio.gather(*(_client(port, body, until, warm) for _ in range(clients)))
    result = Result()
    started = time.monotonic()
    until = started + seconds
    await asyncio.gather(*(_client(port, body, until, result, pace) for _ in range(clients)))
    result.seconds = time.monotonic() - started
    return result


@dataclass
class Bench:
    work: Path
    secret: str
    site: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, database: Database, data: Path) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")},
            **database.env(),
            "OUTREACH_DATA_DIR": str(data),
            "OUTREACH_SECRET_KEY": self.secret,
            "OUTREACH_MIN_FILL_SECONDS": "0",
            "OUTREACH_LOG_LEVEL": "warning",
            # The load comes from one address on purpose: flood control would refuse it.
            "OUTREACH_REPORT_CLIENT_BURST": "1000000",
            "OUTREACH_REPORT_GLOBAL_PER_MINUTE": "1000000",
        }

    def start(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.work / f"process-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen([OUTREACH, *args], env=env, stdout=log, stderr=log)
        log.close()
        self.processes.append(process)
        return process

    def serve(self, env: dict[str, str], workers: int) -> int:
        port = free_port()
        args = ["serve", "--no-build", "--out", str(self.site), "--port", str(port)]
        self.start([*args, "--no-worker", "--workers", str(workers)], env)
        deadline = time.monotonic() + 120
        import httpx

        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    return port
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit(f"outreach serve did not start; see {self.work}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def report_body(secret: str) -> Callable[[], bytes]:
    tokens = FormTokens((secret,), 0, 3600)
    plain = urlencode(REPORT).encode()
    return lambda: urlencode({"token": tokens.issue()}).encode() + b"&" + plain


def new_database(kind: str, work: Path, server: PostgresServer | None, n: int) -> Database:
    if kind == "sqlite":
        return sqlite_database(work / f"sqlite-{n}")
    assert server is not None
    name = server.create_database()
    return Database("postgres", server.url(name), server=server, name=name)


def report_path(bench: Bench, database: Database, workers: int, args: argparse.Namespace) -> Result:
    env = bench.env(database, bench.work / f"data-{database.kind}-{workers}")
    port = bench.serve(env, workers)
    try:
        return asyncio.run(drive(port, report_body(bench.secret), args.clients, args.seconds))
    finally:
        bench.stop()


def delivered_at(data: Path) -> dict[str, float]:
    """delivery id -> when its message was written into the maildir (wall clock)."""
    found: dict[str, float] = {}
    root = data / "maildir"
    for folder in root.iterdir() if root.exists() else ():
        if (folder / "new").is_dir():
            for key in os.listdir(folder / "new"):
                found[key] = (folder / "new" / key).stat().st_mtime
    return found


def time_to_contact(bench: Bench, database: Database, args: argparse.Namespace) -> list[float]:
    data = bench.work / f"data-ttc-{database.kind}"
    env = bench.env(database, data)
    port = bench.serve(env, 1)
    worker = ["worker", "--concurrency", "16"]
    if database.kind == "sqlite":
        worker += ["--poll-seconds", "0.5"]  # as the single-machine guide's unit
    for _ in range(2):
        bench.start(worker, env)
    time.sleep(3)  # the workers are up and listening
    try:
        clients = 4
        pace = clients / args.rate
        result = asyncio.run(drive(port, report_body(bench.secret), clients, args.seconds, pace))
        by_hash = {receipt_hash(bench.secret, code): at for code, at in result.receipts}
        rows = database.rows(
            "SELECT o.id, r.receipt_hash FROM outbox o JOIN reports r ON r.id = o.report_id"
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = delivered_at(data)
            if all(row_id in done for row_id, _ in rows):
                break
            time.sleep(0.2)
        return [done[row_id] - by_hash[h] for row_id, h in rows if row_id in done and h in by_hash]
    finally:
        bench.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rate", type=float, default=20.0, help="reports/s for part 2")
    args = parser.parse_args()
    bin_dir = pg_bin()
    if bin_dir is None:
        raise SystemExit("PostgreSQL's initdb is not installed (apt-get install postgresql)")
    work = Path(tempfile.mkdtemp(prefix="storage-bench-"))
    site = work / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>site</h1>", encoding="utf-8")
    server = PostgresServer(bin_dir).init()
    server.start()
    bench = Bench(work, secrets.token_hex(32), site)
    load_before = os.getloadavg()[0]
    rows: list[tuple[str, int, Result]] = []
    contact: list[tuple[str, list[float]]] = []
    try:
        n = 0
        for kind in ("sqlite", "postgres"):
            for workers in (1, 2):
                n += 1
                result = report_path(bench, new_database(kind, work, server, n), workers, args)
                rows.append((kind, workers, result))
        for kind in ("sqlite", "postgres"):
            n += 1
            contact.append(
                (kind, time_to_contact(bench, new_database(kind, work, server, n), args))
            )
    finally:
        bench.stop()
        server.remove()
    load_after = os.getloadavg()[0]

    print(
        f"Report path: {args.clients} clients, {args.seconds:.0f} s each, {os.cpu_count()} cores,"
        f" load average {load_before:.1f} before, {load_after:.1f} after"
    )
    head = ("database", "processes", "reports/s", "p50 ms", "p99 ms", "failed")
    print("{:10} {:>9} {:>10} {:>8} {:>8} {:>7}".format(*head))
    for kind, workers, result in rows:
        print(
            f"{kind:10} {workers:>9} {result.rate:>10.0f}"
            f" {percentile(result.latencies, 50) * 1000:>8.0f}"
            f" {percentile(result.latencies, 99) * 1000:>8.0f} {result.failed:>7}"
        )
    print()
    print(
        f"Time to contact: 1 service process, 2 worker processes, {args.rate:.0f} reports/s"
        f" for {args.seconds:.0f} s (receipt shown -> message in the partner's maildir)"
    )
    print(f"{'database':10} {'messages':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind, seconds in contact:
        print(
            f"{kind:10} {len(seconds):>9} {percentile(seconds, 50) * 1000:>8.0f}"
            f" {percentile(seconds, 99) * 1000:>8.0f} {max(seconds, default=0) * 1000:>8.0f}"
        )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
