"""The tipster's conversation with the team, readable only by the code holder and the team.

Each report has a thread identity (an age X25519 key pair). Its public half is kept in the
clear, so whoever may write (the tipster, an intake user, a partner the profile lets join)
encrypts to it without holding anything secret. Its secret half is sealed (AES-256-GCM)
under a key derived from the receipt code (HKDF-SHA256): the code is never stored, so only
the person holding it opens the thread. Every message is also encrypted to the intake
team's key and the offline archive key, and, where the profile allows, to the keys of the
partners the report was shared with. A copy of the database and every server secret
together open none of it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

import pyrage
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from form_service.receipts import normalize_code
from form_service.staff.keys import Identity, encrypt_to
from form_service.storage import Tx, notices
from form_service.storage import staff as staff_records
from form_service.storage.conversation import Thread
from form_service.storage.staff import INTAKE_GROUP, PARTNER_PREFIX
from outreach.profile import Profile

MESSAGE_MAX_CHARS = 10_000
"""As long as a report's description may be."""

_INFO = b"outreach tipster thread key v1"
_NONCE_BYTES = 12


def thread_key(code: str) -> bytes:
    """The key that seals a report's thread identity: from the receipt code alone.

    The code carries 100 random bits, so a plain key derivation is enough (a slow one
    would only slow down the status page)."""
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
    return kdf.derive(normalize_code(code).encode("ascii", errors="replace"))


@dataclass(frozen=True)
class NewThread:
    recipient: str
    """The public half, stored in the clear."""
    sealed: bytes
    """The secret half, sealed under ``thread_key(code)``."""


def new_thread(code: str, report_ref: str) -> NewThread:
    identity = Identity.generate()
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(thread_key(code)).encrypt(
        nonce, identity.secret.encode("ascii"), report_ref.encode("ascii")
    )
    return NewThread(identity.recipient, nonce + sealed)


def open_thread(code: str, sealed: bytes | None, report_ref: str) -> Identity | None:
    """The thread identity sealed with this code, or None (another code, or none yet)."""
    if sealed is None:
        return None
    try:
        secret = AESGCM(thread_key(code)).decrypt(
            sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], report_ref.encode("ascii")
        )
    except (InvalidTag, ValueError):
        return None
    return Identity.parse(secret.decode("ascii"))


def seal_message(text: str, recipients: list[str]) -> bytes:
    """A message, as an age file every one of *recipients* can open."""
    return encrypt_to(text.encode("utf-8"), sorted(set(recipients)))


def read_message(identity: Identity, body_age: bytes) -> str | None:
    """A message's text, or None when it was not sealed to *identity*."""
    try:
        return identity.decrypt(body_age).decode("utf-8")
    except pyrage.DecryptError:
        return None


async def message_recipients(tx: Tx, thread: Thread, profile: Profile) -> list[str]:
    """Who can read a new message of *thread*: the code holder (the thread key), the intake
    team, the archive key, and each partner the report was shared with whose agreement lets
    its users join the conversation. Team keys are read in the writer's transaction, so a
    key made a moment ago is already among them."""
    groups = await staff_records.group_recipients(tx)
    recipients = list(profile.archive.age_recipients)
    if INTAKE_GROUP in groups:
        recipients.append(groups[INTAKE_GROUP])
    if thread.recipient is not None:
        recipients.append(thread.recipient)
    for share in await staff_records.shares(tx, thread.report_ref):
        group = PARTNER_PREFIX + share.partner_id
        joins = partner_joins_conversation(profile, share.partner_id)
        if share.state == "shared" and group in groups and joins:
            recipients.append(groups[group])
    return recipients


def partner_joins_conversation(profile: Profile, partner_id: str) -> bool:
    try:
        return profile.partner(partner_id).agreement.tipster_conversation
    except KeyError:  # a partner removed from the profile since the report was shared
        return False


async def tell_team(tx: Tx, thread: Thread, now: datetime) -> None:
    """A content-free notice of the tipster's message: to the report's assigned user while
    their account is active, or else to every intake user."""
    assigned = (
        await staff_records.user_by(tx, user_id=thread.assigned_to) if thread.assigned_to else None
    )
    if assigned is not None and assigned.state == "active":
        await notices.add_news(tx, [assigned.id], now, urgent=False)
    else:
        await notices.add_news_for_role(tx, "intake", now, urgent=False)
