"""One frozen settings object for the service, read from OUTREACH_* environment variables.

``SETTINGS`` is the single table of variables: from_env reads it, the operator guide
documents every entry of it (a test checks that), and each value is checked here so a
bad one stops the service with a sentence naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from outreach.loader import LoadedProfile

SECRET_FILE = "secret_key"  # noqa: S105 (a file name, not a secret)
DATABASE_FILE = "reports.sqlite3"

_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(click.ClickException):
    """A bad OUTREACH_* value; a ClickException so `outreach serve` prints one sentence."""


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    help: str


SETTINGS: tuple[Variable, ...] = (
    Variable("OUTREACH_DATA_DIR", "./var", "Folder for the database, the dev secret and mail."),
    Variable(
        "OUTREACH_DATABASE_URL",
        f"sqlite:///<data dir>/{DATABASE_FILE}",
        "Where reports are stored (sqlite:///relative or sqlite:////absolute path, "
        "or postgresql://user@host/database).",
    ),
    Variable(
        "OUTREACH_DATABASE_POOL_SIZE",
        "10",
        "PostgreSQL: most connections one process holds (service and its worker together).",
    ),
    Variable(
        "OUTREACH_DATABASE_TIMEOUT_SECONDS",
        "5",
        "How long a request waits for the database before the tipster is asked to retry (503).",
    ),
    Variable(
        "OUTREACH_SECRET_KEY",
        f"generated into <data dir>/{SECRET_FILE}",
        "Comma-separated secrets: the first signs form tokens and receipts, all verify.",
    ),
    Variable("OUTREACH_MIN_FILL_SECONDS", "3", "A form sent sooner after loading is refused."),
    Variable("OUTREACH_MAX_TOKEN_AGE_SECONDS", "14400", "A form older than this is refused."),
    Variable(
        "OUTREACH_TRUSTED_PROXIES",
        "(none)",
        "Comma-separated proxy addresses or networks whose X-Forwarded-For is believed.",
    ),
    Variable("OUTREACH_MAX_BODY_BYTES", "65536", "Larger request bodies are refused (413)."),
    Variable("OUTREACH_MAX_FIELDS", "30", "Requests with more form fields are refused (400)."),
    Variable(
        "OUTREACH_STATUS_MIN_SECONDS",
        "0.5",
        "Every status lookup takes at least this long, right code or wrong.",
    ),
    Variable(
        "OUTREACH_STATUS_CLIENT_LIMIT",
        "20",
        "Status lookups one client may make per window.",
    ),
    Variable(
        "OUTREACH_STATUS_GLOBAL_LIMIT",
        "600",
        "Status lookups everyone together may make per window.",
    ),
    Variable("OUTREACH_STATUS_WINDOW_SECONDS", "600", "The rate-limit window for status lookups."),
    Variable(
        "OUTREACH_REPORT_CLIENT_BURST",
        "20",
        "Reports one client (one address) may send at once before its rate applies.",
    ),
    Variable(
        "OUTREACH_REPORT_CLIENT_PER_HOUR",
        "60",
        "Reports one client may send per hour once its burst is used up.",
    ),
    Variable(
        "OUTREACH_REPORT_GLOBAL_PER_MINUTE",
        "120",
        "Reports everyone together may send per minute; more get 429.",
    ),
    Variable(
        "OUTREACH_REPORT_SURGE_PER_MINUTE",
        "60",
        "Report submissions per minute (refused ones included) above which stored reports "
        "are flagged as a possible flood.",
    ),
    Variable(
        "OUTREACH_REPORT_CLIENT_SURGE",
        "3",
        "Reports one client may send beyond its hourly rate before its next ones are flagged "
        "as a possible flood; 0 flags only by the overall surge rate.",
    ),
    Variable(
        "OUTREACH_FLOOD_DIGEST_SECONDS",
        "300",
        "Flagged reports reach each e-mail or maildir partner as one digest message per this "
        "many seconds; 0 sends them one by one.",
    ),
    Variable(
        "OUTREACH_ALLOWED_HOSTS",
        "(none)",
        "Extra comma-separated Host names to answer to, besides the site_url host, "
        "agency.hosts and localhost; other Hosts get 400. '*' answers any.",
    ),
    Variable("OUTREACH_LOG_LEVEL", "info", "Log level of the server and the service."),
)


@dataclass(frozen=True)
class Settings:
    profile: LoadedProfile
    site_dir: Path
    data_dir: Path
    database_url: str = ""
    database_pool_size: int = 10
    database_timeout_seconds: float = 5.0
    secret_keys: tuple[str, ...] = ()
    min_fill_seconds: float = 3.0
    max_token_age_seconds: int = 4 * 3600
    trusted_proxies: tuple[IPNetwork, ...] = ()
    max_body_bytes: int = 64 * 1024
    max_fields: int = 30
    status_min_seconds: float = 0.5
    status_client_limit: int = 20
    status_global_limit: int = 600
    status_window_seconds: float = 600.0
    report_client_burst: int = 20
    report_client_per_hour: float = 60.0
    report_global_per_minute: int = 120
    report_surge_per_minute: int = 60
    report_client_surge: int = 3
    flood_digest_seconds: float = 300.0
    allowed_hosts: tuple[str, ...] = ()
    log_level: str = "info"

    def __post_init__(self) -> None:
        if not self.secret_keys:
            raise SettingsError("Settings need at least one secret key.")
        if not self.database_url:
            object.__setattr__(self, "database_url", sqlite_url(self.data_dir / DATABASE_FILE))
        if self.database_pool_size < 1:
            raise SettingsError("OUTREACH_DATABASE_POOL_SIZE: must be at least 1")
        if self.log_level not in _LOG_LEVELS:
            raise SettingsError(
                f"OUTREACH_LOG_LEVEL={self.log_level!r}: use one of {', '.join(_LOG_LEVELS)}"
            )
        if not self.allowed_hosts:
            object.__setattr__(self, "allowed_hosts", default_hosts(self.profile))

    @classmethod
    def from_env(
        cls,
        profile: LoadedProfile,
        site_dir: Path,
        environ: Mapping[str, str] = os.environ,
    ) -> Settings:
        data_dir = Path(environ.get("OUTREACH_DATA_DIR", "var")).resolve()
        read = _Reader(environ)
        hosts = read.items("OUTREACH_ALLOWED_HOSTS")
        return cls(
            profile=profile,
            site_dir=site_dir.resolve(),
            data_dir=data_dir,
            database_url=environ.get("OUTREACH_DATABASE_URL", "").strip(),
            database_pool_size=read.number("OUTREACH_DATABASE_POOL_SIZE", int, 10),
            database_timeout_seconds=read.number("OUTREACH_DATABASE_TIMEOUT_SECONDS", float, 5.0),
            secret_keys=read.items("OUTREACH_SECRET_KEY") or (dev_secret(data_dir),),
            min_fill_seconds=read.number("OUTREACH_MIN_FILL_SECONDS", float, 3.0),
            max_token_age_seconds=read.number("OUTREACH_MAX_TOKEN_AGE_SECONDS", int, 4 * 3600),
            trusted_proxies=read.networks("OUTREACH_TRUSTED_PROXIES"),
            max_body_bytes=read.number("OUTREACH_MAX_BODY_BYTES", int, 64 * 1024),
            max_fields=read.number("OUTREACH_MAX_FIELDS", int, 30),
            status_min_seconds=read.number("OUTREACH_STATUS_MIN_SECONDS", float, 0.5),
            status_client_limit=read.number("OUTREACH_STATUS_CLIENT_LIMIT", int, 20),
            status_global_limit=read.number("OUTREACH_STATUS_GLOBAL_LIMIT", int, 600),
            status_window_seconds=read.number("OUTREACH_STATUS_WINDOW_SECONDS", float, 600.0),
            report_client_burst=read.number("OUTREACH_REPORT_CLIENT_BURST", int, 20),
            report_client_per_hour=read.number("OUTREACH_REPORT_CLIENT_PER_HOUR", float, 60.0),
            report_global_per_minute=read.number("OUTREACH_REPORT_GLOBAL_PER_MINUTE", int, 120),
            report_surge_per_minute=read.number("OUTREACH_REPORT_SURGE_PER_MINUTE", int, 60),
            report_client_surge=read.number("OUTREACH_REPORT_CLIENT_SURGE", int, 3),
            flood_digest_seconds=read.number("OUTREACH_FLOOD_DIGEST_SECONDS", float, 300.0),
            allowed_hosts=hosts + default_hosts(profile) if hosts else (),
            log_level=environ.get("OUTREACH_LOG_LEVEL", "info").strip().lower() or "info",
        )


class _Reader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def items(self, name: str) -> tuple[str, ...]:
        raw = self.environ.get(name, "")
        return tuple(item.strip() for item in raw.split(",") if item.strip())

    def number(self, name: str, kind: Callable[[str], Any], default: Any) -> Any:
        raw = self.environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r}: not a number") from None
        if value < 0:
            raise SettingsError(f"{name}={raw!r}: must not be negative")
        return value

    def networks(self, name: str) -> tuple[IPNetwork, ...]:
        networks = []
        for item in self.items(name):
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise SettingsError(f"{name}: {item!r} is not an IP address or network") from None
        return tuple(networks)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def default_hosts(profile: LoadedProfile) -> tuple[str, ...]:
    site_host = profile.profile.agency.site_url.host or ""
    # Starlette compares the Host header without its port, and an IPv6 host keeps brackets.
    return (site_host, *profile.profile.agency.hosts, "localhost", "127.0.0.1", "[::1]")


def dev_secret(data_dir: Path) -> str:
    """The secret kept in the data dir, created once with owner-only access."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        secret = path.read_text(encoding="ascii").strip()
        if not secret:
            raise SettingsError(f"{path} is empty; delete it to generate a new secret") from None
        return secret
    secret = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secret + "\n")
    return secret
