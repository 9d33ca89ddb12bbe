from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
from email import message_from_bytes, policy

import pyrage
import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from form_service.delivery.files import DeliveredFile
from form_service.delivery.message import (
    _FIELD_LABELS,
    _VALUE_LABELS,
    TEMPLATES,
    RenderedMessage,
    agency_sender,
    email_bytes,
    message_domain,
    render_message,
    to_email,
)
from form_service.delivery.payload import PayloadError, parse_payload
from outreach.i18n import catalog_path
from outreach.loader import LoadedProfile
from tests.form_service.delivery.factory import partner, payload
from tests.form_service.samples import ALL_FIELDS

HEADER_INJECTION = "x\r\nBcc: thief@evil.example\r\nX-Injected: yes\n\nbody"
EXPECTED_HEADERS = {
    "Subject",
    "From",
    "To",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "X-Outreach-Report",
    "Importance",
    "X-Priority",
    "Content-Type",
    "Content-Transfer-Encoding",
    "MIME-Version",
}


def _email(demo: LoadedProfile, data: dict[str, object], partner_id: str = "intake-team"):
    profile = demo.profile
    rendered = render_message(parse_payload(json.dumps(data)), profile.partner(partner_id), profile)
    mail = to_email(
        rendered,
        sender=agency_sender(profile),
        to=["poc@x.example.org"],
        domain=message_domain(profile),
    )
    return rendered, message_from_bytes(mail.as_bytes(), policy=policy.default)


def test_urgent_report_says_so_first_in_subject_and_body(demo: LoadedProfile) -> None:
    rendered, mail = _email(demo, payload())
    assert rendered.subject.startswith("Someone may be in danger now")
    assert rendered.body.startswith("Someone may be in danger now")
    assert mail["Subject"] == "Someone may be in danger now: report R-7K3M9Q2X"
    assert mail["Importance"] == "high"


def test_ordinary_report_has_no_urgency(demo: LoadedProfile) -> None:
    rendered, mail = _email(demo, payload(urgent=False))
    assert mail["Subject"] == "New report R-7K3M9Q2X"
    assert "danger now." not in rendered.body
    assert mail["Importance"] is None


def test_body_names_reference_rule_and_agreement(demo: LoadedProfile) -> None:
    data = payload(
        "sheriff-tau",
        rule_id="danger-now",
        agreement_id="HC-ISA-05",
        agreement_title="Law enforcement threat assessment agreement",
    )
    rendered, _ = _email(demo, data, "sheriff-tau")
    assert "Report reference: R-7K3M9Q2X" in rendered.body
    assert "Routing rule: danger-now" in rendered.body
    assert "HC-ISA-05 – Law enforcement threat assessment agreement" in rendered.body
    assert "Received: 2026-03-04 05:06 UTC" in rendered.body


def test_every_given_field_is_in_the_body(demo: LoadedProfile) -> None:
    rendered, _ = _email(demo, payload())
    for text in (
        "knife to the gym",
        "Harbor High gym",
        "North Harbor",
        "A school",
        "Harm to others",
        "Yesterday after class",
        "10th grade",
        "Ann Example",
        "555-0199",
        "ann@example.org",
    ):
        assert text in rendered.body


def test_only_the_payloads_fields_are_rendered(demo: LoadedProfile) -> None:
    fields = {key: ALL_FIELDS[key] for key in ("description", "location", "when", "danger_now")}
    rendered, _ = _email(demo, payload("harbor-utilities", fields=fields), "harbor-utilities")
    assert (
        "Fields shared under this agreement: What happened, Where, When, Someone in danger now"
        in rendered.body
    )
    for absent in ("Setting", "Concern", "People involved", "contact details", "Ann Example"):
        assert absent not in rendered.body


def test_unknown_payload_keys_are_refused(demo: LoadedProfile) -> None:
    with pytest.raises(PayloadError, match=r"fields\.ssn"):
        parse_payload(json.dumps(payload(fields={**ALL_FIELDS, "ssn": "078-05-1120"})))
    with pytest.raises(PayloadError, match="extra"):
        parse_payload(json.dumps({**payload(), "extra": "x"}))


def test_partner_language_is_used(demo: LoadedProfile) -> None:
    rendered, _ = _email(demo, payload("eastwood-schools", language="es"), "eastwood-schools")
    assert rendered.subject == "Alguien puede estar en peligro ahora: reporte R-7K3M9Q2X"
    assert rendered.body.startswith("Alguien puede estar en peligro ahora.")
    assert "Referencia del reporte: R-7K3M9Q2X" in rendered.body
    assert "Una escuela" in rendered.body
    assert "Sí" in rendered.body


@pytest.mark.parametrize(
    "path",
    [
        "description",
        "when",
        "people",
        "location.detail",
        "location.area_name",
        "contact.name",
        "contact.phone",
        "contact.email",
        "agreement_title",
        "agreement_id",
    ],
)
def test_no_field_can_inject_a_header(demo: LoadedProfile, path: str) -> None:
    data = payload()
    target = data if path.startswith("agreement") else data["fields"]
    *parents, key = path.split(".")
    for parent in parents:
        target = target[parent]
    target[key] = HEADER_INJECTION
    _, mail = _email(demo, data)
    assert set(mail.keys()) == EXPECTED_HEADERS
    assert mail["Bcc"] is None and mail["X-Injected"] is None
    assert mail["To"] == "poc@x.example.org"


@pytest.mark.parametrize("key", ["report_ref", "rule_id", "partner_id", "delivery_id", "language"])
def test_identifiers_with_line_breaks_are_refused(key: str) -> None:
    with pytest.raises(PayloadError, match=key):
        parse_payload(json.dumps(payload(**{key: "R-1\r\nBcc: thief@evil.example"})))


def test_message_id_comes_from_the_delivery_id(demo: LoadedProfile) -> None:
    data = payload()
    _, first = _email(demo, data)
    _, again = _email(demo, data)
    assert first["Message-ID"] == again["Message-ID"]
    assert first["Message-ID"] == f"<{data['delivery_id']}@prevent.harbor-county.example.org>"


def test_partner_with_age_key_gets_content_only_encrypted(demo: LoadedProfile) -> None:
    identity = pyrage.x25519.Identity.generate()
    base = demo.profile.partner("sheriff-tau")
    sealed_partner = partner(
        base,
        channel="maildir",
        maildir={"folder": "sheriff-tau"},
        age_recipient=str(identity.to_public()),
    )
    rendered = render_message(
        parse_payload(json.dumps(payload("sheriff-tau"))), sealed_partner, demo.profile
    )
    assert rendered.body.startswith("Someone may be in danger now.")
    assert "R-7K3M9Q2X" in rendered.body
    assert "age --decrypt -i key.txt report.txt.age" in rendered.body
    for secret in ("knife", "Ann Example", "555-0199", "Harbor High"):
        assert secret not in rendered.body
    assert rendered.sealed is not None
    text = rendered.sealed.decode("ascii")
    lines = text.splitlines()
    # The age spec's armor: strict base64 in lines of at most 64 between two markers.
    assert lines[0] == "-----BEGIN AGE ENCRYPTED FILE-----"
    assert lines[-1] == "-----END AGE ENCRYPTED FILE-----"
    assert all(len(line) <= 64 for line in lines[1:-1])
    clear = pyrage.decrypt(rendered.sealed, [identity]).decode()
    assert "knife to the gym" in clear and "Ann Example" in clear


def _sealed_for_sheriff(demo: LoadedProfile) -> tuple[pyrage.x25519.Identity, RenderedMessage]:
    """The sample report rendered for a maildir partner with an age key, and that key."""
    identity = pyrage.x25519.Identity.generate()
    sealed_partner = partner(
        demo.profile.partner("sheriff-tau"),
        channel="maildir",
        maildir={"folder": "s"},
        age_recipient=str(identity.to_public()),
    )
    rendered = render_message(
        parse_payload(json.dumps(payload("sheriff-tau"))), sealed_partner, demo.profile
    )
    return identity, rendered


def test_sealed_attachment_travels_in_the_email(demo: LoadedProfile) -> None:
    identity, rendered = _sealed_for_sheriff(demo)
    mail = to_email(rendered, sender=agency_sender(demo.profile), to=[], domain="x.example")
    raw = mail.as_bytes()
    assert b"knife" not in raw
    parsed = message_from_bytes(raw, policy=policy.default)
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_filename() == "report.txt.age"
    assert b"knife" in pyrage.decrypt(attachment.get_content(), [identity])


def test_files_travel_whole_and_in_order_beside_the_sealed_report(demo: LoadedProfile) -> None:
    _, rendered = _sealed_for_sheriff(demo)
    # Sizes that end a base64 line exactly, part-way, and hold the other file's marker.
    files = (
        DeliveredFile("photo-1.jpg", "image/jpeg", os.urandom(57 * 1000)),
        DeliveredFile("video-1.mp4", "video/mp4", b"outreach-file-0" + os.urandom(100_001)),
        DeliveredFile("photo-2.png", "image/png", b""),
    )
    rendered = dataclasses.replace(rendered, files=files)
    mail = to_email(rendered, sender=agency_sender(demo.profile), to=[], domain="x.example")
    raw = email_bytes(mail, files)
    parsed = message_from_bytes(raw, policy=policy.default)
    found = [
        (a.get_filename(), a.get_content_type(), a.get_content()) for a in parsed.iter_attachments()
    ]
    assert found[0][0] == "report.txt.age"
    assert found[1:] == [(f.name, f.media_type, f.data) for f in files]
    # Base64 in lines of 76 characters and the message's own line ends, as RFC 2045 asks.
    assert b"\r\n" + base64.encodebytes(files[0].data).replace(b"\n", b"\r\n") + b"\r\n--" in raw


def _mail_msgids() -> set[str]:
    ids = {*_FIELD_LABELS.values(), *_VALUE_LABELS.values(), "Name", "Phone", "E-mail"}
    ids |= {"Yes", "No"}
    for template in sorted(TEMPLATES.glob("*.txt")):
        found = extract_from_file("jinja2.ext:babel_extract", str(template))
        ids |= {message for _, message, _, _ in found}
    return ids


def test_every_mail_string_is_translated() -> None:
    with catalog_path("es").open("rb") as po:
        catalog = read_po(po, locale="es")
    translated = {m.id: m.string for m in catalog if m.context == "mail" and m.string}
    ids = _mail_msgids()
    assert len(ids) > 40
    assert sorted(ids - set(translated)) == []
    for msgid in ids:
        names = set(re.findall(r"%\((\w+)\)s", msgid))
        assert set(re.findall(r"%\((\w+)\)s", translated[msgid])) == names, msgid


def test_reused_header_values_are_checked_too(demo: LoadedProfile) -> None:
    rendered, _ = _email(demo, payload())
    with pytest.raises(ValueError, match="linefeed or carriage return"):
        to_email(
            rendered,
            sender=agency_sender(demo.profile),
            to=["poc@x.example.org\r\nBcc: thief@evil.example"],
            domain="x.example",
        )
