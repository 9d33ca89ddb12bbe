"""Material's script loads when the reader first reaches for the page, not with it.

Every page works without JavaScript (the drawer, the language menu and the table of
contents are CSS; links are links), so Material's script only adds to a page: search, its
keyboard shortcuts, the header's page title while scrolling, tooltips. It is about half of
a page's first load (35 KiB compressed). The kit's templates/site/main.html writes a small
loader in its place that fetches the script at the reader's first tap, click, key press or
focus, then starts it as if the page had just loaded. A reader who only reads downloads
half as much; search opens as before, since opening it is a tap, a click or a key.
"""

from __future__ import annotations

import functools
from pathlib import Path

import material

_MATERIAL_SCRIPTS = Path(material.__path__[0]) / "templates" / "assets" / "javascripts"


class ThemeScriptMissing(RuntimeError):
    """Material's layout changed: its script is not where this kit version expects it."""


@functools.cache
def theme_script() -> str:
    """Material's script, as a path in a built site: assets/javascripts/bundle.<hash>.min.js."""
    bundles = sorted(_MATERIAL_SCRIPTS.glob("bundle.*.min.js"))
    if len(bundles) != 1:
        raise ThemeScriptMissing(
            f"expected one bundle.*.min.js in {_MATERIAL_SCRIPTS}, found {len(bundles)}; "
            "update outreach/site/theme_script.py for this Material version"
        )
    return f"assets/javascripts/{bundles[0].name}"
