"""Photos are cleaned after the receipt: the receipt never waits for a photo's decoding, the
photo is never in plaintext meanwhile, deliveries wait for it, a stopped process's photos
are cleaned by the worker's sweep, and a photo that fails to decode after all is left out."""

from __future__ import annotations

import asyncio
import io
import mailbox
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from PIL import Image
from starlette.testclient import TestClient

from form_service import attachment_intake, waiting_files
from form_service.app import create_app
from form_service.attachment_intake import clean_after as real_clean_after
from form_service.delivery.channel import DeliverySettings
from form_service.delivery.worker import DeliveryWorker, start_worker
from form_service.file_sealing import CopyUnreadable, open_delivery
from form_service.service import _LULL_LOOK_SECONDS, LULL_QUIET_SECONDS, Service
from form_service.settings import Settings
from form_service.storage import attachments as stored_files
from form_service.storage import open_store
from tests.databases import Database

from .conftest import code_of, rows, start_client, token_of
from .delivery.reports import FAST
from .sample_files import broken_png, gps_photo
from .samples import VALID_FORM
from .test_attachment_bad_input import serving
from .test_attachments import archive_files, leaked, send, stored_bytes


def states(settings: Settings) -> list[str]:
    return [state for (state,) in rows(settings, "SELECT state FROM attachments ORDER BY position")]


def copies(settings: Settings) -> set[str]:
    return {copy for (copy,) in rows(settings, "SELECT DISTINCT copy FROM attachment_pieces")}


def test_the_receipt_does_not_wait_for_the_photo_to_be_cleaned(
    settings: Settings, archive_identity: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a real uvicorn: the cleaning is held until the receipt has arrived, so a
    receipt that waited for it would never come."""
    receipt_seen = threading.Event()
    real = waiting_files._clean_and_seal

    def after_the_receipt(*args: Any) -> Any:
        assert receipt_seen.wait(60), "the receipt did not come before the cleaning"
        return real(*args)

    monkeypatch.setattr(waiting_files, "_clean_and_seal", after_the_receipt)
    with serving(settings) as (host, port), httpx.Client(base_url=f"http://{host}:{port}") as http:
        token = token_of(http.get("/report").text)
        files = [("files", ("IMG_0001.jpg", gps_photo(), "image/jpeg"))]
        answer = http.post("/report", data={"token": token, **VALID_FORM}, files=files, timeout=60)
        assert answer.status_code == 200 and code_of(answer.text)
        assert "photo 1" in answer.text
        # Received and stored, not cleaned yet: sealed as sent, with no archive copy, and
        # the upload's plaintext file already gone.
        assert states(settings) == ["waiting"] and copies(settings) == {"delivery"}
        assert list((settings.data_dir / "uploads").iterdir()) == []
        assert leaked(stored_bytes(settings)) == []
        receipt_seen.set()
        deadline = time.monotonic() + 60
        while states(settings) != ["ready"]:
            assert time.monotonic() < deadline, "the photo was never cleaned"
            time.sleep(0.05)
    assert copies(settings) == {"archive", "delivery"}
    ((media, data),) = archive_files(settings, archive_identity)
    assert media == "image/jpeg" and leaked(data) == []
    Image.open(io.BytesIO(data)).load()
    assert list((settings.data_dir / "uploads").iterdir()) == []


def test_a_photo_as_sent_opens_with_no_delivery_key(settings: Settings, left_waiting: None) -> None:
    """The copy of a photo not yet cleaned is sealed under a key of its own: code that
    opens delivery copies fails on it instead of sending the tags along."""
    with start_client(settings) as client:
        assert send(client, [("a.jpg", gps_photo(), "image/jpeg")]).status_code == 200
    ((file_id,),) = rows(settings, "SELECT id FROM attachments")
    pieces = [p for (p,) in rows(settings, "SELECT data FROM attachment_pieces ORDER BY n")]
    with pytest.raises(CopyUnreadable):
        open_delivery(file_id, pieces, settings.secret_keys)


def _delivery_settings(settings: Settings) -> DeliverySettings:
    return DeliverySettings(
        profile=settings.profile.profile,
        data_dir=settings.data_dir,
        timeout=10,
        secret_keys=settings.secret_keys,
    )


def _maildir_files(settings: Settings, folder: str) -> list[list[str]]:
    """For each message in a partner's Maildir folder, its attachments' names."""
    box = mailbox.Maildir(settings.data_dir / "maildir" / folder, create=False)
    return [
        sorted(part.get_filename() for part in message.walk() if part.get_filename())
        for message in box
    ]


def test_deliveries_wait_for_a_photo_and_the_sweep_cleans_what_a_stopped_process_left(
    database: Database,
    make_settings: Callable[..., Settings],
    archive_identity: Any,
    left_waiting: None,
) -> None:
    settings = make_settings(database_url=database.url)
    with start_client(settings) as client:
        files = [("a.jpg", gps_photo(), "image/jpeg"), ("b.png", broken_png(), "image/png")]
        assert send(client, files).status_code == 200
    assert [s for (s,) in database.rows("SELECT state FROM attachments ORDER BY position")] == [
        "waiting",
        "waiting",
    ]
    delivery = _delivery_settings(settings)

    async def drain() -> None:
        store = await database.open_store()
        try:
            await DeliveryWorker(store, delivery, options=FAST).drain()
        finally:
            await store.close()

    asyncio.run(drain())
    # The intake team's delivery carries the files: it waits, and no attempt is counted.
    waiting = database.rows(
        "SELECT attempts FROM outbox WHERE status = 'pending' AND partner_id = 'intake-team'"
    )
    assert waiting == [(0,)]
    assert not (settings.data_dir / "maildir" / "intake-team").exists()

    async def sweep() -> int:
        store = await database.open_store()
        try:
            return await waiting_files.clean_all_waiting(
                store, delivery.profile, settings.secret_keys, settings.data_dir
            )
        finally:
            await store.close()

    assert asyncio.run(sweep()) == 2
    assert [s for (s,) in database.rows("SELECT state FROM attachments ORDER BY position")] == [
        "ready",
        "unreadable",
    ]
    # The broken file's bytes went with it; the photo's archive copy has no tag.
    assert database.rows(
        "SELECT count(*) FROM attachment_pieces p JOIN attachments a ON a.id = p.attachment_id"
        " WHERE a.state = 'unreadable'"
    ) == [(0,)]
    asyncio.run(drain())
    assert database.rows("SELECT status FROM outbox WHERE status != 'delivered'") == []
    # Delivered with the photo only, cleaned; the file that could not be opened left out.
    assert _maildir_files(settings, "intake-team") == [["photo-1.jpg"]]
    box = mailbox.Maildir(settings.data_dir / "maildir" / "intake-team", create=False)
    (message,) = list(box)
    (photo,) = [p.get_payload(decode=True) for p in message.walk() if p.get_filename()]
    assert leaked(photo) == []
    Image.open(io.BytesIO(photo)).load()


def test_a_claim_holds_a_photo_until_it_is_stale(
    database: Database, make_settings: Callable[..., Settings], left_waiting: None
) -> None:
    settings = make_settings(database_url=database.url)
    with start_client(settings) as client:
        assert send(client, [("a.jpg", gps_photo(), "image/jpeg")]).status_code == 200
    ((file_id,),) = database.rows("SELECT id FROM attachments")
    now = datetime.now(UTC)

    async def run() -> tuple[bool, int, int]:
        store = await database.open_store()
        profile = settings.profile.profile
        try:
            async with store.transaction() as tx:
                claimed = await stored_files.claim(tx, file_id, now)
            # Another process, a minute later: the claim is live, so it leaves the photo.
            soon = await waiting_files.clean_all_waiting(
                store, profile, settings.secret_keys, settings.data_dir,
                lambda: now + timedelta(minutes=1),
            )  # fmt: skip
            # Past CLAIM_MINUTES the claimer is taken for stopped, and the photo cleaned.
            late = now + timedelta(minutes=stored_files.CLAIM_MINUTES + 1)
            later = await waiting_files.clean_all_waiting(
                store, profile, settings.secret_keys, settings.data_dir, lambda: late
            )
            return claimed, soon, later
        finally:
            await store.close()

    assert asyncio.run(run()) == (True, 0, 1)
    assert database.rows("SELECT state, claimed_at FROM attachments") == [("ready", None)]


def test_the_worker_sweeps_on_its_own(settings: Settings, left_waiting: None) -> None:
    """The worker inside the service finds a photo left waiting without being asked."""
    with start_client(settings) as client:
        assert send(client, [("a.jpg", gps_photo(), "image/jpeg")]).status_code == 200
    assert states(settings) == ["waiting"]
    app = create_app(settings, background=(start_worker,))
    with TestClient(app, base_url="http://localhost"):  # the worker sweeps as it starts
        deadline = time.monotonic() + 60
        while states(settings) != ["ready"]:
            assert time.monotonic() < deadline, "the worker's sweep never cleaned the photo"
            time.sleep(0.05)


def test_the_waiting_copy_is_gone_once_cleaned(settings: Settings, archive_identity: Any) -> None:
    with start_client(settings) as client:
        assert send(client, [("a.jpg", gps_photo(), "image/jpeg")]).status_code == 200
    # Through TestClient the response's background task has run: cleaned, and the
    # delivery copy is the cleaned file's (it opens with the delivery key, tag-free).
    assert states(settings) == ["ready"]
    ((file_id,),) = rows(settings, "SELECT id FROM attachments")
    pieces = [
        p
        for (p,) in rows(
            settings,
            "SELECT data FROM attachment_pieces WHERE copy = 'delivery' ORDER BY n",
        )
    ]
    data = open_delivery(file_id, pieces, settings.secret_keys)
    assert leaked(data) == [] and data.startswith(b"\xff\xd8\xff")
    ((_, archived),) = archive_files(settings, archive_identity)
    assert archived == data


def test_the_tipster_is_told_of_a_file_that_could_not_be_opened(
    client: TestClient, settings: Settings
) -> None:
    """A file that passed every check before the receipt but failed to decode after it:
    the status page says so, and that it can be sent again, in the tipster's language."""
    files = [("a.jpg", gps_photo(), "image/jpeg"), ("b.png", broken_png(), "image/png")]
    receipt = send(client, files)
    assert receipt.status_code == 200 and "photo 1, photo 2" in receipt.text
    assert states(settings) == ["ready", "unreadable"]
    code = code_of(receipt.text)
    page = client.post("/status", data={"code": code}).text
    assert "Files the team has from you: photo 1." in page
    assert "We could not open photo 2: the file may be damaged or only partly sent." in page
    spanish = client.post("/es/status", data={"code": code}).text
    assert "foto 2" in spanish and "We could not open" not in spanish


def test_cleaning_waits_while_files_arrive_and_no_longer(
    settings: Settings, left_waiting: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A photo's cleaning gives way to a tipster's files arriving (Service.lull), and goes
    ahead as soon as none are, not after LULL_SECONDS."""
    with start_client(settings) as client:
        assert send(client, [("a.jpg", gps_photo(), "image/jpeg")]).status_code == 200
    assert states(settings) == ["waiting"]
    ((file_id,),) = rows(settings, "SELECT id FROM attachments")
    monkeypatch.setattr(attachment_intake, "LULL_SECONDS", 3600.0)

    async def main() -> tuple[list[float], bool, bool, list[tuple[Any, ...]], bool]:
        service = Service.build(settings, open_store(settings))
        await service.store.open()
        lulls: list[float] = []
        in_lull, lull_over = asyncio.Event(), asyncio.Event()
        real_lull = service.lull

        async def lull(at_most: float) -> None:
            lulls.append(at_most)
            in_lull.set()
            await real_lull(at_most)
            lull_over.set()

        monkeypatch.setattr(service, "lull", lull)
        try:
            with service.receiving_files():  # a tipster's files arriving
                # The function itself: left_waiting stubs attachment_intake.clean_after.
                task = asyncio.create_task(real_clean_after(service, [file_id]))
                await asyncio.wait_for(in_lull.wait(), 30)
                for _ in range(10):  # several of the lull's looks at the count
                    await asyncio.sleep(_LULL_LOOK_SECONDS)
                held = task.done(), lull_over.is_set()
                # Not even claimed meanwhile.
                during = rows(settings, "SELECT state, claimed_at FROM attachments")
            await asyncio.wait_for(task, 30)
            return lulls, *held, during, service.wakeup.is_set()
        finally:
            await service.store.close()

    lulls, done, lull_over, during, woken = asyncio.run(main())
    assert (done, lull_over) == (False, False)
    assert during == [("waiting", None)]
    # Once before the photo is claimed, once before its cleaned copies are written.
    assert lulls == [3600.0, 3600.0] and woken
    assert states(settings) == ["ready"]
    assert copies(settings) == {"archive", "delivery"}


def test_a_lull_is_now_when_no_files_arrive_and_at_most_its_time_otherwise(
    settings: Settings,
) -> None:
    async def main() -> tuple[int, float, int, int, float]:
        service = Service.build(settings, open_store(settings))  # not opened: no need
        await asyncio.wait_for(service.lull(3600), 30)  # nothing in flight: at once
        with service.receiving_files():
            during = service.files_in_flight
            start = time.monotonic()
            await asyncio.wait_for(service.lull(0.2), 30)  # still in flight: gives up
            waited = time.monotonic() - start
            after = service.files_in_flight
        ended = time.monotonic()
        await asyncio.wait_for(service.lull(3600), 30)  # quiet for a while first
        quiet = time.monotonic() - ended
        return during, waited, after, service.files_in_flight, quiet

    during, waited, after, finally_, quiet = asyncio.run(main())
    assert (during, after, finally_) == (1, 1, 0)
    assert waited >= 0.2
    assert quiet >= LULL_QUIET_SECONDS
