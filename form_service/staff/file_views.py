"""A report's attached files in the inbox: photos shown inline on the case page, videos
offered for download, to the intake team and to the users of a partner the report was
shared with under an agreement with ``attachments``.

The intake team reads the archive copy, opened with the team key, which only a signed-in
member's session opens (staff/cases.py), exactly as the report itself; a partner's users
read their partner's copy, sealed to their key when the file was delivered to the
partner (delivery/files.py). A file is never written to disk in plaintext. Each view is
on the audit trail. The answer has the file's own media type (one of those the cleaning
writes), and the service's strict CSP and no-store headers
(form_service/security_headers.py), like every staff page.
"""

from __future__ import annotations

import asyncio

import pyrage
from starlette.requests import Request
from starlette.responses import Response

from form_service.delivery.files import file_name
from form_service.delivery.payload import SharedFile
from form_service.service import service_of
from form_service.sharing import shared_files
from form_service.staff.accounts import Session
from form_service.staff.cases import Sealed, team_identity
from form_service.staff.keys import Identity
from form_service.staff.web import forbidden, now, render, staff_page
from form_service.storage import Tx
from form_service.storage import attachments as stored_files
from form_service.storage import staff as records
from form_service.storage.staff import INTAKE_GROUP


async def case_files(tx: Tx, ref: str) -> tuple[list[SharedFile], dict[str, str]]:
    """The report's files as the case page lists them (kind, number, id), and for those
    that cannot be shown, why: the message id of a photo still being cleaned
    (form_service/waiting_files.py) or found unreadable."""
    stored = await stored_files.of_report(tx, ref)
    not_ready = {f.id: _NOT_READY[f.state] for f in stored if f.state in _NOT_READY}
    return shared_files(stored), not_ready


_NOT_READY = {stored_files.WAITING: "file_waiting", stored_files.UNREADABLE: "file_unreadable"}


def _open(team: Identity, pieces: list[bytes]) -> bytes:
    return team.decrypt(b"".join(pieces))


async def _copy_for(tx: Tx, request: Request, session: Session, ref: str) -> tuple[str, str]:
    """(copy, key group) of the files this user may open on this report, or ("", "") for
    none: the intake team's archive copy, or the copy of a partner the report was shared
    with under an agreement that shares files."""
    partner_id = session.user.partner_id
    if partner_id is None:
        return (stored_files.ARCHIVE, INTAKE_GROUP) if session.user.role == "intake" else ("", "")
    share = await records.share(tx, ref, partner_id)
    profile = service_of(request).settings.profile.profile
    if share is None or not profile.partner(partner_id).agreement.attachments:
        return "", ""
    return stored_files.partner_copy(partner_id), session.user.role


@staff_page("intake", "admin", "auditor", "partner")
async def file_endpoint(request: Request, session: Session) -> Response:
    ref = request.path_params["ref"]
    file_id = request.path_params["file_id"]
    async with service_of(request).store.transaction() as tx:
        copy, group = await _copy_for(tx, request, session, ref)
    if not copy:
        return await forbidden(request, session, ref[:40])
    async with service_of(request).store.transaction() as tx:
        files, not_ready = await case_files(tx, ref)
        file = next((f for f in files if f.id == file_id), None)
        if file is None:
            return render(request, "message.html", 404, session=session, message_id="no_report")
        if file_id in not_ready:  # 409 while it is cleaned, then 200; 410 for good
            code = 409 if not_ready[file_id] == "file_waiting" else 410
            return render(request, "message.html", code, session=session,
                          message_id=not_ready[file_id])  # fmt: skip
        try:
            team = await team_identity(tx, session, group)
        except Sealed:
            return render(request, "message.html", 403, session=session, message_id="no_team_key")
        pieces = await stored_files.pieces(tx, file_id, copy)
        if not pieces:  # sealed before the partner's users had a key
            return render(request, "message.html", 403, session=session, message_id="no_team_key")
        await records.append_event(tx, session.user.email, "viewed", now(), ref, "file")
    try:
        data = await asyncio.to_thread(_open, team, pieces)
    except pyrage.DecryptError:
        return render(request, "message.html", 403, session=session, message_id="no_team_key")
    disposition = "inline" if file.kind == "image" else "attachment"
    headers = {
        "Cache-Control": "no-store",
        "Content-Disposition": f'{disposition}; filename="{file_name(file)}"',
    }
    return Response(data, media_type=file.media_type, headers=headers)
