"""A partner learns nothing its agreement leaves out, on any channel: not that someone may
be in danger now (subject, X-Priority, Importance, body, JSON), not the concern (through a
routing rule's id such as "self-harm", or a label in any of the profile's languages).

A danger-now, self-harm report goes to a campus team whose agreement lists neither
``danger_now`` nor ``concern``, and to a crisis service whose agreement lists both; each
channel delivers to a real receiver, and every byte the campus team receives is searched.
"""

from __future__ import annotations

import asyncio
import base64
import json
import mailbox
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from form_service.delivery.channel import DeliverySettings
from form_service.delivery.dispatch import deliver, deliver_digest
from form_service.delivery.message import mail_gettext
from form_service.delivery.payload import DeliveryPayload, parse_payload
from form_service.intake import prepare_report
from form_service.report import ReporterContact
from outreach.i18n import translations
from outreach.loader import LoadedProfile
from outreach.profile import Concern, Profile, ReportField, RoutingRule, RuleMatch, Setting
from tests.form_service.delivery.conftest import smtp_delivery
from tests.form_service.delivery.reports import with_partner
from tests.form_service.delivery.servers import HTTPReceiver, SMTPServer, ThrowawayCA
from tests.form_service.samples import report

CAMPUS = "bayside-college"
"""Its agreement here lists neither danger_now nor concern."""
CRISIS = "harbor-behavioral-health"
"""Its agreement lists both."""
RULE = "self-harm"
SECRET = "whsec_" + base64.b64encode(b"a shared secret of 32 bytes!!!!!").decode()
NOW = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)

FILED = report(
    description="She gave her things away and wrote goodbye notes to her friends.",
    area="north",
    setting=Setting.home,
    concern=Concern.self_harm,
    danger_now=True,
    contact=ReporterContact(),
)
QUIET = report(
    description="A student talked about the weekend.",
    area="north",
    setting=Setting.home,
    concern=Concern.self_harm,
    danger_now=False,
    contact=ReporterContact(),
)
CAMPUS_FIELDS = [
    ReportField.description,
    ReportField.location,
    ReportField.setting,
    ReportField.when,
    ReportField.people,
]

# What would tell the campus team the concern or the urgency, in every language below.
_MAIL_STRINGS = (
    "Someone may be in danger now.",
    "Someone in danger now",
    "Self-harm or suicide",
    "Harm to others and self-harm",
    "Concern",
    "Routing rule",
)
_FORM_STRINGS = ("Someone may hurt themselves or take their own life",)


def _profile(demo: LoadedProfile) -> Profile:
    """The demo, with the campus team's agreement narrowed and the self-harm rule sending at
    once to both partners."""
    profile = demo.profile
    campus = profile.partner(CAMPUS)
    narrow = campus.agreement.model_copy(update={"fields": CAMPUS_FIELDS})
    partners = [
        campus.model_copy(update={"agreement": narrow}) if p.id == CAMPUS else p
        for p in profile.partners
    ]
    rule = RoutingRule(
        id=RULE, match=RuleMatch(concerns=[Concern.self_harm]), send_to=[CRISIS, CAMPUS]
    )
    rules = [rule if r.id == RULE else r for r in profile.routing.rules]
    routing = profile.routing.model_copy(update={"rules": rules})
    return profile.model_copy(update={"partners": partners, "routing": routing})


def _forbidden(profile: Profile) -> list[str]:
    words = ["danger", "urgent", "self-harm", "self_harm", "X-Priority: 1", "Importance: high"]
    for lang in profile.languages:
        _ = mail_gettext(lang)
        words += [_(text) for text in _MAIL_STRINGS]
        words += [translations(lang).gettext(text) for text in _FORM_STRINGS]
    return words


def _assert_nothing_revealed(profile: Profile, raw: bytes, text: str) -> None:
    """No forbidden word in the bytes as sent, nor in the text they decode to (a
    quoted-printable or JSON escape must not hide one)."""
    haystacks = [raw.decode("utf-8", "replace").casefold(), text.casefold()]
    for word in _forbidden(profile):
        for haystack in haystacks:
            assert word.casefold() not in haystack, word


def _stored_payloads(profile: Profile, *filed: Any) -> dict[str, list[DeliveryPayload]]:
    """Each partner's payloads as the outbox stores them (the real intake path), after
    checking the stored JSON of the campus team's copy."""
    payloads: dict[str, list[DeliveryPayload]] = {}
    for minute, one in enumerate(filed):
        received = NOW + timedelta(minutes=minute)
        new, _ = prepare_report(one, profile, str(uuid.uuid4()), "secret", received)
        for entry in new.outbox:
            if entry.partner_id == CAMPUS:
                stored = json.loads(entry.payload)
                assert "urgent" not in stored and "rule_id" not in stored
                _assert_nothing_revealed(profile, entry.payload.encode(), entry.payload)
            if entry.partner_id == CRISIS:
                assert entry.rule_id == RULE  # what the audit trail records
            payloads.setdefault(entry.partner_id, []).append(parse_payload(entry.payload))
    return payloads


def _settings(profile: Profile, data_dir: Path, **extra: Any) -> DeliverySettings:
    extra.setdefault("environ", {})
    return DeliverySettings(profile=profile, data_dir=data_dir, timeout=5, **extra)


def _send(payload: DeliveryPayload, settings: DeliverySettings) -> None:
    asyncio.run(deliver(payload, settings))


def _mail_text(mail: EmailMessage) -> str:
    """Every header value decoded and every text part's content."""
    parts = [f"{name}: {value}" for name, value in mail.items()]
    parts += [p.get_content() for p in mail.walk() if p.get_content_maintype() == "text"]
    return "\n".join(parts)


def _parsed(raw: bytes) -> EmailMessage:
    mail = message_from_bytes(raw, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    return mail


def _assert_entitled_mail(raw: bytes) -> None:
    mail = _parsed(raw)
    assert mail["X-Priority"] == "1" and mail["Importance"] == "high"
    text = _mail_text(mail)
    assert "someone may be in danger now" in mail["Subject"].casefold()
    assert f"Routing rule: {RULE}" in text and "Self-harm or suicide" in text


def _assert_campus_mail(profile: Profile, raw: bytes) -> None:
    mail = _parsed(raw)
    assert mail["X-Priority"] is None and mail["Importance"] is None
    text = _mail_text(mail)
    assert "goodbye notes" in text  # the message is there, only without what is left out
    _assert_nothing_revealed(profile, raw, text)


@pytest.mark.smtp
def test_email_reveals_nothing_outside_the_agreement(
    demo: LoadedProfile, data_dir: Path, smtp_server: Any, test_ca: ThrowawayCA
) -> None:
    server: SMTPServer = smtp_server(starttls=True)
    profile = _profile(demo)
    for partner_id in (CAMPUS, CRISIS):
        profile = with_partner(profile, partner_id, **smtp_delivery(server))
    payloads = _stored_payloads(profile, FILED)
    settings = _settings(profile, data_dir, tls_context=test_ca.client_context())
    _send(payloads[CAMPUS][0], settings)
    _send(payloads[CRISIS][0], settings)
    campus, crisis = server.messages
    _assert_campus_mail(profile, campus.data)
    _assert_entitled_mail(crisis.data)


def test_webhook_reveals_nothing_outside_the_agreement(
    demo: LoadedProfile, data_dir: Path, http_receiver: HTTPReceiver
) -> None:
    hook = {"url": http_receiver.url, "secret_env": "PARTNER_HOOK_SECRET"}
    profile = _profile(demo)
    for partner_id in (CAMPUS, CRISIS):
        profile = with_partner(profile, partner_id, channel="webhook", webhook=hook)
    payloads = _stored_payloads(profile, FILED)
    settings = _settings(profile, data_dir, environ={"PARTNER_HOOK_SECRET": SECRET})
    _send(payloads[CAMPUS][0], settings)
    _send(payloads[CRISIS][0], settings)
    campus, crisis = http_receiver.requests
    head = "\n".join(f"{name}: {value}" for name, value in campus.headers.items())
    data = json.loads(campus.body)
    assert "urgent" not in data and "rule_id" not in data
    assert data["fields"]["description"] == FILED.description
    text = head + "\n" + json.dumps(data, ensure_ascii=False)
    _assert_nothing_revealed(profile, head.encode() + b"\n" + campus.body, text)
    entitled = json.loads(crisis.body)
    assert entitled["urgent"] is True and entitled["rule_id"] == RULE
    assert entitled["fields"]["danger_now"] is True
    assert entitled["fields"]["concern"] == "self_harm"


def _maildir(profile: Profile) -> Profile:
    for folder in (CAMPUS, CRISIS):
        profile = with_partner(profile, folder, channel="maildir", maildir={"folder": folder})
    return profile


def _files(data_dir: Path, folder: str) -> list[bytes]:
    box = data_dir / "maildir" / folder / "new"
    return [path.read_bytes() for path in sorted(box.iterdir())]


def test_maildir_reveals_nothing_outside_the_agreement(demo: LoadedProfile, data_dir: Path) -> None:
    profile = _maildir(_profile(demo))
    payloads = _stored_payloads(profile, FILED)
    settings = _settings(profile, data_dir)
    _send(payloads[CAMPUS][0], settings)
    _send(payloads[CRISIS][0], settings)
    (campus,) = _files(data_dir, CAMPUS)
    (crisis,) = _files(data_dir, CRISIS)
    assert len(mailbox.Maildir(data_dir / "maildir" / CAMPUS, create=False)) == 1
    _assert_campus_mail(profile, campus)
    _assert_entitled_mail(crisis)


def _digest(payloads: Sequence[DeliveryPayload], settings: DeliverySettings) -> None:
    asyncio.run(deliver_digest(payloads, settings))


@pytest.mark.smtp
def test_email_digest_reveals_nothing_outside_the_agreement(
    demo: LoadedProfile, data_dir: Path, smtp_server: Any, test_ca: ThrowawayCA
) -> None:
    server: SMTPServer = smtp_server(starttls=True)
    profile = _profile(demo)
    for partner_id in (CAMPUS, CRISIS):
        profile = with_partner(profile, partner_id, **smtp_delivery(server))
    payloads = _stored_payloads(profile, QUIET, FILED)
    settings = _settings(profile, data_dir, tls_context=test_ca.client_context())
    _digest(payloads[CAMPUS], settings)
    _digest(payloads[CRISIS], settings)
    campus, crisis = server.messages
    _assert_campus_mail(profile, campus.data)
    assert "A student talked about the weekend." in _mail_text(_parsed(campus.data))
    _assert_entitled_mail(crisis.data)


def test_maildir_digest_reveals_nothing_outside_the_agreement(
    demo: LoadedProfile, data_dir: Path
) -> None:
    profile = _maildir(_profile(demo))
    payloads = _stored_payloads(profile, QUIET, FILED)
    settings = _settings(profile, data_dir)
    _digest(payloads[CAMPUS], settings)
    _digest(payloads[CRISIS], settings)
    (campus,) = _files(data_dir, CAMPUS)
    (crisis,) = _files(data_dir, CRISIS)
    _assert_campus_mail(profile, campus)
    text = _mail_text(_parsed(campus))
    # Not reordered by what the team may not know: the quiet report, received first, leads.
    assert text.index("talked about the weekend") < text.index("goodbye notes")
    _assert_entitled_mail(crisis)
    entitled = _mail_text(_parsed(crisis))
    assert entitled.index("goodbye notes") < entitled.index("talked about the weekend")
