"""What the browser tests measure: traffic, axe-core, layout, focus. Plain functions, so the
checks themselves can be tested against pages made to fail them."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Locator, Page, Request, Response
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from outreach.assets import base_config

CHROMIUM = "/usr/bin/chromium"
# Root in CI (no sandbox); no GPU; and nothing that phones home: the network is closed.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

NAV_PAGES: list[str] = yaml.safe_load(base_config().read_text())["nav"]
SITE_LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = "en"


def lang_prefix(lang: str) -> str:
    return "" if lang == DEFAULT_LANGUAGE else f"/{lang}"


def page_path(lang: str, name: str) -> str:
    """The URL path of a nav page: index.md -> /es/, warning-signs.md -> /es/warning-signs/."""
    slug = "" if name == "index.md" else name.removesuffix(".md") + "/"
    return f"{lang_prefix(lang)}/{slug}"


SITE_PAGES = [page_path(lang, name) for lang in SITE_LANGUAGES for name in NAV_PAGES]


def built_pages(site: Path) -> set[str]:
    """Every page of a built site, as URL paths (the 404 page is no page of the nav)."""
    found = set()
    for index in site.rglob("index.html"):
        rel = index.parent.relative_to(site).as_posix()
        found.add("/" if rel == "." else f"/{rel}/")
    return found


# --- traffic ---------------------------------------------------------------------------

# Not network requests: content the page carries inside itself.
_INLINE_SCHEMES = ("data:", "blob:", "about:")


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Traffic:
    """Every request a browser context makes, and every response, to check after loading."""

    site_origin: str
    requests: list[str] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)

    def watch(self, context: BrowserContext) -> Traffic:
        context.on("request", self._request)
        context.on("response", self._response)
        return self

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _response(self, response: Response) -> None:
        self.responses.append(response)

    def third_party(self) -> list[str]:
        return [
            url
            for url in self.requests
            if not url.startswith(_INLINE_SCHEMES) and origin(url) != self.site_origin
        ]

    def cookies_set(self) -> list[str]:
        found = []
        for response in self.responses:
            value = response.header_value("set-cookie")
            if value:
                found.append(f"{response.url}: {value}")
        return found


def privacy_problems(traffic: Traffic, context: BrowserContext) -> list[str]:
    problems = [f"third-party request: {url}" for url in traffic.third_party()]
    problems += [f"Set-Cookie: {line}" for line in traffic.cookies_set()]
    problems += [f"cookie in the browser: {c['name']} for {c['domain']}" for c in context.cookies()]
    return problems


# --- axe-core -----------------------------------------------------------------------------

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]}
_AXE = Axe()


# With JavaScript off, Chromium runs no timers, and axe-core waits on setTimeout: while it
# runs, timers become microtasks. The page's own scripts never ran, so nothing else notices.
_TIMERS_AS_MICROTASKS = """
() => {
  window.__savedTimers = [window.setTimeout, window.clearTimeout];
  window.setTimeout = (fn, ms, ...args) => {
    Promise.resolve().then(() => (typeof fn === 'function' ? fn(...args) : undefined));
    return 0;
  };
  window.clearTimeout = () => {};
}
"""
_TIMERS_BACK = "() => { [window.setTimeout, window.clearTimeout] = window.__savedTimers; }"


def _every_rule_options(page: Page) -> dict[str, object]:
    """Options that turn on every rule axe-core has: best practices and experimental ones too."""
    page.evaluate(_AXE.axe_script)
    rules: list[str] = page.evaluate("() => axe.getRules().map((rule) => rule.ruleId)")
    return {"rules": {rule: {"enabled": True} for rule in rules}, "resultTypes": ["violations"]}


def axe_violations(page: Page, javascript: bool = True, every_rule: bool = False) -> list[str]:
    """axe-core's WCAG 2.2 A/AA violations on the page as it is now, one line per element.

    *javascript* False: the page was loaded with JavaScript disabled. *every_rule*: every
    rule axe-core knows, not only the WCAG A/AA ones.
    """
    options = _every_rule_options(page) if every_rule else AXE_OPTIONS
    if javascript:
        results = _AXE.run(page, options=options)
    else:
        page.evaluate(_TIMERS_AS_MICROTASKS)
        try:
            results = _AXE.run(page, options=options)
        finally:
            page.evaluate(_TIMERS_BACK)
    lines = []
    for violation in results.response["violations"]:
        for node in violation["nodes"]:
            summary = " ".join(node.get("failureSummary", "").split())
            lines.append(
                f"{violation['id']} ({violation['impact']}) {' '.join(map(str, node['target']))}:"
                f" {summary[:300]}"
            )
    return lines


# --- layout ----------------------------------------------------------------------------

# Elements that stick out of the viewport sideways, in the parts of a page people read.
# Wide tables and code may scroll inside their own box (WCAG 1.4.10 allows it); anything
# the page does not show (hidden, transparent, clipped to 1 px) is not looked at, but it
# still counts if it makes the page itself scroll sideways.
_OVERFLOW_JS = """
() => {
  const root = document.documentElement;
  const width = root.clientWidth;
  const problems = [];
  if (root.scrollWidth > width) {
    problems.push(`the page scrolls sideways: ${root.scrollWidth}px wide in ${width}px`);
  }
  const describe = (el) => {
    const classes = (el.getAttribute('class') || '').trim().split(/\\s+/).filter(Boolean);
    return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
      + classes.map((c) => '.' + c).join('');
  };
  const scrollsSideways = (el) => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX;
      if ((o === 'auto' || o === 'scroll') && a.scrollWidth > a.clientWidth - 1) {
        const r = a.getBoundingClientRect();
        if (r.left >= -0.5 && r.right <= width + 0.5) return true;
      }
    }
    return false;
  };
  // Screen-reader-only text and form traps: clipped to nothing by a 1 px box.
  const clippedAway = (el) => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const style = getComputedStyle(a);
      if (style.overflowX === 'visible' && style.overflowY === 'visible') continue;
      const r = a.getBoundingClientRect();
      if (r.width <= 1 || r.height <= 1) return true;
    }
    return false;
  };
  const regions = document.querySelectorAll(
    '.md-header, .md-content, .md-footer, '
    + 'body > header, body > main, body > footer, body > .emergency');
  for (const region of regions) {
    for (const el of [region, ...region.querySelectorAll('*')]) {
      if (!el.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
      const r = el.getBoundingClientRect();
      if (r.width <= 1 || r.height <= 1) continue;
      if (r.left >= -0.5 && r.right <= width + 0.5) continue;
      if (scrollsSideways(el) || clippedAway(el)) continue;
      problems.push(`${describe(el)} spans ${Math.round(r.left)}..${Math.round(r.right)}px`
        + ` of ${width}px`);
      if (problems.length > 10) return problems;
    }
  }
  return problems;
}
"""


def overflow_problems(page: Page) -> list[str]:
    result: list[str] = page.evaluate(_OVERFLOW_JS)
    return result


# The steps diagram: inside the viewport, and every label inside its box of the drawing.
_DIAGRAM_JS = """
() => {
  const svg = document.querySelector('.steps-diagram svg');
  if (!svg) return ['no steps diagram on the page'];
  const width = document.documentElement.clientWidth;
  const problems = [];
  const r = svg.getBoundingClientRect();
  const [left, right] = [Math.round(r.left), Math.round(r.right)];
  if (r.width < 100 || r.height < 100) problems.push(`the diagram is ${r.width}x${r.height}px`);
  if (r.left < -0.5 || r.right > width + 0.5) {
    problems.push(`the diagram spans ${left}..${right}px of ${width}px`);
  }
  const boxes = [...svg.querySelectorAll('rect')].map((b) => b.getBBox());
  for (const text of svg.querySelectorAll('text')) {
    const t = text.getBBox();
    const inside = boxes.some((b) => t.x >= b.x && t.x + t.width <= b.x + b.width
      && t.y >= b.y && t.y + t.height <= b.y + b.height);
    if (!inside) problems.push(`label "${text.textContent}" runs out of its box`);
  }
  return problems;
}
"""


def diagram_problems(page: Page) -> list[str]:
    result: list[str] = page.evaluate(_DIAGRAM_JS)
    return result


# --- keyboard focus --------------------------------------------------------------------

# The focused element shows on screen: part of it is in the viewport and not covered
# (WCAG 2.4.11 Focus Not Obscured).
FOCUS_SHOWN_JS = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return false;
  const r = el.getBoundingClientRect();
  const left = Math.max(r.left, 0), top = Math.max(r.top, 0);
  const right = Math.min(r.right, innerWidth), bottom = Math.min(r.bottom, innerHeight);
  if (right - left < 1 || bottom - top < 1) return false;
  const hit = document.elementFromPoint((left + right) / 2, (top + bottom) / 2);
  return !!hit && (hit === el || el.contains(hit) || hit.contains(el) && hit.tagName === 'LABEL');
}
"""

DESCRIBE_FOCUS_JS = """
() => {
  const el = document.activeElement;
  if (!el) return 'nothing';
  const text = (el.innerText || el.value || el.getAttribute('aria-label') || '').trim();
  return `${el.tagName.toLowerCase()}.${el.getAttribute('class') || ''} "${text.slice(0, 40)}"`;
}
"""


def tab_until(page: Page, matches: str, limit: int = 80) -> list[str]:
    """Press Tab until the JS predicate *matches* (of the focused element) holds.

    Every stop on the way must be visible on screen; returns the problems found (empty
    when the target was reached and every stop showed).
    """
    problems = []
    check = f"() => [({FOCUS_SHOWN_JS})(), (el => {matches})(document.activeElement)]"
    for _ in range(limit):
        page.keyboard.press("Tab")
        shown, reached = page.evaluate(check)
        if not shown:
            try:
                # Material opens some panels (search, languages) a moment after focus.
                page.wait_for_function(FOCUS_SHOWN_JS, timeout=3000)
            except PlaywrightTimeout:
                problems.append(
                    f"focus is not visible on screen: {page.evaluate(DESCRIBE_FOCUS_JS)}"
                )
        if reached:
            return problems
    return [*problems, f"{limit} presses of Tab never reached the element ({matches})"]


# Counts the pixels that change by at least 3:1 in contrast between two screenshots.
_CHANGED_PIXELS_JS = """
async ([a, b]) => {
  const load = (src) => new Promise((ok, fail) => {
    const img = new Image(); img.onload = () => ok(img); img.onerror = fail; img.src = src; });
  const [ia, ib] = await Promise.all([load(a), load(b)]);
  const pixels = (img) => {
    const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
    const g = c.getContext('2d'); g.drawImage(img, 0, 0);
    return g.getImageData(0, 0, img.width, img.height).data;
  };
  const pa = pixels(ia), pb = pixels(ib);
  const lum = (d, i) => {
    const ch = [d[i], d[i + 1], d[i + 2]].map((v) => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2];
  };
  let changed = 0;
  for (let i = 0; i < pa.length; i += 4) {
    const la = lum(pa, i), lb = lum(pb, i);
    if ((Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05) >= 3) changed++;
  }
  return changed;
}
"""


@dataclass(frozen=True)
class FocusIndicator:
    changed_pixels: int
    """Pixels that differ by 3:1 contrast or more between focused and not focused."""
    required_pixels: int
    """The area of a 2 CSS px thick perimeter of the element (WCAG 2.4.13's measure)."""

    @property
    def visible(self) -> bool:
        return self.changed_pixels >= self.required_pixels


def focus_indicator(page: Page, target: Locator, scratch: Page) -> FocusIndicator:
    """Compare the focused *target* (focused now, by keyboard) with the same spot unfocused."""
    box = target.bounding_box()
    assert box is not None, "the focused element has no box"
    margin = 8
    viewport = page.viewport_size or {"width": 1280, "height": 720}
    x0, y0 = max(box["x"] - margin, 0), max(box["y"] - margin, 0)
    x1 = min(box["x"] + box["width"] + margin, viewport["width"])
    y1 = min(box["y"] + box["height"] + margin, viewport["height"])
    clip = {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}
    focused = page.screenshot(clip=clip, animations="disabled", caret="hide")
    target.evaluate("el => el.blur()")
    unfocused = page.screenshot(clip=clip, animations="disabled", caret="hide")
    urls = [
        "data:image/png;base64," + base64.b64encode(shot).decode("ascii")
        for shot in (focused, unfocused)
    ]
    changed = int(scratch.evaluate(_CHANGED_PIXELS_JS, urls))
    scale = float(page.evaluate("devicePixelRatio"))
    required = int(2 * 2 * (box["width"] + box["height"]) * scale * scale)
    return FocusIndicator(changed, required)


RECEIPT_CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(?:-[0-9A-HJKMNP-TV-Z]{4}){4}$")


def describe(problems: list[str]) -> str:
    return "\n".join(problems)
