"""The audit trail in the browser, for auditors and admins: who did what, never content."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from form_service.service import service_of
from form_service.staff.accounts import Session
from form_service.staff.web import render, staff_page
from form_service.storage import staff as records

PAGE_SIZE = 100


@staff_page("auditor", "admin")
async def audit_endpoint(request: Request, session: Session) -> Response:
    raw = request.query_params.get("before", "")
    before = int(raw) if raw.isdigit() and len(raw) < 19 else None
    async with service_of(request).store.transaction() as tx:
        events = await records.events(tx, limit=PAGE_SIZE + 1, before=before)
        problems = await records.verify_chain(tx) if before is None else []
    more = len(events) > PAGE_SIZE
    events = events[:PAGE_SIZE]
    return render(
        request,
        "audit.html",
        session=session,
        events=events,
        problems=problems,
        next_before=events[-1].id if more and events else None,
    )
