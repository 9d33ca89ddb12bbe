"""Rendering the service's pages: one Jinja2 environment per language, never cached.

Autoescaping is on for every template, so whatever a tipster typed is shown as text.
The pages need no script and load nothing from elsewhere, which the CSP of
form_service/security_headers.py enforces.
"""

from __future__ import annotations

import functools
import gettext
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse

from outreach import promises
from outreach.addresses import service_path, site_link_from_service
from outreach.assets import templates
from outreach.dialing import left_to_right, number_link, tel_href
from outreach.i18n import translations
from outreach.languages import is_rtl, native_name
from outreach.loader import LoadedProfile
from outreach.profile import Profile, localize

FORM_TEMPLATES = templates("form")
FORM_ASSETS = FORM_TEMPLATES / "static"
ASSETS_PATH = "/assets-form"
BRAND_CSS_PATH = f"{ASSETS_PATH}/agency.css"
"""The agency's colours for the public pages (form_service/brand.py)."""

# The security headers (CSP and the rest) are the SecurityHeaders middleware's to decide. It
# marks only the form, receipt and status paths no-store; an error page rendered on any other
# path (a 405 or 500 under the site) is kept out of caches here.
NO_STORE = {"Cache-Control": "no-store"}


@functools.cache
def _environment(lang: str, agency_locale: Path | None) -> Environment:
    return template_environment(FORM_TEMPLATES, lang, agency_locale)


@functools.cache
def page_translations(lang: str, agency_locale: Path | None) -> gettext.NullTranslations:
    """The service's strings in *lang*, the agency's own first: read once per process, as
    the templates' are (a catalog is not looked for again on every message)."""
    return translations(lang, agency_locale)


def template_environment(folder: Path, lang: str, agency_locale: Path | None = None) -> Environment:
    """The service's pages from *folder*: autoescaped, strict, translated into *lang*, with
    the agency's own strings (*agency_locale*) over the kit's."""
    env = Environment(
        loader=FileSystemLoader(folder),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # the kit's own templates: no stat() per page
    )
    env.install_gettext_translations(page_translations(lang, agency_locale), newstyle=True)  # type: ignore[attr-defined]
    env.filters["reveal"] = reveal_hidden
    # Numbers to call and codes stay left to right inside right-to-left text.
    env.filters["dial"] = lambda number: Markup(number_link(number))  # noqa: S704 - escaped
    env.filters["ltr"] = lambda text: Markup(left_to_right(text))  # noqa: S704 - escaped
    env.filters["tel_href"] = tel_href
    env.filters["code_groups"] = code_groups
    return env


# Characters that change how text reads without showing themselves: bidirectional overrides
# and isolates, and zero-width characters. In text from the public, staff see each as a
# visible mark, so a message cannot hide words or show them in another order.
_HIDDEN = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def reveal_hidden(text: str) -> Markup:
    """*text*, escaped, with every hidden character shown as its code point."""
    escaped = str(escape(text))
    return Markup(  # noqa: S704 - built from escaped text and fixed markup only
        _HIDDEN.sub(lambda m: f'<span class="hidden-char">[U+{ord(m.group()):04X}]</span>', escaped)
    )


def code_groups(code: str) -> Markup:
    """A receipt code's groups, each with its hyphen, as spans a line may break between."""
    groups = str(escape(code)).split("-")
    spans = [
        f'<span class="code-group">{g}{"-" if n < len(groups) - 1 else ""}</span>'
        for n, g in enumerate(groups)
    ]
    return Markup("".join(spans))  # noqa: S704 - escaped code and fixed markup only


def logo_url(profile: Profile) -> str | None:
    """The agency's logo as the service serves it (form_service/brand.py), if it has one,
    under the service's path."""
    logo = profile.agency.logo
    if not logo:
        return None
    suffix = PurePosixPath(logo).suffix.lower()
    return f"{service_path(profile.agency)}{ASSETS_PATH.lstrip('/')}/logo{suffix}"


def prefix(lang: str, default: str) -> str:
    """The path part of a language: none for the default one, "es/" for Spanish."""
    return "" if lang == default else f"{lang}/"


@dataclass(frozen=True)
class Pages:
    loaded: LoadedProfile
    _contexts: dict[tuple[str, str], dict[str, Any]] = field(
        default_factory=dict, compare=False, repr=False
    )
    """What every page of a language says of the profile, made once: a flood's 429 pages
    are rendered hundreds of times a second."""

    def negotiate(self, headers: Headers) -> str:
        """The profile language a browser prefers, for pages outside any language prefix.

        A preference with a region the profile lacks (es-ES, as some browsers send alone)
        counts as its language (es)."""
        languages = self.loaded.profile.languages
        for item in headers.get("accept-language", "").split(","):
            code = item.split(";")[0].strip().lower()
            for wanted in (code, code.split("-")[0]):
                for lang in languages:
                    if wanted in {lang.lower(), lang.split("-")[0].lower()}:
                        return lang
        return self.loaded.profile.default_language

    def translations(self, lang: str) -> gettext.NullTranslations:
        """The service's strings in *lang*, the agency's own ones first."""
        return page_translations(lang, self.loaded.profile.interface_locale)

    def gettext(self, lang: str) -> Callable[[str], str]:
        return self.translations(lang).gettext

    def context(self, lang: str, page: str) -> dict[str, Any]:
        """The values every page has (not to be changed: a copy is shared)."""
        made = self._contexts.get((lang, page))
        if made is None:
            made = self._contexts[(lang, page)] = self._context(lang, page)
        return made

    def _context(self, lang: str, page: str) -> dict[str, Any]:
        profile = self.loaded.profile
        default = profile.default_language
        # The service's own pages under its path ("/" or "/prevent/"); the site's pages
        # where the site is, a path on a shared origin or a full address on another.
        service = service_path(profile.agency)
        own = service + prefix(lang, default)
        site = site_link_from_service(profile.agency) + prefix(lang, default)
        return {
            "lang": lang,
            "dir": "rtl" if is_rtl(lang) else "ltr",
            "agency_name": localize(profile.agency.name, lang, default),
            # The name with its article, for the middle of a sentence ("tell the … Team").
            "agency_the_name": localize(
                profile.agency.the_name or profile.agency.name, lang, default
            ),
            "agency_phone": profile.agency.phone,
            "emergency": profile.emergency_number,
            "crisis_number": next((c.number for c in profile.crisis_lines if c.number), ""),
            "reading_hours": promises.reading_hours(profile, lang),
            "response_days": profile.agency.response_days,
            "home_url": site,
            "report_url": own + "report",
            "status_url": own + "status",
            "after_url": site + "after-you-report/",
            "privacy_url": site + "privacy/",
            "css_url": f"{service}{ASSETS_PATH.lstrip('/')}/form.css",
            "brand_css_url": f"{service}{BRAND_CSS_PATH.lstrip('/')}",
            "logo_url": logo_url(profile),
            # The logo, as the header shows it (one file for both); else the site's own
            # icon, from the built site this service serves under its path: the pages'
            # policy (img-src 'self') allows no image from the site's own host.
            "icon_url": logo_url(profile) or service + profile.agency.site_icon,
            "languages": [
                {
                    "code": other,
                    "name": native_name(other),
                    "url": service + prefix(other, default) + page,
                    "current": other == lang,
                }
                for other in profile.languages
            ],
        }

    def html(self, template: str, lang: str, page: str = "report", **values: Any) -> str:
        env = _environment(lang, self.loaded.profile.interface_locale)
        return env.get_template(template).render(self.context(lang, page) | values)

    def render(
        self,
        request: Request,
        template: str,
        lang: str,
        status_code: int = 200,
        page: str = "report",
        **values: Any,
    ) -> HTMLResponse:
        html = self.html(template, lang, page, **values)
        return HTMLResponse(html, status_code, headers=NO_STORE)


def asset_dir() -> Path:
    return FORM_ASSETS
