"""Reading the agency guide: its pages, fenced blocks, shown commands and links."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

GUIDE = REPO / "guide"
PROMPT = "$ "


def guide_pages() -> list[Path]:
    return sorted(GUIDE.glob("*.md"))


@dataclass(frozen=True)
class Block:
    """A fenced block: its info string (``console``, ``yaml``…), text and first line number."""

    page: Path
    info: str
    text: str
    line: int

    @property
    def commands(self) -> list[str]:
        return [
            line[len(PROMPT) :].strip()
            for line in self.text.splitlines()
            if line.startswith(PROMPT)
        ]


_FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)")


def blocks(page: Path) -> list[Block]:
    found: list[Block] = []
    fence = ""
    info = ""
    start = 0
    body: list[str] = []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        match = _FENCE.match(line)
        if not fence:
            if match:
                fence, info, start, body = match.group(1), match.group(2).lower(), number, []
        elif line.strip() == fence or (match and match.group(1) == fence and not match.group(2)):
            found.append(Block(page, info, "\n".join(body) + "\n", start))
            fence = ""
        else:
            body.append(line)
    assert not fence, f"{page.name}: the block opened on line {start} is never closed"
    return found


def console_commands(page: Path) -> list[str]:
    """The commands a page shows in ```console blocks, in reading order."""
    return [
        command for block in blocks(page) if block.info == "console" for command in block.commands
    ]


def all_shown_commands() -> list[str]:
    """Every prompt line of every fenced block (console or not) of every guide page."""
    return [
        command for page in guide_pages() for block in blocks(page) for command in block.commands
    ]


def heading_anchors(page: Path) -> set[str]:
    """GitHub-style anchors of a page's headings."""
    anchors = set()
    in_fence = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        if in_fence or not line.startswith("#"):
            continue
        title = line.lstrip("#").strip().lower()
        title = re.sub(r"[^\w\- ]", "", title)
        anchors.add(title.replace(" ", "-"))
    return anchors
