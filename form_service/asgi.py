"""The app of each process of ``outreach serve --workers N``.

uvicorn starts N processes that each import this factory; they learn the profile, the site
and whether to run a delivery worker from variables the parent process set, and read every
OUTREACH_* setting as the parent did. Form tokens and receipts work across the processes
because they share OUTREACH_SECRET_KEY (or the data dir's secret, made by the parent before
the processes start) and one database, which enforces single use of each token.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette

from form_service.app import create_app
from form_service.delivery.worker import start_worker
from form_service.settings import Settings
from outreach.loader import load_profile

PROFILE = "_OUTREACH_SERVE_PROFILE"
SITE = "_OUTREACH_SERVE_SITE"
DELIVER = "_OUTREACH_SERVE_DELIVER"


def serve_environment(profile: Path, site: Path, deliver: bool) -> dict[str, str]:
    return {PROFILE: str(profile), SITE: str(site.resolve()), DELIVER: "1" if deliver else "0"}


def app_from_environment() -> Starlette:
    profile = load_profile(os.environ[PROFILE])
    settings = Settings.from_env(profile=profile, site_dir=Path(os.environ[SITE]))
    background = (start_worker,) if os.environ.get(DELIVER) == "1" else ()
    return create_app(settings, background=background)
