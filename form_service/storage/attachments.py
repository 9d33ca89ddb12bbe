"""Files attached to reports, written once for both databases: through a transaction, or
as steps the store writes as it writes reports (a tipster's new file, Store.write).

A file is held under the hash of the form token it came with (``reports.token_id`` is the
same hash), so the report stored later with that token owns it without a second write; a
file added in the conversation is held under ``thread:<report ref>`` with its report's
reference. Bytes are kept in pieces (form_service/file_sealing.py), one row each, so that
neither storing nor reading a file needs it whole in memory twice. Column lists are
joined from this module's constant, never from input (ruff's S608 is silenced here).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from form_service.storage import Reads, Step, Tx
from form_service.times import minute_iso

ARCHIVE = "archive"
DELIVERY = "delivery"
WAITING = "waiting"
READY = "ready"
UNREADABLE = "unreadable"
CLAIM_MINUTES = 5
"""A claim to clean a waiting file older than this is a stopped process's: taken again."""


def partner_copy(partner_id: str) -> str:
    """The copy a partner's users read, sealed to their key."""
    return "partner:" + partner_id


_COLUMNS = "a.id, a.position, a.kind, a.media_type, a.size, a.delivery_pieces, a.state"


@dataclass(frozen=True)
class StoredFile:
    id: str
    position: int
    kind: str
    media_type: str
    size: int
    """Bytes as sent: what counts toward the report's limit."""
    delivery_pieces: int
    state: str = READY


def thread_owner(report_ref: str) -> str:
    return "thread:" + report_ref


def new_file(
    owner: str,
    report_ref: str | None,
    file: StoredFile,
    archive: Iterable[bytes],
    delivery: Iterable[bytes],
    now: datetime,
) -> Iterator[Step]:
    """The steps that store a new file and its copies, pieces read as they are written."""
    yield (
        "INSERT INTO attachments (id, token_id, report_ref, position, kind, media_type, size,"
        " delivery_pieces, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            file.id,
            owner,
            report_ref,
            file.position,
            file.kind,
            file.media_type,
            file.size,
            file.delivery_pieces,
            file.state,
            minute_iso(now),
        ),
    )
    for copy, pieces in ((ARCHIVE, archive), (DELIVERY, delivery)):
        yield from copy_rows(file.id, copy, pieces)


def copy_rows(file_id: str, copy: str, pieces: Iterable[bytes]) -> Iterator[Step]:
    for n, piece in enumerate(pieces):
        yield (
            "INSERT INTO attachment_pieces (attachment_id, copy, n, data) VALUES (?, ?, ?, ?)",
            (file_id, copy, n, piece),
        )


async def add_copy(tx: Tx, file_id: str, copy: str, pieces: Iterable[bytes]) -> None:
    for statement, values in copy_rows(file_id, copy, pieces):
        await tx.run(statement, values)


async def has_copy(tx: Tx, file_id: str, copy: str) -> bool:
    rows = await tx.fetch(
        "SELECT count(*) FROM attachment_pieces WHERE attachment_id = ? AND copy = ?",
        (file_id, copy),
    )
    return bool(rows[0][0])


async def held(reads: Reads, owner: str) -> list[StoredFile]:
    """The files held under a form token's hash (or a thread), in the order they came."""
    rows = await reads.fetch(
        f"SELECT {_COLUMNS} FROM attachments a WHERE a.token_id = ? ORDER BY a.position",
        (owner,),
    )
    return [StoredFile(*row) for row in rows]


async def of_report(tx: Tx, report_ref: str) -> list[StoredFile]:
    """Every file of a report: those sent with its form, then those added later."""
    rows = await tx.fetch(
        f"SELECT {_COLUMNS} FROM attachments a JOIN reports r ON r.token_id = a.token_id"
        " WHERE r.report_ref = ? UNION ALL"
        f" SELECT {_COLUMNS} FROM attachments a WHERE a.report_ref = ?"
        " ORDER BY 2",
        (report_ref, report_ref),
    )
    return [StoredFile(*row) for row in rows]


async def pieces(reads: Reads, file_id: str, copy: str) -> list[bytes]:
    rows = await reads.fetch(
        "SELECT data FROM attachment_pieces WHERE attachment_id = ? AND copy = ? ORDER BY n",
        (file_id, copy),
    )
    return [bytes(row[0]) for row in rows]


async def owned_by(tx: Tx, file_id: str, report_ref: str) -> StoredFile | None:
    for file in await of_report(tx, report_ref):
        if file.id == file_id:
            return file
    return None


async def waiting(tx: Tx, now: datetime, limit: int) -> list[str]:
    """Files waiting to be cleaned that no live process is cleaning: never claimed, or
    claimed by one that stopped (CLAIM_MINUTES ago or more)."""
    stale = minute_iso(now - timedelta(minutes=CLAIM_MINUTES))
    rows = await tx.fetch(
        "SELECT id FROM attachments WHERE state = ? AND (claimed_at IS NULL OR claimed_at <= ?)"
        " ORDER BY created_at LIMIT ?",
        (WAITING, stale, limit),
    )
    return [row[0] for row in rows]


async def claim(tx: Tx, file_id: str, now: datetime) -> bool:
    """Take a waiting file to clean it; False when it is not waiting, or another process
    claimed it less than CLAIM_MINUTES ago."""
    stale = minute_iso(now - timedelta(minutes=CLAIM_MINUTES))
    # One UPDATE: of two racing claims, the second finds the row no longer matches.
    changed = await tx.run(
        "UPDATE attachments SET claimed_at = ? WHERE id = ? AND state = ?"
        " AND (claimed_at IS NULL OR claimed_at <= ?)",
        (minute_iso(now), file_id, WAITING, stale),
    )
    return changed == 1


def cleaned(
    file_id: str, delivery_pieces: int, archive: Iterable[bytes], delivery: Iterable[bytes]
) -> Iterator[Step]:
    """The steps that put a waiting file's cleaned copies in place of the file as sent."""
    yield _drop_delivery_copy(file_id)  # the file as sent is kept as that copy
    for copy, pieces in ((ARCHIVE, archive), (DELIVERY, delivery)):
        yield from copy_rows(file_id, copy, pieces)
    yield (
        "UPDATE attachments SET state = ?, delivery_pieces = ?, claimed_at = NULL WHERE id = ?",
        (READY, delivery_pieces, file_id),
    )


def unreadable(file_id: str) -> Iterator[Step]:
    """The steps for a waiting file that failed to decode: the file as sent goes; the row
    says so."""
    yield _drop_delivery_copy(file_id)
    yield (
        "UPDATE attachments SET state = ?, delivery_pieces = 0, claimed_at = NULL WHERE id = ?",
        (UNREADABLE, file_id),
    )


async def states_of(reads: Reads, file_ids: Sequence[str]) -> dict[str, str]:
    """The state of each of *file_ids* still stored, in one query."""
    marks = ", ".join("?" * len(file_ids))
    rows = await reads.fetch(
        f"SELECT id, state FROM attachments WHERE id IN ({marks})",
        tuple(file_ids),
    )
    return {str(row[0]): str(row[1]) for row in rows}


def _drop_delivery_copy(file_id: str) -> Step:
    return "DELETE FROM attachment_pieces WHERE attachment_id = ? AND copy = ?", (file_id, DELIVERY)


async def drop_delivery_copies(tx: Tx, file_ids: Iterable[str]) -> None:
    for file_id in file_ids:
        await tx.run(*_drop_delivery_copy(file_id))


async def drop_unclaimed(tx: Tx, before: datetime) -> int:
    """Delete files held under form tokens that expired before *before* without a report."""
    stale = await tx.fetch(
        "SELECT a.id FROM attachments a WHERE a.report_ref IS NULL AND a.created_at < ?"
        " AND NOT EXISTS (SELECT 1 FROM reports r WHERE r.token_id = a.token_id)",
        (minute_iso(before),),
    )
    await _delete(tx, [row[0] for row in stale])
    return len(stale)


async def _delete(tx: Tx, file_ids: list[str]) -> None:
    for file_id in file_ids:  # its pieces go with it (ON DELETE CASCADE)
        await tx.run("DELETE FROM attachments WHERE id = ?", (file_id,))
