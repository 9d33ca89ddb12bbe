"""What each partner may see of a report: its sharing agreement and the tipster's consent.

A pure function, table-tested. The intake team receives everything the tipster gave; any
other partner gets only the fields its agreement lists, and contact details only when the
agreement allows them and the tipster consented (or the agreement needs no consent). Nor
does the rest of its copy tell more: urgency only beside ``danger_now``, the routing rule
only beside the concern and whatever else the rule matches on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from form_service.delivery.payload import (
    DeliveryPayload,
    Location,
    ReportFields,
    SharedContact,
    SharedFile,
)
from form_service.report import Report
from form_service.storage.attachments import StoredFile
from outreach.profile import UNKNOWN_AREA, Partner, Profile, ReportField, RuleMatch, localize
from outreach.routing import Recipient


def partner_language(partner: Partner, profile: Profile) -> str:
    return partner.delivery.language or profile.default_language


def area_name(area: str, lang: str, profile: Profile) -> str:
    for known in profile.areas:
        if known.id == area:
            return localize(known.name, lang, profile.default_language)
    return "" if area == UNKNOWN_AREA else area


# Enum iteration and member look-ups are slow in a hot path (every partner of every report).
_ALL_FIELDS = tuple(ReportField)
_ENUM_VALUED = frozenset({ReportField.setting, ReportField.concern})
_NAMES = {f: str(f) for f in _ALL_FIELDS}


def _field_value(field: ReportField, report: Report, lang: str, profile: Profile) -> Any:
    if field is ReportField.location:
        name = area_name(report.area, lang, profile)
        return Location(area=report.area, area_name=name, detail=report.area_detail)
    if field is ReportField.contact:
        contact = report.contact
        return SharedContact(name=contact.name, phone=contact.phone, email=contact.email)
    value = getattr(report, field)
    return value.value if field in _ENUM_VALUED else value


FieldValues = dict[ReportField, Any]


def _values(
    report: Report, lang: str, profile: Profile, cache: dict[str, FieldValues]
) -> FieldValues:
    """Every field's value for partners reading *lang*, made once per report and language."""
    values = cache.get(lang)
    if values is None:
        values = cache[lang] = {f: _field_value(f, report, lang, profile) for f in _ALL_FIELDS}
    return values


def shared_fields(partner: Partner, report: Report, is_intake: bool) -> list[ReportField]:
    """The fields this partner receives, in the order of ReportField."""
    allowed = _ALL_FIELDS if is_intake else partner.agreement.fields
    contact_ok = report.contact.given() and (
        is_intake
        or report.consent_to_share_contact
        or not partner.agreement.contact_requires_consent
    )
    return [f for f in _ALL_FIELDS if f in allowed and (f is not ReportField.contact or contact_ok)]


def _fields_matched(match: RuleMatch) -> set[ReportField]:
    """The fields a rule's conditions (and so, likely, its id) speak of."""
    conditions = {
        ReportField.location: match.areas,
        ReportField.setting: match.settings,
        ReportField.concern: match.concerns,
        ReportField.danger_now: match.danger_now is not None,
    }
    return {name for name, condition in conditions.items() if condition}


def shared_rule(rule_id: str, profile: Profile, fields: list[ReportField]) -> str | None:
    """The rule's id when the partner may see it: a rule's id names what it matches
    ("self-harm", "danger-now"), so only with the concern and every field its conditions
    read; else None, and the partner's messages name no rule."""
    needed = {ReportField.concern}
    for rule in profile.routing.rules:
        if rule.id == rule_id:
            needed |= _fields_matched(rule.match)
    return rule_id if needed.issubset(fields) else None


def shared_files(files: Sequence[StoredFile]) -> list[SharedFile]:
    counts: dict[str, int] = {}
    shared = []
    for file in files:
        counts[file.kind] = counts.get(file.kind, 0) + 1
        shared.append(
            SharedFile(
                id=file.id,
                kind=file.kind,
                number=counts[file.kind],
                media_type=file.media_type,
                size=file.size,
            )
        )
    return shared


def _files(
    files: Sequence[StoredFile], partner: Partner, is_intake: bool, fields: list[ReportField]
) -> dict[str, Any]:
    """The payload's files: all of them for a partner whose agreement shares them; their
    number for one that sees the description; nothing otherwise."""
    if not files:
        return {}
    if is_intake or partner.agreement.attachments:
        return {"attachments": shared_files(files)}
    if ReportField.description in fields:
        return {"files_withheld": len(files)}
    return {}


def partner_payload(
    report: Report,
    profile: Profile,
    recipient: Recipient,
    *,
    delivery_id: str,
    report_ref: str,
    received_at: datetime,
    flood_suspected: bool = False,
    values: dict[str, FieldValues] | None = None,
    files: Sequence[StoredFile] = (),
) -> DeliveryPayload:
    """The outbox payload for one partner, checked against the contract as it is made.

    *values*: a dict the caller keeps for one report, so that its partners share the
    field values of each language instead of building them again."""
    partner = profile.partner(recipient.partner_id)
    lang = partner_language(partner, profile)
    is_intake = recipient.partner_id == profile.routing.intake
    fields = shared_fields(partner, report, is_intake)
    shared = _values(report, lang, profile, {} if values is None else values)
    return DeliveryPayload(
        delivery_id=delivery_id,
        report_ref=report_ref,
        partner_id=partner.id,
        agreement_id=partner.agreement.id,
        agreement_title=partner.agreement.title,
        rule_id=shared_rule(recipient.rule_id, profile, fields),
        language=lang,
        # The server still knows (the audit log keeps the rule; the report row, urgency).
        urgent=report.danger_now if ReportField.danger_now in fields else None,
        # To the minute, as every time tied to a report (form_service/times.py).
        received_at=received_at.replace(second=0, microsecond=0),
        fields=ReportFields(**{_NAMES[f]: shared[f] for f in fields}),
        flood_suspected=True if flood_suspected else None,
        **_files(files, partner, is_intake, fields),
    )
