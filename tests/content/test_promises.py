"""Promises that depend on the profile are rendered from it: change the profile, and every
page that makes the promise changes with it; no page claims what the profile does not set."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from outreach.assets import base_docs
from outreach.loader import LoadedProfile
from outreach.profile import Profile
from outreach.promises import (
    contact_partners,
    kept_copies,
    reading_hours,
    routing_summary,
    routing_table,
)
from outreach.site.directory import directory_page
from outreach.site.page_context import SiteLinks, page_context, render_markdown
from tests.content.page_text import read_article
from tests.content.test_pages import LANGS, WRITTEN, built_page

ALWAYS = {"en": "at any hour, every day", "es": "a cualquier hora, todos los días"}


def changed(profile: Profile, **agency: Any) -> Profile:
    """*profile* read around the clock, with police held for review, a shorter retention,
    backups kept 14 days and the sheriff's unit no longer told of contact details."""
    rules = [
        rule.model_copy(update={"review": rule.id != "schools-east"})
        for rule in profile.routing.rules
    ]
    partners = []
    for partner in profile.partners:
        if partner.id == "sheriff-tau":
            fields = [f for f in partner.agreement.fields if f != "contact"]
            agreement = partner.agreement.model_copy(update={"fields": fields})
            partner = partner.model_copy(update={"agreement": agreement})
        partners.append(partner)
    return profile.model_copy(
        update={
            "agency": profile.agency.model_copy(update={"reads_reports": "always", **agency}),
            "routing": profile.routing.model_copy(update={"rules": rules}),
            "partners": partners,
            "retention": profile.retention.model_copy(update={"days": 90, "backup_days": 14}),
        }
    )


def rendered(profile: Profile, lang: str) -> dict[str, str]:
    """Every written page of *lang*, filled in with *profile*, as Markdown."""
    context = page_context(profile, lang, SiteLinks("/", lang, profile.default_language))
    # The Materials page lists files to print, made by the build; it promises nothing.
    context["materials"] = []
    pages = {
        name: render_markdown((base_docs() / lang / name).read_text("utf-8"), context, name)
        for name in WRITTEN
    }
    pages["partners.md"] = directory_page(context, lang)
    return pages


@pytest.fixture(scope="module")
def shipped(reviewed_demo: LoadedProfile) -> Profile:
    return reviewed_demo.profile


# The pages that say when reports are read, who gets them, and how long they are kept.
READING_PAGES = [
    "index.md",
    "how-to-report.md",
    "get-help.md",
    "after-you-report.md",
    "questions.md",
    "partners.md",
]
ROUTING_PAGES = ["after-you-report.md", "privacy.md", "prevention-team.md"]


@pytest.mark.parametrize("lang", LANGS)
def test_every_page_says_when_reports_are_read_from_the_profile(
    shipped: Profile, lang: str
) -> None:
    before = rendered(shipped, lang)
    after = rendered(changed(shipped), lang)
    office = reading_hours(shipped, lang)
    for name in READING_PAGES:
        assert office in before[name], f"{lang}/{name} does not give the office hours"
        assert ALWAYS[lang] not in before[name], name
        assert ALWAYS[lang] in after[name], f"{lang}/{name} does not follow reads_reports"
        assert office not in after[name], name


@pytest.mark.parametrize("lang", LANGS)
def test_the_routing_table_follows_the_rules(shipped: Profile, lang: str) -> None:
    before = rendered(shipped, lang)
    after = rendered(changed(shipped), lang)
    for name in ROUTING_PAGES:
        assert routing_table(shipped, lang) in before[name], f"{lang}/{name}"
        assert routing_table(changed(shipped), lang) in after[name], f"{lang}/{name}"
    summary = {
        name: (routing_summary(shipped, lang), routing_summary(changed(shipped), lang))
        for name in (*ROUTING_PAGES, "index.md", "questions.md")
    }
    for name, (mixed, _) in summary.items():
        assert mixed in before[name], f"{lang}/{name}"
    at_once = shipped.model_copy(
        update={
            "routing": shipped.routing.model_copy(
                update={
                    "rules": [r.model_copy(update={"review": False}) for r in shipped.routing.rules]
                }
            )
        }
    )
    everything_at_once = rendered(at_once, lang)
    for name in summary:
        assert routing_summary(at_once, lang) in everything_at_once[name], f"{lang}/{name}"
        assert routing_summary(shipped, lang) not in everything_at_once[name], f"{lang}/{name}"
    police = {"en": "Sheriff's Office Threat Assessment Unit (law enforcement)", "es": "(policía)"}
    assert police[lang] in routing_table(shipped, lang)


def test_the_table_says_which_rules_wait_for_review(shipped: Profile) -> None:
    def row(table: str, partner: str) -> list[str]:
        return [line for line in table.splitlines() if partner in line]

    table = routing_table(shipped, "en")
    danger = [line for line in table.splitlines() if "in danger now" in line]
    assert len(danger) == 1 and "At once" in danger[0] and "law enforcement" in danger[0]
    assert "Only after our intake team has read" in row(table, "Eastwood Valley School")[0]
    assert "At once" in row(table, "Intake Team")[0]
    flipped = routing_table(changed(shipped), "en")
    assert "At once" in row(flipped, "Eastwood Valley School")[0]
    danger = [line for line in flipped.splitlines() if "in danger now" in line]
    assert "Only after" in danger[0]


@pytest.mark.parametrize("lang", LANGS)
def test_contact_details_and_retention_follow_the_profile(shipped: Profile, lang: str) -> None:
    before = rendered(shipped, lang)
    after = rendered(changed(shipped), lang)
    assert any("Sheriff" in name for name in contact_partners(shipped, lang))
    assert not any("Sheriff" in name for name in contact_partners(changed(shipped), lang))
    for name in ("privacy.md", "after-you-report.md"):
        partners = ", ".join(contact_partners(shipped, lang)[:2])
        assert partners in before[name], f"{lang}/{name}"
    for copy in kept_copies(shipped, lang):
        assert copy in before["privacy.md"]
    assert "30" in before["privacy.md"] and "14" in after["privacy.md"]
    for name in ("privacy.md", "after-you-report.md", "questions.md"):
        assert "365" in before[name] and "90" in after[name], f"{lang}/{name}"


def test_kept_copies_follow_the_delivery_channels(shipped: Profile) -> None:
    assert not any("e-mail" in copy for copy in kept_copies(shipped, "en"))
    partner = shipped.partners[1]
    delivery = partner.delivery.model_copy(update={"channel": "email"})
    partners = [partner.model_copy(update={"delivery": delivery}), *shipped.partners[2:]]
    mailed = shipped.model_copy(update={"partners": [shipped.partners[0], *partners]})
    assert any("mailboxes" in copy for copy in kept_copies(mailed, "en"))
    unset = shipped.model_copy(
        update={"retention": shipped.retention.model_copy(update={"backup_days": None})}
    )
    assert "for a while longer" in kept_copies(unset, "en")[-1]


# A sentence that says reports are read (or the form is watched) at every hour.
_AROUND_THE_CLOCK = re.compile(
    r"day and night|24/7|around the clock|at any hour|all the time|right away"
    r"|de día y de noche|a toda hora|a cualquier hora|las 24 horas|todo el tiempo"
    r"|actúa de inmediato|actuamos de inmediato|al instante",
    re.I,
)
_ABOUT_READING = re.compile(
    r"\bread|\bwatch|\bform\b|\bact\b|\blee\b|\bleemos\b|\bleen\b|revisa|vigila|formulario|actúa",
    re.I,
)


def round_the_clock_claims(text: str) -> list[str]:
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    return [s for s in sentences if _AROUND_THE_CLOCK.search(s) and _ABOUT_READING.search(s)]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", [*WRITTEN, "partners.md"])
def test_no_page_claims_reading_at_every_hour_without_the_profile(
    demo_site: Path, demo: LoadedProfile, lang: str, name: str
) -> None:
    assert demo.profile.agency.reads_reports == "office_hours"
    text = read_article(built_page(demo_site, lang, name)).prose()
    for line in demo.profile.crisis_lines:  # the crisis lines are open day and night
        for value in (line.hours, line.how):
            for part in value.values() if isinstance(value, dict) else [value]:
                text = text.replace(part.rstrip("."), "")
    assert round_the_clock_claims(text) == []


def test_the_claim_check_can_fail(shipped: Profile) -> None:
    assert round_the_clock_claims("The form is watched day and night. Call 988 at any hour.")
    claims = round_the_clock_claims(rendered(changed(shipped), "en")["index.md"])
    assert claims and all("at any hour" in claim for claim in claims)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", [*WRITTEN, "partners.md"])
def test_every_page_offers_the_crisis_line_beside_the_emergency_number(
    demo_site: Path, lang: str, name: str
) -> None:
    page = built_page(demo_site, lang, name).read_text(encoding="utf-8")
    bar = page.split('class="outreach-cta"')[1].split("</aside>")[0]
    assert 'href="tel:911"' in bar and 'href="tel:988"' in bar
    assert {"en": "988 Suicide &amp; Crisis Lifeline", "es": "Línea 988"}[lang] in bar


@pytest.mark.parametrize("lang", LANGS)
def test_the_name_with_its_article_comes_from_the_profile(shipped: Profile, lang: str) -> None:
    pages = rendered(shipped, lang)
    the_name = {"en": "the Harbor County Prevention Team", "es": "el Equipo de Prevención"}[lang]
    assert the_name in pages["index.md"] + pages["get-help.md"]
    start = {"en": "The Harbor County Prevention Team", "es": "El Equipo de Prevención"}[lang]
    assert start in pages["mental-health.md"]
    bare = shipped.agency.model_copy(update={"the_name": None})
    pages = rendered(shipped.model_copy(update={"agency": bare}), lang)
    assert the_name not in pages["get-help.md"] and start not in pages["mental-health.md"]
