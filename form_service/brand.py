"""The agency's colour and logo on the report service's pages, as on its site.

The pages' CSP allows styles and images from this service only, so both come from here: a
small stylesheet generated from the profile's colour (the same shades the site's
agency.css uses, outreach/brand.py) and the profile's logo file. Neither depends on where
the site is published.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from form_service.pages import ASSETS_PATH, BRAND_CSS_PATH
from form_service.service import service_of
from outreach.brand import readable_on_white, text_on
from outreach.profile import Profile

STYLESHEET_ROUTE = BRAND_CSS_PATH
LOGO_ROUTE = f"{ASSETS_PATH}/logo.{{suffix}}"
_LOGO_TYPES = {".svg": "image/svg+xml", ".png": "image/png"}


def stylesheet(profile: Profile) -> str:
    """--brand behind the header and buttons, --on-brand for text on it, --accent for text
    and borders on white (form.css uses them; its defaults are the kit's blue)."""
    color = profile.agency.primary_color.lower()
    return (
        "/* Generated from the agency profile's primary colour. */\n"
        ":root {\n"
        f"  --brand: {color};\n"
        f"  --on-brand: {text_on(color)};\n"
        f"  --accent: {readable_on_white(color)};\n"
        "}\n"
    )


async def stylesheet_endpoint(request: Request) -> Response:
    profile = service_of(request).pages.loaded.profile
    return Response(stylesheet(profile), media_type="text/css; charset=utf-8")


async def logo_endpoint(request: Request) -> Response:
    loaded = service_of(request).pages.loaded
    logo = loaded.profile.agency.logo
    suffix = "." + str(request.path_params["suffix"]).lower()
    if not logo or PurePosixPath(logo).suffix.lower() != suffix or suffix not in _LOGO_TYPES:
        raise HTTPException(404)
    return FileResponse(loaded.folder / logo, media_type=_LOGO_TYPES[suffix])
