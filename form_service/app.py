"""The Starlette application: the report service's routes, then the built outreach site."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from form_service import brand
from form_service.attachment_intake import clear_upload_folder
from form_service.busy_page import BusyPage
from form_service.error_pages import ERRORS as page_errors
from form_service.error_pages import exception_handlers
from form_service.forwarded import ForwardedHeaders
from form_service.http_limits import CUT as connections_cut
from form_service.logs import log_event, setup_logging
from form_service.pages import ASSETS_PATH, asset_dir
from form_service.report_views import report_endpoint
from form_service.security_headers import SecurityHeaders
from form_service.service import Service, service_of
from form_service.settings import Settings
from form_service.site_files import SiteFiles
from form_service.staff.answer_views import request_endpoint
from form_service.staff.audit_views import audit_endpoint
from form_service.staff.disclosures_views import disclosures_endpoint
from form_service.staff.figures_views import figures_endpoint, figures_export_endpoint
from form_service.staff.file_views import file_endpoint
from form_service.staff.inbox_views import case_endpoint, inbox_endpoint
from form_service.staff.requests_views import new_request_endpoint
from form_service.staff.sign_in_views import (
    enrol_endpoint,
    sign_in_code_endpoint,
    sign_in_endpoint,
    sign_out_endpoint,
)
from form_service.staff.team_views import team_endpoint
from form_service.status_views import status_endpoint
from form_service.storage import open_store
from outreach.addresses import service_path

BackgroundTask = Callable[[Service], Coroutine[Any, Any, None]]


async def healthz(request: Request) -> Response:
    healthy = await service_of(request).store.ping()
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable"},
        status_code=200 if healthy else 503,
        headers={"Cache-Control": "no-store"},
    )


def _routes(settings: Settings) -> list[BaseRoute]:
    """The public pages under the service's path (agency.service_url, by default the
    site's: "/" or "/prevent/"); the staff pages and the health check at the host's root."""
    base = service_path(settings.profile.profile.agency).rstrip("/")
    public = _public_routes(settings)
    if not base:
        return [Route("/healthz", healthz, methods=["GET"]), *_staff_routes(), *public]
    return [
        Route("/healthz", healthz, methods=["GET"]),
        *_staff_routes(),
        # The staff pages' stylesheet, at the root as they are.
        Mount(ASSETS_PATH, app=StaticFiles(directory=asset_dir())),
        Route("/", _redirect_to(f"{base}/"), methods=["GET", "HEAD"]),
        Route(base, _redirect_to(f"{base}/"), methods=["GET", "HEAD"]),
        Mount(base, routes=public),
    ]


def _redirect_to(location: str) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    async def redirect(request: Request) -> Response:
        return RedirectResponse(location, status_code=308)

    return redirect


def _public_routes(settings: Settings) -> list[BaseRoute]:
    both = ["GET", "POST"]
    site = SiteFiles(settings.site_dir, settings.profile.profile.languages)
    return [
        Route("/report", report_endpoint, methods=both),
        Route("/status", status_endpoint, methods=both),
        Route("/{lang}/report", report_endpoint, methods=both),
        Route("/{lang}/status", status_endpoint, methods=both),
        Route(brand.STYLESHEET_ROUTE, brand.stylesheet_endpoint, methods=["GET"]),
        Route(brand.LOGO_ROUTE, brand.logo_endpoint, methods=["GET"]),
        Mount(ASSETS_PATH, app=StaticFiles(directory=asset_dir()), name="form-assets"),
        # Last, so the service's routes win over any file of the same name.
        # Only the public site is compressed: its pages hold no secret, whereas compressing
        # a form page (token + the tipster's echoed text) would invite BREACH-style guessing.
        Mount("/", app=GZipMiddleware(site, minimum_size=500), name="site"),
    ]


def _staff_routes() -> list[BaseRoute]:
    both = ["GET", "POST"]
    return [
        Route("/staff/", inbox_endpoint, methods=["GET"]),
        Route("/staff/sign-in", sign_in_endpoint, methods=both),
        Route("/staff/sign-in/code", sign_in_code_endpoint, methods=["POST"]),
        Route("/staff/sign-out", sign_out_endpoint, methods=["POST"]),
        Route("/staff/enrol/{secret}", enrol_endpoint, methods=both),
        Route("/staff/reports/{ref}", case_endpoint, methods=both),
        Route("/staff/reports/{ref}/files/{file_id}", file_endpoint, methods=["GET"]),
        Route("/staff/reports/{ref}/requests", new_request_endpoint, methods=both),
        Route("/staff/requests/{request_id}", request_endpoint, methods=both),
        Route("/staff/disclosures", disclosures_endpoint, methods=["GET"]),
        Route("/staff/audit", audit_endpoint, methods=["GET"]),
        Route("/staff/team", team_endpoint, methods=both),
        Route("/staff/figures", figures_endpoint, methods=["GET"]),
        Route("/staff/figures/export", figures_export_endpoint, methods=["POST"]),
    ]


def create_app(settings: Settings, background: Sequence[BackgroundTask] = ()) -> Starlette:
    """The site and the report service; *background* tasks run beside it (delivery worker)."""
    setup_logging(settings.log_level)
    service = Service.build(settings, open_store(settings))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await service.store.open()
        await service.read_staff_keys()
        clear_upload_folder(settings.data_dir)
        # What is built by now (profile, templates, catalogs) lives as long as the process:
        # kept out of the collector's passes, which then stay short under load (tail latency).
        gc.freeze()
        log_event("service_started")
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(service.stored.flush_every_minute)
                tasks.start_soon(service.events.flush_every_minute)
                tasks.start_soon(connections_cut.flush_every_minute)
                tasks.start_soon(page_errors.flush_every_minute)
                tasks.start_soon(service.follow_staff_keys)
                for task in background:
                    tasks.start_soon(task, service)
                yield {"service": service}
                tasks.cancel_scope.cancel()
        finally:
            service.stored.flush()
            service.events.flush()
            connections_cut.flush()
            page_errors.flush()
            await service.store.close()

    return Starlette(
        routes=_routes(settings),
        middleware=[
            Middleware(SecurityHeaders, settings=settings),
            Middleware(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts)),
            Middleware(ForwardedHeaders, trusted_proxies=settings.trusted_proxies),
            # Requests the server is too busy for (form_service/connection_cap.py).
            Middleware(BusyPage, pages=service.pages),
        ],
        exception_handlers=exception_handlers(service.pages),  # type: ignore[arg-type]
        lifespan=lifespan,
    )
