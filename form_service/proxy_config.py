"""Reverse-proxy configurations (Caddy, nginx) that keep the service's promises.

An operator who follows the guide puts Caddy or nginx in front of the service for HTTPS.
Left to their defaults, both write what the service never does: nginx's error log names
the client in every line (``client: 203.0.113.9``), Caddy's error logger writes the
address, the user agent and a microsecond time of every failed request, and Go's server
log the address of every failed TLS handshake. Both add a ``Server`` header, answer an
oversize body or a restarting service with pages of their own, and nginx needs to be told
to speak HTTP/2. These configurations are generated rather than copied by hand, so each
limit follows the service's own setting and every log stays shut.

Requests the proxy answers itself (a body over its limit, the service restarting) get
static copies of the service's own error page, in the visitor's language by the path's
language prefix, with the service's security headers. The proxy's body limit is the
service's: every body the service reads reaches it, so a report too long for its fields
comes back with its text kept, and a larger body gets the copy of the service's 413 page
from the proxy, which refuses it before passing it on. (Passed on, the service would
answer it unread and close the connection, and the proxy, still sending, answer 502.)
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from form_service.error_pages import error_messages
from form_service.pages import FORM_ASSETS, Pages
from form_service.security_headers import COMMON_HEADERS, HSTS, SERVICE_CSP
from outreach.loader import LoadedProfile

PAGES_PATH = "/.outreach-errors"
"""Where the proxy serves the static error pages and their stylesheet from."""
DEFAULT_PAGES_DIR = Path("/var/www/outreach-errors")
PROXY_STATUSES = (400, 413, 503)


@dataclass(frozen=True)
class ProxySite:
    host: str
    upstream: str
    body_limit: int
    """Bytes: the largest body the service reads, a report's text and its files
    (OUTREACH_MAX_BODY_BYTES + OUTREACH_MAX_REPORT_FILES_BYTES)."""
    languages: tuple[str, ...]
    """The profile's languages, the default one first (it has no path prefix)."""
    pages_dir: Path = DEFAULT_PAGES_DIR
    tls_internal: bool = False
    certificate: str = ""
    certificate_key: str = ""
    http_port: int = 80
    https_port: int = 443

    def https_origin(self) -> str:
        port = "" if self.https_port == 443 else f":{self.https_port}"
        return f"https://{self.host}{port}"


def security_headers() -> list[tuple[str, str]]:
    """The headers the service sends with its own error pages (over HTTPS)."""
    return [
        ("Content-Security-Policy", SERVICE_CSP),
        *((name.title(), value) for name, value in COMMON_HEADERS),
        ("Strict-Transport-Security", HSTS),
        ("Cache-Control", "no-store"),
    ]


def write_pages(loaded: LoadedProfile, folder: Path) -> list[Path]:
    """The static error pages, one per status and language, and their stylesheet."""
    folder.mkdir(parents=True, exist_ok=True)
    pages = Pages(loaded)
    written = []
    for lang in loaded.profile.languages:
        for status in PROXY_STATUSES:
            title, message = _page_text(pages, lang, status)
            html = pages.html(
                "error.html", lang, title=title, message=message, css_url=f"{PAGES_PATH}/form.css"
            )
            path = folder / f"{status}.{lang}.html"
            path.write_text(html, encoding="utf-8")
            written.append(path)
    css = folder / "form.css"
    shutil.copyfile(FORM_ASSETS / "form.css", css)
    for path in (*written, css):
        path.chmod(0o644)  # the proxy's own user reads them
    return [*written, css]


def _page_text(pages: Pages, lang: str, status: int) -> tuple[str, str]:
    title, message = error_messages(pages, lang)[status]
    if status == 503:  # the service is restarting: a report sent now may be lost
        _ = pages.gettext(lang)
        message += " " + _(
            "If you were sending a report, it may not have arrived: go back, and send it "
            "again in a minute (it is never stored twice). What you wrote is usually still "
            "in the form."
        )
    return title, message


def caddyfile(site: ProxySite) -> str:
    """A whole Caddyfile: global options, the site, its redirect, and nothing for others."""
    headers = "\n".join(f'\t\t{name} "{value}"' for name, value in security_headers())
    tls = "\ttls internal\n" if site.tls_internal else ""
    length = "{http.request.header.Content-Length}"
    too_large = f"{length}.size() > 0 && int({length}) > {site.body_limit}"
    # The visitors' browsers are what must trust Caddy's own authority, not this machine.
    trust = "\tskip_install_trust\n" if site.tls_internal else ""
    ports = (
        ""
        if (site.http_port, site.https_port) == (80, 443)
        else (f"\thttp_port {site.http_port}\n\thttps_port {site.https_port}\n")
    )
    langs = "".join(f"\t\t\t~^/{lang}(/|$) {lang}\n" for lang in site.languages[1:])
    return f"""\
# Made by `outreach deploy caddy`; make it again after changing OUTREACH_MAX_BODY_BYTES,
# OUTREACH_MAX_REPORT_FILES_BYTES or the profile's languages, rather than editing it.
{{
{ports}{trust}\t# HTTP/1.1 and HTTP/2, which the kit's tests check (not HTTP/3: UDP, untested).
\tservers {{
\t\tprotocols h1 h2
\t}}
\t# No access log, and no line naming a visitor: the error logger (http.log.error) writes
\t# the address, user agent and time of every failed request, and Go's server log
\t# (http.stdlib) the address of every failed TLS handshake. Caddy's own messages (start,
\t# certificates, configuration) still go to the journal.
\tlog default {{
\t\toutput stderr
\t\texclude http.log.access http.log.error http.stdlib
\t}}
}}

# The headers the service sends with its own error pages.
(outreach_page_headers) {{
\theader {{
{headers}
\t}}
}}

{site.host} {{
{tls}\theader -Server
\trequest_body {{
\t\tmax_size {site.body_limit}
\t}}
\t# A body the service would refuse unread is refused here, before it is passed on: the
\t# service would answer before reading it, and the proxy, still sending, see a 502.
\t@too_large expression {too_large}
\thandle @too_large {{
\t\terror 413
\t}}
\t# The service's error pages for what the proxy answers itself (see handle_errors).
\thandle_path {PAGES_PATH}/* {{
\t\troot * {site.pages_dir}
\t\timport outreach_page_headers
\t\tfile_server
\t}}
\thandle {{
\t\treverse_proxy {site.upstream}
\t}}
\t# An error of Caddy's own (a body over max_size, the service restarting, a bad request):
\t# the service's page for it, in the language of the path's prefix.
\thandle_errors {{
\t\theader -Server
\t\timport outreach_page_headers
\t\t# Caddy reports a body over max_size that it was passing on as a 502.
\t\tmap "{{err.status_code}} {{err.message}}" {{outreach_page}} {{outreach_status}} {{
\t\t\t~^413\\s 413 413
\t\t\t~request\\sbody\\stoo\\slarge 413 413
\t\t\t~^4(\\d\\d)\\s 400 4${{1}}
\t\t\tdefault 503 503
\t\t}}
\t\tmap {{path}} {{outreach_lang}} {{
{langs}\t\t\tdefault {site.languages[0]}
\t\t}}
\t\troot * {site.pages_dir}
\t\trewrite * /{{outreach_page}}.{{outreach_lang}}.html
\t\tfile_server {{
\t\t\tstatus {{outreach_status}}
\t\t}}
\t}}
}}

http://{site.host} {{
\theader -Server
\tredir {site.https_origin()}{{uri}} 308
}}

# Any other host name: the connection is closed, nothing is logged.
:{site.https_port} {{
\tabort
}}

:{site.http_port} {{
\tabort
}}
"""


def nginx_site(site: ProxySite) -> str:
    """A file for /etc/nginx/sites-available: the site, its redirect, a closed default."""
    ipv6 = "[::]:"
    headers = "".join(
        f'        add_header {name} "{value}" always;\n' for name, value in security_headers()
    )
    langs = "".join(f"    ~^/{lang}(/|$) {lang};\n" for lang in site.languages[1:])
    certificate = site.certificate or f"/etc/letsencrypt/live/{site.host}/fullchain.pem"
    key = site.certificate_key or f"/etc/letsencrypt/live/{site.host}/privkey.pem"
    tls = f"    ssl_certificate {certificate};\n    ssl_certificate_key {key};\n"
    quiet = (
        "    access_log off;\n"
        "    # nginx names the client in every error line, at every level: none are kept.\n"
        "    error_log /dev/null;\n"
    )
    https, http = site.https_port, site.http_port
    return f"""\
# Made by `outreach deploy nginx`; make it again after changing OUTREACH_MAX_BODY_BYTES,
# OUTREACH_MAX_REPORT_FILES_BYTES or the profile's languages, rather than editing it. Needs Debian's
# libnginx-mod-http-headers-more-filter for more_clear_headers.

# The language of a static error page: the path's language prefix.
map $uri $outreach_lang {{
{langs}    default {site.languages[0]};
}}

server {{
    listen {https} ssl http2;
    listen {ipv6}{https} ssl http2;
    server_name {site.host};
{tls}
{quiet}    server_tokens off;
    more_clear_headers Server;
    # The service's own limit: a body it would refuse unread is refused here, before it is
    # passed on (the service would answer before reading it, and nginx, still sending, 502).
    client_max_body_size {site.body_limit};

    location / {{
        proxy_pass http://{site.upstream};
        proxy_set_header Host $host;
        # The address nginx saw, not a chain the visitor may have made up.
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        # Passed on as it arrives: buffered, a long report would wait in plaintext in a
        # temporary file of nginx's on disk.
        proxy_request_buffering off;
    }}

    # An error of nginx's own (a body over the limit, the service restarting, a bad request):
    # the service's page for it, with nginx's status.
    error_page 400 414 494 {PAGES_PATH}/400.$outreach_lang.html;
    error_page 413 {PAGES_PATH}/413.$outreach_lang.html;
    error_page 500 502 503 504 =503 {PAGES_PATH}/503.$outreach_lang.html;
    location = {PAGES_PATH}/form.css {{
        alias {site.pages_dir}/form.css;
{headers}    }}
    location ^~ {PAGES_PATH}/ {{
        internal;
        # The redirected request still has the body that was too large: not checked again.
        client_max_body_size 0;
        alias {site.pages_dir}/;
{headers}    }}
}}

server {{
    listen {http};
    listen {ipv6}{http};
    server_name {site.host};
{quiet}    server_tokens off;
    more_clear_headers Server;
    return 301 {site.https_origin()}$request_uri;
}}

# Any other host name, and Debian's default site's place: the connection is closed.
server {{
    listen {https} ssl http2 default_server;
    listen {ipv6}{https} ssl http2 default_server;
    ssl_reject_handshake on;
{quiet}    return 444;
}}

server {{
    listen {http} default_server;
    listen {ipv6}{http} default_server;
{quiet}    return 444;
}}
"""
