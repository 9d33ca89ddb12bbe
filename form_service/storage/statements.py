"""Every statement the two stores share, written once in SQLite's placeholder style (``?``).

PostgreSQL's driver takes ``%s``: ``for_postgres`` rewrites a statement for it, so the two
backends run the same text and cannot drift apart. Where a database does one step its own
way, the backend adds to the shared text (``ON CONFLICT``, ``RETURNING``, ``FOR UPDATE``) or
keeps the whole step (the claim with ``SKIP LOCKED``, NOTIFY, the WAL checkpoint).

The outbox is aliased ``o`` and reports ``r`` wherever both are read: both tables have a
``status`` column.
"""

from __future__ import annotations


def for_postgres(statement: str) -> str:
    """*statement* with psycopg's placeholders: a literal ``%`` doubled, each ``?`` a ``%s``
    (no shared statement holds a literal ``?``)."""
    return statement.replace("%", "%%").replace("?", "%s")


# -- a new report (rows.new_report_rows gives the values) ----------------------------------

REPORT_INSERT = (
    "INSERT INTO reports (report_ref, receipt_hash, token_id, status, created_at,"
    " content_age, urgent, area, setting, concern, receipt_sealed, thread_recipient,"
    " thread_sealed) VALUES (?, ?, ?, 'received', ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SHARE_INSERT = (
    "INSERT INTO partner_shares (report_ref, partner_id, rule_id, state, view_age, shared_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
OUTBOX_INSERT = (
    "INSERT INTO outbox (id, report_id, partner_id, rule_id, agreement_id, payload,"
    " status, attempts, next_attempt_at, created_at, is_intake)"
    " VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)"
)
AUDIT_INSERT = (
    "INSERT INTO audit_events (at, report_ref, event, partner_id, rule_id, agreement_id,"
    " fields, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
EARLIER_REPORT = "SELECT report_ref, receipt_hash, receipt_sealed FROM reports WHERE token_id = ?"
"""The report saved by an earlier submit of the same form."""

# -- a report's status ---------------------------------------------------------------------

# The tipster's status: the inbox's stage when staff have acted on the report, else how far
# delivery got. Outcomes and notes never reach it.
STATUS_OF_REPORT = (
    "CASE WHEN stage = 'closed' THEN 'closed'"
    " WHEN acknowledged_at IS NOT NULL OR stage <> 'received' THEN 'reviewed'"
    " ELSE status END"
)
REPORT_STATUS = f"SELECT {STATUS_OF_REPORT} FROM reports WHERE receipt_hash = ?"  # noqa: S608 - constants only
MARK_REVIEWED = "UPDATE reports SET status = 'reviewed' WHERE report_ref = ?"
INTAKE_DELIVERED = "UPDATE reports SET status = 'delivered' WHERE id = ? AND status = 'received'"

# -- claiming outbox rows ------------------------------------------------------------------

CLAIMED_COLUMNS = (
    "o.id, r.report_ref, o.partner_id, o.rule_id, o.agreement_id, o.payload, o.attempts,"
    " o.is_intake, r.urgent"
)
"""What a ClaimedDelivery is built from (rows.claimed_delivery)."""
EXPIRED_LEASES = "o.status = 'sending' AND o.claimed_until < ?"
DUE_PENDING = "o.status = 'pending' AND o.next_attempt_at <= ? ORDER BY o.next_attempt_at"
CLAIM_ORDER = (EXPIRED_LEASES, DUE_PENDING)
"""Two queries, not one with OR: each walks the (status, next_attempt_at) index in order and
stops at its limit, where an OR would sort every due row of a backlog per claim. Rows whose
lease ran out (a crashed worker's) go first: they have waited longest."""
LEASE = "status = 'sending', claimed_until = ?, attempts = attempts + 1"
RENEW_LEASE = (
    "UPDATE outbox SET claimed_until = ? WHERE id = ? AND attempts = ? AND status = 'sending'"
)
"""A claim is the row and its attempt count: each claim counts one more attempt, so a row
taken over by another worker since (its lease ran out) is not renewed by the first."""

# -- the outcome of an attempt -------------------------------------------------------------

DELIVERED_COLUMNS = (
    "o.report_id, r.report_ref, o.partner_id, o.rule_id, o.agreement_id, o.is_intake"
)
"""What rows.delivered_steps needs of a row just delivered."""
WIPE_DELIVERED = "status = 'delivered', payload = NULL, claimed_until = NULL, delivered_at = ?"
ATTEMPTED_ROW = (
    "SELECT r.report_ref, o.partner_id, o.rule_id, o.agreement_id"
    " FROM outbox o JOIN reports r ON r.id = o.report_id WHERE o.id = ?"
)
MARK_FAILED = (
    "UPDATE outbox SET status = ?, next_attempt_at = ?, claimed_until = NULL,"
    " last_error = ? WHERE id = ? AND status != 'delivered'"
)

POSTPONE = (
    "UPDATE outbox SET status = 'pending', attempts = attempts - 1, next_attempt_at = ?,"
    " claimed_until = NULL WHERE id = ? AND attempts = ? AND status = 'sending'"
)
"""A claimed row put off without an attempt counted (a file it carries is not ready)."""

# -- chores and the operator's queries -----------------------------------------------------

RETRY_PARTNER_NOW = (
    "UPDATE outbox SET next_attempt_at = ? WHERE partner_id = ?"
    " AND status = 'pending' AND next_attempt_at > ?"
)
DELETE_EXPIRED = "DELETE FROM reports WHERE created_at < ?"
"""Outbox rows and the tipster's messages go with their report (ON DELETE CASCADE)."""
DELETE_EXPIRED_CASE_WORK = (
    "DELETE FROM case_notes WHERE report_ref IN"
    " (SELECT report_ref FROM reports WHERE created_at < ?)",
    "DELETE FROM partner_shares WHERE report_ref IN"
    " (SELECT report_ref FROM reports WHERE created_at < ?)",
    # Attached files: those sent with the form (by its token's hash), those added later.
    "DELETE FROM attachments WHERE token_id IN (SELECT token_id FROM reports WHERE created_at < ?)",
    "DELETE FROM attachments WHERE report_ref IN"
    " (SELECT report_ref FROM reports WHERE created_at < ?)",
)
"""The team's notes and each partner's sealed copy go with their report too; run before
DELETE_EXPIRED. Requests for information stay: a partner's disclosure record must list
them after the report is gone."""
AUDIT_EVENTS = (
    "SELECT at, report_ref, event, partner_id, rule_id, agreement_id, fields, outcome"
    " FROM audit_events WHERE (CAST(? AS TEXT) IS NULL OR report_ref = ?)"
    " AND (CAST(? AS TEXT) IS NULL OR at >= ?) AND (CAST(? AS TEXT) IS NULL OR at < ?)"
    " ORDER BY id"
)
"""Fixed SQL: an absent filter is NULL and matches everything (the CAST gives PostgreSQL a
type for a NULL parameter)."""
