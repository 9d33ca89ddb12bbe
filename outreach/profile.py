"""The agency profile: the one file both halves of the kit read.

Every model forbids unknown keys, so a typo in a profile is an error rather than a
setting that silently does nothing. Secrets never appear here: delivery settings name
the environment variables that hold them.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    PrivateAttr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)

_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("not an e-mail address")
    return value


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(
            "must be the NAME of an environment variable (A-Z, 0-9, _), never the secret itself"
        )
    return value


def _identifier(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(
            "use lowercase letters, digits and hyphens, starting with a letter or digit"
        )
    return value


def _color(value: Any) -> str:
    if not isinstance(value, str):
        # An unquoted `#1f4e79` is a YAML comment (no value), and `123456` a number.
        raise ValueError(
            'must be a colour in quotes, like "#1f4e79": without the quotes, YAML reads '
            "everything from # on as a comment"
        )
    if not _COLOR.match(value):
        raise ValueError('must be a colour like "#1f4e79"')
    return value


Email = Annotated[str, AfterValidator(_email)]
EnvName = Annotated[str, AfterValidator(_env_name)]
Identifier = Annotated[str, AfterValidator(_identifier)]
Color = Annotated[str, BeforeValidator(_color)]


def _one_text_or_per_language(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        # One clear sentence instead of one error per member of the union.
        raise ValueError("must be a text, or one text per language code (en: …, es: …)") from None


# Text a visitor reads: one string for every language, or one per language code.
LocalizedText = Annotated[str | dict[str, str], WrapValidator(_one_text_or_per_language)]


class Setting(StrEnum):
    """Where the worrying behaviour happened (fixed list, shared by form and routing)."""

    school = "school"
    college = "college"
    workplace = "workplace"
    public_place = "public_place"
    critical_infrastructure = "critical_infrastructure"
    online = "online"
    home = "home"
    other = "other"


class Concern(StrEnum):
    """What the reporter fears may happen."""

    harm_others = "harm_others"
    self_harm = "self_harm"
    both = "both"
    not_sure = "not_sure"


class PartnerKind(StrEnum):
    k12_school = "k12_school"
    college = "college"
    mental_health = "mental_health"
    law_enforcement = "law_enforcement"
    threat_assessment = "threat_assessment"
    intake = "intake"
    workplace = "workplace"
    public_venue = "public_venue"
    critical_infrastructure = "critical_infrastructure"
    community = "community"
    social_services = "social_services"


class ReportField(StrEnum):
    """Fields of a report that a sharing agreement may release to a partner."""

    description = "description"
    location = "location"
    setting = "setting"
    concern = "concern"
    when = "when"
    people = "people"
    danger_now = "danger_now"
    contact = "contact"


# The area value a report carries when the reporter does not know where it happened.
UNKNOWN_AREA = "unknown"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Liaison(_Strict):
    """The agency's point of contact for partner organisations."""

    name: str
    phone: str
    email: Email


_ONION_HOST = re.compile(r"[a-z2-7]{56}\.onion")


def _onion_url(value: str) -> str:
    url = urlsplit(value.strip())
    if url.scheme not in {"http", "https"} or not _ONION_HOST.fullmatch(url.hostname or ""):
        raise ValueError("must be an onion service address like http://<56 letters>.onion/")
    if url.path not in {"", "/"} or url.query or url.fragment or url.port or url.username:
        raise ValueError("must be the onion service's root address, with no path")
    return f"{url.scheme}://{url.hostname}/"


OnionUrl = Annotated[str, AfterValidator(_onion_url)]


def _plain_address(url: HttpUrl) -> HttpUrl:
    if url.query or url.fragment or url.username:
        raise ValueError("must be a plain address, with no query, fragment or user name")
    return url


class Agency(_Strict):
    name: LocalizedText
    the_name: LocalizedText | None = None
    """The name as a sentence uses it, with its article if it takes one: "the Harbor
    County Prevention Team", "el Equipo de Prevención …". Default: the name alone."""
    short_name: str
    jurisdiction: LocalizedText
    site_url: HttpUrl
    service_url: Annotated[HttpUrl, AfterValidator(_plain_address)] | None = None
    """The report service's public address (form, receipt and status pages), when it is
    not the site's own: another host (https://report.example.org/) or another path. Default:
    the site's address, as `outreach serve` serves both. The site's links to the form, and
    the form's own links and actions, follow it (outreach/addresses.py)."""
    logo: str | None = None
    """Path of an SVG or PNG logo, relative to the profile folder."""
    primary_color: Color = "#1f4e79"
    phone: str
    email: Email
    address: LocalizedText
    hours: LocalizedText
    reads_reports: Literal["office_hours", "always"] = "office_hours"
    """When the team reads new reports: during ``hours`` (the default), or at any hour,
    every day. Every page and the form say it; only "always" lets a page promise 24/7."""
    liaison: Liaison
    hosts: list[str] = Field(default_factory=list)
    """Extra host names the report service answers to (the site_url host is always one)."""
    onion_url: OnionUrl | None = None
    """The site's address as a Tor onion service (http://<56 letters>.onion/), if the agency
    publishes one: the privacy page names it and the service announces it to Tor Browser."""
    response_days: int = Field(default=2, ge=1, le=30)
    """Days within which the team reads a new report and writes any question it has: the
    receipt and status pages tell the person who reported to check back after this long."""

    @property
    def site_icon(self) -> str:
        """The site's icon, relative to a site root: the logo, else Material's own icon."""
        if self.logo:
            return "assets/logo" + PurePosixPath(self.logo).suffix
        return "assets/images/favicon.png"


class Area(_Strict):
    id: Identifier
    name: LocalizedText

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == UNKNOWN_AREA:
            raise ValueError(f"'{UNKNOWN_AREA}' is reserved for reports whose place is not known")
        return value


class CrisisLine(_Strict):
    name: LocalizedText
    how: LocalizedText
    """How to reach it, e.g. "Call or text 988"."""
    url: str = ""
    hours: LocalizedText = ""
    number: str = ""
    """The number to call, if any (e.g. "988"): the first line with one sits beside the
    emergency number on every page of the site."""
    text_number: str = ""
    """The number that takes text messages (SMS), if the line has one and it differs from
    ``number``: the site makes it a tap-to-text (sms:) link wherever it is written."""


class PublicContact(_Strict):
    """What the partner directory shows."""

    description: LocalizedText = ""
    phone: str = ""
    email: Email | None = None
    website: HttpUrl | None = None


class SmtpServer(_Strict):
    """The mail server messages go through, and the From they carry."""

    smtp_host: str
    smtp_port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "plain"] = "starttls"
    """starttls is required by default; plain is only for an explicitly configured local relay."""
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    sender: Email


class EmailDelivery(SmtpServer):
    to: list[Email] = Field(min_length=1)


_LOOPBACK_NAMES = {"localhost", "localhost."}


def is_loopback(host: str) -> bool:
    """Whether *host* (a name or an address, IPv6 in brackets or not) is this machine."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _https_unless_loopback(url: HttpUrl) -> HttpUrl:
    if url.scheme != "https" and not is_loopback(url.host or ""):
        raise ValueError(
            "must start with https:// (plain http:// only to this machine: localhost, "
            "127.0.0.0/8 or ::1): a report sent over http can be read on the way"
        )
    return url


class WebhookDelivery(_Strict):
    url: Annotated[HttpUrl, AfterValidator(_https_unless_loopback)]
    secret_env: EnvName


class MaildirDelivery(_Strict):
    folder: Identifier
    """Folder name under the service's data dir (maildir/<folder>)."""


class DeliveryConfig(_Strict):
    """How a partner is to receive its reports (a channel and its settings)."""

    channel: Literal["email", "webhook", "maildir"]
    language: str | None = None
    """Language of delivered messages; default: the profile's default language."""
    email: EmailDelivery | None = None
    webhook: WebhookDelivery | None = None
    maildir: MaildirDelivery | None = None
    age_recipient: str | None = None
    """Partner's age public key: when set, report content is only ever sent encrypted."""

    @field_validator("age_recipient")
    @classmethod
    def _age_key(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"age1[02-9ac-hj-np-z]{58}", value):
            raise ValueError("not an age public key (age1… , 62 characters)")
        return value


class LegalBasis(_Strict):
    """A legal basis the partner may disclose under, e.g. FERPA's health-or-safety emergency."""

    id: Identifier
    title: LocalizedText
    """As the partner's users read it and as its disclosure record names it."""


class InformationCategory(_Strict):
    """A kind of information the partner may disclose in an answer (attendance, …)."""

    id: Identifier
    title: LocalizedText


class RequestTerms(_Strict):
    """What an agreement permits when the intake team asks the partner about one report."""

    bases: list[LegalBasis] = Field(min_length=1)
    """The legal bases a request may name; each request names one."""
    fields: list[ReportField] = Field(default_factory=list)
    """Report fields an intake user may include in a request: none by default."""
    answers: list[InformationCategory] = Field(min_length=1)
    """The categories of information the partner may answer with."""


class SharingAgreement(_Strict):
    """A standing information-sharing agreement between the agency and one partner."""

    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    fields: list[ReportField] = Field(min_length=1)
    contact_requires_consent: bool = True
    """Reporter contact details reach this partner only if the reporter ticked consent."""
    requests: RequestTerms | None = None
    """None: the agreement permits no requests for information to this partner."""
    tipster_conversation: bool = False
    """The partner's users may read and write the conversation with the person who
    reported, on reports shared with the partner. Without it, only the intake team does."""
    attachments: bool = False
    """The partner receives the photos and videos the tipster attached (cleaned of their
    metadata). Without it, a partner whose agreement shares the description is told only
    how many files there are."""


# A random hold longer than this would delay reports more than it hides.
MAX_HOLD_MINUTES = 60


class Partner(_Strict):
    id: Identifier
    name: LocalizedText
    kind: PartnerKind
    areas: list[str] = Field(default_factory=list)
    """Area ids the partner serves; empty means the whole jurisdiction."""
    public: PublicContact = PublicContact()
    listed: bool = True
    """Whether the partner appears in the public directory."""
    delivery: DeliveryConfig
    agreement: SharingAgreement
    hold_minutes: int = Field(default=0, ge=0, le=MAX_HOLD_MINUTES)
    """Hold each ordinary report (not danger now) a random 0 to this many minutes before
    it is sent, so its arrival does not time the tipster's visit; 0 sends at once."""


class RuleMatch(_Strict):
    """Conditions of a routing rule; an empty list matches any value."""

    areas: list[str] = Field(default_factory=list)
    settings: list[Setting] = Field(default_factory=list)
    concerns: list[Concern] = Field(default_factory=list)
    danger_now: bool | None = None
    """True: only reports saying someone is in danger now; None: any report."""


class RoutingRule(_Strict):
    id: Identifier
    match: RuleMatch = RuleMatch()
    send_to: list[str] = Field(min_length=1)
    review: bool = False
    """True: the rule's partners receive a report only once an intake user has read it and
    released it from the inbox. False: they receive it at once."""


class Routing(_Strict):
    intake: str | None = None
    """The default intake team: receives every report, whatever the rules say."""
    rules: list[RoutingRule] = Field(default_factory=list)


class Escalation(_Strict):
    """Who is told, and when, that a danger-now report is still not acknowledged."""

    after_minutes: int = Field(default=10, ge=1, le=1440)
    """Minutes a danger-now report may wait unacknowledged before the first notice."""
    repeat_minutes: int = Field(default=10, ge=1, le=1440)
    """Minutes between notices, each to the next contact, until someone acknowledges."""
    contacts: list[DeliveryConfig] = Field(min_length=1)
    """In order; after the last, the first again. Each is a delivery target as partners use."""


class StaffNotices(_Strict):
    """How staff users are told that something new waits for them in the inbox: a fixed
    text and the inbox's address, at each user's own account address."""

    channel: Literal["email", "maildir"]
    language: str | None = None
    """Language of the notices; default: the profile's default language."""
    email: SmtpServer | None = None
    """Sent by e-mail, To each user's account address."""
    maildir: MaildirDelivery | None = None
    """Written to one local mail folder, each message To its user's address."""
    every_minutes: int = Field(default=15, ge=1, le=1440)
    """At most one ordinary notice per user per this many minutes; more news waits for it."""


class Retention(_Strict):
    days: int = Field(ge=1, le=3650)
    backup_days: int | None = Field(default=None, ge=1, le=3650)
    """How long the agency keeps backups of the report database, which the purge does not
    reach. None: the privacy page says only that backups may keep a copy for a while."""


class Archive(_Strict):
    age_recipients: list[str] = Field(min_length=1)
    """age public keys reports are encrypted to at rest; the private halves stay off the server.

    The first key is current; older ones may stay listed while an agency rotates keys.
    """

    @field_validator("age_recipients")
    @classmethod
    def _age_keys(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.fullmatch(r"age1[02-9ac-hj-np-z]{58}", value):
                raise ValueError(f"not an age public key: {value[:12]}…")
        return values


class SitePage(_Strict):
    """An entry of the site's navigation: a page file, optionally under a section title."""

    page: str | None = None
    section: LocalizedText | None = None
    pages: list[str] = Field(default_factory=list)


class Site(_Strict):
    nav: list[str | SitePage] | None = None
    """Page files in menu order; default: the kit's base navigation."""


class Profile(_Strict):
    agency: Agency
    languages: list[str] = Field(min_length=1)
    """Language codes (ISO 639-1); the first is the default."""
    areas: list[Area] = Field(min_length=1)
    emergency_number: str = "911"
    crisis_lines: list[CrisisLine] = Field(default_factory=list)
    partners: list[Partner] = Field(min_length=1)
    routing: Routing
    escalation: Escalation | None = None
    """None: no notices; danger-now reports only wait at the top of the inbox."""
    staff_notices: StaffNotices | None = None
    """None: staff users are not told of new work; they find it in the inbox."""
    retention: Retention
    archive: Archive
    site: Site = Site()
    # Not a key of the file: where the loader found it decides where its catalogs are.
    _interface_locale: Path | None = PrivateAttr(default=None)

    @property
    def interface_locale(self) -> Path | None:
        """The agency's own interface catalogs, laid over the kit's (outreach.i18n)."""
        return self._interface_locale

    def read_interface_strings_from(self, locale_dir: Path) -> None:
        """Set by the loader: the ``locale`` folder beside the agency's ``agency.yml``."""
        self._interface_locale = locale_dir

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def partner(self, partner_id: str) -> Partner:
        for partner in self.partners:
            if partner.id == partner_id:
                return partner
        raise KeyError(partner_id)

    def area_ids(self) -> list[str]:
        return [area.id for area in self.areas]


def localize(text: LocalizedText, lang: str, default_lang: str) -> str:
    """Pick the text for *lang*, falling back to the profile's default language."""
    if isinstance(text, str):
        return text
    return text.get(lang) or text.get(default_lang) or next(iter(text.values()), "")
