"""One frozen settings object for the service, read from OUTREACH_* environment variables.

``SETTINGS`` is the one table of settings: each row names the variable, the field of
``Settings`` it fills, how its text is read and checked, its default and its help. The
defaults of ``Settings``, ``Settings.from_env`` and the operator guide's table
(guide/report-service.md, checked by tests/form_service/test_settings.py) all come from it,
and a bad value stops the service with a sentence naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import click

from form_service.private_files import private_folder
from form_service.report_form import largest_form_bytes
from outreach.loader import LoadedProfile, ProfileError, load_profile

SECRET_FILE = "secret_key"  # noqa: S105 (a file name, not a secret)
DATABASE_FILE = "reports.sqlite3"

_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(click.ClickException):
    """A bad OUTREACH_* value; a ClickException so `outreach serve` prints one sentence."""


# Readers: (variable name, its text, stripped) -> the value, or SettingsError naming it.


def _text(name: str, raw: str) -> str:
    return raw


def _lower(name: str, raw: str) -> str:
    return raw.lower()


def _items(name: str, raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


MIB = 1024 * 1024

# A signing secret shorter than this could be guessed offline from one signed form token;
# secrets.token_hex(32), as the guide suggests and the development secret is, has 64.
MIN_SECRET_CHARS = 32


def _secret_keys(name: str, raw: str) -> tuple[str, ...]:
    keys = _items(name, raw)
    short = [n for n, key in enumerate(keys, 1) if len(key) < MIN_SECRET_CHARS]
    if short:
        which = "the secret" if len(keys) == 1 else f"secret {', '.join(map(str, short))}"
        raise SettingsError(
            f"{name}: {which} is shorter than {MIN_SECRET_CHARS} characters. Make one with "
            '`python -c "import secrets; print(secrets.token_hex(32))"`, or leave '
            f"{name} unset for a trial, which keeps a generated one in the data dir."
        )
    return keys


def _path(name: str, raw: str) -> Path:
    return Path(raw).resolve()


def _number(kind: Callable[[str], Any]) -> Callable[[str, str], Any]:
    def read(name: str, raw: str) -> Any:
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r}: not a number") from None
        if value < 0:
            raise SettingsError(f"{name}={raw!r}: must not be negative")
        return value

    return read


def _switch(name: str, raw: str) -> bool:
    if raw not in ("0", "1"):
        raise SettingsError(f"{name}={raw!r}: use 1 (on) or 0 (off)")
    return raw == "1"


def _networks(name: str, raw: str) -> tuple[IPNetwork, ...]:
    networks = []
    for item in _items(name, raw):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SettingsError(f"{name}: {item!r} is not an IP address or network") from None
    return tuple(networks)


def _profile(name: str, raw: str) -> LoadedProfile:
    try:
        return load_profile(raw or None)
    except ProfileError as error:
        raise SettingsError(f"{name}: {error}") from None


@dataclass(frozen=True)
class Setting:
    env: str
    field: str
    """The field of Settings it fills."""
    read: Callable[[str, str], Any]
    default: str
    """The text used when the variable is unset or empty."""
    help: str
    """Markdown, as the guide's table shows it."""
    shown: str = ""
    """The guide's Default column, when it is not simply the default text."""

    def value(self, environ: Mapping[str, str]) -> Any:
        raw = environ.get(self.env, "").strip() or self.default
        return self.read(self.env, raw)

    def default_value(self) -> Any:
        return self.read(self.env, self.default)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "OUTREACH_PROFILE",
        "profile",
        _profile,
        "",
        "The agency profile the service serves: its folder or its `agency.yml`. The `outreach` "
        "commands take `--profile` instead, and `outreach serve --workers N` sets this for "
        "its processes.",
        shown="the demo agency",
    ),
    Setting(
        "OUTREACH_SITE_DIR",
        "site_dir",
        _path,
        "var/site",
        "The built outreach site the service serves besides its own pages (`outreach build "
        "--out`). `outreach serve` takes `--out` instead, and sets this for its processes.",
    ),
    Setting(
        "OUTREACH_DATA_DIR",
        "data_dir",
        _path,
        "./var",
        "Folder for the database, the development secret and the delivery maildirs.",
    ),
    Setting(
        "OUTREACH_DATABASE_URL",
        "database_url",
        _text,
        "",
        "Where reports are stored: `sqlite:///relative/path` or `sqlite:////absolute/path` on "
        "one machine, or `postgresql://user@host/database` for several processes or machines "
        "(see [Several machines on PostgreSQL](deploy-postgresql.md)).",
        shown=f"`sqlite:///<data dir>/{DATABASE_FILE}`",
    ),
    Setting(
        "OUTREACH_DATABASE_POOL_SIZE",
        "database_pool_size",
        _number(int),
        "10",
        "PostgreSQL only: the most connections one process (service and its delivery worker "
        "together) keeps open.",
    ),
    Setting(
        "OUTREACH_DATABASE_TIMEOUT_SECONDS",
        "database_timeout_seconds",
        _number(float),
        "5",
        "How long a report waits for the database. Past it, or when the database is down, "
        "read-only or full, the tipster gets a 503 page that keeps their text and says nothing "
        "was saved.",
    ),
    Setting(
        "OUTREACH_SECRET_KEY",
        "secret_keys",
        _secret_keys,
        "",
        "One secret, or several separated by commas. The **first** signs new form tokens and "
        "makes new receipt codes; **all** are accepted when checking. Each must be at least "
        f"{MIN_SECRET_CHARS} characters long; the service refuses to start with a shorter one.",
        shown=f"generated into `<data dir>/{SECRET_FILE}`",
    ),
    Setting(
        "OUTREACH_MIN_FILL_SECONDS",
        "min_fill_seconds",
        _number(float),
        "3",
        "A form sent back sooner than this after it was shown is refused as too fast (bots "
        "fill forms instantly).",
    ),
    Setting(
        "OUTREACH_MAX_TOKEN_AGE_SECONDS",
        "max_token_age_seconds",
        _number(int),
        "14400",
        "A form older than this is refused; the tipster's text is shown again with a fresh form.",
        shown="`14400` (4 hours)",
    ),
    Setting(
        "OUTREACH_TRUSTED_PROXIES",
        "trusted_proxies",
        _networks,
        "",
        "Comma-separated addresses or networks (`10.0.0.0/8`) of your reverse proxies. Only "
        "from these is `X-Forwarded-For` believed, and only to rate-limit status look-ups "
        "and reports.",
        shown="none",
    ),
    Setting(
        "OUTREACH_MAX_BODY_BYTES",
        "max_body_bytes",
        _number(int),
        str(2 * largest_form_bytes()),
        "A request body larger than this is refused with 413 before it is read. The default "
        "is twice the largest report a person can type (every field at its character limit, "
        "in any script), so a report too long for its fields is still read and answered "
        "with what to shorten, its text kept; a lower value refuses long reports in "
        "non-Latin scripts unread.",
    ),
    Setting(
        "OUTREACH_MAX_IMAGE_BYTES",
        "max_image_bytes",
        _number(int),
        str(10 * MIB),
        "The largest photo or screenshot a tipster may attach (JPEG, PNG, WebP, GIF, HEIC). "
        "The form says the limit beside its file field.",
        shown="`10485760` (10 MB)",
    ),
    Setting(
        "OUTREACH_MAX_VIDEO_BYTES",
        "max_video_bytes",
        _number(int),
        str(50 * MIB),
        "The largest video a tipster may attach (MP4, MOV).",
        shown="`52428800` (50 MB)",
    ),
    Setting(
        "OUTREACH_MAX_REPORT_FILES_BYTES",
        "max_report_files_bytes",
        _number(int),
        str(60 * MIB),
        "All the files of one report together (at most 5 files). A report form with files "
        "may be this much larger than `OUTREACH_MAX_BODY_BYTES`; reading stops, with 413, as "
        "soon as it is past that.",
        shown="`62914560` (60 MB)",
    ),
    Setting(
        "OUTREACH_MAX_FIELDS",
        "max_fields",
        _number(int),
        "30",
        "A form with more fields than this is refused with 400.",
    ),
    Setting(
        "OUTREACH_STATUS_MIN_SECONDS",
        "status_min_seconds",
        _number(float),
        "0.5",
        "Every status look-up takes at least this long, whether the code is right or wrong.",
    ),
    Setting(
        "OUTREACH_STATUS_CLIENT_LIMIT",
        "status_client_limit",
        _number(int),
        "20",
        "Status look-ups by receipt code one client (one address, an IPv6 /64) may make per "
        "window. There is no limit for all clients together, so no one can lock others out.",
    ),
    Setting(
        "OUTREACH_STATUS_WINDOW_SECONDS",
        "status_window_seconds",
        _number(float),
        "600",
        "The length of the rate-limit window.",
    ),
    Setting(
        "OUTREACH_REPORT_CLIENT_BURST",
        "report_client_burst",
        _number(int),
        "30",
        "Reports one client (one address) may send at once before its hourly rate applies: "
        "a class or an assembly behind a school's one address.",
    ),
    Setting(
        "OUTREACH_REPORT_CLIENT_PER_HOUR",
        "report_client_per_hour",
        _number(float),
        "60",
        "Reports one client may send per hour once its burst is used up. A school behind one "
        "address gets 30 at once and 60 more an hour.",
    ),
    Setting(
        "OUTREACH_REPORT_GLOBAL_PER_MINUTE",
        "report_global_per_minute",
        _number(int),
        "120",
        "Reports all clients together may send per minute; this protects the database. More "
        "get 429.",
    ),
    Setting(
        "OUTREACH_REPORT_SURGE_PER_MINUTE",
        "report_surge_per_minute",
        _number(int),
        "60",
        "Forms sent per minute with a valid form token (each form counted once, refused ones "
        "included), above which the reports stored in that minute and the next are flagged "
        "as a possible flood.",
    ),
    Setting(
        "OUTREACH_REPORT_CLIENT_SURGE",
        "report_client_surge",
        _number(int),
        "15",
        "Forms one client (one address) may send within 10 seconds before its next ones are "
        "flagged as a possible flood, so a script's burst from one address is flagged before "
        "the overall count notices it. People sharing one address each fill in their own form, "
        "far slower: thirty in ten minutes are never flagged. `0` flags only by the overall surge "
        "rate.",
    ),
    Setting(
        "OUTREACH_CONNECTIONS_PER_CLIENT",
        "connections_per_client",
        _number(int),
        "128",
        "Connections one client (one address, an IPv6 /64) may hold open to one process of "
        "`outreach serve`, so that one address cannot take every connection; its requests on "
        "more get the busy page (503). Not applied to trusted proxies. `0`: no cap.",
    ),
    Setting(
        "OUTREACH_FLOOD_DIGEST_SECONDS",
        "flood_digest_seconds",
        _number(float),
        "300",
        "Reports flagged as a possible flood reach each e-mail or Maildir partner as one "
        "digest message per this many seconds instead of one message each (see "
        "[Floods](delivery.md#floods-one-digest-instead-of-a-message-per-report)). `0` sends "
        "them one by one.",
        shown="`300` (5 minutes)",
    ),
    Setting(
        "OUTREACH_DELIVERY_WORKER",
        "delivery_worker",
        _switch,
        "1",
        "`1`: each process of the service also delivers reports to partners. `0`: delivery "
        "is left to `outreach worker` (`outreach serve --no-worker` sets this).",
    ),
    Setting(
        "OUTREACH_ALLOWED_HOSTS",
        "allowed_hosts",
        _items,
        "",
        "Extra host names to answer to, comma-separated. The host of `agency.site_url`, "
        "`agency.hosts`, `localhost` and `127.0.0.1` are always allowed; `*` allows any. "
        "Other `Host` headers get 400.",
        shown="none",
    ),
    Setting(
        "OUTREACH_LOG_LEVEL",
        "log_level",
        _lower,
        "info",
        "`debug`, `info`, `warning`, `error` or `critical`.",
    ),
)

_BY_FIELD = {setting.field: setting for setting in SETTINGS}


def _default(field: str) -> Any:
    return _BY_FIELD[field].default_value()


@dataclass(frozen=True)
class Settings:
    # Required here (tests and commands always name them); from_env reads them too.
    profile: LoadedProfile
    site_dir: Path
    data_dir: Path
    database_url: str = _default("database_url")
    database_pool_size: int = _default("database_pool_size")
    database_timeout_seconds: float = _default("database_timeout_seconds")
    secret_keys: tuple[str, ...] = _default("secret_keys")
    min_fill_seconds: float = _default("min_fill_seconds")
    max_token_age_seconds: int = _default("max_token_age_seconds")
    trusted_proxies: tuple[IPNetwork, ...] = _default("trusted_proxies")
    max_body_bytes: int = _default("max_body_bytes")
    max_image_bytes: int = _default("max_image_bytes")
    max_video_bytes: int = _default("max_video_bytes")
    max_report_files_bytes: int = _default("max_report_files_bytes")
    max_fields: int = _default("max_fields")
    status_min_seconds: float = _default("status_min_seconds")
    status_client_limit: int = _default("status_client_limit")
    status_window_seconds: float = _default("status_window_seconds")
    report_client_burst: int = _default("report_client_burst")
    report_client_per_hour: float = _default("report_client_per_hour")
    report_global_per_minute: int = _default("report_global_per_minute")
    report_surge_per_minute: int = _default("report_surge_per_minute")
    report_client_surge: int = _default("report_client_surge")
    connections_per_client: int = _default("connections_per_client")
    flood_digest_seconds: float = _default("flood_digest_seconds")
    delivery_worker: bool = _default("delivery_worker")
    allowed_hosts: tuple[str, ...] = _default("allowed_hosts")
    log_level: str = _default("log_level")

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
        profile: LoadedProfile | None = None,
        site_dir: Path | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> Settings:
        """Every setting from *environ*; a *profile* or *site_dir* given (a command's
        options) is used instead of its variable."""
        given: dict[str, Any] = {}
        if profile is not None:
            given["profile"] = profile
        if site_dir is not None:
            given["site_dir"] = site_dir.resolve()
        values = {s.field: s.value(environ) for s in SETTINGS if s.field not in given} | given
        # No secret set: the one kept in the data dir, made on the first start.
        values["secret_keys"] = values["secret_keys"] or (dev_secret(values["data_dir"]),)
        hosts = values["allowed_hosts"]
        values["allowed_hosts"] = hosts + default_hosts(values["profile"]) if hosts else ()
        return cls(**values)


def data_dir_from_env(environ: Mapping[str, str] = os.environ) -> Path:
    """OUTREACH_DATA_DIR, or its default, for a command that needs nothing else."""
    return cast(Path, _BY_FIELD["data_dir"].value(environ))


def max_body_bytes_from_env(environ: Mapping[str, str] = os.environ) -> int:
    """OUTREACH_MAX_BODY_BYTES, or its default: the largest report form without files."""
    return cast(int, _BY_FIELD["max_body_bytes"].value(environ))


def proxy_body_limit_from_env(environ: Mapping[str, str] = os.environ) -> int:
    """The largest body the service reads: a report's text and all its files
    (OUTREACH_MAX_BODY_BYTES + OUTREACH_MAX_REPORT_FILES_BYTES). A proxy in front allows
    exactly this much, so every body the service would read reaches it."""
    files = cast(int, _BY_FIELD["max_report_files_bytes"].value(environ))
    return max_body_bytes_from_env(environ) + files


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def default_hosts(profile: LoadedProfile) -> tuple[str, ...]:
    agency = profile.profile.agency
    site_host = agency.site_url.host or ""
    service_host = (agency.service_url.host or "",) if agency.service_url else ()
    onion = (urlsplit(agency.onion_url).hostname or "",) if agency.onion_url else ()
    # Starlette compares the Host header without its port, and an IPv6 host keeps brackets.
    return (site_host, *service_host, *agency.hosts, *onion, "localhost", "127.0.0.1", "[::1]")


def dev_secret(data_dir: Path) -> str:
    """The secret kept in the data dir, created once with owner-only access."""
    private_folder(data_dir)
    path = data_dir / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        secret = path.read_text(encoding="ascii").strip()
        if len(secret) < MIN_SECRET_CHARS:
            raise SettingsError(
                f"{path} is empty or shorter than {MIN_SECRET_CHARS} characters; "
                "delete it to generate a new secret"
            ) from None
        return secret
    secret = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secret + "\n")
    return secret
