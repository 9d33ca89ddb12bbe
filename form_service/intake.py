"""From a validated report to what the store keeps: routed, shared, encrypted.

Routing and sharing decide on the server who receives what; the whole report is kept only
encrypted to the agency's archive key, whose private half the server never holds.
"""

from __future__ import annotations

import functools
import json
import os
import uuid
from datetime import datetime

import pyrage

from form_service.receipts import new_report_ref, receipt_code, receipt_hash
from form_service.report import Report
from form_service.sharing import FieldValues, partner_payload
from form_service.storage import NewReport, OutboxEntry
from form_service.times import minute_iso
from outreach.profile import Profile
from outreach.routing import Recipient, route_report

# Made once: json.dumps with any option builds a new encoder on every call.
_ARCHIVE_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)
_PAYLOAD_JSON = json.JSONEncoder(ensure_ascii=False)


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
    )
    is_intake = recipient.partner_id == profile.routing.intake
    partner = profile.partner(recipient.partner_id)
    return OutboxEntry(
        delivery_id=delivery_id,
        partner_id=recipient.partner_id,
        rule_id=recipient.rule_id,
        agreement_id=partner.agreement.id,
        payload=_PAYLOAD_JSON.encode(payload),
        is_intake=is_intake,
        # The payload holds exactly the shared fields, in ReportField order.
        fields=tuple(payload["fields"]),
    )


def prepare_report(
    report: Report,
    profile: Profile,
    token_id: str,
    secret: str,
    now: datetime,
    flood: bool = False,
    team: tuple[str, ...] = (),
) -> tuple[NewReport, str]:
    """The rows to store and the receipt code to show once they are committed.

    *flood* marks every partner's copy ``flood_suspected``: it was stored while submissions
    ran above the surge rate. *team* holds the intake team's age recipient, when it has one."""
    recipients = route_report(report.facts(), profile)
    # One draw from the system's random source for the reference and every delivery id:
    # on a busy virtual machine each draw is a slow system call.
    entropy = os.urandom(5 + 16 * len(recipients))
    report_ref = new_report_ref(entropy)
    code = receipt_code(secret, token_id)
    entries = []
    values: dict[str, FieldValues] = {}  # shared by the partners that read one language
    for index, recipient in enumerate(recipients):
        start = 5 + 16 * index
        delivery_id = str(uuid.UUID(bytes=entropy[start : start + 16], version=4))
        entries.append(
            _outbox_entry(report, profile, recipient, delivery_id, report_ref, now, flood, values)
        )
    content = {"report_ref": report_ref, "received_at": minute_iso(now), **report.content()}
    new = NewReport(
        report_ref=report_ref,
        receipt_hash=receipt_hash(secret, code),
        token_id=token_id,
        created_at=now,
        content_age=encrypt_for_archive(content, profile, team),
        outbox=tuple(entries),
        urgent=report.danger_now,
        categories=(report.area, report.setting.value, report.concern.value),
    )
    return new, code
