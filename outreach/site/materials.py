"""Printable materials (posters, flyers, wallet cards, stickers) and the partners' kit.

Each material is an HTML/CSS template in templates/materials/ that WeasyPrint lays out as
a PDF, one per profile language, with the agency's name, colour, logo, numbers and a QR
code to the report form in that language. An agency replaces a template the way it
replaces a page: a file of the same name in agencies/<id>/materials/<lang>/ (that language
only) or agencies/<id>/materials/ (every language).

Templates are filled in inside Jinja's sandbox (they may come from any agency) and laid
out with a fetcher that refuses every address that is not in the template's own folders:
a poster must not load anything from another site, nor tell one who printed it.

The HTML is rendered while the build is planned, so a template mistake stops the build at
once; the layout, which takes the time, runs in the build's worker processes beside the
MkDocs builds (``render_pdf``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.metadata
import mimetypes
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import segno
from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from outreach.assets import templates
from outreach.brand import readable_on_white, text_on
from outreach.i18n import N_, translations
from outreach.languages import is_rtl, name_in
from outreach.loader import LoadedProfile, display_path
from outreach.profile import localize
from outreach.site.page_context import SiteLinks, page_context, site_links

KIT_TEMPLATES = templates("materials")
AGENCY_FOLDER = "materials"
"""Where an agency's own material templates live, inside its profile folder."""
SITE_FOLDER = "materials"
"""Where the built site keeps them: <site>/materials/<lang>/<file>."""


@dataclass(frozen=True)
class Material:
    """One printed piece: which template, on which paper."""

    name: str
    """The PDF's file name without .pdf; the same in every language."""
    template: str
    size: str
    """The CSS page size."""
    width_in: float
    height_in: float
    title: str
    """Its name on the Materials page (translated where it is shown)."""
    pages: int
    """How many pages it has (the wallet card: front and back)."""

    def scale(self, base: Material) -> float:
        """How much larger than *base* the text can be: the same layout, on larger paper."""
        return round(min(self.width_in / base.width_in, self.height_in / base.height_in), 3)


MATERIALS = (
    Material(
        "poster-letter",
        "poster.html",
        "8.5in 11in",
        8.5,
        11,
        N_("Poster, US Letter, 8.5 × 11 in"),
        1,
    ),
    Material("poster-a4", "poster.html", "210mm 297mm", 8.27, 11.69, N_("Poster, A4"), 1),
    Material("poster-11x17", "poster.html", "11in 17in", 11, 17, N_("Large poster, 11 × 17 in"), 1),
    Material("poster-a3", "poster.html", "297mm 420mm", 11.69, 16.54, N_("Large poster, A3"), 1),
    Material(
        "flyer", "flyer.html", "5.5in 8.5in", 5.5, 8.5, N_("Half-page flyer, 5.5 × 8.5 in"), 1
    ),
    Material(
        "wallet-card",
        "wallet-card.html",
        "3.5in 2in",
        3.5,
        2,
        N_("Wallet card, 3.5 × 2 in, front and back"),
        2,
    ),
    Material("sticker", "sticker.html", "3in 3in", 3, 3, N_("Sticker, 3 × 3 in"), 1),
)
# Texts for partners to copy, made from templates like the printed materials. Each is a
# text file, even the HTML ones: a partner opening one sees the code to copy, and no
# fragment of a page is published as if it were a page.
TEXTS = {
    "button.html": "report-button.txt",
    "announcement.txt": "announcement.txt",
    "announcement.html": "announcement-web.txt",
}
TEMPLATE_NAMES = frozenset({"base.html", "parts.html", *(m.template for m in MATERIALS), *TEXTS})


# Tagged PDF (PDF/UA): headings, paragraphs, reading order and language for screen readers,
# as an agency's website must publish its documents. It costs no time.
PDF_OPTIONS = {"pdf_variant": "pdf/ua-1"}


class MaterialError(Exception):
    """A material that cannot be made; the message names the template and the problem."""


# -- where the form is, and the QR code that opens it ---------------------------------


def _links(loaded: LoadedProfile, lang: str) -> SiteLinks:
    """The site's own links in *lang*, as the pages have them."""
    return site_links(loaded.profile, lang)


def form_address(loaded: LoadedProfile, lang: str) -> str:
    """The report form's full address in *lang*: the site's own, with no tracking added."""
    return urljoin(str(loaded.profile.agency.site_url), _links(loaded, lang).report_url)


def qr_svg(address: str, title: str) -> Markup:
    """A QR code for *address*, as inline SVG: black on white, whatever the brand colour,
    with the four-module quiet zone every reader needs."""
    code = segno.make(address, error="m", micro=False)
    svg = code.svg_inline(scale=1, border=4, omitsize=True, title=title, light="#fff")
    # segno writes the markup itself and escapes the title; nothing in it is the public's.
    return Markup(svg)  # noqa: S704


# -- the values a material's template may use ------------------------------------------


def _logo(loaded: LoadedProfile) -> str:
    """The agency's logo as a data: address, so that laying it out fetches nothing."""
    logo = loaded.profile.agency.logo
    if not logo:
        return ""
    path = loaded.folder / logo
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{media_type};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def material_context(loaded: LoadedProfile, lang: str) -> dict[str, Any]:
    """Everything a material may show, in *lang*: the page values and a few of its own."""
    profile = loaded.profile
    context = page_context(profile, lang, _links(loaded, lang))
    address = form_address(loaded, lang)
    color = profile.agency.primary_color.lower()
    _ = translations(lang).gettext
    context.update(
        dir="rtl" if is_rtl(lang) else "ltr",
        brand={"color": color, "text": text_on(color), "ink": readable_on_white(color)},
        logo=_logo(loaded),
        form_url=address,
        # What a person types: the address without "https://".
        form_address=re.sub(r"^https?://", "", address).rstrip("/"),
        qr=qr_svg(address, _("Scan to report")),
        crisis_lines=[
            {
                "name": localize(line.name, lang, profile.default_language),
                "how": localize(line.how, lang, profile.default_language),
                "number": line.number,
            }
            for line in profile.crisis_lines
        ],
    )
    # The first line with a number (988 in the US), for materials with room for one.
    context["crisis_line"] = next((c for c in context["crisis_lines"] if c["number"]), None)
    return context


# -- templates -----------------------------------------------------------------------------


def template_folders(loaded: LoadedProfile, lang: str) -> list[Path]:
    """Where a template is looked for, most specific first."""
    own = loaded.folder / AGENCY_FOLDER
    return [own / lang, own, KIT_TEMPLATES]


def check_templates(loaded: LoadedProfile) -> list[str]:
    """Files in the agency's materials folder that would silently do nothing."""
    own = loaded.folder / AGENCY_FOLDER
    if not own.is_dir():
        return []
    problems = []
    languages = loaded.profile.languages
    files = []
    for path in sorted(own.iterdir()):
        if not path.is_dir():
            files.append(path)
        elif path.name in languages:
            files += sorted(p for p in path.iterdir() if p.is_file())
        else:
            problems.append(
                f"{display_path(path)}: '{path.name}' is not one of the profile's "
                f"languages ({', '.join(languages)})"
            )
    for path in files:
        if path.suffix in {".html", ".txt"} and path.name not in TEMPLATE_NAMES:
            problems.append(
                f"{display_path(path)}: no material uses a template named '{path.name}' "
                f"(the templates are {', '.join(sorted(TEMPLATE_NAMES))})"
            )
    return problems


@functools.lru_cache(maxsize=64)
def _environment(folders: tuple[Path, ...], lang: str) -> SandboxedEnvironment:
    """One environment per language and set of folders, so that each template is compiled
    once (the loader still notices a template changed on disk)."""
    env = SandboxedEnvironment(
        loader=FileSystemLoader(folders),
        autoescape=lambda name: name is None or not name.endswith(".txt"),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


def _where(error: BaseException, folders: list[Path]) -> tuple[str | None, int | None]:
    """The template file and line where rendering failed: Jinja maps the frames of the
    code it compiled to the template's file name and line (the innermost one wins, so a
    mistake in base.html names base.html)."""
    filename: str | None = getattr(error, "filename", None)
    line: int | None = getattr(error, "lineno", None)
    tb: TracebackType | None = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code.co_filename
        if Path(code).parent in folders:
            filename, line = code, tb.tb_lineno
        tb = tb.tb_next
    return filename, line


class Renderer:
    """One language's material templates, the agency's before the kit's."""

    def __init__(self, loaded: LoadedProfile, lang: str) -> None:
        self.folders = template_folders(loaded, lang)
        self.env = _environment(tuple(self.folders), lang)
        self.context = material_context(loaded, lang)

    def source_of(self, name: str) -> Path:
        for folder in self.folders:
            if (folder / name).is_file():
                return folder / name
        return KIT_TEMPLATES / name

    def render(self, name: str, **extra: Any) -> str:
        try:
            template = self.env.get_template(name)
            return template.render({**self.context, **extra})
        except TemplateNotFound as error:
            raise MaterialError(f"{name}: template '{error.name}' not found") from None
        except SecurityError as error:
            where = display_path(self.source_of(name))
            message = f"{where}: the template tries something not allowed ({error})"
            raise MaterialError(message) from None
        except TemplateError as error:
            filename, line = _where(error, self.folders)
            where = display_path(Path(filename or self.source_of(name)))
            where += f" line {line}" if line else ""
            raise MaterialError(f"{where}: {error.message or error}") from None


# -- the build's jobs ------------------------------------------------------------------


@dataclass(frozen=True)
class MaterialJob:
    """One PDF to lay out, small enough to send to a worker process."""

    lang: str
    material: str
    html: str
    template: Path
    """The template it came from: its folder is where relative addresses resolve."""
    allowed: tuple[Path, ...]
    """The only folders a file: address may point into."""
    target: Path
    key: str
    """A digest of all the PDF is made from (plan_materials): the same key, the same PDF."""


def plan_materials(loaded: LoadedProfile, lang: str, out: Path) -> list[MaterialJob]:
    """Render one language's templates and write its texts into *out*/<lang>/; return the
    PDFs still to lay out."""
    renderer = Renderer(loaded, lang)
    folder = out / lang
    folder.mkdir(parents=True, exist_ok=True)
    for template, filename in TEXTS.items():
        (folder / filename).write_text(renderer.render(template), encoding="utf-8")
    allowed = tuple(f.resolve() for f in renderer.folders if f.is_dir())
    folders_key = _folders_key(allowed)
    jobs = []
    for material in MATERIALS:
        page = {
            "name": material.name,
            "size": material.size,
            "width_in": material.width_in,
            "height_in": material.height_in,
            "scale": material.scale(_base_of(material)),
            "pages": material.pages,
        }
        html = renderer.render(material.template, page=page)
        source = renderer.source_of(material.template)
        target = folder / f"{material.name}.pdf"
        made_of = f"{folders_key}\n{PDF_OPTIONS}\n{source}\n{html}"
        key = hashlib.sha256(made_of.encode()).hexdigest()
        jobs.append(MaterialJob(lang, material.name, html, source, allowed, target, key))
    return jobs


def _folders_key(folders: tuple[Path, ...]) -> str:
    """A digest of WeasyPrint's version and every file a material may read besides its
    HTML (the templates' folders: style sheets, pictures), so a changed file is a new PDF."""
    digest = hashlib.sha256(importlib.metadata.version("weasyprint").encode())
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(f"\n{path}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


# -- the PDFs of the last build, kept to be used again ----------------------------------
# Laying out the PDFs is most of their cost, and most builds change a page, not the
# materials: a PDF whose key is unchanged is copied from the last build instead.


def cache_folder(out: Path) -> Path:
    """Beside the site, like the build's own work folder; never inside what is published."""
    return out.parent / f".{out.name}-materials-cache"


def reuse(jobs: list[MaterialJob], cache: Path) -> list[MaterialJob]:
    """Copy the PDFs the cache holds into place; return the jobs still to lay out."""
    left = []
    for job in jobs:
        kept = cache / f"{job.key}.pdf"
        if kept.is_file():
            shutil.copyfile(kept, job.target)
        else:
            left.append(job)
    return left


def keep(jobs: list[MaterialJob], cache: Path) -> None:
    """Make the cache hold this build's PDFs, and only them."""
    fresh = cache.with_name(cache.name + ".new")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    for job in jobs:
        shutil.copyfile(job.target, fresh / f"{job.key}.pdf")
    shutil.rmtree(cache, ignore_errors=True)
    fresh.rename(cache)


def _base_of(material: Material) -> Material:
    """The smallest material with the same template: the size its text is designed for."""
    same = [m for m in MATERIALS if m.template == material.template]
    return min(same, key=lambda m: m.width_in * m.height_in)


def render_pdf(job: MaterialJob) -> list[str]:
    """Lay out one PDF; return the problems (empty on success)."""
    # Imported here: WeasyPrint takes about half a second to import, and only the workers
    # that lay out materials need it.
    from weasyprint import HTML
    from weasyprint.urls import FatalURLFetchingError

    try:
        HTML(
            string=job.html,
            base_url=job.template.resolve().parent.as_uri() + "/",
            url_fetcher=_local_fetcher(job.allowed),
        ).write_pdf(job.target, **PDF_OPTIONS)
    except FatalURLFetchingError as error:
        return [f"{display_path(job.template)} ({job.lang}, {job.material}.pdf): {error}"]
    return []


def _local_fetcher(allowed: tuple[Path, ...]) -> Any:
    """A fetcher for data: addresses and files in the templates' folders, nothing else."""
    from weasyprint import URLFetcher
    from weasyprint.urls import FatalURLFetchingError

    class LocalOnly(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            if not _is_local(url, allowed):
                # Fatal: any other error WeasyPrint only logs, and prints without it.
                raise FatalURLFetchingError(
                    f"refers to {url}; a material may use only files in its own folder"
                )
            return super().fetch(url, headers)

    return LocalOnly(allowed_protocols={"data", "file"}, fail_on_errors=True)


def _is_local(url: str, allowed: tuple[Path, ...]) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "data":
        return True
    if parts.scheme != "file" or parts.netloc not in {"", "localhost"}:
        return False
    path = Path(unquote(parts.path)).resolve()
    return any(path.is_relative_to(folder) for folder in allowed)


def site_path(loaded: LoadedProfile, lang: str, filename: str) -> str:
    """The absolute path of one file of *lang*'s materials on the built site."""
    return f"{_links(loaded, lang).base_path}{SITE_FOLDER}/{lang}/{filename}"


def listing(loaded: LoadedProfile, reader: str) -> list[dict[str, Any]]:
    """The Materials page's value ``materials``: every language's files and texts, the
    reader's language first, titles in the reader's language."""
    _ = translations(reader).gettext
    languages = sorted(loaded.profile.languages, key=lambda code: code != reader)
    out = []
    for lang in languages:
        renderer = Renderer(loaded, lang)
        out.append(
            {
                "lang": lang,
                "language": name_in(lang, reader)[:1].upper() + name_in(lang, reader)[1:],
                "files": [
                    {
                        "title": _(m.title),
                        "href": site_path(loaded, lang, f"{m.name}.pdf"),
                        "pages": m.pages,
                    }
                    for m in MATERIALS
                ],
                "button": renderer.render("button.html").strip(),
                "announcement_text": renderer.render("announcement.txt").strip(),
                "announcement_html": renderer.render("announcement.html").strip(),
                "button_href": site_path(loaded, lang, TEXTS["button.html"]),
                "announcement_text_href": site_path(loaded, lang, TEXTS["announcement.txt"]),
                "announcement_html_href": site_path(loaded, lang, TEXTS["announcement.html"]),
            }
        )
    return out
