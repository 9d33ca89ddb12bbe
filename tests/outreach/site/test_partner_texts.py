"""What partners copy: the "Report a concern" button and the announcement for families."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from hypothesis import given, settings
from hypothesis import strategies as st

from outreach.brand import READABLE, contrast, text_on
from outreach.i18n import catalog_path
from outreach.loader import LoadedProfile
from outreach.site.materials import Renderer, form_address
from tests.conftest import REPO

FORMS = {
    "en": "https://prevent.harbor-county.example.org/report",
    "es": "https://prevent.harbor-county.example.org/es/report",
}


def with_colour(loaded: LoadedProfile, colour: str) -> LoadedProfile:
    agency = loaded.profile.agency.model_copy(update={"primary_color": colour})
    profile = loaded.profile.model_copy(update={"agency": agency})
    return LoadedProfile(profile=profile, folder=loaded.folder, path=loaded.path)


def button(loaded: LoadedProfile, lang: str) -> str:
    return Renderer(loaded, lang).render("button.html")


def button_colours(snippet: str) -> tuple[str, str]:
    """The button's background and text colours, from its rule in the snippet's CSS."""
    rule = re.search(r"\.report-concern-button\{([^}]*)\}", snippet)
    assert rule is not None
    background = re.search(r"background:(#[0-9a-f]{6})", rule.group(1))
    text = re.search(r"(?<![-\w])color:(#[0-9a-f]{6})", rule.group(1))
    assert background is not None and text is not None
    return background.group(1), text.group(1)


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.link_text = ""
        self._in_link = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_link |= tag == "a"

    def handle_endtag(self, tag: str) -> None:
        self._in_link &= tag != "a"

    def handle_data(self, data: str) -> None:
        if self._in_link:
            self.link_text += data + " "


def elements(snippet: str) -> _Elements:
    parser = _Elements()
    parser.feed(snippet)
    return parser


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_button_opens_the_form_in_its_language(demo: LoadedProfile, lang: str) -> None:
    assert form_address(demo, lang) == FORMS[lang]
    parsed = elements(button(demo, lang))
    links = [attrs for tag, attrs in parsed.tags if tag == "a"]
    assert links == [
        {"class": "report-concern-button", "href": FORMS[lang], "lang": lang, "dir": "ltr"}
    ]


@pytest.mark.parametrize(
    ("lang", "name"),
    [
        ("en", "Report a concern Harbor County Prevention Team"),
        ("es", "Reportar una preocupación Equipo de Prevención del Condado de Harbor"),
    ],
)
def test_the_button_says_what_it_does_in_its_language(
    demo: LoadedProfile, lang: str, name: str
) -> None:
    assert " ".join(elements(button(demo, lang)).link_text.split()) == name


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_button_loads_nothing_and_runs_nothing(demo: LoadedProfile, lang: str) -> None:
    snippet = button(demo, lang)
    assert {tag for tag, _ in elements(snippet).tags} == {"style", "a", "span"}
    for attrs in (attrs for _, attrs in elements(snippet).tags):
        assert not [name for name in attrs if name.startswith("on") or name in {"src", "style"}]
    for outside in ("url(", "@import", "@font-face", "<script", "javascript:", "//"):
        assert outside not in snippet.replace(FORMS[lang], ""), outside


# Dark, light, and the greys either side of 4.5:1 against white (#767676 reads, #777777 not).
COLOURS = ["#1f4e79", "#ffc20e", "#767676", "#777777", "#ffffff", "#000000", "#ff0000", "#00ff00"]


@pytest.mark.parametrize("colour", COLOURS)
def test_the_buttons_text_reads_on_any_brand_colour(demo: LoadedProfile, colour: str) -> None:
    background, text = button_colours(button(with_colour(demo, colour), "en"))
    assert background == colour
    assert contrast(background, text) >= READABLE


def test_the_text_colour_is_white_or_black_by_contrast() -> None:
    assert text_on("#767676") == "#ffffff"
    assert text_on("#777777") == "#000000"  # white would be 4.48:1
    assert contrast("#777777", "#ffffff") < READABLE  # so the check can fail


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=0xFFFFFF))
def test_white_or_black_always_reaches_4_5(value: int) -> None:
    colour = f"#{value:06x}"
    assert contrast(colour, text_on(colour)) >= READABLE


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_announcement_says_how_to_report_and_get_help(
    demo_site: Path, demo: LoadedProfile, lang: str
) -> None:
    folder = demo_site / "materials" / lang
    plain = (folder / "announcement.txt").read_text("utf-8")
    html = (folder / "announcement-web.txt").read_text("utf-8")
    for text in (plain, html):
        assert FORMS[lang] in text
        assert demo.profile.agency.phone in text
        assert "911" in text and "988" in text
    greeting = {"en": "Dear families,", "es": "Estimadas familias:"}[lang]
    assert plain.startswith({"en": "A safe way", "es": "Una forma segura"}[lang])
    assert greeting in plain and f"<p>{greeting}</p>" in html
    assert f'<div lang="{lang}" dir="ltr">' in html
    assert "<script" not in html and "src=" not in html
    # Plain text is plain: no markup, no escaped characters.
    assert "<" not in plain and "&#" not in plain and "&amp;" not in plain


def test_the_spanish_announcement_puts_the_article_where_spanish_needs_it(
    demo: LoadedProfile,
) -> None:
    plain = Renderer(demo, "es").render("announcement.txt")
    assert "El Equipo de Prevención del Condado de Harbor trabaja para prevenir la violencia " in (
        plain
    )
    assert "en el Condado de Harbor antes de que ocurra." in plain


def materials_msgids() -> set[str]:
    """The strings of the printed materials and the partners' texts."""
    options = {"extensions": "jinja2.ext.i18n", "trim_blocks": "True", "lstrip_blocks": "True"}
    ids: set[str] = set()
    for template in sorted((REPO / "templates" / "materials").iterdir()):
        found = extract_from_file("jinja2.ext:babel_extract", str(template), options=options)
        ids |= {message for _, message, _, _ in found}
    found = extract_from_file("python", str(REPO / "outreach" / "site" / "materials.py"))
    return ids | {message for _, message, _, _ in found}


def test_every_materials_string_is_in_spanish() -> None:
    ids = materials_msgids()
    assert {"Worried about someone?", "Dear families,", "Poster, A4", "Report a concern"} <= ids
    with catalog_path("es").open("rb") as po:
        catalog = read_po(po, locale="es")
    translated = {m.id for m in catalog if m.id and m.string and not m.context}
    assert sorted(ids - translated) == []


def test_a_site_under_a_path_keeps_its_path_in_the_form_address(demo: LoadedProfile) -> None:
    agency = demo.profile.agency.model_copy(
        update={"site_url": "https://www.example.org/prevention/"}
    )
    profile = demo.profile.model_copy(update={"agency": agency})
    loaded = LoadedProfile(profile=profile, folder=demo.folder, path=demo.path)
    assert form_address(loaded, "en") == "https://www.example.org/prevention/report"
    assert form_address(loaded, "es") == "https://www.example.org/prevention/es/report"
