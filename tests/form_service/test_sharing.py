"""Each partner's view of a report: its agreement's fields, contact only with consent."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from form_service.delivery.payload import parse_payload
from form_service.report import ReporterContact
from form_service.sharing import partner_payload, shared_fields
from outreach.loader import LoadedProfile
from outreach.routing import Recipient
from tests.form_service.samples import report

ALL = ["description", "location", "setting", "concern", "when", "people", "danger_now"]
REPORT = report(area="east")
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
DELIVERY_ID = "4f6c1e5a-0b7d-4c2e-9a31-6d2f8e7b5c40"

# (partner, consent given, contact given) -> fields the partner receives
TABLE = [
    ("intake-team", False, True, [*ALL, "contact"]),
    ("intake-team", True, True, [*ALL, "contact"]),
    ("intake-team", False, False, ALL),
    ("harbor-schools", False, True, ALL),
    ("harbor-schools", True, True, [*ALL, "contact"]),
    ("harbor-schools", True, False, ALL),
    ("eastwood-schools", True, True, ALL),  # agreement leaves contact out
    (
        "harbor-behavioral-health",
        True,
        True,
        ["description", "location", "concern", "when", "people", "danger_now", "contact"],
    ),
    (
        "harbor-behavioral-health",
        False,
        True,
        ["description", "location", "concern", "when", "people", "danger_now"],
    ),
    ("business-network", True, True, ["description", "location", "setting", "when", "danger_now"]),
    ("harbor-utilities", True, True, ["description", "location", "when", "danger_now"]),
]


@pytest.mark.parametrize(("partner_id", "consent", "contact", "expected"), TABLE)
def test_fields_per_partner(
    demo: LoadedProfile, partner_id: str, consent: bool, contact: bool, expected: list[str]
) -> None:
    report = replace(
        REPORT,
        consent_to_share_contact=consent,
        contact=REPORT.contact if contact else ReporterContact(),
    )
    payload = partner_payload(
        report,
        demo.profile,
        Recipient(partner_id, "some-rule"),
        delivery_id=DELIVERY_ID,
        report_ref="R-TEST0001",
        received_at=NOW,
    )
    assert payload.fields.names() == expected
    fields = shared_fields(demo.profile.partner(partner_id), report, partner_id == "intake-team")
    assert [f.value for f in fields] == expected


def test_agreement_without_consent_requirement_gets_contact(demo: LoadedProfile) -> None:
    profile = demo.profile
    partner = profile.partner("harbor-schools")
    relaxed = partner.model_copy(
        update={
            "agreement": partner.agreement.model_copy(update={"contact_requires_consent": False})
        }
    )
    assert shared_fields(relaxed, REPORT, is_intake=False)[-1].value == "contact"


def test_payload_shape(demo: LoadedProfile) -> None:
    payload = partner_payload(
        REPORT,
        demo.profile,
        Recipient("eastwood-schools", "schools-east"),
        delivery_id=DELIVERY_ID,
        report_ref="R-TEST0001",
        received_at=NOW,
    )
    assert payload.to_dict() == {
        "delivery_id": DELIVERY_ID,
        "report_ref": "R-TEST0001",
        "partner_id": "eastwood-schools",
        "agreement_id": "HC-ISA-02",
        "agreement_title": "School safety information-sharing agreement",
        "rule_id": "schools-east",
        "language": "es",
        "urgent": True,
        "received_at": "2026-03-04T05:06Z",
        "fields": {
            "description": REPORT.description,
            "location": {
                "area": "east",
                "area_name": "Valle de Eastwood",
                "detail": "Harbor High gym",
            },
            "setting": "school",
            "concern": "harm_others",
            "when": "Yesterday after class",
            "people": "A student in 10th grade",
            "danger_now": True,
        },
    }
    # What the outbox keeps reads back as the same payload.
    assert parse_payload(payload.to_json()) == payload


def test_intake_gets_contact_even_if_its_agreement_needs_consent(demo: LoadedProfile) -> None:
    intake = demo.profile.partner("intake-team")
    strict = intake.model_copy(
        update={"agreement": intake.agreement.model_copy(update={"contact_requires_consent": True})}
    )
    assert "contact" in [f.value for f in shared_fields(strict, REPORT, is_intake=True)]


def test_unknown_area_has_no_name(demo: LoadedProfile) -> None:
    payload = partner_payload(
        replace(REPORT, area="unknown"),
        demo.profile,
        Recipient("intake-team", "intake"),
        delivery_id=DELIVERY_ID,
        report_ref="R-TEST0001",
        received_at=NOW,
    )
    fields = payload.to_dict()["fields"]
    assert fields["location"] == {
        "area": "unknown",
        "area_name": "",
        "detail": "Harbor High gym",
    }
    assert fields["contact"] == {
        "name": "Ann Example",
        "phone": "555-0199",
        "email": "ann@example.org",
    }
