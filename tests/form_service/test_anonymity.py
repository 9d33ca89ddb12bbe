"""No address, user agent or other client identifier is stored or logged anywhere."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pyrage
import pytest

from form_service.settings import Settings

from .conftest import code_of, start_client, submit

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
    client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    submit(client, description="Words that must never reach a log")
    submit(client, description="")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    assert [line["event"] for line in lines] == ["report_stored", "report_invalid"]
    for line in lines:
        assert set(line) <= {"event", "level", "time", "partners", "status", "fields", "token"}
        assert "Words" not in json.dumps(line)


def test_report_times_are_kept_to_the_minute(client: Any, settings: Settings) -> None:
    from .conftest import rows

    submit(client)
    (created,) = rows(settings, "SELECT created_at FROM reports")[0]
    assert len(created) == len("2026-01-01T12:34Z") and created.endswith("Z")
    for (at,) in rows(settings, "SELECT at FROM audit_events"):
        assert len(at) == len("2026-01-01T12:34Z")
