"""The deployment guides' unit lines, backup commands and monitoring queries, run for real.

The guides show systemd units for `outreach serve` and `outreach worker`, a backup with
`sqlite3 … ".backup …"` and SQL to watch the outbox. These tests take those lines from the
guide pages, put a test folder in place of the deployment paths and a free port in place of
8000, run them, send a report through the form, and check it is delivered, backed up and
counted by the queries.
"""

from __future__ import annotations

import mailbox
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from form_service.settings import MIN_SECRET_CHARS
from tests.conftest import REPO, free_port, require_tool
from tests.databases import Database, only_postgres
from tests.form_service.samples import VALID_FORM

GUIDE_TEST_SECRET = "0123456789abcdef" * 4

pytestmark = [pytest.mark.server, pytest.mark.timeout(180)]

GUIDE = REPO / "guide"
OUTREACH = str(Path(sys.executable).with_name("outreach"))
_FENCE = re.compile(r"^```(\w*)\s*$")


def fenced(page: str, info: str) -> list[str]:
    """The text of every ```info block of a guide page."""
    found, body, current = [], [], None
    for line in (GUIDE / page).read_text(encoding="utf-8").splitlines():
        match = _FENCE.match(line)
        if current is None and match:
            current, body = match.group(1), []
        elif current is not None and line.startswith("```"):
            if current == info:
                found.append("\n".join(body))
            current = None
        elif current is not None:
            body.append(line)
    return found


def unit_lines(page: str, key: str) -> list[str]:
    return [
        line.split("=", 1)[1]
        for block in fenced(page, "ini")
        for line in block.splitlines()
        if line.startswith(f"{key}=")
    ]


def settings_lines(page: str) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for block in fenced(page, "ini")
        for line in block.splitlines()
        if line.startswith("OUTREACH_")
    )


class Paths:
    """The guide's deployment paths, each in a test folder."""

    def __init__(self, root: Path, profile: Path) -> None:
        self.port = free_port()
        self.data = root / "var-lib-outreach"
        self.backups = root / "var-backups-outreach"
        for folder in (self.data, self.backups, self.data / "site"):
            folder.mkdir(parents=True)
        (self.data / "site" / "index.html").write_text("<h1>site</h1>", encoding="utf-8")
        self.replace = {
            "/opt/outreach/.venv/bin/outreach": OUTREACH,
            "/opt/outreach/agencies/riverside": str(profile),
            "/var/lib/outreach": str(self.data),
            "/var/backups/outreach": str(self.backups),
            "/usr/bin/sqlite3": "sqlite3",
        }

    def __call__(self, text: str) -> str:
        for old, new in self.replace.items():
            text = text.replace(old, new)
        return text.replace("--port 8000", f"--port {self.port}")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def run_units(
    page: str, paths: Paths, env: dict[str, str], started: list[subprocess.Popen[bytes]]
) -> str:
    """Start every ExecStart= of the page that runs outreach; the service's URL."""
    lines = [line for line in unit_lines(page, "ExecStart") if "outreach serve" in line]
    lines += [line for line in unit_lines(page, "ExecStart") if "outreach worker" in line]
    assert any(" serve " in line for line in lines) and any(" worker " in line for line in lines)
    for line in lines:
        log = (paths.data / f"unit-{len(started)}.log").open("wb")
        started.append(
            subprocess.Popen(
                shlex.split(paths(line)), env=env, stdout=log, stderr=log, cwd=paths.data
            )
        )
        log.close()
    url = f"http://127.0.0.1:{paths.port}"

    def up() -> bool:
        assert all(p.poll() is None for p in started), (paths.data / "unit-0.log").read_text()
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 60, "the service of the guide's unit")
    return url


def send_reports(url: str, count: int) -> None:
    with httpx.Client(base_url=url, timeout=15) as client:
        for n in range(count):
            form = client.get("/report")
            token = re.search(r'name="token" value="([^"]+)"', form.text)
            assert token
            fields = {**VALID_FORM, "description": f"GUIDE-{n} saw a threat", "token": token[1]}
            answer = client.post("/report", data=fields)
            assert answer.status_code == 200 and 'id="receipt-code"' in answer.text


def delivered_messages(data: Path) -> int:
    root = data / "maildir"
    folders = [f for f in root.iterdir() if (f / "new").is_dir()] if root.exists() else []
    return sum(len(mailbox.Maildir(f, create=False)) for f in folders)


def all_delivered(database: Database, paths: Paths) -> bool:
    rows, delivered = database.rows(
        "SELECT count(*), sum(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END) FROM outbox"
    )[0]
    return bool(rows) and rows == delivered == delivered_messages(paths.data)


def service_env(page_settings: dict[str, str], paths: Paths, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    env.update({name: paths(value) for name, value in page_settings.items()})
    # The guide's placeholder is too short to start with, so it cannot be left in by mistake.
    assert len(env["OUTREACH_SECRET_KEY"]) < MIN_SECRET_CHARS
    env["OUTREACH_SECRET_KEY"] = GUIDE_TEST_SECRET
    env.update(OUTREACH_MIN_FILL_SECONDS="0", **extra)  # the test fills forms at once
    return env


def test_single_machine_units_and_backup(
    tmp_path: Path, demo_copy: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    require_tool("sqlite3", "the guide's SQLite backup (apt-get install sqlite3)")
    page = "deploy-single-machine.md"
    paths = Paths(tmp_path, demo_copy)
    settings = settings_lines(page)
    assert settings["OUTREACH_DATABASE_URL"].startswith("sqlite:////var/lib/outreach/")
    url = run_units(page, paths, service_env(settings, paths), started)
    # The unit runs in the data folder: the profile's path is shown whole, not as ../../opt/…
    started_line = (paths.data / "unit-0.log").read_text().splitlines()[0]
    assert started_line.startswith(f"Serving {demo_copy / 'agency.yml'} at "), started_line
    send_reports(url, 3)
    database = Database(
        "sqlite", settings["OUTREACH_DATABASE_URL"], path=paths.data / "reports.sqlite3"
    )
    wait_for(lambda: all_delivered(database, paths), 30, "delivery by the worker unit")

    backup_lines = unit_lines(page, "ExecStart") + unit_lines(page, "ExecStartPost")
    backup, check = (paths(line) for line in backup_lines if "sqlite3" in line)
    subprocess.run(shlex.split(backup), check=True, timeout=60)
    checked = subprocess.run(
        shlex.split(check), check=True, timeout=60, capture_output=True, text=True
    )
    assert checked.stdout.strip() == "ok"
    copy = paths.backups / "reports.sqlite3"
    counted = subprocess.run(
        ["sqlite3", str(copy), "SELECT count(*) FROM reports"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert counted.stdout.strip() == "3"

    (purge,) = (paths(line) for line in unit_lines(page, "ExecStart") if " purge " in line)
    purged = subprocess.run(
        shlex.split(purge), env=service_env(settings, paths), capture_output=True, text=True
    )
    assert purged.returncode == 0 and "Purged 0 report(s)" in purged.stdout, purged.stderr


@only_postgres
def test_postgresql_units_and_monitoring_queries(
    tmp_path: Path,
    demo_copy: Path,
    database: Database,
    started: list[subprocess.Popen[bytes]],
) -> None:
    page = "deploy-postgresql.md"
    paths = Paths(tmp_path, demo_copy)
    settings = {**settings_lines("deploy-single-machine.md"), **settings_lines(page)}
    assert settings["OUTREACH_DATABASE_URL"].startswith("postgresql://")
    settings["OUTREACH_DATABASE_URL"] = database.url  # the test's database, not the example
    env = service_env(settings, paths)
    serve = [line for line in unit_lines(page, "ExecStart") if " serve " in line]
    assert serve and "--workers 2" in serve[0] and "--no-worker" in serve[0]
    url = run_units(page, paths, env, started)
    send_reports(url, 4)
    wait_for(lambda: all_delivered(database, paths), 30, "delivery by the worker unit")
    rows = database.rows("SELECT count(*) FROM outbox")[0][0]

    backlog, dead, latency = fenced(page, "sql")
    with psycopg.connect(database.url, autocommit=True) as conn:
        waiting = conn.execute(backlog).fetchall()  # type: ignore[arg-type]
        assert waiting == [(0, 0)]
        assert conn.execute(dead).fetchall() == []  # type: ignore[arg-type]
        conn.execute(  # one dead row, as the worker leaves it after its last retry
            "UPDATE outbox SET status = 'dead', last_error = 'HTTP 500' WHERE id ="
            " (SELECT min(id) FROM outbox)"
        )
        assert [row[:2] for row in conn.execute(dead).fetchall()] == [  # type: ignore[arg-type]
            (conn.execute("SELECT partner_id FROM outbox WHERE status = 'dead'").fetchone()[0], 1)  # type: ignore[index]
        ]
        delivered, p50, p99 = conn.execute(latency).fetchone()  # type: ignore[arg-type, misc]
        assert delivered == rows - 1 and 0 <= p50 <= p99 < 30
