"""The record a partner keeps of requests for its information and of what it disclosed.

One entry per request the partner received in a month: who asked, for whom, under which
agreement and legal basis, the threat stated as the basis, which report fields came with
the question, and how the partner answered: when, by whom, and which categories of
information it disclosed. Schools disclosing under FERPA's health-or-safety emergency
exception must record the threat and the parties who received the information
(34 CFR 99.32(a)(5)). The entries are opened with the partner's own key, so only its
users (and the intake team, and the archive key) can make the record.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

from form_service.staff.keys import Identity
from form_service.staff.requests_views import RequestView, request_view
from form_service.storage import Tx
from form_service.storage.requests import requests_asked_between
from outreach.profile import Profile, localize

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_bounds(month: str) -> tuple[str, str] | None:
    """The first minute of *month* (YYYY-MM) and of the month after; None if not a month."""
    match = _MONTH.match(month)
    if match is None:
        return None
    year, number = int(match.group(1)), int(match.group(2))
    after = f"{year + 1:04d}-01" if number == 12 else f"{year:04d}-{number + 1:02d}"
    return f"{month}-01T00:00Z", f"{after}-01T00:00Z"


@dataclass(frozen=True)
class Record:
    partner_id: str
    partner_name: str
    month: str
    recipient: str
    """Who receives what the partner discloses: the agency's intake team."""
    entries: list[RequestView]


async def read_record(
    tx: Tx,
    profile: Profile,
    partner_id: str,
    month: str,
    identity: Identity | None,
    lang: str,
) -> Record:
    start, end = month_bounds(month) or ("", "")
    found = await requests_asked_between(tx, partner_id, start, end)
    default = profile.default_language
    partner = profile.partner(partner_id)
    intake = profile.routing.intake
    team = localize(profile.partner(intake).name, lang, default) if intake else ""
    agency = localize(profile.agency.name, lang, default)
    return Record(
        partner_id,
        localize(partner.name, lang, default),
        month,
        f"{agency}: {team}" if team else agency,
        [request_view(item, profile, lang, identity, None) for item in found],
    )


CSV_HEADER = (
    "request",
    "asked_at",
    "asked_by",
    "received_by",
    "agreement",
    "legal_basis",
    "threat_stated",
    "report",
    "fields_included",
    "question",
    "state",
    "answered_at",
    "answered_by",
    "categories_disclosed",
)


def _cell(value: Any) -> str:
    """A cell a spreadsheet shows as text: never a formula (=, +, -, @ first)."""
    text = str(value)
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


def as_csv(record: Record) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for entry in record.entries:
        item, question = entry.request, entry.question
        row = (
            item.id,
            item.asked_at,
            item.asked_by,
            record.recipient,
            f"{item.agreement_id} {entry.agreement_title}",
            f"{item.basis_id} {entry.basis_title}",
            question.reason if question else "",
            item.report_ref,
            ",".join(item.fields),
            question.question if question else "",
            item.state,
            item.answered_at or "",
            item.answered_by or "",
            "; ".join(entry.category_titles),
        )
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()
