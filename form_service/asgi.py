"""The service as an ASGI app built from the OUTREACH_* settings alone.

``app_from_environment`` is a factory any ASGI server can run, e.g.
``uvicorn --factory form_service.asgi:app_from_environment``; ``outreach serve --workers N``
runs it in each of its N processes after setting OUTREACH_PROFILE, OUTREACH_SITE_DIR and
OUTREACH_DELIVERY_WORKER from its options. Form tokens and receipts work across the processes
because they share OUTREACH_SECRET_KEY (or the data dir's secret, made by the parent before
the processes start) and one database, which enforces single use of each token.
"""

from __future__ import annotations

from starlette.applications import Starlette

from form_service.app import create_app
from form_service.delivery.worker import start_worker
from form_service.settings import Settings


def app_from_environment() -> Starlette:
    settings = Settings.from_env()
    background = (start_worker,) if settings.delivery_worker else ()
    return create_app(settings, background=background)
