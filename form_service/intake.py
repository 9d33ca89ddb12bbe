"""From a validated report to what the store keeps: routed, shared, encrypted.

Routing and sharing decide on the server who receives what; the whole report is kept only
encrypted to the agency's archive key, whose private half the server never holds.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import pyrage

from form_service.conversation import new_thread
from form_service.receipts import (
    CODE_BYTES,
    new_receipt_code,
    new_report_ref,
    receipt_hash,
    seal_code,
    sealed_receipt,
    token_hash,
)
from form_service.report import Report
from form_service.sharing import FieldValues, partner_payload
from form_service.staff.keys import encrypt_to
from form_service.storage import NewReport, OutboxEntry, PartnerShare
from form_service.storage.attachments import StoredFile
from form_service.times import minute_iso
from outreach.profile import Partner, Profile
from outreach.routing import Recipient, route_report

# Made once: json.dumps with any option builds a new encoder on every call.
_ARCHIVE_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


@functools.cache
def _recipients(keys: tuple[str, ...]) -> list[object]:
    return [pyrage.x25519.Recipient.from_str(key) for key in keys]


def encrypt_for_archive(
    content: dict[str, object], profile: Profile, team: tuple[str, ...] = ()
) -> bytes:
    """The whole report, readable with the offline archive key and, when the intake team
    has enrolled, with the team's key (which only its members' passwords open)."""
    recipients = _recipients((*profile.archive.age_recipients, *team))
    data = _ARCHIVE_JSON.encode(content).encode("utf-8")
    return bytes(pyrage.encrypt(data, recipients))


def _outbox_entry(
    report: Report,
    profile: Profile,
    recipient: Recipient,
    delivery_id: str,
    report_ref: str,
    now: datetime,
    flood: bool,
    values: dict[str, FieldValues],
    files: Sequence[StoredFile] = (),
) -> OutboxEntry:
    payload = partner_payload(
        report,
        profile,
        recipient,
        delivery_id=delivery_id,
        report_ref=report_ref,
        received_at=now,
        flood_suspected=flood,
        values=values,
        files=files,
    )
    is_intake = recipient.partner_id == profile.routing.intake
    partner = profile.partner(recipient.partner_id)
    return OutboxEntry(
        delivery_id=delivery_id,
        partner_id=recipient.partner_id,
        rule_id=recipient.rule_id,
        agreement_id=partner.agreement.id,
        payload=payload.to_json(),
        is_intake=is_intake,
        fields=tuple(payload.fields.names()),
    )


def hold_seconds(partner: Partner, report: Report) -> int:
    """A random wait of 0 to the partner's ``hold_minutes``, from the report's minute: the
    partner's mailbox then does not time the report for anyone who matches it against a
    network's logs. Danger now is never held."""
    if report.danger_now or not partner.hold_minutes:
        return 0
    return secrets.randbelow(partner.hold_minutes * 60 + 1)


@dataclass(frozen=True)
class Readers:
    """The staff keys a new report is sealed to, besides the archive key."""

    team: tuple[str, ...] = ()
    """The intake team's age recipient, once its first member has enrolled."""
    partners: dict[str, str] = field(default_factory=dict)
    """Partner id -> the age recipient of that partner's staff users, once one enrolled."""


def partner_view(entry: OutboxEntry, readers: Readers) -> bytes | None:
    """A partner's copy for its users' inbox: exactly its payload, sealed to their key."""
    recipient = readers.partners.get(entry.partner_id)
    return encrypt_to(entry.payload.encode("utf-8"), [recipient]) if recipient else None


def outbox_entries(
    report: Report,
    profile: Profile,
    recipients: list[Recipient],
    report_ref: str,
    now: datetime,
    flood: bool = False,
    entropy: bytes | None = None,
    files: Sequence[StoredFile] = (),
) -> list[OutboxEntry]:
    """One outbox row per recipient; *entropy* (16 random bytes each) makes the ids."""
    random = entropy if entropy is not None else os.urandom(16 * len(recipients))
    entries = []
    values: dict[str, FieldValues] = {}  # shared by the partners that read one language
    for index, recipient in enumerate(recipients):
        delivery_id = str(uuid.UUID(bytes=random[16 * index : 16 * index + 16], version=4))
        entries.append(
            _outbox_entry(
                report, profile, recipient, delivery_id, report_ref, now, flood, values, files
            )
        )
    return entries


def prepare_report(
    report: Report,
    profile: Profile,
    token_id: str,
    secret: str,
    now: datetime,
    flood: bool = False,
    readers: Readers = Readers(),
    files: Sequence[StoredFile] = (),
) -> tuple[NewReport, str]:
    """The rows to store and the receipt code to show once they are committed.

    The code is random; the rows keep only its keyed hash, the code sealed under the form
    token's id (for a double submit of the form) and the report's thread identity sealed
    under a key from the code.

    *flood* marks every partner's copy ``flood_suspected``: it was stored while submissions
    ran above the surge rate. Partners chosen only by rules with ``review: true`` get no
    copy now: the report waits, held for them, until an intake user releases it."""
    recipients = route_report(report.facts(), profile)
    now_sent = [r for r in recipients if not r.review]
    # One draw from the system's random source for the reference and every delivery id:
    # on a busy virtual machine each draw is a slow system call.
    entropy = os.urandom(5 + CODE_BYTES + 16 * len(now_sent))
    report_ref = new_report_ref(entropy)
    code = new_receipt_code(entropy[5:])
    ids = entropy[5 + CODE_BYTES :]
    entries = [
        replace(entry, hold_seconds=hold_seconds(profile.partner(entry.partner_id), report))
        for entry in outbox_entries(report, profile, now_sent, report_ref, now, flood, ids, files)
    ]
    shares = [PartnerShare(r.partner_id, r.rule_id, held=True) for r in recipients if r.review]
    shares += [
        PartnerShare(e.partner_id, e.rule_id, held=False, view_age=partner_view(e, readers))
        for e in entries
        if not e.is_intake
    ]
    content = {"report_ref": report_ref, "received_at": minute_iso(now), **report.content()}
    thread = new_thread(code, report_ref)
    new = NewReport(
        report_ref=report_ref,
        receipt_hash=receipt_hash(secret, code),
        token_id=token_hash(token_id),
        created_at=now,
        content_age=encrypt_for_archive(content, profile, readers.team),
        outbox=tuple(entries),
        urgent=report.danger_now,
        shares=tuple(shares),
        categories=(report.area, report.setting.value, report.concern.value),
        receipt_sealed=seal_code(token_id, report_ref, sealed_receipt(code, report.content(), now)),
        thread_recipient=thread.recipient,
        thread_sealed=thread.sealed,
    )
    return new, code
