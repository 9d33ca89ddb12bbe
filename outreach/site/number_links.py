"""A Markdown extension: numbers to call become tap-to-call links, and phone numbers,
e-mail addresses and web addresses in running text are kept left to right.

Pages fill in the profile's numbers ("call {{ emergency_number }}") and crisis lines write
their own ("Call 1-800-799-7233"); an agency's own pages may type any. Rather than ask every
page to mark each value, the finished page is walked once: in Arabic or any right-to-left
language a number like "(555) 555-0100" would otherwise read "0100-555 (555)"
(outreach/dialing.py). Text inside links, code and raw HTML is left as it is; a link whose
text is an address or a number is itself marked left to right.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

from markdown import Markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

from outreach.dialing import sms_href, tel_href

# A North American number written in full: 555-0100 with an area code, 1-800-799-7233.
_PHONE = r"(?:\+?1[-. ])?(?:\(\d{3}\) ?|\d{3}[-. ])\d{3}[-. ]\d{4}"
_EMAIL = r"[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_URL = r"https?://[^\s<>\x02\x03]*[^\s<>\x02\x03.,;:!?)]"
_SKIPPED = frozenset({"a", "code", "pre", "kbd", "samp", "script", "style", "bdi", "svg"})
_ADDRESS = re.compile(rf"(?:{_PHONE}|{_EMAIL}|{_URL}|mailto:\S+|\+?[\d\s().-]+)")


def _bounded(text: str) -> str:
    # Not part of a longer number or word ("2,911", "9/11"); a full stop after it is fine.
    return rf"(?<![\w/.,-]){text}(?![\w/-]|[.,]\w)"


class NumberLinks(Treeprocessor):  # type: ignore[misc]  # untyped library
    def __init__(self, md: Markdown, call: Iterable[str], text: Iterable[str]) -> None:
        super().__init__(md)
        self.text_numbers = {n for n in text if n}
        known = sorted({n for n in [*call, *text] if n}, key=len, reverse=True)
        parts = [_bounded(re.escape(n)) for n in known]
        parts += [_bounded(_PHONE), rf"(?P<email>{_EMAIL})", rf"(?P<url>{_URL})"]
        self.pattern = re.compile("|".join(f"(?:{p})" for p in parts))

    def run(self, root: ET.Element) -> None:
        self._walk(root)

    def _walk(self, element: ET.Element) -> None:
        for child in list(element):
            if child.tag == "a":
                if _ADDRESS.fullmatch("".join(child.itertext()).strip() or "x"):
                    child.set("dir", "ltr")
            elif child.tag not in _SKIPPED:
                self._walk(child)
            if child.tail:
                index = list(element).index(child) + 1
                child.tail = self._split(child.tail, element, index)
        if element.text:
            element.text = self._split(element.text, element, 0)

    def _split(self, text: str, parent: ET.Element, index: int) -> str:
        """Replace matches in *text* with elements inserted into *parent* at *index*."""
        matches = list(self.pattern.finditer(text))
        if not matches:
            return text
        before = text[: matches[0].start()]
        for n, match in enumerate(matches):
            end = matches[n + 1].start() if n + 1 < len(matches) else len(text)
            made = self._element(match)
            made.tail = text[match.end() : end]
            parent.insert(index + n, made)
        return before

    def _element(self, match: re.Match[str]) -> ET.Element:
        value = match.group()
        if match.group("email") or match.group("url"):
            made = ET.Element("bdi", {"dir": "ltr"})
        else:
            href = sms_href(value) if value in self.text_numbers else tel_href(value)
            made = ET.Element("a", {"class": "outreach-tel", "href": href, "dir": "ltr"})
        made.text = value
        return made


class NumberLinksExtension(Extension):  # type: ignore[misc]  # untyped library
    def __init__(self, **kwargs: Any) -> None:
        self.config = {
            "call": [[], "Numbers to call, as the profile writes them"],
            "text": [[], "Numbers that take text messages (sms: links)"],
        }
        super().__init__(**kwargs)

    def extendMarkdown(self, md: Markdown) -> None:
        processor = NumberLinks(md, self.getConfig("call"), self.getConfig("text"))
        # After inline parsing (20) has made links and code, before the table of contents (5).
        md.treeprocessors.register(processor, "outreach_number_links", 6)


def makeExtension(**kwargs: Any) -> NumberLinksExtension:
    return NumberLinksExtension(**kwargs)
