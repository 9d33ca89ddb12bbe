"""What the program figures read of each report: its plaintext categories and times.

Never the content: area, setting and concern are ids from the profile's fixed lists, kept
in the clear at the report's minute (migration 2), and the times are to the minute. One
statement for both databases, run through the store's ``transaction()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from form_service.storage import Tx


@dataclass(frozen=True)
class ReportFacts:
    created_at: str
    area: str | None
    """None for a report stored before the categories were recorded."""
    setting: str | None
    concern: str | None
    outcome: str | None
    """None while the report is open."""
    acknowledged_at: str | None
    closed_at: str | None


async def reports_since(tx: Tx, since: str) -> list[ReportFacts]:
    """Every stored report received at or after *since* (a minute-precision UTC time)."""
    rows = await tx.fetch(
        "SELECT created_at, area, setting, concern, outcome, acknowledged_at, closed_at"
        " FROM reports WHERE created_at >= ? ORDER BY created_at",
        (since,),
    )
    return [ReportFacts(*row) for row in rows]
