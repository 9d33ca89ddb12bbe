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
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from service_load import (
    OUTREACH,
    REPO,
    UNLIMITED,
    Result,
    drive,
    free_port,
    percentile,
    report_body,
    serve,
    service_env,
    start_process,
    stop,
)

sys.path.insert(0, str(REPO))

from form_service.receipts import receipt_hash
from tests.databases import Database, sqlite_database
from tests.pg import PostgresServer, pg_bin


@dataclass
class Bench:
    work: Path
    secret: str
    site: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, database: Database, data: Path) -> dict[str, str]:
        return {
            **service_env(data, self.secret, OUTREACH_MIN_FILL_SECONDS="0"),
            **database.env(),
            **UNLIMITED,
        }

    def start(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.work / f"process-{len(self.processes)}.log"
        process = start_process([OUTREACH, *args], env, log)
        self.processes.append(process)
        return process

    def serve(self, env: dict[str, str], workers: int) -> int:
        port = free_port()
        log = self.work / f"process-{len(self.processes)}.log"
        args = ("--no-worker", "--workers", str(workers))
        self.processes.append(serve(self.site, port, env, log, *args))
        return port

    def stop(self) -> None:
        stop(self.processes)
        self.processes.clear()


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
        body = report_body(bench.secret)
        result = asyncio.run(drive(port, body, clients, args.seconds, pace=pace, warmup=0))
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
