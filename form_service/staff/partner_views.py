"""A partner's own users: the reports shared with their partner, only what its agreement
allows, and the partner's own outcome for each (every local team closes out what it gets)."""

from __future__ import annotations

import json
from typing import Any

import pyrage
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from form_service.pages import NO_STORE
from form_service.service import service_of
from form_service.staff.accounts import Session
from form_service.staff.cases import Sealed, team_identity
from form_service.staff.web import forbidden, now, read_staff_form, render
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


async def partner_case(request: Request, session: Session, ref: str) -> Response:
    partner_id = session.user.partner_id
    assert partner_id is not None
    if request.method == "POST":
        return await _close(request, session, ref, partner_id)
    async with service_of(request).store.transaction() as tx:
        share = await records.share(tx, ref, partner_id)
        if share is not None:
            await records.append_event(tx, session.user.email, "viewed", now(), ref)
            try:
                view = _view(await team_identity(tx, session, session.user.role), share.view_age)
            except Sealed:
                view = None
    if share is None:
        return await forbidden(request, session, ref[:40])
    return render(
        request,
        "partner_case.html",
        session=session,
        share=share,
        view=view,
        outcomes=PARTNER_OUTCOMES,
    )


async def _close(request: Request, session: Session, ref: str, partner_id: str) -> Response:
    form = await read_staff_form(request, ("outcome",), session)
    if isinstance(form, Response):
        return form
    outcome = form.values.get("outcome", "")
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
