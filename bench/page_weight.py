"""Page weight and Lighthouse scores of the demo site and report form, in a real Chromium.

    .venv/bin/python bench/page_weight.py [--no-lighthouse] [--npm-prefix DIR]

Starts the real `outreach serve` on a free loopback port, then:

1. Transfer size of each page's first load (cache off): the HTML and every same-origin
   subresource the page loads in Chromium, raw and gzip-compressed (level 6, what a
   server's gzip would send), excluding the search index (shown apart). Bar: 50 KiB gzip,
   which tests/browser/test_page_weight.py holds every page to with the same code
   (tests/browser/page_weight.py). The service is asked for gzip too: the "served" column
   is what it actually sent.
2. Lighthouse 12 (npm lighthouse@12.2.3, installed into --npm-prefix on first use) mobile
   scores on home, warning signs, report form and receipt, in en and es. Bar: 1.00 in
   each of performance, accessibility, best practices and SEO.

Lighthouse is not a test: its performance score depends on the machine. Needs
/usr/bin/chromium, node and npm.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from playwright.sync_api import Browser, sync_playwright  # noqa: E402

from tests.browser.page_weight import BAR_KIB, SERVICE_PAGES, Load, first_load  # noqa: E402
from tests.browser.support import CHROMIUM, LAUNCH_ARGS, SITE_PAGES  # noqa: E402
from tests.conftest import free_port  # noqa: E402

LIGHTHOUSE = "lighthouse@12.2.3"


@contextmanager
def outreach_serve(workdir: Path) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "OUTREACH_DATA_DIR": str(workdir / "var"),
        "OUTREACH_MIN_FILL_SECONDS": "0",
        "OUTREACH_LOG_LEVEL": "warning",
    }
    command = [
        str(Path(sys.executable).with_name("outreach")),
        "serve",
        "--port",
        str(port),
        "--out",
        str(workdir / "site"),
    ]
    log = (workdir / "serve.log").open("wb")
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"outreach serve did not start; see {workdir / 'serve.log'}")
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def kib(size: int) -> str:
    return f"{size / 1024:7.1f}"


def weights(browser: Browser, base: str) -> list[Load]:
    loads = [first_load(browser, base, path) for path in SITE_PAGES + SERVICE_PAGES]
    loads += [
        first_load(browser, base, path, submit=True) for path in SERVICE_PAGES if "report" in path
    ]
    return loads


def print_weights(loads: list[Load]) -> bool:
    encodings = set().union(*(load.encodings for load in loads))
    print("\nTransfer size of each page's first load (KiB; search index excluded)")
    print(
        f"{'page':22} {'files':>5} {'raw':>7} {'served':>7} {'gzip':>7}  bar {BAR_KIB:.0f}"
        f"  {'no search':>9}"
    )
    ok = True
    for load in loads:
        within = load.within_bar()
        ok &= within
        print(
            f"{load.page:22} {len(load.bodies):5d} {kib(load.raw())} {kib(load.as_served())}"
            f" {kib(load.gzipped())}  {'ok  ' if within else 'OVER'}"
            f"    {kib(load.gzipped_without_search())}"
        )
    index = max(load.index_gzip() for load in loads)
    if index:
        print(f"search index, loaded by the search script: {kib(index).strip()} KiB gzip (largest)")
    else:
        print("search index: not part of any first load (fetched when search is opened)")
    print(
        "'no search': without any search script either. The built site fetches the search"
        " engine, its lunr language files and the index when search is opened; a first load"
        " has only the kit's small search loader."
    )
    if encodings <= {"identity"}:
        print(
            "The service sent every response uncompressed (no Content-Encoding): 'served'"
            " is raw; 'gzip' is what gzip -6 would make of the same bytes."
        )
    else:
        print(f"Content-Encoding seen: {', '.join(sorted(encodings))}")
    return ok


def npm_lighthouse(prefix: Path) -> Path:
    entry = prefix / "node_modules" / "lighthouse" / "package.json"
    if not entry.is_file():
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "npm",
                "install",
                "--prefix",
                str(prefix),
                "-E",
                LIGHTHOUSE,
                "--no-audit",
                "--no-fund",
            ],
            check=True,
        )
    return prefix


def lighthouse(base: str, prefix: Path) -> list[dict[str, object]]:
    prefix = npm_lighthouse(prefix)
    script = prefix / "lighthouse_flow.mjs"
    shutil.copyfile(Path(__file__).with_name("lighthouse_flow.mjs"), script)
    out = prefix / "flow-result.json"
    env = {**os.environ, "CHROME_PATH": CHROMIUM}
    subprocess.run(["node", str(script), base, str(out), "en", "es"], env=env, check=True)
    rows: list[dict[str, object]] = json.loads(out.read_text())
    return rows


def print_lighthouse(rows: list[dict[str, object]]) -> bool:
    print("\nLighthouse 12 mobile (simulated slow 4G, 4x CPU slowdown)")
    print(f"{'page':26} {'perf':>5} {'a11y':>5} {'best':>5} {'seo':>5}")
    ok = True
    for row in rows:
        scores = row["scores"]
        assert isinstance(scores, dict)
        perf, a11y = scores["performance"], scores["accessibility"]
        best, seo = scores["best-practices"], scores["seo"]
        ok &= perf == a11y == best == seo == 1
        cells = " ".join(f"{s:5.2f}" if s is not None else "  n/a" for s in (perf, a11y, best, seo))
        print(f"{row['name']!s:26} {cells}")
    for row in rows:
        failed = row["failed"]
        assert isinstance(failed, list)
        for line in failed:
            print(f"  {row['name']}: {line}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-lighthouse", action="store_true")
    parser.add_argument(
        "--npm-prefix",
        type=Path,
        default=Path(tempfile.gettempdir()) / "outreach-lighthouse-12.2.3",
        help="Where lighthouse@12.2.3 is installed with npm (reused between runs).",
    )
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    with (
        tempfile.TemporaryDirectory(prefix="page-weight-") as tmp,
        outreach_serve(Path(tmp)) as base,
    ):
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            ok = print_weights(weights(browser, base))
            browser.close()
        if not args.no_lighthouse:
            ok &= print_lighthouse(lighthouse(base, args.npm_prefix))
    print("\nAll bars met." if ok else "\nSome bars are not met.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
