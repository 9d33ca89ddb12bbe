"""Staff notices waiting to be sent, one row per user, written once for both databases.

A user's row says whether news waits for them (``pending_since``, the minute of the first
unsent news; ``urgent``), when their last notice went (``last_sent_at``) and, for the
intake team, the newest report they were told about (``last_report_id``). Every news bumps
``changes``: a pass that sent a notice clears the news only if none came meanwhile. A pass
claims a row until ``claimed_until`` (a minute), so of several processes one sends it, and
a pass that died while sending leaves it to the next one after that minute.

Only active users are ever due; times are to the minute. Clauses are constants of this
module (ruff's S608 is silenced for this file for that reason); values are parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from form_service.storage import Tx
from form_service.times import minute_iso, stamp

_NEWEST_REPORT = "(SELECT COALESCE(max(id), 0) FROM reports)"
_ACTIVE = "state = 'active'"
_INTAKE = f"role = 'intake' AND {_ACTIVE}"

# A new row starts from the newest report: a user is told of reports stored after the
# first pass that saw them active (at most a pass after they enrolled), not of those
# already in the inbox they have just opened.
_ADD_NEWS = (
    "INSERT INTO staff_notices (user_id, pending_since, urgent, changes, last_report_id)"
    f" SELECT id, ?, ?, 1, {_NEWEST_REPORT} FROM staff_users WHERE {{users}}"
    " ON CONFLICT (user_id) DO UPDATE SET"
    " pending_since = COALESCE(staff_notices.pending_since, excluded.pending_since),"
    " urgent = CASE WHEN excluded.urgent = 1 THEN 1 ELSE staff_notices.urgent END,"
    " changes = staff_notices.changes + 1"
)


async def add_news(tx: Tx, user_ids: Iterable[str], now: datetime, urgent: bool) -> None:
    statement = _ADD_NEWS.format(users=f"id = ? AND {_ACTIVE}")
    for user_id in dict.fromkeys(user_ids):
        await tx.run(statement, (minute_iso(now), int(urgent), user_id))


async def add_news_for_role(tx: Tx, role: str, now: datetime, urgent: bool) -> None:
    statement = _ADD_NEWS.format(users=f"role = ? AND {_ACTIVE}")
    await tx.run(statement, (minute_iso(now), int(urgent), role))


async def note_new_reports(tx: Tx, now: datetime) -> None:
    """News for each active intake user of every report newer than the newest they were
    told about; urgent when one of them is danger-now. One look at the reports' primary
    key per user, in the pass: storing a report does no work for this."""
    await tx.run(
        "INSERT INTO staff_notices (user_id, last_report_id)"
        f" SELECT id, {_NEWEST_REPORT} FROM staff_users WHERE {_INTAKE}"
        " ON CONFLICT (user_id) DO NOTHING"
    )
    # Every SET expression reads the row as it was, so the EXISTS sees the old mark.
    await tx.run(
        "UPDATE staff_notices SET pending_since = COALESCE(pending_since, ?),"
        " urgent = CASE WHEN EXISTS (SELECT 1 FROM reports r"
        " WHERE r.id > staff_notices.last_report_id AND r.urgent = 1) THEN 1 ELSE urgent END,"
        f" changes = changes + 1, last_report_id = {_NEWEST_REPORT}"
        f" WHERE last_report_id < {_NEWEST_REPORT}"
        f" AND user_id IN (SELECT id FROM staff_users WHERE {_INTAKE})",
        (minute_iso(now),),
    )


_OVERDUE_URGENT = "state = 'open' AND urgent = 1 AND due_at < ?"


async def note_overdue_requests(tx: Tx, now: datetime) -> None:
    """News, at every pass, for the users of each partner holding an urgent request past its
    due time and for the intake user who asked it, until it is answered or withdrawn: the
    pass coalesces it into one notice per user every ``every_minutes``."""
    users = (
        f"{_ACTIVE} AND (id IN (SELECT asked_by_id FROM info_requests WHERE {_OVERDUE_URGENT})"
        " OR role IN (SELECT 'partner:' || partner_id FROM info_requests"
        f" WHERE {_OVERDUE_URGENT}))"
    )
    at = minute_iso(now)
    await tx.run(_ADD_NEWS.format(users=users), (at, 0, at, at))


async def drop_inactive(tx: Tx) -> None:
    """A disabled (or reset) user gets nothing: their news goes, and what comes while they
    are not active is not news to them when they are again."""
    await tx.run(
        "UPDATE staff_notices SET pending_since = NULL, urgent = 0,"
        f" last_report_id = {_NEWEST_REPORT}"
        f" WHERE (pending_since IS NOT NULL OR last_report_id < {_NEWEST_REPORT})"
        f" AND user_id NOT IN (SELECT id FROM staff_users WHERE {_ACTIVE})"
    )


@dataclass(frozen=True)
class DueNotice:
    user_id: str
    email: str
    changes: int
    """The news counted when it was claimed."""
    claimed_until: str
    """The claim's lease as written: a later claim by another pass writes another."""


# News waits, nobody holds it, and it is urgent or the last notice lies far enough back.
# Parameters: now (a stamp: leases are seconds long), the quiet window's first minute. (No
# column of staff_users has any of these names, so the clause reads alike joined to it.)
_DUE = (
    "pending_since IS NOT NULL AND (claimed_until IS NULL OR claimed_until <= ?)"
    " AND (urgent = 1 OR last_sent_at IS NULL OR last_sent_at < ?)"
)


async def claim_due(
    tx: Tx, now: datetime, every_minutes: int, lease: timedelta, limit: int = 500
) -> list[DueNotice]:
    """Claim every notice due at *now*: news waiting, and urgent or the user's last notice
    more than *every_minutes* back; for this pass until *lease* from now."""
    due = (stamp(now), minute_iso(now - timedelta(minutes=every_minutes)))
    until = stamp(now + lease)
    rows = await tx.fetch(
        "SELECT n.user_id, u.email FROM staff_notices n JOIN staff_users u ON u.id = n.user_id"
        f" WHERE u.{_ACTIVE} AND {_DUE}"
        " ORDER BY n.user_id LIMIT ?",
        (*due, limit),
    )
    claimed = []
    for user_id, email in rows:
        # Again under the row's lock: a pass of another process may have taken it since.
        taken = await tx.fetch(
            f"UPDATE staff_notices SET claimed_until = ? WHERE user_id = ? AND {_DUE}"
            " RETURNING changes",
            (until, user_id, *due),
        )
        if taken:
            claimed.append(DueNotice(str(user_id), str(email), int(taken[0][0]), until))
    return claimed


async def renew(tx: Tx, held: Iterable[DueNotice], until: datetime) -> list[DueNotice]:
    """Hold these claims until *until*; those still this pass's (not taken over by another
    pass since their lease ran out), as renewed."""
    renewed = []
    for notice in held:
        changed = await tx.run(
            "UPDATE staff_notices SET claimed_until = ? WHERE user_id = ? AND claimed_until = ?",
            (stamp(until), notice.user_id, notice.claimed_until),
        )
        if changed:
            renewed.append(replace(notice, claimed_until=stamp(until)))
    return renewed


async def mark_sent(tx: Tx, notice: DueNotice, now: datetime) -> None:
    """The notice went: the news it told of is cleared, news since then still waits."""
    await tx.run(
        "UPDATE staff_notices SET last_sent_at = ?, claimed_until = NULL,"
        " pending_since = CASE WHEN changes = ? THEN NULL ELSE pending_since END,"
        " urgent = CASE WHEN changes = ? THEN 0 ELSE urgent END WHERE user_id = ?",
        (minute_iso(now), notice.changes, notice.changes, notice.user_id),
    )


async def release(tx: Tx, notice: DueNotice) -> None:
    """The notice could not be sent: it is due again at the next pass."""
    await tx.run(
        "UPDATE staff_notices SET claimed_until = NULL WHERE user_id = ?", (notice.user_id,)
    )
