"""Each store operation on SQLite, run inside the writer's transaction (or a read).

The statements are the shared ones (statements.py); what is SQLite's own is here: a
duplicate form token found from the failed insert, the claim as a select then an update,
and the TRUNCATE checkpoint that empties the WAL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from form_service.storage import (
    AuditEvent,
    ClaimedDelivery,
    NewReport,
    ReferenceTaken,
    ReportStatus,
    SaveResult,
    Step,
    rows,
)
from form_service.storage import statements as q
from form_service.times import minute_iso, minute_start_stamp, stamp

_CLAIMABLE = f"SELECT {q.CLAIMED_COLUMNS} FROM outbox o JOIN reports r ON r.id = o.report_id"  # noqa: S608
_DELIVERED_ROW = (
    f"SELECT {q.DELIVERED_COLUMNS} FROM outbox o JOIN reports r ON r.id = o.report_id"  # noqa: S608
    " WHERE o.id = ? AND o.status != 'delivered'"
)
_WIPE = f"UPDATE outbox SET {q.WIPE_DELIVERED} WHERE id = ?"  # noqa: S608
_EXPIRED_REFS = "SELECT report_ref FROM reports WHERE created_at < ? ORDER BY id"


def run_steps(conn: sqlite3.Connection, steps: Iterable[Step]) -> None:
    for statement, values in steps:
        conn.execute(statement, values)


def _insert_report(conn: sqlite3.Connection, report: NewReport) -> None:
    at = minute_iso(report.created_at)
    cursor = conn.execute(
        q.REPORT_INSERT,
        rows.report_row(report, at),
    )
    assert cursor.lastrowid is not None
    outbox, audit = rows.new_report_rows(
        report, cursor.lastrowid, at, minute_start_stamp(report.created_at)
    )
    conn.executemany(q.OUTBOX_INSERT, outbox)
    conn.executemany(q.AUDIT_INSERT, audit)
    if report.shares:
        conn.executemany(q.SHARE_INSERT, rows.share_rows(report, at))


def save_report(
    conn: sqlite3.Connection, report: NewReport, files: Iterable[Step] = ()
) -> SaveResult:
    # A second submit of the same form is rare: the unique token_id finds it, and the
    # report's own row, the first written, is all that failed (no look-up per report).
    try:
        _insert_report(conn, report)
    except sqlite3.IntegrityError as error:
        if "reports.token_id" in str(error):
            row = conn.execute(q.EARLIER_REPORT, (report.token_id,)).fetchone()
            return SaveResult(False, row[0], row[1], rows.optional_bytes(row[2]))
        if "report_ref" in str(error):
            raise ReferenceTaken from None
        raise
    run_steps(conn, files)
    return SaveResult(True, report.report_ref, report.receipt_hash, report.receipt_sealed)


def report_status(conn: sqlite3.Connection, receipt_hash: str) -> ReportStatus | None:
    row = conn.execute(q.REPORT_STATUS, (receipt_hash,)).fetchone()
    return ReportStatus(row[0]) if row else None


def mark_reviewed(conn: sqlite3.Connection, report_ref: str) -> None:
    conn.execute(q.MARK_REVIEWED, (report_ref,))


def claim(
    conn: sqlite3.Connection, now: datetime, limit: int, lease_seconds: float
) -> list[ClaimedDelivery]:
    at = stamp(now)
    until = stamp(now + timedelta(seconds=lease_seconds))
    taken: list[Any] = []
    for due in q.CLAIM_ORDER:
        if len(taken) < limit:
            query = f"{_CLAIMABLE} WHERE {due} LIMIT ?"
            taken += conn.execute(query, (at, limit - len(taken))).fetchall()
    conn.executemany(
        f"UPDATE outbox SET {q.LEASE} WHERE id = ?",  # noqa: S608
        [(until, row[0]) for row in taken],
    )
    return [rows.claimed_delivery((*row[:6], row[6] + 1, *row[7:])) for row in taken]


def renew(
    conn: sqlite3.Connection, held: Sequence[ClaimedDelivery], now: datetime, lease_seconds: float
) -> set[str]:
    at = stamp(now + timedelta(seconds=lease_seconds))
    return {
        row.delivery_id
        for row in held
        if conn.execute(q.RENEW_LEASE, (at, row.delivery_id, row.attempts)).rowcount
    }


def mark_delivered(conn: sqlite3.Connection, delivery_id: str, now: datetime) -> None:
    at, delivered = rows.delivered_times(now)
    row = conn.execute(_DELIVERED_ROW, (delivery_id,)).fetchone()
    if row is None:
        return
    conn.execute(_WIPE, (delivered, delivery_id))
    run_steps(conn, rows.delivered_steps(row, at))


def mark_failed(
    conn: sqlite3.Connection,
    delivery_id: str,
    error: str,
    next_attempt_at: datetime,
    dead: bool,
    now: datetime,
) -> None:
    row = conn.execute(q.ATTEMPTED_ROW, (delivery_id,)).fetchone()
    if row is None:
        return
    run_steps(conn, rows.failed_steps(row, delivery_id, error, next_attempt_at, dead, now))


def retry_partner_now(conn: sqlite3.Connection, partner_id: str, now: datetime) -> int:
    cursor = conn.execute(q.RETRY_PARTNER_NOW, (stamp(now), partner_id, stamp(now)))
    return cursor.rowcount


def purge(conn: sqlite3.Connection, now: datetime, days: int) -> list[str]:
    cutoff = rows.retention_cutoff(now, days)
    refs = [row[0] for row in conn.execute(_EXPIRED_REFS, (cutoff,))]
    conn.executemany(q.AUDIT_INSERT, rows.purged_rows(refs, now, days))
    for statement in q.DELETE_EXPIRED_CASE_WORK:
        conn.execute(statement, (cutoff,))
    conn.execute(q.DELETE_EXPIRED, (cutoff,))
    return refs


def events(
    conn: sqlite3.Connection,
    report_ref: str | None,
    since: datetime | None,
    until: datetime | None,
) -> list[AuditEvent]:
    found = conn.execute(q.AUDIT_EVENTS, rows.audit_filter(report_ref, since, until)).fetchall()
    return rows.audit_events(found)


def truncate_wal(conn: sqlite3.Connection, wait_ms: int) -> bool:
    """Copy the WAL into the database file and empty it; False if a reader kept it from
    finishing. With ``secure_delete`` on, a wiped payload then survives in no free page and
    no WAL frame. It waits at most *wait_ms* for the writer, holding new writers off
    meanwhile."""
    conn.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
    try:
        row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.execute("PRAGMA busy_timeout = 10000")
    return row is not None and row[0] == 0
