"""No address, user agent or other client identifier is stored or logged anywhere."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pyrage
import pytest

from form_service.settings import Settings
from outreach.loader import LoadedProfile
from tests.conftest import edit_yaml, email_delivery, free_port
from tests.form_service.delivery.servers import SMTPServer, make_ca

from .conftest import code_of, start_client, submit, token_of
from .samples import VALID_FORM

CANARY_IP = "203.0.113.77"
CANARY_FORWARDED = "198.51.100.123"
CANARY_AGENT = "CanaryBrowser/7.7 (zqxjk-canary)"
CANARIES = [CANARY_IP, CANARY_FORWARDED, CANARY_AGENT, "zqxjk"]


def files_under(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_canary_client_leaves_no_trace(
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    archive_identity: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings()
    headers = {
        "user-agent": CANARY_AGENT,
        "x-forwarded-for": CANARY_FORWARDED,
        "x-real-ip": CANARY_FORWARDED,
        "forwarded": f"for={CANARY_FORWARDED}",
    }
    with start_client(settings, client=(CANARY_IP, 51515), headers=headers) as client:
        receipt = submit(client, danger_now="yes", contact_name="", consent="")
        code = code_of(receipt.text)
        assert client.post("/status", data={"code": code}).status_code == 200
        assert client.post("/status", data={"code": "wrong"}).status_code == 404
        assert submit(client, description="").status_code == 422
        client.get("/healthz")
        client.get("/xx/report")
        pages = [receipt.text]

    logged = caplog.text + capsys.readouterr().err
    stored = files_under(settings.data_dir)
    assert stored, "the data dir should hold the database"
    assert any(p.name.startswith("reports.sqlite3") for p in stored)
    for canary in CANARIES:
        assert canary not in logged, canary
        for path, content in stored.items():
            assert canary.encode() not in content, (canary, path)
        assert all(canary not in page for page in pages)

    with closing(sqlite3.connect(settings.data_dir / "reports.sqlite3")) as conn:
        archived = [row[0] for row in conn.execute("SELECT content_age FROM reports")]
    for blob in archived:
        content = pyrage.decrypt(blob, [archive_identity]).decode()
        assert all(canary not in content for canary in CANARIES)


def test_log_lines_are_json_event_names_only(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with start_client(settings) as client:
        capsys.readouterr()
        submit(client, description="Words that must never reach a log")
        submit(client, description="")
        submit(client, description="More words that must never reach a log")
        client.post("/status", data={"code": "wrong"})
        client.post("/report", data={"description": "no token"})
        # No request gets a line of its own, which would time it to the second.
        assert capsys.readouterr().err == ""
    # Each event is counted by the minute, or when the service stops.
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    counts = {line["event"]: line for line in lines}
    assert counts["reports_stored"]["reports"] == 2
    assert counts["report_invalid"]["reports"] == 1
    assert counts["status_checked"]["not_found"] == 1
    assert counts["report_refused"]["token_missing"] == 1
    assert len(lines) == len(counts), "one line per event and minute"
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ", line["minute"]) for line in lines)
    for line in lines:
        assert all(isinstance(value, int) for key, value in line.items() if key not in NAMES)
        assert "words" not in json.dumps(line).lower()


NAMES = {"event", "level", "time", "minute"}


def test_failures_of_the_form_and_status_pages_are_counted_too(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from form_service.storage import StoreUnavailable

    def down(*args: object) -> Any:
        raise StoreUnavailable("database is down")

    with start_client(settings) as client:
        store = client.app_state["service"].store
        monkeypatch.setattr(store, "transaction", down)
        monkeypatch.setattr(store, "save_report", down)
        capsys.readouterr()
        assert client.post("/status", data={"code": "0000-0000"}).status_code == 503
        assert submit(client).status_code == 503
        assert capsys.readouterr().err == "", "a line each would time the visit"
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    counts = {line["event"]: line for line in lines}
    assert counts["database_unavailable"]["requests"] == 1
    assert counts["report_not_saved"]["reports"] == 1
    assert {counts[e]["level"] for e in ("database_unavailable", "report_not_saved")} == {"error"}


def test_report_times_are_kept_to_the_minute(client: Any, settings: Settings) -> None:
    from .conftest import rows

    submit(client)
    (created,) = rows(settings, "SELECT created_at FROM reports")[0]
    assert len(created) == len("2026-01-01T12:34Z") and created.endswith("Z")
    for (at,) in rows(settings, "SELECT at FROM audit_events"):
        assert len(at) == len("2026-01-01T12:34Z")


def test_a_held_copy_is_first_due_after_its_hold(
    make_settings: Callable[..., Settings],
    keyed_demo: LoadedProfile,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from .conftest import rows
    from .test_intake import _holding

    monkeypatch.setattr("form_service.intake.secrets.randbelow", lambda n: n - 1)
    settings = make_settings(profile=_holding(keyed_demo, "intake-team", 7))
    with start_client(settings) as client:
        submit(client)
        submit(client, danger_now="yes")
    due = rows(settings, "SELECT created_at, next_attempt_at FROM outbox WHERE is_intake = 1")
    ordinary, danger = sorted(due, key=lambda row: row[1], reverse=True)
    created = datetime.fromisoformat(ordinary[0])
    assert created.second == 0, "created in the report's minute"
    assert datetime.fromisoformat(ordinary[1]) - created == timedelta(minutes=7)
    assert danger[0] == danger[1], "danger now is due at once"


# A real run: the service under uvicorn, a client on a loopback address of its own.
LIVE_IP = "127.0.0.77"
LIVE_FORWARDED = "198.51.100.177"
LIVE_AGENT = "CanaryBrowser/9.9 (xqzv-live-canary; rv:9.9)"
LIVE_CANARIES = [LIVE_IP, LIVE_FORWARDED, LIVE_AGENT, "xqzv-live-canary"]
# Partners on SMTP; harbor-schools stays on Maildir, so both kinds of message are read.
SMTP_PARTNERS = ("intake-team", "sheriff-tau", "eastwood-schools", "bayside-college")


def encodings(text: str) -> set[bytes]:
    """*text* as it could appear in a file, a log or a message: plain, UTF-16, percent- and
    JSON-escaped, base64 at each alignment, and the hashes used to "anonymize" addresses."""
    raw = text.encode()
    forms = {raw, text.encode("utf-16-le"), quote(text).encode(), quote_plus(text).encode()}
    forms.add(json.dumps(text)[1:-1].replace("/", "\\/").encode())
    for start in range(3):  # the needle's whole 3-byte groups, wherever it starts
        chunk = raw[start : start + (len(raw) - start) // 3 * 3]
        forms |= {base64.b64encode(chunk), base64.urlsafe_b64encode(chunk)}
    for algorithm in ("md5", "sha1", "sha256"):
        digest = hashlib.new(algorithm, raw)
        forms |= {digest.hexdigest().encode(), digest.digest()}
    return forms


def address_encodings(address: str) -> set[bytes]:
    packed = socket.inet_aton(address)
    reverse = ".".join(reversed(address.split(".")))
    forms = encodings(address) | encodings(reverse)
    return forms | {packed, packed.hex().encode(), str(int.from_bytes(packed, "big")).encode()}


def live_needles() -> dict[bytes, str]:
    needles = {form: LIVE_IP for form in address_encodings(LIVE_IP)}
    needles |= {form: LIVE_FORWARDED for form in address_encodings(LIVE_FORWARDED)}
    for text in (LIVE_AGENT, "xqzv-live-canary"):
        needles |= {form: text for form in encodings(text)}
    return needles


def on_smtp(profile: Path, port: int, archive_key: str) -> None:
    def change(data: dict[str, Any]) -> None:
        for partner in data["partners"]:
            if partner["id"] in SMTP_PARTNERS:
                language = partner["delivery"].get("language")
                partner["delivery"] = email_delivery(partner["id"], port)
                if language:
                    partner["delivery"]["language"] = language
        data["archive"] = {"age_recipients": [archive_key]}

    edit_yaml(profile / "agency.yml", change)


def live_reports(client: httpx.Client) -> list[str]:
    """Everything a visitor can do: pages, reports (one with contact details), look-ups."""
    codes = []
    for prefix, changes in (
        ("", {}),
        ("/es", {"description": "Dijo que traería un arma a la escuela el viernes."}),
        ("", {"contact_name": "Ann Example", "contact_phone": "555-0199", "consent": "yes"}),
        ("", {"area": "east", "setting": "college", "concern": "self_harm"}),
        ("", {"danger_now": "yes"}),
        ("/es", {"area": "east", "setting": "school"}),
    ):
        token = token_of(client.get(f"{prefix}/report").text)
        answer = client.post(f"{prefix}/report", data={"token": token, **VALID_FORM, **changes})
        assert answer.status_code == 200, answer.text
        codes.append(code_of(answer.text))
    assert client.post("/status", data={"code": codes[0]}).status_code == 200
    assert client.post("/es/status", data={"code": "0000-0000-0000-0000-0000"}).status_code == 404
    token = token_of(client.get("/report").text)
    assert client.post("/report", data={"token": token, "description": ""}).status_code == 422
    for path in ("/", "/es/", "/no-such-page", "/healthz", "/xx/report"):
        client.get(path)
    return codes


def wait_until_delivered(database: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    sql = "SELECT count(*), sum(status = 'delivered') FROM outbox"
    while time.monotonic() < deadline:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
            total, delivered = conn.execute(sql).fetchone()
        if total and total == delivered:
            return
        time.sleep(0.2)
    raise AssertionError(f"{delivered} of {total} deliveries done after {timeout} s")


@pytest.mark.server
@pytest.mark.smtp
@pytest.mark.timeout(180)
def test_a_live_run_leaves_no_address_or_user_agent_anywhere(
    demo_site: Path, demo_copy: Path, tmp_path: Path
) -> None:
    """The issue's "done when": after the service has run, taken reports (some in a flood
    digest), delivered them by SMTP and to a Maildir, neither the client's address, nor the
    address it claims to forward for, nor its user agent is in the database, the data dir,
    the logs or any delivered message, in any common encoding."""
    ca = make_ca(tmp_path / "tls")
    smtp = SMTPServer(free_port(), starttls=ca.server_context()).start()
    archive = pyrage.x25519.Identity.generate()
    on_smtp(demo_copy, smtp.port, str(archive.to_public()))
    data, log, port = tmp_path / "data", tmp_path / "service.log", free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")},
        "OUTREACH_DATA_DIR": str(data),
        "OUTREACH_MIN_FILL_SECONDS": "0",
        "OUTREACH_LOG_LEVEL": "debug",  # the most the service ever logs
        # This one client's reports are flagged from its third within 10 s, so that flood
        # digests are searched too.
        "OUTREACH_REPORT_CLIENT_SURGE": "2",
        "OUTREACH_FLOOD_DIGEST_SECONDS": "1",
        "SSL_CERT_FILE": str(ca.ca_file),
    }
    command = [
        str(Path(sys.executable).with_name("outreach")),
        *("serve", "--no-build", "--out", str(demo_site), "--profile", str(demo_copy)),
        *("--port", str(port)),
    ]
    with log.open("wb") as out:
        service = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    headers = {
        "user-agent": LIVE_AGENT,
        "x-forwarded-for": LIVE_FORWARDED,
        "x-real-ip": LIVE_FORWARDED,
        "forwarded": f"for={LIVE_FORWARDED}",
    }
    transport = httpx.HTTPTransport(local_address=LIVE_IP)
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", transport=transport, headers=headers, timeout=30
        ) as client:
            deadline = time.monotonic() + 60
            while not _answers(client):
                assert service.poll() is None, log.read_text(errors="replace")
                assert time.monotonic() < deadline, "the service did not start"
                time.sleep(0.2)
            live_reports(client)
        wait_until_delivered(data / "reports.sqlite3")
    finally:
        service.send_signal(signal.SIGINT)
        try:
            service.wait(timeout=30)
        finally:
            smtp.stop()

    messages = smtp.messages
    assert len(messages) >= 6
    assert any("[possible flood]" in m.message["Subject"] for m in messages)
    files = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    assert any(p.name == "reports.sqlite3" for p in files)
    assert any("maildir" in p.parts for p in files)
    places: dict[str, bytes] = {str(p): content for p, content in files.items()}
    places["service log"] = log.read_bytes()
    assert b"reports_stored" in places["service log"]
    for n, message in enumerate(messages):
        envelope = f"{message.mail_from} {' '.join(message.rcpt_tos)}".encode()
        places[f"SMTP message {n}"] = envelope + b"\n" + message.data
    with closing(sqlite3.connect(data / "reports.sqlite3")) as conn:
        for n, (blob,) in enumerate(conn.execute("SELECT content_age FROM reports")):
            places[f"archived report {n}"] = pyrage.decrypt(blob, [archive])
    found = [
        f"{needle!r} ({what}) in {where}"
        for needle, what in live_needles().items()
        for where, content in places.items()
        if needle in content
    ]
    assert found == []
    assert b'"event": "messages_delivered"' in places["service log"]


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def test_the_live_scan_finds_a_canary_in_any_of_its_encodings() -> None:
    needles = live_needles()

    def found(blob: bytes) -> set[str]:
        return {what for needle, what in needles.items() if needle in blob}

    agent = LIVE_AGENT.encode()
    for prefix in (b"", b"a", b"ab"):  # each base64 alignment
        assert LIVE_AGENT in found(base64.b64encode(prefix + b"ua=" + agent + b";"))
    assert LIVE_AGENT in found(json.dumps({"ua": LIVE_AGENT}).replace("/", "\\/").encode())
    assert LIVE_IP in found(hashlib.sha256(LIVE_IP.encode()).hexdigest().encode())
    assert LIVE_IP in found(b"peer=" + socket.inet_aton(LIVE_IP))
    assert LIVE_FORWARDED in found(quote(f"for={LIVE_FORWARDED}").encode())
    assert found(b"127.0.0.1 CanaryBrowser/9.8") == set()
