"""What the pages say about files, in the reader's language: limits, names, refusals.

Each function takes the page's translations (Pages.translations), so the agency's own
wording comes first, and the language, for numbers.

A file is named by its kind and its number among the report's files of that kind ("photo
1", "video 1"): the name the tipster's device gave it is never kept, since it can hold a
name, a date or a place.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from gettext import NullTranslations

from babel.numbers import format_decimal

from form_service.file_cleaning import Refusal
from form_service.settings import MIB
from form_service.uploads import MAX_FILES, FileLimits


def megabytes(size: int, lang: str, t: NullTranslations) -> str:
    number = format_decimal(size / MIB, format="#,##0.#", locale=lang.replace("-", "_"))
    return t.gettext("%(size)s MB") % {"size": number}


@functools.lru_cache(maxsize=64)
def limits_hint(limits: FileLimits, lang: str, t: NullTranslations) -> str:
    """Said beside every file field (the form, each 429 of a flood included): made once."""
    _ = t.gettext
    return _(
        "Up to %(count)s photos, screenshots or short videos: each photo up to %(image)s, "
        "each video up to %(video)s, %(total)s in all. Before anyone sees them we remove "
        "what they say about where, when and on which device they were made."
    ) % {
        "count": MAX_FILES,
        "image": megabytes(limits.image, lang, t),
        "video": megabytes(limits.video, lang, t),
        "total": megabytes(limits.report, lang, t),
    }


def file_labels(kinds: Sequence[str], t: NullTranslations) -> list[str]:
    """ "photo 1", "video 1", "photo 2"… for files of these kinds, in this order."""
    _ = t.gettext
    counts: dict[str, int] = {}
    labels = []
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
        text = _("photo %(number)s") if kind == "image" else _("video %(number)s")
        labels.append(text % {"number": counts[kind]})
    return labels


def kept_notice(labels: Sequence[str], t: NullTranslations) -> str:
    ngettext = t.ngettext
    return ngettext(
        "We kept the file you sent (%(names)s): you do not need to choose it again.",
        "We kept the %(num)d files you sent (%(names)s): you do not need to choose them again.",
        len(labels),
    ) % {"num": len(labels), "names": ", ".join(labels)}


def unreadable_notice(labels: Sequence[str], t: NullTranslations) -> str:
    """What the tipster's status page says of files that failed to open after the receipt
    (form_service/waiting_files.py); "" when there are none."""
    if not labels:
        return ""
    ngettext = t.ngettext
    return ngettext(
        "We could not open %(names)s: the file may be damaged or only partly sent. You can "
        "add it again below.",
        "We could not open %(names)s: the files may be damaged or only partly sent. You can "
        "add them again below.",
        len(labels),
    ) % {"names": ", ".join(labels)}


def refusal_text(
    number: int, reason: Refusal, limits: FileLimits, lang: str, t: NullTranslations
) -> str:
    _ = t.gettext
    texts = {
        Refusal.too_many: _("File %(number)s was not kept: a report can have %(count)s files."),
        Refusal.report_too_large: _(
            "File %(number)s was not kept: the files of one report can be %(total)s in all."
        ),
        Refusal.too_large: _(
            "File %(number)s is too large: a photo can be %(image)s, a video %(video)s."
        ),
        Refusal.empty: _("File %(number)s is empty."),
        Refusal.unknown_type: _(
            "File %(number)s is not a photo or video we can take. Photos can be JPEG, PNG, "
            "WebP, GIF or HEIC; videos MP4 or MOV."
        ),
        Refusal.too_many_pixels: _(
            "File %(number)s is a picture too large to open. Please send a smaller copy "
            "or a screenshot of it."
        ),
        Refusal.too_many_frames: _(
            "File %(number)s has too many frames. Please send it as a video or a screenshot."
        ),
        Refusal.undecodable: _(
            "File %(number)s could not be opened: it may be damaged or only partly sent."
        ),
        Refusal.no_video_tool: _(
            "File %(number)s is a video, and this site cannot take videos right now. Please "
            "send a screenshot of it, or describe it."
        ),
    }
    return texts[reason] % {
        "number": number,
        "count": MAX_FILES,
        "image": megabytes(limits.image, lang, t),
        "video": megabytes(limits.video, lang, t),
        "total": megabytes(limits.report, lang, t),
    }


def too_large_notice(limits: FileLimits, lang: str, t: NullTranslations) -> str:
    _ = t.gettext
    return _(
        "Your files were too large to send: a report can have %(total)s of files in all. "
        "Everything you wrote is still here: please choose fewer or smaller files, then "
        "send it again."
    ) % {"total": megabytes(limits.report, lang, t)}
