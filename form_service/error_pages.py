"""Localized error pages: a short sentence for the visitor, the event name for the log."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from form_service.logs import MinuteTallies
from form_service.pages import Pages
from form_service.storage import StoreUnavailable
from outreach.addresses import service_path


def error_messages(pages: Pages, lang: str) -> dict[int, tuple[str, str]]:
    _ = pages.gettext(lang)
    return {
        400: (_("Something was wrong with the request"), _("Please go back and try again.")),
        404: (
            _("Page not found"),
            _("There is no page at this address. Check the address, or start from the home page."),
        ),
        405: (_("Something was wrong with the request"), _("Please go back and try again.")),
        413: (
            _("Your report is too long to send"),
            _(
                "Please go back, shorten the longest text to 10,000 characters or fewer, "
                "and send the report again."
            ),
        ),
        415: (
            _("Something was wrong with the request"),
            _("Please send the report with the form on this site."),
        ),
        429: (
            _("Too many attempts"),
            _("Please wait a few minutes, then try again."),
        ),
        500: (
            _("Something went wrong on our side"),
            _("Your report may not have been sent. Please try again in a few minutes."),
        ),
        503: (
            _("We cannot answer just now"),
            _("Our system is briefly unavailable. Please try again in a minute."),
        ),
    }


def error_page(pages: Pages, request: Request, lang: str, status_code: int) -> Response:
    messages = error_messages(pages, lang)
    title, message = messages.get(status_code, messages[400])
    return pages.render(request, "error.html", lang, status_code, title=title, message=message)


def _page_language(pages: Pages, request: Request) -> str:
    # Below the service's own path ("/prevent/ar/report" is an Arabic page).
    base = service_path(pages.loaded.profile.agency)
    path = request.url.path
    path = path[len(base) - 1 :] if path.startswith(base) else path
    first = path.strip("/").split("/", 1)[0]
    if first in pages.loaded.profile.languages:
        return first
    return pages.negotiate(request.headers)


# Errors of any page, counted per minute like the form's events (app.py flushes them).
ERRORS = MinuteTallies()


def exception_handlers(pages: Pages) -> dict[type[Exception] | int, object]:
    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 400
        response = error_page(pages, request, _page_language(pages, request), status)
        if isinstance(exc, HTTPException) and exc.headers and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response

    async def server_error(request: Request, exc: Exception) -> Response:
        ERRORS.add("server_error", logging.ERROR, **{type(exc).__name__: 1})
        return error_page(pages, request, _page_language(pages, request), 500)

    async def unavailable(request: Request, exc: Exception) -> Response:
        # The database is down, read-only or full (a report's own form handles this itself).
        ERRORS.add("database_unavailable", logging.ERROR, requests=1)
        response = error_page(pages, request, _page_language(pages, request), 503)
        response.headers["Retry-After"] = "30"
        return response

    async def client_gone(request: Request, exc: Exception) -> Response:
        # Left, or cut by the body deadline (counted per minute by http_limits): no one to
        # answer, and nothing the operator need see, where a line each would fill the log.
        return Response(status_code=400)

    return {
        HTTPException: http_error,
        StoreUnavailable: unavailable,
        ClientDisconnect: client_gone,
        Exception: server_error,
    }


def busy_page(pages: Pages, request: Request) -> Response:
    """503 for a request the server is too busy to take (form_service.busy_page)."""
    return error_page(pages, request, _page_language(pages, request), 503)
