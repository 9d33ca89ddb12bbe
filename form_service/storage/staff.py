"""Every statement of the team's side, written once for both databases.

Column lists and WHERE clauses are joined from constants of this module, never from
input (ruff's S608 is silenced for this file for that reason); values are parameters.

Each function takes a transaction (``store.transaction()``) so a page's reads and writes,
and the audit row that records them, commit together or not at all.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from form_service.storage import OutboxEntry, Tx
from form_service.storage import statements as q
from form_service.storage.rows import outbox_row, routed_row
from form_service.times import minute_iso, minute_start_stamp, stamp

GENESIS = "0" * 64
PARTNER_PREFIX = "partner:"
"""A partner's staff role and key group: partner:<partner id>."""
INTAKE_GROUP = "intake"
"""The team key every intake user holds: reports are sealed to it and to the archive key."""


@dataclass(frozen=True)
class StaffUser:
    id: str
    email: str
    role: str
    state: str
    recipient: str | None
    created_at: str

    @property
    def partner_id(self) -> str | None:
        return self.role.split(":", 1)[1] if self.role.startswith("partner:") else None


_USER_COLUMNS = "id, email, role, state, recipient, created_at"


@dataclass(frozen=True)
class Credentials:
    """What sign-in checks and opens: all of it sealed or hashed."""

    user: StaffUser
    password_hash: str | None
    kdf_salt: bytes | None
    identity_sealed: bytes | None
    totp_sealed: bytes | None
    totp_last_step: int
    failures: int
    failed_at: str | None


def _user(row: tuple[Any, ...]) -> StaffUser:
    return StaffUser(*row[:6])


async def add_user(tx: Tx, user_id: str, email: str, role: str, now: datetime) -> None:
    await tx.run(
        "INSERT INTO staff_users (id, email, role, state, created_at) VALUES (?, ?, ?, ?, ?)",
        (user_id, email, role, "invited", stamp(now)),
    )


async def users(tx: Tx) -> list[StaffUser]:
    rows = await tx.fetch(f"SELECT {_USER_COLUMNS} FROM staff_users ORDER BY email")
    return [_user(row) for row in rows]


async def user_by(
    tx: Tx, *, email: str | None = None, user_id: str | None = None
) -> StaffUser | None:
    column, value = ("email", email) if email is not None else ("id", user_id)
    rows = await tx.fetch(f"SELECT {_USER_COLUMNS} FROM staff_users WHERE {column} = ?", (value,))
    return _user(rows[0]) if rows else None


async def credentials(tx: Tx, email: str) -> Credentials | None:
    rows = await tx.fetch(
        f"SELECT {_USER_COLUMNS}, password_hash, kdf_salt, identity_sealed, totp_sealed,"
        " totp_last_step, failures, failed_at FROM staff_users WHERE email = ?",
        (email,),
    )
    if not rows:
        return None
    row = rows[0]
    return Credentials(
        _user(row), row[6], _bytes(row[7]), _bytes(row[8]), _bytes(row[9]), *row[10:]
    )


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


async def set_state(tx: Tx, user_id: str, state: str) -> int:
    return await tx.run("UPDATE staff_users SET state = ? WHERE id = ?", (state, user_id))


async def clear_credentials(tx: Tx, user_id: str) -> None:
    """A reset: password, identity, second factor, recovery codes, sessions and the keys
    sealed to the old identity are gone; the user enrols again from a new link."""
    await tx.run(
        "UPDATE staff_users SET state = 'invited', password_hash = NULL, kdf_salt = NULL,"
        " identity_sealed = NULL, recipient = NULL, totp_sealed = NULL, totp_last_step = 0,"
        " failures = 0, failed_at = NULL WHERE id = ?",
        (user_id,),
    )
    await tx.run("DELETE FROM staff_recovery WHERE user_id = ?", (user_id,))
    await tx.run("DELETE FROM staff_tokens WHERE user_id = ?", (user_id,))
    await tx.run("DELETE FROM group_keys WHERE user_id = ?", (user_id,))


@dataclass(frozen=True)
class Enrolment:
    password_hash: str
    kdf_salt: bytes
    identity_sealed: bytes
    recipient: str
    totp_sealed: bytes
    totp_step: int
    recovery_hashes: tuple[str, ...]


async def complete_enrolment(tx: Tx, user_id: str, enrolment: Enrolment) -> None:
    await tx.run(
        "UPDATE staff_users SET state = 'active', password_hash = ?, kdf_salt = ?,"
        " identity_sealed = ?, recipient = ?, totp_sealed = ?, totp_last_step = ?,"
        " failures = 0, failed_at = NULL WHERE id = ?",
        (
            enrolment.password_hash,
            enrolment.kdf_salt,
            enrolment.identity_sealed,
            enrolment.recipient,
            enrolment.totp_sealed,
            enrolment.totp_step,
            user_id,
        ),
    )
    await tx.run("DELETE FROM staff_recovery WHERE user_id = ?", (user_id,))
    for code_hash in enrolment.recovery_hashes:
        await tx.run(
            "INSERT INTO staff_recovery (user_id, code_hash) VALUES (?, ?)", (user_id, code_hash)
        )


async def use_totp_step(tx: Tx, user_id: str, step: int) -> bool:
    """Record an accepted code's time step; False when that step (or a later) was used."""
    changed = await tx.run(
        "UPDATE staff_users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?",
        (step, user_id, step),
    )
    return changed == 1


async def use_recovery_code(tx: Tx, user_id: str, code_hash: str) -> bool:
    changed = await tx.run(
        "DELETE FROM staff_recovery WHERE user_id = ? AND code_hash = ?", (user_id, code_hash)
    )
    return changed == 1


async def recovery_left(tx: Tx, user_id: str) -> int:
    rows = await tx.fetch("SELECT count(*) FROM staff_recovery WHERE user_id = ?", (user_id,))
    return int(rows[0][0])


async def record_failure(tx: Tx, user_id: str, now: datetime) -> None:
    await tx.run(
        "UPDATE staff_users SET failures = failures + 1, failed_at = ? WHERE id = ?",
        (stamp(now), user_id),
    )


async def clear_failures(tx: Tx, user_id: str) -> None:
    await tx.run("UPDATE staff_users SET failures = 0, failed_at = NULL WHERE id = ?", (user_id,))


# -- tokens: enrolment links, the step between password and code, sessions -------------


@dataclass(frozen=True)
class Token:
    user_id: str
    sealed: bytes | None
    created_at: str
    last_seen_at: str
    expires_at: str


async def add_token(
    tx: Tx,
    id_hash: str,
    kind: str,
    user_id: str,
    sealed: bytes | None,
    now: datetime,
    expires: datetime,
) -> None:
    at = stamp(now)
    await tx.run(
        "INSERT INTO staff_tokens (id_hash, kind, user_id, sealed, created_at, last_seen_at,"
        " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (id_hash, kind, user_id, sealed, at, at, stamp(expires)),
    )


async def token(tx: Tx, id_hash: str, kind: str, now: datetime) -> Token | None:
    """A token that has not expired (its absolute end; idle time is the caller's rule)."""
    rows = await tx.fetch(
        "SELECT user_id, sealed, created_at, last_seen_at, expires_at FROM staff_tokens"
        " WHERE id_hash = ? AND kind = ? AND expires_at > ?",
        (id_hash, kind, stamp(now)),
    )
    if not rows:
        return None
    row = rows[0]
    return Token(row[0], _bytes(row[1]), row[2], row[3], row[4])


async def touch_token(tx: Tx, id_hash: str, now: datetime) -> None:
    await tx.run(
        "UPDATE staff_tokens SET last_seen_at = ? WHERE id_hash = ?", (stamp(now), id_hash)
    )


async def delete_token(tx: Tx, id_hash: str) -> int:
    return await tx.run("DELETE FROM staff_tokens WHERE id_hash = ?", (id_hash,))


async def delete_tokens(tx: Tx, user_id: str, kind: str) -> int:
    return await tx.run("DELETE FROM staff_tokens WHERE user_id = ? AND kind = ?", (user_id, kind))


async def delete_expired_tokens(tx: Tx, now: datetime) -> int:
    return await tx.run("DELETE FROM staff_tokens WHERE expires_at <= ?", (stamp(now),))


# -- group keys: the intake team's and each partner's age identity, sealed per member --


async def group_recipient(tx: Tx, group: str) -> str | None:
    rows = await tx.fetch("SELECT recipient FROM staff_groups WHERE name = ?", (group,))
    return str(rows[0][0]) if rows else None


async def group_recipients(tx: Tx) -> dict[str, str]:
    rows = await tx.fetch("SELECT name, recipient FROM staff_groups")
    return {str(name): str(recipient) for name, recipient in rows}


async def add_group(tx: Tx, group: str, recipient: str, now: datetime) -> None:
    await tx.run(
        "INSERT INTO staff_groups (name, recipient, created_at) VALUES (?, ?, ?)",
        (group, recipient, stamp(now)),
    )


async def grant_group(tx: Tx, group: str, user_id: str, sealed: bytes) -> None:
    await tx.run(
        "INSERT INTO group_keys (name, user_id, sealed) VALUES (?, ?, ?)",
        (group, user_id, sealed),
    )


async def group_key(tx: Tx, group: str, user_id: str) -> bytes | None:
    rows = await tx.fetch(
        "SELECT sealed FROM group_keys WHERE name = ? AND user_id = ?", (group, user_id)
    )
    return bytes(rows[0][0]) if rows else None


async def members_without_key(tx: Tx, group: str, role: str) -> list[StaffUser]:
    """Active users of *role* who cannot yet open *group*'s key (enrolled after it was made,
    or reset): someone who holds it grants it to them."""
    rows = await tx.fetch(
        f"SELECT {_USER_COLUMNS} FROM staff_users u WHERE u.state = 'active' AND u.role = ?"
        " AND NOT EXISTS (SELECT 1 FROM group_keys g WHERE g.name = ? AND g.user_id = u.id)"
        " ORDER BY u.email",
        (role, group),
    )
    return [_user(row) for row in rows]


# -- the audit trail: append-only, each row hashing the one before -------------------


@dataclass(frozen=True)
class StaffEvent:
    id: int
    at: str
    actor: str
    action: str
    report_ref: str | None
    detail: str | None
    prev_hash: str
    hash: str


def event_hash(
    prev_hash: str, at: str, actor: str, action: str, report_ref: str | None, detail: str | None
) -> str:
    fields = [prev_hash, at, actor, action, report_ref, detail]
    body = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


async def append_event(
    tx: Tx,
    actor: str,
    action: str,
    now: datetime,
    report_ref: str | None = None,
    detail: str | None = None,
) -> None:
    """One row of the trail, to the minute, chained to the last row.

    Appends are serialized: SQLite's write lock is held from BEGIN IMMEDIATE, and on
    PostgreSQL the advisory lock below makes concurrent appenders take turns."""
    if tx.dialect == "postgres":
        await tx.fetch("SELECT pg_advisory_xact_lock(?)", (_AUDIT_LOCK,))
    rows = await tx.fetch("SELECT hash FROM staff_audit ORDER BY id DESC LIMIT 1")
    prev = str(rows[0][0]) if rows else GENESIS
    at = minute_iso(now)
    await tx.run(
        "INSERT INTO staff_audit (at, actor, action, report_ref, detail, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            at,
            actor,
            action,
            report_ref,
            detail,
            prev,
            event_hash(prev, at, actor, action, report_ref, detail),
        ),
    )


_AUDIT_LOCK = 0x5354_4146  # any constant that no other advisory lock of ours uses

_EVENT_COLUMNS = "id, at, actor, action, report_ref, detail, prev_hash, hash"


async def events(
    tx: Tx, report_ref: str | None = None, limit: int = 200, before: int | None = None
) -> list[StaffEvent]:
    """The newest events first (of one report, or all), *limit* at a time."""
    where: list[str] = ["1 = 1"]
    params: list[object] = []
    if report_ref is not None:
        where.append("report_ref = ?")
        params.append(report_ref)
    if before is not None:
        where.append("id < ?")
        params.append(before)
    rows = await tx.fetch(
        f"SELECT {_EVENT_COLUMNS} FROM staff_audit WHERE {' AND '.join(where)}"
        " ORDER BY id DESC LIMIT ?",
        (*params, limit),
    )
    return [StaffEvent(*row) for row in rows]


async def event_count(tx: Tx) -> int:
    rows = await tx.fetch("SELECT count(*) FROM staff_audit")
    return int(rows[0][0])


async def verify_chain(tx: Tx) -> list[str]:
    """Every break in the trail: a row changed, removed or inserted since it was written."""
    problems = []
    prev = GENESIS
    rows = await tx.fetch(f"SELECT {_EVENT_COLUMNS} FROM staff_audit ORDER BY id")
    for row in rows:
        event = StaffEvent(*row)
        if event.prev_hash != prev:
            problems.append(f"row {event.id}: the row before it was changed or removed")
        expected = event_hash(
            event.prev_hash, event.at, event.actor, event.action, event.report_ref, event.detail
        )
        if expected != event.hash:
            problems.append(f"row {event.id}: changed after it was written")
        prev = event.hash
    return problems


# -- the inbox: each report's stage, who acknowledged it, who has it, how it ended ---------


@dataclass(frozen=True)
class CaseSummary:
    id: int
    report_ref: str
    created_at: str
    urgent: bool
    stage: str
    acknowledged: bool
    assigned_to: str | None
    outcome: str | None
    tipster_unread: bool = False
    """The person who reported wrote something the team has not read yet."""
    awaiting_tipster: bool = False
    """The team wrote to the person who reported and waits for an answer."""


_CASE_COLUMNS = (
    "id, report_ref, created_at, urgent, stage, acknowledged_at IS NOT NULL, assigned_to, outcome,"
    " tipster_unread, awaiting_tipster"
)
_CASE_WIDTH = 10
_LIVE = "purged_at IS NULL"

# Each view of the inbox as a WHERE clause; parameters follow in the caller's order.
# "stage <> 'closed'" here and "urgent = 1" in the danger-now box below are conditions of
# partial indexes (migration 2): a query uses one only when it says the same.
INBOX_VIEWS = {
    "all": "1 = 1",
    "new": "stage = 'received'",
    "mine": "assigned_to = ?",
    "open": "stage <> 'closed'",
    "overdue": "stage <> 'closed' AND created_at < ?",
    "closed": "stage = 'closed'",
    "messages": "tipster_unread = 1",
    "awaiting": "awaiting_tipster = 1",
}


def _case(row: tuple[Any, ...]) -> CaseSummary:
    ident, ref, created, urgent, stage, acked, assigned, outcome, unread, awaiting = row
    return CaseSummary(
        int(ident),
        ref,
        created,
        bool(urgent),
        stage,
        bool(acked),
        assigned,
        outcome,
        bool(unread),
        bool(awaiting),
    )


async def urgent_unacknowledged(tx: Tx, limit: int = 100) -> list[CaseSummary]:
    """Danger-now reports nobody has acknowledged: always at the top of the inbox."""
    rows = await tx.fetch(
        f"SELECT {_CASE_COLUMNS} FROM reports WHERE {_LIVE} AND urgent = 1"
        " AND acknowledged_at IS NULL AND stage <> 'closed' ORDER BY id LIMIT ?",
        (limit,),
    )
    return [_case(row) for row in rows]


async def inbox_page(
    tx: Tx, view: str, params: tuple[object, ...], before: int | None, size: int
) -> list[CaseSummary]:
    """One page of a view, newest first; *before* is the last id of the page before.

    Paging by id (the primary key) stays as fast on the thousandth page as on the first."""
    where = [_LIVE, INBOX_VIEWS[view]]
    values: list[object] = [*params]
    if before is not None:
        where.append("id < ?")
        values.append(before)
    rows = await tx.fetch(
        f"SELECT {_CASE_COLUMNS} FROM reports WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
        (*values, size),
    )
    return [_case(row) for row in rows]


@dataclass(frozen=True)
class Case:
    summary: CaseSummary
    content_age: bytes | None
    acknowledged_at: str | None
    closed_at: str | None


async def case(tx: Tx, report_ref: str) -> Case | None:
    rows = await tx.fetch(
        f"SELECT {_CASE_COLUMNS}, content_age, acknowledged_at, closed_at FROM reports"
        f" WHERE report_ref = ? AND {_LIVE}",
        (report_ref,),
    )
    if not rows:
        return None
    row = rows[0]
    w = _CASE_WIDTH
    return Case(_case(row[:w]), _bytes(row[w]), row[w + 1], row[w + 2])


@dataclass(frozen=True)
class DeliveryState:
    partner_id: str
    rule_id: str
    status: str
    attempts: int
    delivered_at: str | None


async def deliveries(tx: Tx, report_id: int) -> list[DeliveryState]:
    rows = await tx.fetch(
        "SELECT partner_id, rule_id, status, attempts, delivered_at FROM outbox"
        " WHERE report_id = ? ORDER BY partner_id",
        (report_id,),
    )
    return [DeliveryState(*row) for row in rows]


async def acknowledge(tx: Tx, report_ref: str, now: datetime) -> bool:
    changed = await tx.run(
        "UPDATE reports SET acknowledged_at = ?, stage = CASE WHEN stage = 'received'"
        " THEN 'triaged' ELSE stage END WHERE report_ref = ? AND acknowledged_at IS NULL",
        (minute_iso(now), report_ref),
    )
    return changed == 1


async def set_stage(tx: Tx, report_ref: str, stage: str) -> None:
    await tx.run("UPDATE reports SET stage = ? WHERE report_ref = ?", (stage, report_ref))


async def assign(tx: Tx, report_ref: str, user_id: str | None) -> None:
    await tx.run(
        "UPDATE reports SET assigned_to = ?, stage = CASE WHEN stage = 'closed' THEN stage"
        " ELSE 'assigned' END WHERE report_ref = ?",
        (user_id, report_ref),
    )


async def close(tx: Tx, report_ref: str, outcome: str, now: datetime) -> None:
    await tx.run(
        "UPDATE reports SET stage = 'closed', outcome = ?, closed_at = ?,"
        " acknowledged_at = COALESCE(acknowledged_at, ?) WHERE report_ref = ?",
        (outcome, minute_iso(now), minute_iso(now), report_ref),
    )


async def reopen(tx: Tx, report_ref: str) -> None:
    await tx.run(
        "UPDATE reports SET stage = 'triaged', outcome = NULL, closed_at = NULL"
        " WHERE report_ref = ?",
        (report_ref,),
    )


@dataclass(frozen=True)
class Note:
    author: str
    at: str
    body_age: bytes


async def add_note(tx: Tx, report_ref: str, author: str, body_age: bytes, now: datetime) -> None:
    await tx.run(
        "INSERT INTO case_notes (report_ref, author, at, body_age) VALUES (?, ?, ?, ?)",
        (report_ref, author, minute_iso(now), body_age),
    )


async def notes(tx: Tx, report_ref: str) -> list[Note]:
    rows = await tx.fetch(
        "SELECT author, at, body_age FROM case_notes WHERE report_ref = ? ORDER BY id",
        (report_ref,),
    )
    return [Note(author, at, bytes(body)) for author, at, body in rows]


async def viewers(tx: Tx, report_ref: str) -> list[tuple[str, str]]:
    """(who, first minute) of everyone who opened the report, from the audit trail."""
    rows = await tx.fetch(
        "SELECT actor, min(at) FROM staff_audit WHERE report_ref = ? AND action = 'viewed'"
        " GROUP BY actor ORDER BY min(at)",
        (report_ref,),
    )
    return [(str(actor), str(at)) for actor, at in rows]


# -- partners' parts in a report: held for review, shared, or withheld at release ---------


@dataclass(frozen=True)
class Share:
    report_ref: str
    partner_id: str
    rule_id: str
    state: str
    view_age: bytes | None
    shared_at: str | None
    released_by: str | None
    outcome: str | None
    closed_at: str | None


_SHARE_COLUMNS = (
    "report_ref, partner_id, rule_id, state, view_age, shared_at, released_by, outcome, closed_at"
)


def _share(row: tuple[Any, ...]) -> Share:
    return Share(row[0], row[1], row[2], row[3], _bytes(row[4]), *row[5:])


async def shares(tx: Tx, report_ref: str) -> list[Share]:
    rows = await tx.fetch(
        f"SELECT {_SHARE_COLUMNS} FROM partner_shares WHERE report_ref = ? ORDER BY partner_id",
        (report_ref,),
    )
    return [_share(row) for row in rows]


async def share(tx: Tx, report_ref: str, partner_id: str) -> Share | None:
    """A partner's part in a live report, only once it was shared with the partner."""
    rows = await tx.fetch(
        f"SELECT {_SHARE_COLUMNS} FROM partner_shares s WHERE report_ref = ? AND partner_id = ?"
        " AND state = 'shared' AND EXISTS (SELECT 1 FROM reports r"
        f" WHERE r.report_ref = s.report_ref AND r.{_LIVE})",
        (report_ref, partner_id),
    )
    return _share(rows[0]) if rows else None


async def shared_with(tx: Tx, partner_id: str, limit: int = 200) -> list[Share]:
    """The reports shared with a partner, newest first."""
    rows = await tx.fetch(
        f"SELECT {_SHARE_COLUMNS} FROM partner_shares s WHERE partner_id = ? AND state = 'shared'"
        f" AND EXISTS (SELECT 1 FROM reports r WHERE r.report_ref = s.report_ref AND r.{_LIVE})"
        " ORDER BY shared_at DESC, report_ref DESC LIMIT ?",
        (partner_id, limit),
    )
    return [_share(row) for row in rows]


async def mark_shared(
    tx: Tx,
    report_ref: str,
    partner_id: str,
    rule_id: str,
    view_age: bytes | None,
    released_by: str,
    now: datetime,
) -> None:
    changed = await tx.run(
        "UPDATE partner_shares SET state = 'shared', view_age = ?, shared_at = ?,"
        " released_by = ? WHERE report_ref = ? AND partner_id = ? AND state <> 'shared'",
        (view_age, minute_iso(now), released_by, report_ref, partner_id),
    )
    if changed == 0:
        await tx.run(
            "INSERT INTO partner_shares (report_ref, partner_id, rule_id, state, view_age,"
            " shared_at, released_by) VALUES (?, ?, ?, 'shared', ?, ?, ?)",
            (report_ref, partner_id, rule_id, view_age, minute_iso(now), released_by),
        )


async def withhold(tx: Tx, report_ref: str, partner_id: str) -> None:
    await tx.run(
        "UPDATE partner_shares SET state = 'withheld' WHERE report_ref = ? AND partner_id = ?"
        " AND state = 'held'",
        (report_ref, partner_id),
    )


async def close_share(
    tx: Tx, report_ref: str, partner_id: str, outcome: str, now: datetime
) -> None:
    await tx.run(
        "UPDATE partner_shares SET outcome = ?, closed_at = ? WHERE report_ref = ?"
        " AND partner_id = ?",
        (outcome, minute_iso(now), report_ref, partner_id),
    )


async def add_delivery(
    tx: Tx, report_id: int, entry: OutboxEntry, report_ref: str, now: datetime
) -> None:
    """A partner's copy of a released report, waiting in the outbox for the worker."""
    await tx.run(q.OUTBOX_INSERT, outbox_row(entry, report_id, minute_start_stamp(now)))
    await tx.run(q.AUDIT_INSERT, routed_row(entry, report_ref, minute_iso(now)))
