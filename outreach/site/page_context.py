"""The agency values a page may use, in one language, and the sandbox that fills them in.

Profiles come from many agencies and pages may be edited by any of them, so Markdown is
rendered in Jinja2's sandbox with undefined names as errors: a typo fails the build
instead of leaving a blank where a phone number should be.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from outreach import promises
from outreach.addresses import service_link_from_site, site_path
from outreach.i18n import translations
from outreach.profile import Profile, localize


class PageError(Exception):
    """A page that cannot be rendered; the message is one sentence naming the page."""


@dataclass(frozen=True)
class SiteLinks:
    """Where a language's pages and the report service live: absolute paths, or the
    service's full address when it has one apart from the site (outreach/addresses.py)."""

    base_path: str
    lang: str
    default_lang: str
    service_base: str | None = None
    """The service's root as the site links to it; None: the site's own root."""

    @property
    def _lang_part(self) -> str:
        return "" if self.lang == self.default_lang else f"{self.lang}/"

    @property
    def prefix(self) -> str:
        return f"{self.base_path}{self._lang_part}"

    @property
    def service_prefix(self) -> str:
        return f"{self.service_base or self.base_path}{self._lang_part}"

    @property
    def report_url(self) -> str:
        return f"{self.service_prefix}report"

    @property
    def status_url(self) -> str:
        return f"{self.service_prefix}status"


def site_links(profile: Profile, lang: str) -> SiteLinks:
    """The links every page and material of *lang* uses, from the profile's addresses."""
    agency = profile.agency
    return SiteLinks(
        site_path(agency), lang, profile.default_language, service_link_from_site(agency)
    )


def kind_label(kind: str, lang: str, agency_locale: Path | None = None) -> str:
    _ = translations(lang, agency_locale).gettext
    labels = {
        "k12_school": _("School district"),
        "college": _("College or university"),
        "mental_health": _("Mental health"),
        "law_enforcement": _("Law enforcement"),
        "threat_assessment": _("Threat assessment team"),
        "intake": _("Intake team"),
        "workplace": _("Workplaces"),
        "public_venue": _("Public places and events"),
        "critical_infrastructure": _("Critical infrastructure"),
        "community": _("Community organization"),
        "social_services": _("Social services"),
    }
    return labels.get(kind, kind)


def page_context(profile: Profile, lang: str, links: SiteLinks) -> dict[str, Any]:
    """Everything a page may reference, already in *lang*."""
    default = profile.default_language

    def text(value: Any) -> str:
        return localize(value, lang, default)

    agency = profile.agency
    area_names = {area.id: text(area.name) for area in profile.areas}
    the_name = text(agency.the_name) if agency.the_name else text(agency.name)
    return {
        "lang": lang,
        "agency": {
            "name": text(agency.name),
            "the_name": the_name,
            "the_name_start": the_name[:1].upper() + the_name[1:],
            "short_name": agency.short_name,
            "jurisdiction": text(agency.jurisdiction),
            "site_url": str(agency.site_url),
            "onion_url": agency.onion_url or "",
            "phone": agency.phone,
            "email": agency.email,
            "address": text(agency.address),
            "hours": text(agency.hours),
            "liaison": agency.liaison.model_dump(),
            "response_days": agency.response_days,
        },
        "emergency_number": profile.emergency_number,
        "report_url": links.report_url,
        "status_url": links.status_url,
        "retention_days": profile.retention.days,
        "retention": {
            "days": profile.retention.days,
            "kept_copies": promises.kept_copies(profile, lang),
        },
        "reading": {
            "always": promises.reads_always(profile),
            "hours": promises.reading_hours(profile, lang),
        },
        "crisis": next(
            ({"name": text(c.name), "number": c.number} for c in profile.crisis_lines if c.number),
            {"name": "", "number": ""},
        ),
        "routing_table": promises.routing_table(profile, lang),
        "routing_summary": promises.routing_summary(profile, lang),
        "law_enforcement": promises.join_names(
            promises.law_enforcement_partners(profile, lang), lang
        ),
        "contact_partners": promises.join_names(promises.contact_partners(profile, lang), lang),
        "areas": list(area_names.values()),
        "crisis_lines": [
            {
                "name": text(c.name),
                "how": text(c.how),
                "url": c.url,
                "hours": text(c.hours),
                "number": c.number,
            }
            for c in profile.crisis_lines
        ],
        "partners": [
            {
                "id": p.id,
                "name": text(p.name),
                "kind": p.kind.value,
                "kind_label": kind_label(p.kind.value, lang, profile.interface_locale),
                "description": text(p.public.description),
                "phone": p.public.phone,
                "email": p.public.email or "",
                "website": str(p.public.website) if p.public.website else "",
                "areas": [area_names[a] for a in p.areas],
            }
            for p in profile.partners
            if p.listed
        ],
    }


def _environment() -> SandboxedEnvironment:
    # autoescape stays off: the output is Markdown, and every value comes from the
    # agency's own profile, never from the public. Comments use {## ##} because Markdown's
    # attribute lists ("## Heading {#anchor}") already use {#.
    return SandboxedEnvironment(
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        comment_start_string="{##",
        comment_end_string="##}",
    )


_ENV = _environment()


def _template_line(error: BaseException) -> int | None:
    """The line of the page where rendering failed (Jinja maps its frames to the template)."""
    line = getattr(error, "lineno", None)
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_markdown(source: str, context: dict[str, Any], page_name: str) -> str:
    """Fill agency values into one page; raise PageError naming the page on any problem."""
    try:
        return _ENV.from_string(source).render(context)
    except SecurityError as error:
        raise PageError(f"{page_name}: the page tries something not allowed ({error})") from None
    except TemplateError as error:
        line = _template_line(error)
        where = f" line {line}" if line else ""
        message = str(error.message or error)
        if isinstance(error, UndefinedError):
            message = f"unknown variable ({message})"
        raise PageError(f"{page_name}{where}: {message}") from None
