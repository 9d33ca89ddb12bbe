"""One sample report for every suite: as a Report, as the form sends it, as a partner gets it.

Tests change the sample with keywords (``report(area="east")``) rather than writing their own,
so a new field of Report is added here once.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from form_service.report import Report, ReporterContact
from outreach.profile import Concern, Setting

REPORT = Report(
    description="He said he would bring a knife to the gym on Friday.",
    area="north",
    area_detail="Harbor High gym",
    setting=Setting.school,
    concern=Concern.harm_others,
    when="Yesterday after class",
    people="A student in 10th grade",
    danger_now=True,
    contact=ReporterContact(name="Ann Example", phone="555-0199", email="ann@example.org"),
    consent_to_share_contact=False,
    language="en",
)

FORM_REPORT = replace(REPORT, danger_now=False, contact=ReporterContact())
"""What VALID_FORM files: no contact details, nobody in danger right now."""


def report(**changes: Any) -> Report:
    """The sample report with *changes*."""
    return replace(REPORT, **changes)


def form_fields(filed: Report) -> dict[str, str]:
    """The fields the report form sends for *filed*, token aside.

    Empty fields are left out, as an unticked box is; validation reads a missing field as empty.
    """
    fields = {
        "description": filed.description,
        "area": filed.area,
        "area_detail": filed.area_detail,
        "setting": filed.setting.value,
        "concern": filed.concern.value,
        "when": filed.when,
        "people": filed.people,
        "danger_now": "yes" if filed.danger_now else "no",
        "contact_name": filed.contact.name,
        "contact_phone": filed.contact.phone,
        "contact_email": filed.contact.email,
        "consent": "yes" if filed.consent_to_share_contact else "",
    }
    return {name: value for name, value in fields.items() if value}


VALID_FORM = form_fields(FORM_REPORT)

# The sample's fields in a delivery payload, as the service contract shapes them for the
# intake team (which gets every field) of the demo agency.
ALL_FIELDS: dict[str, Any] = {
    "description": REPORT.description,
    "location": {"area": REPORT.area, "area_name": "North Harbor", "detail": REPORT.area_detail},
    "setting": REPORT.setting.value,
    "concern": REPORT.concern.value,
    "when": REPORT.when,
    "people": REPORT.people,
    "danger_now": REPORT.danger_now,
    "contact": asdict(REPORT.contact),
}
