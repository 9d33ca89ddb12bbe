"""The inbox and a case's page: read, acknowledge, assign, note and close reports."""

from __future__ import annotations

from datetime import timedelta
from gettext import NullTranslations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from form_service.conversation import MESSAGE_MAX_CHARS
from form_service.file_messages import file_labels
from form_service.pages import NO_STORE, page_translations
from form_service.service import service_of
from form_service.staff import tipster_thread
from form_service.staff.accounts import Session
from form_service.staff.cases import Sealed, open_content, open_notes, seal_note, team_identity
from form_service.staff.file_views import case_files
from form_service.staff.keys import Identity
from form_service.staff.partner_views import partner_case, partner_inbox
from form_service.staff.release import release
from form_service.staff.requests_views import case_requests
from form_service.staff.web import (
    before_id,
    forbidden,
    now,
    one_page,
    page_language,
    read_staff_form,
    render,
    staff_page,
)
from form_service.storage import Tx
from form_service.storage import conversation as threads
from form_service.storage import staff as records
from outreach.profile import Profile, localize

PAGE_SIZE = 50
NOTE_MAX_CHARS = 10_000
OVERDUE_AFTER = timedelta(days=3)
"""An open report older than this is listed as overdue."""

OUTCOMES = ("support", "referral", "no_concern", "duplicate", "false_report")
"""How a case ends: support or intervention, a referral, no concern found, a duplicate,
or a false or prank report. Closing asks for one."""

_ACTIONS = ("acknowledge", "triage", "assign", "close", "reopen", "note", "release", "message")


@staff_page("admin", "intake", "auditor", "partner")
async def inbox_endpoint(request: Request, session: Session) -> Response:
    if session.user.partner_id is not None:
        return await partner_inbox(request, session)
    if session.user.role != "intake":
        return render(request, "home.html", session=session)
    view = request.query_params.get("view", "open")
    if view not in records.INBOX_VIEWS:
        view = "open"
    before = before_id(request)
    params: tuple[object, ...] = ()
    if view == "mine":
        params = (session.user.id,)
    elif view == "overdue":
        params = ((now() - OVERDUE_AFTER).strftime("%Y-%m-%dT%H:%MZ"),)
    async with service_of(request).store.transaction() as tx:
        urgent = await records.urgent_unacknowledged(tx)
        read = await records.inbox_page(tx, view, params, before, PAGE_SIZE + 1)
    cases, next_before = one_page(read, PAGE_SIZE)
    return render(
        request,
        "inbox.html",
        session=session,
        view=view,
        views=list(records.INBOX_VIEWS),
        urgent=urgent,
        cases=cases,
        next_before=next_before,
        first_page=before is None,
    )


@staff_page("intake", "admin", "auditor", "partner")
async def case_endpoint(request: Request, session: Session) -> Response:
    ref = request.path_params["ref"]
    if session.user.partner_id is not None:
        return await partner_case(request, session, ref)
    if session.user.role != "intake":
        return await forbidden(request, session, ref[:40])
    if request.method == "POST":
        return await _act(request, session, ref)
    return await _case_page(request, session, ref)


async def _case_page(
    request: Request,
    session: Session,
    ref: str,
    status_code: int = 200,
    note_text: str = "",
    error: str | None = None,
    message_text: str = "",
) -> Response:
    async with service_of(request).store.transaction() as tx:
        found = await records.case(tx, ref)
        if found is None:
            return render(request, "message.html", 404, session=session, message_id="no_report")
        if status_code == 200:
            await records.append_event(tx, session.user.email, "viewed", now(), ref)
        deliveries = await records.deliveries(tx, found.summary.id)
        shares = await records.shares(tx, ref)
        viewers = await records.viewers(tx, ref)
        notes = await records.notes(tx, ref)
        colleagues = [u for u in await records.users(tx) if u.role == "intake"]
        try:
            team: Identity | None = await team_identity(tx, session)
        except Sealed:
            team = None
        try:
            content = open_content(team, found.content_age) if team else None
        except Sealed:
            content = None
        opened_notes = open_notes(team, notes) if team else []
        thread = await tipster_thread.read(tx, ref, team, session.user.email, now())
        if thread is not None and team is not None and status_code == 200:
            await tipster_thread.mark_read(tx, thread.thread, session.user.email, now())
        asked = await case_requests(tx, ref, session, _profile(request), page_language(request))
        files, files_not_ready = await case_files(tx, ref) if content is not None else ([], {})
    return render(
        request,
        "case.html",
        status_code,
        session=session,
        case=found,
        content=content,
        deliveries=deliveries,
        viewers=viewers,
        notes=opened_notes,
        colleagues=colleagues,
        shares={share.partner_id: share for share in shares},
        partners=_partners(request),
        outcomes=OUTCOMES,
        note_text=note_text,
        error=error,
        note_max=NOTE_MAX_CHARS,
        thread=thread,
        message_text=message_text,
        message_max=MESSAGE_MAX_CHARS,
        requests=asked,
        files=list(
            zip(files, file_labels([f.kind for f in files], _translations(request)), strict=True)
        ),
        files_not_ready=files_not_ready,
    )


def _translations(request: Request) -> NullTranslations:
    """The public pages' strings in the staff page's language ("photo 1")."""
    return page_translations(page_language(request), _profile(request).interface_locale)


def _profile(request: Request) -> Profile:
    return service_of(request).settings.profile.profile


def _partners(request: Request) -> list[tuple[str, str]]:
    """(id, name) of every partner a report can be released to: all but the intake team."""
    profile = service_of(request).settings.profile.profile
    lang = profile.default_language
    return [
        (partner.id, localize(partner.name, lang, lang))
        for partner in profile.partners
        if partner.id != profile.routing.intake
    ]


async def _act(request: Request, session: Session, ref: str) -> Response:
    shares = tuple(f"share-{partner_id}" for partner_id, _ in _partners(request))
    known = ("action", "outcome", "note", "assignee", "message", *shares)
    form = await read_staff_form(request, known, session)
    if isinstance(form, Response):
        return form
    action = form.values.get("action", "")
    if action not in _ACTIONS:
        return await _case_page(request, session, ref, 400, error="unknown_action")
    if action == "note":
        return await _add_note(request, session, ref, form.values.get("note", ""))
    if action == "message":
        return await _write_to_tipster(request, session, ref, form.values.get("message", ""))
    if action == "release":
        chosen = {name.removeprefix("share-") for name in shares if form.values.get(name) == "1"}
        return await _release(request, session, ref, chosen)
    outcome = form.values.get("outcome", "")
    if action == "close" and outcome not in OUTCOMES:
        return await _case_page(request, session, ref, 422, error="outcome_needed")
    async with service_of(request).store.transaction() as tx:
        if await records.case(tx, ref) is None:
            return render(request, "message.html", 404, session=session, message_id="no_report")
        detail = await _apply(tx, action, ref, outcome, form.values.get("assignee", ""))
        if detail is not False:
            audit_detail = detail if isinstance(detail, str) else None
            await records.append_event(tx, session.user.email, action, now(), ref, audit_detail)
    # The page is read in a transaction of its own, after this one has ended.
    if detail is False:
        return await _case_page(request, session, ref, 422, error="no_such_colleague")
    return RedirectResponse(f"/staff/reports/{ref}", status_code=303, headers=NO_STORE)


async def _apply(tx: Tx, action: str, ref: str, outcome: str, assignee: str) -> str | bool | None:
    """Carry out *action*; the audit detail (never content), or False when refused."""
    if action == "acknowledge":
        await records.acknowledge(tx, ref, now())
    elif action == "triage":
        await records.acknowledge(tx, ref, now())
        await records.set_stage(tx, ref, "triaged")
    elif action == "assign":
        user = await records.user_by(tx, user_id=assignee) if assignee else None
        if user is None or user.role != "intake" or user.state != "active":
            return False
        await records.assign(tx, ref, user.id)
        return user.email
    elif action == "close":
        await records.close(tx, ref, outcome, now())
        return outcome
    elif action == "reopen":
        await records.reopen(tx, ref)
    return None


async def _release(request: Request, session: Session, ref: str, chosen: set[str]) -> Response:
    service = service_of(request)
    async with service.store.transaction() as tx:
        found = await records.case(tx, ref)
        if found is None:
            return render(request, "message.html", 404, session=session, message_id="no_report")
        try:
            content = open_content(await team_identity(tx, session), found.content_age)
        except Sealed:
            content = None
        if content is not None:
            profile = service.settings.profile.profile
            done = await release(
                tx, found, content, chosen, profile, service.readers, session.user.email, now()
            )
            await records.append_event(
                tx, session.user.email, "released", now(), ref, done.detail()
            )
    if content is None:
        return await _case_page(request, session, ref, 403, error="no_team_key")
    service.wakeup.set()  # the delivery worker of this process looks at once; others poll
    return RedirectResponse(f"/staff/reports/{ref}#partners", status_code=303, headers=NO_STORE)


async def _add_note(request: Request, session: Session, ref: str, text: str) -> Response:
    if not text.strip():
        return await _case_page(request, session, ref, 422, text, error="note_empty")
    if len(text) > NOTE_MAX_CHARS:
        return await _case_page(request, session, ref, 422, text, error="note_too_long")
    async with service_of(request).store.transaction() as tx:
        if await records.case(tx, ref) is None:
            return render(request, "message.html", 404, session=session, message_id="no_report")
        try:
            team = await team_identity(tx, session)
        except Sealed:
            team = None
        if team is not None:
            await records.add_note(tx, ref, session.user.email, seal_note(team, text), now())
            await records.append_event(tx, session.user.email, "note_added", now(), ref)
    if team is None:
        return await _case_page(request, session, ref, 403, text, error="no_team_key")
    return RedirectResponse(f"/staff/reports/{ref}#notes", status_code=303, headers=NO_STORE)


async def _write_to_tipster(request: Request, session: Session, ref: str, text: str) -> Response:
    problem = tipster_thread.problem(text)
    if problem is not None:
        return await _case_page(request, session, ref, 422, error=problem, message_text=text)
    service = service_of(request)
    async with service.store.transaction() as tx:
        thread = await threads.by_ref(tx, ref)
        if thread is None:
            return render(request, "message.html", 404, session=session, message_id="no_report")
        if thread.recipient is not None:
            await tipster_thread.write(
                tx,
                thread,
                text,
                session.user.email,
                service.settings.profile.profile,
                now(),
            )
    if thread.recipient is None:
        return await _case_page(
            request, session, ref, 409, error="thread_not_open", message_text=text
        )
    return RedirectResponse(f"/staff/reports/{ref}#thread", status_code=303, headers=NO_STORE)
