"""Sentences an agency wrote that promise more than its profile configures.

The kit's own pages say when reports are read from ``agency.reads_reports`` (see
outreach/promises.py), but an agency's own pages are free text. A page that says "we read
every report day and night" while the team reads them in office hours tells a person in
trouble to wait for a reply that will not come: ``outreach check`` names each such sentence.

The test is deliberately narrow — a sentence must speak of reading or acting on reports
*and* of round-the-clock or immediate attention — so that "call 988 at any hour" or "you can
use the form at any hour", which stay true, are never flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from outreach.loader import LoadedProfile, display_path
from outreach.promises import reads_always
from outreach.site.page_context import PageError, render_markdown, site_links
from outreach.site.sitegen import collect_pages, page_values

# Per language: (who reads or acts on reports, round-the-clock or immediate attention).
# Languages without patterns are not checked; the kit's pages exist in English and Spanish.
_CLAIMS: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "en": (
        re.compile(r"\b(read|reads|reading|review|reviews|reviewed|act|acts|respond|responds)\b"),
        re.compile(
            r"day and night|24/7|24 hours a day|around the clock|at any hour|any time of day"
            r"|right away|at once|immediately|every hour|nights and weekends"
        ),
    ),
    "es": (
        re.compile(
            r"\b(lee|leen|leemos|revisa|revisan|revisamos|actúa|actúan|actuamos|responde)\b"
        ),
        re.compile(
            r"día y noche|las 24 horas|24/7|a cualquier hora|de inmediato|enseguida"
            r"|inmediatamente|noches y fines de semana"
        ),
    ),
}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
_MARKUP = re.compile(r"<[^>]+>|[*_`#>]")


@dataclass(frozen=True)
class Claim:
    """One sentence promising reading at any hour on a profile that reads in office hours."""

    where: str
    lang: str
    sentence: str

    def __str__(self) -> str:
        return (
            f'{self.where} ({self.lang}): "{self.sentence}" promises that reports are read at '
            "any hour or at once, but agency.reads_reports is office_hours; change the text, "
            "or set reads_reports: always if someone really reads reports at night and on "
            "weekends"
        )


def contradicted_claims(loaded: LoadedProfile) -> list[Claim]:
    """Every sentence of the site's pages, as rendered for this profile, that overpromises."""
    profile = loaded.profile
    if reads_always(profile):
        return []
    found: list[Claim] = []
    for lang in profile.languages:
        patterns = _CLAIMS.get(lang)
        if patterns is None:
            continue
        context = page_values(loaded, lang, site_links(profile, lang))
        for name, source in collect_pages(loaded, lang).items():
            # A fallback page is checked once, in the language it is written in.
            if not name.endswith(".md") or source.lang != lang:
                continue
            try:
                text = render_markdown(
                    source.path.read_text(encoding="utf-8"), context, display_path(source.path)
                )
            except PageError:
                continue  # `outreach build` names a page that cannot be rendered

            found += [
                Claim(display_path(source.path), lang, sentence)
                for sentence in _sentences(text)
                if all(pattern.search(sentence.lower()) for pattern in patterns)
            ]
    return found


def _sentences(text: str) -> list[str]:
    plain = _MARKUP.sub("", text)
    return [" ".join(s.split()) for s in _SENTENCE_END.split(plain) if s.strip()]
