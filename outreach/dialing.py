"""Phone numbers as links a phone can dial or text, and kept left to right in any text.

A number such as "(555) 555-0100" is digits with neutral punctuation between them: inside
Arabic text the Unicode bidirectional algorithm lays its groups out right to left
("0100-555 (555)"). Every number the kit writes is therefore marked left to right
(dir="ltr", which also isolates it from the text around it), and, being a number to
call, is a tel: link (or sms: for a line that takes text messages).
"""

from __future__ import annotations

import re
from html import escape

_NOT_DIALLED = re.compile(r"[^0-9+*#]")


def dial_string(number: str) -> str:
    """What a phone dials for *number*: its digits, with a leading + kept."""
    digits = _NOT_DIALLED.sub("", number)
    return ("+" + digits.replace("+", "")) if digits.startswith("+") else digits.replace("+", "")


def tel_href(number: str) -> str:
    return f"tel:{dial_string(number)}"


def sms_href(number: str) -> str:
    return f"sms:{dial_string(number)}"


def number_link(number: str, *, sms: bool = False) -> str:
    """HTML: *number* as a link that dials it (or texts it), laid out left to right."""
    href = sms_href(number) if sms else tel_href(number)
    return f'<a class="outreach-tel" href="{href}" dir="ltr">{escape(number)}</a>'


def left_to_right(text: str) -> str:
    """HTML: *text* (a code, an address, a number) isolated and laid out left to right."""
    return f'<bdi dir="ltr">{escape(text)}</bdi>'
