"""Validation: one localized message per problem field, never a lost character."""

from __future__ import annotations

from typing import Any

import pytest

from form_service.report import Report, ReporterContact
from form_service.report_form import Invalid, clean_text, validate_report
from outreach.i18n import translations
from outreach.loader import LoadedProfile

from .samples import FORM_REPORT, VALID_FORM, form_fields, report


def check(demo: LoadedProfile, lang: str = "en", unreadable: Any = (), **fields: str) -> Any:
    values = {**VALID_FORM, **fields}
    return validate_report(
        values, frozenset(unreadable), demo.profile, lang, translations(lang).gettext
    )


def errors(demo: LoadedProfile, **kwargs: Any) -> dict[str, str]:
    result = check(demo, **kwargs)
    assert isinstance(result, Invalid), result
    return result.errors


@pytest.mark.parametrize("filed", [FORM_REPORT, report(consent_to_share_contact=True)])
def test_a_valid_report(demo: LoadedProfile, filed: Report) -> None:
    assert check(demo, **form_fields(filed)) == filed


def test_not_sure_and_optional_fields_left_empty(demo: LoadedProfile) -> None:
    report = check(demo, area="unknown", area_detail="", when="", people="", concern="not_sure")
    assert isinstance(report, Report)
    assert report.area == "unknown" and report.contact == ReporterContact()


@pytest.mark.parametrize("description", ["", "   ", "\n\t \r\n"])
def test_description_is_required(demo: LoadedProfile, description: str) -> None:
    assert errors(demo, description=description) == {
        "description": "Tell us what happened or what you noticed."
    }


@pytest.mark.parametrize(
    ("field", "limit"),
    [("description", 10_000), ("people", 2_000), ("when", 2_000), ("contact_name", 2_000)],
)
def test_length_limits(demo: LoadedProfile, field: str, limit: int) -> None:
    assert isinstance(check(demo, **{field: "x" * limit}), Report)
    message = errors(demo, **{field: "x" * (limit + 1)})[field]
    assert f"{limit + 1:,}" in message and f"{limit:,}" in message


def test_length_message_in_spanish(demo: LoadedProfile) -> None:
    message = errors(demo, lang="es", description="x" * 10_001)["description"]
    assert "10.001" in message and "10.000" in message
    assert "caracteres" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("area", "atlantis"),
        ("area", ""),
        ("setting", "spaceship"),
        ("setting", ""),
        ("concern", "everything"),
        ("danger_now", "maybe"),
        ("danger_now", ""),
        ("consent", "of course"),
    ],
)
def test_unknown_choices_are_refused(demo: LoadedProfile, field: str, value: str) -> None:
    assert list(errors(demo, **{field: value})) == [field]


def test_bad_email(demo: LoadedProfile) -> None:
    assert list(errors(demo, contact_email="not an address")) == ["contact_email"]


def test_errors_come_in_page_order(demo: LoadedProfile) -> None:
    found = errors(demo, danger_now="", description="", setting="x", area="y")
    assert list(found) == ["description", "area", "setting", "danger_now"]


def test_unreadable_text_gets_a_message(demo: LoadedProfile) -> None:
    found = errors(demo, unreadable={"people"}, people="caf\ufffd")
    assert "could not be read" in found["people"]


def test_messages_are_localized(demo: LoadedProfile) -> None:
    broken = {"description": " ", "area": "", "danger_now": ""}
    spanish = errors(demo, lang="es", **broken)
    english = errors(demo, lang="en", **broken)
    assert spanish["description"] == "Cuéntenos qué pasó o qué notó."
    assert spanish.keys() == english.keys()
    assert all(spanish[name] != english[name] for name in spanish)


@pytest.mark.parametrize(
    "field", ["area_detail", "when", "contact_name", "contact_phone", "contact_email"]
)
def test_line_breaks_never_reach_one_line_fields(demo: LoadedProfile, field: str) -> None:
    value = "evil\r\nBcc: victim@example.org\rX\nY"
    cleaned = clean_text(field, value)
    assert "\r" not in cleaned and "\n" not in cleaned
    assert cleaned == "evil Bcc: victim@example.org X Y"


def test_line_breaks_are_kept_in_the_description(demo: LoadedProfile) -> None:
    report = check(demo, description="first line\r\nsecond\rthird")
    assert isinstance(report, Report)
    assert report.description == "first line\nsecond\nthird"


def test_crlf_in_every_field_still_validates_without_crlf(demo: LoadedProfile) -> None:
    choices = {"area", "setting", "concern", "danger_now"}
    fields = {k: v + "\r\nInjected: yes" for k, v in VALID_FORM.items() if k not in choices}
    report = check(demo, contact_name="A\r\nB", contact_phone="1\r\n2", **fields)
    assert isinstance(report, Report)
    for value in (report.area_detail, report.when, report.contact.name, report.contact.phone):
        assert "\r" not in value and "\n" not in value
