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

# The team's side: staff accounts and their sign-in tokens, the inbox's state of each
# report, the team keys (the intake team's, each partner's) sealed to each member, notes,
# and the hash-chained log of what staff did. Reports already stored enter the inbox as
# received; their content stays readable with the archive key only (it was sealed before
# any staff key existed). Danger-now reports nobody acknowledges are escalated to the
# profile's contacts, one step at a time.
_STAFF = (
    """CREATE TABLE staff_users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('invited', 'active', 'disabled')),
        password_hash TEXT,
        kdf_salt {blob},
        identity_sealed {blob},
        recipient TEXT,
        totp_sealed {blob},
        totp_last_step {ref} NOT NULL DEFAULT 0,
        failed_at {time},
        failures INTEGER NOT NULL DEFAULT 0,
        created_at {time} NOT NULL
    )""",
    """CREATE TABLE staff_tokens (
        id_hash TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('enrol', 'signin', 'session')),
        user_id TEXT NOT NULL REFERENCES staff_users (id) ON DELETE CASCADE,
        sealed {blob},
        created_at {time} NOT NULL,
        last_seen_at {time} NOT NULL,
        expires_at {time} NOT NULL
    )""",
    "CREATE INDEX staff_tokens_user ON staff_tokens (user_id, kind)",
    """CREATE TABLE staff_recovery (
        user_id TEXT NOT NULL REFERENCES staff_users (id) ON DELETE CASCADE,
        code_hash TEXT NOT NULL,
        PRIMARY KEY (user_id, code_hash)
    )""",
    """CREATE TABLE staff_audit (
        id {id},
        at {time} NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        report_ref TEXT,
        detail TEXT,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE
    )""",
    "CREATE INDEX staff_audit_report ON staff_audit (report_ref)",
    """CREATE TABLE staff_groups (
        name TEXT PRIMARY KEY,
        recipient TEXT NOT NULL,
        created_at {time} NOT NULL
    )""",
    """CREATE TABLE group_keys (
        name TEXT NOT NULL REFERENCES staff_groups (name),
        user_id TEXT NOT NULL REFERENCES staff_users (id) ON DELETE CASCADE,
        sealed {blob} NOT NULL,
        PRIMARY KEY (name, user_id)
    )""",
    "ALTER TABLE reports ADD COLUMN urgent INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE reports ADD COLUMN stage TEXT NOT NULL DEFAULT 'received'"
    " CHECK (stage IN ('received', 'triaged', 'assigned', 'closed'))",
    "ALTER TABLE reports ADD COLUMN acknowledged_at {time}",
    "ALTER TABLE reports ADD COLUMN assigned_to TEXT",
    "ALTER TABLE reports ADD COLUMN outcome TEXT",
    "ALTER TABLE reports ADD COLUMN closed_at {time}",
    # Program figures count reports by these coarse categories (ids from the profile's
    # fixed lists, never the tipster's words): the same facts that decide routing, which
    # every partner's delivery already reveals. Reports stored before this version have
    # none. The index serves the figures' months.
    "ALTER TABLE reports ADD COLUMN area TEXT",
    "ALTER TABLE reports ADD COLUMN setting TEXT",
    "ALTER TABLE reports ADD COLUMN concern TEXT",
    "CREATE INDEX reports_created ON reports (created_at)",
    "CREATE INDEX reports_stage ON reports (stage, id)",
    "CREATE INDEX reports_assigned ON reports (assigned_to, id)",
    # The danger-now box on every inbox page, and the open and overdue views: partial
    # indexes hold only the rows they may list, where a scan would read every report
    # (bench/inbox.py: 50 ms a page at 100,000 reports without them).
    # The danger-now box looks up acknowledged_at IS NULL as a key: an equality on a key
    # column, which SQLite's planner (without statistics) always prefers to the open index.
    "CREATE INDEX reports_urgent ON reports (acknowledged_at, id) WHERE urgent = 1",
    "CREATE INDEX reports_open ON reports (id) WHERE stage <> 'closed'",
    """CREATE TABLE partner_shares (
        report_ref TEXT NOT NULL,
        partner_id TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('held', 'shared', 'withheld')),
        view_age {blob},
        shared_at {time},
        released_by TEXT,
        outcome TEXT,
        closed_at {time},
        PRIMARY KEY (report_ref, partner_id)
    )""",
    "CREATE INDEX partner_shares_partner ON partner_shares (partner_id, state, report_ref)",
    """CREATE TABLE case_notes (
        id {id},
        report_ref TEXT NOT NULL,
        author TEXT NOT NULL,
        at {time} NOT NULL,
        body_age {blob} NOT NULL
    )""",
    "CREATE INDEX case_notes_report ON case_notes (report_ref, id)",
    # Escalation of danger-now reports: notices sent so far, and the minute the next is due.
    "ALTER TABLE reports ADD COLUMN escalation_step INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE reports ADD COLUMN escalation_due_at {time}",
    "CREATE INDEX reports_unacknowledged ON reports (id)"
    " WHERE urgent = 1 AND acknowledged_at IS NULL",
)

STAFF = Migration(
    2,
    "staff accounts, the inbox and its audit log",
    _typed(_STAFF, "sqlite"),
    postgres=_typed(_STAFF, "postgres"),
)

# The tipster's conversation. Receipt codes become random: the database keeps a keyed hash
# of the code and, for a double submit, the code sealed under the form token's id, of which
# it keeps only a hash. The ids stored until now derived their reports' codes with the
# service secret: they are forgotten (a form sent before the upgrade and sent again after it
# makes a second report rather than showing the first one's code). Each report gets a thread
# identity, its public half in the clear, its secret half sealed under a key from the code:
# reports stored before get theirs the first time their tipster checks in.
_CONVERSATION = (
    "ALTER TABLE reports ADD COLUMN receipt_sealed {blob}",
    "ALTER TABLE reports ADD COLUMN thread_recipient TEXT",
    "ALTER TABLE reports ADD COLUMN thread_sealed {blob}",
    "ALTER TABLE reports ADD COLUMN tipster_unread INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE reports ADD COLUMN awaiting_tipster INTEGER NOT NULL DEFAULT 0",
    "UPDATE reports SET token_id = 'forgotten:' || report_ref",
    """CREATE TABLE tipster_messages (
        id {id},
        report_id {ref} NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
        sender TEXT NOT NULL CHECK (sender IN ('tipster', 'staff')),
        author TEXT,
        at {time} NOT NULL,
        body_age {blob} NOT NULL
    )""",
    "CREATE INDEX tipster_messages_report ON tipster_messages (report_id, id)",
    # The inbox's "new messages" and "awaiting tipster" views: only the reports they list.
    "CREATE INDEX reports_tipster_unread ON reports (id) WHERE tipster_unread = 1",
    "CREATE INDEX reports_awaiting_tipster ON reports (id) WHERE awaiting_tipster = 1",
)

CONVERSATION = Migration(
    3,
    "random receipt codes and the tipster's conversation",
    _typed(_CONVERSATION, "sqlite"),
    postgres=_typed(_CONVERSATION, "postgres"),
)

# Staff notices: "something new for you in the inbox", coalesced per user. A row per user
# who was ever due one: whether news waits for them (since which minute, whether urgent),
# the claim of the pass sending it, when the last went, and the newest report they were
# told about (new reports are found by the pass, never written by the report's own
# transaction). ``changes`` counts the news, so a pass that sent a notice clears only what
# it told of.
_NOTICES = (
    """CREATE TABLE staff_notices (
        user_id TEXT PRIMARY KEY REFERENCES staff_users (id) ON DELETE CASCADE,
        pending_since {time},
        urgent INTEGER NOT NULL DEFAULT 0 CHECK (urgent IN (0, 1)),
        changes {ref} NOT NULL DEFAULT 0,
        claimed_until {time},
        last_sent_at {time},
        last_report_id {ref} NOT NULL DEFAULT 0
    )""",
)

NOTICES = Migration(
    4,
    "staff notices",
    _typed(_NOTICES, "sqlite"),
    postgres=_typed(_NOTICES, "postgres"),
)

# Requests for information: the intake team asks one partner about one report, under the
# partner's agreement and a legal basis it permits; the partner answers, finds nothing, or
# declines. In the clear: who, which partner, agreement, basis, the names of the report
# fields included, when, and the state. The question and the answer (text, categories of
# information disclosed, a decline's reason) are sealed to the intake team, that partner's
# users and the archive key.
_REQUESTS = (
    """CREATE TABLE info_requests (
        id {id},
        report_ref TEXT NOT NULL,
        partner_id TEXT NOT NULL,
        agreement_id TEXT NOT NULL,
        basis_id TEXT NOT NULL,
        fields TEXT NOT NULL,
        urgent INTEGER NOT NULL DEFAULT 0 CHECK (urgent IN (0, 1)),
        asked_by_id TEXT NOT NULL,
        asked_by TEXT NOT NULL,
        asked_at {time} NOT NULL,
        due_at {time} NOT NULL,
        question_age {blob} NOT NULL,
        state TEXT NOT NULL DEFAULT 'open'
            CHECK (state IN ('open', 'answered', 'nothing', 'declined', 'withdrawn')),
        answered_by TEXT,
        answered_at {time},
        answer_age {blob}
    )""",
    "CREATE INDEX info_requests_report ON info_requests (report_ref, id)",
    "CREATE INDEX info_requests_partner ON info_requests (partner_id, asked_at)",
)

REQUESTS = Migration(
    5,
    "requests for information to partners",
    _typed(_REQUESTS, "sqlite"),
    postgres=_typed(_REQUESTS, "postgres"),
)

# Files a tipster attached (form_service/uploads.py): held under the form's token hash
# until the report with that token is stored (reports.token_id links them, so no second
# write is needed after the report's commit), or under 'thread:<ref>' when added in the
# conversation. In the clear only what the receipt lists: kind, media type, size, order.
# The bytes are pieces of copies: the archive copy (age, to the report's recipients), the
# delivery copy (the service's key), deleted once every partner has it, and for each
# partner sent the files whose users have a key, its users' copy ('partner:<id>', age).
_ATTACHMENTS = (
    """CREATE TABLE attachments (
        id TEXT PRIMARY KEY,
        token_id TEXT NOT NULL,
        report_ref TEXT,
        position INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('image', 'video')),
        media_type TEXT NOT NULL,
        size {ref} NOT NULL,
        delivery_pieces INTEGER NOT NULL,
        created_at {time} NOT NULL
    )""",
    "CREATE INDEX attachments_token ON attachments (token_id)",
    "CREATE INDEX attachments_report ON attachments (report_ref)",
    """CREATE TABLE attachment_pieces (
        attachment_id TEXT NOT NULL REFERENCES attachments (id) ON DELETE CASCADE,
        copy TEXT NOT NULL CHECK (copy IN ('archive', 'delivery') OR copy LIKE 'partner:%'),
        n INTEGER NOT NULL,
        data {blob} NOT NULL,
        PRIMARY KEY (attachment_id, copy, n)
    )""",
)

ATTACHMENTS = Migration(
    6,
    "files attached to reports",
    _typed(_ATTACHMENTS, "sqlite"),
    postgres=_typed(_ATTACHMENTS, "postgres"),
)

# A photo is stored as sent, sealed (form_service/waiting_files.py), and cleaned after the
# receipt: 'waiting' until then ('delivery' pieces hold it, under a key of its own),
# 'ready' after, 'unreadable' when it failed to decode. claimed_at, to the minute, is when
# a process began cleaning it: a claim older than a few minutes is a stopped process's.
WAITING_FILES = Migration(
    7,
    "photos cleaned after the receipt",
    (
        "ALTER TABLE attachments ADD COLUMN state TEXT NOT NULL DEFAULT 'ready'"
        " CHECK (state IN ('waiting', 'ready', 'unreadable'))",
        "ALTER TABLE attachments ADD COLUMN claimed_at TEXT",
        "CREATE INDEX attachments_waiting ON attachments (state)",
    ),
    postgres=(
        "ALTER TABLE attachments ADD COLUMN state TEXT NOT NULL DEFAULT 'ready'"
        " CHECK (state IN ('waiting', 'ready', 'unreadable'))",
        'ALTER TABLE attachments ADD COLUMN claimed_at TEXT COLLATE "C"',
        "CREATE INDEX attachments_waiting ON attachments (state)",
    ),
)

MIGRATIONS: tuple[Migration, ...] = (
    INITIAL,
    STAFF,
    CONVERSATION,
    NOTICES,
    REQUESTS,
    ATTACHMENTS,
    WAITING_FILES,
)
