"""The status page: a receipt code in (by POST only), the report's status and conversation out.

Every code look-up takes the same minimum time and does the same work, right code or
wrong, so timing tells nothing; look-ups are rate-limited per client (never for everyone
together, which strangers could use up to lock every tipster out). After a
right code the page carries a single-use token (form_service.thread_sessions) for its next
POST: to write to the team or to look for new messages without typing the code again.
Token POSTs test no code, so they pass no code limit, and no one else's look-ups can keep a
tipster from their own conversation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from gettext import NullTranslations

import anyio
from babel.numbers import format_decimal
from starlette.requests import Request
from starlette.responses import Response

from form_service import conversation
from form_service.attachment_intake import (
    Taken,
    cleaning_after,
    file_limits,
    files_received,
    take_files,
)
from form_service.error_pages import error_page
from form_service.file_messages import (
    file_labels,
    limits_hint,
    refusal_text,
    too_large_notice,
    unreadable_notice,
)
from form_service.form_input import BodyTooLarge, NotAForm, read_form
from form_service.ratelimit import client_address
from form_service.receipts import normalize_code, receipt_hash
from form_service.service import Service, service_of
from form_service.staff.keys import Identity
from form_service.storage import ReportStatus, StoreUnavailable, Tx
from form_service.storage import attachments as stored_files
from form_service.storage import conversation as threads
from form_service.thread_sessions import OpenThread
from form_service.uploads import (
    MAX_FILES,
    BadMultipart,
    ReceivedFile,
    ReceivedForm,
    is_multipart,
)

_MAX_CODE_CHARS = 200
_FIELDS = ("code", "token", "message", "action")
MESSAGES_PER_HOUR = 20
"""A tipster's messages to one report within an hour: plenty to answer, too few to flood."""


def _status_text(status: ReportStatus, _: Callable[[str], str]) -> tuple[str, str]:
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


@dataclass(frozen=True)
class ShownMessage:
    from_team: bool
    at: str
    text: str


def _open_messages(identity: Identity, found: list[threads.Message]) -> list[ShownMessage]:
    shown = []
    for message in found:
        text = conversation.read_message(identity, message.body_age)
        if text is not None:
            shown.append(ShownMessage(message.sender == threads.STAFF, message.at, text))
    return shown


async def _find(tx: Tx, service: Service, typed: str) -> tuple[threads.Thread, Identity] | None:
    """The report of a typed code and its opened thread identity, or None."""
    code = normalize_code(typed[:_MAX_CODE_CHARS])
    found = None
    # One look-up per listed key, found or not, so every answer costs the same.
    for key in service.settings.secret_keys:
        thread = await threads.by_receipt(tx, receipt_hash(key, code))
        found = found or thread
    if found is None:
        return None
    identity = conversation.open_thread(code, found.sealed, found.report_ref)
    if identity is None and found.recipient is None:
        # Stored before conversations existed: its thread key is made now, from the code.
        made = conversation.new_thread(code, found.report_ref)
        await threads.set_thread(tx, found.report_id, made.recipient, made.sealed)
        # The key stored is opened, not the one made: a look-up of the same code at the
        # same moment may have stored its own first (then set_thread changed nothing).
        found = await threads.by_id(tx, found.report_id)
        if found is None:  # purged meanwhile
            return None
        identity = conversation.open_thread(code, found.sealed, found.report_ref)
    if identity is None:  # a thread sealed under another code: never for a code that matched
        return None
    return found, identity


def _page(
    service: Service,
    request: Request,
    lang: str,
    status_code: int,
    thread: threads.Thread,
    identity: Identity,
    found: list[threads.Message],
    *,
    message: str = "",
    error: str = "",
    sent: bool = False,
    files: Sequence[str] = (),
    files_lost: str = "",
) -> Response:
    """The status, the conversation and the box to write in, with a new token; *files*:
    labels of the files the report holds ("photo 1"); *files_lost*: what to say of those
    that could not be opened."""
    title, text = _status_text(thread.status, service.pages.gettext(lang))
    token = service.threads.issue(OpenThread(thread.report_id, identity))
    return service.pages.render(
        request,
        "status.html",
        lang,
        status_code,
        page="status",
        code="",
        error="",
        result={"status": thread.status.value, "title": title, "text": text},
        thread={
            "token": token,
            "messages": _open_messages(identity, found),
            "awaiting": thread.awaiting_tipster,
            "message": message,
            "error": error,
            "sent": sent,
            "max_chars": conversation.MESSAGE_MAX_CHARS,
            "files": list(files),
            "files_lost": files_lost,
            "files_hint": limits_hint(file_limits(service), lang, service.pages.translations(lang)),
        },
    )


async def _file_labels(tx: Tx, report_ref: str, t: NullTranslations) -> tuple[list[str], str]:
    """Labels of the report's files the team has ("photo 1"), and what to say of those
    that failed to open after the receipt."""
    stored = await stored_files.of_report(tx, report_ref)
    kept: list[str] = []
    gone: list[str] = []
    for file, label in zip(stored, file_labels([f.kind for f in stored], t), strict=True):
        (gone if file.state == stored_files.UNREADABLE else kept).append(label)
    return kept, unreadable_notice(gone, t)


def _code_page(
    service: Service,
    request: Request,
    lang: str,
    status_code: int,
    code: str,
    error: str,
    kept_message: str = "",
) -> Response:
    """The page that asks for a code: with what was wrong, and a message kept unsent."""
    return service.pages.render(
        request,
        "status.html",
        lang,
        status_code,
        page="status",
        code=code,
        error=error,
        result=None,
        thread=None,
        kept_message=kept_message,
    )


async def _look_up(
    service: Service, request: Request, lang: str, typed: str, started: float
) -> Response:
    settings = service.settings
    admission = service.limiter.admit(client_address(request, settings.trusted_proxies))
    if not admission.allowed:
        service.events.add("status_limited", requests=1)
        return error_page(service.pages, request, lang, 429)
    await anyio.sleep(admission.delay)
    async with service.store.transaction() as tx:
        found = await _find(tx, service, typed)
        messages = await threads.messages(tx, found[0].report_id) if found else []
        t = service.pages.translations(lang)
        files, lost = await _file_labels(tx, found[0].report_ref, t) if found else ([], "")
    if found is None:
        service.limiter.record_failure(admission.client)
    await anyio.sleep(max(0.0, started + settings.status_min_seconds - time.monotonic()))
    service.events.add("status_checked", **{"not_found" if found is None else "found": 1})
    if found is None:
        _ = service.pages.gettext(lang)
        error = _("We could not find a report with this code. Check the code and try again.")
        return _code_page(service, request, lang, 404, typed, error)
    return _page(service, request, lang, 200, *found, messages, files=files, files_lost=lost)


def _expired(service: Service, request: Request, lang: str, message: str) -> Response:
    """A token that is used, unknown or idle: the code again, the message kept."""
    _ = service.pages.gettext(lang)
    error = _(
        "This page has expired, to keep your conversation private. Enter your receipt code "
        "again. Your message was not sent yet: it is kept below, copy it before you go on."
    )
    service.events.add("thread_expired", pages=1)
    return _code_page(service, request, lang, 410, "", error, message)


async def _add_files(
    service: Service, opened: OpenThread, received: Sequence[ReceivedFile], lang: str
) -> tuple[bool, str, Taken | None]:
    """The tipster's new files, held for their report (its thread): whether any was
    added, what to say of those refused, and what was taken (None when no report is left
    to add them to). Raises StoreUnavailable."""
    async with service.store.transaction() as tx:
        thread = await threads.by_id(tx, opened.report_id)
    if thread is None:
        return False, "", None
    owner = stored_files.thread_owner(thread.report_ref)
    before = len(await stored_files.held(service.store, owner))
    taken = await take_files(service, received, owner, thread.report_ref)
    limits = file_limits(service)
    t = service.pages.translations(lang)
    problem = " ".join(refusal_text(r.number, r.reason, limits, lang, t) for r in taken.refused)
    added = len(taken.files) > before
    if added:
        async with service.store.transaction() as tx:
            await conversation.tell_team(tx, thread, datetime.now(UTC))
        service.events.add("thread_files", files=len(taken.files) - before)
    return added, problem, taken


async def _write(
    service: Service,
    request: Request,
    lang: str,
    token: str,
    text: str,
    send: bool,
    received: ReceivedForm | None = None,
) -> Response:
    _ = service.pages.gettext(lang)
    opened = service.threads.take(token)
    if opened is None:
        return _expired(service, request, lang, text)
    problem, status_code = "", 422
    new_files = received.files if received is not None and send else []
    if received is not None and received.body_too_large:
        t = service.pages.translations(lang)
        problem, status_code = too_large_notice(file_limits(service), lang, t), 413
    elif send and not text.strip() and not new_files:
        problem = _("Write a message before you send it.")
    elif send and len(text) > conversation.MESSAGE_MAX_CHARS:
        problem = _(
            "Your message is %(length)s characters long. Please shorten it to "
            "%(limit)s characters or fewer, or send it in parts."
        ) % {
            "length": format_decimal(len(text), locale=lang.replace("-", "_")),
            "limit": format_decimal(conversation.MESSAGE_MAX_CHARS, locale=lang.replace("-", "_")),
        }
    try:
        files_added, taken = False, None
        if new_files and not problem:
            files_added, problem, taken = await _add_files(service, opened, new_files, lang)
        async with service.store.transaction() as tx:
            thread = await threads.by_id(tx, opened.report_id)
            if thread is not None and send and not problem and text.strip():
                problem = await _store_message(service, tx, thread, text, lang)
                status_code = 429 if problem else status_code
            found = await threads.messages(tx, opened.report_id) if thread else []
            t = service.pages.translations(lang)
            files, lost = await _file_labels(tx, thread.report_ref, t) if thread else ([], "")
    except StoreUnavailable:
        service.events.add("thread_not_saved", logging.ERROR, messages=1)
        # The same page, the message kept and a new token: trying again needs no code.
        return _unavailable(service, request, lang, opened, text)
    if thread is None:
        service.events.add("thread_gone", pages=1)
        error = _(
            "This report was deleted at the end of the time we keep reports, so no more "
            "messages can be added to it. If you still have a concern, please send a "
            "new report."
        )
        return _code_page(service, request, lang, 410, "", error, text)
    if problem:
        page = _page(
            service,
            request,
            lang,
            status_code,
            thread,
            opened.identity,
            found,
            message=text,
            error=problem,
            files=files,
            files_lost=lost,
        )
        return cleaning_after(page, service, taken) if taken else page
    if send and text.strip():
        service.events.add("thread_message", messages=1)
    # Looking for new messages keeps what the tipster has typed but not yet sent.
    draft = "" if send else text
    page = _page(
        service,
        request,
        lang,
        200,
        thread,
        opened.identity,
        found,
        message=draft,
        sent=send and (bool(text.strip()) or files_added),
        files=files,
        files_lost=lost,
    )
    return cleaning_after(page, service, taken) if taken else page


async def _store_message(
    service: Service, tx: Tx, thread: threads.Thread, text: str, lang: str
) -> str:
    """Seal and store the tipster's message; the hourly limit's message instead, or ""."""
    _ = service.pages.gettext(lang)
    now = datetime.now(UTC)
    if await threads.recent_from_tipster(tx, thread.report_id, now) >= MESSAGES_PER_HOUR:
        return _(
            "You have sent many messages in the last hour. Please wait a while, then send "
            "this one again."
        )
    recipients = await conversation.message_recipients(tx, thread, service.settings.profile.profile)
    body = conversation.seal_message(text, recipients)
    await threads.add_message(tx, thread.report_id, threads.TIPSTER, None, body, now)
    await conversation.tell_team(tx, thread, now)
    return ""


def _unavailable(
    service: Service, request: Request, lang: str, opened: OpenThread, text: str
) -> Response:
    _ = service.pages.gettext(lang)
    token = service.threads.issue(opened)
    return service.pages.render(
        request,
        "status.html",
        lang,
        503,
        page="status",
        code="",
        error="",
        result=None,
        thread={
            "token": token,
            "messages": [],
            "awaiting": False,
            "message": text,
            "error": _(
                "We could not save your message just now. It is kept below: please try "
                "again in a few minutes."
            ),
            "sent": False,
            "max_chars": conversation.MESSAGE_MAX_CHARS,
            "files": [],
            "files_lost": "",
            "files_hint": limits_hint(file_limits(service), lang, service.pages.translations(lang)),
        },
    )


async def status_endpoint(request: Request) -> Response:
    started = time.monotonic()
    service = service_of(request)
    lang = service.language(request)
    if lang is None:
        return error_page(service.pages, request, service.pages.negotiate(request.headers), 404)
    if request.method != "POST":
        return _code_page(service, request, lang, 200, "", "")
    try:
        if is_multipart(request):
            # The conversation's form, which can carry files as the report form does.
            async with files_received(
                service, request, _FIELDS, len(_FIELDS) + MAX_FILES
            ) as received:
                return await _answer(service, request, lang, received, started)
        form = await read_form(request, service.settings.max_body_bytes, _FIELDS)
        return await _answer(service, request, lang, ReceivedForm(form), started)
    except BodyTooLarge:
        return error_page(service.pages, request, lang, 413)
    except (NotAForm, BadMultipart):
        return error_page(service.pages, request, lang, 415)


async def _answer(
    service: Service, request: Request, lang: str, received: ReceivedForm, started: float
) -> Response:
    values = received.form.values
    token = values.get("token")
    if token is not None:
        send = values.get("action", "send") == "send"
        text = values.get("message", "")
        return await _write(service, request, lang, token, text, send, received)
    return await _look_up(service, request, lang, values.get("code", ""), started)
