"""GET and POST of the report form, up to the receipt shown after the commit."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from babel.numbers import format_decimal
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from form_service.attachment_intake import (
    SealedFiles,
    Taken,
    cleaning_after,
    file_limits,
    files_received,
    files_sealed,
)
from form_service.error_pages import error_page
from form_service.file_cleaning import Refusal
from form_service.file_messages import (
    file_labels,
    kept_notice,
    limits_hint,
    refusal_text,
    too_large_notice,
)
from form_service.form_input import BodyTooLarge, NotAForm, ParsedForm, read_form
from form_service.intake import prepare_report
from form_service.pages import NO_STORE, code_groups
from form_service.ratelimit import client_address
from form_service.receipts import content_digest, open_code, token_hash
from form_service.report import Report
from form_service.report_form import FORM_FIELDS, MAX_DESCRIPTION, Invalid, validate_report
from form_service.service import Service, service_of
from form_service.sharing import area_name
from form_service.storage import ReferenceTaken, StoreUnavailable
from form_service.tokens import TokenProblem
from form_service.uploads import (
    FILE_FIELD,
    MAX_FILES,
    BadMultipart,
    ReceivedForm,
    is_multipart,
)
from outreach import promises
from outreach.profile import Concern, Setting

_REF_ATTEMPTS = 5
# A field people never see or reach (templates/form/form.html): only bots fill it in.
HONEYPOT = "website"


def _options(service: Service, lang: str) -> dict[str, Any]:
    """The form's choices and fixed texts in *lang*, made once per language."""
    made = service.form_options.get(lang)
    if made is None:
        made = service.form_options[lang] = _made_options(service, lang)
    return made


def _made_options(service: Service, lang: str) -> dict[str, Any]:
    profile = service.settings.profile.profile
    _ = service.pages.gettext(lang)
    return {
        "areas": [(a.id, area_name(a.id, lang, profile)) for a in profile.areas],
        "settings": [
            (Setting.school.value, _("A school (kindergarten to grade 12)")),
            (Setting.college.value, _("A college or university")),
            (Setting.workplace.value, _("A workplace")),
            (Setting.public_place.value, _("A public place or event")),
            (
                Setting.critical_infrastructure.value,
                _("Critical infrastructure (water, power, transit)"),
            ),
            (Setting.online.value, _("Online or on social media")),
            (Setting.home.value, _("A home or neighborhood")),
            (Setting.other.value, _("Somewhere else")),
        ],
        "concerns": [
            (Concern.harm_others.value, _("Someone may hurt other people")),
            (Concern.self_harm.value, _("Someone may hurt themselves or take their own life")),
            (Concern.both.value, _("Both of these")),
            (Concern.not_sure.value, _("Not sure")),
        ],
        "contact_partners": promises.join_names(promises.contact_partners(profile, lang), lang),
        "max_description": format_decimal(MAX_DESCRIPTION, locale=lang.replace("-", "_")),
    }


def form_page(
    service: Service,
    request: Request,
    lang: str,
    status_code: int = 200,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    notice: str = "",
    token: str | None = None,
    kept: Sequence[str] = (),
) -> Response:
    """The form; *kept*: labels of the files already held for its token."""
    t = service.pages.translations(lang)
    return service.pages.render(
        request,
        "form.html",
        lang,
        status_code,
        values=dict(values or {}),
        errors=dict(errors or {}),
        notice=notice,
        token=token or service.tokens.issue(),
        kept_files=kept_notice(kept, t) if kept else "",
        files_hint=limits_hint(file_limits(service), lang, t),
        **_options(service, lang),
    )


def _token_notice(problem: TokenProblem, _: Callable[[str], str]) -> str:
    if problem is TokenProblem.too_fast:
        return _("Please take a moment to check your report, then send it again.")
    if problem is TokenProblem.expired:
        return _(
            "This form was open for a long time, so we could not accept it. "
            "Everything you wrote is still here: please send it again."
        )
    return _(
        "We could not confirm that this form came from this site. "
        "Everything you wrote is still here: please send it again."
    )


async def _store(
    service: Service, report: Report, token_id: str, flood: bool, files: SealedFiles
) -> tuple[str | None, bool]:
    """The receipt code, and whether the report is new (stored with *files*). For a resubmit
    of a stored form, its code if it may be shown again (receipts.SealedReceipt.shows_again),
    else None; *files* are not stored then: the report has those sent first."""
    keys = service.settings.secret_keys
    profile = service.settings.profile.profile
    for attempt in range(_REF_ATTEMPTS):
        now = datetime.now(UTC)
        new, code = prepare_report(
            report, profile, token_id, keys[0], now, flood, service.readers, files.files
        )
        try:
            result = await service.store.save_report(new, files.steps(), files.size)
        except ReferenceTaken:
            if attempt + 1 == _REF_ATTEMPTS:
                raise
            continue
        if result.created:
            service.wakeup.set()
            service.stored.add(reports=1, partners=len(new.outbox))
            return code, True
        service.events.add("report_resubmitted", reports=1)
        earlier = open_code(token_id, result.receipt_sealed, result.report_ref)
        if earlier is None:  # sealed by nothing this form holds: only a tampered row
            raise StoreUnavailable("the earlier report of this form holds no code it opens")
        shown = earlier.shows_again(content_digest(report.content()), datetime.now(UTC))
        return (earlier.code if shown else None), False
    raise AssertionError("unreachable")


def _not_saved(
    service: Service,
    request: Request,
    lang: str,
    values: Mapping[str, str],
    error: StoreUnavailable,
) -> Response:
    """503: the database is down, read-only or full. The same form token is kept, so if the
    commit went through after all, sending again shows that report's receipt."""
    # The store's reason, as a count's name (database_or_disk_is_full: 2): never the client's.
    reason = re.sub(r"\W+", "_", str(error)[:60].lower()).strip("_") or "unknown"
    service.events.add("report_not_saved", logging.ERROR, reports=1, **{reason: 1})
    _ = service.pages.gettext(lang)
    notice = _(
        "Your report could not be saved just now, so nothing was sent. "
        "Everything you wrote is still here: please try again in a minute."
    )
    response = form_page(service, request, lang, 503, values, notice=notice, token=values["token"])
    response.headers["Retry-After"] = "30"
    return response


def _limited(
    service: Service, request: Request, lang: str, values: Mapping[str, str], flood: bool
) -> Response:
    service.events.add("report_limited", requests=1, flood=int(flood))
    _ = service.pages.gettext(lang)
    notice = _(
        "Too many reports have been sent from your connection or to this site in a short "
        "time, so this one was not sent. Everything you wrote is still here: please wait "
        "a few minutes, then send it again."
    )
    response = form_page(service, request, lang, 429, values, notice=notice, token=values["token"])
    response.headers["Retry-After"] = "60"
    return response


# Stands in for the code while a receipt page is rendered once per language and danger
# answer; the code (Crockford base32 and dashes) needs no escaping, so it is put in after.
_CODE_MARK = "RECEIPTCODEMARK"


def _receipt(
    service: Service,
    request: Request,
    lang: str,
    code: str,
    danger_now: bool,
    kinds: tuple[str, ...] = (),
) -> Response:
    key = (lang, danger_now, kinds)
    page = service.receipt_pages.get(key)
    if page is None:
        page = service.pages.html(
            "receipt.html",
            lang,
            code=_CODE_MARK,
            danger_now=danger_now,
            files=file_labels(kinds, service.pages.translations(lang)),
        )
        service.receipt_pages[key] = page
    shown = page.replace(code_groups(_CODE_MARK), code_groups(code))
    return HTMLResponse(shown.replace(_CODE_MARK, code), headers=NO_STORE)


async def _submit(service: Service, request: Request, lang: str) -> Response:
    settings = service.settings
    known = (*FORM_FIELDS, HONEYPOT)
    try:
        if not is_multipart(request):
            form = await read_form(request, settings.max_body_bytes, known)
            return await _answer(service, request, lang, ReceivedForm(form))
        async with files_received(
            service, request, known, settings.max_fields + MAX_FILES
        ) as received:
            return await _answer(service, request, lang, received)
    except BodyTooLarge:
        service.events.add("report_refused", too_large=1)
        return error_page(service.pages, request, lang, 413)
    except NotAForm:
        service.events.add("report_refused", not_a_form=1)
        return error_page(service.pages, request, lang, 415)
    except BadMultipart:
        service.events.add("report_refused", unreadable=1)
        return form_page(service, request, lang, 400, notice=_unreadable(service, lang))


def _unreadable(service: Service, lang: str) -> str:
    _ = service.pages.gettext(lang)
    return _("Some of the form could not be read. Please check your report and send it again.")


async def _answer(
    service: Service, request: Request, lang: str, received: ReceivedForm
) -> Response:
    settings = service.settings
    _ = service.pages.gettext(lang)
    form = received.form
    values = {k: v for k, v in form.values.items() if k != HONEYPOT}
    if (
        form.values.get(HONEYPOT)
        or form.repeated
        or form.field_count - len(received.files) > settings.max_fields
        or received.broken
    ):
        service.events.add("report_refused", unreadable=1)
        return form_page(service, request, lang, 400, values, notice=_unreadable(service, lang))
    check = service.tokens.check(values.get("token"))
    if check.problem is not None or check.token_id is None:
        service.events.add("report_refused", **{f"token_{check.problem or 'missing'}": 1})
        notice = _token_notice(check.problem or TokenProblem.missing, _)
        return form_page(service, request, lang, 400, values, notice=notice)
    if received.body_too_large:
        service.events.add("report_refused", files_too_large=1)
        notice = too_large_notice(file_limits(service), lang, service.pages.translations(lang))
        # The rest of the body is dropped unread by the server (form_service/http_limits.py).
        return form_page(service, request, lang, 413, values, notice=notice)
    # Only now, with a form this site issued, does the report count toward any limit or
    # the flood flag: tokenless and forged requests cost their sender, not the budget.
    address = client_address(request, settings.trusted_proxies)
    admission = service.report_limiter.admit(address, check.token_id)
    if not admission.allowed:
        return _limited(service, request, lang, values, admission.flood)
    try:
        return await _checked(service, request, lang, values, form, received, check.token_id,
                              admission.flood)  # fmt: skip
    except StoreUnavailable as error:
        return _not_saved(service, request, lang, values, error)


async def _checked(
    service: Service,
    request: Request,
    lang: str,
    values: dict[str, str],
    form: ParsedForm,
    received: ReceivedForm,
    token_id: str,
    flood: bool,
) -> Response:
    """A form of this site within its limits: its files taken, its fields validated, then
    stored. Raises StoreUnavailable."""
    async with files_sealed(service, received.files, token_hash(token_id)) as sealed:
        return await _with_files(service, request, lang, values, form, received, token_id,
                                 flood, sealed)  # fmt: skip


async def _with_files(
    service: Service,
    request: Request,
    lang: str,
    values: dict[str, str],
    form: ParsedForm,
    received: ReceivedForm,
    token_id: str,
    flood: bool,
    sealed: SealedFiles,
) -> Response:
    """The report validated with its files *sealed*: stored with them, in one commit; or,
    if either has a problem, the form again, the files kept under the form token."""
    _ = service.pages.gettext(lang)
    taken = Taken(sealed.files, sealed.refused)
    t = service.pages.translations(lang)
    labels = file_labels([f.kind for f in taken.files], t)
    limits = file_limits(service)
    file_errors = [refusal_text(r.number, r.reason, limits, lang, t) for r in taken.refused]
    if received.too_many_files:
        file_errors.append(refusal_text(MAX_FILES + 1, Refusal.too_many, limits, lang, t))
    if taken.refused:
        service.events.add("files_refused", **{str(r.reason): 1 for r in taken.refused})
    result = validate_report(values, form.unreadable, service.settings.profile.profile, lang, _)
    if isinstance(result, Invalid) or file_errors:
        errors = dict(result.errors) if isinstance(result, Invalid) else {}
        if file_errors:
            errors[FILE_FIELD] = " ".join(file_errors)
        service.events.add("report_invalid", reports=1, fields=len(errors))
        taken = await sealed.hold(service.store)
        page = form_page(service, request, lang, 422, values, errors=errors,
                         token=values["token"], kept=labels)  # fmt: skip
        return cleaning_after(page, service, taken)
    code, created = await _store(service, result, token_id, flood, sealed)
    if code is None:
        return _received_before(service, request, lang, result.danger_now)
    if not created:
        taken = Taken(sealed.earlier, sealed.refused)
    kinds = tuple(f.kind for f in taken.files)
    receipt = _receipt(service, request, lang, code, result.danger_now, kinds)
    return cleaning_after(receipt, service, taken)


def _received_before(service: Service, request: Request, lang: str, danger_now: bool) -> Response:
    """409: this form was used for a report before, and its code is not shown again."""
    return service.pages.render(request, "received_before.html", lang, 409, danger_now=danger_now)


async def report_endpoint(request: Request) -> Response:
    service = service_of(request)
    lang = service.language(request)
    if lang is None:
        return error_page(service.pages, request, service.pages.negotiate(request.headers), 404)
    if request.method == "POST":
        service.reports_in_flight += 1
        try:
            return await _submit(service, request, lang)
        finally:
            service.reports_in_flight -= 1
    return form_page(service, request, lang)
