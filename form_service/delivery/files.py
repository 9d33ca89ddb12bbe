"""The files a delivery carries: read from their delivery copy, sealed for partners with a
key, named only by their kind and number ("photo-1.jpg").

Only payloads that list ``attachments`` carry files: the intake team's, and those of
partners whose agreement has ``attachments: true`` (form_service/sharing.py). The bytes
come from the store through ``DeliverySettings.file_source``, opened with the service's
secret; once every delivery of a report is done, the delivery copies are deleted
(``release_files``) and only the archive copy remains.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pyrage

from form_service.delivery.channel import DeliveryFailed, DeliverySettings, FileNotReady
from form_service.delivery.payload import DeliveryPayload, SharedFile
from form_service.file_sealing import PIECE_BYTES, CopyUnreadable, open_delivery
from form_service.storage import Store
from form_service.storage import attachments as stored_files
from form_service.storage import staff as staff_records
from outreach.profile import Partner

_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "video/mp4": "mp4"}
SEALED_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class DeliveredFile:
    name: str
    media_type: str
    data: bytes


def file_name(file: SharedFile) -> str:
    kind = "photo" if file.kind == "image" else "video"
    return f"{kind}-{file.number}.{_EXTENSIONS[file.media_type]}"


def _seal(data: bytes, recipient: str) -> bytes:
    return bytes(pyrage.encrypt(data, [pyrage.x25519.Recipient.from_str(recipient)]))


async def files_for(
    payload: DeliveryPayload, partner: Partner, settings: DeliverySettings
) -> list[DeliveredFile]:
    """The payload's files as the partner receives them: age-encrypted (binary) to its key
    when it has one. DeliveryFailed when one cannot be read."""
    if not payload.attachments:
        return []
    if settings.file_source is None:
        raise DeliveryFailed("no store to read the report's files from")
    recipient = partner.delivery.age_recipient
    found = []
    for file in payload.attachments:
        data = await settings.file_source.read(file)
        if recipient is None:
            found.append(DeliveredFile(file_name(file), file.media_type, data))
            continue
        sealed = await asyncio.to_thread(_seal, data, recipient)
        found.append(DeliveredFile(file_name(file) + ".age", SEALED_TYPE, sealed))
    return found


@dataclass(frozen=True)
class StoredFiles:
    """Files read from the store's delivery copies (the worker's file source)."""

    store: Store
    secret_keys: tuple[str, ...]
    turn: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))

    async def read(self, file: SharedFile) -> bytes:
        async with self.store.transaction() as tx:
            pieces = await stored_files.pieces(tx, file.id, stored_files.DELIVERY)
        if not pieces:
            raise DeliveryFailed("a file's delivery copy is gone (purged or delivered)")
        try:
            return await asyncio.to_thread(open_delivery, file.id, pieces, self.secret_keys)
        except CopyUnreadable:
            raise DeliveryFailed("a file's delivery copy opens with no secret") from None

    async def deliverable(self, payload: DeliveryPayload) -> DeliveryPayload:
        if not payload.attachments:
            return payload
        states = await stored_files.states_of(self.store, [f.id for f in payload.attachments])
        if stored_files.WAITING in states.values():
            raise FileNotReady(payload.report_ref)
        kept = [f for f in payload.attachments if states.get(f.id) != stored_files.UNREADABLE]
        if len(kept) == len(payload.attachments):
            return payload
        return payload.model_copy(update={"attachments": kept or None})

    async def keep_for_partner(self, payload: DeliveryPayload, intake: str) -> None:
        """Seal the files a partner was just sent to its users' key, for its inbox; none
        when no user of the partner has enrolled yet (then, as for the report's text,
        only later reports are readable to them)."""
        if not payload.attachments or payload.partner_id == intake:
            return
        payload = await self.deliverable(payload)
        copy = stored_files.partner_copy(payload.partner_id)
        async with self.store.transaction() as tx:
            recipient = (await staff_records.group_recipients(tx)).get(copy)
        if recipient is None:
            return
        for file in payload.attachments or ():
            async with self.store.transaction() as tx:
                if await stored_files.has_copy(tx, file.id, copy):
                    continue
            sealed = await asyncio.to_thread(_seal, await self.read(file), recipient)
            pieces = [sealed[i : i + PIECE_BYTES] for i in range(0, len(sealed), PIECE_BYTES)]
            async with self.store.transaction() as tx:
                await stored_files.add_copy(tx, file.id, copy, pieces)

    async def release(self, report_ref: str) -> None:
        """Delete the report's delivery copies once none of its deliveries waits, and no
        partner waits for the intake team's review (a release sends them the files too)."""
        async with self.store.transaction() as tx:
            waiting = await tx.fetch(
                "SELECT count(*) FROM outbox o JOIN reports r ON r.id = o.report_id"
                " WHERE r.report_ref = ? AND o.status IN ('pending', 'sending')",
                (report_ref,),
            )
            held = await tx.fetch(
                "SELECT count(*) FROM partner_shares WHERE report_ref = ? AND state = 'held'",
                (report_ref,),
            )
            if waiting[0][0] or held[0][0]:
                return
            files = await stored_files.of_report(tx, report_ref)
            await stored_files.drop_delivery_copies(tx, [f.id for f in files])
