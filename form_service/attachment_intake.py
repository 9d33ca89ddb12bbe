"""From files as they arrived to files the store holds: checked, sealed, kept.

Each file is typed by its first bytes and checked against its limits. A photo is then
checked without being decoded (its header, its size, that the file is whole) and sealed as
sent: it is cleaned after the receipt (form_service/waiting_files.py). A video is cleaned
now, by ffmpeg copying its streams (form_service/file_cleaning.py): ffmpeg reads a file,
and the only plaintext file the service writes is the upload's, gone when the request ends.
Checking, sealing and cleaning run in worker threads, two files at a time per process: a
video's ffmpeg pipe costs memory, and twenty tipsters sending at once must not add twenty
of them up. Then the sealed pieces are stored: with the report, in its commit, when the
form is valid (form_service/report_views.py); else held under the form token until the
report is; or under the report's thread, for a file added in the conversation.

A refused file is reported by its place among the files sent and its reason; its name is
never read, kept or logged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import anyio
from anyio import CapacityLimiter
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from form_service.file_cleaning import Refusal, Refused, check_kind, clean_video, inspect_image
from form_service.file_sealing import (
    SealedCopies,
    archive_pieces,
    delivery_pieces,
    seal,
    seal_as_sent,
)
from form_service.file_types import Kind
from form_service.logs import log_event
from form_service.service import Service
from form_service.storage import Step, Store
from form_service.storage import attachments as stored_files
from form_service.storage.attachments import READY, WAITING, StoredFile
from form_service.uploads import (
    MAX_FILES,
    UPLOAD_FOLDER,
    FileLimits,
    ReceivedFile,
    ReceivedForm,
    receive_files,
)
from form_service.waiting_files import clean_waiting

LULL_SECONDS = 10.0
"""How long cleaning a photo waits for the tipsters sending files now (Service.lull)."""
LEFT_BEHIND_SECONDS = 2 * 3600
"""Age past which a file in the upload folder can only be a crashed request's."""
# Two files checked and sealed at a time in each process (see the module's docstring).
_CLEANING = CapacityLimiter(2)


@dataclass(frozen=True)
class FileRefused:
    number: int
    """The file's place among those sent with this request, from 1."""
    reason: Refusal


@dataclass(frozen=True)
class Taken:
    files: list[StoredFile]
    """Every file now held for the report, earlier ones included."""
    refused: list[FileRefused]

    @property
    def waiting(self) -> list[str]:
        """The photos among them still to be cleaned."""
        return [f.id for f in self.files if f.state == WAITING]


@dataclass(frozen=True)
class Sealed:
    """A file's sealed copies, as temporary files of ciphertext in the upload folder."""

    file_id: str
    media_type: str
    state: str
    delivery_pieces: int
    archive: Path | None
    """None for a photo: it has no archive copy until it is cleaned."""
    delivery: Path
    """A video's delivery copy; a photo as sent (its pieces are stored as the delivery
    copy's, under the as-sent key, until it is cleaned)."""

    @property
    def size(self) -> int:
        """Bytes of ciphertext to store."""
        return sum(p.stat().st_size for p in (self.archive, self.delivery) if p is not None)

    def remove(self) -> None:
        if self.archive is not None:
            self.archive.unlink(missing_ok=True)
        self.delivery.unlink(missing_ok=True)


def file_limits(service: Service) -> FileLimits:
    settings = service.settings
    return FileLimits(
        settings.max_image_bytes, settings.max_video_bytes, settings.max_report_files_bytes
    )


@contextlib.asynccontextmanager
async def files_received(
    service: Service, request: Request, known: Collection[str], max_parts: int
) -> AsyncIterator[ReceivedForm]:
    """The multipart form of *request* (form_service/uploads.py), its request counted as
    one with files arriving (Service.lull) until the block ends."""
    settings = service.settings
    with service.receiving_files():
        async with receive_files(request, settings.data_dir, settings.max_body_bytes,
                                 file_limits(service), known, max_parts) as received:  # fmt: skip
            yield received


def _video_sealed(received: ReceivedFile, recipients: Sequence[str], secret: str) -> Sealed:
    with clean_video(received.path) as stream:
        copies = seal(stream, recipients, secret, received.path.parent)
    if copies.size == 0:
        _remove(copies)
        raise Refused(Refusal.undecodable)
    return Sealed(copies.file_id, "video/mp4", READY, copies.delivery_pieces, copies.archive,
                  copies.delivery)  # fmt: skip


def _photo_sealed(received: ReceivedFile, secret: str) -> Sealed:
    media = inspect_image(received.path)
    file_id, sent = seal_as_sent(received.path, secret, received.path.parent)
    return Sealed(file_id, media, WAITING, 0, None, sent)


def _checked_and_sealed(
    received: ReceivedFile, kind: Kind, recipients: Sequence[str], secret: str
) -> Sealed:
    if kind is Kind.image:
        return _photo_sealed(received, secret)
    return _video_sealed(received, recipients, secret)


def _remove(copies: SealedCopies) -> None:
    copies.archive.unlink(missing_ok=True)
    copies.delivery.unlink(missing_ok=True)


def _first_check(
    received: ReceivedFile, limits: FileLimits, used: int, count: int
) -> Kind | Refusal:
    if count >= MAX_FILES:
        return Refusal.too_many
    if received.too_large:
        return Refusal.too_large
    try:
        kind = check_kind(received.head, received.size)
    except Refused as refused:
        return refused.reason
    if used + received.size > limits.report:
        return Refusal.report_too_large
    return kind


@dataclass
class SealedFiles:
    """The files of one request, checked and sealed, not yet stored: ``hold`` stores them
    alone, or the report's commit takes ``steps`` (report_views.py)."""

    owner: str
    report_ref: str | None
    earlier: list[StoredFile]
    """The files held for the report before this request."""
    new: list[tuple[StoredFile, Sealed]] = field(default_factory=list)
    refused: list[FileRefused] = field(default_factory=list)

    @property
    def files(self) -> list[StoredFile]:
        """Every file of the report once these are stored, earlier ones included."""
        return [*self.earlier, *(file for file, _ in self.new)]

    @property
    def size(self) -> int:
        return sum(sealed.size for _, sealed in self.new)

    def steps(self) -> Iterator[Step]:
        """The steps that store the new files, their pieces read as they are written."""
        now = datetime.now(UTC)
        for file, sealed in self.new:
            archive = archive_pieces(sealed.archive) if sealed.archive else ()
            delivery = delivery_pieces(sealed.delivery)
            yield from stored_files.new_file(self.owner, self.report_ref, file, archive,
                                             delivery, now)  # fmt: skip

    async def hold(self, store: Store) -> Taken:
        """Store the new files (under their owner) and say what was taken."""
        if self.new:
            await store.write(self.steps(), self.size)
        return Taken(self.files, self.refused)


@contextlib.asynccontextmanager
async def files_sealed(
    service: Service,
    received: Sequence[ReceivedFile],
    owner: str,
    report_ref: str | None = None,
) -> AsyncIterator[SealedFiles]:
    """*received* checked and sealed for *owner* (a form token's hash or a thread); each
    upload's plaintext is removed as soon as it is sealed, the sealed copies when the
    block ends.

    Raises StoreUnavailable when the database cannot say which files are held already."""
    # Read beside the reports, not behind the team's side's lock: a burst of tipsters
    # sending photos at once shares the reports' commits.
    sealing = SealedFiles(owner, report_ref, await stored_files.held(service.store, owner))
    limits = file_limits(service)
    profile = service.settings.profile.profile
    recipients = (*profile.archive.age_recipients, *service.readers.team)
    # Files count toward the report's limit as they were sent (cleaned, they are smaller).
    used = sum(f.size for f in sealing.earlier)
    position = max((f.position for f in sealing.earlier), default=0)
    try:
        for number, one in enumerate(received, 1):
            checked = _first_check(one, limits, used, len(sealing.files))
            if isinstance(checked, Refusal):
                sealing.refused.append(FileRefused(number, checked))
                continue
            used += one.size
            try:
                sealed = await anyio.to_thread.run_sync(
                    _checked_and_sealed,
                    one,
                    checked,
                    recipients,
                    service.settings.secret_keys[0],
                    limiter=_CLEANING,
                )
            except Refused as refusal:
                sealing.refused.append(FileRefused(number, refusal.reason))
                continue
            finally:
                one.path.unlink(missing_ok=True)  # the plaintext goes as soon as it is used
            position += 1
            file = StoredFile(sealed.file_id, position, checked.value, sealed.media_type,
                              one.size, sealed.delivery_pieces, sealed.state)  # fmt: skip
            sealing.new.append((file, sealed))
        yield sealing
    finally:
        for _, sealed in sealing.new:
            sealed.remove()


async def take_files(
    service: Service,
    received: Sequence[ReceivedFile],
    owner: str,
    report_ref: str | None = None,
) -> Taken:
    """Clean, seal and store *received* under *owner* (a form token's hash or a thread).

    Raises StoreUnavailable when the database cannot take them."""
    async with files_sealed(service, received, owner, report_ref) as sealing:
        return await sealing.hold(service.store)


def cleaning_after(response: Response, service: Service, taken: Taken) -> Response:
    """*response*, which cleans the photos *taken* left waiting once it has been sent."""
    if taken.waiting:
        response.background = BackgroundTask(clean_after, service, taken.waiting)
    return response


async def clean_after(service: Service, file_ids: Sequence[str]) -> None:
    """Clean *file_ids* now; then the worker of this process sends what waited for them.
    A failure leaves them to the worker's sweep (form_service/waiting_files.py)."""
    settings = service.settings
    try:
        await clean_waiting(service.store, settings.profile.profile, settings.secret_keys,
                            settings.data_dir, file_ids,
                            pause=lambda: service.lull(LULL_SECONDS))  # fmt: skip
    except Exception as error:
        log_event("files_left_waiting", logging.WARNING, error=type(error).__name__)
    service.wakeup.set()


def clear_upload_folder(data_dir: Path) -> None:
    """Remove what a process that stopped mid-request (a crash, a kill) left in the upload
    folder: called at start. Other processes of the same data dir may be receiving files
    now, so only files older than any request can last go: 60 MB at the slowest pace the
    server keeps a body for (form_service/http_limits.py) takes about an hour."""
    folder = data_dir / UPLOAD_FOLDER
    if not folder.is_dir():
        return
    cutoff = datetime.now(UTC).timestamp() - LEFT_BEHIND_SECONDS
    for path in folder.iterdir():
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
