"""The team page: who has an account, and access to the team key for those who wait.

A colleague enrolled after the intake team's key was made cannot read reports until
someone who holds the key grants it: the key is then sealed to the colleague's identity.
Ending a user's sessions and granting access ask for a fresh code.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from form_service.pages import NO_STORE
from form_service.service import service_of
from form_service.staff.accounts import Session, fresh_code
from form_service.staff.cases import Sealed, team_identity
from form_service.staff.keys import encrypt_to
from form_service.staff.web import now, read_staff_form, render, staff_page
from form_service.storage import Tx
from form_service.storage import staff as records
from form_service.storage.staff import INTAKE_GROUP


@staff_page("admin", "intake")
async def team_endpoint(request: Request, session: Session) -> Response:
    if request.method == "POST":
        return await _act(request, session)
    return await _page(request, session)


async def _page(
    request: Request, session: Session, status_code: int = 200, error: str | None = None
) -> Response:
    async with service_of(request).store.transaction() as tx:
        users = await records.users(tx)
        waiting = await records.members_without_key(tx, INTAKE_GROUP, "intake")
        holds_key = await records.group_key(tx, INTAKE_GROUP, session.user.id) is not None
    return render(
        request,
        "team.html",
        status_code,
        session=session,
        users=users,
        waiting=waiting if holds_key else [],
        error=error,
    )


async def _act(request: Request, session: Session) -> Response:
    form = await read_staff_form(request, ("action", "user", "code"), session)
    if isinstance(form, Response):
        return form
    action, user_id = form.values.get("action", ""), form.values.get("user", "")
    allowed = {"admin": {"end_sessions"}, "intake": {"grant"}}[session.user.role]
    if action not in allowed:
        return await _page(request, session, 403, error="not_allowed")
    if not await fresh_code(service_of(request).store, session, form.values.get("code", "")):
        return await _page(request, session, 422, error="code_wrong")
    async with service_of(request).store.transaction() as tx:
        refused = await _carry_out(tx, session, action, user_id)
    # The page is read in a transaction of its own, after this one has ended.
    if refused is not None:
        return await _page(request, session, refused[0], error=refused[1])
    return RedirectResponse("/staff/team", status_code=303, headers=NO_STORE)


async def _carry_out(tx: Tx, session: Session, action: str, user_id: str) -> tuple[int, str] | None:
    """End a user's sessions or grant them the team key; (status, message) when refused."""
    user = await records.user_by(tx, user_id=user_id)
    if user is None:
        return 404, "no_such_user"
    if action == "end_sessions":
        await records.delete_tokens(tx, user.id, "session")
    else:
        if user.recipient is None or user.role != "intake" or user.state != "active":
            return 422, "no_such_user"
        try:
            team = await team_identity(tx, session)
        except Sealed:
            return 403, "not_allowed"
        if await records.group_key(tx, INTAKE_GROUP, user.id) is None:
            sealed = encrypt_to(team.secret.encode(), [user.recipient])
            await records.grant_group(tx, INTAKE_GROUP, user.id, sealed)
    await records.append_event(tx, session.user.email, action, now(), detail=user.email)
    return None
