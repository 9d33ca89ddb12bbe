"""The browser suite's fixtures: the real `outreach serve` and one system Chromium per session."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from outreach.scaffold import scaffold_agency
from tests.browser.support import CHROMIUM, LAUNCH_ARGS
from tests.conftest import edit_yaml, fill_placeholders, free_port, require_tool

OUTREACH = Path(sys.executable).with_name("outreach")
# Building the site is part of `outreach serve`; a slow CI machine gets time for it.
START_TIMEOUT = 180.0
LIGHT_BRAND = "#ffc20e"


# Runs the command in its place (exec), asking Linux to stop it when pytest dies: a killed
# test run (a CI time-out) then leaves no server behind.
_DIE_WITH_PYTEST = [
    sys.executable,
    "-c",
    "import ctypes, os, signal, sys; "
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM); "  # PR_SET_PDEATHSIG
    "os.execv(sys.argv[1], sys.argv[1:])",
]


@dataclass(frozen=True)
class Server:
    base_url: str
    site_dir: Path
    log: Path
    data_dir: Path
    """The service's OUTREACH_DATA_DIR: its database, for the `outreach staff` command."""

    def url(self, path: str) -> str:
        return self.base_url + path


def _wait_until_ready(process: subprocess.Popen[bytes], server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"outreach serve exited with {process.returncode}:\n"
                + server.log.read_text(errors="replace")
            )
        try:
            with urllib.request.urlopen(server.url("/healthz"), timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"outreach serve did not answer in {START_TIMEOUT:.0f} s")


@pytest.fixture(scope="session")
def chromium() -> str:
    return require_tool(CHROMIUM, "the browser suite (Debian package chromium)")


def _serve(workdir: Path, profile: Path | None = None) -> Iterator[Server]:
    """`outreach serve` on a free loopback port: builds the site, then serves it."""
    port = free_port()
    site = workdir / "site"
    log = workdir / "serve.log"
    data_dir = workdir / "var"
    env = {
        **os.environ,
        "OUTREACH_DATA_DIR": str(data_dir),
        # The tests fill the form faster than a person; every other limit stays as shipped.
        "OUTREACH_MIN_FILL_SECONDS": "0",
        "OUTREACH_LOG_LEVEL": "warning",
    }
    command = [*_DIE_WITH_PYTEST, str(OUTREACH), "serve", "--port", str(port), "--out", str(site)]
    if profile is not None:
        command += ["--profile", str(profile)]
    server = Server(f"http://127.0.0.1:{port}", site, log, data_dir)
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_ready(process, server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def served(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo agency's site and report service, as `outreach serve` runs them."""
    yield from _serve(tmp_path_factory.mktemp("served"))


@pytest.fixture(scope="session")
def rtl_served(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A new agency whose second language, Arabic, is written right to left, and whose
    brand colour is a light yellow that white text would not read on."""
    workdir = tmp_path_factory.mktemp("rtl")
    folder = scaffold_agency(workdir, "rtl-fixture")
    fill_placeholders(folder)

    def change(data: dict[str, Any]) -> None:
        data["languages"] = ["en", "ar"]
        data["agency"]["primary_color"] = LIGHT_BRAND

    edit_yaml(folder / "agency.yml", change)
    yield from _serve(workdir, folder)


# Package scope: Playwright's sync API keeps an event loop running in this thread until
# it stops, and the suites after this one call asyncio.run.
@pytest.fixture(scope="package")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="package")
def desktop(browser: Browser) -> Iterator[BrowserContext]:
    """A shared context for tests that only read pages (no state between them matters)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


@pytest.fixture
def page(desktop: BrowserContext) -> Iterator[Page]:
    tab = desktop.new_page()
    yield tab
    tab.close()


@pytest.fixture(scope="package")
def scratch(browser: Browser) -> Iterator[Page]:
    """A blank page for computations on screenshots."""
    context = browser.new_context()
    tab = context.new_page()
    yield tab
    context.close()
