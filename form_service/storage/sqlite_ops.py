"""The SQL of each store operation, run inside the writer's transaction (or a read)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from form_service.storage import Delivery, NewReport, ReferenceTaken, ReportStatus, SaveResult
from form_service.storage.rows import (
    AUDIT_INSERT,
    DELIVERY_COLUMNS,
    OUTBOX_INSERT,
    REPORT_STATUS,
    audit_row,
    delivery,
    new_report_rows,
)
from form_service.times import minute_iso, minute_start_stamp, stamp


def _audit(conn: sqlite3.Connection, at: str, report_ref: str, event: str, **cols: Any) -> None:
    conn.execute(AUDIT_INSERT, audit_row(at, report_ref, event, **cols))


def _insert_report(conn: sqlite3.Connection, report: NewReport) -> None:
    at = minute_iso(report.created_at)
    cursor = conn.execute(
        "INSERT INTO reports (report_ref, receipt_hash, token_id, status, created_at,"
        " content_age, urgent) VALUES (?, ?, ?, 'received', ?, ?, ?)",
        (
            report.report_ref,
            report.receipt_hash,
            report.token_id,
            at,
            report.content_age,
            int(report.urgent),
        ),
    )
    assert cursor.lastrowid is not None
    outbox, audit = new_report_rows(
        report, cursor.lastrowid, at, minute_start_stamp(report.created_at)
    )
    conn.executemany(OUTBOX_INSERT, outbox)
    conn.executemany(AUDIT_INSERT, audit)


def save_report(conn: sqlite3.Connection, report: NewReport) -> SaveResult:
    # A second submit of the same form is rare: the unique token_id finds it, and the
    # report's own row, the first written, is all that failed (no look-up per report).
    try:
        _insert_report(conn, report)
    except sqlite3.IntegrityError as error:
        if "reports.token_id" in str(error):
            row = conn.execute(
                "SELECT report_ref, receipt_hash FROM reports WHERE token_id = ?",
                (report.token_id,),
            ).fetchone()
            return SaveResult(False, row[0], row[1])
        if "report_ref" in str(error):
            raise ReferenceTaken from None
        raise
    return SaveResult(True, report.report_ref, report.receipt_hash)


def report_status(conn: sqlite3.Connection, receipt_hash: str) -> ReportStatus | None:
    row = conn.execute(REPORT_STATUS, (receipt_hash,)).fetchone()
    return ReportStatus(row[0]) if row else None


def mark_reviewed(conn: sqlite3.Connection, report_ref: str) -> None:
    conn.execute("UPDATE reports SET status = 'reviewed' WHERE report_ref = ?", (report_ref,))


def claim(
    conn: sqlite3.Connection, now: datetime, limit: int, lease_seconds: float
) -> list[Delivery]:
    at = stamp(now)
    until = stamp(now + timedelta(seconds=lease_seconds))
    # Two queries, not one with OR: each walks the (status, next_attempt_at) index in order
    # and stops at *limit*, where an OR would sort every due row of a backlog per claim.
    # Rows whose lease ran out (a crashed worker's) go first: they have waited longest.
    select = f"SELECT {DELIVERY_COLUMNS} FROM outbox o JOIN reports r ON r.id = o.report_id"  # noqa: S608
    rows = conn.execute(
        f"{select} WHERE o.status = 'sending' AND o.claimed_until < ? LIMIT ?",
        (at, limit),
    ).fetchall()
    if len(rows) < limit:
        rows += conn.execute(
            f"{select} WHERE o.status = 'pending' AND o.next_attempt_at <= ?"
            " ORDER BY o.next_attempt_at LIMIT ?",
            (at, limit - len(rows)),
        ).fetchall()
    conn.executemany(
        "UPDATE outbox SET status = 'sending', claimed_until = ?,"
        " attempts = attempts + 1 WHERE id = ?",
        [(until, row[0]) for row in rows],
    )
    return [delivery((*row[:6], row[6] + 1, row[7])) for row in rows]


def mark_delivered(conn: sqlite3.Connection, delivery_id: str, now: datetime) -> None:
    # To the minute, as the report: a first delivery follows the report by milliseconds.
    at, delivered = minute_iso(now), minute_start_stamp(now)
    row = conn.execute(
        "SELECT o.report_id, r.report_ref, o.partner_id, o.rule_id,"
        " o.agreement_id, o.is_intake FROM outbox o JOIN reports r"
        " ON r.id = o.report_id WHERE o.id = ? AND o.status != 'delivered'",
        (delivery_id,),
    ).fetchone()
    if row is None:
        return
    report_id, ref, partner_id, rule_id, agreement_id, is_intake = row
    conn.execute(
        "UPDATE outbox SET status = 'delivered', payload = NULL,"
        " claimed_until = NULL, delivered_at = ? WHERE id = ?",
        (delivered, delivery_id),
    )
    if is_intake:
        conn.execute(
            "UPDATE reports SET status = 'delivered' WHERE id = ? AND status = 'received'",
            (report_id,),
        )
    who = {"partner_id": partner_id, "rule_id": rule_id, "agreement_id": agreement_id}
    _audit(conn, at, ref, "delivered", outcome="delivered", **who)


def mark_failed(
    conn: sqlite3.Connection,
    delivery_id: str,
    error: str,
    next_attempt_at: datetime,
    dead: bool,
    now: datetime,
) -> None:
    at = minute_iso(now)
    row = conn.execute(
        "SELECT r.report_ref, o.partner_id, o.rule_id, o.agreement_id"
        " FROM outbox o JOIN reports r ON r.id = o.report_id WHERE o.id = ?",
        (delivery_id,),
    ).fetchone()
    if row is None:
        return
    conn.execute(
        "UPDATE outbox SET status = ?, next_attempt_at = ?, claimed_until = NULL,"
        " last_error = ? WHERE id = ? AND status != 'delivered'",
        ("dead" if dead else "pending", stamp(next_attempt_at), error[:500], delivery_id),
    )
    who = dict(zip(("partner_id", "rule_id", "agreement_id"), row[1:], strict=True))
    _audit(conn, at, row[0], "delivery_attempt", outcome="failed", **who)
    if dead:
        _audit(conn, at, row[0], "dead", outcome="gave up", **who)
