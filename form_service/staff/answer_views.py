"""A request for information from the partner's side: its users read the question and the
report fields their agreement lets a request include, nothing else of the report, and
answer, say there is nothing relevant, or decline with a reason.

The same address serves the intake team: it leads to the case, and takes a withdrawal.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from form_service.pages import NO_STORE
from form_service.service import service_of
from form_service.staff import requests as asking
from form_service.staff.accounts import Session
from form_service.staff.cases import Sealed, team_identity
from form_service.staff.requests_views import request_view, withdraw
from form_service.staff.web import (
    forbidden,
    now,
    page_language,
    read_staff_form,
    render,
    staff_page,
)
from form_service.storage import requests as stored
from form_service.storage import staff as records
from form_service.storage.requests import InfoRequest
from outreach.profile import localize

_STATES = {"answer": "answered", "nothing": "nothing", "decline": "declined"}
"""Each button of the partner's page and the state it leaves the request in."""


@dataclass(frozen=True)
class Typed:
    """What the partner's user typed, kept for the page when it is refused."""

    answer: str = ""
    reason: str = ""
    categories: tuple[str, ...] = ()


@staff_page("intake", "partner")
async def request_endpoint(request: Request, session: Session) -> Response:
    raw = request.path_params["request_id"]
    request_id = int(raw) if raw.isdigit() and len(raw) < 19 else 0
    if session.user.partner_id is None:
        if request.method == "POST":
            return await withdraw(request, session, request_id)
        async with service_of(request).store.transaction() as tx:
            found = await stored.request_by_id(tx, request_id)
        if found is None:
            return render(request, "message.html", 404, session=session, message_id="no_report")
        target = f"/staff/reports/{found.report_ref}#request-{request_id}"
        return RedirectResponse(target, status_code=303, headers=NO_STORE)
    if request.method == "POST":
        return await _answer(request, session, request_id)
    return await _page(request, session, request_id)


async def _mine(
    request: Request, session: Session, request_id: int, kept: str = ""
) -> InfoRequest | Response:
    """The partner's own request whose report is still kept; else the page that says no
    (with *kept*, the text the user typed, to copy before it is lost)."""
    async with service_of(request).store.transaction() as tx:
        found = await stored.request_by_id(tx, request_id)
        live = found is not None and await records.case(tx, found.report_ref) is not None
    if found is None or found.partner_id != session.user.partner_id:
        return await forbidden(request, session, found.report_ref if found else None)
    if not live:
        return render(
            request, "request_message.html", 410, session=session, message_id="purged", kept=kept
        )
    return found


async def _page(
    request: Request,
    session: Session,
    request_id: int,
    status_code: int = 200,
    error: str | None = None,
    typed: Typed = Typed(),
) -> Response:
    found = await _mine(request, session, request_id)
    if isinstance(found, Response):
        return found
    profile = service_of(request).settings.profile.profile
    lang = page_language(request)
    async with service_of(request).store.transaction() as tx:
        try:
            identity = await team_identity(tx, session, session.user.role)
        except Sealed:
            identity = None
        if status_code == 200:
            await records.append_event(
                tx,
                session.user.email,
                "request_viewed",
                now(),
                found.report_ref,
                f"request {request_id}",
            )
    terms = asking.terms_of(profile, found.partner_id)
    default = profile.default_language
    return render(
        request,
        "request.html",
        status_code,
        session=session,
        item=request_view(found, profile, lang, identity, now()),
        categories=[(c.id, localize(c.title, lang, default)) for c in terms.answers]
        if terms
        else [],
        error=error,
        typed=typed,
        text_max=asking.TEXT_MAX_CHARS,
        agency_short=profile.agency.short_name,
    )


async def _answer(request: Request, session: Session, request_id: int) -> Response:
    profile = service_of(request).settings.profile.profile
    partner_id = session.user.partner_id or ""
    terms = asking.terms_of(profile, partner_id)
    ids = tuple(category.id for category in terms.answers) if terms else ()
    known = ("action", "answer", "reason", *(f"category-{i}" for i in ids))
    form = await read_staff_form(request, known, session)
    if isinstance(form, Response):
        return form
    action = form.values.get("action", "")
    typed = Typed(
        form.values.get("answer", ""),
        form.values.get("reason", ""),
        tuple(i for i in ids if form.values.get(f"category-{i}") == "1"),
    )
    state = _STATES.get(action, "")
    text = {"answer": typed.answer, "decline": typed.reason}.get(action, "")
    if terms is None:
        return await _page(request, session, request_id, 422, "requests_not_permitted", typed)
    problems = asking.answer_problems(state, text, typed.categories, terms)
    if problems:
        return await _page(request, session, request_id, 422, problems[0], typed)
    found = await _mine(request, session, request_id, text)
    if isinstance(found, Response):
        return found
    refused = await _record(request, session, found, state, text, typed.categories)
    if refused is not None:
        return await _page(request, session, request_id, 409, refused, typed)
    return RedirectResponse(f"/staff/requests/{request_id}", status_code=303, headers=NO_STORE)


async def _record(
    request: Request,
    session: Session,
    found: InfoRequest,
    state: str,
    text: str,
    categories: tuple[str, ...],
) -> str | None:
    """Seal and record the answer, on the audit trail; why not (a message id), if refused."""
    profile = service_of(request).settings.profile.profile
    async with service_of(request).store.transaction() as tx:
        readers = await asking.readers_of(tx, profile, found.partner_id)
        if readers is None:
            return "partner_not_enrolled"
        sealed = asking.seal({"text": text, "categories": list(categories)}, readers)
        moment = now()
        if not await stored.close_request(tx, found.id, state, session.user.email, sealed, moment):
            current = await stored.request_by_id(tx, found.id)
            return "withdrawn" if current and current.state == "withdrawn" else "already_closed"
        await records.append_event(
            tx,
            session.user.email,
            f"request_{state}",
            moment,
            found.report_ref,
            f"request {found.id}",
        )
        await asking.notify(tx, moment, asker_id=found.asked_by_id)
    return None
