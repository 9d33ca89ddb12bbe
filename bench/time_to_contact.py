"""Time-to-contact benchmark: from the receipt shown to the message accepted by SMTP.

Runs the real service (`outreach serve`, its delivery worker inside) in a subprocess with
every demo partner on SMTP (STARTTLS required, a throwaway CA) to a local aiosmtpd, and
files reports through the real form (GET for a token, POST) at a steady rate.

1. Steady: 20 reports/s for 60 s. Per delivered message: its accept time at the SMTP server
   minus the time the tipster's browser got the receipt page. Bar: p99 <= 1 s.
2. Outage: the SMTP server is stopped for 60 s while reports keep coming, then started
   again (reports still coming). Bar: every message filed during the outage is accepted
   within 15 s of the server's return.

``--short`` runs 10 s phases for CI; ``--workers 2`` serves (and delivers) from two
processes. A negative time means the message was accepted before the receipt page had
reached the tipster's browser. Loopback only; every loop is bounded. Not a test:
figures depend on the machine. Run: ``.venv/bin/python bench/time_to_contact.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller

from outreach.loader import DEMO_PROFILE, load_profile
from outreach.profile import Concern, Setting
from outreach.routing import RoutingFacts, route_report

# The test suite's helpers (free port, YAML edit, throwaway CA) live beside the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.conftest import edit_yaml, email_delivery, free_port
from tests.form_service.delivery.servers import make_ca

OUTREACH = str(Path(sys.executable).with_name("outreach"))
P99_BAR = 1.0
BACKLOG_BAR = 15.0
MARKER = re.compile(rb"BENCH(\d{6})")
# Kinds of report in turn, so every partner gets mail: (area, setting, concern, danger).
KINDS = [
    ("north", "school", "harm_others", "no"),
    ("east", "school", "self_harm", "no"),
    ("south", "workplace", "not_sure", "no"),
    ("north", "critical_infrastructure", "not_sure", "yes"),
    ("unknown", "college", "self_harm", "no"),
]


@dataclass
class Recorder:
    """What the SMTP server accepted: report number -> accept times (first copy counts)."""

    accepted: dict[tuple[int, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.monotonic()
        found = MARKER.search(envelope.content)
        if found:
            with self.lock:
                for rcpt in envelope.rcpt_tos:
                    self.accepted.setdefault((int(found.group(1)), rcpt), now)
        return "250 OK"

    def count(self, keys: set[tuple[int, str]]) -> int:
        with self.lock:
            return len(keys & self.accepted.keys())


class Relay:
    """aiosmtpd with STARTTLS on a fixed port, stoppable and startable again."""

    def __init__(self, port: int, tls: Any, recorder: Recorder) -> None:
        self.port, self.tls, self.recorder = port, tls, recorder
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(
            self.recorder, hostname="127.0.0.1", port=self.port, tls_context=self.tls
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller.loop.close()
            self.controller = None


def prepare(work: Path, smtp_port: int) -> tuple[Path, Any]:
    profile = work / "agency"
    shutil.copytree(DEMO_PROFILE, profile)

    def all_to_smtp(data: dict[str, Any]) -> None:
        for partner in data["partners"]:
            partner["delivery"] = email_delivery(partner["id"], smtp_port)
        # Time to contact is measured for partners that receive a report at once: no rule
        # here holds its partners for review (the demo holds all but danger now).
        for rule in data["routing"]["rules"]:
            rule.pop("review", None)

    edit_yaml(profile / "agency.yml", all_to_smtp)
    site = work / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>bench</h1>", encoding="utf-8")
    return profile, make_ca(work / "tls")


def recipients(n: int, profile: Any) -> set[tuple[int, str]]:
    area, setting, concern, danger = KINDS[n % len(KINDS)]
    facts = RoutingFacts(area, Setting(setting), Concern(concern), danger == "yes")
    return {(n, f"{r.partner_id}@partners.example.org") for r in route_report(facts, profile)}


async def file_report(client: httpx.AsyncClient, n: int) -> float:
    """One tipster: load the form, send it; the time the receipt page arrived."""
    page = (await client.get("/report")).text
    token = re.search(r'name="token" value="([^"]+)"', page)
    if token is None:
        raise RuntimeError("the form page has no token")
    area, setting, concern, danger = KINDS[n % len(KINDS)]
    data = {
        "token": token.group(1),
        "description": f"BENCH{n:06d} said something worrying about a plan.",
        "area": area,
        "area_detail": "",
        "setting": setting,
        "concern": concern,
        "when": "today",
        "people": "",
        "danger_now": danger,
    }
    response = await client.post("/report", data=data)
    if response.status_code != 200:
        raise RuntimeError(f"report {n}: HTTP {response.status_code}")
    return time.monotonic()


async def steady_load(
    client: httpx.AsyncClient, first: int, rate: float, seconds: float
) -> dict[int, float]:
    """File reports at a fixed rate; report number -> receipt time."""
    start = time.monotonic()
    tasks: dict[int, asyncio.Task[float]] = {}
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        tasks[first + i] = asyncio.create_task(file_report(client, first + i))
    return {n: await task for n, task in tasks.items()}


def wait_for(recorder: Recorder, keys: set[tuple[int, str]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while recorder.count(keys) < len(keys):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def start_service(
    work: Path, profile: Path, ca: Any, port: int, workers: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OUTREACH_DATA_DIR": str(work / "data"),
        "OUTREACH_MIN_FILL_SECONDS": "0",
        # One address files every report here: lift the per-client and global flood limits.
        "OUTREACH_REPORT_CLIENT_BURST": "1000000",
        "OUTREACH_REPORT_GLOBAL_PER_MINUTE": "1000000",
        "OUTREACH_REPORT_SURGE_PER_MINUTE": "1000000",
        "OUTREACH_REPORT_CLIENT_SURGE": "0",
        "OUTREACH_LOG_LEVEL": os.environ.get("OUTREACH_LOG_LEVEL", "error"),
        "SSL_CERT_FILE": str(ca.ca_file),  # the worker trusts the throwaway CA
    }
    args = ["serve", "--no-build", "--out", str(work / "site"), "--profile", str(profile)]
    args += ["--workers", str(workers)]
    process = subprocess.Popen([OUTREACH, *args, "--port", str(port)], env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the service did not start")


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def steady_phase(
    client: httpx.AsyncClient, recorder: Recorder, profile: Any, rate: float, seconds: float
) -> bool:
    receipts = await steady_load(client, 0, rate, seconds)
    keys = set().union(*(recipients(n, profile) for n in receipts))
    complete = await asyncio.to_thread(wait_for, recorder, keys, 60)
    with recorder.lock:
        latencies = [recorder.accepted[k] - receipts[k[0]] for k in keys if k in recorder.accepted]
    intake = [
        recorder.accepted[k] - receipts[k[0]]
        for k in keys
        if k in recorder.accepted and k[1].startswith("intake-team@")
    ]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    span = max(receipts.values()) - min(receipts.values())
    print(
        f"steady: {len(receipts)} reports at {rate:g}/s for {seconds:g} s (receipts spread "
        f"over {span:.1f} s), {len(latencies)}/{len(keys)} messages accepted"
    )
    print(
        f"  time to contact, every message: p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms (bar: p99 <= 1 s)"
    )
    print(
        f"  time to contact, intake team:   p50 {percentile(intake, 50) * 1000:.0f} ms, "
        f"p99 {percentile(intake, 99) * 1000:.0f} ms"
    )
    start = min(receipts.values())
    with recorder.lock:
        slow = sorted(
            (
                (recorder.accepted[k] - receipts[k[0]], receipts[k[0]] - start)
                for k in keys
                if k in recorder.accepted and recorder.accepted[k] - receipts[k[0]] > 0.5
            ),
        )
    if slow:
        when = sorted({round(at) for _, at in slow})
        print(f"  {len(slow)} messages over 0.5 s, for reports filed at {when} s into the run")
    return complete and p99 <= P99_BAR


async def outage_phase(
    client: httpx.AsyncClient, relay: Relay, profile: Any, rate: float, seconds: float
) -> bool:
    first = 1_000_000 // 2
    relay.stop()
    during = asyncio.create_task(steady_load(client, first, rate, seconds))
    await asyncio.sleep(seconds)
    relay.start()
    back = time.monotonic()
    # Reports keep coming while the backlog drains, as they would.
    after = asyncio.create_task(
        steady_load(client, first + int(rate * seconds) + 10, rate, BACKLOG_BAR)
    )
    receipts = await during
    keys = set().union(*(recipients(n, profile) for n in receipts))
    complete = await asyncio.to_thread(wait_for, relay.recorder, keys, 120)
    with relay.recorder.lock:
        accepted = relay.recorder.accepted
        times = sorted(accepted[k] - back for k in keys if k in accepted)
    await after
    drained = times[-1]
    print(
        f"outage: SMTP down {seconds:g} s while {len(receipts)} reports came in "
        f"({len(keys)} messages)"
    )
    print(
        f"  backlog {'fully' if complete else 'NOT fully'} delivered {drained:.1f} s after "
        f"the server returned (bar: <= {BACKLOG_BAR:g} s)"
    )
    print(
        f"  accepted: first {times[0]:.1f} s, half {times[len(times) // 2]:.1f} s, "
        f"90% {times[len(times) * 9 // 10]:.1f} s after the server returned"
    )
    return complete and drained <= BACKLOG_BAR


async def run(short: bool, rate: float, workers: int) -> bool:
    seconds = 10.0 if short else 60.0
    with tempfile.TemporaryDirectory(prefix="ttc-") as tmp:
        work = Path(tmp)
        smtp_port, http_port = free_port(), free_port()
        profile_dir, ca = prepare(work, smtp_port)
        profile = load_profile(profile_dir).profile
        relay = Relay(smtp_port, ca.server_context(), Recorder())
        relay.start()
        service = start_service(work, profile_dir, ca, http_port, workers)
        # Idle connections are dropped before the service would close them (it does at 5 s).
        limits = httpx.Limits(max_connections=50, keepalive_expiry=2)
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{http_port}", limits=limits, timeout=30
            ) as client:
                steady_ok = await steady_phase(client, relay.recorder, profile, rate, seconds)
                outage_ok = await outage_phase(client, relay, profile, rate, seconds)
        finally:
            service.terminate()
            service.wait(10)
            relay.stop()
    return steady_ok and outage_ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--short", action="store_true", help="10 s phases instead of 60 s")
    parser.add_argument("--rate", type=float, default=20.0, help="reports per second")
    parser.add_argument(
        "--workers", type=int, default=1, help="service processes (each delivers too)"
    )
    options = parser.parse_args()
    ok = asyncio.run(run(options.short, options.rate, options.workers))
    print("PASS" if ok else "FAIL: a bar was missed")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
