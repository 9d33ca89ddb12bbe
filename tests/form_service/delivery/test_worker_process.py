"""The worker as real processes: `outreach worker` killed mid-batch, `outreach serve` end to end."""

from __future__ import annotations

import asyncio
import mailbox
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from form_service.report import ReporterContact
from outreach.loader import load_profile
from outreach.profile import Setting
from tests.conftest import edit_yaml, free_port
from tests.databases import Database
from tests.form_service.delivery.reports import open_store, rows, submit
from tests.form_service.delivery.servers import HTTPReceiver
from tests.form_service.samples import form_fields, report

pytestmark = pytest.mark.server
OUTREACH = str(Path(sys.executable).with_name("outreach"))


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "OUTREACH_DATA_DIR": str(data_dir),
        "OUTREACH_MIN_FILL_SECONDS": "0",
        "OUTREACH_LOG_LEVEL": "warning",
        **extra,
    }


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def worker_process() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([OUTREACH, *args], env=env, stderr=subprocess.PIPE)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(10)
        if process.stderr:
            process.stderr.close()


def test_worker_killed_mid_batch_delivers_every_row_after_restart(
    demo_copy: Path,
    data_dir: Path,
    database: Database,
    http_receiver: HTTPReceiver,
    worker_process: Any,
) -> None:
    def all_to_webhook(data: dict[str, Any]) -> None:
        for partner in data["partners"]:
            partner["delivery"] = {
                "channel": "webhook",
                "webhook": {"url": http_receiver.url, "secret_env": "HOOK_SECRET"},
            }

    edit_yaml(demo_copy / "agency.yml", all_to_webhook)
    profile = load_profile(demo_copy).profile

    async def file_reports() -> list[str]:
        store = await open_store(database)
        for _ in range(30):
            await submit(store, profile, report(setting=Setting.online, danger_now=False))
        await store.close()
        return [row[0] for row in rows(database, "SELECT id FROM outbox")]

    expected = set(asyncio.run(file_reports()))
    assert len(expected) >= 30
    http_receiver.delay = 0.1
    env = _env(data_dir, HOOK_SECRET="s3cret", **database.env())
    args = ("worker", "--profile", str(demo_copy), "--concurrency", "2", "--lease-seconds", "2")
    first = worker_process(*args, env=env)
    _wait(lambda: len(http_receiver.requests) >= 6, 30, "the first deliveries")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    sent_before = len(http_receiver.requests)
    assert sent_before < len(expected), "the worker finished before it could be killed"
    sending = rows(database, "SELECT count(*) FROM outbox WHERE status = 'sending'")[0][0]
    assert sending >= 1, "no row was in flight when the worker died"

    worker_process(*args, env=env)
    _wait(
        lambda: rows(database, "SELECT count(*) FROM outbox WHERE status != 'delivered'") == [(0,)],
        60,
        "every row to be delivered",
    )
    ids = Counter(request.headers["webhook-id"] for request in http_receiver.requests)
    assert set(ids) == expected
    # Only rows in flight at the kill may arrive twice, and then under the same webhook-id.
    assert sum(count - 1 for count in ids.values()) <= 2


@pytest.mark.parametrize("delivery", ["inside serve", "own process"])
def test_report_through_the_form_reaches_the_maildirs(
    data_dir: Path,
    database: Database,
    tmp_path: Path,
    worker_process: Any,
    delivery: str,
    demo_copy: Path,
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>site</h1>", encoding="utf-8")
    port = free_port()
    env = _env(data_dir, **database.env())
    # The demo with every rule delivering at once (demo_copy): no partner waits for review.
    profile = ("--profile", str(demo_copy))
    serve = ["serve", *profile, "--no-build", "--out", str(site), "--port", str(port)]
    if delivery == "own process":
        # Polling alone would find the report only after 30 s: the commit must wake it.
        worker_process("worker", *profile, "--poll-seconds", "30", env=env)
        serve.append("--no-worker")
    worker_process(*serve, env=env)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    _wait(up, 30, "the service to start")
    form = httpx.get(f"{base}/report").text
    token = re.search(r'name="token" value="([^"]+)"', form)
    assert token
    filed = report(
        description="CANARY-FORM-73 said he will hurt someone at school.",
        area="east",
        contact=ReporterContact(name="CANARY-NAME-41"),
    )
    fields = {"token": token.group(1), **form_fields(filed)}
    sent = time.monotonic()
    response = httpx.post(f"{base}/report", data=fields)
    assert response.status_code == 200, response.text
    maildir = data_dir / "maildir"
    partners = {"intake-team", "eastwood-schools", "sheriff-tau"}

    def arrived() -> bool:
        return all(
            (maildir / folder / "new").is_dir() and any((maildir / folder / "new").iterdir())
            for folder in partners
        )

    _wait(arrived, 10, "the messages")
    assert time.monotonic() - sent < 5
    assert {p.name for p in maildir.iterdir()} == partners
    texts = {
        folder: [m.as_string() for m in mailbox.Maildir(maildir / folder, create=False)]
        for folder in partners
    }
    assert all(len(messages) == 1 for messages in texts.values())
    (schools,) = texts["eastwood-schools"]
    assert "Alguien puede estar en peligro ahora" in schools  # its delivery language is es
    assert "CANARY-NAME-41" not in schools and "CANARY-NAME-41" not in texts["sheriff-tau"][0]
    assert "CANARY-NAME-41" in texts["intake-team"][0]
    # The tipster's status page says the intake team has it.
    code = re.search(r'id="receipt-code" class="code" value="([0-9A-Z-]+)"', response.text)
    assert code
    status = httpx.post(f"{base}/status", data={"code": code.group(1)})
    assert "Delivered to the team" in status.text
