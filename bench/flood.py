"""The flood test: one client floods the report form while ordinary tipsters keep reporting.

    .venv/bin/python bench/flood.py [--short] [--json PATH]

Starts `outreach serve` (the real service under uvicorn, its delivery worker inside, the
demo agency with every partner on Maildir) with the service's default flood limits. Then,
at the same time:

- one flooder, in a process of its own, from 127.0.0.66, POSTs reports at 200 a second for
  30 s over 32 keep-alive connections. Each carries a valid form token, signed with the
  service's secret and old enough to pass the minimum fill time: the worst case, a bot
  that gathered forms first;
- 10 ordinary tipsters, from httpx like a browser: each loads the form, waits past the
  minimum fill time, sends a valid report, pauses, and starts again until the flood ends.
  Seven have an address of their own (127.0.0.11 to .17); three share 127.0.0.20, like
  pupils behind a school's one address.

Then it waits until the worker has delivered every stored report (flagged reports go out
in digests; the window is 10 s here instead of 5 minutes so the run ends soon), stops the
service and checks the bars of the hardening issue:

1. at least 99% of the ordinary reports are accepted;
2. the service stays up (it answers /healthz, no request gets a 5xx) and the ordinary
   tipsters' p99 latency, over every request they make, is under 500 ms;
3. the flood creates no more reports than one client's limit: the burst plus its hourly
   rate over the flood's length;
4. partners are not sent one message per flood report: every partner got fewer messages
   than the flood made reports for it, its flagged reports came in at most one message per
   digest window, and every stored report reached every partner it was routed to.

``--uploads MB`` attaches a photo of about MB megabytes to every ordinary report (the
issue's "10 tipsters each sending a 5 MB photo": ``--uploads 5``). ``--short`` floods at
100 a second for 8 s (CI runs it: tests/form_service/
test_flood_bench.py). Exits 1 when a bar fails. Loopback only. The load average is
printed: on a shared machine other work takes CPU from the service.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import io
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from service_load import (
    REPORT,
    Result,
    free_port,
    healthy,
    percentile,
    post_reports,
    report_body,
    serve,
    service_env,
    stop,
)

from form_service.settings import SETTINGS
from outreach.i18n import translations
from outreach.loader import DEMO_PROFILE, load_profile

FLOODER = "127.0.0.66"
OWN_ADDRESSES = [f"127.0.0.{n}" for n in range(11, 18)]
SHARED_ADDRESS = "127.0.0.20"
FLOOD_CONNECTIONS = 32
SECRET_VARIABLE = "FLOOD_BENCH_SECRET"
P99_BAR = 0.5
ACCEPTED_BAR = 0.99
_TOKEN = re.compile(r'name="token" value="([^"]+)"')
_RECEIPT = re.compile(r'id="receipt-code" class="code" value="([0-9A-Z-]+)"')


@dataclass(frozen=True)
class Plan:
    seconds: float
    rate: float
    digest_seconds: float
    pause: tuple[float, float]
    """Seconds a tipster waits after a report before loading the form again."""

    @classmethod
    def of(cls, short: bool) -> Plan:
        return cls(8.0, 100.0, 3.0, (0.2, 0.8)) if short else cls(30.0, 200.0, 10.0, (1.5, 3.0))


@dataclass
class Tipsters:
    sent: int = 0
    accepted: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    """Seconds of every request the tipsters made, form loads and reports alike."""
    by_method: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


FLOOD_SETTINGS = (
    "OUTREACH_MIN_FILL_SECONDS",
    "OUTREACH_REPORT_CLIENT_BURST",
    "OUTREACH_REPORT_CLIENT_PER_HOUR",
    "OUTREACH_REPORT_GLOBAL_PER_MINUTE",
    "OUTREACH_REPORT_SURGE_PER_MINUTE",
    "OUTREACH_REPORT_CLIENT_SURGE",
)


def default_limits() -> dict[str, str]:
    """The service's default flood settings: this run sets them and checks against them."""
    return {s.env: s.default for s in SETTINGS if s.env in FLOOD_SETTINGS}


async def tipster(
    url: str,
    address: str,
    fill: float,
    end: float,
    plan: Plan,
    seen: Tipsters,
    photo: bytes | None = None,
) -> None:
    """One person reporting again and again: form, a pause to write, send, a pause."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    limits_ = httpx.Limits(keepalive_expiry=2)  # the service drops idle connections at 5 s
    headers = {"user-agent": "Mozilla/5.0 (flood bench tipster)"}
    async with httpx.AsyncClient(
        base_url=url, transport=transport, limits=limits_, headers=headers, timeout=30
    ) as client:
        await asyncio.sleep(random.uniform(0, 1))
        while time.monotonic() + fill < end:
            try:
                form = await timed(client, seen, "GET", "/report")
                token = _TOKEN.search(form.text)
                await asyncio.sleep(fill)
                data = {"token": token.group(1) if token else "", **REPORT}
                seen.sent += 1
                files = [("files", ("IMG_0001.jpg", photo, "image/jpeg"))] if photo else None
                answer = await timed(client, seen, "POST", "/report", data=data, files=files)
            except httpx.HTTPError as error:
                seen.errors.append(type(error).__name__)
                continue
            if answer.status_code == 200 and _RECEIPT.search(answer.text):
                seen.accepted += 1
            await asyncio.sleep(random.uniform(*plan.pause))


async def timed(
    client: httpx.AsyncClient, seen: Tipsters, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    started = time.monotonic()
    response = await client.request(method, path, **kwargs)
    seconds = time.monotonic() - started
    seen.latencies.append(seconds)
    seen.by_method.setdefault(method, []).append(seconds)
    seen.statuses[response.status_code] += 1
    return response


def flood(port: int, secret: str, begin: float, plan: Plan, fill: float, out: Path) -> None:
    """The flooder, in a process of its own so that its load does not slow the tipsters'
    client down: from *begin* (wall clock) on, for the plan's seconds."""
    result = Result("flood")

    async def run() -> None:
        await asyncio.sleep(max(0.0, begin - time.time()))
        start = time.monotonic()
        end = start + plan.seconds
        # Tokens made "fill + 2" seconds ago pass the minimum fill time at once.
        body = report_body(secret, age=fill + 2)
        pace = FLOOD_CONNECTIONS / plan.rate
        await asyncio.gather(
            *(
                post_reports(port, body, end, result, pace=pace, local_address=FLOODER)
                for _ in range(FLOOD_CONNECTIONS)
            )
        )
        result.seconds = time.monotonic() - start

    asyncio.run(run())
    figures = {"statuses": result.statuses, "accepted": result.accepted, "seconds": result.seconds}
    out.write_text(json.dumps(figures), encoding="utf-8")


async def report_normally(
    port: int, begin: float, plan: Plan, fill: float, photo: bytes | None = None
) -> Tipsters:
    """The ten ordinary tipsters, from *begin* (wall clock) until the flood ends; each
    report with *photo* attached, if given."""
    await asyncio.sleep(max(0.0, begin - time.time()))
    end = time.monotonic() + plan.seconds
    seen = Tipsters()
    url = f"http://127.0.0.1:{port}"
    addresses = [*OWN_ADDRESSES, *[SHARED_ADDRESS] * 3]
    await asyncio.gather(*(tipster(url, a, fill + 0.3, end, plan, seen, photo) for a in addresses))
    return seen


def flood_and_report(
    port: int, secret: str, plan: Plan, fill: float, work: Path, photo: bytes | None = None
) -> tuple[Result, Tipsters]:
    out = work / "flood.json"
    begin = time.time() + 2  # time for the flooder's process to start
    command = [sys.executable, __file__, "--flooder", str(port), "--begin", str(begin)]
    command += ["--out", str(out), *(["--short"] if plan == Plan.of(True) else [])]
    flooder = subprocess.Popen(command, env={**os.environ, SECRET_VARIABLE: secret})
    try:
        seen = asyncio.run(report_normally(port, begin, plan, fill, photo))
    finally:
        flooder.wait(timeout=plan.seconds + 60)
    figures = json.loads(out.read_text(encoding="utf-8"))
    result = Result("flood", figures["accepted"], seconds=figures["seconds"])
    result.statuses.update({int(k): v for k, v in figures["statuses"].items()})
    return result, seen


def wait_for_delivery(database: Path, timeout: float) -> float:
    """Seconds until no outbox row is left undelivered (or the timeout passed)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
            sql = "SELECT count(*) FROM outbox WHERE status != 'delivered'"
            if conn.execute(sql).fetchone()[0] == 0:
                break
        time.sleep(0.25)
    return time.monotonic() - started


def routed(database: Path) -> dict[str, set[str]]:
    """partner id -> references of the reports routed to it."""
    found: dict[str, set[str]] = {}
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        for ref, partner in conn.execute(
            "SELECT r.report_ref, o.partner_id FROM outbox o JOIN reports r ON r.id = o.report_id"
        ):
            found.setdefault(partner, set()).add(ref)
    return found


def stored_reports(database: Path) -> int:
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT count(*) FROM reports").fetchone()[0])


@dataclass
class Mailbox:
    messages: int = 0
    flagged_messages: int = 0
    refs: set[str] = field(default_factory=set)
    flagged_refs: set[str] = field(default_factory=set)
    largest_digest: int = 0


def mailboxes(data: Path) -> dict[str, Mailbox]:
    """What each partner's Maildir holds: messages, the reports in them, flagged or not."""
    profile = load_profile(DEMO_PROFILE).profile
    marks = {translations(lang).pgettext("mail", "[possible flood]") for lang in profile.languages}
    boxes: dict[str, Mailbox] = {}
    for partner in profile.partners:
        box = boxes[partner.id] = Mailbox()
        if partner.delivery.maildir is None:
            continue
        for path in sorted((data / "maildir" / partner.delivery.maildir.folder).glob("new/*")):
            mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            refs = {r.strip() for r in str(mail["X-Outreach-Report"]).split(",")}
            box.messages += 1
            box.refs |= refs
            if any(str(mail["Subject"]).startswith(mark) for mark in marks):
                box.flagged_messages += 1
                box.flagged_refs |= refs
                box.largest_digest = max(box.largest_digest, len(refs))
    return boxes


def check(figures: dict[str, Any]) -> list[tuple[str, bool]]:
    t = figures
    return [
        (
            f"ordinary reports accepted >= {ACCEPTED_BAR:.0%}"
            f" ({t['tipster_accepted']}/{t['tipster_sent']})",
            t["tipster_sent"] > 0 and t["tipster_accepted"] >= ACCEPTED_BAR * t["tipster_sent"],
        ),
        (
            "service up: /healthz answered after the flood, no 5xx, no failed connection",
            t["healthy_after"] and t["server_errors"] == 0 and not t["tipster_errors"],
        ),
        (
            f"ordinary tipsters' p99 < {P99_BAR * 1000:.0f} ms ({t['tipster_p99_ms']:.0f} ms)",
            t["tipster_p99_ms"] < P99_BAR * 1000,
        ),
        (
            f"flood reports <= the per-client limit ({t['flood_accepted']} <= {t['flood_limit']})",
            t["flood_accepted"] <= t["flood_limit"],
        ),
        (
            "every stored report reached every partner it was routed to",
            t["undelivered"] == 0,
        ),
        (
            "each partner: fewer messages than flood reports, flagged ones one per window",
            all(
                p["messages"] < max(2, t["flood_accepted"])
                and p["flagged_messages"] <= t["digest_windows"]
                for p in t["partners"].values()
                if p["routed"]
            ),
        ),
    ]


PHONE_PHOTO = (4032, 3024)
"""A 12-megapixel phone camera's picture."""


def photo_of(megabytes: float) -> bytes:
    """A real JPEG of a phone photo's size and about *megabytes*: noise (which compresses
    badly, as a photo does) at the highest quality that fits."""
    from PIL import Image

    width, height = PHONE_PHOTO
    image = Image.frombytes("RGB", PHONE_PHOTO, os.urandom(width * height * 3))
    for quality in range(95, 0, -5):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        if out.tell() <= megabytes * 1024 * 1024:
            break
    return out.getvalue()


def run(plan: Plan, photo_mb: float = 0.0) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="flood-bench-"))
    site = work / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>site</h1>", encoding="utf-8")
    data = work / "data"
    secret = secrets.token_hex(32)
    limits = default_limits()
    env = service_env(
        data, secret, OUTREACH_FLOOD_DIGEST_SECONDS=str(plan.digest_seconds), **limits
    )
    fill = float(limits["OUTREACH_MIN_FILL_SECONDS"])
    burst = float(limits["OUTREACH_REPORT_CLIENT_BURST"])
    per_hour = float(limits["OUTREACH_REPORT_CLIENT_PER_HOUR"])
    port = free_port()
    load_before = os.getloadavg()[0]
    service = serve(site, port, env, work / "service.log")
    try:
        started = time.monotonic()
        photo = photo_of(photo_mb) if photo_mb else None
        flooded, seen = flood_and_report(port, secret, plan, fill, work, photo)
        healthy_after = healthy(port) and service.poll() is None
        database = data / "reports.sqlite3"
        delivery_wait = wait_for_delivery(database, plan.digest_seconds + 120)
        span = time.monotonic() - started
    finally:
        stop([service], signal.SIGINT)
    by_partner = routed(database)
    boxes = mailboxes(data)
    undelivered = sum(len(by_partner.get(p, set()) - b.refs) for p, b in boxes.items())
    statuses = flooded.statuses + seen.statuses
    figures: dict[str, Any] = {
        "seconds": plan.seconds,
        "tipster_photo_mb": round(len(photo) / 1024 / 1024, 1) if photo else 0,
        "flood_rate_target": plan.rate,
        "flood_requests": sum(flooded.statuses.values()),
        "flood_rate": sum(flooded.statuses.values()) / flooded.seconds,
        "flood_statuses": dict(flooded.statuses),
        "flood_accepted": flooded.accepted,
        "flood_limit": int(burst + per_hour * plan.seconds / 3600),
        "tipster_sent": seen.sent,
        "tipster_accepted": seen.accepted,
        "tipster_statuses": dict(seen.statuses),
        "tipster_errors": seen.errors,
        "tipster_requests": len(seen.latencies),
        "tipster_p50_ms": percentile(seen.latencies, 50) * 1000,
        "tipster_p99_ms": percentile(seen.latencies, 99) * 1000,
        "tipster_max_ms": max(seen.latencies, default=0) * 1000,
        "tipster_form_p99_ms": percentile(seen.by_method.get("GET", []), 99) * 1000,
        "tipster_report_p99_ms": percentile(seen.by_method.get("POST", []), 99) * 1000,
        "server_errors": sum(n for status, n in statuses.items() if status >= 500),
        "healthy_after": healthy_after,
        "stored_reports": stored_reports(database),
        "digest_seconds": plan.digest_seconds,
        "digest_windows": math.ceil(span / plan.digest_seconds) + 1,
        "delivery_wait_seconds": delivery_wait,
        "undelivered": undelivered,
        "partners": {
            partner: {
                "routed": len(by_partner.get(partner, set())),
                **{k: v for k, v in asdict(box).items() if not k.endswith("refs")},
                "flagged_reports": len(box.flagged_refs),
            }
            for partner, box in boxes.items()
        },
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "cores": os.cpu_count(),
    }
    figures["bars"] = [[label, ok] for label, ok in check(figures)]
    shutil.rmtree(work, ignore_errors=True)
    return figures


def show(f: dict[str, Any]) -> None:
    print(
        f"flood: {f['flood_requests']} POSTs from one address in {f['seconds']:.0f} s"
        f" ({f['flood_rate']:.0f}/s of {f['flood_rate_target']:.0f}/s asked),"
        f" answers {f['flood_statuses']}, {f['flood_accepted']} reports stored"
        f" (limit {f['flood_limit']})"
    )
    print(
        f"tipsters: {f['tipster_accepted']}/{f['tipster_sent']} reports accepted;"
        f" {f['tipster_requests']} requests, p50 {f['tipster_p50_ms']:.0f} ms,"
        f" p99 {f['tipster_p99_ms']:.0f} ms (form {f['tipster_form_p99_ms']:.0f} ms,"
        f" report {f['tipster_report_p99_ms']:.0f} ms), max {f['tipster_max_ms']:.0f} ms;"
        f" answers {f['tipster_statuses']}"
    )
    print(
        f"stored reports: {f['stored_reports']}; all delivered"
        f" {f['delivery_wait_seconds']:.1f} s after the flood; digest window"
        f" {f['digest_seconds']:.0f} s (at most {f['digest_windows']} windows in the run)"
    )
    head = ("partner", "routed", "messages", "flagged", "in them", "largest")
    print("{:26} {:>6} {:>8} {:>8} {:>8} {:>7}".format(*head))
    for partner, p in f["partners"].items():
        if p["routed"]:
            print(
                f"{partner:26} {p['routed']:>6} {p['messages']:>8} {p['flagged_messages']:>8}"
                f" {p['flagged_reports']:>8} {p['largest_digest']:>7}"
            )
    print(
        f"{f['cores']} cores, load average {f['load_before']:.1f} before,"
        f" {f['load_after']:.1f} after"
    )
    for label, ok in f["bars"]:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--short", action="store_true", help="8 s at 100/s instead of 30 s at 200/s"
    )
    parser.add_argument("--json", type=Path, help="also write the figures and bars here")
    parser.add_argument(
        "--uploads",
        type=float,
        default=0.0,
        metavar="MB",
        help="each ordinary report carries a photo of about this many MB",
    )
    parser.add_argument("--flooder", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--begin", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flooder:
        fill = float(default_limits()["OUTREACH_MIN_FILL_SECONDS"])
        secret = os.environ[SECRET_VARIABLE]
        flood(args.flooder, secret, args.begin, Plan.of(args.short), fill, args.out)
        return
    figures = run(Plan.of(args.short), args.uploads)
    show(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    sys.exit(0 if all(ok for _, ok in figures["bars"]) else 1)


if __name__ == "__main__":
    main()
