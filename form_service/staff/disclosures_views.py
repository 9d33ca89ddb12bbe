"""A partner's disclosure record, month by month: on the page, as CSV and as PDF.

Only the partner's own users make it (with their partner's key); each view and export is on
the audit trail, with the month and the format, never an entry's content.
"""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import Response

from form_service.pages import NO_STORE
from form_service.service import service_of
from form_service.staff.accounts import Session
from form_service.staff.cases import Sealed, team_identity
from form_service.staff.disclosures import Record, as_csv, month_bounds, read_record
from form_service.staff.web import document_text, now, page_language, render, staff_page
from form_service.storage import staff as records

_FORMATS = {"csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}


@staff_page("partner")
async def disclosures_endpoint(request: Request, session: Session) -> Response:
    partner_id = session.user.partner_id
    assert partner_id is not None
    month = request.query_params.get("month", now().strftime("%Y-%m"))
    download = request.query_params.get("format", "")
    if month_bounds(month) is None:
        return render(
            request,
            "disclosures.html",
            422,
            session=session,
            month=month,
            record=None,
            error="month_needed",
        )
    lang = page_language(request)
    profile = service_of(request).settings.profile.profile
    async with service_of(request).store.transaction() as tx:
        try:
            identity = await team_identity(tx, session, session.user.role)
        except Sealed:
            identity = None
        record = await read_record(tx, profile, partner_id, month, identity, lang)
        exported = download in _FORMATS
        action = "disclosures_exported" if exported else "disclosures_viewed"
        detail = f"{partner_id} {month}" + (f" {download}" if exported else "")
        await records.append_event(tx, session.user.email, action, now(), detail=detail)
    if download == "csv":
        return _attachment(as_csv(record).encode("utf-8"), record, "csv")
    if download == "pdf":
        # Laying out pages takes CPU time (about 0.8 s for 50 entries): off the event loop.
        pdf = await anyio.to_thread.run_sync(as_pdf, record, lang)
        return _attachment(pdf, record, "pdf")
    return render(
        request, "disclosures.html", session=session, month=month, record=record, error=None
    )


def _attachment(body: bytes, record: Record, extension: str) -> Response:
    name = f"disclosures-{record.partner_id}-{record.month}.{extension}"
    headers = {**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'}
    return Response(body, media_type=_FORMATS[extension], headers=headers)


def as_pdf(record: Record, lang: str) -> bytes:
    """The record as a PDF document (WeasyPrint), fetching nothing from anywhere."""
    # Imported here: WeasyPrint takes half a second to import, and only an export needs it.
    from weasyprint import HTML, URLFetcher

    html = document_text(lang, "disclosures_pdf.html", record=record, made_at=now())
    fetcher = URLFetcher(allowed_protocols={"data"})
    return bytes(HTML(string=html, url_fetcher=fetcher).write_pdf())
