"""What a reader sees of a built page: its article text, blocks and headings."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

_SKIP = {"svg", "script", "style", "code", "pre", "aside"}
_BLOCKS = {"p", "li", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd"}


@dataclass
class Block:
    tag: str
    text: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)
    """(href, link text) pairs inside the block."""
    has_child: bool = False


class _ArticleParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0  # > 0 inside the article
        self.skip = 0
        self.blocks: list[Block] = []
        self.stack: list[Block] = []
        self.link: list[str] | None = None
        self.images: list[dict[str, str | None]] = []
        self.svgs: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if self.depth == 0:
            if tag == "article" and "md-content__inner" in (attr.get("class") or ""):
                self.depth = 1
            return
        self.depth += 1
        if tag == "svg":
            self.svgs.append(attr)
        if tag == "img":
            self.images.append(attr)
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCKS and not self.skip:
            block = Block(tag)
            if self.stack:
                self.stack[-1].has_child = True
            self.blocks.append(block)
            self.stack.append(block)
        elif tag == "a" and self.stack and not self.skip:
            self.link = [attr.get("href") or "", ""]

    def handle_endtag(self, tag: str) -> None:
        if self.depth == 0:
            return
        self.depth -= 1
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCKS and self.stack and self.stack[-1].tag == tag and not self.skip:
            self.stack.pop()
        elif tag == "a" and self.link is not None and self.stack:
            self.stack[-1].links.append((self.link[0], self.link[1].strip()))
            self.link = None

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth and tag == "img":
            self.images.append(dict(attrs))

    def handle_data(self, data: str) -> None:
        if self.depth and not self.skip and self.stack:
            for block in self.stack:
                block.text += data
            if self.link is not None:
                self.link[1] += data


@dataclass
class Article:
    blocks: list[Block]
    images: list[dict[str, str | None]]
    svgs: list[dict[str, str | None]]

    def prose(self) -> str:
        """The readable text: each block one sentence-ending unit, as a reader meets it."""
        parts = []
        for block in self.blocks:
            if block.has_child:
                continue  # its children are counted on their own
            text = " ".join(block.text.split())
            if not text:
                continue
            parts.append(text if text[-1] in ".!?:" else text + ".")
        return "\n".join(parts)

    def headings(self) -> list[int]:
        return [int(b.tag[1]) for b in self.blocks if b.tag[0] == "h" and b.tag[1].isdigit()]


def read_article(path: Path) -> Article:
    parser = _ArticleParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return Article(parser.blocks, parser.images, parser.svgs)
