"""Requests for information to partners, written once for both databases.

The clear columns say who asked which partner, under which agreement and legal basis, which
report fields went with the question, when, and how it ended; the question and the answer
are sealed (``question_age``, ``answer_age``) and never read here. Each function takes a
transaction (``store.transaction()``), so a request and its audit row commit together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from form_service.storage import Tx
from form_service.times import minute_iso

OPEN = "open"
ENDINGS = ("answered", "nothing", "declined")
"""How a partner closes a request: an answer, "nothing relevant", or a declined request."""
WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class NewRequest:
    report_ref: str
    partner_id: str
    agreement_id: str
    basis_id: str
    fields: tuple[str, ...]
    urgent: bool
    asked_by_id: str
    asked_by: str
    asked_at: datetime
    due_at: datetime
    question_age: bytes


@dataclass(frozen=True)
class InfoRequest:
    id: int
    report_ref: str
    partner_id: str
    agreement_id: str
    basis_id: str
    fields: tuple[str, ...]
    urgent: bool
    asked_by_id: str
    asked_by: str
    asked_at: str
    due_at: str
    question_age: bytes
    state: str
    answered_by: str | None
    answered_at: str | None
    answer_age: bytes | None

    @property
    def is_open(self) -> bool:
        return self.state == OPEN


_COLUMNS = (
    "id, report_ref, partner_id, agreement_id, basis_id, fields, urgent, asked_by_id, asked_by,"
    " asked_at, due_at, question_age, state, answered_by, answered_at, answer_age"
)


def _request(row: tuple[Any, ...]) -> InfoRequest:
    return InfoRequest(
        id=int(row[0]),
        report_ref=row[1],
        partner_id=row[2],
        agreement_id=row[3],
        basis_id=row[4],
        fields=tuple(name for name in str(row[5]).split(",") if name),
        urgent=bool(row[6]),
        asked_by_id=row[7],
        asked_by=row[8],
        asked_at=row[9],
        due_at=row[10],
        question_age=bytes(row[11]),
        state=row[12],
        answered_by=row[13],
        answered_at=row[14],
        answer_age=None if row[15] is None else bytes(row[15]),
    )


async def add_request(tx: Tx, new: NewRequest) -> int:
    rows = await tx.fetch(
        "INSERT INTO info_requests (report_ref, partner_id, agreement_id, basis_id, fields,"
        " urgent, asked_by_id, asked_by, asked_at, due_at, question_age)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            new.report_ref,
            new.partner_id,
            new.agreement_id,
            new.basis_id,
            ",".join(new.fields),
            int(new.urgent),
            new.asked_by_id,
            new.asked_by,
            minute_iso(new.asked_at),
            minute_iso(new.due_at),
            new.question_age,
        ),
    )
    return int(rows[0][0])


async def request_by_id(tx: Tx, request_id: int) -> InfoRequest | None:
    rows = await tx.fetch(f"SELECT {_COLUMNS} FROM info_requests WHERE id = ?", (request_id,))
    return _request(rows[0]) if rows else None


async def requests_of_report(tx: Tx, report_ref: str) -> list[InfoRequest]:
    rows = await tx.fetch(
        f"SELECT {_COLUMNS} FROM info_requests WHERE report_ref = ? ORDER BY id", (report_ref,)
    )
    return [_request(row) for row in rows]


async def requests_to_partner(tx: Tx, partner_id: str, limit: int = 200) -> list[InfoRequest]:
    """A partner's requests whose report is still kept: open ones first, then newest first."""
    rows = await tx.fetch(
        f"SELECT {_COLUMNS} FROM info_requests q WHERE partner_id = ? AND EXISTS (SELECT 1"
        " FROM reports r WHERE r.report_ref = q.report_ref AND r.purged_at IS NULL)"
        " ORDER BY CASE WHEN state = 'open' THEN 0 ELSE 1 END, id DESC LIMIT ?",
        (partner_id, limit),
    )
    return [_request(row) for row in rows]


async def requests_asked_between(
    tx: Tx, partner_id: str, start: str, end: str
) -> list[InfoRequest]:
    """Every request to a partner asked from *start* to before *end*, kept report or not:
    the partner's record of requests and disclosures outlives the report."""
    rows = await tx.fetch(
        f"SELECT {_COLUMNS} FROM info_requests WHERE partner_id = ? AND asked_at >= ?"
        " AND asked_at < ? ORDER BY id",
        (partner_id, start, end),
    )
    return [_request(row) for row in rows]


async def close_request(
    tx: Tx, request_id: int, state: str, who: str, answer_age: bytes, now: datetime
) -> bool:
    """Record the partner's answer; False when the request is no longer open."""
    changed = await tx.run(
        "UPDATE info_requests SET state = ?, answered_by = ?, answered_at = ?, answer_age = ?"
        " WHERE id = ? AND state = 'open'",
        (state, who, minute_iso(now), answer_age, request_id),
    )
    return changed == 1


async def withdraw(tx: Tx, request_id: int) -> bool:
    """The intake team takes back a request not answered yet; False when it was."""
    changed = await tx.run(
        "UPDATE info_requests SET state = 'withdrawn' WHERE id = ? AND state = 'open'",
        (request_id,),
    )
    return changed == 1


@dataclass(frozen=True)
class RequestFacts:
    """What the program figures count of a request: never its question or answer."""

    partner_id: str
    asked_at: str
    state: str
    answered_at: str | None


async def requests_since(tx: Tx, since: str) -> list[RequestFacts]:
    rows = await tx.fetch(
        "SELECT partner_id, asked_at, state, answered_at FROM info_requests"
        " WHERE asked_at >= ? ORDER BY asked_at",
        (since,),
    )
    return [RequestFacts(*row) for row in rows]
