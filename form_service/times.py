"""Times as the service writes them: UTC text, fixed width, to the minute where it can be.

A report and whatever is written with it or a moment after (its outbox rows, its first
delivery, the audit trail) are timed to the minute: a finer time would only help match a
report to one visitor in some network or proxy log. Scheduling (retries, leases) needs
finer times; ``stamp`` writes those. Both compare correctly as strings among their own kind.
"""

from __future__ import annotations

from datetime import datetime


def minute_iso(moment: datetime) -> str:
    """ISO 8601 UTC to the minute, e.g. 2026-03-04T05:06Z."""
    return moment.strftime("%Y-%m-%dT%H:%MZ")


STAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def stamp(moment: datetime) -> str:
    """To the microsecond, e.g. 2026-03-04T05:06:07.000000Z, for the store's scheduling."""
    return moment.strftime(STAMP_FORMAT)


def minute_start_stamp(moment: datetime) -> str:
    """stamp() of the minute *moment* falls in: fixed-width, and no finer than the minute."""
    return stamp(moment.replace(second=0, microsecond=0))
