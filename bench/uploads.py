"""The upload bench: the service's memory while 20 videos of about 50 MB stream in at once.

    .venv/bin/python bench/uploads.py [--clients 20] [--json PATH]

Makes one real MP4 of just under OUTREACH_MAX_VIDEO_BYTES with ffmpeg (video and audio,
with metadata), starts `outreach serve` (the real service under uvicorn, the demo agency,
its delivery worker inside), then sends that many report forms at the same moment, each
with the video attached, each streamed from disk a MiB at a time (as a browser does).
It samples the service process's resident memory (VmRSS) every 50 ms and reports:

- the peak while the uploads stream in (until the last body is sent), and the peak over
  the whole run (the files are then cleaned and sealed two at a time, and stored);
- how long the uploads and the answers took, and how many reports were stored with a file;
- that no temporary upload file is left in the data dir.

The bar of the issue: RSS at most 150 MB while the uploads stream. Exits 1 when it fails.
Loopback only; the load average is printed, as other work on a shared machine slows it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
from service_load import REPORT, free_port, serve, service_env, stop

from form_service.settings import MIB

RSS_BAR_MB = 150.0
BOUNDARY = "bench0boundary0uploads"


def make_video(folder: Path, limit: int) -> Path:
    """A real MP4 (MPEG-4 video, AAC audio, a title) of just under *limit* bytes."""
    tool = shutil.which("ffmpeg")
    if tool is None:
        sys.exit("ffmpeg is needed (apt-get install ffmpeg)")
    out = folder / "bench.mp4"
    seconds = 30.0
    while True:
        subprocess.run(
            [tool, "-y", "-v", "error",
             "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
             "-f", "lavfi", "-i", "sine=frequency=440",
             "-t", f"{seconds:.1f}", "-c:v", "mpeg4", "-q:v", "2", "-c:a", "aac",
             "-metadata", "title=bench", "-shortest", str(out)],
            check=True,
        )  # fmt: skip
        if out.stat().st_size <= limit:
            return out
        seconds *= 0.95 * limit / out.stat().st_size


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    """The service's RSS every 50 ms, with the peak while the uploads stream apart."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.streaming = True
        self.peak_streaming = 0.0
        self.peak = 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            try:
                rss = rss_mb(self.pid)
            except OSError:
                return
            self.peak = max(self.peak, rss)
            if self.streaming:
                self.peak_streaming = max(self.peak_streaming, rss)


def _head(token: str) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in {"token": token, **REPORT}.items()
    ]
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="clip.mp4"'
        "\r\nContent-Type: video/mp4\r\n\r\n"
    )
    return "".join(parts).encode()


async def _body(token: str, video: Path, sent: list[int]) -> AsyncIterator[bytes]:
    yield _head(token)
    with video.open("rb") as source:
        while piece := source.read(MIB):
            yield piece
            await asyncio.sleep(0)  # every upload gets its turn, as on a network
    yield f"\r\n--{BOUNDARY}--\r\n".encode()
    sent.append(1)


async def upload_all(
    port: int, secret: str, video: Path, clients: int, sampler: Sampler
) -> dict[str, Any]:
    from form_service.tokens import FormTokens

    tokens = FormTokens((secret,), 0, 3600, clock=lambda: time.time() - 60)
    sent: list[int] = []
    statuses: list[int] = []
    size = len(_head("x" * 60)) + video.stat().st_size
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=600, limits=limits
    ) as client:

        async def one() -> None:
            answer = await client.post(
                "/report", content=_body(tokens.issue(), video, sent), headers=headers
            )
            statuses.append(answer.status_code)

        async def watch() -> None:
            while len(sent) < clients:
                await asyncio.sleep(0.05)
            sampler.streaming = False

        started = time.monotonic()
        watcher = asyncio.create_task(watch())
        await asyncio.gather(*(one() for _ in range(clients)))
        await watcher
    return {
        "clients": clients,
        "body_mb": round(size / MIB, 1),
        "seconds": round(time.monotonic() - started, 1),
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
    }


def run(clients: int, worker: bool = True) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="uploads-bench-"))
    site = work / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>site</h1>", encoding="utf-8")
    data = work / "data"
    secret = secrets.token_hex(32)
    video = make_video(work, 50 * MIB)
    env = service_env(data, secret, OUTREACH_REPORT_CLIENT_BURST=str(clients * 2))
    port = free_port()
    load_before = os.getloadavg()[0]
    service = serve(site, port, env, work / "service.log", *([] if worker else ["--no-worker"]))
    try:
        idle = rss_mb(service.pid)
        sampler = Sampler(service.pid)
        sampler.start()
        figures = asyncio.run(upload_all(port, secret, video, clients, sampler))
        sampler.stopped.set()
        sampler.join()
    finally:
        stop([service], signal.SIGINT)
    with closing(sqlite3.connect(data / "reports.sqlite3")) as db:
        stored = db.execute("SELECT count(*) FROM reports").fetchone()[0]
        files = db.execute("SELECT count(*), coalesce(sum(size), 0) FROM attachments").fetchone()
    left = list((data / "uploads").iterdir()) if (data / "uploads").exists() else []
    figures |= {
        "video_mb": round(video.stat().st_size / MIB, 1),
        "rss_idle_mb": round(idle, 1),
        "rss_peak_streaming_mb": round(sampler.peak_streaming, 1),
        "rss_peak_mb": round(sampler.peak, 1),
        "delivery_worker": worker,
        "reports_stored": stored,
        "files_stored": files[0],
        "files_stored_mb": round(files[1] / MIB, 1),
        "upload_files_left": len(left),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    shutil.rmtree(work, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="leave delivery out, to see what intake alone costs",
    )
    args = parser.parse_args()
    figures = run(args.clients, worker=not args.no_worker)
    print(json.dumps(figures, indent=2))
    bars = [
        ("RSS while the uploads stream ≤ 150 MB", figures["rss_peak_streaming_mb"] <= RSS_BAR_MB),
        ("every upload answered 200", figures["statuses"] == {"200": args.clients}),
        ("no temporary upload file left", figures["upload_files_left"] == 0),
    ]
    for name, ok in bars:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    sys.exit(0 if all(ok for _, ok in bars) else 1)


if __name__ == "__main__":
    main()
