"""The partner directory page, generated per language from the profile's public data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from outreach.i18n import translations


def _escape(text: str) -> str:
    """Keep profile text literal in Markdown (no accidental emphasis, links or HTML)."""
    for char in "\\`*_{}[]<>#|":
        text = text.replace(char, "\\" + char)
    return text


def directory_page(context: dict[str, Any], lang: str, agency_locale: Path | None = None) -> str:
    _ = translations(lang, agency_locale).gettext
    agency = context["agency"]
    lines = [
        "---",
        "description: "
        + _("The partners who work with %(agency)s to prevent violence.")
        % {"agency": agency["name"]},
        "---",
        "",
        "# " + _("Our partners"),
        "",
        _(
            "These organizations work with %(agency)s. Each one has a point of contact "
            "and a written agreement that says what it may be told about a report."
        )
        % {"agency": _escape(agency["name"])},
        "",
    ]
    for partner in context["partners"]:
        lines += ["## " + _escape(partner["name"]), "", f"*{_escape(partner['kind_label'])}*", ""]
        if partner["description"]:
            lines += [_escape(partner["description"]), ""]
        if partner["kind"] == "intake":
            lines += [_escape(context["reading"]["hours"]), ""]
        details = []
        if partner["areas"]:
            details.append(_("Serves: %(areas)s") % {"areas": _escape(", ".join(partner["areas"]))})
        if partner["phone"]:
            details.append(_("Phone: %(phone)s") % {"phone": _escape(partner["phone"])})
        if partner["email"]:
            email = partner["email"]
            details.append(
                _("E-mail: %(email)s") % {"email": f"[{_escape(email)}](mailto:{email})"}
            )
        if partner["website"]:
            link = f"[{_escape(partner['name'])}]({partner['website']})"
            details.append(_("Website: %(link)s") % {"link": link})
        lines += [f"- {item}" for item in details]
        lines.append("")
    return "\n".join(lines)
