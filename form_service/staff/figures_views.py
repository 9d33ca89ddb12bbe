"""The program figures page, and its CSV and JSON downloads, for admins and the intake team.

Auditors and partners' users get a 403: the figures are for the program manager and the
board (an admin account) and the team that works the cases.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from form_service.pages import NO_STORE
from form_service.service import service_of
from form_service.staff import figures as program
from form_service.staff.accounts import Session
from form_service.staff.web import now, render, staff_page
from form_service.storage import staff as records
from outreach.profile import localize

MONTHS = 12
_DOWNLOADS = {
    "csv": (program.as_csv, "text/csv; charset=utf-8"),
    "json": (program.as_json, "application/json"),
}


@staff_page("admin", "intake")
async def figures_endpoint(request: Request, session: Session) -> Response:
    download = request.query_params.get("format", "")
    if download not in _DOWNLOADS:
        download = ""
    moment = now()
    profile = service_of(request).settings.profile.profile
    lang = profile.default_language
    async with service_of(request).store.transaction() as tx:
        figures = await program.read_figures(tx, profile, moment, MONTHS)
        action = "figures_exported" if download else "figures_viewed"
        await records.append_event(tx, session.user.email, action, moment, detail=download or None)
    if download:
        write, media_type = _DOWNLOADS[download]
        headers = {
            **NO_STORE,
            "Content-Disposition": f'attachment; filename="figures.{download}"',
        }
        return Response(write(figures), media_type=media_type, headers=headers)
    return render(
        request,
        "figures.html",
        session=session,
        figures=figures,
        bars=program.chart_bars(figures),
        chart=program,
        duration=program.duration,
        dimensions=program.DIMENSIONS,
        area_names={area.id: localize(area.name, lang, lang) for area in profile.areas},
        partner_names={p.id: localize(p.name, lang, lang) for p in profile.partners},
    )
