"""From files as they arrived to files the store holds: checked, cleaned, encrypted.

Each file is typed by its first bytes, cleaned (form_service/file_cleaning.py) and sealed
(form_service/file_sealing.py) in a worker thread, two files at a time per process: a
decoded photo or an ffmpeg pipe costs memory, and twenty tipsters sending at once must not
add twenty of them up; two keep both cores of a small server busy (Pillow and ffmpeg work
outside the interpreter lock), so ten photos sent together wait half as long for their
receipts. Then its sealed pieces are stored, held under the form token until the report
is (or under the report's thread, for a file added in the conversation).

A refused file is reported by its place among the files sent and its reason; its name is
never read, kept or logged.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio
from anyio import CapacityLimiter

from form_service.file_cleaning import Refusal, Refused, check_kind, clean_image, clean_video
from form_service.file_sealing import SealedCopies, archive_pieces, delivery_pieces, seal
from form_service.file_types import Kind
from form_service.service import Service
from form_service.storage import attachments as stored_files
from form_service.storage.attachments import StoredFile
from form_service.uploads import MAX_FILES, UPLOAD_FOLDER, FileLimits, ReceivedFile

LEFT_BEHIND_SECONDS = 2 * 3600
"""Age past which a file in the upload folder can only be a crashed request's."""
# Two files cleaned at a time in each process (see the module's docstring).
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


def file_limits(service: Service) -> FileLimits:
    settings = service.settings
    return FileLimits(
        settings.max_image_bytes, settings.max_video_bytes, settings.max_report_files_bytes
    )


def _clean_and_seal(
    received: ReceivedFile, kind: Kind, recipients: Sequence[str], secret: str
) -> tuple[SealedCopies, str]:
    folder = received.path.parent
    if kind is Kind.image:
        data, media = clean_image(received.path)
        return seal(io.BytesIO(data), recipients, secret, folder), media
    with clean_video(received.path) as stream:
        copies = seal(stream, recipients, secret, folder)
    if copies.size == 0:
        _remove(copies)
        raise Refused(Refusal.undecodable)
    return copies, "video/mp4"


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


async def take_files(
    service: Service,
    received: Sequence[ReceivedFile],
    owner: str,
    report_ref: str | None = None,
) -> Taken:
    """Clean, seal and store *received* under *owner* (a form token's hash or a thread).

    Raises StoreUnavailable when the database cannot take them."""
    async with service.store.transaction() as tx:
        files = await stored_files.held(tx, owner)
    refused: list[FileRefused] = []
    limits = file_limits(service)
    profile = service.settings.profile.profile
    recipients = (*profile.archive.age_recipients, *service.readers.team)
    # Files count toward the report's limit as they were sent (cleaned, they are smaller).
    used = sum(f.size for f in files)
    for number, one in enumerate(received, 1):
        checked = _first_check(one, limits, used, len(files))
        if isinstance(checked, Refusal):
            refused.append(FileRefused(number, checked))
            continue
        used += one.size
        try:
            copies, media = await anyio.to_thread.run_sync(
                _clean_and_seal,
                one,
                checked,
                recipients,
                service.settings.secret_keys[0],
                limiter=_CLEANING,
            )
        except Refused as refusal:
            refused.append(FileRefused(number, refusal.reason))
            continue
        finally:
            one.path.unlink(missing_ok=True)  # the plaintext goes as soon as it is used
        try:
            position = max((f.position for f in files), default=0) + 1
            file = StoredFile(copies.file_id, position, checked.value, media, copies.size,
                              copies.delivery_pieces)  # fmt: skip
            async with service.store.transaction() as tx:
                await stored_files.add(
                    tx,
                    owner,
                    report_ref,
                    file,
                    archive_pieces(copies.archive),
                    delivery_pieces(copies.delivery),
                    datetime.now(UTC),
                )
            files.append(file)
        finally:
            _remove(copies)
    return Taken(files, refused)


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
