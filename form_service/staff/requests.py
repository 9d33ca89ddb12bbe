"""Asking a partner, case by case: what a request may carry, and who can read it.

An intake user asks one partner one question about one report, under the partner's
standing agreement: only a legal basis the agreement lists, only report fields it lets a
request include (none by default), and the partner answers only with the categories of
information it lists. The question and the answer are sealed to the intake team's key,
that partner's users' key and the offline archive key: no other partner, and nobody
without a staff member's password, can read them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyrage

from form_service.report import Report
from form_service.sharing import area_name, shared_fields
from form_service.staff import notices
from form_service.staff.keys import Identity, encrypt_to
from form_service.storage import Tx
from form_service.storage import staff as records
from form_service.storage.requests import ENDINGS
from form_service.storage.staff import INTAKE_GROUP, PARTNER_PREFIX
from outreach.profile import Partner, Profile, ReportField, RequestTerms

TEXT_MAX_CHARS = 10_000
"""The longest question, reason or answer: a longer one is refused with the text kept."""
DUE_HOURS = (1, 4, 24, 72, 168)
URGENT_DUE_HOURS = 1
"""A report saying someone may be in danger now asks for an answer within the hour."""
ORDINARY_DUE_HOURS = 72


def terms_of(profile: Profile, partner_id: str) -> RequestTerms | None:
    """What the partner's agreement permits for requests; None: none (or no such partner)."""
    for partner in profile.partners:
        if partner.id == partner_id and partner.id != profile.routing.intake:
            return partner.agreement.requests
    return None


def askable(profile: Profile) -> list[Partner]:
    """The partners whose agreement permits requests, in the profile's order."""
    return [p for p in profile.partners if terms_of(profile, p.id) is not None]


def default_due_hours(urgent: bool) -> int:
    return URGENT_DUE_HOURS if urgent else ORDINARY_DUE_HOURS


@dataclass(frozen=True)
class Draft:
    """A request as the intake user filled it in, before any check."""

    partner_id: str
    basis_id: str
    fields: tuple[str, ...]
    question: str
    reason: str
    due_hours: str


def problems(draft: Draft, profile: Profile) -> list[str]:
    """Why the draft cannot be sent (message ids), in the order of the form; none: it can."""
    terms = terms_of(profile, draft.partner_id)
    if terms is None:
        return ["requests_not_permitted"]
    found = []
    if draft.basis_id not in {basis.id for basis in terms.bases}:
        found.append("basis_needed")
    if not set(draft.fields) <= {field.value for field in terms.fields}:
        found.append("field_not_allowed")
    found += _text_problems("question", draft.question)
    found += _text_problems("reason", draft.reason)
    if draft.due_hours not in {str(hours) for hours in DUE_HOURS}:
        found.append("due_needed")
    return found


def _text_problems(name: str, text: str) -> list[str]:
    if not text.strip():
        return [f"{name}_empty"]
    return [f"{name}_too_long"] if len(text) > TEXT_MAX_CHARS else []


def due_at(now: datetime, hours: str) -> datetime:
    return now + timedelta(hours=int(hours))


def included_values(
    content: dict[str, Any], partner: Partner, fields: tuple[str, ...], lang: str, profile: Profile
) -> dict[str, str]:
    """The chosen report fields as text, within what the agreement sends this partner at all
    (contact details only with the reporter's consent, where the agreement asks for it)."""
    report = Report.from_content(content)
    allowed = {field.value for field in shared_fields(partner, report, is_intake=False)}
    values = {}
    for name in fields:
        if name in allowed:
            values[name] = _field_text(ReportField(name), report, lang, profile)
    return values


def _field_text(field: ReportField, report: Report, lang: str, profile: Profile) -> str:
    if field is ReportField.location:
        place = area_name(report.area, lang, profile)
        return " – ".join(part for part in (place, report.area_detail) if part)
    if field is ReportField.contact:
        contact = report.contact
        return " ".join(part for part in (contact.name, contact.phone, contact.email) if part)
    if field is ReportField.danger_now:
        return "yes" if report.danger_now else "no"
    value = getattr(report, field.value)
    return str(getattr(value, "value", value))


async def readers_of(tx: Tx, profile: Profile, partner_id: str) -> list[str] | None:
    """The keys a request to *partner_id* is sealed to: the intake team's, the partner's
    users' and the archive's. None while the partner (or the team) has no enrolled user."""
    team = await records.group_recipient(tx, INTAKE_GROUP)
    partner = await records.group_recipient(tx, PARTNER_PREFIX + partner_id)
    if team is None or partner is None:
        return None
    return [team, partner, *profile.archive.age_recipients]


def seal(value: dict[str, Any], readers: list[str]) -> bytes:
    return encrypt_to(json.dumps(value, ensure_ascii=False).encode("utf-8"), readers)


@dataclass(frozen=True)
class Question:
    question: str
    reason: str
    """The threat that makes the request necessary: what a health-or-safety disclosure
    must record as its basis."""
    fields: dict[str, str]


@dataclass(frozen=True)
class Answer:
    text: str
    """The answer, or the reason for declining; empty for "nothing relevant"."""
    categories: tuple[str, ...]


def _opened(identity: Identity | None, sealed: bytes | None) -> dict[str, Any] | None:
    if identity is None or sealed is None:
        return None
    try:
        value: dict[str, Any] = json.loads(identity.decrypt(sealed))
    except pyrage.DecryptError:
        return None
    return value


def open_question(identity: Identity | None, sealed: bytes) -> Question | None:
    value = _opened(identity, sealed)
    if value is None:
        return None
    return Question(value["question"], value["reason"], dict(value["fields"]))


def open_answer(identity: Identity | None, sealed: bytes | None) -> Answer | None:
    value = _opened(identity, sealed)
    if value is None:
        return None
    return Answer(value["text"], tuple(value["categories"]))


def answer_problems(
    state: str, text: str, categories: tuple[str, ...], terms: RequestTerms
) -> list[str]:
    """Why the partner's answer cannot be recorded (message ids); none: it can."""
    if state not in ENDINGS:
        return ["unknown_action"]
    if len(text) > TEXT_MAX_CHARS:
        return ["answer_too_long"]
    if not set(categories) <= {category.id for category in terms.answers}:
        return ["category_not_allowed"]
    if state == "answered" and not text.strip():
        return ["answer_empty"]
    if state == "answered" and not categories:
        return ["categories_needed"]
    if state == "declined" and not text.strip():
        return ["decline_reason_needed"]
    return []


async def notify(
    tx: Tx,
    now: datetime,
    *,
    partner_id: str | None = None,
    asker_id: str | None = None,
    urgent: bool = False,
) -> None:
    """Tell a partner's users that a request waits (at the next pass when *urgent*), or the
    intake user who asked that it was answered: the staff notices' fixed, content-free
    text, queued in the caller's transaction."""
    if partner_id is not None:
        await notices.notify_role(tx, PARTNER_PREFIX + partner_id, now, urgent=urgent)
    if asker_id is not None:
        await notices.notify_users(tx, [asker_id], now)
