"""The program figures page, and its CSV and JSON downloads, for admins and the intake team.

Auditors and partners' users get a 403: the figures are for the program manager and the
board (an admin account) and the team that works the cases. A download is an export: it
is a POST that asks for a fresh code from the user's app, as other sensitive actions do.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from form_service.pages import NO_STORE
from form_service.service import service_of
from form_service.staff import figures as program
from form_service.staff.accounts import Session, fresh_code
from form_service.staff.web import now, read_staff_form, render, staff_page
from form_service.storage import staff as records
from outreach.profile import localize

MONTHS = 12
_DOWNLOADS = {
    "csv": (program.as_csv, "text/csv; charset=utf-8"),
    "json": (program.as_json, "application/json"),
}


@staff_page("admin", "intake")
async def figures_endpoint(request: Request, session: Session) -> Response:
    return await _page(request, session)


@staff_page("admin", "intake")
async def figures_export_endpoint(request: Request, session: Session) -> Response:
    form = await read_staff_form(request, ("format", "code"), session)
    if isinstance(form, Response):
        return form
    download, code = form.values.get("format", ""), form.values.get("code", "").strip()
    error = None
    if download not in _DOWNLOADS:
        error = "choose_format"
    elif not code:
        error = "code_needed"
    elif not await fresh_code(service_of(request).store, session, code):
        error = "code_wrong"
    if error is not None:
        return await _page(request, session, 422, error, refused=True)
    return await _export(request, session, download)


async def _page(
    request: Request,
    session: Session,
    status_code: int = 200,
    error: str | None = None,
    *,
    refused: bool = False,
) -> Response:
    moment = now()
    profile = service_of(request).settings.profile.profile
    lang = profile.default_language
    async with service_of(request).store.transaction() as tx:
        figures = await program.read_figures(tx, profile, moment, MONTHS)
        if refused:
            await records.append_event(tx, session.user.email, "figures_export_refused", moment)
        await records.append_event(tx, session.user.email, "figures_viewed", moment)
    return render(
        request,
        "figures.html",
        status_code,
        session=session,
        error=error,
        figures=figures,
        bars=program.chart_bars(figures),
        chart=program,
        duration=program.duration,
        dimensions=program.DIMENSIONS,
        area_names={area.id: localize(area.name, lang, lang) for area in profile.areas},
        partner_names={p.id: localize(p.name, lang, lang) for p in profile.partners},
    )


async def _export(request: Request, session: Session, download: str) -> Response:
    moment = now()
    profile = service_of(request).settings.profile.profile
    async with service_of(request).store.transaction() as tx:
        figures = await program.read_figures(tx, profile, moment, MONTHS)
        await records.append_event(
            tx, session.user.email, "figures_exported", moment, detail=download
        )
    write, media_type = _DOWNLOADS[download]
    headers = {**NO_STORE, "Content-Disposition": f'attachment; filename="figures.{download}"'}
    return Response(write(figures), media_type=media_type, headers=headers)
