"""Rendering the service's pages: one Jinja2 environment per language, never cached.

Autoescaping is on for every template, so whatever a tipster typed is shown as text.
The pages need no script and load nothing from elsewhere, which the CSP of
form_service/security_headers.py enforces.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse

from outreach import promises
from outreach.assets import templates
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
def _environment(lang: str) -> Environment:
    return template_environment(FORM_TEMPLATES, lang)


def template_environment(folder: Path, lang: str) -> Environment:
    """The service's pages from *folder*: autoescaped, strict, translated into *lang*."""
    env = Environment(
        loader=FileSystemLoader(folder),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["reveal"] = reveal_hidden
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


def logo_url(profile: Profile) -> str | None:
    """The agency's logo as the service serves it (form_service/brand.py), if it has one."""
    logo = profile.agency.logo
    return f"{ASSETS_PATH}/logo{PurePosixPath(logo).suffix.lower()}" if logo else None


def prefix(lang: str, default: str) -> str:
    """The URL prefix of a language: none for the default one, /es for Spanish."""
    return "" if lang == default else f"/{lang}"


@dataclass(frozen=True)
class Pages:
    loaded: LoadedProfile

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

    def context(self, lang: str, page: str) -> dict[str, Any]:
        profile = self.loaded.profile
        default = profile.default_language
        base = prefix(lang, default)
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
            "home_url": base + "/",
            "report_url": base + "/report",
            "status_url": base + "/status",
            "after_url": base + "/after-you-report/",
            "privacy_url": base + "/privacy/",
            "css_url": f"{ASSETS_PATH}/form.css",
            "brand_css_url": BRAND_CSS_PATH,
            "logo_url": logo_url(profile),
            # The logo, as the header shows it (one file for both); else the site's icon.
            "icon_url": logo_url(profile) or "/" + profile.agency.site_icon,
            "languages": [
                {
                    "code": other,
                    "name": native_name(other),
                    "url": prefix(other, default) + f"/{page}",
                    "current": other == lang,
                }
                for other in profile.languages
            ],
        }

    def html(self, template: str, lang: str, page: str = "report", **values: Any) -> str:
        return _environment(lang).get_template(template).render(self.context(lang, page) | values)

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
