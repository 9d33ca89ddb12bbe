"""The status page: a receipt code in (by POST only), the report's status out.

Every look-up takes the same minimum time and does the same work, right code or wrong, so
timing tells nothing; look-ups are rate-limited per client and overall.
"""

from __future__ import annotations

import time

import anyio
from starlette.requests import Request
from starlette.responses import Response

from form_service.error_pages import error_page
from form_service.form_input import BodyTooLarge, NotAForm, read_form
from form_service.logs import log_event
from form_service.ratelimit import client_address
from form_service.receipts import normalize_code, receipt_hash
from form_service.service import Service, service_of
from form_service.storage import ReportStatus
from outreach.i18n import translations

_MAX_CODE_CHARS = 200


def _status_text(status: ReportStatus, lang: str) -> tuple[str, str]:
    _ = translations(lang).gettext
    if status is ReportStatus.closed:
        return _("Closed"), _(
            "The prevention team has finished its work on your report. Thank you for telling us."
        )
    if status is ReportStatus.reviewed:
        return _("Being looked at"), _("Someone on the prevention team is looking at your report.")
    if status is ReportStatus.delivered:
        return _("Delivered to the team"), _("The prevention team has received your report.")
    return _("Received"), _(
        "Your report is stored safely and is on its way to the prevention team."
    )


async def _look_up(service: Service, typed: str) -> ReportStatus | None:
    code = normalize_code(typed[:_MAX_CODE_CHARS])
    found = None
    # One look-up per listed key, found or not, so every answer costs the same.
    for key in service.settings.secret_keys:
        status = await service.store.report_status(receipt_hash(key, code))
        found = found or status
    return found


async def _answer(service: Service, request: Request, lang: str, started: float) -> Response:
    settings = service.settings
    admission = service.limiter.admit(client_address(request, settings.trusted_proxies))
    if not admission.allowed:
        log_event("status_limited", status=429)
        return error_page(service.pages, request, lang, 429)
    try:
        form = await read_form(request, settings.max_body_bytes, ("code",))
    except BodyTooLarge:
        return error_page(service.pages, request, lang, 413)
    except NotAForm:
        return error_page(service.pages, request, lang, 415)
    typed = form.values.get("code", "")
    await anyio.sleep(admission.delay)
    status = await _look_up(service, typed)
    if status is None:
        service.limiter.record_failure(admission.client)
    await anyio.sleep(max(0.0, started + settings.status_min_seconds - time.monotonic()))
    log_event("status_checked", found=status is not None)
    if status is None:
        _ = translations(lang).gettext
        error = _("We could not find a report with this code. Check the code and try again.")
        return service.pages.render(
            request, "status.html", lang, 404, page="status", code=typed, error=error, result=None
        )
    title, text = _status_text(status, lang)
    return service.pages.render(
        request,
        "status.html",
        lang,
        200,
        page="status",
        code="",
        error="",
        result={"status": status.value, "title": title, "text": text},
    )


async def status_endpoint(request: Request) -> Response:
    started = time.monotonic()
    service = service_of(request)
    lang = service.language(request)
    if lang is None:
        return error_page(service.pages, request, service.pages.negotiate(request.headers), 404)
    if request.method == "POST":
        return await _answer(service, request, lang, started)
    return service.pages.render(
        request, "status.html", lang, page="status", code="", error="", result=None
    )
