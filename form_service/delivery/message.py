"""The message a partner receives, rendered from templates/mail/ in the partner's language.

Text templates are not HTML, so autoescaping is off; nothing rendered here ever becomes a
header except the subject, which is folded to one line of printable text and then handed
to the stdlib e-mail API, whose SMTP policy refuses any header value with CR or LF.
"""

from __future__ import annotations

import base64
import functools
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2

from form_service.delivery.files import DeliveredFile, file_name
from form_service.delivery.payload import DeliveryPayload, ReportFields
from form_service.delivery.sealing import seal
from outreach.assets import templates
from outreach.i18n import N_, translations
from outreach.profile import Partner, Profile, localize

TEMPLATES = templates("mail")
SEALED_NAME = "report.txt.age"
CONTEXT = "mail"
_DIGEST_NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-5e7f-9c01-2d3e4f5a6b7c")


# Unfolded headers: a folded Message-ID reads back with a leading space in some parsers,
# and a receiver matching duplicates by it would then miss them. The body is always
# quoted-printable, so this limit applies to headers only.
_POLICY = SMTP.clone(max_line_length=998)
# C0/C1 controls other than tab and newline: terminal escapes or stray CRs in a mail body.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")

_FIELD_LABELS = {
    "description": N_("What happened"),
    "location": N_("Where"),
    "setting": N_("Setting"),
    "concern": N_("Concern"),
    "when": N_("When"),
    "people": N_("People involved"),
    "danger_now": N_("Someone in danger now"),
    "contact": N_("Reporter's contact details"),
}
_VALUE_LABELS = {
    "school": N_("A school"),
    "college": N_("A college or university"),
    "workplace": N_("A workplace"),
    "public_place": N_("A public place or event"),
    "critical_infrastructure": N_("Critical infrastructure (water, power, transit)"),
    "online": N_("Online"),
    "home": N_("A home"),
    "other": N_("Somewhere else"),
    "harm_others": N_("Harm to others"),
    "self_harm": N_("Self-harm or suicide"),
    "both": N_("Harm to others and self-harm"),
    "not_sure": N_("Not sure"),
    "unknown": N_("Not known"),
}


@dataclass(frozen=True)
class RenderedMessage:
    """One delivery (or a flood digest of several) as text: what every channel sends."""

    delivery_id: str
    report_ref: str
    """The report's reference; a digest's references, comma-separated; empty for a notice
    to staff, which names no report."""
    urgent: bool
    subject: str
    body: str
    sealed: bytes | None = None
    """The report, age-encrypted and armored, when the partner has an age key."""
    to: tuple[str, ...] = ()
    """The To of a message whose channel has no recipients of its own (a maildir holding
    notices to several staff users); e-mail goes to its settings' ``to``."""
    files: tuple[DeliveredFile, ...] = ()
    """The report's files, as attachments (sealed to the partner's key when it has one)."""


@functools.cache
def mail_templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=False,  # noqa: S701 - plain text; no value of it is ever HTML or a header
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        auto_reload=False,  # the kit's own templates: no stat() per message
    )


def mail_gettext(lang: str, agency_locale: Path | None = None) -> Callable[[str], str]:
    """Mail strings of *lang* (the agency's own ones first); their msgctxt keeps them apart
    from the site's strings."""
    catalog = translations(lang, agency_locale)
    return functools.partial(catalog.pgettext, CONTEXT)


def one_line(text: str, limit: int = 200) -> str:
    """Printable text on one line: safe for a header even before the e-mail API checks it."""
    return " ".join(_CONTROLS.sub(" ", text).split())[:limit]


def _clean(text: str) -> str:
    return _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def _items(fields: ReportFields, _: Callable[[str], str]) -> list[tuple[str, str]]:
    def label(value: str) -> str:
        return _(_VALUE_LABELS[value]) if value in _VALUE_LABELS else value

    items: list[tuple[str, str]] = []
    for name in fields.names():
        value = getattr(fields, name)
        if name == "location":
            where = label(value.area) if value.area == "unknown" else value.area_name or value.area
            text = "\n".join(part for part in (where, _clean(value.detail)) if part)
        elif name == "contact":
            parts = [(_("Name"), value.name), (_("Phone"), value.phone), (_("E-mail"), value.email)]
            text = "\n".join(f"{key}: {_clean(v)}" for key, v in parts if v)
        elif name == "danger_now":
            text = _("Yes") if value else _("No")
        elif name in {"setting", "concern"}:
            text = label(value)
        else:
            text = _clean(value)
        items.append((_(_FIELD_LABELS[name]), text or "—"))
    return items


def _report_context(payload: DeliveryPayload, _: Callable[[str], str]) -> dict[str, Any]:
    """What the templates show of one report: its payload, which holds only the fields the
    partner's agreement (and the reporter's consent) allow; urgency and the routing rule
    too only when the agreement shares what they tell (form_service/sharing.py)."""
    return {
        "urgent": bool(payload.urgent),
        "report_ref": payload.report_ref,
        "received": payload.received_at.strftime("%Y-%m-%d %H:%M UTC"),
        "rule_id": payload.rule_id,
        "agreement_id": one_line(payload.agreement_id),
        "agreement_title": one_line(payload.agreement_title, 500),
        "field_labels": [_(_FIELD_LABELS[name]) for name in payload.fields.names()],
        "items": _items(payload.fields, _),
        # Named, not attached, in a digest (render_message attaches them).
        "files": [file_name(f) for f in payload.attachments or ()],
        "files_withheld": payload.files_withheld or 0,
    }


def _partner_context(partner: Partner, profile: Profile, lang: str) -> dict[str, Any]:
    default = profile.default_language
    return {
        "_": mail_gettext(lang, profile.interface_locale),
        "emergency_number": profile.emergency_number,
        "partner_name": localize(partner.name, lang, default),
        "agency_name": localize(profile.agency.name, lang, default),
    }


def render_message(
    payload: DeliveryPayload,
    partner: Partner,
    profile: Profile,
    files: Sequence[DeliveredFile] = (),
) -> RenderedMessage:
    """The partner's view of one report; sealed to the partner's age key when it has one.
    *files*: the report's files the payload lists, ready to attach (delivery/files.py)."""
    context = _partner_context(partner, profile, payload.language)
    context |= _report_context(payload, context["_"])
    context["files"] = [f.name for f in files]
    context["flood_suspected"] = bool(payload.flood_suspected)
    env = mail_templates()
    subject = one_line(env.get_template("subject.txt").render(context))
    report = env.get_template("report.txt").render(context)
    head = (payload.delivery_id, payload.report_ref, bool(payload.urgent), subject)
    recipient = partner.delivery.age_recipient
    if recipient is None:
        return RenderedMessage(*head, report, files=tuple(files))
    notice = env.get_template("sealed.txt").render(context)
    sealed = seal(report.encode("utf-8"), recipient)
    return RenderedMessage(*head, notice, sealed, files=tuple(files))


def render_digest(
    payloads: Sequence[DeliveryPayload], partner: Partner, profile: Profile
) -> RenderedMessage:
    """Several flood-flagged reports for one partner as one message, urgent ones first.

    Each report shows only its own payload, so only what the agreement allows. Its files
    are named, not attached: a flood's photos would make the one message the flood's size;
    the partner asks the team for the ones it needs. The digest's
    id is derived from its delivery ids: the same set of deliveries sent again after a crash
    keeps the same Message-ID."""
    ordered = sorted(payloads, key=lambda p: (not p.urgent, p.received_at, p.report_ref))
    context = _partner_context(partner, profile, ordered[0].language)
    reports = [_report_context(p, context["_"]) for p in ordered]
    urgent = sum(1 for r in reports if r["urgent"])
    context |= {"reports": reports, "count": len(reports), "urgent_count": urgent}
    env = mail_templates()
    subject = one_line(env.get_template("digest_subject.txt").render(context))
    text = env.get_template("digest.txt").render(context)
    refs = ", ".join(p.report_ref for p in ordered)
    head = (digest_id([p.delivery_id for p in ordered]), refs, urgent > 0, subject)
    recipient = partner.delivery.age_recipient
    if recipient is None:
        return RenderedMessage(*head, text)
    notice = env.get_template("digest_sealed.txt").render(context)
    return RenderedMessage(*head, notice, seal(text.encode("utf-8"), recipient))


def digest_id(delivery_ids: Sequence[str]) -> str:
    return str(uuid.uuid5(_DIGEST_NAMESPACE, "\n".join(sorted(delivery_ids))))


def message_domain(profile: Profile) -> str:
    return urlsplit(str(profile.agency.site_url)).hostname or "localhost"


def message_id(delivery_id: str, domain: str) -> str:
    """Stable across retries, so a receiver can drop a second copy of one delivery."""
    return f"<{delivery_id}@{domain}>"


def to_email(
    message: RenderedMessage, *, sender: Address, to: Sequence[str], domain: str
) -> EmailMessage:
    """The message with headers built only through the e-mail API (no header injection)."""
    mail = EmailMessage(policy=_POLICY)
    mail["Subject"] = message.subject
    mail["From"] = str(sender)
    if to:
        mail["To"] = ", ".join(to)
    # To the minute: a message sent a moment after a report must not time it to the second.
    mail["Date"] = format_datetime(_now().replace(second=0, microsecond=0))
    mail["Message-ID"] = message_id(message.delivery_id, domain)
    mail["Auto-Submitted"] = "auto-generated"
    if message.report_ref:
        mail["X-Outreach-Report"] = message.report_ref
    if message.urgent:
        mail["Importance"] = "high"
        mail["X-Priority"] = "1"
    mail.set_content(message.body, charset="utf-8", cte="quoted-printable")
    if message.sealed is not None:
        mail.add_attachment(
            message.sealed, maintype="application", subtype="octet-stream", filename=SEALED_NAME
        )
    for number, file in enumerate(message.files):
        maintype, _, subtype = file.media_type.partition("/")
        mail.add_attachment(
            _file_marker(number), maintype=maintype, subtype=subtype, filename=file.name
        )
    if mail.is_multipart():
        # Every part is quoted-printable or base64, neither of which can hold "=_": with
        # this boundary the generator need not search the whole message for a clash.
        mail.set_boundary(f"=_outreach_{uuid.uuid4().hex}")
    return mail


def _file_marker(number: int) -> bytes:
    return f"outreach-file-{number}".encode()


def email_bytes(mail: EmailMessage, files: Sequence[DeliveredFile] = ()) -> bytes:
    """*mail* as it goes on the wire, with *files* in place of their markers.

    The e-mail package writes base64 a line at a time in Python and would take a good part
    of a second over a phone video, holding the interpreter lock the form's requests need;
    here each file is encoded in one call, and the package writes only headers and text."""
    rest = mail.as_bytes()
    linesep = _POLICY.linesep.encode()
    pieces = []
    for number, file in enumerate(files):
        marker = base64.b64encode(_file_marker(number)) + linesep
        before, found, rest = rest.partition(marker)
        if not found:
            raise ValueError(f"no place for file {number} in the message")
        pieces += [before, base64.encodebytes(file.data).replace(b"\n", linesep)]
    return b"".join([*pieces, rest])


def agency_sender(profile: Profile) -> Address:
    return sender_address(profile.agency.short_name, profile.agency.email)


def sender_address(display_name: str, addr_spec: str) -> Address:
    return Address(display_name=one_line(display_name), addr_spec=addr_spec)


def _now() -> datetime:
    return datetime.now(UTC)
