"""A partner's own users: the reports shared with their partner, only what its agreement
allows, and the partner's own outcome for each (every local team closes out what it gets)."""

from __future__ import annotations

import json
from typing import Any

import pyrage
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from form_service.conversation import MESSAGE_MAX_CHARS, partner_joins_conversation
from form_service.pages import NO_STORE
from form_service.service import service_of
from form_service.staff import tipster_thread
from form_service.staff.accounts import Session
from form_service.staff.cases import Sealed, team_identity
from form_service.staff.web import forbidden, now, read_staff_form, render
from form_service.storage import conversation as threads
from form_service.storage import staff as records
from form_service.storage.requests import requests_to_partner
from form_service.times import minute_iso

PARTNER_OUTCOMES = ("support", "referral", "no_concern", "not_ours")
"""How a partner closes what it received: support or intervention, a referral, no concern
found, or not for this partner."""


async def partner_inbox(request: Request, session: Session) -> Response:
    partner_id = session.user.partner_id
    assert partner_id is not None
    async with service_of(request).store.transaction() as tx:
        shares = await records.shared_with(tx, partner_id)
        asked = await requests_to_partner(tx, partner_id)
    return render(
        request,
        "partner_inbox.html",
        session=session,
        shares=shares,
        requests=asked,
        now=minute_iso(now()),
    )


def _view(identity: Any, sealed: bytes | None) -> dict[str, Any] | None:
    if sealed is None:
        return None
    try:
        view: dict[str, Any] = json.loads(identity.decrypt(sealed))
    except pyrage.DecryptError:
        return None
    return view


async def partner_case(
    request: Request,
    session: Session,
    ref: str,
    status_code: int = 200,
    error: str | None = None,
    message_text: str = "",
) -> Response:
    partner_id = session.user.partner_id
    assert partner_id is not None
    if request.method == "POST" and status_code == 200:
        return await _post(request, session, ref, partner_id)
    joins = _joins(request, partner_id)
    thread = None
    async with service_of(request).store.transaction() as tx:
        share = await records.share(tx, ref, partner_id)
        if share is not None:
            if status_code == 200:
                await records.append_event(tx, session.user.email, "viewed", now(), ref)
            try:
                identity = await team_identity(tx, session, session.user.role)
            except Sealed:
                identity = None
            view = _view(identity, share.view_age) if identity else None
            if joins:
                thread = await tipster_thread.read(tx, ref, identity, session.user.email, now())
    if share is None:
        return await forbidden(request, session, ref[:40])
    return render(
        request,
        "partner_case.html",
        status_code,
        session=session,
        share=share,
        view=view,
        outcomes=PARTNER_OUTCOMES,
        joins=joins,
        thread=thread,
        error=error,
        message_text=message_text,
        message_max=MESSAGE_MAX_CHARS,
    )


def _joins(request: Request, partner_id: str) -> bool:
    """Whether this partner's agreement lets its users write to the person who reported."""
    return partner_joins_conversation(service_of(request).settings.profile.profile, partner_id)


async def _post(request: Request, session: Session, ref: str, partner_id: str) -> Response:
    form = await read_staff_form(request, ("action", "outcome", "message"), session)
    if isinstance(form, Response):
        return form
    if form.values.get("action") != "message":
        return await _close(request, session, ref, partner_id, form.values.get("outcome", ""))
    text = form.values.get("message", "")
    if not _joins(request, partner_id):
        return await forbidden(request, session, ref[:40])
    problem = tipster_thread.problem(text)
    if problem is not None:
        return await partner_case(request, session, ref, 422, problem, text)
    service = service_of(request)
    async with service.store.transaction() as tx:
        share = await records.share(tx, ref, partner_id)
        thread = await threads.by_ref(tx, ref) if share is not None else None
        if thread is not None and thread.recipient is not None:
            profile = service.settings.profile.profile
            await tipster_thread.write(tx, thread, text, session.user.email, profile, now())
    if share is None or thread is None:
        return await forbidden(request, session, ref[:40])
    if thread.recipient is None:
        return await partner_case(request, session, ref, 409, "thread_not_open", text)
    return RedirectResponse(f"/staff/reports/{ref}#thread", status_code=303, headers=NO_STORE)


async def _close(
    request: Request, session: Session, ref: str, partner_id: str, outcome: str
) -> Response:
    async with service_of(request).store.transaction() as tx:
        share = await records.share(tx, ref, partner_id)
        if share is not None and outcome in PARTNER_OUTCOMES:
            await records.close_share(tx, ref, partner_id, outcome, now())
            await records.append_event(
                tx, session.user.email, "partner_outcome", now(), ref, outcome
            )
    if share is None:
        return await forbidden(request, session, ref[:40])
    if outcome not in PARTNER_OUTCOMES:
        return render(request, "message.html", 422, session=session, message_id="outcome_needed")
    return RedirectResponse(f"/staff/reports/{ref}", status_code=303, headers=NO_STORE)
