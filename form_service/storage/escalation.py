"""The escalation of danger-now reports nobody has acknowledged, written once for both databases.

A report's ``escalation_step`` counts the notices sent about it; ``escalation_due_at`` is the
minute the next one is due (times to the minute, like the report's own). A step is claimed by
moving the count on from the value that was read, so of several workers only one sends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from form_service.storage import Tx
from form_service.times import minute_iso

_WAITING = "purged_at IS NULL AND urgent = 1 AND acknowledged_at IS NULL AND stage <> 'closed'"


@dataclass(frozen=True)
class DueStep:
    report_ref: str
    step: int
    """Notices already sent about the report; the one due now is number step + 1."""


async def due_steps(tx: Tx, now: datetime, after_minutes: int, limit: int = 500) -> list[DueStep]:
    """Waiting danger-now reports whose next notice is due at *now*.

    The first is due once the report's minute lies wholly more than *after_minutes* back, so
    never early; later ones at their due minute."""
    first_before = minute_iso(now - timedelta(minutes=after_minutes))
    rows = await tx.fetch(
        "SELECT report_ref, escalation_step FROM reports WHERE purged_at IS NULL"
        " AND urgent = 1 AND acknowledged_at IS NULL AND stage <> 'closed'"
        " AND ((escalation_step = 0 AND created_at < ?)"
        " OR (escalation_step > 0 AND escalation_due_at <= ?)) ORDER BY id LIMIT ?",
        (first_before, minute_iso(now), limit),
    )
    return [DueStep(str(ref), int(step)) for ref, step in rows]


async def claim_step(tx: Tx, due: DueStep, next_due: datetime) -> bool:
    """Take the step for this worker; False when another took it or the report was
    acknowledged or closed since it was read."""
    changed = await tx.run(
        "UPDATE reports SET escalation_step = ?, escalation_due_at = ?"
        " WHERE report_ref = ? AND escalation_step = ? AND purged_at IS NULL"
        " AND urgent = 1 AND acknowledged_at IS NULL AND stage <> 'closed'",
        (due.step + 1, minute_iso(next_due), due.report_ref, due.step),
    )
    return changed == 1


async def bring_forward(tx: Tx, report_ref: str, step: int, due: datetime) -> None:
    """A notice that could not be sent: the next contact's turn comes at *due* instead."""
    await tx.run(
        "UPDATE reports SET escalation_due_at = ? WHERE report_ref = ? AND escalation_step = ?",
        (minute_iso(due), report_ref, step),
    )
