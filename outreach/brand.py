"""The agency's colour, made readable (WCAG 2.2): the shades the site, the report service,
the printed materials and the partners' button all use, so that they agree.

A dark brand colour is used as it is, with white text on it. A light one (a yellow) keeps
its place as the header and button colour with black text on it, and text on white (links,
borders that carry meaning) takes the nearest darker shade that reads at 4.5:1.
"""

from __future__ import annotations

# WCAG 2.2 1.4.3: normal text needs 4.5:1 against its background.
READABLE = 4.5

WHITE = "#ffffff"
BLACK = "#000000"


def _relative_luminance(hex_color: str) -> float:
    channels = [int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    """The contrast ratio of two "#rrggbb" colours, from 1 to 21."""
    lighter, darker = sorted((_relative_luminance(first), _relative_luminance(second)))[::-1]
    return (lighter + 0.05) / (darker + 0.05)


def contrast_with_white(hex_color: str) -> float:
    return contrast(hex_color, WHITE)


def text_on(hex_color: str) -> str:
    """White text on a dark enough colour, else black (one of the two always reaches 4.5:1)."""
    return WHITE if contrast_with_white(hex_color) >= READABLE else BLACK


def _darker(hex_color: str, factor: float) -> str:
    channels = [round(int(hex_color[i : i + 2], 16) * factor) for i in (1, 3, 5)]
    return "#" + "".join(f"{c:02x}" for c in channels)


def readable_on_white(hex_color: str) -> str:
    """The colour itself when text in it reads on white, else the nearest darker shade that does."""
    factor = 1.0
    shade = hex_color.lower()
    while contrast_with_white(shade) < READABLE and factor > 0:
        factor = round(factor - 0.05, 2)
        shade = _darker(hex_color, factor)
    return shade
