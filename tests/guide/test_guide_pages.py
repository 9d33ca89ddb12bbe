"""The guide's pages link to each other correctly and show commands the way the tests run them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.guide.guide_text import GUIDE, blocks, guide_pages, heading_anchors

# Inline links and images: [text](target) / ![alt](target).
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_SHELL_BLOCKS = {"sh", "bash", "shell", "zsh", "console"}
_CONTENTS = ("getting-started.md", "profile.md", "pages.md", "languages.md")


def local_links(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"^(`{3,}).*?^\1", "", text, flags=re.S | re.M)  # not inside fenced blocks
    text = re.sub(r"`[^`\n]+`", "", text)  # nor inside inline code
    return [t for t in _LINK.findall(text) if not re.match(r"^[a-z]+:|^<|^\{\{", t)]


@pytest.mark.parametrize("page", guide_pages(), ids=lambda p: p.stem)
def test_links_between_guide_pages_resolve(page: Path) -> None:
    for target in local_links(page):
        name, _, anchor = target.partition("#")
        linked = (page.parent / name).resolve() if name else page
        assert linked.is_file(), f"{page.name}: link to {target}, but there is no {name}"
        assert REPO in linked.parents, f"{page.name}: {target} points outside the kit"
        if anchor and linked.suffix == ".md":
            assert anchor in heading_anchors(linked), f"{page.name}: no heading #{anchor} in {name}"


def test_the_index_lists_every_guide_page() -> None:
    index = (GUIDE / "index.md").read_text(encoding="utf-8")
    for page in guide_pages():
        if page.name != "index.md":
            assert f"]({page.name})" in index, f"index.md does not link to {page.name}"
    for name in _CONTENTS:
        assert (GUIDE / name).is_file()


@pytest.mark.parametrize("page", guide_pages(), ids=lambda p: p.stem)
def test_commands_are_in_console_blocks_with_prompts(page: Path) -> None:
    """Shell commands sit in ```console blocks after "$ ", where test_commands runs them.

    A command that needs a running service or another machine goes in a ```text block,
    still after "$ ", and its own suite exercises it.
    """
    for block in blocks(page):
        where = f"{page.name} line {block.line}"
        assert block.info not in _SHELL_BLOCKS - {"console"}, (
            f"{where}: a ```{block.info} block; show commands in ```console blocks after "
            "'$ ' (tests/guide/test_commands.py runs them), or in ```text if they cannot run "
            "in a fresh folder"
        )
        if block.info == "console":
            assert block.commands, f"{where}: a ```console block without a '$ ' command"
