"""Times as the service writes them: fixed-width UTC text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from form_service.times import minute_iso, minute_start_stamp, stamp


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 1, 2, 3, 4, 5, 60708, tzinfo=UTC),
        datetime(2031, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1999, 10, 9, 0, 0, tzinfo=UTC),
    ],
)
def test_times_are_fixed_width_utc_text(moment: datetime) -> None:
    assert minute_iso(moment) == moment.strftime("%Y-%m-%dT%H:%MZ")
    # To the microsecond, for times that only the store compares (retries, leases).
    assert stamp(moment) == moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert minute_start_stamp(moment) == moment.strftime("%Y-%m-%dT%H:%M:00.000000Z")
