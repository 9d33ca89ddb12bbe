"""The Starlette application: the built outreach site, and later the report service."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from form_service.settings import Settings


def create_app(settings: Settings) -> Starlette:
    routes = [Mount("/", app=StaticFiles(directory=settings.site_dir, html=True), name="site")]
    return Starlette(routes=routes)
