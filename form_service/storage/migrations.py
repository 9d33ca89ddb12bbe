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


# Text times use the "C" collation: byte order, whatever locale the database was made with.
_TIME = 'TEXT COLLATE "C"'

INITIAL_POSTGRES = (
    f"""CREATE TABLE reports (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        report_ref TEXT NOT NULL UNIQUE,
        receipt_hash TEXT NOT NULL UNIQUE,
        token_id TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL DEFAULT 'received'
            CHECK (status IN ('received', 'delivered', 'reviewed')),
        created_at {_TIME} NOT NULL,
        content_age BYTEA,
        purged_at {_TIME}
    )""",
    f"""CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        report_id BIGINT NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
        partner_id TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        agreement_id TEXT NOT NULL,
        payload TEXT,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'sending', 'delivered', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at {_TIME} NOT NULL,
        claimed_until {_TIME},
        last_error TEXT,
        created_at {_TIME} NOT NULL,
        delivered_at {_TIME},
        is_intake INTEGER NOT NULL DEFAULT 0 CHECK (is_intake IN (0, 1))
    )""",
    "CREATE INDEX outbox_due ON outbox (status, next_attempt_at)",
    "CREATE INDEX outbox_report ON outbox (report_id)",
    f"""CREATE TABLE audit_events (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at {_TIME} NOT NULL,
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

INITIAL = Migration(
    1,
    "reports, outbox and audit log",
    (
        """CREATE TABLE reports (
            id INTEGER PRIMARY KEY,
            report_ref TEXT NOT NULL UNIQUE,
            receipt_hash TEXT NOT NULL UNIQUE,
            token_id TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL DEFAULT 'received'
                CHECK (status IN ('received', 'delivered', 'reviewed')),
            created_at TEXT NOT NULL,
            content_age BLOB,
            purged_at TEXT
        )""",
        """CREATE TABLE outbox (
            id TEXT PRIMARY KEY,
            report_id INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
            partner_id TEXT NOT NULL,
            rule_id TEXT NOT NULL,
            agreement_id TEXT NOT NULL,
            payload TEXT,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sending', 'delivered', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            claimed_until TEXT,
            last_error TEXT,
            created_at TEXT NOT NULL,
            delivered_at TEXT,
            is_intake INTEGER NOT NULL DEFAULT 0 CHECK (is_intake IN (0, 1))
        )""",
        "CREATE INDEX outbox_due ON outbox (status, next_attempt_at)",
        "CREATE INDEX outbox_report ON outbox (report_id)",
        """CREATE TABLE audit_events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
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
    ),
    postgres=INITIAL_POSTGRES,
)

MIGRATIONS: tuple[Migration, ...] = (INITIAL,)
