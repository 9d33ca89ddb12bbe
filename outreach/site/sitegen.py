"""The site generator: base pages + one agency profile -> one static site per language.

Each language is its own MkDocs build (Material's documented way: its own search index
and UI language), the default language at the site root and the others under /<lang>/;
the printed materials of every language go under /materials/<lang>/ (materials.py), laid
out in the same worker processes as the MkDocs builds.
Pages are assembled in a staging folder first (base page, agency override, fallback to the
default language), agency values are filled in through the sandbox, and only a build
that fully succeeds replaces the previous site.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import material
import yaml
from markupsafe import Markup, escape
from mkdocs.commands.build import build
from mkdocs.config import load_config
from mkdocs.exceptions import MkDocsException

from outreach.addresses import site_path
from outreach.assets import base_config, base_docs, templates
from outreach.brand import readable_on_white, text_on
from outreach.dialing import left_to_right, tel_href
from outreach.i18n import translations
from outreach.languages import is_rtl, name_in, native_name, theme_language
from outreach.loader import LoadedProfile, display_path
from outreach.profile import Profile, localize
from outreach.site.directory import directory_page
from outreach.site.lazy_search import defer_search
from outreach.site.materials import (
    SITE_FOLDER,
    MaterialError,
    MaterialJob,
    cache_folder,
    check_templates,
    keep,
    listing,
    plan_materials,
    render_pdf,
    reuse,
)
from outreach.site.page_context import (
    PageError,
    SiteLinks,
    page_context,
    render_markdown,
    site_links,
)
from outreach.site.theme_script import theme_script

BASE_CONFIG = base_config()
BASE_DOCS = base_docs()
BASE_EXTENSIONS = yaml.safe_load(BASE_CONFIG.read_text(encoding="utf-8"))["markdown_extensions"]
THEME_DIR = templates("site")
MATERIAL_LANGUAGES = Path(material.__path__[0]) / "templates" / "partials" / "languages"
DIRECTORY_PAGE = "partners.md"

# Quiet Material's end-of-life banner: it is not a problem with the agency's site.
os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")


class BuildError(Exception):
    """A site that cannot be built; the message names the file and the problem."""


@dataclass(frozen=True)
class SourcePage:
    path: Path
    """Where the page's text comes from."""
    lang: str
    """The language it is written in (differs from the build's on a fallback)."""


@dataclass(frozen=True)
class LanguagePlan:
    """Everything one language's build needs, small enough to send to a worker process."""

    lang: str
    staging: Path
    site_dir: Path
    config_file: Path
    url_prefix: str
    """Absolute path of this language's site root, e.g. /es/."""
    pages: dict[str, SourcePage] = field(default_factory=dict)


def base_path(loaded: LoadedProfile) -> str:
    return site_path(loaded.profile.agency)


def _markdown_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {
        p.relative_to(folder).as_posix(): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def collect_pages(loaded: LoadedProfile, lang: str) -> dict[str, SourcePage]:
    """Which source each page of *lang* comes from, most specific last."""
    default = loaded.profile.default_language
    agency_docs = loaded.folder / "docs"
    layers = [(BASE_DOCS / default, default), (agency_docs / default, default)]
    if lang != default:
        layers += [(BASE_DOCS / lang, lang), (agency_docs / lang, lang)]
    pages: dict[str, SourcePage] = {}
    for folder, written_in in layers:
        for name, path in _markdown_files(folder).items():
            pages[name] = SourcePage(path, written_in)
    return pages


def check_sources(loaded: LoadedProfile) -> None:
    """Problems with the agency's page folders that MkDocs would not name clearly."""
    problems = []
    agency_docs = loaded.folder / "docs"
    languages = loaded.profile.languages
    if agency_docs.is_dir():
        for child in sorted(agency_docs.iterdir()):
            if child.is_dir() and child.name not in languages:
                problems.append(
                    f"{display_path(child)}: '{child.name}' is not one of the profile's "
                    f"languages ({', '.join(languages)})"
                )
    default_pages = collect_pages(loaded, loaded.profile.default_language)
    for lang in languages[1:]:
        for name, source in collect_pages(loaded, lang).items():
            if name.endswith(".md") and name not in default_pages:
                problems.append(
                    f"{display_path(source.path)}: no page '{name}' in the default language "
                    f"'{languages[0]}' to fall back to; add it there too"
                )
    problems += check_templates(loaded)
    nav_pages = _nav_pages(loaded)
    known = set(default_pages) | {DIRECTORY_PAGE}
    for page in nav_pages:
        if page not in known:
            problems.append(
                f"{display_path(loaded.path)}: site.nav names '{page}', but no such page exists "
                "in the base content or the agency's docs folder"
            )
    if problems:
        raise BuildError("\n".join(problems))


def _nav_pages(loaded: LoadedProfile) -> list[str]:
    nav = loaded.profile.site.nav
    if nav is None:
        return []
    pages: list[str] = []
    for entry in nav:
        if isinstance(entry, str):
            pages.append(entry)
        else:
            pages += [entry.page] if entry.page else []
            pages += entry.pages
    return pages


def _nav_config(loaded: LoadedProfile, lang: str) -> list[Any] | None:
    nav = loaded.profile.site.nav
    if nav is None:
        return None
    default = loaded.profile.default_language
    out: list[Any] = []
    for entry in nav:
        if isinstance(entry, str):
            out.append(entry)
        elif entry.section is not None:
            out.append({localize(entry.section, lang, default): list(entry.pages)})
        elif entry.page:
            out.append(entry.page)
    return out


def _fallback_notice(lang: str, written_in: str, agency_locale: Path | None) -> str:
    _ = translations(lang, agency_locale).gettext
    notice = _(
        "This page is not yet available in %(language)s. You are reading the %(original)s version."
    ) % {"language": name_in(lang, lang), "original": name_in(written_in, lang)}
    title = _("Translation coming")
    return f'!!! note "{title}"\n    {notice}\n\n'


def _stage_page(
    name: str, source: SourcePage, lang: str, context: dict[str, Any], agency_locale: Path | None
) -> str:
    text = source.path.read_text(encoding="utf-8")
    rendered = render_markdown(text, context, display_path(source.path))
    if source.lang == lang:
        return rendered
    # Keep the front matter first; mark the fallback text with its real language so
    # screen readers pronounce it correctly, and its direction, so that English inside an
    # Arabic page is not laid out right to left (punctuation on the wrong side).
    front, body = _split_front_matter(rendered)
    direction = "rtl" if is_rtl(source.lang) else "ltr"
    return (
        f"{front}{_fallback_notice(lang, source.lang, agency_locale)}"
        f'<div lang="{source.lang}" dir="{direction}" markdown>\n\n{body}\n\n</div>\n'
    )


def _split_front_matter(text: str) -> tuple[str, str]:
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end != -1:
            return text[: end + 5], text[end + 5 :]
    return "", text


@functools.cache
def material_languages() -> set[str]:
    """The languages Material for MkDocs has its own strings for."""
    return {path.stem for path in MATERIAL_LANGUAGES.glob("*.html")}


def _language_partial(lang: str) -> str | None:
    """A UI-strings partial for a language Material does not ship, falling back to English."""
    if theme_language(lang, material_languages()) in material_languages():
        return None
    direction = "rtl" if is_rtl(lang) else "ltr"
    return (
        "{% macro t(key) %}{{ {\n"
        f'  "language": "{lang}",\n'
        f'  "direction": "{direction}",\n'
        '  "search.config.lang": "en"\n'
        "}[key] }}{% endmacro %}\n"
    )


def _agency_stylesheet(color: str) -> str:
    """Material's colour variables from the brand colour, every text pair at 4.5:1 or more.

    A dark brand colour is used as it is. A light one stays the header and button colour
    with black text on it, and links and hover colours on white take a darker shade of it.
    """
    on_brand = text_on(color)
    link = readable_on_white(color)
    return (
        "/* Generated from the agency profile's primary colour. */\n"
        ":root, [data-md-color-scheme] {\n"
        f"  --md-primary-fg-color: {color};\n"
        f"  --md-primary-fg-color--light: {color};\n"
        f"  --md-primary-fg-color--dark: {color};\n"
        f"  --md-primary-bg-color: {on_brand};\n"
        f"  --md-primary-bg-color--light: {on_brand}b3;\n"
        f"  --md-accent-fg-color: {link};\n"
        "  --md-accent-bg-color: #ffffff;\n"
        f"  --md-typeset-a-color: {link};\n"
        f"  --outreach-brand: {color};\n"
        "}\n"
    )


def _with_number(text: str, number: str) -> str:
    """HTML: translated *text* with its %(number)s kept left to right in any language."""
    return str(escape(text) % {"number": Markup(left_to_right(number))})  # noqa: S704


def _crisis_call(profile: Profile, lang: str) -> dict[str, str]:
    """The call-to-action bar's crisis line (988 in the US): the first one with a number."""
    _ = translations(lang, profile.interface_locale).gettext
    for line in profile.crisis_lines:
        if line.number:
            return {
                "crisis_text": _("Thinking about suicide, or in a crisis?"),
                "crisis_href": tel_href(line.number),
                "crisis_label": _with_number(_("Call %(number)s"), line.number),
                "crisis_name": localize(line.name, lang, profile.default_language),
            }
    return {}


def _number_links(profile: Profile) -> dict[str, Any]:
    """The Markdown extension that makes every number to call a link (number_links.py)."""
    agency = profile.agency
    call = [profile.emergency_number, agency.phone, agency.liaison.phone]
    call += [line.number for line in profile.crisis_lines]
    call += [partner.public.phone for partner in profile.partners]
    text = [line.text_number for line in profile.crisis_lines]
    return {
        "outreach.site.number_links": {
            "call": sorted({n for n in call if n}),
            "text": sorted({n for n in text if n}),
        }
    }


def page_values(loaded: LoadedProfile, lang: str, links: SiteLinks) -> dict[str, Any]:
    """The values a page may use: the agency's, and the partners' materials."""
    return {**page_context(loaded.profile, lang, links), "materials": listing(loaded, lang)}


def plan_language(loaded: LoadedProfile, lang: str, work: Path, site_root: Path) -> LanguagePlan:
    """Stage one language's pages and write its MkDocs config."""
    profile = loaded.profile
    default = profile.default_language
    staging = work / "staging" / lang
    docs = staging / "docs"
    theme = staging / "theme"
    shutil.copytree(THEME_DIR, theme)
    partial = _language_partial(lang)
    if partial is not None:
        target = theme / "partials" / "languages" / f"{lang}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(partial, encoding="utf-8")

    root = base_path(loaded)
    links = site_links(profile, lang)
    context = page_values(loaded, lang, links)
    # A fallback page's text is in its own language, and so must be the agency values in
    # it; its links still lead to this language's form and pages.
    contexts = {lang: context}
    pages = collect_pages(loaded, lang)
    for name, source in pages.items():
        target = docs / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".md"):
            if source.lang not in contexts:
                contexts[source.lang] = page_values(loaded, source.lang, links)
            staged = _stage_page(
                name, source, lang, contexts[source.lang], profile.interface_locale
            )
            target.write_text(staged, encoding="utf-8")
        else:
            shutil.copyfile(source.path, target)
    if DIRECTORY_PAGE not in pages:
        (docs / DIRECTORY_PAGE).write_text(
            directory_page(context, lang, profile.interface_locale), encoding="utf-8"
        )

    assets = docs / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    (assets / "agency.css").write_text(_agency_stylesheet(profile.agency.primary_color), "utf-8")
    # No palette: its stylesheet holds Material's named colours and dark scheme, none of
    # which the site uses; agency.css sets the agency's colour over Material's defaults.
    theme_config: dict[str, Any] = {
        "custom_dir": str(theme),
        "language": theme_language(lang, material_languages()),
    }
    if profile.agency.logo:
        icon = profile.agency.site_icon
        shutil.copyfile(loaded.folder / profile.agency.logo, docs / icon)
        theme_config["logo"] = icon
        theme_config["favicon"] = icon

    _ = translations(lang, profile.interface_locale).gettext
    site_dir = site_root / lang
    config: dict[str, Any] = {
        "INHERIT": str(BASE_CONFIG),
        "site_name": context["agency"]["name"],
        # The host and this language's path: the site's own path is already in the prefix.
        "site_url": urljoin(str(profile.agency.site_url), links.prefix),
        "docs_dir": str(docs),
        "site_dir": str(site_dir),
        "theme": theme_config,
        "extra_css": ["assets/outreach.css", "assets/agency.css"],
        # A list is replaced, not merged, by INHERIT: the base's extensions come along.
        "markdown_extensions": [*BASE_EXTENSIONS, _number_links(profile)],
        "extra": {
            "alternate": [
                {
                    "name": native_name(code),
                    "link": SiteLinks(root, code, default).prefix,
                    "lang": code,
                }
                for code in profile.languages
            ],
            "outreach": {
                "report_url": links.report_url,
                "theme_script": theme_script(),
                "report_label": _("Report a concern"),
                "emergency_href": tel_href(profile.emergency_number),
                "danger_text": _with_number(
                    _("In danger now? Call %(number)s."), profile.emergency_number
                ),
                "call_label": _with_number(_("Call %(number)s"), profile.emergency_number),
                "region_label": _("Report or get help"),
                "draft": loaded.draft,
                "draft_text": _(
                    "Draft: this site is not ready to publish. Its profile still has "
                    "placeholders to replace."
                ),
                **_crisis_call(profile, lang),
            },
        },
    }
    nav = _nav_config(loaded, lang)
    if nav is not None:
        config["nav"] = nav
        # An agency that writes its own menu may leave pages out of it on purpose.
        config["validation"] = {"omitted_files": "info"}
    config_file = staging / "mkdocs.yml"
    config_file.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return LanguagePlan(lang, staging, site_dir, config_file, links.prefix, pages)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _mkdocs_log() -> Iterator[_Collect]:
    logger = logging.getLogger("mkdocs")
    collect = _Collect()
    old_propagate = logger.propagate
    logger.addHandler(collect)
    logger.propagate = False
    try:
        yield collect
    finally:
        logger.removeHandler(collect)
        logger.propagate = old_propagate


def run_mkdocs(config_file: Path) -> list[str]:
    """Build one MkDocs site in strict mode; return its warnings (empty on success)."""
    with _mkdocs_log() as collect:
        try:
            config = load_config(config_file=str(config_file), strict=True)
            build(config)
        except MkDocsException as error:
            return collect.messages or [str(error)]
        except Exception as error:  # a theme or extension failing inside MkDocs
            return [*collect.messages, f"{type(error).__name__}: {error}"]
    return collect.messages


def _build_language(plan: LanguagePlan) -> tuple[str, list[str]]:
    problems = run_mkdocs(plan.config_file)
    if not problems:
        keep_scripts_same_origin(plan.site_dir, plan.url_prefix)
        problems = defer_search(plan.site_dir)
    return plan.lang, problems


Job = LanguagePlan | MaterialJob


def _run_job(job: Job) -> tuple[str, list[str]]:
    if isinstance(job, MaterialJob):
        return f"{job.lang}/{job.material}", render_pdf(job)
    return _build_language(job)


# Material's bundle fetches a script from a CDN when a browser lacks a feature (an old
# phone without ResizeObserver) or a page has a diagram. Every such address is pointed at
# this site: the polyfill at the kit's own stand-in, anything else (diagrams, which the
# kit does not enable) at a same-origin path that is never requested.
_CDN_SCRIPT = re.compile(r"https://unpkg\.com/([\w@./-]+)")
_LOCAL_SCRIPTS = {"resize-observer-polyfill": "assets/javascripts/resize-observer.js"}


def keep_scripts_same_origin(site_dir: Path, url_prefix: str) -> None:
    def local(match: re.Match[str]) -> str:
        package = match.group(1)
        return url_prefix + _LOCAL_SCRIPTS.get(package, "assets/javascripts/not-bundled.js")

    for bundle in (site_dir / "assets" / "javascripts").glob("bundle.*.min.js"):
        code = bundle.read_text(encoding="utf-8")
        bundle.write_text(_CDN_SCRIPT.sub(local, code), encoding="utf-8")


def free_cores() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, int((cores or 1) - busy + 0.5))


def _run_jobs(work: list[Job], jobs: int) -> dict[str, list[str]]:
    """Run the MkDocs builds and the materials' layouts, *jobs* at a time.

    The builds go first: they take longest, and the many small layouts fill the gaps.
    """
    if jobs <= 1 or len(work) <= 1:
        return dict(_run_job(job) for job in work)
    # fork: the workers inherit the imported MkDocs instead of importing it again.
    context = multiprocessing.get_context("fork")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            return dict(pool.map(_run_job, work))


def _explain(lang: str, message: str, plan: LanguagePlan) -> str:
    for name, source in plan.pages.items():
        if f"'{name}'" in message:
            return f"{display_path(source.path)} ({lang} site): {message}"
    return f"{lang} site: {message}"


def build_site(loaded: LoadedProfile, out: Path, jobs: int | None = None) -> list[str]:
    """Build every language into *out*; the previous site is replaced only on success.

    Returns the languages built. Raises BuildError naming the first problems found.
    """
    check_sources(loaded)
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-build-", dir=out.parent))
    try:
        site_root = work / "site"
        materials = work / "materials"
        try:
            plans = [
                plan_language(loaded, lang, work, site_root) for lang in loaded.profile.languages
            ]
            layouts = [
                job
                for lang in loaded.profile.languages
                for job in plan_materials(loaded, lang, materials)
            ]
        except (PageError, MaterialError) as error:
            raise BuildError(str(error)) from None
        cache = cache_folder(out)
        to_lay_out = reuse(layouts, cache)
        results = _run_jobs([*plans, *to_lay_out], jobs if jobs is not None else free_cores())
        problems = [
            _explain(plan.lang, message, plan) for plan in plans for message in results[plan.lang]
        ]
        problems += [
            message for job in to_lay_out for message in results[f"{job.lang}/{job.material}"]
        ]
        if problems:
            raise BuildError("\n".join(problems))
        keep(layouts, cache)
        root = _assemble(site_root, loaded.profile.languages)
        _place_materials(materials, root, loaded.profile.languages)
        _replace(root, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return list(loaded.profile.languages)


def _assemble(built: Path, languages: list[str]) -> Path:
    """Put the default language at the root and every other language under /<lang>/."""
    root = built / languages[0]
    for lang in languages[1:]:
        target = root / lang
        if target.exists():
            raise BuildError(f"a page or folder named '{lang}' clashes with the {lang} site")
        (built / lang).rename(target)
    return root


def _place_materials(materials: Path, root: Path, languages: list[str]) -> None:
    """Move each language's materials to <site>/materials/<lang>/."""
    for lang in languages:
        target = root / SITE_FOLDER / lang
        if target.exists():
            raise BuildError(
                f"a page or folder named '{SITE_FOLDER}/{lang}' clashes with the {lang} materials"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        (materials / lang).rename(target)


def _replace(new: Path, out: Path) -> None:
    """Swap the new site in with renames, so a reader never sees half a site."""
    old = out.with_name(f".{out.name}-old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    new.rename(out)
    shutil.rmtree(old, ignore_errors=True)
