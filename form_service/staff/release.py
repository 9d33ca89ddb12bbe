"""Releasing a report held for review: a person has read it and chooses its partners.

The partners of the rules with ``review: true`` are pre-selected; the intake user may add
or drop partners, and the audit trail records what was sent, to whom, and what changed from
the rules' choice. Each partner then gets exactly what its agreement allows, through the
outbox, as if the report had been routed to it at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from form_service.intake import Readers, outbox_entries, partner_view
from form_service.report import Report
from form_service.storage import Tx
from form_service.storage import attachments as stored_files
from form_service.storage import staff as records
from outreach.profile import Profile
from outreach.routing import Recipient

RELEASED_RULE = "released"
"""The rule id of a partner an intake user added at release, beyond the rules' choice."""


@dataclass(frozen=True)
class Release:
    sent: list[str]
    withheld: list[str]
    added: list[str]

    def detail(self) -> str:
        parts = [
            f"sent: {','.join(self.sent) or '-'}",
            f"withheld: {','.join(self.withheld) or '-'}",
            f"added: {','.join(self.added) or '-'}",
        ]
        return "; ".join(parts)


def received_at(content: dict[str, Any]) -> datetime:
    return datetime.strptime(content["received_at"], "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)


async def release(
    tx: Tx,
    case: records.Case,
    content: dict[str, Any],
    chosen: set[str],
    profile: Profile,
    readers: Readers,
    who: str,
    now: datetime,
) -> Release:
    """Send the report to the *chosen* partners not yet sent it; withhold the held rest."""
    current = {
        share.partner_id: share for share in await records.shares(tx, case.summary.report_ref)
    }
    known = {partner.id for partner in profile.partners} - {profile.routing.intake}
    chosen &= known
    to_send = sorted(p for p in chosen if p not in current or current[p].state != "shared")
    withheld = sorted(p for p, s in current.items() if s.state == "held" and p not in chosen)
    added = sorted(p for p in to_send if p not in current)
    recipients = [
        Recipient(p, current[p].rule_id if p in current else RELEASED_RULE) for p in to_send
    ]
    ref = case.summary.report_ref
    files = await stored_files.of_report(tx, ref)
    entries = outbox_entries(
        Report.from_content(content), profile, recipients, ref, received_at(content), files=files
    )
    for entry in entries:
        await records.add_delivery(tx, case.summary.id, entry, ref, now)
        view = partner_view(entry, readers)
        await records.mark_shared(tx, ref, entry.partner_id, entry.rule_id, view, who, now)
    for partner_id in withheld:
        await records.withhold(tx, ref, partner_id)
    return Release(to_send, withheld, added)
