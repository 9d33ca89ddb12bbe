"""The real thing: `outreach serve` under uvicorn, reports in en and es over HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.private_files import loose_modes, umask

from .samples import VALID_FORM

pytestmark = pytest.mark.server

CANARY_IP = "127.83.71.29"  # a loopback address of its own: the client's "IP" in this test
CANARY_AGENT = "CanaryBrowser/8.8 (qvzx-server-canary)"
CANARY_FORWARDED = "198.51.100.231"


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    data_dir: Path
    workdir: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {
        **os.environ,
        "OUTREACH_DATA_DIR": str(workdir / "data"),
        # Only here: the test fills the form faster than a person could.
        "OUTREACH_MIN_FILL_SECONDS": "0",
    }
    env.pop("OUTREACH_SECRET_KEY", None)
    log = workdir / "server.log"
    outreach = Path(sys.executable).parent / "outreach"
    # A umask that leaves files readable by everyone: the service must not rely on it.
    with log.open("wb") as out, umask(0o022):
        process = subprocess.Popen(
            [str(outreach), "serve", "--port", str(port), "--out", str(workdir / "site")],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"outreach serve exited:\n{log.read_text()}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"outreach serve did not answer:\n{log.read_text()}")
    yield Server(url, process, log, workdir / "data", workdir)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def canary_client(server: Server) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=CANARY_IP)
    headers = {"user-agent": CANARY_AGENT, "x-forwarded-for": CANARY_FORWARDED}
    return httpx.Client(base_url=server.url, transport=transport, headers=headers, timeout=30)


def send_report(client: httpx.Client, lang_prefix: str) -> str:
    form = client.get(f"{lang_prefix}/report")
    assert form.status_code == 200
    token = re.search(r'name="token" value="([^"]+)"', form.text)
    assert token
    receipt = client.post(f"{lang_prefix}/report", data={"token": token.group(1), **VALID_FORM})
    assert receipt.status_code == 200, receipt.text
    code = re.search(r'id="receipt-code" class="code" value="([0-9A-Z-]+)"', receipt.text)
    assert code
    return code.group(1)


def test_site_and_form_are_served_together(server: Server) -> None:
    home = httpx.get(server.url + "/")
    assert home.status_code == 200 and "<html" in home.text and 'name="token"' not in home.text
    assert httpx.get(server.url + "/es/").status_code == 200
    form = httpx.get(server.url + "/report")
    assert form.status_code == 200 and 'name="token"' in form.text
    assert httpx.get(server.url + "/assets-form/form.css").status_code == 200
    assert "server" not in form.headers
    assert httpx.get(server.url + "/xx/report").status_code == 404


@pytest.mark.parametrize(
    ("prefix", "received"),
    [("", "Received|Delivered to the team"), ("/es", "Recibido|Entregado al equipo")],
)
def test_report_and_status_over_http(server: Server, prefix: str, received: str) -> None:
    with canary_client(server) as client:
        code = send_report(client, prefix)
        status = client.post(f"{prefix}/status", data={"code": code})
        assert status.status_code == 200
        assert re.search(f"<h2>({received})</h2>", status.text)
        wrong = client.post(f"{prefix}/status", data={"code": "0000-0000-0000-0000-0000"})
        assert wrong.status_code == 404


def test_the_data_dir_is_private_while_serving(server: Server) -> None:
    with canary_client(server) as client:
        send_report(client, "")
    intake = server.data_dir / "maildir" / "intake-team" / "new"
    deadline = time.monotonic() + 30
    while not (intake.is_dir() and any(intake.iterdir())):
        assert time.monotonic() < deadline, "no message was delivered"
        time.sleep(0.1)
    assert (server.data_dir / "reports.sqlite3-wal").exists()
    assert loose_modes(server.data_dir) == []


def test_a_streamed_10_mb_body_is_refused(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(160):
            yield b"a" * 65536

    headers = {"content-type": "application/x-www-form-urlencoded"}
    try:
        answer = httpx.post(server.url + "/report", content=chunks(), headers=headers, timeout=30)
        assert answer.status_code == 413
    except httpx.TransportError:
        pass  # the server may close the connection once it has answered 413
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_no_canary_in_logs_or_data(server: Server) -> None:
    """Runs last: it stops the server to read everything it wrote."""
    with canary_client(server) as client:
        send_report(client, "")
        client.post("/status", data={"code": "nope"})
    time.sleep(1)  # let the worker deliver into the maildir
    server.process.send_signal(signal.SIGINT)
    server.process.wait(timeout=20)
    log = server.log.read_text(encoding="utf-8", errors="replace")
    assert "reports_stored" in log
    files = [p for p in server.data_dir.rglob("*") if p.is_file()]
    assert any(p.name == "reports.sqlite3" for p in files)
    for canary in (CANARY_IP, CANARY_AGENT, CANARY_FORWARDED, "qvzx"):
        assert canary not in log, canary
        for path in files:
            assert canary.encode() not in path.read_bytes(), (canary, path)
