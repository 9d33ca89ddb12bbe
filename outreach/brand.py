"""The agency's colour, made readable: the shades both the site and the report service use.

A dark brand colour is used as it is, with white text on it. A light one (a yellow) keeps
its place as the header and button colour with black text on it, and text on white (links,
borders that carry meaning) takes the nearest darker shade that reads at 4.5:1.
"""

from __future__ import annotations

# WCAG 2.2 1.4.3: normal text needs 4.5:1 against its background.
READABLE = 4.5


def _relative_luminance(hex_color: str) -> float:
    channels = [int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_with_white(hex_color: str) -> float:
    return 1.05 / (_relative_luminance(hex_color) + 0.05)


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


def text_on(hex_color: str) -> str:
    """White or black: the text colour for a background of the brand colour."""
    return "#ffffff" if contrast_with_white(hex_color) >= READABLE else "#000000"
