"""Files attached to a report: received as they stream, typed by content, cleaned of every
identifying tag, encrypted at rest, held under the form token, listed on the receipt."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyrage
import pytest
from PIL import Image
from starlette.testclient import TestClient

from form_service.settings import Settings
from form_service.storage import StoreUnavailable
from form_service.storage import attachments as stored_files
from form_service.storage.sqlite import SqliteStore
from tests.databases import Database, only_postgres

from .conftest import code_of, rows, start_client, token_of
from .sample_files import TAGS, gps_photo, screenshot
from .samples import VALID_FORM

FileSpec = tuple[str, bytes, str]


def send(
    client: TestClient,
    files: list[FileSpec],
    path: str = "/report",
    token: str | None = None,
    **fields: str,
) -> Any:
    """Send the valid sample report with *files* (name, bytes, claimed type) as the form
    does: multipart, the file field after the text."""
    token = token or token_of(client.get(path).text)
    data = {"token": token, **VALID_FORM, **fields}
    parts = [("files", spec) for spec in files]
    return client.post(path, data={k: v for k, v in data.items() if v}, files=parts)


def stored_bytes(settings: Settings) -> bytes:
    """Every byte the database holds (files, WAL and all)."""
    data = b""
    for path in sorted(settings.data_dir.rglob("*")):
        if path.is_file():
            data += path.read_bytes()
    return data


def archive_files(settings: Settings, identity: Any) -> list[tuple[str, bytes]]:
    """Each stored file's media type and its archive copy, opened with the archive key."""
    found = []
    for file_id, media in rows(
        settings, "SELECT id, media_type FROM attachments ORDER BY position"
    ):
        pieces = rows(
            settings,
            "SELECT data FROM attachment_pieces WHERE attachment_id = ? AND copy = 'archive'"
            " ORDER BY n",
            file_id,
        )
        found.append((media, pyrage.decrypt(b"".join(p for (p,) in pieces), [identity])))
    return found


def leaked(data: bytes) -> list[str]:
    return [name for name, value in TAGS.items() if value.encode() in data]


def test_a_photo_and_a_screenshot_are_kept_without_their_tags(
    client: TestClient, settings: Settings, archive_identity: Any
) -> None:
    photo, shot = gps_photo(), screenshot()
    assert set(leaked(photo + shot)) >= {"make", "model", "artist", "serial", "datum", "xmp"}
    receipt = send(client, [("IMG_0001.jpg", photo, "image/jpeg"), ("shot.png", shot, "image/png")])
    assert receipt.status_code == 200, receipt.text
    code_of(receipt.text)
    assert "Files received with your report: photo 1, photo 2." in receipt.text
    kept = archive_files(settings, archive_identity)
    assert [media for media, _ in kept] == ["image/jpeg", "image/png"]
    for _, data in kept:
        assert leaked(data) == []
        image = Image.open(io.BytesIO(data))
        assert not image.getexif() and "xmp" not in image.info and "comment" not in image.info
    # The orientation was applied: the blue half that was on the left is now on top.
    upright = Image.open(io.BytesIO(kept[0][1])).convert("RGB")
    assert upright.size == (80, 120)
    assert upright.getpixel((40, 10))[2] > 150 and upright.getpixel((40, 110))[0] > 150
    # Neither the database nor anything else in the data dir holds a tag or a file name.
    everything = stored_bytes(settings)
    assert leaked(everything) == [] and b"IMG_0001" not in everything
    assert list((settings.data_dir / "uploads").iterdir()) == []


# --- both stores -------------------------------------------------------------------------


@pytest.fixture
def db_client(
    database: Database, make_settings: Callable[..., Settings]
) -> Iterator[tuple[TestClient, Settings, Database]]:
    settings = make_settings(database_url=database.url)
    with start_client(settings) as client:
        yield client, settings, database


def test_files_are_held_under_the_form_token_through_a_validation_error(
    db_client: tuple[TestClient, Settings, Database], archive_identity: Any
) -> None:
    client, _, database = db_client
    token = token_of(client.get("/report").text)
    first = send(client, [("a.jpg", gps_photo(), "image/jpeg")], token=token, description="")
    assert first.status_code == 422
    assert "We kept the file you sent (photo 1): you do not need to choose it again." in first.text
    assert f'value="{token}"' in first.text  # the same form token, which holds the file
    assert 'name="people"' in first.text and VALID_FORM["people"] in first.text
    assert database.rows("SELECT count(*) FROM reports") == [(0,)]
    # Sent again with the text fixed and one more file: both go with the report.
    second = send(client, [("b.png", screenshot(), "image/png")], token=token)
    assert second.status_code == 200, second.text
    assert "Files received with your report: photo 1, photo 2." in second.text
    ref = database.rows("SELECT report_ref FROM reports")[0][0]
    payloads = [json.loads(p) for (p,) in database.rows("SELECT payload FROM outbox")]
    intake = next(p for p in payloads if p["partner_id"] == "intake-team")
    assert [(f["kind"], f["number"]) for f in intake["attachments"]] == [("image", 1), ("image", 2)]
    kept = database.rows(
        "SELECT count(*) FROM attachments a JOIN reports r ON r.token_id = a.token_id"
        " WHERE r.report_ref = ?",
        ref,
    )
    assert kept == [(2,)]
    assert leaked(database.raw()) == []


def test_a_report_is_stored_with_its_files_in_one_commit_and_a_resend_adds_none(
    db_client: tuple[TestClient, Settings, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A valid report's files go in the report's own commit, so its receipt waits for one
    commit, not two; the same form sent again shows the same receipt and stores no second
    copy of its files."""
    client, _, database = db_client
    store = client.app_state["service"].store
    calls: list[tuple[str, int]] = []
    write, save_report = store.write, store.save_report

    async def counted_write(steps: Any, size: int = 0) -> None:
        calls.append(("write", size))
        await write(steps, size)

    async def counted_save(report: Any, files: Any = (), size: int = 0) -> Any:
        calls.append(("save_report", size))
        return await save_report(report, files, size)

    monkeypatch.setattr(store, "write", counted_write)
    monkeypatch.setattr(store, "save_report", counted_save)
    token = token_of(client.get("/report").text)
    files = [("a.jpg", gps_photo(), "image/jpeg"), ("b.png", screenshot(), "image/png")]
    first = send(client, files, token=token)
    assert first.status_code == 200, first.text
    # Nothing was written before the report; what follows is the photos' cleaning.
    assert calls[0][0] == "save_report" and calls[0][1] > len(files[0][1])
    assert database.rows("SELECT count(*) FROM attachments") == [(2,)]
    calls.clear()
    again = send(client, files, token=token)
    assert again.status_code == 200, again.text
    assert code_of(again.text) == code_of(first.text)
    assert "Files received with your report: photo 1, photo 2." in again.text
    assert [name for name, _ in calls] == ["save_report"]
    assert database.rows("SELECT count(*) FROM attachments") == [(2,)]
    assert database.rows("SELECT count(*) FROM reports") == [(1,)]


def test_uploads_while_the_database_is_down_keep_the_text_and_leave_nothing(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = token_of(client.get("/report").text)

    @contextlib.asynccontextmanager
    async def unavailable() -> AsyncIterator[Any]:
        raise StoreUnavailable("the database is down (test)")
        yield  # an async generator, as a transaction is

    async def refused(self: SqliteStore, *args: Any) -> Any:
        raise StoreUnavailable("the database is down (test)")

    monkeypatch.setattr(SqliteStore, "transaction", lambda self: unavailable())
    for method in ("fetch", "write", "save_report"):
        monkeypatch.setattr(SqliteStore, method, refused)
    answer = send(client, [("a.jpg", gps_photo(), "image/jpeg")], token=token)
    assert answer.status_code == 503
    assert "could not be saved just now" in answer.text
    assert VALID_FORM["description"] in answer.text and f'value="{token}"' in answer.text
    assert list((settings.data_dir / "uploads").iterdir()) == []
    assert rows(settings, "SELECT count(*) FROM attachments") == [(0,)]


@only_postgres
def test_uploads_to_a_read_only_postgresql_get_503_and_leave_nothing(
    database: Database, make_settings: Callable[..., Settings]
) -> None:
    own = database.own_database()
    assert own.server is not None and own.name is not None
    settings = make_settings(database_url=own.url)
    with start_client(settings) as client:
        token = token_of(client.get("/report").text)
        own.server.admin(f"ALTER DATABASE {own.name} SET default_transaction_read_only = on")
        own.server.admin(  # sessions take the setting when they start
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{own.name}' AND pid <> pg_backend_pid()"
        )
        answer = send(client, [("a.jpg", gps_photo(), "image/jpeg")], token=token)
    assert answer.status_code == 503
    assert VALID_FORM["description"] in answer.text
    assert list((settings.data_dir / "uploads").iterdir()) == []


def _thread_token(page: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', page)
    assert match, "the page has no conversation token"
    return match.group(1)


def test_the_tipster_adds_files_in_the_conversation(
    client: TestClient, settings: Settings, archive_identity: Any
) -> None:
    receipt = send(client, [("a.jpg", gps_photo(), "image/jpeg")])
    code = code_of(receipt.text)
    page = client.post("/status", data={"code": code}).text
    assert "Files the team has from you: photo 1." in page
    assert 'enctype="multipart/form-data"' in page and 'name="files"' in page
    added = client.post(
        "/status",
        data={"token": _thread_token(page), "action": "send", "message": ""},
        files=[("files", ("IMG_9.png", screenshot(), "image/png"))],
    )
    assert added.status_code == 200, added.text
    assert "Files the team has from you: photo 1, photo 2." in added.text
    kept = archive_files(settings, archive_identity)
    assert [media for media, _ in kept] == ["image/jpeg", "image/png"]
    assert leaked(stored_bytes(settings)) == [] and b"IMG_9" not in stored_bytes(settings)
    # A bad file is refused with the message kept.
    refused = client.post(
        "/status",
        data={"token": _thread_token(added.text), "action": "send", "message": "one more thing"},
        files=[("files", ("x.jpg", b"MZ\x90\x00 not an image", "image/jpeg"))],
    )
    assert refused.status_code == 422
    assert "File 1 is not a photo or video we can take." in refused.text
    assert "one more thing" in refused.text
    assert rows(settings, "SELECT count(*) FROM attachments") == [(2,)]
    assert rows(settings, "SELECT count(*) FROM tipster_messages") == [(0,)]


def test_unsent_files_go_when_their_form_expires_and_a_report_takes_its_files_along(
    db_client: tuple[TestClient, Settings, Database],
) -> None:
    client, settings, database = db_client
    # Held for a form never sent again; and sent with a report.
    token = token_of(client.get("/report").text)
    held = send(client, [("a.jpg", gps_photo(), "image/jpeg")], token=token, description="")
    assert held.status_code == 422
    assert send(client, [("b.png", screenshot(), "image/png")]).status_code == 200
    assert database.rows("SELECT count(*) FROM attachments") == [(2,)]

    async def chores(now: datetime) -> tuple[int, list[str]]:
        store = await database.open_store()
        try:
            async with store.transaction() as tx:
                dropped = await stored_files.drop_unclaimed(tx, now)
            return dropped, await store.purge(now, settings.profile.profile.retention.days)
        finally:
            await store.close()

    # Not yet expired: nothing goes.
    assert asyncio.run(chores(datetime.now(UTC) - timedelta(hours=1))) == (0, [])
    # The form expired: its file goes; the report's stays.
    dropped, purged = asyncio.run(chores(datetime.now(UTC) + timedelta(minutes=2)))
    assert (dropped, purged) == (1, [])
    assert database.rows("SELECT media_type FROM attachments") == [("image/png",)]
    # The report is purged at the end of its retention: its files go with it.
    later = datetime.now(UTC) + timedelta(days=settings.profile.profile.retention.days + 1)
    dropped, purged = asyncio.run(chores(later))
    assert len(purged) == 1
    assert database.rows("SELECT count(*) FROM attachments") == [(0,)]
    assert database.rows("SELECT count(*) FROM attachment_pieces") == [(0,)]


def test_what_a_crash_left_in_the_upload_folder_goes_at_start(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    uploads = settings.data_dir / "uploads"
    uploads.mkdir(parents=True)
    old, recent = uploads / "upload-crashed", uploads / "upload-another-process"
    old.write_bytes(gps_photo())
    recent.write_bytes(gps_photo())
    long_ago = time.time() - 3 * 3600
    os.utime(old, (long_ago, long_ago))
    with start_client(settings):
        pass
    assert not old.exists() and recent.exists()
