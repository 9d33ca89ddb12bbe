"""Benchmark of the report path: the real service against a bare durable insert, same run.

    .venv/bin/python bench/report_path.py [--seconds 15] [--clients 32]

Starts `outreach serve` (the real service, delivery worker included, under uvicorn) and a
bare Starlette endpoint that parses the same form and does one SQLite insert with WAL and
synchronous=FULL, each in its own process. Both are driven by the same load generator: 32
concurrent keep-alive connections, each sending one report after another. Printed: accepted
reports per second, p50/p99 latency of the POST, each server's CPU time per report (all its
threads, from /proc), and the service's resident memory, with the bar from the issue
(>= 50% of the bare rate, p99 <= 100 ms, RSS <= 150 MB). The load average is printed too:
on a shared machine other work takes CPU from both servers, and the service, which does
more per report, loses more. `--no-worker` leaves the delivery worker out;
`--worker-process` runs it as its own process (`outreach serve --no-worker` beside
`outreach worker`, woken at each commit), and its CPU is counted with the service's.
After the load, the time the worker needed to deliver every stored report to every
partner is printed: a rate the worker cannot keep up with is not sustained.

The service runs with OUTREACH_MIN_FILL_SECONDS=0, because these clients send a form the
moment they have it; form tokens are signed here with the service's own secret, so each
POST is a new report and no time goes to fetching forms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from service_load import (
    OUTREACH,
    REPORT,
    UNLIMITED,
    Result,
    drive,
    free_port,
    percentile,
    report_body,
    start_process,
    stop,
    wait_until_listening,
)

# --- the bare endpoint ---------------------------------------------------------------


def bare_app(db_path: Path) -> Any:
    import anyio.to_thread
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS reports (id INTEGER PRIMARY KEY, body TEXT)")
    lock = threading.Lock()

    def insert(text: str) -> None:
        with lock:
            conn.execute("INSERT INTO reports (body) VALUES (?)", (text,))

    async def report(request: Request) -> PlainTextResponse:
        form = await request.form(max_fields=30, max_part_size=64 * 1024)
        await anyio.to_thread.run_sync(insert, str(form.get("description", "")))
        return PlainTextResponse("stored")

    return Starlette(routes=[Route("/report", report, methods=["POST"])])


def serve_bare(port: int, db_path: Path) -> None:
    import uvicorn

    uvicorn.run(
        bare_app(db_path), host="127.0.0.1", port=port, access_log=False, log_level="warning"
    )


# --- orchestration -------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    values = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument(
        "--no-worker", action="store_true", help="Serve without the delivery worker."
    )
    parser.add_argument(
        "--worker-process",
        action="store_true",
        help="Deliver from `outreach worker` in its own process, not inside the service.",
    )
    parser.add_argument("--bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


def start_servers(
    work: Path, secret: str, args: argparse.Namespace
) -> tuple[subprocess.Popen[bytes], int, subprocess.Popen[bytes], int]:
    """`outreach serve` and the bare endpoint, each in its own process, both answering."""
    site = str(work / "site")
    subprocess.run([OUTREACH, "build", "--out", site], check=True, stdout=subprocess.DEVNULL)
    env = {
        **os.environ,
        "OUTREACH_DATA_DIR": str(work / "data"),
        "OUTREACH_SECRET_KEY": secret,
        # The load generator sends each form the moment it has it, all from one address.
        "OUTREACH_MIN_FILL_SECONDS": "0",
        **UNLIMITED,
    }
    service_port, bare_port = free_port(), free_port()
    worker = ["--no-worker"] if args.no_worker or args.worker_process else []
    serve = [OUTREACH, "serve", "--no-build", "--out", site, "--port", str(service_port), *worker]
    bare_cmd = [sys.executable, __file__, "--bare", str(bare_port), "--db", str(work / "bare.db")]
    service = start_process(serve, env, work / "service.log", cwd=work)
    bare = start_process(bare_cmd, None, work / "bare.log", cwd=work)
    wait_until_listening(service_port, service, work / "service.log")
    wait_until_listening(bare_port, bare, work / "bare.log")
    args.worker = None
    if args.worker_process:
        args.worker = start_process([OUTREACH, "worker"], env, work / "worker.log", cwd=work)
    return service, service_port, bare, bare_port


def main() -> None:
    args = parse_args()
    if args.bare:
        serve_bare(args.bare, args.db)
        return
    args.load = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="report-bench-"))
    secret = secrets.token_hex(32)
    service, service_port, bare, bare_port = start_servers(work, secret, args)
    plain = urlencode(REPORT).encode()
    try:
        bare_result = measure(
            bare, "bare", bare_port, lambda: b"token=" + b"x" * 80 + b"&" + plain, args
        )
        service_result = measure(service, "service", service_port, report_body(secret), args)
        rss, peak = rss_mb(service.pid)
        database = work / "data" / "reports.sqlite3"
        with closing(sqlite3.connect(database)) as conn:
            stored = conn.execute("SELECT count(*) FROM reports").fetchone()[0]
        args.caught_up = None if args.no_worker else delivery_catch_up(database)
    finally:
        stop([p for p in (service, bare, args.worker) if p is not None], signal.SIGINT)
    report(bare_result, service_result, rss, peak, stored, args)
    shutil.rmtree(work, ignore_errors=True)


def measure(
    process: subprocess.Popen[bytes],
    name: str,
    port: int,
    body: Callable[[], bytes],
    args: argparse.Namespace,
) -> Result:
    # The service's CPU includes its worker's, wherever that runs.
    pids = [process.pid] + ([args.worker.pid] if name == "service" and args.worker else [])
    before = sum(cpu_seconds(pid) for pid in pids)
    result = asyncio.run(drive(port, body, args.clients, args.seconds, name=name))
    # The warm-up's CPU is counted too, spread over warm-up and measured reports alike.
    result.cpu = sum(cpu_seconds(pid) for pid in pids) - before
    return result


def delivery_catch_up(database: Path, timeout: float = 300) -> float | None:
    """Seconds after the load until every outbox row is delivered; None past *timeout*."""
    started = time.monotonic()
    with closing(sqlite3.connect(database, timeout=30)) as conn:
        while time.monotonic() - started < timeout:
            query = "SELECT count(*) FROM outbox WHERE status != 'delivered'"
            if conn.execute(query).fetchone()[0] == 0:
                return time.monotonic() - started
            time.sleep(0.2)
    return None


def report(
    bare: Result, service: Result, rss: float, peak: float, stored: int, args: argparse.Namespace
) -> None:
    print(f"{args.clients} clients, {args.seconds:.0f} s each, {os.cpu_count()} cores")
    print(
        f"{'':8} {'reports/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7} {'CPU ms/report':>14}"
    )
    for r in (bare, service):
        p50, p99 = (percentile(r.latencies, p) * 1000 for p in (50, 99))
        print(
            f"{r.name:8} {r.rate:10.1f} {p50:8.1f} {p99:8.1f} {r.failed:7d}"
            f" {r.cpu_per_report():7.2f}"
        )
    print("(CPU ms: server CPU time per accepted report, all threads)")
    ratio = service.rate / bare.rate
    print(f"service/bare: {ratio:.0%}   service RSS: {rss:.0f} MB (peak {peak:.0f} MB)")
    print(f"reports in the service database: {stored} (warm-up included)")
    where = "its own process" if args.worker_process else "inside the service"
    if args.caught_up is not None:
        print(f"delivery ({where}): every message out {args.caught_up:.1f} s after the load")
    elif not args.no_worker:
        print(f"delivery ({where}): NOT caught up within 300 s after the load")
    print(f"load average before the run: {args.load:.2f}")
    checks = [
        ("rate >= 50% of bare", ratio >= 0.5),
        ("p99 <= 100 ms", percentile(service.latencies, 99) <= 0.1),
        ("RSS <= 150 MB", peak <= 150),
        ("no failed requests", service.failed == 0 and bare.failed == 0),
    ]
    for label, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")


if __name__ == "__main__":
    main()
