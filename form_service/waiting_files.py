"""Photos cleaned after the receipt, not before it.

Decoding a phone photo costs some 60 ms of a core however it is done (JPEG's entropy
decoding alone is most of it); ten tipsters sending photos at the same moment would each
wait for the others' before seeing their receipt. So a photo is checked before the receipt
(form_service/file_cleaning.py ``inspect_image``: its type, header, size and that the file
is whole), stored as sent but sealed under a key of the service's own
(form_service/file_sealing.py ``seal_as_sent``: never in plaintext), and cleaned here:

- right after the answer has gone to the tipster, by the request that took the photo (a
  background task of its response), one photo at a time per process so the cleaning never
  takes both cores from the tipsters still sending, and each once no tipster's files have
  been arriving for a second (Service.lull; or after LULL_SECONDS): a burst of tipsters
  sending photos gets its receipts first;
- by the delivery worker, for any photo a stopped process left waiting (its claim, to the
  minute, runs out after a few minutes).

Until a photo is cleaned, no delivery that carries it is sent (form_service/delivery/files.py
waits for it) and the team's inbox says it is being prepared. A photo that fails to decode
after all is marked unreadable: its bytes go, and deliveries leave it out.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path

import anyio
from anyio import CapacityLimiter

from form_service.file_cleaning import Refused, clean_image
from form_service.file_sealing import (
    CopyUnreadable,
    SealedCopies,
    archive_pieces,
    delivery_pieces,
    open_as_sent,
    seal,
)
from form_service.logs import log_event
from form_service.private_files import private_folder
from form_service.storage import Step, Store
from form_service.storage import attachments as stored_files
from form_service.storage import staff as staff_records
from form_service.times import stamp
from form_service.uploads import UPLOAD_FOLDER
from outreach.profile import Profile

# One photo at a time per process: the tipsters' requests keep the other core.
_CLEANING = CapacityLimiter(1)
_SWEEP_BATCH = 20


async def archive_recipients(store: Store, profile: Profile) -> tuple[str, ...]:
    """Whom a cleaned file's archive copy is sealed to: the report's recipients, the
    offline archive key and the intake team's key once its first member enrolled."""
    async with store.transaction() as tx:
        team = (await staff_records.group_recipients(tx)).get(staff_records.INTAKE_GROUP)
    return (*profile.archive.age_recipients, *((team,) if team else ()))


def _clean_and_seal(
    file_id: str,
    pieces: Sequence[bytes],
    secrets: Sequence[str],
    recipients: Sequence[str],
    folder: Path,
) -> SealedCopies:
    sent = open_as_sent(file_id, pieces, secrets)
    data, _ = clean_image(io.BytesIO(sent))
    del sent
    return seal(io.BytesIO(data), recipients, secrets[0], folder, file_id)


async def clean_waiting(
    store: Store,
    profile: Profile,
    secrets: Sequence[str],
    data_dir: Path,
    file_ids: Sequence[str],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    pause: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Clean each of *file_ids* that is waiting and not claimed by a live process, after
    awaiting *pause* before each; the number this call settled (cleaned or found
    unreadable). Its writes join the reports' (Store.write), not the team's side's lock."""
    if not file_ids:
        return 0
    folder = private_folder(data_dir / UPLOAD_FOLDER)
    recipients = await archive_recipients(store, profile)
    settled = 0
    for file_id in file_ids:
        if pause is not None:
            await pause()
        async with store.transaction() as tx:
            if not await stored_files.claim(tx, file_id, clock()):
                continue
        pieces = await stored_files.pieces(store, file_id, stored_files.DELIVERY)
        try:
            copies = await anyio.to_thread.run_sync(
                _clean_and_seal, file_id, pieces, secrets, recipients, folder, limiter=_CLEANING
            )
        except (Refused, CopyUnreadable) as error:
            log_event("file_unreadable", logging.WARNING, error=type(error).__name__)
            due = _deliveries_due(file_id, clock())
            await store.write(chain(stored_files.unreadable(file_id), [due]))
            settled += 1
            continue
        try:
            steps = stored_files.cleaned(file_id, copies.delivery_pieces,
                                         archive_pieces(copies.archive),
                                         delivery_pieces(copies.delivery))  # fmt: skip
            size = copies.archive.stat().st_size + copies.delivery.stat().st_size
            if pause is not None:  # files may have begun arriving while this one was cleaned
                await pause()
            await store.write(chain(steps, [_deliveries_due(file_id, clock())]), size)
        finally:
            copies.archive.unlink(missing_ok=True)
            copies.delivery.unlink(missing_ok=True)
        settled += 1
    return settled


async def clean_all_waiting(
    store: Store,
    profile: Profile,
    secrets: Sequence[str],
    data_dir: Path,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Clean every photo left waiting (a stopped process's, or one whose request's
    cleaning failed on a database hiccup); the number settled."""
    settled = 0
    while True:
        async with store.transaction() as tx:
            found = await stored_files.waiting(tx, clock(), _SWEEP_BATCH)
        done = await clean_waiting(store, profile, secrets, data_dir, found, clock)
        settled += done
        if len(found) < _SWEEP_BATCH or not done:
            return settled


def _deliveries_due(file_id: str, now: datetime) -> Step:
    """The deliveries of the file's report that waited for it: due now, not at their
    next look (form_service/delivery/worker.py puts them off while a file waits)."""
    return (
        "UPDATE outbox SET next_attempt_at = ? WHERE status = 'pending'"
        " AND next_attempt_at > ? AND report_id IN (SELECT r.id FROM reports r"
        " JOIN attachments a ON a.token_id = r.token_id OR a.report_ref = r.report_ref"
        " WHERE a.id = ?)",
        (stamp(now), stamp(now), file_id),
    )
