"""Benchmark of the report path: the real service against a bare durable insert, same run.

    .venv/bin/python bench/report_path.py [--rounds 3] [--seconds 10] [--clients 32]

Starts `outreach serve` (the real service, delivery worker included, under uvicorn) and a
bare Starlette endpoint that parses the same form and does one SQLite insert with WAL and
synchronous=FULL, each in its own process. Both are driven by the same load generator: 32
concurrent keep-alive connections, each sending one report after another, the two servers
taking turns for a few rounds; the bar is checked on the median of the rounds' ratios (this
machine is shared, and other work comes and goes). Printed: accepted
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
    parser.add_argument("--seconds", type=float, default=10.0, help="Per server and round.")
    parser.add_argument("--rounds", type=int, default=3)
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
    rounds: list[tuple[Result, Result]] = []
    try:
        for n in range(args.rounds):
            # Bare and service take turns, so a burst of other work on this shared machine
            # falls on one round of both rather than on all of one of them.
            warmup = 2.0 if n == 0 else 0.5
            bare_result = measure(
                bare, "bare", bare_port, lambda: b"token=" + b"x" * 80 + b"&" + plain, args, warmup
            )
            service_result = measure(
                service, "service", service_port, report_body(secret), args, warmup
            )
            rounds.append((bare_result, service_result))
        rss, peak = rss_mb(service.pid)
        if args.worker is not None:
            worker_rss, worker_peak = rss_mb(args.worker.pid)
            rss, peak = rss + worker_rss, peak + worker_peak
        database = work / "data" / "reports.sqlite3"
        with closing(sqlite3.connect(database)) as conn:
            stored = conn.execute("SELECT count(*) FROM reports").fetchone()[0]
        args.caught_up = None if args.no_worker else delivery_catch_up(database)
    finally:
        stop([p for p in (service, bare, args.worker) if p is not None], signal.SIGINT)
    report(rounds, rss, peak, stored, args)
    shutil.rmtree(work, ignore_errors=True)


def measure(
    process: subprocess.Popen[bytes],
    name: str,
    port: int,
    body: Callable[[], bytes],
    args: argparse.Namespace,
    warmup: float,
) -> Result:
    # The service's CPU includes its worker's, wherever that runs.
    pids = [process.pid] + ([args.worker.pid] if name == "service" and args.worker else [])
    before = sum(cpu_seconds(pid) for pid in pids)
    result = asyncio.run(drive(port, body, args.clients, args.seconds, warmup=warmup, name=name))
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


def pooled(results: list[Result]) -> Result:
    """One result from several rounds of the same server: counts and latencies summed."""
    total = Result(results[0].name)
    for r in results:
        total.accepted += r.accepted
        total.failed += r.failed
        total.seconds += r.seconds
        total.warmup += r.warmup
        total.cpu += r.cpu
        total.latencies += r.latencies
    return total


def report(
    rounds: list[tuple[Result, Result]],
    rss: float,
    peak: float,
    stored: int,
    args: argparse.Namespace,
) -> None:
    print(
        f"{args.clients} clients, {args.rounds} rounds of {args.seconds:.0f} s per server,"
        f" {os.cpu_count()} cores"
    )
    print(
        f"{'':8} {'reports/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7} {'CPU ms/report':>14}"
    )
    for n, pair in enumerate(rounds, 1):
        for r in pair:
            p50, p99 = (percentile(r.latencies, p) * 1000 for p in (50, 99))
            print(
                f"{r.name:8} {r.rate:10.1f} {p50:8.1f} {p99:8.1f} {r.failed:7d}"
                f" {r.cpu_per_report():7.2f}"
            )
        print(f"  round {n}: service/bare {pair[1].rate / pair[0].rate:.0%}")
    print("(CPU ms: server CPU time per accepted report, all threads)")
    ratios = sorted(service.rate / bare.rate for bare, service in rounds)
    ratio = ratios[len(ratios) // 2]
    bare, service = (pooled([pair[i] for pair in rounds]) for i in (0, 1))
    p50, p99 = (percentile(service.latencies, p) * 1000 for p in (50, 99))
    who = "service and worker" if args.worker_process else "service"
    print(
        f"median service/bare: {ratio:.0%} (rounds {', '.join(f'{x:.0%}' for x in ratios)});"
        f" service p50 {p50:.1f} ms, p99 {p99:.1f} ms over all rounds"
    )
    print(f"{who} RSS: {rss:.0f} MB (peak {peak:.0f} MB)")
    print(f"reports in the service database: {stored} (warm-ups included)")
    where = "its own process" if args.worker_process else "inside the service"
    if args.caught_up is not None:
        print(f"delivery ({where}): every message out {args.caught_up:.1f} s after the load")
    elif not args.no_worker:
        print(f"delivery ({where}): NOT caught up within 300 s after the load")
    print(f"load average before the run: {args.load:.2f}")
    checks = [
        ("median rate >= 50% of bare", ratio >= 0.5),
        ("p99 <= 100 ms", p99 <= 100),
        ("RSS <= 150 MB", peak <= 150),
        ("no failed requests", service.failed == 0 and bare.failed == 0),
    ]
    for label, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")


if __name__ == "__main__":
    main()
