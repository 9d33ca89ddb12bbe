"""Security headers on every response, as one pure ASGI middleware.

Two policies, chosen by path:

* **Service pages** (the report form, the receipt, the status page, /healthz and the form's
  own CSS): the strict CSP of the design – no script at all, styles and images from this
  origin only – and ``Cache-Control: no-store`` on the form, receipt and status pages, so a
  shared computer's browser cache keeps no copy of a report or a receipt code.
* **Site pages** (everything served from the built outreach site): what Material for MkDocs
  needs from this origin and nothing else. Its bundle, its search worker and lunr load from
  'self'; the search index and sitemap are fetched from 'self'; its icons are ``data:`` SVGs
  in its stylesheet. Material's templates also write a few small inline scripts (the
  ``__md_scope`` helpers, the tab-anchor fix); those are allowed by their SHA-256 hashes,
  computed at startup from the built pages. Only scripts that match one of Material's (or
  the kit's) own templates are hashed: an inline script that a page author wrote into
  Markdown stays blocked, and is named in a warning at startup.

Headers the application set itself under the same names are replaced, so this module is
the one place that decides them; a ``Server`` header is always dropped.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import material
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from form_service.logs import log_event
from form_service.pages import ASSETS_PATH
from form_service.settings import Settings
from outreach.addresses import service_address, service_path
from outreach.assets import templates

# connect-src 'self': the pages run no script, so nothing of theirs connects anywhere. But
# Chromium checks a DevTools fetch made in a page against it, and that is how Lighthouse
# reads the site's /robots.txt (its SEO audit fails when the CSP blocks the read).
SERVICE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

HSTS = "max-age=63072000; includeSubDomains"

# Every powerful feature, denied to the page and to anything it could embed. Neither the
# site nor the form uses any of them (the form needs no JavaScript at all). Only features
# Chromium recognizes: it logs a console error for any other name (the browser test checks).
DENIED_FEATURES = (
    "accelerometer",
    "autoplay",
    "browsing-topics",
    "camera",
    "clipboard-read",
    "clipboard-write",
    "compute-pressure",
    "display-capture",
    "encrypted-media",
    "fullscreen",
    "gamepad",
    "geolocation",
    "gyroscope",
    "hid",
    "identity-credentials-get",
    "idle-detection",
    "interest-cohort",
    "local-fonts",
    "magnetometer",
    "microphone",
    "midi",
    "otp-credentials",
    "payment",
    "picture-in-picture",
    "publickey-credentials-create",
    "publickey-credentials-get",
    "screen-wake-lock",
    "serial",
    "storage-access",
    "sync-xhr",
    "usb",
    "window-management",
    "xr-spatial-tracking",
)
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in DENIED_FEATURES)

COMMON_HEADERS = (
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", PERMISSIONS_POLICY),
)

# Header names this middleware decides; the application's own values for them are dropped.
_OWNED = frozenset(
    {
        b"content-security-policy",
        b"strict-transport-security",
        b"server",
        *(name.encode() for name, _ in COMMON_HEADERS),
    }
)

# The report form, its receipt and the status page, with or without a language prefix:
# the same paths the service's routes claim (/report, /es/report, /status, /es/status);
# and every staff page.
_NO_STORE_PATH = re.compile(r"^(?:(?:/[^/]+)?/(?:report|status)/?|/staff(?:/.*)?)$")

KIT_TEMPLATES = templates("site")

# <script ...>body</script>, as a browser ends it: at the first "</script".
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.I | re.S)
_TYPE = re.compile(r"""\btype\s*=\s*["']?([^"'\s>]+)""", re.I)
_JS_TYPES = frozenset(
    {"", "module", "text/javascript", "application/javascript", "text/ecmascript"}
)
_PLACEHOLDER = re.compile(r"\{\{.*?\}\}", re.S)
# What a template placeholder may expand to inside a script: a path on this site ("/", "..",
# "/es/"), never a scheme, a "//host", or a character that could end the JS string.
_PLACEHOLDER_VALUE = r"(?!//)[A-Za-z0-9._~/-]*"


def is_no_store_path(path: str) -> bool:
    return _NO_STORE_PATH.match(path) is not None


def is_service_path(path: str) -> bool:
    """Paths answered by the service's own routes rather than by the built site."""
    return (
        is_no_store_path(path)
        or path == "/healthz"
        or path == ASSETS_PATH
        or path.startswith(ASSETS_PATH + "/")
    )


def material_template_dirs() -> list[Path]:
    """Material's page scripts and the kit's overrides: the trusted sources of inline JS.

    Only Material's partials/javascripts (included by its base.html), not its analytics or
    redirect templates, which the kit never uses.
    """
    return [
        Path(material.__file__).parent / "templates" / "partials" / "javascripts",
        KIT_TEMPLATES,
    ]


def _executable(attributes: str) -> bool:
    if re.search(r"\bsrc\s*=", attributes, re.I):
        return False
    found = _TYPE.search(attributes)
    return (found.group(1).lower() if found else "") in _JS_TYPES


def inline_scripts(html: str) -> list[str]:
    """The bodies of the inline scripts a browser would run (not JSON data blocks)."""
    return [body for attributes, body in _SCRIPT.findall(html) if _executable(attributes)]


def trusted_script_patterns(template_dirs: Iterable[Path]) -> list[re.Pattern[str]]:
    """One pattern per inline script written by a trusted template, placeholders widened."""
    patterns: dict[str, re.Pattern[str]] = {}
    for folder in template_dirs:
        if not folder.is_dir():
            continue
        for template in sorted(folder.rglob("*.html")):
            text = template.read_text(encoding="utf-8")
            for body in inline_scripts(text):
                if "{%" in body or "{#" in body or not body.strip():
                    continue
                literal = _PLACEHOLDER.split(body)
                source = _PLACEHOLDER_VALUE.join(re.escape(part) for part in literal)
                patterns.setdefault(source, re.compile(source, re.S))
    return list(patterns.values())


def script_hash(body: str) -> str:
    digest = hashlib.sha256(body.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


@dataclass(frozen=True)
class SiteScripts:
    hashes: tuple[str, ...]
    """CSP sources for the trusted inline scripts of the built site, sorted."""
    blocked: tuple[str, ...]
    """Site files (relative paths) with an inline script no trusted template wrote."""


def scan_site(site_dir: Path, patterns: Sequence[re.Pattern[str]]) -> SiteScripts:
    hashes: set[str] = set()
    blocked: list[str] = []
    if site_dir.is_dir():
        for page in sorted(site_dir.rglob("*.html")):
            html = page.read_text(encoding="utf-8", errors="replace")
            for body in inline_scripts(html):
                if any(pattern.fullmatch(body) for pattern in patterns):
                    hashes.add(script_hash(body))
                else:
                    blocked.append(page.relative_to(site_dir).as_posix())
    return SiteScripts(tuple(sorted(hashes)), tuple(dict.fromkeys(blocked)))


def site_csp(hashes: Sequence[str]) -> str:
    scripts = " ".join(["'self'", *hashes])
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; worker-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


Header = tuple[bytes, bytes]


def _encode(headers: Iterable[tuple[str, str]]) -> tuple[Header, ...]:
    return tuple((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers)


@dataclass(frozen=True)
class HeaderPolicy:
    service: tuple[Header, ...]
    no_store: tuple[Header, ...]
    site: tuple[Header, ...]

    @classmethod
    def build(cls, https: bool, hashes: Sequence[str]) -> HeaderPolicy:
        common = [*COMMON_HEADERS, *([("strict-transport-security", HSTS)] if https else [])]
        service = [("content-security-policy", SERVICE_CSP), *common]
        return cls(
            service=_encode(service),
            no_store=_encode([*service, ("cache-control", "no-store")]),
            site=_encode([("content-security-policy", site_csp(hashes)), *common]),
        )

    def for_path(self, path: str) -> tuple[Header, ...]:
        if is_no_store_path(path):
            return self.no_store
        if is_service_path(path):
            return self.service
        return self.site


def merge(existing: Iterable[Header], added: Sequence[Header]) -> list[Header]:
    replaced = _OWNED | {name for name, _ in added}
    kept = [(name, value) for name, value in existing if name.lower() not in replaced]
    return [*kept, *added]


class SecurityHeaders:
    """Pure ASGI middleware: adds the headers to the start of every HTTP response."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        scripts = scan_site(settings.site_dir, trusted_script_patterns(material_template_dirs()))
        if scripts.blocked:
            log_event(
                "csp_blocks_inline_script",
                logging.WARNING,
                pages=len(scripts.blocked),
                first=scripts.blocked[0],
            )
        https = service_address(settings.profile.profile.agency).startswith("https:")
        self.policy = HeaderPolicy.build(https, scripts.hashes)
        # The public pages sit under the service's path ("/prevent/report"); the policy
        # is decided on the path below it, as for a service at the host's root.
        self.base = service_path(settings.profile.profile.agency).rstrip("/")
        # Tor Browser offers the onion service's page in place of this one.
        onion = settings.profile.profile.agency.onion_url
        self.onion = onion.rstrip("/") if onion else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        if self.base and path.startswith(self.base + "/"):
            path = path[len(self.base) :]
        added = self.policy.for_path(path)
        if self.onion is not None:
            location = self.onion + quote(path, safe="/%:@!$&'()*+,;=-._~")
            added = (*added, (b"onion-location", location.encode("ascii")))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": merge(message.get("headers", ()), added)}
            await send(message)

        await self.app(scope, receive, send_with_headers)
