"""Versioned schema changes, applied in order at startup; never edit a released one.

One list of versions serves both databases: each migration holds its SQLite statements and,
where the dialects differ, its PostgreSQL ones. Both keep the same columns with the same
values (times as fixed-width UTC text, compared byte by byte), so a query reads alike on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Dialect = Literal["sqlite", "postgres"]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]
    """SQLite's statements, and PostgreSQL's too when ``postgres`` is None."""
    postgres: tuple[str, ...] | None = None

    def for_dialect(self, dialect: Dialect) -> tuple[str, ...]:
        if dialect == "postgres" and self.postgres is not None:
            return self.postgres
        return self.statements


# Column types that differ by dialect; everything else in the schema is written once.
# Text times use the "C" collation on PostgreSQL: byte order, whatever locale the database
# was made with (SQLite compares text byte by byte anyway).
_TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {"id": "INTEGER PRIMARY KEY", "ref": "INTEGER", "time": "TEXT", "blob": "BLOB"},
    "postgres": {
        "id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "ref": "BIGINT",
        "time": 'TEXT COLLATE "C"',
        "blob": "BYTEA",
    },
}

_INITIAL = (
    """CREATE TABLE reports (
        id {id},
        report_ref TEXT NOT NULL UNIQUE,
        receipt_hash TEXT NOT NULL UNIQUE,
        token_id TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL DEFAULT 'received'
            CHECK (status IN ('received', 'delivered', 'reviewed')),
        created_at {time} NOT NULL,
        content_age {blob},
        purged_at {time}
    )""",
    """CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        report_id {ref} NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
        partner_id TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        agreement_id TEXT NOT NULL,
        payload TEXT,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'sending', 'delivered', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at {time} NOT NULL,
        claimed_until {time},
        last_error TEXT,
        created_at {time} NOT NULL,
        delivered_at {time},
        is_intake INTEGER NOT NULL DEFAULT 0 CHECK (is_intake IN (0, 1))
    )""",
    "CREATE INDEX outbox_due ON outbox (status, next_attempt_at)",
    "CREATE INDEX outbox_report ON outbox (report_id)",
    """CREATE TABLE audit_events (
        id {id},
        at {time} NOT NULL,
        report_ref TEXT NOT NULL,
        event TEXT NOT NULL CHECK (event IN (
            'received', 'routed', 'delivery_attempt', 'delivered', 'dead', 'purged')),
        partner_id TEXT,
        rule_id TEXT,
        agreement_id TEXT,
        fields TEXT,
        outcome TEXT
    )""",
    "CREATE INDEX audit_report ON audit_events (report_ref)",
)


def _typed(statements: tuple[str, ...], dialect: Dialect) -> tuple[str, ...]:
    return tuple(statement.format(**_TYPES[dialect]) for statement in statements)


INITIAL = Migration(
    1,
    "reports, outbox and audit log",
    _typed(_INITIAL, "sqlite"),
    postgres=_typed(_INITIAL, "postgres"),
)

MIGRATIONS: tuple[Migration, ...] = (INITIAL,)
