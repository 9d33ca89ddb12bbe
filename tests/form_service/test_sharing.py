"""Each partner's view of a report: its agreement's fields, contact only with consent."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from form_service.delivery.payload import parse_payload
from form_service.report import ReporterContact
from form_service.sharing import partner_payload, shared_fields
from outreach.loader import LoadedProfile
from outreach.profile import Profile, ReportField
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


# (partner, its agreement's fields) -> whether its copy says urgent, and which rule it names
WHAT_THE_RULE_SAYS = [
    ("intake-team", "intake", True, "intake"),
    ("harbor-behavioral-health", "self-harm", True, "self-harm"),  # concern and danger_now
    ("harbor-utilities", "infrastructure", True, None),  # no concern: no rule
    ("business-network", "workplaces-and-venues", True, None),
    ("eastwood-schools", "schools-east", True, "schools-east"),
    # A rule's id names its conditions: not to a partner that shares the concern but not
    # whether someone is in danger now, nor the place to one that does not share the setting.
    ("no-danger", "danger-now", None, None),
    ("harbor-behavioral-health", "workplaces-and-venues", True, None),
]


@pytest.mark.parametrize(("partner_id", "rule_id", "urgent", "named"), WHAT_THE_RULE_SAYS)
def test_urgency_and_rule_only_with_their_fields(
    demo: LoadedProfile, partner_id: str, rule_id: str, urgent: bool | None, named: str | None
) -> None:
    profile = demo.profile
    if partner_id == "no-danger":
        partner_id = "sheriff-tau"
        profile = _narrowed(profile, partner_id, ReportField.danger_now)
    payload = partner_payload(
        REPORT,  # someone may be in danger now
        profile,
        Recipient(partner_id, rule_id),
        delivery_id=DELIVERY_ID,
        report_ref="R-TEST0001",
        received_at=NOW,
    )
    assert payload.urgent is urgent and payload.rule_id == named
    stored = payload.to_dict()
    assert ("urgent" in stored) is (urgent is not None)
    assert ("rule_id" in stored) is (named is not None)


def _narrowed(profile: Profile, partner_id: str, left_out: ReportField) -> Profile:
    chosen = profile.partner(partner_id)
    fields = [f for f in chosen.agreement.fields if f is not left_out]
    agreement = chosen.agreement.model_copy(update={"fields": fields})
    partners = [
        chosen.model_copy(update={"agreement": agreement}) if p.id == partner_id else p
        for p in profile.partners
    ]
    return profile.model_copy(update={"partners": partners})


def test_a_payload_stored_by_an_earlier_version_loses_what_its_fields_do_not_tell() -> None:
    stored = {
        "delivery_id": DELIVERY_ID,
        "report_ref": "R-TEST0001",
        "partner_id": "harbor-utilities",
        "agreement_id": "HC-ISA-07",
        "agreement_title": "Critical infrastructure protection agreement",
        "rule_id": "self-harm",
        "language": "en",
        "urgent": True,
        "received_at": "2026-03-04T05:06Z",
        "fields": {"description": "x", "when": "y"},
    }
    payload = parse_payload(json.dumps(stored))
    assert payload.urgent is None and payload.rule_id is None
    assert "urgent" not in payload.to_json() and "self-harm" not in payload.to_json()
