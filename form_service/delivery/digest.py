"""Flood digests: at most one message of flood-flagged reports per partner per window.

While submissions run above the surge rate every stored report is flagged
``flood_suspected`` (form_service/ratelimit.py). A flagged report may still come from a
real tipster, so it is still delivered, to every partner it was routed to, with only what
that partner's agreement allows; but a partner who reads mail gets them grouped. After a
flagged message goes to a partner, that partner's next ``window_seconds`` are a window:
flagged reports for it wait until the window closes and then go together, as one digest,
which opens the next window. A flagged report that finds no window open goes at once (a
lone false alarm costs no delay). Reports that are not flagged, and reports saying someone
may be in danger right now, never wait here: they go at once, flagged or not. Danger-now
counts only for a partner whose agreement shares ``danger_now`` (its payload's ``urgent``):
to any other partner such a report goes as any other, since a message sent apart from the
digest in a flood would tell what the message itself leaves out (SECURITY.md).

A held row stays claimed in the database, its lease renewed by the worker like that of a
send in flight: only after the digest was accepted is each row marked delivered (its own
audit record), and if the worker dies first, the rows' leases run out within seconds and
another worker sends them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from form_service.delivery.dispatch import DIGEST_CHANNELS, OutgoingDelivery
from outreach.profile import Profile


@dataclass
class _Window:
    closes: float
    """When the digest goes out (monotonic seconds): the window's end."""
    held: dict[str, OutgoingDelivery] = field(default_factory=dict)


class FloodDigests:
    """The flagged deliveries a worker holds, per partner, and when each digest is due."""

    def __init__(self, window_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.window_seconds = window_seconds
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        """Partner -> the deliveries waiting for its digest."""
        self._window_ends: dict[str, float] = {}
        """Partner -> when the window opened by its last flagged message closes."""

    @property
    def holding(self) -> bool:
        return bool(self._windows)

    def digestible(self, delivery: OutgoingDelivery, profile: Profile) -> bool:
        """True when *delivery* is to wait for its partner's digest."""
        payload = delivery.payload
        # Someone may be in danger now: such a report never waits for a digest, flood or not,
        # for a partner that may know it (payload.urgent is absent for any other).
        if self.window_seconds <= 0 or not payload.flood_suspected or payload.urgent:
            return False
        try:
            partner = profile.partner(payload.partner_id)
        except KeyError:
            return False  # sent on its own, where the attempt records the problem
        return partner.delivery.channel in DIGEST_CHANNELS

    def hold(self, delivery: OutgoingDelivery) -> bool:
        """Hold *delivery* for its partner's digest; False when the partner has no window
        open: then it goes now and opens one."""
        now = self._clock()
        partner_id = delivery.row.partner_id
        window = self._windows.get(partner_id)
        if window is None:
            ends = self._window_ends.get(partner_id, now)
            if ends <= now:
                self._window_ends[partner_id] = now + self.window_seconds
                return False
            window = self._windows[partner_id] = _Window(ends)
        window.held[delivery.row.delivery_id] = delivery
        return True

    def let_go(self, delivery_ids: set[str]) -> None:
        """Hold these rows no longer: another worker took them over (their lease ran out)."""
        for window in self._windows.values():
            for delivery_id in delivery_ids & window.held.keys():
                del window.held[delivery_id]
        self._windows = {p: w for p, w in self._windows.items() if w.held}

    def due(self, *, flush: bool = False) -> list[list[OutgoingDelivery]]:
        """Take the digests whose time has come (all of them when *flush*), one per partner."""
        now = self._clock()
        ready = [p for p, w in self._windows.items() if flush or w.closes <= now]
        self._window_ends = {p: end for p, end in self._window_ends.items() if end > now}
        self._window_ends |= dict.fromkeys(ready, now + self.window_seconds)
        return [list(self._windows.pop(partner).held.values()) for partner in ready]

    def seconds_to_next(self) -> float | None:
        """How long until the next digest is due; None when nothing is held."""
        if not self._windows:
            return None
        return max(0.0, min(w.closes for w in self._windows.values()) - self._clock())
