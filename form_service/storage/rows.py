"""The values both stores write and read with the shared statements (statements.py).

Where an operation is a fixed series of statements once its row is found, the series is
built here as steps, (statement, values) pairs, and each backend only runs them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from form_service.storage import AuditEvent, ClaimedDelivery, NewReport, OutboxEntry, Step
from form_service.storage.statements import AUDIT_INSERT, INTAKE_DELIVERED, MARK_FAILED
from form_service.times import STAMP_FORMAT, minute_iso, minute_start_stamp, stamp


def optional_bytes(value: Any) -> bytes | None:
    """A BLOB column's value as bytes (PostgreSQL's driver gives memoryview), None kept."""
    return None if value is None else bytes(value)


def audit_row(at: str, report_ref: str, event: str, **cols: Any) -> tuple[Any, ...]:
    """Values for AUDIT_INSERT; the columns not named are NULL."""
    names = ("partner_id", "rule_id", "agreement_id", "fields", "outcome")
    return (at, report_ref, event, *(cols.get(name) for name in names))


def report_row(report: NewReport, at: str) -> tuple[Any, ...]:
    """Values for REPORT_INSERT; *at* is the report's minute."""
    return (
        report.report_ref,
        report.receipt_hash,
        report.token_id,
        at,
        report.content_age,
        int(report.urgent),
        *(report.categories or (None, None, None)),
        report.receipt_sealed,
        report.thread_recipient,
        report.thread_sealed,
    )


def new_report_rows(
    report: NewReport, report_id: int, at: str, created: str
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(outbox rows, audit rows) for a report just inserted as *report_id*: one outbox row
    per partner, and the 'received' event followed by one 'routed' event per partner.

    *at* (audit) and *created* (outbox: created, and first due) are both the report's
    minute, *created* written in the outbox's fixed-width form that scheduling compares: a
    finer time of any row written with the report would time the report itself."""
    outbox = [outbox_row(entry, report_id, created) for entry in report.outbox]
    audit = [audit_row(at, report.report_ref, "received")]
    audit += [routed_row(entry, report.report_ref, at) for entry in report.outbox]
    return outbox, audit


def outbox_row(entry: OutboxEntry, report_id: int, created: str) -> tuple[Any, ...]:
    """Values for OUTBOX_INSERT: one partner's copy, first due when it is created, or its
    hold later."""
    due = created
    if entry.hold_seconds:
        start = datetime.strptime(created, STAMP_FORMAT).replace(tzinfo=UTC)
        due = stamp(start + timedelta(seconds=entry.hold_seconds))
    return (
        entry.delivery_id,
        report_id,
        entry.partner_id,
        entry.rule_id,
        entry.agreement_id,
        entry.payload,
        due,
        created,
        int(entry.is_intake),
    )


def routed_row(entry: OutboxEntry, report_ref: str, at: str) -> tuple[Any, ...]:
    """Values for AUDIT_INSERT: which partner got which fields, under which rule."""
    return audit_row(
        at,
        report_ref,
        "routed",
        partner_id=entry.partner_id,
        rule_id=entry.rule_id,
        agreement_id=entry.agreement_id,
        fields=",".join(entry.fields),
    )


def share_rows(report: NewReport, at: str) -> list[tuple[Any, ...]]:
    """Values for SHARE_INSERT: each partner's part, held or shared at the report's minute."""
    return [
        (
            report.report_ref,
            share.partner_id,
            share.rule_id,
            "held" if share.held else "shared",
            share.view_age,
            None if share.held else at,
        )
        for share in report.shares
    ]


def claimed_delivery(row: tuple[Any, ...]) -> ClaimedDelivery:
    """A ClaimedDelivery from the CLAIMED_COLUMNS of a row."""
    delivery_id, ref, partner_id, rule_id, agreement_id, payload, attempts, is_intake, urgent = row
    return ClaimedDelivery(
        delivery_id,
        ref,
        partner_id,
        rule_id,
        agreement_id,
        payload,
        attempts,
        bool(is_intake),
        bool(urgent),
    )


def delivered_times(now: datetime) -> tuple[str, str]:
    """(audit time, outbox delivered_at) of a delivery at *now*: to the minute, as the
    report's, since a first delivery follows its report by milliseconds."""
    return minute_iso(now), minute_start_stamp(now)


def delivered_steps(row: tuple[Any, ...], at: str) -> list[Step]:
    """After an outbox row (its DELIVERED_COLUMNS) is marked delivered: the report counts as
    delivered once its intake copy is, and the delivery goes on the audit trail."""
    report_id, ref, partner_id, rule_id, agreement_id, is_intake = row
    who = {"partner_id": partner_id, "rule_id": rule_id, "agreement_id": agreement_id}
    steps: list[Step] = [(INTAKE_DELIVERED, (report_id,))] if is_intake else []
    steps.append((AUDIT_INSERT, audit_row(at, ref, "delivered", outcome="delivered", **who)))
    return steps


def failed_steps(
    row: tuple[Any, ...],
    delivery_id: str,
    error: str,
    next_attempt_at: datetime,
    dead: bool,
    now: datetime,
) -> list[Step]:
    """For a failed attempt at an outbox row (its ATTEMPTED_ROW): schedule the retry or
    give up, and record the attempt (and the giving up) on the audit trail."""
    at = minute_iso(now)
    ref, *names = row
    who = dict(zip(("partner_id", "rule_id", "agreement_id"), names, strict=True))
    status = "dead" if dead else "pending"
    steps: list[Step] = [
        (MARK_FAILED, (status, stamp(next_attempt_at), error[:500], delivery_id)),
        (AUDIT_INSERT, audit_row(at, ref, "delivery_attempt", outcome="failed", **who)),
    ]
    if dead:
        steps.append((AUDIT_INSERT, audit_row(at, ref, "dead", outcome="gave up", **who)))
    return steps


def retention_cutoff(now: datetime, days: int) -> str:
    """Reports created before this (in their created_at form) are past retention."""
    return minute_iso(now - timedelta(days=days))


def purged_rows(refs: list[str], now: datetime, days: int) -> list[tuple[Any, ...]]:
    """AUDIT_INSERT values: a 'purged' event for each report reference."""
    at, why = minute_iso(now), f"older than {days} days"
    return [audit_row(at, ref, "purged", outcome=why) for ref in refs]


def audit_filter(
    report_ref: str | None, since: datetime | None, until: datetime | None
) -> tuple[Any, ...]:
    """AUDIT_EVENTS values: each filter twice (is it absent? else compare), None when absent."""
    ref = report_ref or None
    first = _minute_prefix(since) if since else None
    last = _minute_prefix(until) if until else None
    return (ref, ref, first, first, last, last)


def audit_events(rows: list[tuple[Any, ...]]) -> list[AuditEvent]:
    return [AuditEvent(*row) for row in rows]


def _minute_prefix(moment: datetime) -> str:
    # Audit times are stored to the minute or finer; a bare minute prefix sorts before both.
    return moment.strftime("%Y-%m-%dT%H:%M")
