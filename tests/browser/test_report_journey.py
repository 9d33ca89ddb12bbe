"""The tipster's journey in a real browser: home -> report -> an error -> fix -> receipt -> status.

Once with JavaScript, once without (on a 320 px wide phone), once by keyboard alone, in
English and Spanish; axe-core and the reflow check on every state of the form, and nothing
requested from another origin, no cookie, anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Response

from tests.browser.conftest import Server
from tests.browser.support import (
    RECEIPT_CODE,
    Traffic,
    axe_violations,
    describe,
    lang_prefix,
    overflow_problems,
    privacy_problems,
    tab_until,
)

pytestmark = pytest.mark.browser

WHEN = {"en": "Yesterday after school", "es": "Ayer después de clase"}
WHAT = {
    "en": "A classmate posted that he will bring a gun on Friday.",
    "es": "Un compañero publicó que traerá un arma el viernes.",
}
# The form's required choices, as (field name, radio id to pick).
CHOICES = [
    ("area", "f-area-1"),
    ("setting", "f-setting-1"),
    ("concern", "f-concern-1"),
    ("danger_now", "f-danger_now-2"),  # "No"
]
REQUIRED_ERRORS = {"description", "area", "setting", "concern", "danger_now"}


@dataclass
class Journey:
    """One tipster's visit: the page, what it sent and received, what axe said at each step."""

    page: Page
    context: BrowserContext
    traffic: Traffic
    server: Server
    lang: str
    javascript: bool
    accessibility: dict[str, list[str]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.server.url(lang_prefix(self.lang) + path)

    def check(self, state: str) -> None:
        problems = axe_violations(self.page, self.javascript)
        problems += overflow_problems(self.page)
        if problems:
            self.accessibility[state] = problems

    def submit(self, press: str | None = None) -> Response:
        """Send the form on the page, by Enter on the focused element or by a click."""
        with self.page.expect_navigation() as navigation:
            if press:
                self.page.keyboard.press(press)
            else:
                self.page.locator("main form button[type=submit]").click()
        answer = navigation.value
        assert answer is not None and answer.request.method == "POST"
        return answer


@pytest.fixture
def journey(browser: Browser, served: Server, request: pytest.FixtureRequest) -> Iterator[Journey]:
    lang, javascript = request.param
    # Without JavaScript, on a 320 px wide phone: every state must also reflow.
    window = {} if javascript else {"viewport": {"width": 320, "height": 640}}
    context = browser.new_context(java_script_enabled=javascript, reduced_motion="reduce", **window)
    traffic = Traffic(served.base_url).watch(context)
    page = context.new_page()
    made = Journey(page, context, traffic, served, lang, javascript)
    yield made
    context.close()


def errors_listed(page: Page) -> set[str]:
    links = page.locator(".error-summary a").evaluate_all("els => els.map(a => a.hash)")
    return {link.removeprefix("#f-").removesuffix("-1") for link in links}


def finish(journey: Journey, code: str) -> None:
    """What every journey must have shown, whatever the way through it."""
    page = journey.page
    result = page.locator(".status-result[role=status]")
    assert result.is_visible(), page.content()[:2000]
    assert page.locator(".error-summary").count() == 0
    problems = privacy_problems(journey.traffic, journey.context)
    assert problems == [], describe(problems)
    assert journey.accessibility == {}, "\n".join(
        f"{state}:\n{describe(lines)}" for state, lines in journey.accessibility.items()
    )
    assert RECEIPT_CODE.match(code), code


BOTH = [pytest.param(("en", True), id="en"), pytest.param(("es", True), id="es")]
BOTH_NO_JS = [pytest.param(("en", False), id="en"), pytest.param(("es", False), id="es")]


def _with_pointer(journey: Journey) -> str:
    page = journey.page
    page.goto(journey.url("/"))
    journey.check("home")
    with page.expect_navigation():
        page.locator("a.outreach-cta__report").click()
    assert page.url == journey.url("/report")
    journey.check("empty form")

    # Sent with only the time filled in: every required answer is missing.
    page.locator("#f-when").fill(WHEN[journey.lang])
    answer = journey.submit()
    assert answer.status == 422
    assert errors_listed(page) == REQUIRED_ERRORS
    assert page.locator("#f-when").input_value() == WHEN[journey.lang], "the text was kept"
    assert page.locator("#f-description").get_attribute("aria-invalid") == "true"
    journey.check("errors")

    # The first error's link leads to its field; fix everything and send again.
    page.locator(".error-summary a").first.click()
    assert page.url.endswith("#f-description")
    page.locator("#f-description").fill(WHAT[journey.lang])
    for _name, radio in CHOICES:
        page.locator(f"#{radio}").check()
    answer = journey.submit()
    assert answer.status == 200
    code = page.locator("#receipt-code").get_attribute("value")
    journey.check("receipt")

    with page.expect_navigation():
        page.locator("main a[href$='/status']").click()
    assert page.url == journey.url("/status")
    journey.check("status form")
    page.locator("#f-code").fill(code.lower())
    answer = journey.submit()
    assert answer.status == 200
    journey.check("status")
    return code


@pytest.mark.parametrize("journey", BOTH, indirect=True)
def test_journey_with_javascript(journey: Journey) -> None:
    finish(journey, _with_pointer(journey))


@pytest.mark.parametrize("journey", BOTH_NO_JS, indirect=True)
def test_journey_without_javascript(journey: Journey) -> None:
    finish(journey, _with_pointer(journey))


def _focused(page: Page, element_id: str) -> bool:
    return bool(page.evaluate("id => document.activeElement.id === id", element_id))


@pytest.mark.parametrize("journey", BOTH, indirect=True)
def test_journey_by_keyboard_alone(journey: Journey) -> None:
    page = journey.page
    page.goto(journey.url("/"))
    stops: list[str] = []
    stops += tab_until(page, "el.matches('a.outreach-cta__report')")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == journey.url("/report")

    stops += tab_until(page, "el.id === 'f-when'")
    page.keyboard.type(WHEN[journey.lang])
    stops += tab_until(page, "el.matches('main form button[type=submit]')")
    assert journey.submit(press="Enter").status == 422
    assert errors_listed(page) == REQUIRED_ERRORS
    journey.check("errors")

    # From the error summary to the field it names, then through the form in order.
    stops += tab_until(page, "el.matches('.error-summary a')")
    page.keyboard.press("Enter")
    assert _focused(page, "f-description"), "the error link moves focus to its field"
    page.keyboard.type(WHAT[journey.lang])
    for name, radio in CHOICES:
        stops += tab_until(page, f"el.name === '{name}'")
        # Tab enters a group on its first radio: Space picks it, an arrow picks the next.
        page.keyboard.press("Space" if radio.endswith("-1") else "ArrowDown")
        assert page.locator(f"#{radio}").is_checked(), radio
    stops += tab_until(page, "el.matches('main form button[type=submit]')")
    assert journey.submit(press="Enter").status == 200
    code = page.locator("#receipt-code").get_attribute("value")

    stops += tab_until(page, "el.matches(\"main a[href$='/status']\")")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    stops += tab_until(page, "el.id === 'f-code'")
    page.keyboard.type(code)
    assert journey.submit(press="Enter").status == 200
    assert stops == [], describe(stops)
    finish(journey, code)


@pytest.mark.parametrize("journey", BOTH, indirect=True)
def test_a_wrong_code_is_an_accessible_error(journey: Journey) -> None:
    page = journey.page
    page.goto(journey.url("/status"))
    page.locator("#f-code").fill("0000-0000-0000-0000-0000")
    assert journey.submit().status == 404
    assert page.locator(".error-summary[role=alert]").is_visible()
    assert page.locator("#f-code").get_attribute("aria-invalid") == "true"
    assert page.locator("#f-code").input_value() == "0000-0000-0000-0000-0000"
    journey.check("status error")
    assert journey.accessibility == {}, journey.accessibility
    problems = privacy_problems(journey.traffic, journey.context)
    assert problems == [], describe(problems)


@pytest.mark.parametrize("journey", [pytest.param(("en", True), id="en")], indirect=True)
def test_receipt_prints_the_code_large_without_navigation(journey: Journey) -> None:
    page = journey.page
    page.goto(journey.url("/report"))
    page.locator("#f-description").fill(WHAT["en"])
    for _name, radio in CHOICES:
        page.locator(f"#{radio}").check()
    assert journey.submit().status == 200
    page.emulate_media(media="print")
    printed = [
        selector
        for selector in (".site-header nav", ".emergency", ".actions", ".site-footer")
        if page.locator(selector).evaluate("el => el.checkVisibility()")
    ]
    code_size = page.locator("#receipt-code").evaluate(
        "el => parseFloat(getComputedStyle(el).fontSize)"
    )
    code_shown = page.locator("#receipt-code").evaluate("el => el.checkVisibility()")
    page.emulate_media(media="screen")
    assert printed == [], f"still printed: {printed}"
    assert code_shown and code_size >= 24, code_size
