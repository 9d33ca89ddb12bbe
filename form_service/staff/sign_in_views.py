"""Enrolment, sign-in (password, then code) and sign-out pages."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from form_service.pages import NO_STORE
from form_service.service import service_of
from form_service.staff import passwords, totp
from form_service.staff.accounts import (
    FailureWindow,
    Session,
    SignInRefused,
    answer_after,
    check_code,
    check_password,
    enrol,
    invitation,
    sign_out,
)
from form_service.staff.keys import SealError
from form_service.staff.web import (
    clear_session_cookie,
    now,
    read_staff_form,
    render,
    same_origin,
    set_session_cookie,
    staff_page,
)

_FAILURES = FailureWindow()
"""Failed sign-ins of this process, all accounts together."""


async def enrol_endpoint(request: Request) -> Response:
    service = service_of(request)
    secret = request.path_params["secret"]
    invited = await invitation(service.store, secret, now())
    if invited is None:
        return render(request, "message.html", 404, message_id="link_expired")
    issuer = service.settings.profile.profile.agency.site_url.host or "outreach"
    if request.method == "GET":
        return _enrol_page(request, invited.user.email, issuer, totp.new_secret(), {}, 200)
    if not same_origin(request):
        return render(request, "message.html", 403, message_id="cross_site")
    form = await read_staff_form(request, ("password", "again", "totp_secret", "code"))
    if isinstance(form, Response):
        return form
    values = form.values
    totp_secret = values.get("totp_secret", "")
    errors = _enrolment_errors(values, invited.user.email)
    step = totp.accept_code(totp_secret, values.get("code", ""), 0) if not errors else None
    if not errors and step is None:
        errors["code"] = "code_wrong"
    if errors:
        return _enrol_page(request, invited.user.email, issuer, totp_secret, errors, 422)
    assert step is not None
    try:
        done = await enrol(service.store, invited, values["password"], totp_secret, step, now())
    except SignInRefused:
        return render(request, "message.html", 404, message_id="link_expired")
    await service.read_staff_keys()  # a team's first enrolment makes the team's key
    return render(request, "recovery_codes.html", 200, codes=done.recovery_codes)


def _enrolment_errors(values: dict[str, str], email: str) -> dict[str, str]:
    errors = {}
    password = values.get("password", "")
    problem = passwords.password_problem(password, email)
    if problem is not None:
        errors["password"] = problem
    elif values.get("again", "") != password:
        errors["again"] = "passwords_differ"
    if len(values.get("totp_secret", "")) != 32:
        errors["code"] = "code_wrong"
    return errors


def _enrol_page(
    request: Request,
    email: str,
    issuer: str,
    totp_secret: str,
    errors: dict[str, str],
    status_code: int,
) -> Response:
    uri = totp.provisioning_uri(totp_secret, email, issuer)
    return render(
        request,
        "enrol.html",
        status_code,
        email=email,
        totp_secret=totp_secret,
        grouped_secret=" ".join(totp_secret[i : i + 4] for i in range(0, 32, 4)),
        qr_svg=totp.qr_svg(uri, "QR code for your authenticator app"),
        errors=errors,
    )


async def sign_in_endpoint(request: Request) -> Response:
    if request.method == "GET":
        return render(request, "sign_in.html", email="", failed=False)
    started = time.monotonic()
    if not same_origin(request):
        return render(request, "message.html", 403, message_id="cross_site")
    form = await read_staff_form(request, ("email", "password"))
    if isinstance(form, Response):
        return form
    email = form.values.get("email", "")[:320]
    store = service_of(request).store
    try:
        step = await check_password(store, email, form.values.get("password", ""), now(), _FAILURES)
    except (SignInRefused, SealError):
        await answer_after(started)
        return render(request, "sign_in.html", 401, email=email, failed=True)
    await answer_after(started)
    return render(request, "sign_in_code.html", step=step, failed=False)


async def sign_in_code_endpoint(request: Request) -> Response:
    started = time.monotonic()
    if not same_origin(request):
        return render(request, "message.html", 403, message_id="cross_site")
    form = await read_staff_form(request, ("step", "code"))
    if isinstance(form, Response):
        return form
    service = service_of(request)
    step = form.values.get("step", "")[:100]
    try:
        _, secret = await check_code(
            service.store, step, form.values.get("code", "")[:100], now(), _FAILURES
        )
    except SignInRefused:
        await answer_after(started)
        return render(request, "sign_in_code.html", 401, step=step, failed=True)
    await answer_after(started)
    response = RedirectResponse("/staff/", status_code=303, headers=NO_STORE)
    set_session_cookie(response, request, secret)
    return response


@staff_page("admin", "intake", "auditor", "partner")
async def sign_out_endpoint(request: Request, session: Session) -> Response:
    form = await read_staff_form(request, ("everywhere",), session)
    if isinstance(form, Response):
        return form
    service = service_of(request)
    everywhere = form.values.get("everywhere") == "1"
    await sign_out(service.store, session, everywhere, now())
    response = render(request, "message.html", 200, message_id="signed_out")
    clear_session_cookie(response, request)
    return response
