"""Validation of the report form: a pure function from the sent fields to a Report or errors.

Errors are localized sentences keyed by form field name, so the page can tie each one to
its field. Nothing here drops what the tipster typed: the page re-renders the same values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass

from babel.numbers import format_decimal

from form_service.report import Report, ReporterContact
from outreach.profile import UNKNOWN_AREA, Concern, Profile, Setting

MAX_DESCRIPTION = 10_000
MAX_TEXT = 2_000

# Form field names, in page order. "token" is checked before validation.
TEXT_FIELDS = (
    "description",
    "area_detail",
    "when",
    "people",
    "contact_name",
    "contact_phone",
    "contact_email",
)
MULTILINE_FIELDS = frozenset({"description", "people"})

ENCODED_BYTES_PER_CHARACTER = 12
"""The most a typed character can take in a form body: four bytes of UTF-8 (an emoji, a
rare CJK character), each percent-encoded as three."""


def largest_form_bytes() -> int:
    """The body of a form with every text field at its character limit, in any script, with
    room for the other fields: limits are counted in characters, so no such form is
    refused for its size in bytes."""
    characters = MAX_DESCRIPTION + MAX_TEXT * (len(TEXT_FIELDS) - 1)
    return characters * ENCODED_BYTES_PER_CHARACTER + 8 * 1024


CHOICE_FIELDS = ("area", "setting", "concern", "danger_now", "consent")
FORM_FIELDS = ("token", *TEXT_FIELDS, *CHOICE_FIELDS)
# The order errors are listed in the summary: the order of the fields on the page.
PAGE_ORDER = (
    "description",
    "area",
    "area_detail",
    "setting",
    "concern",
    "when",
    "people",
    "danger_now",
    "contact_name",
    "contact_phone",
    "contact_email",
    "consent",
)

_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")

Gettext = Callable[[str], str]


@dataclass(frozen=True)
class Invalid:
    errors: dict[str, str]


def clean_text(name: str, value: str) -> str:
    """Line breaks kept in multi-line fields, turned into spaces in one-line ones.

    A one-line field never holds CR or LF, so nothing downstream (mail headers included)
    can be split by what a tipster typed.
    """
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if name not in MULTILINE_FIELDS:
        value = value.replace("\n", " ").replace("\t", " ")
    return value


def _number(value: int, lang: str) -> str:
    return str(format_decimal(value, locale=lang.replace("-", "_")))


def _text_errors(values: Mapping[str, str], lang: str, _: Gettext) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name in TEXT_FIELDS:
        value = values.get(name, "")
        limit = MAX_DESCRIPTION if name == "description" else MAX_TEXT
        if len(value) > limit:
            errors[name] = _(
                "This is %(count)s characters long. Please shorten it to %(limit)s or fewer."
            ) % {"count": _number(len(value), lang), "limit": _number(limit, lang)}
    if "description" not in errors and not values.get("description", "").strip():
        errors["description"] = _("Tell us what happened or what you noticed.")
    email = values.get("contact_email", "").strip()
    if "contact_email" not in errors and email and not _EMAIL.match(email):
        errors["contact_email"] = _(
            "Enter an e-mail address like name@example.org, or leave this empty."
        )
    return errors


def _choice_errors(values: Mapping[str, str], profile: Profile, _: Gettext) -> dict[str, str]:
    errors: dict[str, str] = {}
    if values.get("area") not in {*profile.area_ids(), UNKNOWN_AREA}:
        errors["area"] = _("Choose where it happened, or “Not sure”.")
    if values.get("setting") not in {s.value for s in Setting}:
        errors["setting"] = _("Choose the kind of place, or “Somewhere else”.")
    if values.get("concern") not in {c.value for c in Concern}:
        errors["concern"] = _("Choose what you are worried about, or “Not sure”.")
    if values.get("danger_now") not in {"yes", "no"}:
        errors["danger_now"] = _("Tell us whether anyone is in danger right now.")
    if values.get("consent", "") not in {"", "yes"}:
        errors["consent"] = _("Tick the box, or leave it empty.")
    return errors


def validate_report(
    values: Mapping[str, str],
    unreadable: Set[str],
    profile: Profile,
    lang: str,
    gettext: Gettext,
) -> Report | Invalid:
    """A Report when every field is acceptable; otherwise one message per problem field."""
    _ = gettext
    values = {name: clean_text(name, values.get(name, "")) for name in FORM_FIELDS}
    errors = _text_errors(values, lang, _) | _choice_errors(values, profile, _)
    for name in unreadable:
        errors.setdefault(
            name,
            _(
                "Some characters could not be read and are shown as �. "
                "Please check this text, then send the report again."
            ),
        )
    if errors:
        ordered = {name: errors[name] for name in PAGE_ORDER if name in errors}
        return Invalid(ordered | errors)
    return Report(
        description=values["description"].strip(),
        area=values["area"],
        area_detail=values["area_detail"].strip(),
        setting=Setting(values["setting"]),
        concern=Concern(values["concern"]),
        when=values["when"].strip(),
        people=values["people"].strip(),
        danger_now=values["danger_now"] == "yes",
        contact=ReporterContact(
            name=values["contact_name"].strip(),
            phone=values["contact_phone"].strip(),
            email=values["contact_email"].strip(),
        ),
        consent_to_share_contact=values["consent"] == "yes",
        language=lang,
    )
