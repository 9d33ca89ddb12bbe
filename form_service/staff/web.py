"""What every staff page shares: its templates, the session cookie, and the checks on a POST.

The cookie is set only by a completed sign-in. Where the site is served over HTTPS (its
site_url) it is ``__Host-outreach-staff``: Secure, HttpOnly, SameSite=Strict, Path=/. On
a loopback address in development (http://127.0.0.1:8000, http://localhost) there is no
TLS, and a browser would drop a Secure cookie sent over plain HTTP, so there it is
``outreach-staff`` with the same flags except Secure.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from form_service.form_input import BodyTooLarge, NotAForm, ParsedForm, read_form
from form_service.pages import ASSETS_PATH, NO_STORE, template_environment
from form_service.service import service_of
from form_service.staff.accounts import Session, session_for
from form_service.storage import staff as records
from outreach.addresses import service_address
from outreach.assets import templates
from outreach.languages import is_rtl
from outreach.profile import localize

STAFF_TEMPLATES = templates("staff")
MAX_FORM_BYTES = 512 * 1024
"""Room for a long note and then some: a longer one is answered on the page, text kept."""

Handler = Callable[[Request, Session], Awaitable[Response]]


@functools.cache
def _environment(lang: str, agency_locale: Path | None) -> Environment:
    return template_environment(STAFF_TEMPLATES, lang, agency_locale)


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


Row = TypeVar("Row", bound=_HasId)


def before_id(request: Request) -> int | None:
    """The ``before`` of a paged list: the last id of the page before, or None."""
    raw = request.query_params.get("before", "")
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


def one_page(rows: list[Row], size: int) -> tuple[list[Row], int | None]:
    """A page from *size* + 1 rows read, and the ``before`` of the next page (None: last)."""
    page = rows[:size]
    return page, page[-1].id if len(rows) > size and page else None


def now() -> datetime:
    return datetime.now(UTC)


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    session: Session | None = None,
    **values: Any,
) -> HTMLResponse:
    service = service_of(request)
    profile = service.settings.profile.profile
    # Staff pages have no language in their address: the browser's preference chooses.
    lang = page_language(request)
    context = {
        "lang": lang,
        "dir": "rtl" if is_rtl(lang) else "ltr",
        "agency_name": localize(profile.agency.name, lang, profile.default_language),
        "css_url": f"{ASSETS_PATH}/form.css",
        "staff_css_url": f"{ASSETS_PATH}/staff.css",
        "session": session,
        "csrf": session.csrf if session else "",
    }
    env = _environment(lang, profile.interface_locale)
    html = env.get_template(template).render(context | values)
    return HTMLResponse(html, status_code, headers=NO_STORE)


def page_language(request: Request) -> str:
    """The language of a staff page: the browser's preference among the profile's."""
    return service_of(request).pages.negotiate(request.headers)


def document_text(
    lang: str, template: str, agency_locale: Path | None = None, **values: Any
) -> str:
    """A staff template rendered as text, for a document rather than a page (a PDF)."""
    return _environment(lang, agency_locale).get_template(template).render({"lang": lang, **values})


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def _secure(request: Request) -> bool:
    if request.url.scheme == "https":
        return True
    agency = service_of(request).settings.profile.profile.agency
    https_site = service_address(agency).startswith("https:")
    return https_site and request.url.hostname not in _LOOPBACK


def cookie_name(request: Request) -> str:
    return "__Host-outreach-staff" if _secure(request) else "outreach-staff"


def set_session_cookie(response: Response, request: Request, secret: str) -> None:
    secure = _secure(request)
    response.set_cookie(
        cookie_name(request), secret, path="/", secure=secure, httponly=True, samesite="strict"
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    secure = _secure(request)
    response.delete_cookie(
        cookie_name(request), path="/", secure=secure, httponly=True, samesite="strict"
    )


def same_origin(request: Request) -> bool:
    """False for a request another site's page made: Sec-Fetch-Site or Origin says so."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in {"same-origin", "none"}:
        return False
    origin = request.headers.get("origin")
    if origin is None:
        # An older browser or a script without one: the synchronizer token still applies.
        return True
    if origin == "null":
        # What a browser sends from a page with Referrer-Policy: no-referrer, ours included;
        # then only Sec-Fetch-Site can say the form was this site's own.
        return site == "same-origin"
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def current_session(request: Request) -> Session | None:
    secret = request.cookies.get(cookie_name(request))
    if not secret:
        return None
    return await session_for(service_of(request).store, secret, now())


def to_sign_in(request: Request) -> Response:
    response = RedirectResponse("/staff/sign-in", status_code=303, headers=NO_STORE)
    if request.cookies.get(cookie_name(request)):
        clear_session_cookie(response, request)
    return response


async def read_staff_form(
    request: Request, known: tuple[str, ...], session: Session | None = None
) -> ParsedForm | Response:
    """The POSTed form, or the page that says why not; with a session, its token checked."""
    try:
        form = await read_form(request, MAX_FORM_BYTES, (*known, "csrf"))
    except BodyTooLarge:
        return render(request, "message.html", 413, session=session, message_id="too_large")
    except NotAForm:
        return render(request, "message.html", 415, session=session, message_id="not_a_form")
    if session is not None and not hmac.compare_digest(form.values.get("csrf", ""), session.csrf):
        return render(request, "message.html", 403, session=session, message_id="bad_token")
    return form


async def forbidden(request: Request, session: Session, report_ref: str | None = None) -> Response:
    """403 for a page this user's role may not open; the attempt is on the audit trail."""
    async with service_of(request).store.transaction() as tx:
        await records.append_event(
            tx, session.user.email, "forbidden", now(), report_ref, detail=request.url.path[:200]
        )
    return render(request, "message.html", 403, session=session, message_id="forbidden")


def staff_page(*roles: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A page for signed-in users of *roles* ("partner" for any partner's users).

    Without a live session: to the sign-in page. A POST must come from this site's own
    page and carry the session's synchronizer token."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            if request.method == "POST" and not same_origin(request):
                return render(request, "message.html", 403, message_id="cross_site")
            session = await current_session(request)
            if session is None:
                return to_sign_in(request)
            role = "partner" if session.user.partner_id else session.user.role
            if role not in roles:
                return await forbidden(request, session)
            return await handler(request, session)

        return endpoint

    return wrap
