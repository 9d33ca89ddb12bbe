"""The audit trail in the browser, for auditors and admins: who did what, never content."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from form_service.service import service_of
from form_service.staff.accounts import Session
from form_service.staff.web import before_id, one_page, render, staff_page
from form_service.storage import staff as records

PAGE_SIZE = 100


@staff_page("auditor", "admin")
async def audit_endpoint(request: Request, session: Session) -> Response:
    before = before_id(request)
    async with service_of(request).store.transaction() as tx:
        read = await records.events(tx, limit=PAGE_SIZE + 1, before=before)
        problems = await records.verify_chain(tx) if before is None else []
    events, next_before = one_page(read, PAGE_SIZE)
    return render(
        request,
        "audit.html",
        session=session,
        events=events,
        problems=problems,
        next_before=next_before,
    )
