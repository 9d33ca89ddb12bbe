"""The tipster's conversation: each report's thread key and its messages, all sealed.

Reports are found here by the keyed hash of their receipt code (the tipster's side) or by
reference (the team's side). A message is an age file (form_service.conversation); the
database holds who wrote it (the tipster, or a staff user's address) and its minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from form_service.storage import ReportStatus, Tx
from form_service.storage.rows import optional_bytes
from form_service.storage.statements import STATUS_OF_REPORT
from form_service.times import minute_iso

TIPSTER = "tipster"
STAFF = "staff"


@dataclass(frozen=True)
class Thread:
    """A live report as its conversation needs it."""

    report_id: int
    report_ref: str
    status: ReportStatus
    recipient: str | None
    """The thread identity's public half; None until one was made (reports stored before)."""
    sealed: bytes | None
    assigned_to: str | None
    awaiting_tipster: bool
    tipster_unread: bool


_THREAD_COLUMNS = (
    f"id, report_ref, {STATUS_OF_REPORT}, thread_recipient, thread_sealed, assigned_to,"
    " awaiting_tipster, tipster_unread"
)


def _thread(row: tuple[Any, ...]) -> Thread:
    ident, ref, status, recipient, sealed, assigned, awaiting, unread = row
    return Thread(
        int(ident),
        ref,
        ReportStatus(status),
        recipient,
        optional_bytes(sealed),
        assigned,
        bool(awaiting),
        bool(unread),
    )


async def by_receipt(tx: Tx, receipt_hash: str) -> Thread | None:
    rows = await tx.fetch(
        f"SELECT {_THREAD_COLUMNS} FROM reports WHERE receipt_hash = ? AND purged_at IS NULL",
        (receipt_hash,),
    )
    return _thread(rows[0]) if rows else None


async def by_id(tx: Tx, report_id: int) -> Thread | None:
    rows = await tx.fetch(
        f"SELECT {_THREAD_COLUMNS} FROM reports WHERE id = ? AND purged_at IS NULL", (report_id,)
    )
    return _thread(rows[0]) if rows else None


async def by_ref(tx: Tx, report_ref: str) -> Thread | None:
    rows = await tx.fetch(
        f"SELECT {_THREAD_COLUMNS} FROM reports WHERE report_ref = ? AND purged_at IS NULL",
        (report_ref,),
    )
    return _thread(rows[0]) if rows else None


async def set_thread(tx: Tx, report_id: int, recipient: str, sealed: bytes) -> bool:
    """Give a report stored before threads existed its thread key; False if it has one."""
    changed = await tx.run(
        "UPDATE reports SET thread_recipient = ?, thread_sealed = ?"
        " WHERE id = ? AND thread_recipient IS NULL",
        (recipient, sealed, report_id),
    )
    return changed == 1


@dataclass(frozen=True)
class Message:
    id: int
    sender: str
    """TIPSTER or STAFF."""
    author: str | None
    """The staff user's address; None for the tipster."""
    at: str
    body_age: bytes


async def messages(tx: Tx, report_id: int) -> list[Message]:
    rows = await tx.fetch(
        "SELECT id, sender, author, at, body_age FROM tipster_messages WHERE report_id = ?"
        " ORDER BY id",
        (report_id,),
    )
    return [
        Message(int(i), sender, author, at, bytes(body)) for i, sender, author, at, body in rows
    ]


async def add_message(
    tx: Tx, report_id: int, sender: str, author: str | None, body_age: bytes, now: datetime
) -> None:
    """A message in the thread, to the minute. The tipster's is unread for the team and
    ends any wait for them; the team's waits for the tipster."""
    await tx.run(
        "INSERT INTO tipster_messages (report_id, sender, author, at, body_age)"
        " VALUES (?, ?, ?, ?, ?)",
        (report_id, sender, author, minute_iso(now), body_age),
    )
    if sender == TIPSTER:
        await tx.run(
            "UPDATE reports SET tipster_unread = 1, awaiting_tipster = 0 WHERE id = ?",
            (report_id,),
        )
    else:
        await tx.run("UPDATE reports SET awaiting_tipster = 1 WHERE id = ?", (report_id,))


async def recent_from_tipster(tx: Tx, report_id: int, now: datetime) -> int:
    """Messages the tipster wrote to this report within the last hour."""
    since = minute_iso(now - timedelta(hours=1))
    rows = await tx.fetch(
        "SELECT count(*) FROM tipster_messages WHERE report_id = ? AND sender = ? AND at >= ?",
        (report_id, TIPSTER, since),
    )
    return int(rows[0][0])


async def mark_read(tx: Tx, report_id: int) -> bool:
    """The team has seen the tipster's messages; False if none were unread."""
    changed = await tx.run(
        "UPDATE reports SET tipster_unread = 0 WHERE id = ? AND tipster_unread = 1",
        (report_id,),
    )
    return changed == 1
