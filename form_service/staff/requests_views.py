"""The intake team's side of requests for information: ask a partner from a case, read the
answers in the case's thread (apart from the tipster's conversation), withdraw a request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from form_service.pages import NO_STORE
from form_service.service import service_of
from form_service.sharing import partner_language
from form_service.staff import requests as asking
from form_service.staff.accounts import Session
from form_service.staff.cases import Sealed, open_content, team_identity
from form_service.staff.keys import Identity
from form_service.staff.requests import Answer, Draft, Question
from form_service.staff.web import (
    now,
    page_language,
    read_staff_form,
    render,
    staff_page,
)
from form_service.storage import Tx
from form_service.storage import requests as stored
from form_service.storage import staff as records
from form_service.storage.requests import InfoRequest, NewRequest
from form_service.times import minute_iso
from outreach.profile import Profile, ReportField, localize

_FIELD_NAMES = tuple(f"field-{field.value}" for field in ReportField)


@dataclass(frozen=True)
class RequestView:
    """A request as a page shows it: names localized, question and answer opened."""

    request: InfoRequest
    partner_name: str
    agreement_title: str
    basis_title: str
    question: Question | None
    answer: Answer | None
    category_titles: tuple[str, ...]
    overdue: bool


def request_view(
    found: InfoRequest,
    profile: Profile,
    lang: str,
    identity: Identity | None,
    moment: datetime | None,
) -> RequestView:
    """*moment*: the time an open request counts as overdue after its due time; None: never."""
    default = profile.default_language
    partner = next((p for p in profile.partners if p.id == found.partner_id), None)
    terms = partner.agreement.requests if partner else None
    bases = {b.id: localize(b.title, lang, default) for b in terms.bases} if terms else {}
    kinds = {c.id: localize(c.title, lang, default) for c in terms.answers} if terms else {}
    answer = asking.open_answer(identity, found.answer_age)
    return RequestView(
        request=found,
        partner_name=localize(partner.name, lang, default) if partner else found.partner_id,
        agreement_title=partner.agreement.title if partner else found.agreement_id,
        basis_title=bases.get(found.basis_id, found.basis_id),
        question=asking.open_question(identity, found.question_age),
        answer=answer,
        category_titles=tuple(kinds.get(c, c) for c in answer.categories) if answer else (),
        overdue=moment is not None and found.is_open and found.due_at < minute_iso(moment),
    )


@dataclass(frozen=True)
class CaseRequests:
    """The case page's requests section: its thread and the partners one may ask."""

    items: list[RequestView]
    askable: list[tuple[str, str]]


async def case_requests(
    tx: Tx, ref: str, session: Session, profile: Profile, lang: str
) -> CaseRequests:
    try:
        team: Identity | None = await team_identity(tx, session)
    except Sealed:
        team = None
    moment = now()
    found = await stored.requests_of_report(tx, ref)
    default = profile.default_language
    return CaseRequests(
        [request_view(item, profile, lang, team, moment) for item in found],
        [(p.id, localize(p.name, lang, default)) for p in asking.askable(profile)],
    )


@staff_page("intake")
async def new_request_endpoint(request: Request, session: Session) -> Response:
    ref = request.path_params["ref"]
    if request.method == "POST":
        return await _send(request, session, ref)
    partner_id = request.query_params.get("partner", "")
    draft = Draft(partner_id, "", (), "", "", "")
    status = 422 if partner_id and asking.terms_of(_profile(request), partner_id) is None else 200
    errors = ["requests_not_permitted"] if status == 422 else []
    return await _form_page(request, session, ref, draft, status, errors, fresh=True)


def _profile(request: Request) -> Profile:
    return service_of(request).settings.profile.profile


async def _form_page(
    request: Request,
    session: Session,
    ref: str,
    draft: Draft,
    status_code: int = 200,
    errors: list[str] | None = None,
    fresh: bool = False,
) -> Response:
    profile = _profile(request)
    lang = page_language(request)
    async with service_of(request).store.transaction() as tx:
        found = await records.case(tx, ref)
        if found is None:
            return render(request, "message.html", 404, session=session, message_id="no_report")
        try:
            content = open_content(await team_identity(tx, session), found.content_age)
        except Sealed:
            content = None
    if content is None:
        status_code, errors = 403, ["no_team_key"]
    terms = asking.terms_of(profile, draft.partner_id)
    partner = profile.partner(draft.partner_id) if terms is not None else None
    preview: dict[str, str] = {}
    if partner is not None and terms is not None and content is not None:
        names = tuple(field.value for field in terms.fields)
        preview = asking.included_values(content, partner, names, lang, profile)
    default = profile.default_language
    urgent = found.summary.urgent
    return render(
        request,
        "request_new.html",
        status_code,
        session=session,
        case=found,
        draft=draft,
        errors=errors or [],
        partner=partner,
        partner_name=localize(partner.name, lang, default) if partner else "",
        bases=[(b.id, localize(b.title, lang, default)) for b in terms.bases] if terms else [],
        answers=[localize(c.title, lang, default) for c in terms.answers] if terms else [],
        preview=preview,
        askable=[(p.id, localize(p.name, lang, default)) for p in asking.askable(profile)],
        due_choices=asking.DUE_HOURS,
        due_hours=draft.due_hours if not fresh else str(asking.default_due_hours(urgent)),
        text_max=asking.TEXT_MAX_CHARS,
    )


async def _send(request: Request, session: Session, ref: str) -> Response:
    known = ("partner", "basis", "question", "reason", "due", *_FIELD_NAMES)
    form = await read_staff_form(request, known, session)
    if isinstance(form, Response):
        return form
    values = form.values
    chosen = tuple(f.value for f in ReportField if values.get(f"field-{f.value}") == "1")
    draft = Draft(
        values.get("partner", ""),
        values.get("basis", ""),
        chosen,
        values.get("question", ""),
        values.get("reason", ""),
        values.get("due", ""),
    )
    profile = _profile(request)
    errors = asking.problems(draft, profile)
    if not errors:
        errors = await _store(request, session, ref, draft)
    if errors == ["no_report"]:
        return render(request, "message.html", 404, session=session, message_id="no_report")
    if errors:
        await _record_refusal(request, session, ref, draft, errors)
        status = 409 if errors == ["partner_not_enrolled"] else 422
        return await _form_page(request, session, ref, draft, status, errors)
    return RedirectResponse(f"/staff/reports/{ref}#requests", status_code=303, headers=NO_STORE)


_POLICY_REFUSALS = {"requests_not_permitted", "field_not_allowed", "partner_not_enrolled"}


async def _record_refusal(
    request: Request, session: Session, ref: str, draft: Draft, errors: list[str]
) -> None:
    """A request the agreement does not permit is refused, and the attempt is on record."""
    refused = sorted(_POLICY_REFUSALS & set(errors))
    if not refused:
        return
    detail = f"to {draft.partner_id[:60] or '-'}: {', '.join(refused)}"
    async with service_of(request).store.transaction() as tx:
        await records.append_event(
            tx, session.user.email, "request_refused", now(), ref[:40], detail
        )


async def _store(request: Request, session: Session, ref: str, draft: Draft) -> list[str]:
    """Seal and store the request, on the audit trail; the refusal's message ids, if any."""
    profile = _profile(request)
    partner = profile.partner(draft.partner_id)
    terms = partner.agreement.requests
    assert terms is not None
    async with service_of(request).store.transaction() as tx:
        found = await records.case(tx, ref)
        if found is None:
            return ["no_report"]
        try:
            content = open_content(await team_identity(tx, session), found.content_age)
        except Sealed:
            return ["no_team_key"]
        lang = partner_language(partner, profile)
        values = asking.included_values(content, partner, draft.fields, lang, profile)
        if set(draft.fields) - set(values):
            return ["field_not_allowed"]  # contact details the reporter kept from partners
        readers = await asking.readers_of(tx, profile, partner.id)
        if readers is None:
            return ["partner_not_enrolled"]
        moment = now()
        urgent = found.summary.urgent
        question = {"question": draft.question, "reason": draft.reason, "fields": values}
        new = NewRequest(
            report_ref=ref,
            partner_id=partner.id,
            agreement_id=partner.agreement.id,
            basis_id=draft.basis_id,
            fields=draft.fields,
            urgent=urgent,
            asked_by_id=session.user.id,
            asked_by=session.user.email,
            asked_at=moment,
            due_at=asking.due_at(moment, draft.due_hours),
            question_age=asking.seal(question, readers),
        )
        request_id = await stored.add_request(tx, new)
        detail = (
            f"request {request_id} to {partner.id} under {partner.agreement.id}"
            f" ({draft.basis_id}); fields: {','.join(draft.fields) or '-'};"
            f" due in {draft.due_hours} h{'; urgent' if urgent else ''}"
        )
        await records.append_event(tx, session.user.email, "request_sent", moment, ref, detail)
        await asking.notify(tx, moment, partner_id=partner.id, urgent=urgent)
    return []


async def withdraw(request: Request, session: Session, request_id: int) -> Response:
    form = await read_staff_form(request, ("action",), session)
    if isinstance(form, Response):
        return form
    async with service_of(request).store.transaction() as tx:
        found = await stored.request_by_id(tx, request_id)
        if found is None or form.values.get("action") != "withdraw":
            return render(request, "message.html", 404, session=session, message_id="no_report")
        if await stored.withdraw(tx, request_id):
            await records.append_event(
                tx,
                session.user.email,
                "request_withdrawn",
                now(),
                found.report_ref,
                f"request {request_id}",
            )
    target = f"/staff/reports/{found.report_ref}#request-{request_id}"
    return RedirectResponse(target, status_code=303, headers=NO_STORE)
