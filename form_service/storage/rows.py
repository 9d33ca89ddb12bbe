"""The rows both stores write, built once: only the placeholder style differs by dialect.

SQLite takes ``?`` and PostgreSQL ``%s``; ``sql(text, dialect)`` turns the first into the
second, so each statement is written once and the two backends cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Literal

from form_service.storage import Delivery, NewReport

Dialect = Literal["sqlite", "postgres"]

AUDIT_INSERT = (
    "INSERT INTO audit_events (at, report_ref, event, partner_id, rule_id, agreement_id,"
    " fields, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
OUTBOX_INSERT = (
    "INSERT INTO outbox (id, report_id, partner_id, rule_id, agreement_id, payload,"
    " status, attempts, next_attempt_at, created_at, is_intake)"
    " VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)"
)
DELIVERY_COLUMNS = (
    "o.id, r.report_ref, o.partner_id, o.rule_id, o.agreement_id, o.payload, o.attempts,"
    " o.is_intake"
)


# The tipster's status: the inbox's stage when staff have acted on the report, else how far
# delivery got. Outcomes and notes never reach it.
REPORT_STATUS = (
    "SELECT CASE WHEN stage = 'closed' THEN 'closed'"
    " WHEN acknowledged_at IS NOT NULL OR stage <> 'received' THEN 'reviewed'"
    " ELSE status END FROM reports WHERE receipt_hash = ?"
)


def sql(statement: str, dialect: Dialect) -> str:
    """*statement* with the placeholders of *dialect* (none of ours holds a literal ``?``)."""
    return statement.replace("?", "%s") if dialect == "postgres" else statement


def audit_row(at: str, report_ref: str, event: str, **cols: Any) -> tuple[Any, ...]:
    """Values for AUDIT_INSERT; the columns not named are NULL."""
    names = ("partner_id", "rule_id", "agreement_id", "fields", "outcome")
    return (at, report_ref, event, *(cols.get(name) for name in names))


def new_report_rows(
    report: NewReport, report_id: int, at: str, created: str
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(outbox rows, audit rows) for a report just inserted as *report_id*: one outbox row
    per partner, and the 'received' event followed by one 'routed' event per partner.

    *at* (audit) and *created* (outbox: created, and first due) are both the report's
    minute, *created* written in the outbox's fixed-width form that scheduling compares: a
    finer time of any row written with the report would time the report itself."""
    outbox = []
    audit = [audit_row(at, report.report_ref, "received")]
    for entry in report.outbox:
        outbox.append(
            (
                entry.delivery_id,
                report_id,
                entry.partner_id,
                entry.rule_id,
                entry.agreement_id,
                entry.payload,
                created,
                created,
                int(entry.is_intake),
            )
        )
        audit.append(
            audit_row(
                at,
                report.report_ref,
                "routed",
                partner_id=entry.partner_id,
                rule_id=entry.rule_id,
                agreement_id=entry.agreement_id,
                fields=",".join(entry.fields),
            )
        )
    return outbox, audit


def delivery(row: tuple[Any, ...]) -> Delivery:
    """A Delivery from the DELIVERY_COLUMNS of a row."""
    delivery_id, ref, partner_id, rule_id, agreement_id, payload, attempts, is_intake = row
    return Delivery(
        delivery_id, ref, partner_id, rule_id, agreement_id, payload, attempts, bool(is_intake)
    )
