"""The conversation with the person who reported, as staff read and write it.

Intake users read it with the team key; a partner's users with their partner's key, where
the profile's agreement lets the partner join and only in messages written after the
report was shared with it. Every message written and every reading is on the audit trail,
never a word of the messages themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from form_service import conversation
from form_service.staff.keys import Identity
from form_service.storage import Tx
from form_service.storage import conversation as threads
from form_service.storage import staff as records
from outreach.profile import Profile


@dataclass(frozen=True)
class ThreadMessage:
    from_tipster: bool
    author: str | None
    at: str
    text: str | None
    """None: sealed before this reader could read the thread."""


@dataclass(frozen=True)
class StaffThread:
    thread: threads.Thread
    messages: list[ThreadMessage]

    @property
    def open(self) -> bool:
        """Whether anyone can write yet: a report stored before conversations existed gets
        its thread key only when its tipster next checks in."""
        return self.thread.recipient is not None


async def read(
    tx: Tx, report_ref: str, reader: Identity | None, actor: str, now: datetime
) -> StaffThread | None:
    """The thread, opened with *reader*; its reading recorded, and for the intake team
    (who answer the tipster) the tipster's new messages marked read."""
    thread = await threads.by_ref(tx, report_ref)
    if thread is None:
        return None
    found = await threads.messages(tx, thread.report_id)
    messages = [
        ThreadMessage(
            m.sender == threads.TIPSTER,
            m.author,
            m.at,
            conversation.read_message(reader, m.body_age) if reader else None,
        )
        for m in found
    ]
    if found and reader is not None:
        await records.append_event(
            tx, actor, "thread_read", now, report_ref, f"messages={len(found)}"
        )
    return StaffThread(thread, messages)


async def mark_read(tx: Tx, thread: threads.Thread, actor: str, now: datetime) -> None:
    if await threads.mark_read(tx, thread.report_id):
        await records.append_event(tx, actor, "tipster_messages_read", now, thread.report_ref)


async def write(
    tx: Tx,
    thread: threads.Thread,
    text: str,
    author: str,
    profile: Profile,
    now: datetime,
) -> None:
    """A message to the tipster, sealed to everyone who reads the thread; it waits for the
    tipster, who is never notified (nobody knows who they are)."""
    recipients = await conversation.message_recipients(tx, thread, profile)
    body = conversation.seal_message(text, recipients)
    await threads.add_message(tx, thread.report_id, threads.STAFF, author, body, now)
    await records.append_event(tx, author, "tipster_message_sent", now, thread.report_ref)


def problem(text: str) -> str | None:
    """The message id of what is wrong with a message to send, or None."""
    if not text.strip():
        return "message_empty"
    if len(text) > conversation.MESSAGE_MAX_CHARS:
        return "message_too_long"
    return None
